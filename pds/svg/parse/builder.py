"""The tree walk: a parsed SVG tree into a :class:`~pds.svg.parse.model.Document`.

:class:`_Builder` walks the document in painter's order with the cascade per element
(:mod:`pds.svg.style`), the current transform, the enclosing layers and the ``use`` instances
above; it handles containers (``g``, ``a``, ``switch``), nested ``svg`` and ``symbol``
viewports and ``use`` instancing itself, and is assembled from two parts:
:class:`~pds.svg.parse.elements.ElementsMixin` (what a painted element becomes) and
:class:`~pds.svg.parse.defs.DefsMixin` (what references resolve to).  :func:`build_document` runs
it and gives each parameter its users.
"""

from __future__ import annotations

from collections import Counter
from typing import Dict, List, Optional
from xml.etree import ElementTree as ET

import numpy as np
import torch

from ..geometry import Geometry
from ..image import ImageDef
from ..style import (
    DEFAULTS,
    SVG_NS,
    XLINK_NS,
    Declared,
    Stylesheet,
    computed_style,
    declarations,
    local_name,
    namespace,
    parse_length,
    parse_opacity,
    style_value,
    value_owner,
)
from . import limits
from .defs import DefsMixin
from .elements import SHAPES, ElementsMixin
from .model import ClipDef, Document, DrawItem, GradientDef, GradientRef, LayerDef, MaskDef, PatternDef, PatternRef
from .params import ColorParam, GeometryParam, Param, ScalarParam, StopsParam
from .reader import SVGError
from .transforms import element_transform, parse_view_box, root_size, translate, view_box_transform

__all__ = ["build_document"]

#: Containers whose children are walked in place.
CONTAINERS = frozenset({"g", "a"})
#: Elements that never draw where they stand (referenced elsewhere or metadata).
NOT_RENDERED = frozenset(
    {"defs", "linearGradient", "radialGradient", "stop", "style", "title", "desc", "metadata", "symbol",
     "clipPath", "mask", "pattern", "marker", "filter", "script", "view", "cursor", "font", "font-face",
     "color-profile"}
)
#: Elements we know but cannot draw (one warning each).
UNSUPPORTED = frozenset(
    {"foreignObject", "animate", "animateTransform", "animateMotion", "set",
     "animateColor", "mpath", "tspan", "textPath", "feImage", "hatch", "mesh", "meshgradient"}
)

#: Languages ``switch``/``systemLanguage`` accepts (resvg's default list).
LANGUAGES = ("en",)


