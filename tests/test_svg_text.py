"""``<text>``/``<tspan>`` as glyph outlines (fontTools, installed fonts): warnings, parameters, write-back.

Fidelity against resvg (>= 30 dB at 256 px, resvg given the DejaVu fonts :mod:`pds.svg.text`
maps the generic families to) is the feature corpus, ``tests/data/svg/features/text/``
(``tests/test_svg_corpus.py``).  Skipped where DejaVu is not installed
(``apt-get install fonts-dejavu-core``).
"""

from pathlib import Path

import pytest
import torch

from pds.svg import SVGFeatureWarning, SVGScene
from pds.testing import MIN_FEATURE_PSNR, dejavu_installed, resvg_psnr
from pds.testing import svg_document as svg
from test_svg_raster import _fd_check, _weights

pytest.importorskip("fontTools")

if not dejavu_installed():  # pragma: no cover - machine without DejaVu
    pytest.skip("DejaVu fonts are not installed", allow_module_level=True)

FEATURES = Path(__file__).parent / "data" / "svg" / "features"


def test_missing_family_warns_once_and_falls_back_to_serif():
    text = svg('<text x="5" y="40" font-size="20" font-family="NoSuchFont">Fall</text>'
               '<text x="5" y="80" font-size="20" font-family="NoSuchFont">back</text>')
    with pytest.warns(SVGFeatureWarning, match=r"NoSuchFont \(not installed; drawn with dejavu serif\) \(2 times\)"):
        SVGScene.load(text)
    pytest.importorskip("resvg_py")
    assert resvg_psnr(text, warns="NoSuchFont (not installed; drawn with dejavu serif)") >= MIN_FEATURE_PSNR


def test_text_fill_is_a_parameter_written_back_to_its_tspan():
    text = svg('<text x="5" y="50" font-size="20" font-family="sans-serif">ab<tspan id="t" fill="#ff0000">cd'
               '</tspan></text>')
    scene = SVGScene.load(text, dtype=torch.float64, only=["t"], optimize=["fill"])
    (fill,) = scene.parameters()["fill"]
    w = _weights(24, 24)
    _fd_check(lambda: (scene.render(24) * w).sum(), [fill])
    with torch.no_grad():
        fill[:3] = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    out = scene.to_svg()
    assert 'fill="#0000ff"' in out and ">ab<" in out  # the characters stay text


def test_text_outlines_are_not_point_parameters():
    scene = SVGScene.load((FEATURES / "text" / "plain_kerned.svg").read_text())
    assert "points" not in scene.parameters()


def test_text_path_warns():
    with pytest.warns(SVGFeatureWarning, match="textPath"):
        SVGScene.load(svg('<path id="p" d="M10 50H90"/><text font-family="sans-serif"><textPath href="#p">on a path'
                          '</textPath></text>'))
