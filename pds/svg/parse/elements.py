"""What painted elements become: shapes, ``text`` and ``image`` as
:class:`~pds.svg.parse.model.DrawItem` objects, with their paint, stroke (width, caps, joins,
miter limit, dashes), ``paint-order`` and markers.

:class:`ElementsMixin` is one part of the parser's builder (:class:`pds.svg.parse.builder._Builder`);
the complexity limits on shapes (:mod:`pds.svg.parse.limits`) are enforced here, as each shape
is read.
"""

from __future__ import annotations

import math
import re
from typing import Dict, List, Optional, Tuple
from xml.etree import ElementTree as ET

import numpy as np
import torch

from ..geometry import make_geometry
from ..image import ImageDef
from ..style import _NUMBER, SVG_NS, URL_RE, XLINK_NS, local_name, namespace, parse_length
from . import limits
from .model import DashDef, DrawItem, LayerDef
from .params import GeometryParam, Param, ScalarParam
from .reader import SVGError, id_text, read_xml
from .transforms import ANGLE_UNITS, SIZE_RANGE, parse_view_box, scale, translate, view_box_transform

#: Elements drawn as shapes (their geometry is :mod:`pds.svg.geometry`).
SHAPES = frozenset({"path", "rect", "circle", "ellipse", "line", "polyline", "polygon"})
_LINECAPS = ("butt", "round", "square")
_JOINS = {"miter": "miter", "round": "round", "bevel": "bevel", "miter-clip": "miter", "arcs": "miter"}
#: Elements that take markers (SVG 2 §13.7: paths, lines, polylines and polygons).
_MARKABLE = frozenset({"path", "line", "polyline", "polygon"})


def marker_vertices(subpaths) -> List[Tuple[str, Tuple[float, float], float]]:
    """``(which, point, angle)`` of every marker position of a shape (SVG 2 §13.7.3).

    ``which`` is ``"start"`` (the first vertex), ``"end"`` (the last) or ``"mid"``; ``angle``
    (radians) is the direction of the path there: the outgoing / incoming tangent at open ends,
    the bisector of both elsewhere (closed subpaths join their closing segment to their start).
    """
    verts: List[Tuple[Tuple[float, float], Optional[np.ndarray], Optional[np.ndarray]]] = []
    for sub in subpaths:
        pts = sub.points.detach().cpu().double().numpy()
        ncp = [int(c) for c in sub.num_control_points.tolist()]
        if not ncp:
            verts.append(((float(pts[0, 0]), float(pts[0, 1])), None, None))
            continue
        segs, s = [], 0
        for k, cnum in enumerate(ncp):
            e = s + cnum + 1
            end = pts[0] if (sub.closed and k == len(ncp) - 1) else pts[e]
            segs.append(np.vstack([pts[s:e], end[None]]))
            s = e

        def tangent(cp, at_start):
            seq = cp if at_start else cp[::-1]
            for q in seq[1:]:
                d = (q - seq[0]) if at_start else (seq[0] - q)
                if np.hypot(*d) > 1e-12:
                    return d / np.hypot(*d)
            return None

        for k, cp in enumerate(segs):
            t_in = tangent(segs[k - 1], False) if k > 0 else (tangent(segs[-1], False) if sub.closed else None)
            verts.append(((float(cp[0, 0]), float(cp[0, 1])), t_in, tangent(cp, True)))
        last = segs[-1]
        t_out = tangent(segs[0], True) if sub.closed else None
        verts.append(((float(last[-1, 0]), float(last[-1, 1])), tangent(last, False), t_out))

    def direction(t_in, t_out) -> float:
        if t_in is None and t_out is None:
            return 0.0
        if t_in is None or t_out is None:
            d = t_in if t_out is None else t_out
            return math.atan2(d[1], d[0])
        b = t_in + t_out
        if np.hypot(*b) < 1e-12:
            return math.atan2(t_in[1], t_in[0])
        return math.atan2(b[1], b[0])

    out = []
    for i, (p, t_in, t_out) in enumerate(verts):
        which = "start" if i == 0 else ("end" if i == len(verts) - 1 else "mid")
        out.append((which, p, direction(t_in, t_out)))
    return out