class _Builder(ElementsMixin, DefsMixin):
    """The state of one document's walk, and the walk itself (see the module docstring)."""

    def __init__(self, root: ET.Element, dtype, device):
        self.root = root
        self.dtype, self.device = dtype, device
        self.ids: Dict[str, ET.Element] = {}
        for el in root.iter():
            i = el.get("id") if isinstance(el.tag, str) else None
            if i and i not in self.ids:
                self.ids[i] = el
        css = []
        for el in root.iter():
            if local_name(el.tag) == "style" and namespace(el.tag) in (SVG_NS, None):
                if (el.get("type") or "text/css").strip().lower() == "text/css" and (el.text or "").strip():
                    css.append(el.text)
        self.sheet = Stylesheet(root, css) if css else None
        self.unsupported: Counter = Counter()
        self.visits = 0
        self.segments = 0  # segments of the painted shapes so far, use instances counted
        self._segment_counts: Dict[int, int] = {}
        if self.sheet is not None:
            for what in self.sheet.unsupported:
                self.unsupported[what] += 1
        self.items: List[DrawItem] = []
        self.params: List[Param] = []
        self._geoms: Dict[int, Optional[Geometry]] = {}
        self._geom_params: Dict[int, GeometryParam] = {}
        self._colors: Dict[tuple, ColorParam] = {}
        self._scalars: Dict[tuple, ScalarParam] = {}
        self._gradients: Dict[int, Optional[GradientDef]] = {}
        self._stops: Dict[int, Optional[StopsParam]] = {}
        self._decls: Dict[int, Dict[str, Declared]] = {}
        self._parent: Dict[int, ET.Element] = {id(c): el for el in root.iter() for c in el}
        self._tree_styles: Dict[int, Dict] = {}
        self._layer_stack: List[LayerDef] = []  # layers enclosing the element being walked
        self._clip_mode = False  # walking clipPath content: geometry only
        self._resolving: set = set()  # clipPath/mask elements being resolved (cycle guard)
        self._clips: Dict[int, Optional[ClipDef]] = {}
        self._masks: Dict[int, Optional[MaskDef]] = {}
        self._patterns: Dict[int, Optional[PatternDef]] = {}
        self._filter_defs: Dict[tuple, object] = {}
        self._image_defs: Dict[int, Optional[ImageDef]] = {}
        self._context: Optional[tuple] = None  # (fill, stroke) that context-fill/-stroke name
        self.image_depth = 0  # how many <image> documents enclose this one
        self.view_box = parse_view_box(root.get("viewBox"))
        self.width, self.height = root_size(root, self.view_box)
        self.root_viewport = (self.view_box[2], self.view_box[3]) if self.view_box else (self.width, self.height)

    # -- style ----------------------------------------------------------------------------------
    def decl(self, el: ET.Element) -> Dict[str, Declared]:
        d = self._decls.get(id(el))
        if d is None:
            d = self._decls[id(el)] = declarations(el, self.sheet)
        return d

    def computed(self, el: ET.Element, parent: Dict, level: int = 0) -> Dict:
        """Computed style of ``el`` below ``parent`` with ``level`` ``use`` boundaries above it
        (:func:`pds.svg.style.computed_style`)."""
        return computed_style(el, self.decl(el), parent, level)

    #: Where an optimised property is written back (:func:`pds.svg.style.value_owner`).
    _owner = staticmethod(value_owner)
    #: A computed property or its initial value (:func:`pds.svg.style.style_value`).
    get = staticmethod(style_value)

    def warn(self, what: str) -> None:
        self.unsupported[what] += 1

    def _register(self, param: Param) -> Param:
        self.params.append(param)
        return param

    # -- walk -------------------------------------------------------------------------------------
    def run(self) -> None:
        root_style = self.computed(self.root, dict(DEFAULTS), 0)
        if self.get(root_style, "display") == "none":
            return
        self._main_items = self.items
        chain = self._opacity_chain(self.root, [], force=False)
        scope = frozenset({self.root.get("id")} - {None})
        pushed = self._push_layer(self.root, np.eye(3), chain[-1] if chain else None, self.root_viewport)
        for child in self.root:
            self.walk(child, root_style, np.eye(3), chain, scope, (id(self.root),), (), self.root_viewport, 1)
        self._pop_layer(pushed)

    def _opacity_chain(self, el, chain, force: bool):
        d = self.decl(el).get("opacity")
        if d is None and not force:
            return chain
        value = parse_opacity(d.value if d is not None and d.value.lower() != "inherit" else None)
        key = ("opacity", id(el))
        p = self._scalars.get(key)
        if p is None:
            origin = d.origin if d is not None else "attr"
            p = self._scalars[key] = self._register(
                ScalarParam("opacity", el, "opacity", value, origin, self.dtype, self.device, upper=1.0))
        return chain + [p]

    def tree_style(self, el: ET.Element) -> Dict:
        """Computed style of ``el`` from its own ancestors (for content referenced from elsewhere)."""
        key = id(el)
        if key not in self._tree_styles:
            parent = self._parent.get(key)
            base = self.tree_style(parent) if parent is not None else dict(DEFAULTS)
            self._tree_styles[key] = self.computed(el, base, 0)
        return self._tree_styles[key]

    # -- transforms ------------------------------------------------------------------------------
    def _transform(self, el, viewport) -> np.ndarray:
        """The element's ``transform`` about its ``transform-origin``
        (:func:`pds.svg.parse.transforms.element_transform`)."""
        return element_transform(el, self.decl(el), viewport)

    # -- walk -------------------------------------------------------------------------------------
    def walk(self, el, parent_style, ctm, chain, scope, use_stack, uses, viewport, depth) -> None:
        if not isinstance(el.tag, str):
            return  # comment or processing instruction
        if depth > limits.MAX_DEPTH:
            raise SVGError(f"elements nested deeper than {limits.MAX_DEPTH} levels")
        self.visits += 1
        if self.visits > limits.MAX_VISITS:
            raise SVGError(f"the document expands to more than {limits.MAX_VISITS} elements (recursive <use>?)")
        ns = namespace(el.tag)
        if ns not in (SVG_NS, None):
            return  # foreign namespace (editor metadata): ignore silently
        tag = local_name(el.tag)
        if tag in NOT_RENDERED:
            return
        style = self.computed(el, parent_style, len(uses))
        if self.get(style, "display") == "none":
            return
        if tag not in SHAPES and tag not in CONTAINERS and tag not in ("svg", "use", "switch", "image", "text"):
            self.warn(f"<{tag}>")
            return
        m = ctm @ self._transform(el, viewport)
        if tag == "use":  # SVG 2 §5.6: x/y are part of the use element's transform (clip-path sees them)
            m = m @ translate(parse_length(el.get("x"), viewport[0], default=0.0),
                              parse_length(el.get("y"), viewport[1], default=0.0))
        if not np.all(np.isfinite(m)):
            return
        el_id = el.get("id")
        scope = scope | {el_id} if el_id else scope
        if tag in SHAPES:
            pushed = self._push_layer(el, m, None, viewport)
            self.shape(el, tag, style, m, self._opacity_chain(el, chain, force=True), scope, uses, viewport)
            self._pop_layer(pushed)
            return
        if tag == "text":
            pushed = self._push_layer(el, m, None, viewport)
            self._text(el, style, m, self._opacity_chain(el, chain, force=True), scope, uses, viewport)
            self._pop_layer(pushed)
            return
        if tag == "image":
            pushed = self._push_layer(el, m, None, viewport)
            self._image(el, style, m, self._opacity_chain(el, chain, force=True), scope, viewport)
            self._pop_layer(pushed)
            return
        before = len(chain)
        chain = self._opacity_chain(el, chain, force=False)
        pushed = self._push_layer(el, m, chain[-1] if len(chain) > before and not self._clip_mode else None, viewport)
        use_stack = use_stack + (id(el),)  # elements being walked: a <use> of any of them is circular
        if tag in CONTAINERS:
            for child in el:
                self.walk(child, style, m, chain, scope, use_stack, uses, viewport, depth + 1)
        elif tag == "switch":
            child = self._switch_child(el)
            if child is not None:
                self.walk(child, style, m, chain, scope, use_stack, uses, viewport, depth + 1)
        elif tag == "svg":
            self.nested_viewport(el, el, style, m, chain, scope, use_stack, uses, viewport, depth, None, None)
        elif tag == "use":
            self.use(el, style, m, chain, scope, use_stack, uses, viewport, depth)
        self._pop_layer(pushed)

    @staticmethod
    def _switch_child(el) -> Optional[ET.Element]:
        """The first direct child whose conditional attributes hold (SVG 1.1 §5.8.2).

        ``systemLanguage`` matches :data:`LANGUAGES` by primary tag (``en-US`` matches ``en``);
        ``requiredExtensions`` never holds (we implement none); ``requiredFeatures`` (removed in
        SVG 2) always holds, as in resvg and browsers.
        """
        for child in el:
            if not isinstance(child.tag, str) or namespace(child.tag) not in (SVG_NS, None):
                continue
            if child.get("requiredExtensions") is not None:
                continue
            lang = child.get("systemLanguage")
            if lang is not None:
                tags = [t.strip().lower() for t in lang.split(",") if t.strip()]
                if not any(t == want or t.split("-")[0] == want for t in tags for want in LANGUAGES):
                    continue
            return child
        return None

    def nested_viewport(self, el, content, style, m, chain, scope, use_stack, uses, viewport, depth, w_over, h_over):
        """A nested ``svg`` or an instanced ``symbol``: a new viewport, clipped to its rectangle
        unless ``overflow`` is ``visible``/``auto`` (the UA style sheet's default is hidden)."""
        vw, vh = viewport
        x = parse_length(el.get("x") if local_name(el.tag) == "svg" else None, vw, default=0.0)
        y = parse_length(el.get("y") if local_name(el.tag) == "svg" else None, vh, default=0.0)
        w = w_over if w_over is not None else parse_length(el.get("width"), vw, default=vw)
        h = h_over if h_over is not None else parse_length(el.get("height"), vh, default=vh)
        if w is None or h is None or w <= 0 or h <= 0:
            return
        vb = parse_view_box(content.get("viewBox"))
        inner = translate(x, y)
        if vb is not None:
            inner = inner @ view_box_transform(vb, content.get("preserveAspectRatio"), w, h)
            new_vp = (vb[2], vb[3])
        else:
            new_vp = (w, h)
        overflow = self.decl(content).get("overflow")
        clipped = overflow is None or overflow.value.strip().lower() not in ("visible", "auto")
        pushed = False
        if clipped:
            self._layer_stack.append(LayerDef(content, m, viewport=(x, y, w, h)))
            pushed = True
        for child in content:
            self.walk(child, style, m @ inner, chain, scope, use_stack, uses, new_vp, depth + 1)
        self._pop_layer(pushed)

    def use(self, el, style, m, chain, scope, use_stack, uses, viewport, depth) -> None:
        href = el.get("href") or el.get(f"{{{XLINK_NS}}}href") or ""
        href = href.strip()
        if not href.startswith("#"):
            if href:
                self.warn("<use> of an external file")
            return
        target = self.ids.get(href[1:])
        if target is None or target is el:
            return
        if id(target) in use_stack:  # circular reference
            self.warn("circular <use>")
            return
        vw, vh = viewport
        context = (self.paint(el, style, "fill", uses), self.paint(el, style, "stroke", uses))
        self._in_context(context, self._use_target, el, target, style, m, chain, scope, use_stack, uses, viewport,
                         depth)

    def _use_target(self, el, target, style, m, chain, scope, use_stack, uses, viewport, depth) -> None:
        vw, vh = viewport
        stack = use_stack + (id(target),)
        uses = uses + (el,)
        ttag = local_name(target.tag)
        if namespace(target.tag) not in (SVG_NS, None):
            return
        if ttag in ("symbol", "svg"):
            tstyle = self.computed(target, style, len(uses))
            if self.get(tstyle, "display") == "none" and ttag == "svg":
                return
            before = len(chain)
            chain = self._opacity_chain(target, chain, force=False)
            tid = target.get("id")
            tscope = scope | {tid} if tid else scope
            w = parse_length(el.get("width"), vw, default=None)
            h = parse_length(el.get("height"), vh, default=None)
            if ttag == "symbol":
                m = m @ self._transform(target, viewport)
            own = chain[-1] if len(chain) > before and not self._clip_mode else None
            pushed = self._push_layer(target, m, own, viewport)
            self.nested_viewport(target, target, tstyle, m, chain, tscope, stack, uses, viewport, depth + 1, w, h)
            self._pop_layer(pushed)
            return
        self.walk(target, style, m, chain, scope, stack, uses, viewport, depth + 1)


