"""The SVG edit's own choices (pds.svg.editing): the outline-keeping term and how it is resolved."""

import math
from types import SimpleNamespace

import pytest
import torch

from pds.priors.metadata import EditDefaults, MetadataError
from pds.svg import SVGScene
from pds.svg.editing import _EditRenderer, _laplacian, outline_term

STAR = ('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        '<rect id="bg" width="64" height="64" fill="#fff"/>'
        '<path id="star" d="M32 10 L38 26 L54 26 L41 36 L46 52 L32 42 L18 52 L23 36 L10 26 L26 26 Z" fill="#235adc"/>'
        '<circle id="dot" cx="10" cy="10" r="4" fill="red"/></svg>')


def _scene(**kw):
    return SVGScene.load(STAR, render_size=32, optimize=["points", "fill"], **kw)


def test_laplacian_closed_and_open():
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    d = _laplacian(square, closed=True)
    # each corner sits half a diagonal away from the midpoint of its neighbours
    assert d.shape == (4, 2)
    assert torch.allclose(d.norm(dim=1), torch.full((4,), math.sqrt(0.5)))
    line = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 1.0]])
    d = _laplacian(line, closed=False)
    assert d.shape == (2, 2)
    assert torch.allclose(d[0], torch.zeros(2)) and d[1, 1] < 0


def test_outline_term_zero_at_source_and_translation_free():
    scene = _scene()
    term = outline_term(scene, 0.5)
    assert term is not None
    assert float(term().detach()) == 0.0
    with torch.no_grad():
        for t in scene.parameters()["points"]:
            if t.dim() == 2:  # path control points (sizes and radii are "points" too, but not positions)
                t += 3.0  # moving an element keeps its outline's shape
    assert float(term().detach()) == pytest.approx(0.0, abs=1e-6)


def test_outline_term_charges_twists_and_scales_with_weight_and_pixels():
    scene = _scene()
    star = scene.document.params[[i for i, p in enumerate(scene.document.params)
                                  if p.kind == "points" and p.tensors()[0].shape[-1:] == (2,)
                                  and p.tensors()[0].dim() == 2][0]].tensors()[0]
    term1, term2 = outline_term(scene, 1.0), outline_term(scene, 2.0)
    with torch.no_grad():
        star[0, 0] += 1.0  # one user unit = 8 px at 512 px for this 64-unit document
    v1, v2 = float(term1().detach()), float(term2().detach())
    assert v1 > 0 and v2 == pytest.approx(2 * v1)
    # the moved point's own δ changes by 8 px, each neighbour's by 4 px: 64 + 16 + 16
    assert v1 == pytest.approx(96.0, rel=1e-4)
    term1().backward()
    assert star.grad is not None and float(star.grad.abs().sum()) > 0


def test_outline_term_off_and_frozen_geometry():
    assert outline_term(_scene(), 0.0) is None
    colour_only = SVGScene.load(STAR, render_size=32, optimize=["fill"])
    assert outline_term(colour_only, 1.0) is None
    only_dot = SVGScene.load(STAR, render_size=32, optimize=["points"], only=["dot"])
    term = outline_term(only_dot, 1.0)  # the circle's cubic outline: radius changes cost, moves do not
    assert term is not None and float(term().detach()) == 0.0


def test_position_weight_holds_each_outline_in_place():
    """The centroid spring charges a move (which the differential coordinates leave free) by
    ``weight * |Δc|²`` in 512-px pixels, a circle's centre included, and pulls it back."""
    only_dot = SVGScene.load(STAR, render_size=32, optimize=["points"], only=["dot"])
    centre = next(t for t in only_dot.parameters()["points"] if t.shape == (2,))
    term = outline_term(only_dot, 0.0, position_weight=0.5)
    assert term is not None and float(term().detach()) == 0.0
    with torch.no_grad():
        centre += torch.tensor([1.0, 0.0])  # 1 user unit = 8 px at 512 px
    assert float(term().detach()) == pytest.approx(0.5 * 64.0, rel=1e-4)
    term().backward()
    assert centre.grad[0] > 0 and abs(float(centre.grad[1])) < 1e-6  # downhill is back to the source
    scene = _scene()
    both, shape_only = outline_term(scene, 1.0, position_weight=0.1), outline_term(scene, 1.0)
    with torch.no_grad():
        for t in scene.parameters()["points"]:
            if t.dim() == 2:
                t += 3.0
    assert float(shape_only().detach()) == pytest.approx(0.0, abs=1e-6)
    assert float(both().detach()) == pytest.approx(0.1 * 24.0 ** 2 * 2, rel=1e-4)  # one subpath, 24 px in x and y


