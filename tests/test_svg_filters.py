"""Filters: warnings, the filter region, and gradients.

Fidelity against resvg (>= 30 dB at 256 px) is the feature corpus,
``tests/data/svg/features/filter/`` (``tests/test_svg_corpus.py``).
"""

import warnings

import pytest
import torch

from pds.svg import SVGFeatureWarning, SVGScene
from pds.svg.raster.filters import gaussian_blur, shift
from pds.testing import render_svg as render
from pds.testing import svg_document as svg
from test_svg_raster import _fd_check, _weights

#: Two overlapping shapes under one filtered group.
BODY = '<rect x="25" y="25" width="50" height="50" fill="#3080f0"/><circle cx="50" cy="50" r="20" fill="red"/>'
#: 8 canvas pixels at 256 px for a 100-unit document.
D8 = "3.125"


def filtered(primitives: str, attrs: str = "", body: str = BODY) -> str:
    return svg(f'<filter id="f" {attrs}>{primitives}</filter><g filter="url(#f)">{body}</g>')


def css(value: str) -> str:
    return svg(f'<g style="filter:{value}">{BODY}</g>')


def test_unknown_primitive_warns_and_passes_the_source_through():
    text = filtered('<feTurbulence baseFrequency="0.05"/>', 'x="0" y="0" width="1" height="1"')
    with pytest.warns(SVGFeatureWarning, match="feTurbulence"):
        scene = SVGScene.load(text)
    with torch.no_grad():
        img = scene.render(64)
        plain = SVGScene.load(svg(BODY)).render(64)
    assert torch.allclose(img, plain, atol=1e-6)


@pytest.mark.parametrize("value", ["url(#missing)", "url(#r)"])
def test_reference_to_no_filter_warns_and_hides_the_element(value):
    with pytest.warns(SVGFeatureWarning, match="missing <filter>"):
        scene = SVGScene.load(svg(f'<rect id="r" width="10" height="10"/><g filter="{value}">{BODY}</g>'))
    with torch.no_grad():
        img = scene.render(64)
    assert torch.equal(img[:, 32, 32], torch.ones(3))  # the filtered group is not drawn
    assert img[:, 1, 1].max() < 0.01  # the rect is


def test_unknown_css_function_warns():
    with pytest.warns(SVGFeatureWarning, match="filter function"):
        SVGScene.load(css("url-ish(3)"))


def test_the_filter_region_clips():
    img = render(filtered('<feFlood flood-color="black"/>', 'x="0" y="0" width="0.5" height="1"'))
    # the flood fills the left half of the group's box (x 25..50 → 64..128 px) and nothing else
    assert img[128, 70].max() < 1e-6 and img[128, 140].tolist() == [1.0, 1.0, 1.0]


def test_blur_gradient_in_the_deviation_matches_finite_differences():
    gen = torch.Generator().manual_seed(0)
    img = torch.rand(4, 20, 24, generator=gen, dtype=torch.float64)
    w = torch.rand(4, 20, 24, generator=gen, dtype=torch.float64)
    sigma = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    _fd_check(lambda: (gaussian_blur(img, sigma, sigma * 0.6) * w).sum(), [sigma], eps=1e-5)


def test_offset_gradient_matches_finite_differences():
    gen = torch.Generator().manual_seed(1)
    img = torch.rand(4, 12, 12, generator=gen, dtype=torch.float64)
    w = torch.rand(4, 12, 12, generator=gen, dtype=torch.float64)
    d = torch.tensor([1.3, -0.4], dtype=torch.float64, requires_grad=True)
    _fd_check(lambda: (shift(img, d[0], d[1]) * w).sum(), [d], eps=1e-5)
    assert torch.equal(shift(img, 2, 0)[:, :, 2:], img[:, :, :-2])


def test_colours_under_a_filter_stay_differentiable():
    text = ('<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24"><filter id="f"><feGaussianBlur '
            'stdDeviation="1.5"/><feColorMatrix type="saturate" values="0.5"/></filter><g filter="url(#f)">'
            '<circle cx="12" cy="12" r="6" fill="#c04020"/></g></svg>')
    scene = SVGScene.load(text, dtype=torch.float64)
    w = _weights(24, 24)
    params = scene.parameters()
    _fd_check(lambda: (scene.render(24) * w).sum(), params["fill"] + params["points"][:1], eps=1e-6)


