"""Feature fidelity against resvg (the reference renderer, PyPI ``resvg-py``): the feature corpus.

Every file ``tests/data/svg/features/<feature>/<variant>.svg`` is one small SVG written for this
project, exercising one variant of one feature (the XML comment at its top says which). Each is
rendered by us and by resvg at 256 px (longer side; a file may say ``@size N`` with the reason)
and must reach >= 30 dB PSNR, RGB over white. Loading it must give no
:class:`~pds.svg.SVGFeatureWarning` (every case claims full support) unless the file says
``@warns TEXT``, in which case exactly that warning is expected.

Where resvg departs from the specification (``pathLength`` for dashes, the CSS ``transform``
property) resvg renders the sibling ``<variant>.resvg.svg`` instead: the same picture spelled the
way it supports.  resvg is given ``languages=["en"]`` (its command-line default) and DejaVu for
the generic font families (what :mod:`pds.svg.text` maps them to).  Text cases are skipped where
DejaVu is not installed (``apt-get install fonts-dejavu-core``).

The comparison is :func:`pds.testing.resvg_psnr`, shared with ``benchmarks/svg_coverage.py``,
which writes the per-feature table ``benchmarks/results/svg_coverage.md``.

Write-back over the same corpus (no resvg needed; renders at :data:`ROUND_TRIP_SIZE` px):

* unchanged: a scene loaded with every kind optimisable and saved unchanged writes the same
  document: equal canonical XML (C14N 2.0 with comments: same elements in the same order, same
  attributes, text, comments and processing instructions, also those outside the root), so only
  the formatting :mod:`pds.svg.write` documents may differ;
* edited: every optimisable value nudged (:func:`_nudge`) renders the same in memory and after
  save and reload (>= :data:`MIN_ROUND_TRIP_PSNR` dB), and the written file differs from the input
  only in the attributes write-back owns (:func:`_assert_only_owned_attributes_changed`): clip
  paths, masks, markers, patterns, filters, images, ``use``/``href``, ids, transforms and every
  other feature are kept as they were.
"""

import warnings
from xml.etree import ElementTree as ET

from pathlib import Path

import pytest

import torch

from pds.testing import MIN_FEATURE_PSNR, dejavu_installed, feature_cases, psnr, resvg_psnr