def test_position_weight_resolved_like_the_outline_term():
    from pds.priors.metadata import PriorMetadata
    from pds.svg.editing import DEFAULT_POSITION_WEIGHT, resolve_settings

    assert EditDefaults.from_json({"position_weight": 0.01}).position_weight == 0.01
    with pytest.raises(MetadataError, match="position_weight"):
        EditDefaults.from_json({"position_weight": -1})
    prior = SimpleNamespace(metadata=PriorMetadata.from_json(
        {"edit": {"position_weight": 0.01, "shape_words": ["circle", "square"]}}))
    assert resolve_settings(prior, prompts=("a red circle", "a blue circle")).position_weight == 0.01
    assert resolve_settings(prior, prompts=("a red circle", "a red square")).position_weight == 0.0
    assert resolve_settings(prior, prompts=("a red circle", "a red square"), position_weight=0.2).position_weight == 0.2
    assert resolve_settings(SimpleNamespace(metadata=PriorMetadata.from_json({}))).position_weight == DEFAULT_POSITION_WEIGHT
    with pytest.raises(ValueError, match="position weight"):
        resolve_settings(prior, position_weight=float("inf"))
    assert PriorMetadata.from_json({"edit": {"position_weight": 0.01}}).to_json()["edit"]["position_weight"] == 0.01


def test_edit_renderer_adds_regularization_and_repeats():
    scene = _scene()
    r = _EditRenderer(scene, 3, outline_term(scene, 1.0))
    assert r.render().shape[0] == 3
    assert float(r.regularization().detach()) == 0.0
    assert _EditRenderer(scene, 1).regularization() is None
    assert _EditRenderer(scene, 1).render().shape == scene.render().shape


def test_shape_weight_metadata():
    assert EditDefaults.from_json({"shape_weight": 0.02}).shape_weight == 0.02
    assert EditDefaults.from_json({}).shape_weight is None
    with pytest.raises(MetadataError, match="shape_weight"):
        EditDefaults.from_json({"shape_weight": -1})
    with pytest.raises(MetadataError, match="shape_weight"):
        EditDefaults.from_json({"shape_weight": "much"})


def test_adam_beta1_metadata():
    assert EditDefaults.from_json({"adam_beta1": 0.98}).adam_beta1 == 0.98
    for bad in (1.0, -0.1, "fast"):
        with pytest.raises(MetadataError, match="adam_beta1"):
            EditDefaults.from_json({"adam_beta1": bad})


def test_resolve_settings_reads_the_prior_metadata():
    from types import SimpleNamespace

    from pds.priors.metadata import PriorMetadata
    from pds.svg.editing import DEFAULT_ADAM_BETA1, DEFAULT_SHAPE_WEIGHT, resolve_settings

    def prior_with(edit):
        return SimpleNamespace(metadata=PriorMetadata.from_json({"edit": edit}))

    s = resolve_settings(prior_with({"shape_weight": 0.02, "adam_beta1": 0.98, "guidance_scale": 50}))
    assert (s.shape_weight, s.adam_beta1, s.guidance_scale) == (0.02, 0.98, 50.0)
    s = resolve_settings(prior_with({"shape_weight": 0.02}), shape_weight=0.0)
    assert s.shape_weight == 0.0  # the user's value wins, 0 included
    s = resolve_settings(prior_with({}))
    assert (s.shape_weight, s.adam_beta1) == (DEFAULT_SHAPE_WEIGHT, DEFAULT_ADAM_BETA1)
    with pytest.raises(ValueError, match="shape weight"):
        resolve_settings(prior_with({}), shape_weight=float("nan"))


def test_shape_edits_turn_the_outline_term_off():
    from types import SimpleNamespace

    from pds.priors.metadata import PriorMetadata
    from pds.svg.editing import asks_for_new_shape, resolve_settings

    words = ("circle", "square", "star")
    assert asks_for_new_shape(words, "a red circle", "a red square")
    assert not asks_for_new_shape(words, "a red circle", "a blue circle on a yellow background")
    assert not asks_for_new_shape(None, "a red circle", "a red square")  # a prior that names no shapes
    prior = SimpleNamespace(metadata=PriorMetadata.from_json({"edit": {"shape_weight": 0.02, "shape_words": list(words)}}))
    assert resolve_settings(prior, prompts=("a red circle", "a red square")).shape_weight == 0.0
    assert resolve_settings(prior, prompts=("a red circle", "a blue circle")).shape_weight == 0.02
    assert resolve_settings(prior, prompts=("a red circle", "a red square"), shape_weight=0.5).shape_weight == 0.5
    assert PriorMetadata.from_json({"edit": {"shape_words": ["Circle"]}}).edit.shape_words == ("circle",)
    assert PriorMetadata.from_json({"edit": {"shape_words": ["circle"]}}).to_json()["edit"]["shape_words"] == ["circle"]