def test_css_drop_shadow_colour_and_opacity():
    img = render(css(f"drop-shadow({D8}px {D8}px rgba(0,0,255,0.5))"))
    # a pixel in the shadow only (just right of and below the rect's corner): half-transparent blue
    assert img[195, 195].tolist() == pytest.approx([0.5, 0.5, 1.0], abs=1e-6)


#: Hostile or broken values in the features of this file, images and text: each renders (finite
#: pixels) or warns, never a traceback.
BAD_INPUT = [
    '<filter id="f"><feGaussianBlur stdDeviation="1e300"/></filter><rect width="50" height="50" filter="url(#f)"/>',
    '<filter id="f"><feGaussianBlur stdDeviation="NaN"/></filter><rect width="50" height="50" filter="url(#f)"/>',
    '<filter id="f"><feOffset dx="1e308" dy="-1e308"/></filter><rect width="50" height="50" filter="url(#f)"/>',
    '<filter id="f" x="NaN" width="1e309"><feFlood/></filter><rect width="50" height="50" filter="url(#f)"/>',
    '<filter id="f" filterUnits="userSpaceOnUse" x="-1e300" width="1e301" height="1e300"><feFlood x="1e300"/>'
    '</filter><rect width="50" height="50" filter="url(#f)"/>',
    '<filter id="f"><feComponentTransfer><feFuncR type="gamma" amplitude="0" exponent="-3"/></feComponentTransfer>'
    '</filter><rect width="50" height="50" filter="url(#f)"/>',
    '<filter id="f"><feComposite operator="arithmetic" k1="1e308" k4="-1e308"/></filter><rect width="50" '
    'height="50" filter="url(#f)"/>',
    '<filter id="f"/><rect width="50" height="50" filter="url(#f)"/>',
    '<g filter="url(#a) blur("/><rect filter="drop-shadow()" width="5" height="5"/><rect filter="blur(-3px)" '
    'width="5" height="5"/>',
    '<image width="-5" height="10" href="data:image/png;base64,iVBORw0KGgo="/><image x="NaN" href="data:,"/>',
    '<image width="1e308" height="1e308" href="data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22/%3E"/>',
    '<text x="NaN 1e308" font-size="1e30">Hi</text><text font-size="-5">x</text><text></text><text>   </text>',
    '<text x="10" y="10" font-family="">\u0627\u0644\U0001F600</text>',
    '<radialGradient id="g" fr="2" r="0.5"><stop/><stop offset="1" stop-color="red"/></radialGradient><rect '
    'width="50" height="50" fill="url(#g)"/>',
    # a shape entirely off the canvas before another one (once wrote into the next layer's cells)
    '<path d="M1e30 -1e30 L2e30 -1e30 L2e30 0z"/><rect width="5" height="5"/>',
]


@pytest.mark.parametrize("body", BAD_INPUT)
def test_bad_values_render_or_warn(body):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SVGFeatureWarning)
        scene = SVGScene.load(svg(body))
    with torch.no_grad():
        assert bool(torch.isfinite(scene.render(48)).all())


def test_an_off_canvas_shape_leaves_the_next_one_intact():
    with torch.no_grad():
        img = SVGScene.load(svg(BAD_INPUT[-1])).render(100)
    assert img[:, 2, 2].tolist() == [0.0, 0.0, 0.0] and img[:, 50, 50].tolist() == [1.0, 1.0, 1.0]


def test_a_curve_near_the_float_limit_renders():
    # its flattening estimate overflowed to NaN, which became a negative piece count
    with torch.no_grad():
        img = SVGScene.load(svg('<path d="M0 0 Q 1e29 1e29 2e29 0"/><rect width="5" height="5"/>')).render(48)
    assert bool(torch.isfinite(img).all()) and img[:, 1, 1].tolist() == [0.0, 0.0, 0.0]