_NUMBER_TOKEN = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def check_segment_data(el: ET.Element, tag: str) -> None:
    """Refuse path data too long to parse before parsing it: every segment takes at least one
    number and at most seven (an arc), so more than ``7 × limits.MAX_PATH_SEGMENTS`` numbers is over the
    limit for sure (the exact count is checked once the shape is read)."""
    text = el.get("d") if tag == "path" else el.get("points") if tag in ("polyline", "polygon") else None
    if not text or len(text) < 7 * limits.MAX_PATH_SEGMENTS:  # cannot hold that many numbers
        return
    numbers = sum(1 for _ in _NUMBER_TOKEN.finditer(text))
    per_segment = 7 if tag == "path" else 2
    if numbers > per_segment * limits.MAX_PATH_SEGMENTS:
        raise SVGError(f"<{tag}{id_text(el)}> has more than {limits.MAX_PATH_SEGMENTS} segments ({numbers} numbers), "
                       f"more than the limit; simplify it (e.g. Inkscape's Path > Simplify)")


class ElementsMixin:
    """Painted elements into draw items (see the module docstring); mixed into the builder."""

    # -- text ----------------------------------------------------------------------------------------
    def _text(self, el, style, m, chain, scope, uses, viewport) -> None:
        """A ``<text>`` as glyph outlines (:mod:`pds.svg.text`): one draw item per ``text``/``tspan``
        that has characters, painted with that element's style."""
        from ..geometry import PathGeometry
        from ..text import GlyphRun, layout, match_face

        vw, vh = viewport
        diag = math.sqrt((vw * vw + vh * vh) / 2.0)
        runs: List[GlyphRun] = []
        styles: Dict[int, Dict] = {}
        positions: Dict[str, Dict[int, float]] = {"x": {}, "y": {}, "dx": {}, "dy": {}}
        count = [0]
        last_space = [True]  # collapse leading white space

        def lengths(e, name, ref, fs):
            out = []
            for t in re.split(r"[\s,]+", (e.get(name) or "").strip()):
                if t:
                    v = parse_length(t, ref, fs, default=None)
                    if v is None or not math.isfinite(v):
                        return []
                    out.append(v)
            return out

        def visit(e, st, stack):
            fs = self.font_size(st)
            lists = {n: lengths(e, n, r, fs) for n, r in (("x", vw), ("y", vh), ("dx", vw), ("dy", vh))}
            stack = stack + [(count[0], lists)]
            styles[id(e)] = st
            families = [f.strip().strip("'\"") for f in self.get(st, "font-family").split(",") if f.strip()]
            wtext = self.get(st, "font-weight").lower()
            weight = {"normal": 400, "bold": 700, "bolder": 700, "lighter": 300}.get(wtext)
            if weight is None:
                try:
                    weight = int(float(wtext))
                except ValueError:
                    weight = 400
            italic = self.get(st, "font-style").lower() in ("italic", "oblique")
            face, found = match_face(families or ["serif"], weight, italic)
            if face is None:
                self.warn("text (no font installed)")
                return
            if not found:
                self.warn(f"font-family {', '.join(families)} (not installed; drawn with {face.family})")
            spacing = {}
            for prop in ("letter-spacing", "word-spacing"):
                v = self.get(st, prop).lower()
                spacing[prop] = 0.0 if v in ("", "normal") else (parse_length(v, diag, fs, default=0.0) or 0.0)
            anchor = self.get(st, "text-anchor").lower()

            def emit(text):
                chars, idx = [], []
                for ch in (text or "").replace("\n", "").replace("\r", "").replace("\t", " "):
                    if ch == " " and last_space[0]:
                        continue
                    last_space[0] = ch == " "
                    i = count[0]
                    count[0] += 1
                    for name in positions:  # innermost element with a value for this character
                        for base, ls in reversed(stack):
                            if 0 <= i - base < len(ls[name]):
                                positions[name][i] = ls[name][i - base]
                                break
                    chars.append(ch)
                    idx.append(i)
                if chars:
                    runs.append(GlyphRun(e, "".join(chars), idx, face, fs, anchor, spacing["letter-spacing"],
                                         spacing["word-spacing"]))

            emit(e.text)
            for child in e:
                if isinstance(child.tag, str) and local_name(child.tag) == "tspan" and \
                        namespace(child.tag) in (SVG_NS, None):
                        cst = self.computed(child, st, len(uses))
                        if self.get(cst, "display") != "none":
                            visit(child, cst, stack)
                elif isinstance(child.tag, str) and namespace(child.tag) in (SVG_NS, None):
                    self.warn(f"<{local_name(child.tag)}> in text")
                emit(child.tail)

        visit(el, style, [])
        # trailing white space is not rendered
        while runs and runs[-1].chars.endswith(" "):
            runs[-1].chars, runs[-1].indices = runs[-1].chars[:-1], runs[-1].indices[:-1]
            if not runs[-1].chars:
                runs.pop()
        if not runs:
            return
        for _key, (owner, d) in layout(runs, positions).items():
            st = styles[id(owner)]
            key = (id(owner), viewport, self.font_size(st))
            if key not in self._geoms:  # glyph outlines are constants: no GeometryParam
                geom = PathGeometry(ET.Element("path"), d, dtype=self.dtype, device=self.device)
                if not all(bool(torch.isfinite(t).all()) for t in geom.tensors()):
                    self.warn("numbers too large to draw in <text>")
                    self._geoms[key] = None
                    continue
                self._geoms[key] = geom
                # the outlines count against the document's complexity limits like any path
                self._segment_counts[id(geom)] = sum(int(sp.num_control_points.numel()) for sp in geom.subpaths())
            own_scope = scope | {owner.get("id")} if owner.get("id") else scope  # a tspan is selectable by id
            self.shape(owner, "text", st, m, chain, own_scope, uses, viewport)

    # -- images --------------------------------------------------------------------------------------
    def _image(self, el, style, m, chain, scope, viewport) -> None:
        """An ``<image>`` from a ``data:`` URI as a draw item (see :mod:`pds.svg.image`); files and
        URLs are never opened."""
        if self._clip_mode or self.get(style, "visibility") in ("hidden", "collapse"):
            return  # images are not clip-path content (CSS Masking §6.1)
        im = self._image_def(el)
        if im is None:
            return
        vw, vh = viewport
        w0, h0 = im.size

        def size(name, ref):
            v = (el.get(name) or "").strip()
            return None if v in ("", "auto") else parse_length(v, ref, default=None)

        w, h = size("width", vw), size("height", vh)
        if w is None and h is None:  # SVG 2 auto-sizing: the intrinsic size, or keep its ratio
            w, h = w0, h0
        elif w is None:
            w = h * w0 / h0
        elif h is None:
            h = w * h0 / w0
        if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
            return
        x = parse_length(el.get("x"), vw, default=0.0)
        y = parse_length(el.get("y"), vh, default=0.0)
        if not (math.isfinite(x) and math.isfinite(y)):
            return
        if im.document is not None:  # an SVG picture is drawn again per instance: count its work here
            self.segments += sum(int(sp.num_control_points.numel()) for it in im.document.items
                                 for sp in it.geometry.subpaths())
            if self.segments > limits.MAX_SEGMENTS:
                raise SVGError(f"the document's shapes have more than {limits.MAX_SEGMENTS} segments in all "
                               f"(<use> copies and <image> documents counted); simplify it or edit a part of it")
        if len(self.items) >= limits.MAX_DRAW_ITEMS:
            raise SVGError(f"the document expands to more than {limits.MAX_DRAW_ITEMS} shapes (recursive <use>?)")
        from ..geometry import RectGeometry

        placed = ImageDef(im.pixels, im.document, im.size, (x, y, w, h), el.get("preserveAspectRatio"),
                          self.get(style, "image-rendering") not in ("optimizeSpeed", "pixelated", "crisp-edges"))
        item = DrawItem(
            index=len(self.items), element=el, geometry=RectGeometry(el, x, y, w, h, 0.0, 0.0, self.dtype, self.device),
            ctm=m, fill=None, stroke=None, stroke_width=None, fill_rule="nonzero", linecap="butt", linejoin="miter",
            miterlimit=4.0, opacities=list(chain), scope=scope, layers=tuple(self._layer_stack), image=placed)
        self.items.append(item)
        if self.items is self._main_items:
            for p in self.item_params(item):
                p.users.add(item.index)

    def _image_def(self, el) -> Optional[ImageDef]:
        """The decoded picture of an ``<image>`` (cached per element; ``viewport`` unset)."""
        from ..image import MAX_IMAGE_DEPTH, decode_data_uri, decode_raster, sniff_mime
        from .builder import build_document  # deferred: the builder is made of this class

        key = id(el)
        if key in self._image_defs:
            return self._image_defs[key]
        self._image_defs[key] = None
        href = (el.get("href") or el.get(f"{{{XLINK_NS}}}href") or "").strip()
        if not href:
            return None
        data = decode_data_uri(href)
        if data is None:
            self.warn("<image> of a file or URL (never opened)" if not href.lower().startswith("data:")
                      else "<image> with a malformed data: URI")
            return None
        mime, payload = data
        kind = sniff_mime(payload) or mime
        if kind == "image/svg+xml":
            if self.image_depth + 1 > MAX_IMAGE_DEPTH:
                self.warn(f"<image> of an SVG nested more than {MAX_IMAGE_DEPTH} deep")
                return None
            try:
                root, namespaces = read_xml(payload)
                doc = build_document(root, namespaces, dtype=self.dtype, device=self.device,
                                     image_depth=self.image_depth + 1)
            except SVGError:
                self.warn("<image> of an unreadable SVG")
                return None
            for what, n in doc.unsupported.items():
                self.unsupported[f"{what} (in an <image>)"] += n
            for p in doc.params:  # the picture is a constant
                for t in p.tensors():
                    t.requires_grad_(False)
            im = ImageDef(None, doc, (doc.width, doc.height), (0.0, 0.0, 0.0, 0.0), None)
        else:
            pixels = decode_raster(payload)
            if pixels is None:
                self.warn(f"<image> that cannot be decoded ({kind or 'unknown type'})")
                return None
            im = ImageDef(pixels, None, (float(pixels.shape[1]), float(pixels.shape[0])), (0.0, 0.0, 0.0, 0.0), None)
        self._image_defs[key] = im
        return im

    # -- shapes --------------------------------------------------------------------------------------
    def font_size(self, style: Dict) -> float:
        """The computed ``font-size`` in user units (resolved by :meth:`computed`)."""
        return parse_length(self.get(style, "font-size"), 16.0, default=16.0)

    def shape(self, el, tag, style, m, chain, scope, uses, viewport) -> None:
        fs = self.font_size(style)
        key = (id(el), viewport, fs)
        if key not in self._geoms:
            check_segment_data(el, tag)
            try:
                geom, problem = make_geometry(el, tag, viewport, font_size=fs, dtype=self.dtype, device=self.device)
            except (ValueError, ArithmeticError):
                # numbers at the edge of floating point (an arc with radii 1e308) overflow the
                # arc and curve maths: the one shape is skipped, not the whole file
                geom, problem = None, "numbers too large to draw"
            except TypeError:  # svgelements leaves a point None on some malformed data ("H .")
                geom, problem = None, "invalid path data"
            if geom is not None and not all(bool(torch.isfinite(t).all()) for t in geom.tensors()):
                geom, problem = None, "numbers too large to draw"
            if problem:
                self.warn(f"{problem} in <{tag}>")
            self._geoms[key] = geom
            if geom is not None:
                count = sum(int(sp.num_control_points.numel()) for sp in geom.subpaths())
                if count > limits.MAX_PATH_SEGMENTS:
                    raise SVGError(f"<{tag}{id_text(el)}> has {count} segments, more than the "
                                   f"{limits.MAX_PATH_SEGMENTS} limit; simplify it (e.g. Inkscape's Path > Simplify)")
                self._segment_counts[id(geom)] = count
                self._geom_params[id(geom)] = self._register(GeometryParam(geom))
        geom = self._geoms[key]
        if geom is None:
            return
        self.segments += self._segment_counts[id(geom)]
        if self.segments > limits.MAX_SEGMENTS:
            raise SVGError(f"the document expands to more than {limits.MAX_SEGMENTS} path segments in all "
                           f"(<use> copies counted); simplify it or edit a part of it")
        if self.get(style, "visibility") in ("hidden", "collapse"):
            return
        if len(self.items) >= limits.MAX_DRAW_ITEMS:
            raise SVGError(f"the document expands to more than {limits.MAX_DRAW_ITEMS} shapes (recursive <use>?)")
        layers = tuple(self._layer_stack)
        clip_rule = "evenodd" if self.get(style, "clip-rule") == "evenodd" else "nonzero"
        if self._clip_mode:  # clip content: its geometry only, filled opaque with clip-rule
            self.items.append(DrawItem(
                index=len(self.items), element=el, geometry=geom, ctm=m, fill=None, stroke=None, stroke_width=None,
                fill_rule=clip_rule, linecap="butt", linejoin="miter", miterlimit=4.0, opacities=[], scope=scope,
                layers=layers, clip_rule=clip_rule))
            return
        fill = self.paint(el, style, "fill", uses) if tag != "line" else None  # a line has no interior
        stroke = self.paint(el, style, "stroke", uses)
        vw, vh = viewport
        diag = math.sqrt((vw * vw + vh * vh) / 2.0)
        sw_text = self.get(style, "stroke-width")
        sw = parse_length(sw_text, diag, fs, default=None)
        if sw is None:
            sw = 1.0
        elif sw < 0:  # an invalid value: resvg and browsers draw no stroke
            self.warn("negative stroke-width")
            sw = 0.0
        elif not (math.isfinite(sw) and sw <= SIZE_RANGE[1]):  # 1e99999 is inf: the outline would be NaN
            self.warn("stroke-width too large to draw")
            sw = 0.0
        width_param = None
        if stroke is not None and sw > 0:
            owner = self._owner(el, style, "stroke-width", uses)
            d = self.decl(owner).get("stroke-width")
            k = ("stroke-width", id(owner), sw)
            width_param = self._scalars.get(k)
            if width_param is None:
                width_param = self._scalars[k] = self._register(ScalarParam(
                    "stroke_width", owner, "stroke-width", sw, d.origin if d else "attr", self.dtype, self.device))
        elif stroke is not None:
            stroke = None
        words = [w for w in self.get(style, "paint-order").split() if w in ("fill", "stroke", "markers")]
        words += [w for w in ("fill", "stroke", "markers") if w not in words]
        markers = (lambda: self._in_context((fill, stroke), self._markers, el, geom, style, m, scope, uses, sw)) \
            if tag in _MARKABLE else None
        if markers is not None and words[0] == "markers":
            markers()
            markers = None
        if fill is None and stroke is None:
            if markers is not None:
                markers()
            return
        dash = self._dash(el, style, diag, fs) if stroke is not None else None
        linecap = self.get(style, "stroke-linecap")
        linejoin = _JOINS.get(self.get(style, "stroke-linejoin"), "miter")
        try:
            miterlimit = max(1.0, float(self.get(style, "stroke-miterlimit")))
        except ValueError:
            miterlimit = 4.0
        order = [w for w in words if w != "markers"]
        stroke_first = order[0] == "stroke"
        fill_rule = "evenodd" if self.get(style, "fill-rule") == "evenodd" else "nonzero"
        item = DrawItem(
            index=len(self.items), element=el, geometry=geom, ctm=m, fill=fill, stroke=stroke,
            stroke_width=width_param, fill_rule=fill_rule,
            linecap=linecap if linecap in _LINECAPS else "butt", linejoin=linejoin, miterlimit=miterlimit,
            opacities=list(chain), scope=scope, stroke_first=stroke_first, layers=layers, clip_rule=clip_rule,
            dash=dash,
        )
        self.items.append(item)
        if self.items is self._main_items:  # content items get their users in build_document
            for p in self.item_params(item):
                p.users.add(item.index)
        if markers is not None:
            markers()

    def _in_context(self, context: tuple, fn, *args) -> None:
        """Call ``fn(*args)`` with ``context`` as what ``context-fill``/``context-stroke`` name."""
        saved, self._context = self._context, context
        try:
            fn(*args)
        finally:
            self._context = saved

    def _markers(self, el, geom, style, m, scope, uses, stroke_width: float) -> None:
        """Instance ``marker-start``/``-mid``/``-end`` content at the shape's vertices (SVG 2 §13.7).

        Positions and directions come from the geometry as read (markers do not follow an
        optimised path); the marker content itself (colours, shapes) is differentiable.
        """
        refs = {}
        for which in ("start", "mid", "end"):
            text = self.get(style, f"marker-{which}")
            if text.lower() in ("none", ""):
                text = self.get(style, "marker")  # the shorthand
            if text.lower() in ("none", ""):
                continue
            mm = URL_RE.match(text)
            target = self.ids.get(mm.group(1)) if mm else None
            if target is None or local_name(target.tag) != "marker":
                self.warn("marker reference to a missing <marker>")
                continue
            refs[which] = target
        if not refs:
            return
        for which, point, angle in marker_vertices(geom.subpaths()):
            target = refs.get(which)
            if target is None or id(target) in self._resolving:
                continue
            self._resolving.add(id(target))
            try:
                self._marker_instance(target, point, angle, which == "start", m, scope, uses, stroke_width)
            finally:
                self._resolving.discard(id(target))

    def _marker_instance(self, mk, point, angle, is_start, m, scope, uses, stroke_width) -> None:
        vp = self.root_viewport
        mw = parse_length(mk.get("markerWidth"), vp[0], default=3.0)
        mh = parse_length(mk.get("markerHeight"), vp[1], default=3.0)
        if not (mw > 0 and mh > 0):
            return
        orient = (mk.get("orient") or "0").strip()
        if orient == "auto":
            rot = angle
        elif orient == "auto-start-reverse":
            rot = angle + (math.pi if is_start else 0.0)
        else:
            num = re.fullmatch(rf"({_NUMBER})\s*(deg|rad|grad|turn)?", orient)
            rot = math.radians(float(num.group(1)) * ANGLE_UNITS[num.group(2) or "deg"]) if num else 0.0
        c, s_ = math.cos(rot), math.sin(rot)
        base = m @ translate(point[0], point[1]) @ np.array([[c, -s_, 0.0], [s_, c, 0.0], [0.0, 0.0, 1.0]])
        if (mk.get("markerUnits") or "strokeWidth").strip() != "userSpaceOnUse":
            base = base @ scale(stroke_width, stroke_width)
        vb = parse_view_box(mk.get("viewBox"))
        content = view_box_transform(vb, mk.get("preserveAspectRatio"), mw, mh) if vb is not None else np.eye(3)
        ref = content @ np.array([parse_length(mk.get("refX"), vb[2] if vb else mw, default=0.0),
                                  parse_length(mk.get("refY"), vb[3] if vb else mh, default=0.0), 1.0])
        base = base @ translate(-ref[0], -ref[1])
        overflow = self.decl(mk).get("overflow")
        clipped = overflow is None or overflow.value.strip().lower() not in ("visible", "auto")
        if clipped:
            self._layer_stack.append(LayerDef(mk, base, viewport=(0.0, 0.0, mw, mh)))
        style = self.tree_style(mk)
        for child in mk:
            self.walk(child, style, base @ content, [], scope, (id(mk),), uses, (vb[2], vb[3]) if vb else (mw, mh), 1)
        self._pop_layer(clipped)

    def _dash(self, el, style, diag: float, fs: float) -> Optional[DashDef]:
        """``stroke-dasharray`` (SVG 2 §13.5.5): negative values make it invalid (solid stroke), an
        odd list is repeated, a zero sum is solid; percentages are of the normalised diagonal."""
        text = self.get(style, "stroke-dasharray")
        if text.lower() in ("none", ""):
            return None
        parts = [t for t in re.split(r"[\s,]+", text.strip()) if t]
        values = [parse_length(t, diag, fs, default=None) for t in parts]
        if not values or any(v is None or v < 0 or not math.isfinite(v) for v in values):
            self.warn("invalid stroke-dasharray")
            return None
        if sum(values) <= 0:
            return None
        if len(values) % 2:
            values = values * 2
        offset = parse_length(self.get(style, "stroke-dashoffset") or "0", diag, fs, default=0.0)
        try:
            path_length = float(el.get("pathLength")) if el.get("pathLength") is not None else None
        except ValueError:
            path_length = None
        if path_length is not None and not (path_length > 0 and math.isfinite(path_length)):
            path_length = None
        return DashDef(tuple(values), float(offset if math.isfinite(offset) else 0.0), path_length)

    @staticmethod
    def item_params(item: DrawItem) -> List[Param]:
        """The item's own scalar parameters (opacities, stroke width)."""
        return [p for p in (*item.opacities, item.stroke_width) if p is not None]
