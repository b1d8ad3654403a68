"""``<image>`` from ``data:`` URIs (PNG, JPEG, SVG) and ``context-fill``/``-stroke``: behaviour and gradients.

Fidelity against resvg (>= 30 dB at 256 px) is the feature corpus, ``tests/data/svg/features/``
``image/``, ``gradient/radial_fr*`` and ``context_paint/`` (``tests/test_svg_corpus.py``); here:
files and URLs are never opened, nesting is bounded, pixels are constants while the element's
opacity is a parameter with correct gradients.
"""

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from pds.svg import SVGFeatureWarning, SVGScene
from pds.svg.image import decode_data_uri
from pds.testing import psnr, render_svg
from pds.testing import svg_document as svg
from test_svg_raster import _fd_check, _weights

PIL = pytest.importorskip("PIL.Image")

FEATURES = Path(__file__).parent / "data" / "svg" / "features"


def _smooth_png() -> str:
    """A 64 × 64 base64 PNG: two ramps and a disc."""
    yy, xx = np.mgrid[:64, :64]
    smooth = np.stack([xx * 4, yy * 4, ((xx - 32) ** 2 + (yy - 32) ** 2 < 400) * 200], -1).astype(np.uint8)
    buf = io.BytesIO()
    PIL.fromarray(smooth).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


SMOOTH = _smooth_png()


def test_slice_is_clipped_to_the_viewport():
    img = render_svg((FEATURES / "image" / "jpeg_slice_opacity.svg").read_text())
    assert np.allclose(img[200:, :], 1.0)  # below y = 50 (128 px) nothing is drawn
    assert not np.allclose(img[30:120, 30:200], 1.0)


@pytest.mark.parametrize("href", ["picture.png", "file:///etc/hostname", "http://example.com/a.png", "FILE"])
def test_files_and_urls_are_never_opened(tmp_path, monkeypatch, href):
    # a real, readable picture next to the SVG: it must still not be drawn
    pic = tmp_path / "picture.png"
    pic.write_bytes(base64.b64decode(SMOOTH))
    monkeypatch.chdir(tmp_path)
    href = pic.as_uri() if href == "FILE" else href
    text = svg(f'<image width="100" height="100" href="{href}"/>')
    with pytest.warns(SVGFeatureWarning, match="never opened"):
        scene = SVGScene.load(text)
    with torch.no_grad():
        assert torch.equal(scene.render(32), torch.ones(3, 32, 32))


@pytest.mark.parametrize("href, match", [("data:image/png;base64,@@@", "malformed"),
                                         ("data:image/png;base64,aGVsbG8=", "cannot be decoded"),
                                         ("data:image/svg+xml,%3Csvg", "unreadable SVG")])
def test_bad_data_warns_and_draws_nothing(href, match):
    with pytest.warns(SVGFeatureWarning, match=match):
        scene = SVGScene.load(svg(f'<image width="100" height="100" href="{href}"/>'))
    with torch.no_grad():
        assert torch.equal(scene.render(16), torch.ones(3, 16, 16))


def test_nested_svg_images_stop_at_the_depth_limit():
    inner = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" '
             'fill="red"/></svg>')
    for _ in range(6):  # each level wraps the previous one as an <image>
        b64 = base64.b64encode(inner.encode()).decode()
        inner = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                 f'<image width="10" height="10" href="data:image/svg+xml;base64,{b64}"/></svg>')
    with pytest.warns(SVGFeatureWarning, match="nested more than"):
        scene = SVGScene.load(inner)
    with torch.no_grad():
        assert torch.equal(scene.render(8), torch.ones(3, 8, 8))  # the red rect is past the limit


def test_data_uri_decoding():
    assert decode_data_uri("data:,A%20b") == ("", b"A b")
    assert decode_data_uri("data:image/png;base64,aGk=") == ("image/png", b"hi")
    assert decode_data_uri("data:image/png;base64,a G\nk=") == ("image/png", b"hi")  # wrapped base64
    assert decode_data_uri("picture.png") is None


def test_pixels_are_constants_and_opacity_is_a_parameter():
    text = svg(f'<image id="i" opacity="0.6" width="100" height="100" href="data:image/png;base64,{SMOOTH}"/>')
    scene = SVGScene.load(text, dtype=torch.float64)
    params = scene.parameters()
    assert list(params) == ["opacity"] and len(params["opacity"]) == 1
    w = _weights(16, 16)
    _fd_check(lambda: (scene.render(16) * w).sum(), params["opacity"])


def test_write_back_keeps_the_image_and_changes_its_opacity():
    text = svg(f'<image opacity="0.6" width="100" height="100" href="data:image/png;base64,{SMOOTH}"/>')
    scene = SVGScene.load(text)
    with torch.no_grad():
        scene.parameters()["opacity"][0].fill_(0.25)
    out = scene.to_svg()
    assert f"data:image/png;base64,{SMOOTH}" in out and 'opacity="0.25"' in out
    again = SVGScene.load(out)
    with torch.no_grad():
        assert psnr(again.render(64).numpy(), scene.render(64).numpy()) >= 40


def test_context_fill_follows_the_shapes_fill_parameter():
    scene = SVGScene.load((FEATURES / "context_paint" / "in_use.svg").read_text(), dtype=torch.float64)
    fills = scene.parameters()["fill"]
    # the two uses' fills and strokes are the parameters the instanced circle paints with
    assert len(fills) == 2 and len(scene.parameters()["stroke"]) == 2
    w = _weights(16, 16)
    _fd_check(lambda: (scene.render(16) * w).sum(), fills[:1])


def test_context_paint_outside_a_marker_or_use_warns():
    with pytest.warns(SVGFeatureWarning, match="context-fill outside"):
        SVGScene.load(svg('<rect width="10" height="10" fill="context-fill"/>'))
