"""Read an SVG document into differentiable parameters and a painter-ordered list of draw items.

Parser choice
-------------
XML is read with **defusedxml** (``forbid_entities``, ``forbid_external``: no entity expansion, so
no "billion laughs", and no external entities or DTD fetches) into a stdlib ElementTree that we
keep, so :mod:`pds.svg.write` can write the same document back with only optimised attributes
changed. On top of that tree we use **svgelements** as the SVG parser for what is hard to get
right: path data (every command, relative/absolute, smooth curves, implicit commands, minified
numbers such as ``.5.5``, and elliptical arcs with out-of-range radii, converted to cubics) and
transform lists. svgelements was chosen over svgpathtools because it follows the SVG spec as its
stated goal ("if the spec says one thing and we do another, that is a bug"), keeps subpath
structure (``Move``/``Close`` segments, which svgpathtools' ``parse_path`` drops) and parses
transforms, where svgpathtools would need hand-written code. svgelements' own document loader is
not used: it parses XML without defusedxml and flattens the tree, losing the structure we must
write back. CSS (``style`` attributes, ``<style>`` sheets, colours) goes through tinycss2 and
cssselect2, see :mod:`pds.svg.style`.

What is supported
-----------------
``path``, ``rect`` (rx/ry), ``circle``, ``ellipse``, ``line``, ``polyline``, ``polygon``; ``g``,
``a``, ``switch`` (first child), nested ``svg``, ``defs``, ``use`` (of shapes, groups, ``symbol``
and ``svg``), ``transform`` everywhere; presentation attributes, ``style`` and ``<style>``
sheets with inheritance and ``inherit``; colours (named, hex, ``rgb()``/``rgba()``/``hsl()``,
``currentColor``); ``opacity`` (group opacity is multiplied into the elements, an approximation
when children overlap), ``fill-opacity``, ``stroke-opacity``; ``fill-rule``; ``stroke-width``,
``stroke-linecap``, ``stroke-linejoin``, ``stroke-miterlimit``; ``paint-order``; ``display`` and
``visibility``; root ``viewBox``/``preserveAspectRatio``/``width``/``height`` with units; linear
and radial gradients (``gradientUnits``, ``gradientTransform``, ``spreadMethod``, ``href``
inheritance of attributes and stops).

Anything else (``text``, ``image``, ``filter``, ``mask``, ``clipPath``, ``pattern``, markers,
dashes...) is skipped with one :class:`SVGFeatureWarning` per kind, never an exception.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union
from xml.etree import ElementTree as ET

import numpy as np
import torch
from torch import Tensor

from .geometry import Geometry, make_geometry
from .style import (
    DEFAULTS,
    INHERITED,
    SVG_NS,
    XLINK_NS,
    Declared,
    Stylesheet,
    color_to_hex,
    declarations,
    local_name,
    namespace,
    parse_color,
    parse_length,
    parse_numbers,
    parse_opacity,
    set_declaration,
)

__all__ = [
    "Document",
    "DrawItem",
    "SVGError",
    "SVGFeatureWarning",
    "build_document",
    "read_xml",
]

#: Refuse files larger than this (bytes): icons are kilobytes.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Refuse documents that expand (through ``use``) into more painted elements than this.
MAX_DRAW_ITEMS = 20_000
#: Refuse documents whose walk (with ``use`` expanded) visits more elements than this.
MAX_VISITS = 200_000
#: Refuse element nesting deeper than this (keeps recursion bounded).
MAX_DEPTH = 400

SHAPES = frozenset({"path", "rect", "circle", "ellipse", "line", "polyline", "polygon"})
CONTAINERS = frozenset({"g", "a"})
#: Elements that never draw where they stand (referenced elsewhere or metadata).
NOT_RENDERED = frozenset(
    {"defs", "linearGradient", "radialGradient", "stop", "style", "title", "desc", "metadata", "symbol",
     "clipPath", "mask", "pattern", "marker", "filter", "script", "view", "cursor", "font", "font-face",
     "color-profile"}
)
#: Elements we know but cannot draw (one warning each).
UNSUPPORTED = frozenset(
    {"text", "image", "foreignObject", "animate", "animateTransform", "animateMotion", "set",
     "animateColor", "mpath", "tspan", "textPath", "feImage", "hatch", "mesh", "meshgradient"}
)


class SVGError(ValueError):
    """An SVG that cannot be read at all (not XML, unsafe XML, unreadable file...).

    The message is one line meant for users.
    """


class SVGFeatureWarning(UserWarning):
    """An SVG feature the parser skips (one warning per kind and document)."""


# --------------------------------------------------------------------------------------------
# safe XML
# --------------------------------------------------------------------------------------------

class _TreeBuilder(ET.TreeBuilder):
    """Keeps comments and processing instructions and records namespace declarations."""

    def __init__(self):
        super().__init__(insert_comments=True, insert_pis=True)
        self.namespaces: List[Tuple[str, str]] = []

    def start_ns(self, prefix, uri):  # called by XMLParser for every xmlns declaration
        self.namespaces.append((prefix or "", uri))


def _is_svg_text(source) -> bool:
    return isinstance(source, str) and source.lstrip().startswith("<")


def read_xml(source: Union[str, bytes, PathLike]) -> Tuple[ET.Element, List[Tuple[str, str]]]:
    """Parse SVG text or a file safely.

    Args:
        source: SVG text (a ``str`` starting with ``<``, or ``bytes``) or a file path.

    Returns:
        ``(root, namespaces)``: the root element and the ``(prefix, uri)`` declarations in
        document order (``""`` for the default namespace).

    Raises:
        SVGError: unreadable file, malformed XML, entity declarations (XML bombs), external
            entities, or a root element that is not ``<svg>``.
    """
    from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
    from defusedxml.ElementTree import DefusedXMLParser

    if isinstance(source, (bytes, bytearray)):
        data: Union[str, bytes] = bytes(source)
        name = "SVG data"
    elif _is_svg_text(source):
        data = source
        name = "SVG text"
    else:
        path = Path(source)
        name = str(path)
        try:
            if path.is_dir():
                raise SVGError(f"cannot read {name}: it is a directory")
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise SVGError(f"cannot read {name}: {size} bytes is larger than the {MAX_FILE_BYTES} byte limit")
            data = path.read_bytes()
        except FileNotFoundError:
            raise SVGError(f"cannot read {name}: no such file") from None
        except PermissionError:
            raise SVGError(f"cannot read {name}: permission denied") from None
        except OSError as e:
            raise SVGError(f"cannot read {name}: {e.strerror or e}") from None
    if not data or not (data.strip() if isinstance(data, (str, bytes)) else data):
        raise SVGError(f"{name} is empty, not an SVG document")
    builder = _TreeBuilder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(data)
        root = parser.close()
    except EntitiesForbidden:
        raise SVGError(f"refusing {name}: it declares XML entities (possible 'billion laughs' bomb)") from None
    except ExternalReferenceForbidden:
        raise SVGError(f"refusing {name}: it references external entities") from None
    except DTDForbidden:  # pragma: no cover - DTDs are allowed, kept for completeness
        raise SVGError(f"refusing {name}: it has a DTD") from None
    except ET.ParseError as e:
        raise SVGError(f"{name} is not well-formed XML: {e}") from None
    except (ValueError, UnicodeError) as e:
        raise SVGError(f"{name} cannot be decoded as XML: {e}") from None
    if local_name(root.tag) != "svg" or namespace(root.tag) not in (SVG_NS, None):
        raise SVGError(f"{name} is XML but not SVG: the root element is <{local_name(root.tag) or root.tag}>")
    return root, builder.namespaces


# --------------------------------------------------------------------------------------------
# matrices
# --------------------------------------------------------------------------------------------

def parse_transform(text: Optional[str]) -> np.ndarray:
    """An SVG transform list as a 3×3 affine matrix (identity when absent or invalid)."""
    m = np.eye(3)
    if not text or not text.strip():
        return m
    from svgelements import Matrix  # deferred: svgelements is a heavy import

    try:
        t = Matrix(text)
    except Exception:  # noqa: BLE001
        return m
    vals = [t.a, t.b, t.c, t.d, t.e, t.f]
    if not all(math.isfinite(float(v)) for v in vals):
        return m
    a, b, c, d, e, f = (float(v) for v in vals)
    return np.array([[a, c, e], [b, d, f], [0.0, 0.0, 1.0]])


def translate(x: float, y: float) -> np.ndarray:
    return np.array([[1.0, 0.0, x], [0.0, 1.0, y], [0.0, 0.0, 1.0]])


def scale(sx: float, sy: float) -> np.ndarray:
    return np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])


def parse_view_box(text: Optional[str]) -> Optional[Tuple[float, float, float, float]]:
    nums = parse_numbers(text)
    if len(nums) != 4 or nums[2] <= 0 or nums[3] <= 0:
        return None
    return tuple(nums)  # type: ignore[return-value]


def view_box_transform(view_box, par: Optional[str], width: float, height: float) -> np.ndarray:
    """The viewBox → viewport matrix of SVG 1.1 §7.8 (``preserveAspectRatio``, default xMidYMid meet)."""
    vx, vy, vw, vh = view_box
    words = (par or "").replace(",", " ").split()
    if words and words[0] == "defer":
        words = words[1:]
    align = words[0] if words else "xMidYMid"
    slice_ = len(words) > 1 and words[1] == "slice"
    sx, sy = width / vw, height / vh
    if align == "none":
        return scale(sx, sy) @ translate(-vx, -vy)
    if not re.fullmatch(r"x(Min|Mid|Max)Y(Min|Mid|Max)", align):
        align = "xMidYMid"
    s = max(sx, sy) if slice_ else min(sx, sy)
    tx = {"Min": 0.0, "Mid": (width - vw * s) / 2.0, "Max": width - vw * s}[align[1:4]]
    ty = {"Min": 0.0, "Mid": (height - vh * s) / 2.0, "Max": height - vh * s}[align[5:8]]
    return translate(tx, ty) @ scale(s, s) @ translate(-vx, -vy)


# --------------------------------------------------------------------------------------------
# parameters (each knows its kind, tensors, users and how to write itself back)
# --------------------------------------------------------------------------------------------

ElementMap = Callable[[ET.Element], ET.Element]
Formatter = Callable[[float], str]


class Param:
    """A group of leaf tensors of one kind, read from (and written back to) the document."""

    kind = ""

    def __init__(self):
        self.users: set = set()  # indices of the draw items it affects

    def tensors(self) -> List[Tensor]:
        raise NotImplementedError

    def changed(self) -> bool:
        raise NotImplementedError

    def write(self, fmt: Formatter, element_of: ElementMap) -> None:
        raise NotImplementedError

    def project(self) -> None:
        """Clamp to the valid range (called under no_grad)."""


class GeometryParam(Param):
    kind = "points"

    def __init__(self, geometry: Geometry):
        super().__init__()
        self.geometry = geometry

    def tensors(self):
        return self.geometry.tensors()

    def changed(self):
        return self.geometry.changed()

    def write(self, fmt, element_of):
        self.geometry.write(fmt, element_of(self.geometry.element))

    def project(self):
        self.geometry.project()


def _snapshot(t: Tensor) -> Tensor:
    return t.detach().cpu().clone()


class ColorParam(Param):
    """A solid ``fill`` or ``stroke``: ``rgba`` ``(4,)`` straight RGBA, alpha = colour alpha × *-opacity."""

    def __init__(self, kind: str, element: ET.Element, rgba, effective_opacity: float,
                 origins: Dict[str, str], dtype, device):
        super().__init__()
        self.kind = kind  # "fill" or "stroke"
        self.element = element
        self.rgba = torch.tensor(rgba, dtype=dtype, device=device)
        self._orig = _snapshot(self.rgba)
        self.effective_opacity = effective_opacity  # the *-opacity that applies if we write nothing
        self.origins = origins

    def tensors(self):
        return [self.rgba]

    def changed(self):
        return not torch.equal(self.rgba.detach().cpu(), self._orig)

    def write(self, fmt, element_of):
        el = element_of(self.element)
        v = self.rgba.detach().cpu().double().clamp(0, 1).tolist()
        prop = self.kind
        set_declaration(el, prop, color_to_hex(v[:3]), self.origins.get(prop, "attr"))
        if abs(v[3] - self.effective_opacity) > 1e-9 or el.get(prop + "-opacity") is not None:
            set_declaration(el, prop + "-opacity", fmt(v[3]), self.origins.get(prop + "-opacity", "attr"))

    def project(self):
        self.rgba.clamp_(0.0, 1.0)


class ScalarParam(Param):
    """A scalar property of one element: ``opacity`` (kind ``"opacity"``) or ``stroke-width``."""

    def __init__(self, kind: str, element: ET.Element, prop: str, value: float, origin: str, dtype, device,
                 upper: Optional[float] = None):
        super().__init__()
        self.kind = kind
        self.element = element
        self.prop = prop
        self.value = torch.tensor(float(value), dtype=dtype, device=device)
        self._orig = _snapshot(self.value)
        self.origin = origin
        self.upper = upper

    def tensors(self):
        return [self.value]

    def changed(self):
        return not torch.equal(self.value.detach().cpu(), self._orig)

    def write(self, fmt, element_of):
        v = float(self.value.detach().clamp_min(0))
        if self.upper is not None:
            v = min(v, self.upper)
        set_declaration(element_of(self.element), self.prop, fmt(v), self.origin)

    def project(self):
        if self.upper is None:
            self.value.clamp_(min=0.0)
        else:
            self.value.clamp_(0.0, self.upper)


class StopsParam(Param):
    """The stops of one gradient element: ``colors`` ``(K, 4)`` (parameter) and fixed ``offsets``."""

    def __init__(self, kind: str, stops: Sequence[ET.Element], offsets, colors, opacities, origins, dtype, device):
        super().__init__()
        self.kind = kind
        self.stops = list(stops)
        self.offsets = torch.tensor(offsets, dtype=dtype, device=device)
        self.colors = torch.tensor(colors, dtype=dtype, device=device).reshape(-1, 4)
        self._orig = _snapshot(self.colors)
        self.stop_opacities = list(opacities)
        self.origins = origins

    def tensors(self):
        return [self.colors]

    def changed(self):
        return not torch.equal(self.colors.detach().cpu(), self._orig)

    def write(self, fmt, element_of):
        cur = self.colors.detach().cpu().double().clamp(0, 1)
        for k, stop in enumerate(self.stops):
            if torch.equal(self.colors[k].detach().cpu(), self._orig[k]):
                continue
            el = element_of(stop)
            v = cur[k].tolist()
            origins = self.origins[k]
            set_declaration(el, "stop-color", color_to_hex(v[:3]), origins.get("stop-color", "attr"))
            if abs(v[3] - self.stop_opacities[k]) > 1e-9 or el.get("stop-opacity") is not None:
                set_declaration(el, "stop-opacity", fmt(v[3]), origins.get("stop-opacity", "attr"))

    def project(self):
        self.colors.clamp_(0.0, 1.0)


@dataclass
class GradientDef:
    """A gradient element with its ``href`` chain resolved (geometry in gradient units)."""

    kind: str  # "linear" | "radial"
    stops: StopsParam
    units: str  # "objectBoundingBox" | "userSpaceOnUse"
    transform: np.ndarray
    spread: str
    coords: Dict[str, float]


@dataclass
class GradientRef:
    """A shape's use of a gradient, with that shape's ``fill-opacity``/``stroke-opacity``."""

    gradient: GradientDef
    opacity: float


Paint = Union[ColorParam, GradientRef]


@dataclass
class DrawItem:
    """One painted shape instance, in painter's order.

    Attributes:
        ctm: 3×3 matrix from the shape's user space to the root's user space (viewBox units).
        scope: ids of the element, its ancestors and the ``use`` elements that instanced it
            (what :meth:`pds.svg.SVGScene.select` matches).
        opacities: the element's ``opacity`` and its ancestors' (multiplied at render time).
    """

    index: int
    element: ET.Element
    geometry: Geometry
    ctm: np.ndarray
    fill: Optional[Paint]
    stroke: Optional[Paint]
    stroke_width: Optional[ScalarParam]
    fill_rule: str
    linecap: str
    linejoin: str
    miterlimit: float
    opacities: List[ScalarParam]
    scope: FrozenSet[str]
    stroke_first: bool = False

    @property
    def id(self) -> Optional[str]:
        return self.element.get("id")


@dataclass
class Document:
    """A parsed SVG: the kept XML tree, the viewport and the draw items with their parameters."""

    root: ET.Element
    namespaces: List[Tuple[str, str]]
    width: float  # intrinsic size in px
    height: float
    view_box: Optional[Tuple[float, float, float, float]]
    preserve_aspect_ratio: Optional[str]
    items: List[DrawItem]
    params: List[Param]
    unsupported: Counter = field(default_factory=Counter)

    def canvas_size(self, size: int) -> Tuple[int, int]:
        """``(W, H)`` in pixels with the longer side ``size`` and the document's aspect ratio."""
        s = size / max(self.width, self.height)
        return max(1, int(round(self.width * s))), max(1, int(round(self.height * s)))

    def canvas_matrix(self, width: int, height: int) -> np.ndarray:
        """Root user space → canvas pixels (the same mapping cairosvg uses for that output size)."""
        if self.view_box is not None:
            return view_box_transform(self.view_box, self.preserve_aspect_ratio, width, height)
        return scale(width / self.width, height / self.height)

    @property
    def user_size(self) -> float:
        """The longer side of the root coordinate system (viewBox, else intrinsic size)."""
        if self.view_box is not None:
            return max(self.view_box[2], self.view_box[3])
        return max(self.width, self.height)


