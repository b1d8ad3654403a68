"""References between elements, resolved once per element: the layers an element opens
(``clip-path``, ``mask``, ``filter``, group ``opacity``, ``mix-blend-mode``, ``isolation``),
``clipPath``, ``mask`` and ``pattern`` content, gradients with their stops, and paint
(colours, ``url(#id)`` paint servers with fallbacks, ``context-fill``/``context-stroke``).

:class:`DefsMixin` is one part of the parser's builder (:class:`pds.svg.parse.builder._Builder`):
it uses the builder's id table, cascade and walk, and caches every definition it resolves;
``_resolving`` guards against reference cycles.
"""

from __future__ import annotations

import math
from typing import List, Optional
from xml.etree import ElementTree as ET

import numpy as np

from ..shapes import BLEND_MODES
from ..style import (
    DEFAULTS,
    SVG_NS,
    URL_RE,
    XLINK_NS,
    local_name,
    namespace,
    parse_color,
    parse_length,
    parse_opacity,
)
from . import limits
from .elements import SHAPES
from .model import ClipDef, DrawItem, GradientDef, GradientRef, LayerDef, MaskDef, Paint, PatternDef, PatternRef
from .params import ColorParam, ScalarParam, StopsParam
from .reader import SVGError, id_text
from .transforms import MAX_TRANSFORM_ENTRY, parse_transform, parse_view_box


