"""SVGScene: rendering, parameters and selection, gradients, and structure-preserving writing."""

import math
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import torch

import pds
from pds.svg import KINDS, SVGScene

DATA = Path(__file__).parent / "data" / "svg"
SVG = "http://www.w3.org/2000/svg"
NS = f'xmlns="{SVG}"'

SCENE = f"""<svg {NS} xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 64 32" width="128" height="64">
  <!-- a comment that must survive -->
  <defs>
    <linearGradient id="grad">
      <stop offset="0" stop-color="#ff0000"/><stop offset="1" stop-color="#0000ff"/>
    </linearGradient>
  </defs>
  <g id="left" class="half" transform="translate(2 2)" opacity="0.9">
    <circle id="dot" cx="10" cy="10" r="8" fill="#00ff00" stroke="black" stroke-width="2"/>
    <path id="tri" d="M20 2 L30 26 L12 26 Z" style="fill: #ff8800; stroke-linejoin: round" data-x="keep"/>
  </g>
  <rect id="box" x="36" y="4" width="24" height="24" rx="3" fill="url(#grad)"/>
  <polyline id="zig" points="34 30 40 26 46 30" fill="none" stroke="#123456" stroke-width="1.5"/>
</svg>"""


@pytest.fixture
def scene():
    return SVGScene.load(SCENE)


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------

def test_render_shape_range_and_aspect(scene):
    img = scene.render(256)
    assert img.shape == (3, 128, 256) and img.dtype == torch.float32
    assert 0 <= img.min().item() and img.max().item() <= 1
    assert scene.render().shape == (3, 128, 256)  # default render_size 256
    scene.render_size = 64
    assert scene.render().shape == (3, 32, 64)
    # background is white where nothing is drawn; the circle's centre is green
    assert img[:, 2, 250].tolist() == [1, 1, 1]
    cx, cy = (2 + 10) * 4, (2 + 10) * 4
    g = img[:, cy, cx].tolist()
    assert g[1] > 0.95 and g[0] < 0.15 and g[2] < 0.15


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_render_rejects_bad_sizes(scene, size):
    with pytest.raises(ValueError, match="positive integer"):
        scene.render(size)


def test_render_is_differentiable_in_every_kind(scene):
    params = scene.parameters()
    assert set(params) == set(KINDS)
    for kind, tensors in params.items():
        for t in tensors:
            assert t.is_leaf and t.requires_grad, kind
    img = scene.render(64)
    (img * torch.linspace(0, 1, img.numel()).reshape(img.shape)).sum().backward()
    for kind, tensors in params.items():
        assert any(t.grad is not None and float(t.grad.abs().sum()) > 0 for t in tensors), kind
    # gradient stop colours get a gradient too
    stops = scene.items[2].fill.gradient.stops.colors
    assert stops.grad is not None and float(stops.grad.abs().sum()) > 0