# --------------------------------------------------------------------------------------------
# the tree walk
# --------------------------------------------------------------------------------------------

_URL_RE = re.compile(r"""^url\(\s*['"]?\s*#([^'")\s]+)\s*['"]?\s*\)\s*(.*)$""", re.DOTALL)
_LINECAPS = ("butt", "round", "square")
_JOINS = {"miter": "miter", "round": "round", "bevel": "bevel", "miter-clip": "miter", "arcs": "miter"}


def _root_size(root: ET.Element, view_box) -> Tuple[float, float]:
    def size(name):
        v = root.get(name)
        if v is None or v.strip().endswith("%"):
            return None
        x = parse_length(v, 100.0)
        return x if x is not None and x > 0 else None

    w, h = size("width"), size("height")
    if view_box is not None:
        vw, vh = view_box[2], view_box[3]
        if w is None and h is None:
            return vw, vh
        if w is None:
            return h * vw / vh, h
        if h is None:
            return w, w * vh / vw
        return w, h
    return (w or 300.0), (h or 150.0)


class _Builder:
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
        self.view_box = parse_view_box(root.get("viewBox"))
        self.width, self.height = _root_size(root, self.view_box)
        self.root_viewport = (self.view_box[2], self.view_box[3]) if self.view_box else (self.width, self.height)

    # -- style ----------------------------------------------------------------------------------
    def decl(self, el: ET.Element) -> Dict[str, Declared]:
        d = self._decls.get(id(el))
        if d is None:
            d = self._decls[id(el)] = declarations(el, self.sheet)
        return d

    def computed(self, el: ET.Element, parent: Dict, level: int = 0) -> Dict:
        """Computed style: property → value, plus ``"@" + property`` → ``(declaring element, level)``.

        ``level`` is the number of ``use`` boundaries above ``el``; it tells :meth:`_owner` whether
        an inherited value crossed a ``use`` (then it is written back on that ``use``).
        """
        style = {k: v for k, v in parent.items() if (k[1:] if k[:1] == "@" else k) in INHERITED}
        for k, d in self.decl(el).items():
            v = d.value
            if v.strip().lower() == "inherit":
                for key in (k, "@" + k):
                    if key in parent:
                        style[key] = parent[key]
                continue
            style[k] = v
            style["@" + k] = (el, level)
        return style

    @staticmethod
    def _owner(el: ET.Element, style: Dict, prop: str, uses: Tuple[ET.Element, ...]) -> ET.Element:
        """Where an optimised ``prop`` of shape ``el`` is written back.

        The shape itself, unless its value is inherited across a ``use`` boundary: then the first
        ``use`` below the declaring element, so that each instance keeps its own value and the
        referenced element stays shared.
        """
        by = style.get("@" + prop)
        level = by[1] if by is not None else 0
        return el if level >= len(uses) else uses[level]

    @staticmethod
    def get(style: Dict[str, str], name: str) -> str:
        return style.get(name, DEFAULTS.get(name, "")).strip()

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
        self._check_properties(self.root)
        chain = self._opacity_chain(self.root, [], force=False)
        scope = frozenset({self.root.get("id")} - {None})
        for child in self.root:
            self.walk(child, root_style, np.eye(3), chain, scope, (id(self.root),), (), self.root_viewport, 1)

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

    def _check_properties(self, el) -> None:
        d = self.decl(el)
        for prop in ("clip-path", "mask", "filter"):
            v = d.get(prop)
            if v is not None and v.value.strip().lower() not in ("none", "", "inherit"):
                self.warn(prop)
        v = d.get("mix-blend-mode")
        if v is not None and v.value.strip().lower() not in ("normal", "inherit"):
            self.warn("mix-blend-mode")

    def walk(self, el, parent_style, ctm, chain, scope, use_stack, uses, viewport, depth) -> None:
        if not isinstance(el.tag, str):
            return  # comment or processing instruction
        if depth > MAX_DEPTH:
            raise SVGError(f"elements nested deeper than {MAX_DEPTH} levels")
        self.visits += 1
        if self.visits > MAX_VISITS:
            raise SVGError(f"the document expands to more than {MAX_VISITS} elements (recursive <use>?)")
        ns = namespace(el.tag)
        if ns not in (SVG_NS, None):
            return  # foreign namespace (editor metadata): ignore silently
        tag = local_name(el.tag)
        if tag in NOT_RENDERED:
            return
        style = self.computed(el, parent_style, len(uses))
        if self.get(style, "display") == "none":
            return
        if tag not in SHAPES and tag not in CONTAINERS and tag not in ("svg", "use", "switch"):
            self.warn(f"<{tag}>")
            return
        self._check_properties(el)
        m = ctm @ parse_transform(el.get("transform"))
        if not np.all(np.isfinite(m)):
            return
        el_id = el.get("id")
        scope = scope | {el_id} if el_id else scope
        if tag in SHAPES:
            self.shape(el, tag, style, m, self._opacity_chain(el, chain, force=True), scope, uses, viewport)
            return
        chain = self._opacity_chain(el, chain, force=False)
        use_stack = use_stack + (id(el),)  # elements being walked: a <use> of any of them is circular
        if tag in CONTAINERS:
            for child in el:
                self.walk(child, style, m, chain, scope, use_stack, uses, viewport, depth + 1)
        elif tag == "switch":
            for child in el:
                if isinstance(child.tag, str) and namespace(child.tag) in (SVG_NS, None):
                    self.walk(child, style, m, chain, scope, use_stack, uses, viewport, depth + 1)
                    break
        elif tag == "svg":
            self.nested_viewport(el, el, style, m, chain, scope, use_stack, uses, viewport, depth, None, None)
        elif tag == "use":
            self.use(el, style, m, chain, scope, use_stack, uses, viewport, depth)

    def nested_viewport(self, el, content, style, m, chain, scope, use_stack, uses, viewport, depth, w_over, h_over):
        """A nested ``svg`` or an instanced ``symbol``: new viewport (clipping is not applied)."""
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
        for child in content:
            self.walk(child, style, m @ inner, chain, scope, use_stack, uses, new_vp, depth + 1)

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
        x = parse_length(el.get("x"), vw, default=0.0)
        y = parse_length(el.get("y"), vh, default=0.0)
        m = m @ translate(x, y)
        stack = use_stack + (id(target),)
        uses = uses + (el,)
        ttag = local_name(target.tag)
        if namespace(target.tag) not in (SVG_NS, None):
            return
        if ttag in ("symbol", "svg"):
            tstyle = self.computed(target, style, len(uses))
            if self.get(tstyle, "display") == "none" and ttag == "svg":
                return
            self._check_properties(target)
            chain = self._opacity_chain(target, chain, force=False)
            tid = target.get("id")
            tscope = scope | {tid} if tid else scope
            w = parse_length(el.get("width"), vw, default=None)
            h = parse_length(el.get("height"), vh, default=None)
            if ttag == "symbol":
                m = m @ parse_transform(target.get("transform"))
            self.nested_viewport(target, target, tstyle, m, chain, tscope, stack, uses, viewport, depth + 1, w, h)
            return
        self.walk(target, style, m, chain, scope, stack, uses, viewport, depth + 1)

    # -- shapes --------------------------------------------------------------------------------------
    def shape(self, el, tag, style, m, chain, scope, uses, viewport) -> None:
        key = (id(el), viewport)
        if key not in self._geoms:
            geom, problem = make_geometry(el, tag, viewport, dtype=self.dtype, device=self.device)
            if problem:
                self.warn(f"{problem} in <{tag}>")
            self._geoms[key] = geom
            if geom is not None:
                self._geom_params[id(geom)] = self._register(GeometryParam(geom))
        geom = self._geoms[key]
        if geom is None:
            return
        if self.get(style, "visibility") in ("hidden", "collapse"):
            return
        if len(self.items) >= MAX_DRAW_ITEMS:
            raise SVGError(f"the document expands to more than {MAX_DRAW_ITEMS} shapes (recursive <use>?)")
        fill = self.paint(el, style, "fill", uses) if tag != "line" else None  # a line has no interior
        stroke = self.paint(el, style, "stroke", uses)
        vw, vh = viewport
        diag = math.sqrt((vw * vw + vh * vh) / 2.0)
        sw_text = self.get(style, "stroke-width")
        sw = parse_length(sw_text, diag, default=None)
        if sw is None or sw < 0:
            sw = 1.0
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
        if fill is None and stroke is None:
            return
        dash = self.get(style, "stroke-dasharray")
        if stroke is not None and dash.lower() not in ("none", "") and any(v > 0 for v in parse_numbers(dash)):
            self.warn("stroke-dasharray")
        if tag in ("path", "line", "polyline", "polygon"):
            for mk in ("marker", "marker-start", "marker-mid", "marker-end"):
                if self.get(style, mk).lower() not in ("none", ""):
                    self.warn("marker")
                    break
        linecap = self.get(style, "stroke-linecap")
        linejoin = _JOINS.get(self.get(style, "stroke-linejoin"), "miter")
        try:
            miterlimit = max(1.0, float(self.get(style, "stroke-miterlimit")))
        except ValueError:
            miterlimit = 4.0
        order = [w for w in self.get(style, "paint-order").split() if w in ("fill", "stroke")]
        stroke_first = bool(order) and order[0] == "stroke"
        fill_rule = "evenodd" if self.get(style, "fill-rule") == "evenodd" else "nonzero"
        item = DrawItem(
            index=len(self.items), element=el, geometry=geom, ctm=m, fill=fill, stroke=stroke,
            stroke_width=width_param, fill_rule=fill_rule,
            linecap=linecap if linecap in _LINECAPS else "butt", linejoin=linejoin, miterlimit=miterlimit,
            opacities=list(chain), scope=scope, stroke_first=stroke_first,
        )
        self.items.append(item)
        for p in self.item_params(item):
            p.users.add(item.index)

    @staticmethod
    def item_params(item: DrawItem) -> List[Param]:
        return [p for p in (*item.opacities, item.stroke_width) if p is not None]

    def paint(self, el, style, which: str, uses=()) -> Optional[Paint]:
        value = self.get(style, which)
        opacity = parse_opacity(self.get(style, which + "-opacity"))
        if value.lower() == "none" or not value:
            return None
        m = _URL_RE.match(value)
        if m:
            ref, fallback = m.group(1), m.group(2).strip()
            target = self.ids.get(ref)
            ttag = local_name(target.tag) if target is not None else ""
            if ttag in ("linearGradient", "radialGradient"):
                g = self.gradient(target, which)
                if g is None:
                    return None
                return GradientRef(g, opacity)
            if ttag:
                self.warn(f"<{ttag}> paint")
            if not fallback:
                return None
            value = fallback
            if value.lower() == "none":
                return None
        if value.lower() in ("context-fill", "context-stroke"):
            self.warn(value.lower())
            return None
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
            return parse_length(default, ref) if x is None else x

        if kind == "linear":
            coords = {"x1": length("x1", vw, "0%"), "y1": length("y1", vh, "0%"),
                      "x2": length("x2", vw, "100%"), "y2": length("y2", vh, "0%")}
        else:
            cx, cy = length("cx", vw, "50%"), length("cy", vh, "50%")
            r = length("r", diag, "50%")
            fx = parse_length(attr("fx", True), vw, default=None) if attr("fx", True) is not None else None
            fy = parse_length(attr("fy", True), vh, default=None) if attr("fy", True) is not None else None
            coords = {"cx": cx, "cy": cy, "r": r, "fx": cx if fx is None else fx, "fy": cy if fy is None else fy}
        g = GradientDef(kind, stops, units, parse_transform(attr("gradientTransform")), spread, coords)
        self._gradients[id(el)] = g
        return g

    def stops(self, owner: ET.Element, which: str) -> Optional[StopsParam]:
        if id(owner) in self._stops:
            return self._stops[id(owner)]
        owner_style = self.computed(owner, dict(DEFAULTS), 0)
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
        if not elements:
            self._stops[id(owner)] = None
            return None
        p = self._register(StopsParam(which, elements, offsets, colors, opacities, origins, self.dtype, self.device))
        self._stops[id(owner)] = p
        return p


def build_document(root: ET.Element, namespaces, *, dtype=torch.float32, device=None) -> Document:
    """Walk a parsed SVG tree into a :class:`Document` (no warnings are emitted here).

    Unsupported features are counted in ``Document.unsupported`` (kind → occurrences); the caller
    turns them into warnings.
    """
    b = _Builder(root, dtype, device)
    b.run()
    # gradient stops and shared params: users are every item that paints with them
    for item in b.items:
        for paint in (item.fill, item.stroke):
            if isinstance(paint, ColorParam):
                paint.users.add(item.index)
            elif isinstance(paint, GradientRef):
                paint.gradient.stops.users.add(item.index)
        b._geom_params[id(item.geometry)].users.add(item.index)
    params = [p for p in b.params if p.users]
    return Document(root, list(namespaces), b.width, b.height, b.view_box, root.get("preserveAspectRatio"),
                    b.items, params, b.unsupported)