class DefsMixin:
    """Resolution of references (see the module docstring); mixed into the builder."""

    # -- layers: clip-path, mask, group opacity, mix-blend-mode, viewports --------------------------
    def _push_layer(self, el, m, opacity: Optional[ScalarParam], viewport, rect=None) -> bool:
        """Open a layer for ``el`` when it needs one; returns whether one was pushed."""
        d = self.decl(el)

        def value(prop):
            v = d.get(prop)
            return v.value.strip() if v is not None and v.value.strip().lower() not in ("", "inherit") else ""

        clip = mask = None
        text = value("clip-path")
        if text and text.lower() != "none":
            clip = self._reference(text, "clipPath", viewport)
        if self._clip_mode:  # clip content: only geometry and clip-path count (CSS Masking §6.1)
            opacity, blend, text = None, "normal", ""
        else:
            text = value("mask")
            if text and text.lower() != "none":
                mask = self._reference(text, "mask", viewport)
            blend = value("mix-blend-mode").lower() or "normal"
            if blend not in BLEND_MODES:
                self.warn(f"mix-blend-mode {blend}")
                blend = "normal"
        flt = None
        if not self._clip_mode and value("filter") and value("filter").lower() != "none":
            flt = self._filter_list(value("filter"), viewport)
        isolate = not self._clip_mode and value("isolation").lower() == "isolate"
        if (opacity is None and clip is None and mask is None and blend == "normal" and rect is None and not isolate
                and flt is None):
            return False
        self._layer_stack.append(LayerDef(el, m, opacity, clip, mask, blend, rect, filter=flt))
        return True

    def _filter_list(self, text: str, viewport) -> Optional[tuple]:
        """The ``filter`` property as :class:`pds.svg.parse.filters.FilterDef` objects, or ``None`` (no
        filter).  A reference to a missing ``<filter>`` gives an empty definition: the element is
        not rendered (Filter Effects 1 §6, as resvg)."""
        from .filters import FilterDef, css_filter_functions, parse_filter_element, parse_filter_list

        def lookup(e, prop):
            d = self.decl(e).get(prop)
            return d.value if d is not None else None

        def flood(e):
            style = self.computed(e, self.tree_style(self._parent[id(e)]) if id(e) in self._parent else dict(DEFAULTS))
            current = parse_color(self.get(style, "color")) or (0.0, 0.0, 0.0, 1.0)
            c = parse_color(style.get("flood-color", "black"), current) or (0.0, 0.0, 0.0, 1.0)
            return (tuple(c[:3]), c[3] * parse_opacity(style.get("flood-opacity")))

        out = []
        for kind, arg in parse_filter_list(text):
            if kind == "url":
                target = self.ids.get(arg)
                if target is None or local_name(target.tag) != "filter":
                    self.warn("filter reference to a missing <filter>")
                    return (FilterDef(()),)
                key = ("filter", id(target), viewport)
                if key not in self._filter_defs:
                    self._filter_defs[key] = parse_filter_element(target, lookup, flood, viewport, self.warn)
                out.append(self._filter_defs[key])
            elif kind == "invalid":
                self.warn("invalid filter value")
                return None
            else:
                fd = css_filter_functions(kind, arg, parse_color)
                if fd is None:
                    self.warn(f"filter function {kind}()")
                    return None
                out.append(fd)
        return tuple(out) or None

    def _pop_layer(self, pushed: bool) -> None:
        if pushed:
            self._layer_stack.pop()

    def _reference(self, text: str, kind: str, viewport):
        """The :class:`ClipDef`/:class:`MaskDef` of a ``url(#id)`` to a ``clipPath``/``mask``.

        A reference to a missing or wrong element is ignored with a warning (resvg and browsers
        then render the element unclipped / unmasked).
        """
        m = URL_RE.match(text)
        target = self.ids.get(m.group(1)) if m else None
        if target is None or local_name(target.tag) != kind:
            self.warn(f"{'clip-path' if kind == 'clipPath' else 'mask'} reference to a missing <{kind}>")
            return None
        return self._clip_def(target, viewport) if kind == "clipPath" else self._mask_def(target, viewport)

    def _content(self, el, clip_mode: bool, viewport, accept) -> List[DrawItem]:
        """Walk the children of a ``clipPath``/``mask`` into their own item list (content space)."""
        saved = (self.items, self._layer_stack, self._clip_mode)
        self.items, self._layer_stack, self._clip_mode = [], [], clip_mode
        try:
            style = self.tree_style(el)
            for child in el:
                if isinstance(child.tag, str) and accept(local_name(child.tag)):
                    self.walk(child, style, np.eye(3), [], frozenset(), (id(el),), (), viewport, 1)
            return self.items
        finally:
            self.items, self._layer_stack, self._clip_mode = saved

    def _clip_def(self, el, viewport) -> Optional[ClipDef]:
        key = id(el)
        if key in self._clips:
            return self._clips[key]
        if key in self._resolving:
            self.warn("recursive clip-path")
            return None
        self._resolving.add(key)
        try:
            # CSS Masking §6.1: only shapes, text and use of them are clip-path content.
            items = self._content(el, True, viewport, lambda t: t in SHAPES or t in ("use", "text"))
            nested = None
            own = self.decl(el).get("clip-path")
            if own is not None and own.value.strip().lower() not in ("none", "", "inherit"):
                nested = self._reference(own.value.strip(), "clipPath", viewport)
        finally:
            self._resolving.discard(key)
        units = (el.get("clipPathUnits") or "").strip() == "objectBoundingBox"
        cd = ClipDef(items, units, self._transform(el, viewport), nested)
        self._clips[key] = cd
        return cd

    def _mask_def(self, el, viewport) -> Optional[MaskDef]:
        key = id(el)
        if key in self._masks:
            return self._masks[key]
        if key in self._resolving:
            self.warn("recursive mask")
            return None
        self._resolving.add(key)
        try:
            items = self._content(el, False, viewport, lambda t: True)
        finally:
            self._resolving.discard(key)
        own = self.decl(el).get("mask")
        if own is not None and own.value.strip().lower() not in ("none", "", "inherit"):
            self.warn("mask on a <mask>")
        region_bbox = (el.get("maskUnits") or "").strip() != "userSpaceOnUse"
        vw, vh = viewport

        def coord(name, default, ref):
            v = el.get(name)
            if region_bbox:  # fractions of the bounding box; "50%" is 0.5
                return parse_length(v, 1.0, default=None) if v is not None and parse_length(v, 1.0) is not None \
                    else parse_length(default, 1.0)
            return parse_length(v, ref, default=parse_length(default, ref))

        region = (coord("x", "-10%", vw), coord("y", "-10%", vh), coord("width", "120%", vw),
                  coord("height", "120%", vh))
        mt = self.decl(el).get("mask-type")
        mask_type = "alpha" if mt is not None and mt.value.strip().lower() == "alpha" else "luminance"
        md = MaskDef(items, region, region_bbox, (el.get("maskContentUnits") or "").strip() == "objectBoundingBox",
                     mask_type)
        self._masks[key] = md
        return md

    def _pattern_def(self, el) -> Optional[PatternDef]:
        """A ``pattern`` with ``href`` inheritance (SVG 1.1 §13.3): attributes from the first
        element in the chain that has them, content from the first one with children."""
        key = id(el)
        if key in self._patterns:
            return self._patterns[key]
        chain, cur = [el], el
        while True:
            href = (cur.get("href") or cur.get(f"{{{XLINK_NS}}}href") or "").strip()
            nxt = self.ids.get(href[1:]) if href.startswith("#") else None
            if nxt is None or nxt in chain or local_name(nxt.tag) != "pattern":
                break
            chain.append(nxt)
            cur = nxt

        def attr(name):
            return next((g.get(name) for g in chain if g.get(name) is not None), None)

        owner = next((g for g in chain if any(isinstance(c.tag, str) for c in g)), None)
        if owner is None or id(owner) in self._resolving:
            self._patterns[key] = None
            return None
        self._resolving.add(id(owner))
        try:
            items = self._content(owner, False, self.root_viewport, lambda t: True)
        finally:
            self._resolving.discard(id(owner))
        tile_bbox = (attr("patternUnits") or "").strip() != "userSpaceOnUse"
        vw, vh = self.root_viewport

        def coord(name, ref):
            v = attr(name)
            return parse_length(v, 1.0 if tile_bbox else ref, default=0.0)

        vb = parse_view_box(attr("viewBox"))
        pd = PatternDef(items, (coord("x", vw), coord("y", vh), coord("width", vw), coord("height", vh)), tile_bbox,
                        (attr("patternContentUnits") or "").strip() == "objectBoundingBox", vb,
                        attr("preserveAspectRatio"), parse_transform(attr("patternTransform")))
        self._patterns[key] = pd
        return pd

    # -- paint ---------------------------------------------------------------------------------
    def paint(self, el, style, which: str, uses=()) -> Optional[Paint]:
        """The ``fill`` or ``stroke`` (``which``) of ``el``: a colour parameter (shared per declaring
        element and value), a gradient or pattern reference, a context paint, or ``None``."""
        value = self.get(style, which)
        opacity = parse_opacity(self.get(style, which + "-opacity"))
        if value.lower() == "none" or not value:
            return None
        m = URL_RE.match(value)
        if m:
            ref, fallback = m.group(1), m.group(2).strip()
            target = self.ids.get(ref)
            ttag = local_name(target.tag) if target is not None else ""
            if ttag in ("linearGradient", "radialGradient"):
                g = self.gradient(target, which)
                if g is None:
                    return None
                return GradientRef(g, opacity)
            if ttag == "pattern":
                pd = self._pattern_def(target)
                if pd is not None:
                    return PatternRef(pd, opacity)
                ttag = ""  # an empty or recursive pattern: the fallback colour, or nothing
            if ttag:
                self.warn(f"<{ttag}> paint")
            if not fallback:
                return None
            value = fallback
            if value.lower() == "none":
                return None
        if value.lower() in ("context-fill", "context-stroke"):
            # SVG 2 §13.3: the paint of the context element (the shape a marker is on, the <use>)
            if self._context is None:
                self.warn(f"{value.lower()} outside a marker or <use>")
                return None
            return self._context[0 if value.lower() == "context-fill" else 1]
        current = parse_color(self.get(style, "color")) or (0.0, 0.0, 0.0, 1.0)
        rgba = parse_color(value, current)
        if rgba is None:
            self.warn(f"invalid {which} colour")
            rgba = (0.0, 0.0, 0.0, 1.0)
        rgba = (rgba[0], rgba[1], rgba[2], rgba[3] * opacity)
        owner = self._owner(el, style, which, uses)
        key = (which, id(owner), rgba)
        p = self._colors.get(key)
        if p is None:
            decl = self.decl(owner)
            origins = {k: decl[k].origin for k in (which, which + "-opacity") if k in decl}
            p = self._colors[key] = self._register(
                ColorParam(which, owner, rgba, opacity, origins, self.dtype, self.device))
        return p

    # -- gradients -------------------------------------------------------------------------------
    def gradient(self, el: ET.Element, which: str) -> Optional[GradientDef]:
        if id(el) in self._gradients:
            g = self._gradients[id(el)]
            return g
        chain = [el]
        seen = {id(el)}
        cur = el
        while True:
            href = (cur.get("href") or cur.get(f"{{{XLINK_NS}}}href") or "").strip()
            nxt = self.ids.get(href[1:]) if href.startswith("#") else None
            if nxt is None or id(nxt) in seen or local_name(nxt.tag) not in ("linearGradient", "radialGradient"):
                break
            chain.append(nxt)
            seen.add(id(nxt))
            cur = nxt
        kind = "linear" if local_name(el.tag) == "linearGradient" else "radial"

        def attr(name, same_kind=False):
            for g in chain:
                if same_kind and local_name(g.tag) != local_name(el.tag):
                    continue
                v = g.get(name)
                if v is not None:
                    return v
            return None

        owner = next((g for g in chain if any(local_name(c.tag) == "stop" for c in g)), None)
        stops = self.stops(owner, which) if owner is not None else None
        if stops is None:
            self._gradients[id(el)] = None
            return None
        units = attr("gradientUnits") or "objectBoundingBox"
        units = "userSpaceOnUse" if units.strip() == "userSpaceOnUse" else "objectBoundingBox"
        spread = (attr("spreadMethod") or "pad").strip()
        spread = spread if spread in ("pad", "reflect", "repeat") else "pad"
        if units == "userSpaceOnUse":
            vw, vh = self.root_viewport
        else:
            vw = vh = 1.0
        diag = math.sqrt((vw * vw + vh * vh) / 2.0)

        def length(name, ref, default):
            v = attr(name, same_kind=True)
            x = parse_length(v, ref, default=None) if v is not None else None
            if x is not None and not (math.isfinite(x) and abs(x) <= MAX_TRANSFORM_ENTRY):
                x = None  # inf or 1e308: the gradient's maths would be NaN; invalid, so the default
            return parse_length(default, ref) if x is None else x

        if kind == "linear":
            coords = {"x1": length("x1", vw, "0%"), "y1": length("y1", vh, "0%"),
                      "x2": length("x2", vw, "100%"), "y2": length("y2", vh, "0%")}
        else:
            cx, cy = length("cx", vw, "50%"), length("cy", vh, "50%")
            r = length("r", diag, "50%")
            fx = length("fx", vw, None) if attr("fx", True) is not None else None
            fy = length("fy", vh, None) if attr("fy", True) is not None else None
            fr = length("fr", diag, "0%")  # SVG 2: the focal circle's radius
            coords = {"cx": cx, "cy": cy, "r": r, "fx": cx if fx is None else fx, "fy": cy if fy is None else fy,
                      "fr": max(fr, 0.0)}
        g = GradientDef(kind, stops, units, parse_transform(attr("gradientTransform")), spread, coords)
        self._gradients[id(el)] = g
        return g

    def stops(self, owner: ET.Element, which: str) -> Optional[StopsParam]:
        if id(owner) in self._stops:
            return self._stops[id(owner)]
        owner_style = self.tree_style(owner)  # currentColor and inherited stop properties: the tree
        elements, offsets, colors, opacities, origins = [], [], [], [], []
        last = 0.0
        for stop in owner:
            if local_name(stop.tag) != "stop" or namespace(stop.tag) not in (SVG_NS, None):
                continue
            s = self.computed(stop, owner_style, 0)
            off_text = (stop.get("offset") or "0").strip()
            try:
                off = float(off_text[:-1]) / 100.0 if off_text.endswith("%") else float(off_text)
            except ValueError:
                off = 0.0
            off = min(max(off, 0.0, last), 1.0)
            last = off
            current = parse_color(self.get(s, "color")) or (0.0, 0.0, 0.0, 1.0)
            c = parse_color(self.get(s, "stop-color"), current) or (0.0, 0.0, 0.0, 1.0)
            op = parse_opacity(self.get(s, "stop-opacity"))
            d = self.decl(stop)
            elements.append(stop)
            offsets.append(off)
            colors.append([c[0], c[1], c[2], c[3] * op])
            opacities.append(op)
            origins.append({k: d[k].origin for k in ("stop-color", "stop-opacity") if k in d})
            if len(elements) > limits.MAX_GRADIENT_STOPS:
                raise SVGError(f"<{local_name(owner.tag)}{id_text(owner)}> has more than {limits.MAX_GRADIENT_STOPS} "
                               f"stops; merge them into fewer")
        if not elements:
            self._stops[id(owner)] = None
            return None
        p = self._register(StopsParam(which, elements, offsets, colors, opacities, origins, self.dtype, self.device))
        self._stops[id(owner)] = p
        return p