def test_gradient_matches_finite_differences_float64():
    """Directional derivative of the render w.r.t. a circle's radius and a path point (float64)."""
    s = SVGScene.load(f'<svg {NS} viewBox="0 0 16 16"><circle cx="8" cy="8" r="5" fill="#3060c0"/>'
                      '<path d="M1 1 L7 2 L3 7 Z" fill="#c03030"/></svg>', dtype=torch.float64)
    circle, path = s.items[0].geometry, s.items[1].geometry
    weights = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def f():
        return (s.render(24) * weights).sum()

    f().backward()
    for tensor, index in ((circle.r, ()), (path.points, (1, 0)), (circle.center, (1,))):
        analytic = float(tensor.grad[index])
        eps = 1e-4
        with torch.no_grad():
            tensor[index] += eps
            up = float(f())
            tensor[index] -= 2 * eps
            down = float(f())
            tensor[index] += eps
        numeric = (up - down) / (2 * eps)
        assert analytic == pytest.approx(numeric, rel=0.02, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# parameters, selection, learning rates, projection
# ---------------------------------------------------------------------------------------------

def test_parameters_are_grouped_by_kind(scene):
    p = scene.parameters()
    assert list(p) == list(KINDS)
    n_points = {"dot": 2, "tri": 1, "box": 3, "zig": 1}
    assert len(p["points"]) == sum(n_points.values())
    assert [t.shape for t in p["fill"]] == [(4,), (4,), (2, 4)]  # dot, tri, gradient stops
    assert len(p["stroke"]) == 2 and len(p["stroke_width"]) == 2
    # one opacity per shape plus the group's
    assert len(p["opacity"]) == 5
    assert isinstance(scene, pds.Renderer)


def test_select_ids_freezes_the_rest(scene):
    scene.select(["dot"])
    p = scene.parameters()
    dot = scene.items[0]
    assert p["points"] == dot.geometry.tensors()
    assert p["fill"] == [dot.fill.rgba] and p["stroke"] == [dot.stroke.rgba]
    # the group's opacity is shared with "tri", so it stays frozen
    assert p["opacity"] == [dot.opacities[-1].value]
    assert not scene.items[1].geometry.points.requires_grad
    # a group id selects its children, and then the group opacity too
    scene.select(["left"], kinds=["opacity", "width"])
    p = scene.parameters()
    assert set(p) == {"opacity", "stroke_width"} and len(p["opacity"]) == 3
    # back to everything
    scene.select()
    assert all(t.requires_grad for ts in scene.parameters().values() for t in ts)


def test_select_errors(scene):
    with pytest.raises(ValueError, match="no painted element has id 'nope'.*dot"):
        scene.select(["nope"])
    with pytest.raises(ValueError, match="unknown parameter kind"):
        scene.select(kinds=["colour"])
    s = SVGScene.load(SCENE, only=["zig"], optimize="points,width")
    assert set(s.parameters()) == {"points", "stroke_width"}


def test_learning_rates_scale_with_the_drawing(scene):
    lr = scene.learning_rates
    assert lr["points"] == pytest.approx(0.8 * 64 / 512)
    assert lr["fill"] == lr["stroke"] == 0.01
    big = SVGScene.load(f'<svg {NS} viewBox="0 0 1024 512"><rect width="5" height="5"/></svg>')
    assert big.learning_rates["points"] == pytest.approx(1.6)


def test_project_clamps(scene):
    p = scene.parameters()
    with torch.no_grad():
        for t in p["fill"] + p["stroke"]:
            t.fill_(1.7)
        for t in p["opacity"]:
            t.fill_(-0.5)
        for t in p["stroke_width"]:
            t.fill_(-2)
        scene.items[0].geometry.r.fill_(-1)
        scene.items[2].geometry.size.fill_(-1)
    scene.project()
    assert all(t.max().item() == 1 for t in p["fill"] + p["stroke"])
    assert all(t.item() == 0 for t in p["opacity"] + p["stroke_width"])
    assert scene.items[0].geometry.r.item() == 0
    assert scene.items[2].geometry.size.tolist() == [0, 0]
    scene.render(32)  # still renders


def test_state_dict_roundtrip(scene):
    state = scene.state_dict()
    with torch.no_grad():
        scene.items[0].geometry.center.add_(3)
    scene.load_state_dict(state)
    assert scene.items[0].geometry.center.tolist() == [10, 10]


def test_optimize_with_a_distiller_moves_parameters(scene, tiny_prior):
    before = {k: [t.detach().clone() for t in v] for k, v in scene.parameters().items()}
    scene.render_size = 32
    d = pds.Distiller(tiny_prior, guidance_scale=10, generator=torch.Generator().manual_seed(0))
    result = d.optimize(scene, None, "a red circle", "a blue circle", steps=2, progress=False)
    assert result.steps == 2 and all(math.isfinite(v) for v in result.losses)
    after = scene.parameters()
    moved = [not torch.equal(a, b) for k in before for a, b in zip(before[k], after[k])]
    assert any(moved)
    for t in after["fill"] + after["opacity"]:
        assert 0 <= t.min().item() and t.max().item() <= 1  # projected


# ---------------------------------------------------------------------------------------------
# writing back
# ---------------------------------------------------------------------------------------------

def _attrs(text):
    root = ET.fromstring(text)
    return {el.get("id"): dict(el.attrib) for el in root.iter() if el.get("id")}


def test_save_without_changes_keeps_everything(scene, tmp_path):
    out = tmp_path / "same.svg"
    scene.save(out)
    text = out.read_text()
    assert _attrs(text) == _attrs(SCENE)
    assert "<!-- a comment that must survive -->" in text
    assert "ns0:" not in text and 'xmlns="http://www.w3.org/2000/svg"' in text
    assert 'xmlns:xlink="http://www.w3.org/1999/xlink"' in text
    assert [e.tag for e in ET.fromstring(text).iter()] == [e.tag for e in ET.fromstring(SCENE).iter()]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_save_rewrites_only_changed_attributes(scene):
    dot, tri, box, zig = scene.items
    with torch.no_grad():
        dot.geometry.center.copy_(torch.tensor([11.5, 9.25]))
        dot.fill.rgba.copy_(torch.tensor([0.2, 0.4, 0.6, 0.5]))
        tri.geometry.points[0] += 1
        tri.fill.rgba[0] = 0
        box.fill.gradient.stops.colors[1] = torch.tensor([0.0, 1.0, 0.0, 0.25])
        zig.stroke_width.value.fill_(3)
        dot.opacities[0].value.fill_(0.5)  # the group's opacity
    after = _attrs(scene.to_svg())
    before = _attrs(SCENE)
    assert after["dot"]["cx"] == "11.5" and after["dot"]["cy"] == "9.25" and after["dot"]["r"] == "8"
    assert after["dot"]["fill"] == "#336699" and after["dot"]["fill-opacity"] == "0.5"
    assert after["dot"]["stroke"] == "black"  # untouched value kept verbatim
    assert after["tri"]["d"].startswith("M21,3L30,26L12,26Z")
    assert after["tri"]["style"] == "fill:#008800;stroke-linejoin: round"  # updated inside style
    assert "fill" not in after["tri"] and after["tri"]["data-x"] == "keep"
    assert after["zig"]["stroke-width"] == "3" and after["zig"]["points"] == before["zig"]["points"]
    assert after["left"]["opacity"] == "0.5" and after["left"]["transform"] == "translate(2 2)"
    assert after["left"]["class"] == "half"
    assert after["box"] == before["box"]
    root = ET.fromstring(scene.to_svg())
    stops = root.findall(f".//{{{SVG}}}stop")
    assert stops[0].attrib == {"offset": "0", "stop-color": "#ff0000"}
    assert stops[1].attrib == {"offset": "1", "stop-color": "#00ff00", "stop-opacity": "0.25"}


def test_saved_file_reloads_to_the_same_parameters(scene):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for kind, ts in scene.parameters().items():
            for t in ts:
                t.add_(torch.rand(t.shape, generator=g, dtype=t.dtype) * 0.2)
    scene.project()
    again = SVGScene.load(scene.to_svg())
    for kind in KINDS:
        a, b = scene.all_parameters()[kind], again.all_parameters()[kind]
        for x, y in zip(a, b):
            tol = 1 / 255 if kind in ("fill", "stroke") else 1e-3
            assert torch.allclose(x.detach(), y.detach(), atol=tol), kind


def test_every_path_command_survives_regeneration():
    text = (DATA / "features" / "paths.svg").read_text()
    s = SVGScene.load(text)
    with torch.no_grad():
        for it in s.items:
            it.geometry.points.mul_(1.01)  # force rewriting every d
    again = SVGScene.load(s.to_svg())
    for a, b in zip(s.items, again.items):
        assert [l.ncp for l in a.geometry.layouts] == [l.ncp for l in b.geometry.layouts]
        assert torch.allclose(a.geometry.points.detach(), b.geometry.points.detach(), atol=1e-3)


def test_instanced_paint_is_written_on_the_use_element():
    text = (f'<svg {NS} xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 40 20"><defs>'
            '<circle id="c" r="5"/></defs><use id="u1" xlink:href="#c" x="10" y="10" fill="red"/>'
            '<use id="u2" xlink:href="#c" x="30" y="10" fill="blue"/></svg>')
    s = SVGScene.load(text)
    a, b = s.items
    assert a.geometry is b.geometry and a.fill is not b.fill
    with torch.no_grad():
        a.fill.rgba.copy_(torch.tensor([0.0, 1.0, 0.0, 1.0]))
        a.geometry.r.fill_(6)
    out = s.to_svg()
    attrs = _attrs(out)
    assert attrs["u1"]["fill"] == "#00ff00" and attrs["u2"]["fill"] == "blue"
    assert attrs["c"] == {"id": "c", "r": "6"}
    assert 'xlink:href="#c"' in out


def test_namespaces_stay_tidy():
    text = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:svg="http://www.w3.org/2000/svg" '
            'xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
            'xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd" viewBox="0 0 10 10" '
            'inkscape:version="1.0"><sodipodi:namedview id="nv"/>'
            '<rect id="r" width="5" height="5" xml:space="preserve" inkscape:label="box"/></svg>')
    s = SVGScene.load(text)
    with torch.no_grad():
        s.items[0].geometry.xy.add_(1)
    out = s.to_svg()
    assert re.search(r"ns\d+:", out) is None
    assert "<sodipodi:namedview" in out and 'inkscape:label="box"' in out and 'xml:space="preserve"' in out
    assert "<rect " in out and "<svg:" not in out
    assert _attrs(out)["r"]["x"] == "1"


def test_svg_without_namespace_is_written_without_one():
    s = SVGScene.load('<svg viewBox="0 0 10 10"><rect width="5" height="5"/></svg>')
    out = s.to_svg()
    assert "xmlns" not in out and "<rect" in out


def test_save_is_atomic(scene, tmp_path, monkeypatch):
    out = tmp_path / "out.svg"
    out.write_text("old")
    import pds.util.files as w

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(w.os, "replace", boom)
    with pytest.raises(OSError):
        scene.save(out)
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.svg"]


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, pds.svg; heavy = [m for m in ('svgelements', 'tinycss2', 'defusedxml', 'pds.svg.raster', "
            "'pds.svg.scene', 'cairosvg', 'click') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