def _content_items(item: DrawItem):
    """Every clip-path and mask content item that affects ``item`` (nested ones included)."""
    seen: set = set()
    todo = [item]
    while todo:
        it = todo.pop()
        defs = []
        for layer in it.layers:
            c = layer.clip
            while c is not None:
                defs.append(c)
                c = c.clip
            if layer.mask is not None:
                defs.append(layer.mask)
        defs += [p.pattern for p in (it.fill, it.stroke) if isinstance(p, PatternRef)]
        for d in defs:
            if id(d) in seen:
                continue
            seen.add(id(d))
            for content in d.items:
                yield content
                todo.append(content)


def build_document(root: ET.Element, namespaces, *, dtype=torch.float32, device=None,
                   image_depth: int = 0, outside=()) -> Document:
    """Walk a parsed SVG tree into a :class:`Document` (no warnings are emitted here).

    Unsupported features are counted in ``Document.unsupported`` (kind → occurrences); the caller
    turns them into warnings.  ``image_depth`` is how many ``<image>`` documents enclose this one
    (see :data:`pds.svg.image.MAX_IMAGE_DEPTH`).  ``outside``: the comments and processing
    instructions around the root (see :func:`~pds.svg.parse.read_xml`), kept for writing.
    """
    b = _Builder(root, dtype, device)
    b.image_depth = image_depth
    b.run()
    # gradient stops and shared params: users are every item that paints with them
    for item in b.items:
        for paint in (item.fill, item.stroke):
            if isinstance(paint, ColorParam):
                paint.users.add(item.index)
            elif isinstance(paint, GradientRef):
                paint.gradient.stops.users.add(item.index)
        if id(item.geometry) in b._geom_params:  # an <image>'s rectangle is no parameter
            b._geom_params[id(item.geometry)].users.add(item.index)
        # what the item's clip paths and masks draw changes the item: they share its users
        for content in _content_items(item):
            for p in _Builder.item_params(content):
                p.users.add(item.index)
            for paint in (content.fill, content.stroke):
                if isinstance(paint, ColorParam):
                    paint.users.add(item.index)
                elif isinstance(paint, GradientRef):
                    paint.gradient.stops.users.add(item.index)
            if id(content.geometry) in b._geom_params:
                b._geom_params[id(content.geometry)].users.add(item.index)
    params = [p for p in b.params if p.users]
    return Document(root, list(namespaces), b.width, b.height, b.view_box, root.get("preserveAspectRatio"),
                    b.items, params, b.unsupported, list(outside))