def test_background_phrases_decide_whether_the_background_is_asked_for():
    from pds.svg.editing import asks_for_new_background

    assert not asks_for_new_background("a red circle", "a blue circle")
    assert asks_for_new_background("a red circle", "a red circle on a yellow background")
    assert asks_for_new_background("a red circle on a yellow background", "a red circle")
    assert asks_for_new_background("a red circle on a yellow background", "a red circle on a blue background")
    assert not asks_for_new_background("a red circle on a yellow background", "a green circle on a yellow background")
    assert not asks_for_new_background("a red circle on the yellow background", "a blue circle, on a yellow backdrop")
    assert asks_for_new_background("a cat, dark background", "a cat, bright background")


def test_background_items_find_the_page_not_content():
    from pds.svg.editing import background_items, kept_background

    assert background_items(_scene()) == [0]  # the full-page rect, not the star or the dot
    head = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">'
    star = '<path d="M32 10 L54 26 L46 52 L18 52 L10 26 Z" fill="blue"/>'
    cases = {
        "path page": ('<path d="M-1 -1 H65 V65 H-1 Z" fill="#eee"/>' + star, [0]),
        "page under a transform": ('<rect width="32" height="32" transform="scale(2)" fill="#eee"/>' + star, [0]),
        "two pages": ('<rect width="64" height="64" fill="#eee"/><rect width="64" height="64" fill="red" '
                      'opacity="0.5"/>' + star, [0, 1]),
        "a page drawn over content": (star + '<rect width="64" height="64" fill="red" opacity="0.2"/>', []),
        "a rect short of the page": ('<rect width="64" height="60" fill="#eee"/>' + star, []),
        "a rotated square": ('<rect x="-10" y="-10" width="84" height="84" transform="rotate(45 32 32)" fill="#eee"/>'
                             + star, []),
        "a clipped page": ('<clipPath id="c"><circle cx="32" cy="32" r="20"/></clipPath>'
                           '<rect width="64" height="64" fill="#eee" clip-path="url(#c)"/>' + star, []),
        "no page": (star, []),
    }
    for name, (body, expected) in cases.items():
        assert background_items(SVGScene.load(head + body + "</svg>", render_size=32)) == expected, name
    only_page = SVGScene.load(head + '<rect width="64" height="64" fill="#eee"/></svg>', render_size=32)
    assert background_items(only_page) == [0] and kept_background(only_page) == []  # the page is the picture


def _what_moves(src: str, tgt: str, mode: str):
    """A real 6-step edit of the star scene: ``(settings, page moved, any other shape moved)``."""
    import pds
    from pds.svg.editing import edit_scene, resolve_settings

    prior = pds.load_prior("pds-tiny")
    scene = _scene()
    scene.render_size = prior.resolution

    def state():  # the page's fill; every other shape's fill and outline
        return (scene.items[0].fill.rgba.detach().clone(),
                [t.detach().clone() for item in scene.items[1:]
                 for t in (item.fill.rgba, *(s.points for s in item.geometry.subpaths()))])

    page0, rest0 = state()
    settings = resolve_settings(prior, steps=6, prompts=(src, tgt), kinds=("points", "fill"), background=mode)
    edit_scene(scene, prior, src, tgt, settings, progress=False)
    page1, rest1 = state()
    return settings, not torch.equal(page0, page1), not all(torch.equal(a, b) for a, b in zip(rest0, rest1))


def test_keep_background_freezes_exactly_the_page():
    """With ``keep_background`` a real edit leaves the page's fill bit for bit and still moves the
    star; ``"free"`` lets the page move too (the reference's behaviour)."""
    from pds.priors.metadata import PriorMetadata
    from pds.svg.editing import resolve_settings

    settings, page, rest = _what_moves("a blue star", "a yellow star", "auto")
    assert settings.keep_background and not settings.keep_foreground and (page, rest) == (False, True)
    settings, page, rest = _what_moves("a blue star", "a yellow star", "free")
    assert not settings.keep_background and (page, rest) == (True, True)
    with pytest.raises(ValueError, match="background mode"):
        resolve_settings(SimpleNamespace(metadata=PriorMetadata.from_json({})), background="sometimes")


def test_vector_colours_metadata():
    assert EditDefaults.from_json({"vector_colours": True}).vector_colours is True
    assert EditDefaults.from_json({}).vector_colours is None
    from pds.priors.metadata import PriorMetadata as _M

    assert "edit" not in _M.from_json({}).to_json()  # an unset flag writes nothing
    for bad in ("yes", 1):
        with pytest.raises(MetadataError, match="vector_colours"):
            EditDefaults.from_json({"vector_colours": bad})
    from pds.priors.metadata import PriorMetadata

    assert PriorMetadata.from_json({"edit": {"vector_colours": True}}).to_json()["edit"]["vector_colours"] is True


