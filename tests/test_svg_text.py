"""``<text>``/``<tspan>`` as glyph outlines (fontTools, installed fonts) against resvg at >= 30 dB.

resvg is given the same fonts for the generic families (DejaVu, what :mod:`pds.svg.text` maps
them to), so differences are layout and rasterization only.  Skipped where DejaVu is not
installed (``apt-get install fonts-dejavu-core``).
"""

import io

import numpy as np
import pytest
import torch

from pds.svg import SVGFeatureWarning, SVGScene
from pds.svg.text import match_face
from test_svg_raster import _fd_check, _weights

pytest.importorskip("fontTools")
resvg = pytest.importorskip("test_svg_resvg")  # skips without resvg-py
svg = resvg.svg

if not match_face(["DejaVu Sans"], 400, False)[1]:  # pragma: no cover - machine without DejaVu
    pytest.skip("DejaVu fonts are not installed", allow_module_level=True)

FONTS = dict(font_family="DejaVu Serif", serif_family="DejaVu Serif", sans_serif_family="DejaVu Sans",
             monospace_family="DejaVu Sans Mono")

CASES = {
    "plain_kerned": svg('<text x="10" y="40" font-size="20" font-family="DejaVu Sans">Hello AVA To</text>'),
    "initial_serif": svg('<text x="10" y="40" font-size="16">Serif text, ok</text>'),
    "anchor_middle_end": svg('<text x="50" y="30" font-size="14" text-anchor="middle" font-family="sans-serif">'
                             'Middle</text><text x="95" y="60" font-size="14" text-anchor="end" '
                             'font-family="monospace" fill="blue">End</text>'),
    "tspan_styles_dy": svg('<text x="5" y="40" font-size="12" font-family="sans-serif">A <tspan fill="red" '
                           'font-weight="bold">bold</tspan> and <tspan dy="10" font-style="italic">low</tspan></text>'),
    "xy_lists": svg('<text x="10 20 30 40" y="50 55 60 65" font-size="12" font-family="sans-serif">ABCDEF</text>'),
    "tspan_x_chunks": svg('<text y="30" font-size="10" text-anchor="middle" font-family="sans-serif">'
                          '<tspan x="50">first line</tspan><tspan x="50" dy="15">second, longer line</tspan></text>'),
    "spacing": svg('<text x="5" y="50" font-size="10" letter-spacing="2" word-spacing="5" font-family="sans-serif">'
                   'a b c de</text>'),
    "whitespace_collapse": svg('<text x="5" y="50" font-size="12" font-family="sans-serif">\n   spaced\t\t  out   '
                               '\n</text>'),
    "stroke_only": svg('<text x="5" y="60" font-size="30" fill="none" stroke="green" stroke-width="1" '
                       'font-family="sans-serif">Ok!</text>'),
    "transform_opacity_gradient": svg('<linearGradient id="g"><stop offset="0" stop-color="red"/><stop offset="1" '
                                      'stop-color="blue"/></linearGradient><text x="10" y="50" font-size="24" '
                                      'transform="rotate(-15 50 50)" opacity="0.7" fill="url(#g)" '
                                      'font-family="DejaVu Serif" font-weight="bold">Rotated</text>'),
    "clip_path_text": svg('<clipPath id="c"><text x="5" y="70" font-size="40" font-family="sans-serif">Clip</text>'
                          '</clipPath><rect width="100" height="100" fill="purple" clip-path="url(#c)"/>'),
}


def resvg_render(text: str, w: int, h: int, **fonts) -> np.ndarray:
    import imageio.v3 as iio
    import resvg_py

    png = resvg_py.svg_to_bytes(svg_string=text, width=w, height=h, languages=["en"], **{**FONTS, **fonts})
    img = iio.imread(io.BytesIO(bytes(png))).astype(np.float64) / 255.0
    return img[..., :3] * img[..., 3:] + (1.0 - img[..., 3:])


render = resvg.render_supported


@pytest.mark.parametrize("name", list(CASES))
def test_matches_resvg(name):
    img = render(CASES[name])
    assert resvg.psnr(img, resvg_render(CASES[name], img.shape[1], img.shape[0])) >= resvg.MIN_PSNR


def test_missing_family_warns_once_and_falls_back_to_serif():
    text = svg('<text x="5" y="40" font-size="20" font-family="NoSuchFont">Fall</text>'
               '<text x="5" y="80" font-size="20" font-family="NoSuchFont">back</text>')
    with pytest.warns(SVGFeatureWarning, match=r"NoSuchFont \(not installed; drawn with dejavu serif\) \(2 times\)"):
        scene = SVGScene.load(text)
    with torch.no_grad():
        img = scene.render(256).permute(1, 2, 0).double().numpy()
    assert resvg.psnr(img, resvg_render(text, 256, 256)) >= resvg.MIN_PSNR


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
    scene = SVGScene.load(CASES["plain_kerned"])
    assert "points" not in scene.parameters()


def test_text_path_warns():
    with pytest.warns(SVGFeatureWarning, match="textPath"):
        SVGScene.load(svg('<path id="p" d="M10 50H90"/><text font-family="sans-serif"><textPath href="#p">on a path'
                          '</textPath></text>'))
