"""``<image>`` from ``data:`` URIs (PNG, JPEG, SVG), radial gradient ``fr`` and ``context-fill``/``-stroke``.

Fidelity is asserted against resvg (``resvg-py``) at >= 30 dB, 256 px, as in
``tests/test_svg_resvg.py``; here also: files and URLs are never opened, nesting is bounded,
pixels are constants while the element's opacity is a parameter with correct gradients.
"""

import base64
import io

import numpy as np
import pytest
import torch

from pds.svg import SVGFeatureWarning, SVGScene
from pds.svg.image import decode_data_uri
from test_svg_raster import _fd_check, _weights

PIL = pytest.importorskip("PIL.Image")
resvg = pytest.importorskip("test_svg_resvg")  # skips without resvg-py

H = resvg.H
svg = resvg.svg


def _png(arr: np.ndarray, fmt: str = "PNG", **kw) -> str:
    buf = io.BytesIO()
    PIL.fromarray(arr).save(buf, fmt, **kw)
    return base64.b64encode(buf.getvalue()).decode()


def _pictures():
    yy, xx = np.mgrid[:64, :64]
    smooth = np.stack([xx * 4, yy * 4, ((xx - 32) ** 2 + (yy - 32) ** 2 < 400) * 200], -1).astype(np.uint8)
    tiny = np.zeros((8, 12, 4), np.uint8)
    tiny[..., 0] = np.arange(12) * 20
    tiny[..., 1] = np.arange(8)[:, None] * 30
    tiny[..., 2] = 128
    tiny[..., 3] = 255
    tiny[2:4, 2:5, 3] = 100  # translucent pixels: premultiplied sampling
    return _png(smooth), _png(smooth, "JPEG", quality=95), _png(tiny)


SMOOTH, JPEG, TINY = _pictures()
SUB = ('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10" viewBox="0 0 20 10"><rect width="20" '
       'height="10" fill="yellow"/><circle cx="10" cy="5" r="5" fill="blue"/></svg>')
SUB64 = base64.b64encode(SUB.encode()).decode()
SUB_URL = SUB.replace('"', "'").replace("<", "%3C").replace(">", "%3E").replace("#", "%23")

CASES = {
    "png_pixelated_none": svg(f'<image x="10" y="10" width="80" height="60" preserveAspectRatio="none" '
                              f'style="image-rendering:pixelated" href="data:image/png;base64,{TINY}"/>'),
    "png_meet": svg(f'<image x="10" y="10" width="80" height="50" href="data:image/png;base64,{SMOOTH}"/>'),
    "jpeg_slice_opacity": svg(f'<image x="10" y="10" width="80" height="40" preserveAspectRatio="xMinYMin slice" '
                              f'opacity="0.7" xlink:href="data:image/jpeg;base64,{JPEG}"/>'),
    "png_auto_size_transform": svg(f'<image transform="rotate(20 50 50) translate(18 18)" '
                                   f'href="data:image/png;base64,{SMOOTH}"/>'),
    "png_clip_path": svg(f'<clipPath id="c"><circle cx="50" cy="50" r="35"/></clipPath><image clip-path="url(#c)" '
                         f'width="100" height="100" href="data:image/png;base64,{SMOOTH}"/>'),
    "svg_base64": svg(f'<image x="10" y="20" width="80" height="60" href="data:image/svg+xml;base64,{SUB64}"/>'),
    "svg_percent_encoded_none": svg('<image x="10" y="20" width="80" height="60" preserveAspectRatio="none" '
                                    f'href="data:image/svg+xml;utf8,{SUB_URL}"/>'),
    "fr": svg('<radialGradient id="g" fr="0.2" r="0.5"><stop offset="0" stop-color="red"/><stop offset="1" '
              'stop-color="blue"/></radialGradient><rect x="10" y="10" width="80" height="80" fill="url(#g)"/>'),
    "fr_focal_reflect": svg('<radialGradient id="g" fx="0.35" fy="0.4" fr="0.1" r="0.3" spreadMethod="reflect">'
                            '<stop offset="0" stop-color="yellow"/><stop offset="1" stop-color="green"/>'
                            '</radialGradient><rect x="10" y="10" width="80" height="80" fill="url(#g)"/>'),
    "context_in_marker": svg('<marker id="m" markerWidth="6" markerHeight="6" refX="3" refY="3"><circle cx="3" cy="3" '
                             'r="2" fill="context-stroke" stroke="context-fill" stroke-width="0.5"/></marker><path '
                             'd="M20 50 L50 20 L80 50" fill="yellow" stroke="purple" stroke-width="3" '
                             'marker-start="url(#m)" marker-mid="url(#m)" marker-end="url(#m)"/>'),
    "context_in_use": svg('<defs><g id="s"><circle cx="20" cy="20" r="15" fill="context-fill" stroke="context-stroke" '
                          'stroke-width="4"/></g></defs><use href="#s" fill="red" stroke="blue"/><use href="#s" x="40" '
                          'y="40" fill="green" stroke="orange"/>'),
}


render = resvg.render_supported


@pytest.mark.parametrize("name", list(CASES))
def test_matches_resvg(name):
    img = render(CASES[name])
    ref = resvg.resvg_render(CASES[name], img.shape[1], img.shape[0])
    assert resvg.psnr(img, ref) >= resvg.MIN_PSNR


def test_slice_is_clipped_to_the_viewport():
    img = render(CASES["jpeg_slice_opacity"])
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
        assert resvg.psnr(again.render(64).numpy(), scene.render(64).numpy()) >= 40


def test_context_fill_follows_the_shapes_fill_parameter():
    scene = SVGScene.load(CASES["context_in_use"], dtype=torch.float64)
    fills = scene.parameters()["fill"]
    # the two uses' fills and strokes are the parameters the instanced circle paints with
    assert len(fills) == 2 and len(scene.parameters()["stroke"]) == 2
    w = _weights(16, 16)
    _fd_check(lambda: (scene.render(16) * w).sum(), fills[:1])


def test_context_paint_outside_a_marker_or_use_warns():
    with pytest.warns(SVGFeatureWarning, match="context-fill outside"):
        SVGScene.load(svg('<rect width="10" height="10" fill="context-fill"/>'))