def test_vector_colours_step_along_the_gradient_not_its_sign_pattern():
    """Adam's first step moves every colour channel by exactly its learning rate (the sign of the
    gradient); with ``vector_colours`` the colour moves parallel to its gradient instead, so the
    channels move by different amounts, and the frozen alpha stays."""
    import dataclasses

    import pds
    from pds.svg.editing import edit_scene, resolve_settings

    prior = pds.load_prior("pds-tiny")
    moves = {}
    for vector in (False, True):
        scene = SVGScene.load(STAR, render_size=prior.resolution, optimize=["fill"], only=["star"])
        before = scene.items[1].fill.rgba.detach().clone()
        settings = dataclasses.replace(resolve_settings(prior, steps=1, prompts=("a blue star", "a yellow star"),
                                                        kinds=("fill",)), vector_colours=vector)
        edit_scene(scene, prior, "a blue star", "a yellow star", settings, progress=False)
        moves[vector] = (scene.items[1].fill.rgba.detach() - before).abs()
    adam, vector = moves[False], moves[True]
    assert adam[3] == 0 and vector[3] == 0  # alpha frozen either way
    assert torch.allclose(adam[:3], adam[:3].max().expand(3), rtol=1e-3)  # lr in every channel
    assert vector[:3].max() > 0 and vector[:3].min() < 0.8 * vector[:3].max()  # the gradient's direction


def test_only_a_new_background_is_told_apart_from_other_edits():
    from pds.svg.editing import _without_background, asks_only_for_new_background

    assert _without_background("a red circle on a yellow background") == ["a", "red", "circle"]
    assert _without_background("a green square, gray background") == ["a", "green", "square"]
    assert asks_only_for_new_background("a red circle", "a red circle on a yellow background")
    assert asks_only_for_new_background("a red circle on a white background", "a red circle on a yellow background")
    assert not asks_only_for_new_background("a red circle", "a blue circle on a yellow background")
    assert not asks_only_for_new_background("a red circle", "a blue circle")
    assert not asks_only_for_new_background("a red circle on a yellow background", "a red circle on a yellow background")


def test_a_new_background_leaves_every_other_shape_bit_identical():
    """``"a blue star"`` -> ``"a blue star on a yellow background"``: the page moves, the star and
    the dot do not; with ``background="free"`` the star moves too; a picture without a page
    freezes nothing (there would be nothing left to edit)."""
    from pds.svg.editing import kept_foreground

    settings, page, rest = _what_moves("a blue star", "a blue star on a yellow background", "auto")
    assert settings.keep_foreground and not settings.keep_background and (page, rest) == (True, False)
    settings, page, rest = _what_moves("a blue star", "a blue star on a yellow background", "free")
    assert not settings.keep_foreground and (page, rest) == (True, True)
    head = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">'
    no_page = SVGScene.load(head + '<circle cx="32" cy="32" r="9" fill="red"/></svg>', render_size=32)
    assert kept_foreground(no_page) == []


def test_gradient_space_metadata():
    assert EditDefaults.from_json({"gradient_space": "image"}).gradient_space == "image"
    assert EditDefaults.from_json({}).gradient_space is None
    with pytest.raises(MetadataError, match="gradient_space"):
        EditDefaults.from_json({"gradient_space": "pixels"})


def test_page_guidance_interval_applies_to_background_only_edits():
    from pds.priors.metadata import PriorMetadata
    from pds.svg.editing import resolve_settings

    meta = PriorMetadata.from_json({"edit": {"page_guidance_interval": [0.7, 1.0]}})
    assert meta.edit.page_guidance_interval == (0.7, 1.0)
    assert meta.to_json()["edit"]["page_guidance_interval"] == [0.7, 1.0]
    for bad in ([0.9, 0.5], [0.5], "high", [0.2, 1.2], [True, 1]):
        with pytest.raises(MetadataError, match="page_guidance_interval"):
            EditDefaults.from_json({"page_guidance_interval": bad})
    prior = SimpleNamespace(metadata=meta)
    page = ("a green square", "a green square on a gray background")
    assert resolve_settings(prior, prompts=page).guidance_interval == (0.7, 1.0)
    assert resolve_settings(prior, prompts=page, background="free").guidance_interval == (0.7, 1.0)
    assert resolve_settings(prior, prompts=("a red circle", "a blue circle")).guidance_interval is None
    assert resolve_settings(prior, prompts=("a red circle", "a blue circle on a gray background")).guidance_interval is None
    assert resolve_settings(prior).guidance_interval is None
    assert resolve_settings(prior, prompts=("a red circle", "a blue circle"),
                            guidance_interval=(0.2, 0.9)).guidance_interval == (0.2, 0.9)
    with pytest.raises(ValueError, match="guidance interval"):
        resolve_settings(prior, guidance_interval=(0.9, 0.2))