FEATURES = Path(__file__).parent / "data" / "svg" / "features"
CASES = feature_cases(FEATURES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_feature_matches_resvg(case):
    pytest.importorskip("resvg_py")
    pytest.importorskip("imageio.v3")
    if case.has_text and not dejavu_installed():  # pragma: no cover - machine without DejaVu
        pytest.skip("DejaVu fonts are not installed")
    assert resvg_psnr(case) >= MIN_FEATURE_PSNR


def test_every_case_says_what_it_exercises_and_references_have_a_case():
    assert len(CASES) >= 116 and len({c.feature for c in CASES}) >= 15
    for case in CASES:
        assert case.text.startswith("<!--") and case.description, case.name
        assert case.reference.lstrip().startswith("<!--"), case.name
    for ref in FEATURES.glob("*/*.resvg.svg"):
        assert ref.with_name(ref.name.replace(".resvg.svg", ".svg")).is_file(), ref


# ---------------------------------------------------------------------------------------------
# write-back
# ---------------------------------------------------------------------------------------------

#: Longer side (px) of the write-back renders: small, since both sides are our own renderer.
ROUND_TRIP_SIZE = 64
#: An edited scene rendered in memory and after save + reload must agree to this PSNR (dB).
MIN_ROUND_TRIP_PSNR = 40.0
#: Presentation properties write-back may rewrite on any element (the declaring one).
PAINT_PROPERTIES = {"fill", "stroke", "fill-opacity", "stroke-opacity", "stroke-width", "opacity", "stop-color",
                    "stop-opacity"}
#: Geometry attributes write-back may rewrite, on shape elements only.
SHAPE_ATTRIBUTES = {"path": {"d"}, "circle": {"cx", "cy", "r"}, "ellipse": {"cx", "cy", "rx", "ry"},
                    "rect": {"x", "y", "width", "height", "rx", "ry"}, "line": {"x1", "y1", "x2", "y2"},
                    "polyline": {"points"}, "polygon": {"points"}}
MARKER_PROPERTIES = ("marker", "marker-start", "marker-mid", "marker-end")


def _load(source, **kw):
    from pds.svg import SVGFeatureWarning, SVGScene

    with warnings.catch_warnings():  # which warnings a case gives is test_feature_matches_resvg's business
        warnings.simplefilter("ignore", SVGFeatureWarning)
        return SVGScene.load(source, **kw)


def _render(scene):
    with torch.no_grad():
        return scene.render(ROUND_TRIP_SIZE).permute(1, 2, 0).double().numpy()


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _marker_hosts(scene) -> set:
    """Indices of the items that draw markers: a shape whose element (or an ancestor) declares a
    marker property, or any marker-taking shape when a style sheet mentions markers."""
    root = scene.document.root
    parent = {child: el for el in root.iter() for child in el}
    sheet = any(_local(el.tag) == "style" and "marker" in (el.text or "") for el in root.iter())

    def declares(el):
        return any(el.get(p) is not None for p in MARKER_PROPERTIES) or "marker" in (el.get("style") or "")

    hosts = set()
    for item in scene.items:
        if _local(item.element.tag) not in ("path", "line", "polyline", "polygon"):
            continue
        el = item.element
        while el is not None and not (sheet or declares(el)):
            el = parent.get(el)
        if el is not None:
            hosts.add(item.index)
    return hosts


def _nudge(scene) -> int:
    """Move every optimisable value a little (in place, under no_grad); returns how many tensors.

    Colours: RGB shifted by (+0.11, -0.07, +0.05) and alpha × 0.97, clamped into [0, 1]; geometry:
    positions + 0.37 user units, sizes and radii × 1.03; stroke widths × 1.03; opacities × 0.97.

    The geometry and stroke width of shapes that carry markers stay: marker instances are placed
    (and, with ``markerUnits="strokeWidth"``, scaled) from the geometry as read, and do not follow
    an optimised path (documented in :mod:`pds.svg.parse.elements`, ``_markers``), while a reloaded file places
    them on the edited path, so the two renders would legitimately differ.
    """
    from pds.svg.geometry import CircleGeometry, EllipseGeometry, RectGeometry
    from pds.svg.parse import GeometryParam

    active = {id(t) for ts in scene.parameters().values() for t in ts}
    hosts = _marker_hosts(scene)
    done = set()
    with torch.no_grad():
        for p in scene.document.params:
            if p.kind in ("points", "stroke_width") and p.users & hosts:
                continue
            tensors = [t for t in p.tensors() if id(t) in active and id(t) not in done]
            done.update(id(t) for t in tensors)
            for t in tensors:
                if p.kind in ("fill", "stroke"):
                    t[..., :3] += torch.tensor([0.11, -0.07, 0.05], dtype=t.dtype, device=t.device)
                    t[..., 3] *= 0.97
                    t.clamp_(0.0, 1.0)
                elif p.kind == "stroke_width":
                    t.mul_(1.03)
                elif p.kind == "opacity":
                    t.mul_(0.97)
                else:
                    assert isinstance(p, GeometryParam)
                    g = p.geometry
                    sizes = {CircleGeometry: ("r",), EllipseGeometry: ("radii",),
                             RectGeometry: ("size", "radii")}.get(type(g), ())
                    if any(t is getattr(g, name) for name in sizes):
                        t.mul_(1.03)
                    else:
                        t.add_(0.37)
    return len(done)


def _declarations(style) -> dict:
    out = {}
    for part in (style or "").split(";"):
        if ":" in part:
            name, value = part.split(":", 1)
            out[name.strip().lower()] = value.strip()
    return out


def _assert_only_owned_attributes_changed(before: ET.Element, after: ET.Element, where: str = "") -> int:
    """The same elements in the same order with the same text; attributes equal except the
    paint properties (anywhere, attribute or ``style`` declaration) and shape geometry (on shape
    elements). Returns how many attributes changed."""
    name = _local(before.tag)
    where = f"{where}/{name}" + (f"#{before.get('id')}" if before.get("id") else "")
    assert before.tag == after.tag, where
    assert (before.text or "") == (after.text or "") and (before.tail or "") == (after.tail or ""), where
    owned = PAINT_PROPERTIES | SHAPE_ATTRIBUTES.get(name, set())
    changed = 0
    for key in set(before.keys()) | set(after.keys()):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        changed += 1
        if key == "style":
            d0, d1 = _declarations(old), _declarations(new)
            moved = {k for k in d0.keys() | d1.keys() if d0.get(k) != d1.get(k)}
            assert moved <= PAINT_PROPERTIES, f"{where}: style declarations {sorted(moved - PAINT_PROPERTIES)} changed"
        else:
            assert key in owned, f"{where}: attribute {key!r} changed from {old!r} to {new!r}"
    assert len(before) == len(after), f"{where}: {len(before)} children became {len(after)}"
    return changed + sum(_assert_only_owned_attributes_changed(a, b, where) for a, b in zip(before, after))


def _tree(text: str) -> ET.Element:
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
    parser.feed(text)
    return parser.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_unchanged_scene_writes_the_same_document(case, tmp_path):
    scene = _load(case.path)  # every kind optimisable (the default)
    out = tmp_path / "out.svg"
    scene.save(out)
    written = out.read_text(encoding="utf-8")
    assert ET.canonicalize(written, with_comments=True) == ET.canonicalize(case.text, with_comments=True)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_edited_scene_round_trips(case, tmp_path):
    scene = _load(case.path)
    nudged = _nudge(scene)
    in_memory = _render(scene)
    out = tmp_path / "out.svg"
    scene.save(out)
    written = out.read_text(encoding="utf-8")
    changed = _assert_only_owned_attributes_changed(_tree(case.text), _tree(written))
    if nudged:
        assert changed, "nothing was written back"
    reloaded = _render(_load(out))
    assert psnr(in_memory, reloaded) >= MIN_ROUND_TRIP_PSNR
