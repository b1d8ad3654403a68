"""Layers (group opacity, clip paths, masks, blend modes), dashes and viewports: structure and gradients.

Fidelity against resvg is the feature corpus (``tests/test_svg_corpus.py``); here: what the parser builds, that the
optimisable values inside clip and mask content are parameters of the clipped element, and
central finite differences (<= 5 %) for a clip edge, a mask's luminance, a dash offset and a
group opacity.
"""

import warnings

import pytest
import torch

from pds.svg import SVGFeatureWarning, SVGScene
from pds.svg.dash import dash_subpaths
from pds.svg.geometry import UserSubpath
from pds.svg.raster import over_background, rasterize
from pds.svg.shapes import DrawGroup, Layer, SolidPaint, Subpath
from test_svg_raster import _fd_check, _weights

H = '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">'


def load(body: str, **kw) -> SVGScene:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SVGFeatureWarning)
        return SVGScene.load(H + body + "</svg>", dtype=torch.float64, **kw)


def image_loss(scene: SVGScene, size: int = 32):
    w = _weights(size, size)
    return lambda: (scene.render(size) * w).sum()


def test_group_opacity_is_one_layer_not_per_child():
    scene = load('<g opacity="0.5"><rect width="20" height="20" fill="#f00"/><rect x="10" y="10" width="20" '
                 'height="20" fill="#00f"/></g>')
    with torch.no_grad():
        img = scene.render(32)
    # where the two overlap, only the top (blue) shows, faded once over white
    assert img[:, 15, 15].tolist() == pytest.approx([0.5, 0.5, 1.0], abs=1e-6)
    nodes = scene.draw_groups(32, 32)
    assert len(nodes) == 1 and isinstance(nodes[0], Layer) and len(nodes[0].children) == 2


def test_plain_documents_keep_the_flat_fast_path():
    scene = load('<g><rect width="20" height="20" fill="#f00"/></g><circle cx="20" cy="20" r="5"/>')
    assert all(isinstance(n, DrawGroup) for n in scene.draw_groups(32, 32))


def test_clip_and_mask_content_are_parameters_of_the_clipped_element():
    scene = load('<clipPath id="c"><circle id="cc" cx="16" cy="16" r="10"/></clipPath>'
                 '<mask id="m"><rect id="mr" width="32" height="32" fill="#808080"/></mask>'
                 '<rect id="r" width="32" height="32" fill="red" clip-path="url(#c)" mask="url(#m)"/>')
    assert len(scene.items) == 1
    p = scene.parameters()
    assert len(p["points"]) == 3 + 2 + 3  # the rect (xy, size, radii), the clip circle (center, r), the mask rect
    assert len(p["fill"]) == 2  # the rect's fill and the mask rect's fill
    scene.select(["r"])  # selecting the clipped element selects what clips and masks it
    assert len(scene.parameters()["points"]) == 8


def test_fd_clip_edge():
    scene = load('<clipPath id="c"><circle cx="16" cy="16" r="9.3"/></clipPath>'
                 '<rect width="32" height="32" fill="#c04020" clip-path="url(#c)"/>')
    (clip_r,) = [t for t in scene.parameters()["points"] if t.shape == ()]  # the circle's radius
    _fd_check(image_loss(scene), [clip_r])


def test_fd_mask_luminance():
    scene = load('<mask id="m"><circle cx="16" cy="16" r="12" fill="#a0c040"/></mask>'
                 '<rect width="32" height="32" fill="#2040c0" mask="url(#m)"/>')
    mask_fill = scene.parameters()["fill"][-1]
    _fd_check(image_loss(scene), [mask_fill])


def test_fd_group_opacity_and_colour_inside_a_layer():
    scene = load('<g opacity="0.6"><rect width="20" height="20" fill="#f00"/><circle cx="18" cy="18" r="9" '
                 'fill="#0a0"/></g>')
    p = scene.parameters()
    _fd_check(image_loss(scene), [p["opacity"][0], p["fill"][1]])


def test_fd_dash_offset():
    pts = torch.tensor([[3.0, 8.0], [12.0, 2.0], [22.0, 28.0], [29.0, 12.0]], dtype=torch.float64)
    user = [UserSubpath(pts, torch.tensor([2]), False)]
    offset = torch.tensor(2.3, dtype=torch.float64, requires_grad=True)
    w = _weights(32, 32)
    color = SolidPaint(torch.tensor([0.1, 0.2, 0.9, 1.0], dtype=torch.float64))

    def loss():
        dashes = dash_subpaths(user, [6.0, 3.5], offset)
        subs = [Subpath(d.points, d.num_control_points, d.closed) for d in dashes]
        g = DrawGroup(subpaths=subs, stroke=color, stroke_width=torch.tensor(2.5, dtype=torch.float64))
        return (over_background(rasterize([g], 32, 32)) * w).sum()

    _fd_check(loss, [offset])


def test_dashes_follow_the_pattern_and_restart_per_subpath():
    line = [UserSubpath(torch.tensor([[0.0, 0.0], [10.0, 0.0]]), torch.tensor([0]), False)] * 2
    dashes = dash_subpaths(line, [3.0, 1.0], 1.0)
    ends = [(round(float(d.points[0, 0]), 6), round(float(d.points[-1, 0]), 6)) for d in dashes]
    assert ends[:3] == [(0.0, 2.0), (3.0, 6.0), (7.0, 10.0)] and ends[3:] == ends[:3]
    # pathLength rescales the pattern: 10 author units on a 10-long line of pathLength 5 → 20
    assert len(dash_subpaths(line[:1], [1.0, 1.0], 0.0, path_length=5.0)) == 3


def test_invalid_dasharray_is_solid_with_a_warning():
    with pytest.warns(SVGFeatureWarning, match="stroke-dasharray"):
        scene = SVGScene.load(H + '<path d="M2 2H30" stroke="#000" stroke-dasharray="4 -1"/></svg>')
    assert scene.items[0].dash is None


def test_missing_clip_reference_warns_and_draws_unclipped():
    with pytest.warns(SVGFeatureWarning, match="clip-path reference"):
        scene = SVGScene.load(H + '<rect width="32" height="32" fill="#f00" clip-path="url(#nope)"/></svg>')
    assert all(isinstance(n, DrawGroup) for n in scene.draw_groups(32, 32))


def test_recursive_clip_path_warns_and_does_not_hang():
    with pytest.warns(SVGFeatureWarning, match="recursive clip-path"):
        SVGScene.load(H + '<clipPath id="a" clip-path="url(#b)"><rect width="9" height="9"/></clipPath>'
                      '<clipPath id="b" clip-path="url(#a)"><rect width="9" height="9"/></clipPath>'
                      '<rect width="32" height="32" clip-path="url(#a)"/></svg>')


def test_unknown_blend_mode_warns():
    with pytest.warns(SVGFeatureWarning, match="mix-blend-mode hue"):
        SVGScene.load(H + '<rect width="32" height="32" style="mix-blend-mode:hue"/></svg>')
