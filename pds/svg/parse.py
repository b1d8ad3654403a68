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
``a``, ``switch`` (``systemLanguage``, ``requiredExtensions``), nested ``svg`` and ``symbol``
viewports (clipped unless ``overflow`` is visible, ``preserveAspectRatio``), ``defs``, ``use``,
``transform`` everywhere, the CSS ``transform`` property and ``transform-origin``; presentation
attributes, ``style`` and ``<style>`` sheets with inheritance and ``inherit``; colours;
``font-size`` with relative units (``em``/``ex``/``%`` lengths); ``opacity`` (groups are offscreen
layers, :mod:`pds.svg.layers`), ``fill-opacity``, ``stroke-opacity``; ``clip-path`` /
``clipPath`` (units, ``clip-rule``, nested), ``mask`` (luminance/alpha, units),
``mix-blend-mode`` (separable modes), ``isolation``; ``fill-rule``; strokes (width, caps, joins,
miter limit, ``stroke-dasharray``/``-dashoffset``/``pathLength``); ``paint-order``; markers;
``display``/``visibility``; linear and radial gradients and patterns with ``href`` inheritance.

``image`` from ``data:`` URIs (PNG, JPEG, GIF, WebP, BMP, SVG; :mod:`pds.svg.image`), filters
(:mod:`pds.svg.filters`), ``text``/``tspan`` as glyph outlines (:mod:`pds.svg.text`), radial
gradient ``fr``, ``context-fill``/``context-stroke``.

Anything else (``textPath``, ``foreignObject``, animation...) is skipped with one
:class:`SVGFeatureWarning` per kind, never an exception.
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
from .image import ImageDef
from .layers import ClipDef, LayerDef, MaskDef, PatternDef, PatternRef
from .shapes import BLEND_MODES
from .style import _NUMBER  # noqa: F401 - one number syntax for the whole parser
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
#: Refuse a path (or polyline/polygon) with more segments than this: rasterizer memory grows
#: with segments × pixels crossed (10,000 canvas-crossing segments take about 1.6 GB at 256 px).
MAX_PATH_SEGMENTS = 10_000
#: Refuse documents whose painted shapes (``use`` instances counted) have more segments in all.
MAX_SEGMENTS = 50_000
#: Refuse gradients with more stops than this (each stop is a parameter and a colour band).
MAX_GRADIENT_STOPS = 1_000

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
    {"foreignObject", "animate", "animateTransform", "animateMotion", "set",
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
        from ..util.files import InputError, read_capped

        try:
            # capped while reading: devices and FIFOs report size 0 (/dev/zero would never end)
            data = read_capped(path, MAX_FILE_BYTES, "SVG")
        except InputError as e:
            raise SVGError(str(e)) from None
        except IsADirectoryError:
            raise SVGError(f"cannot read {name}: it is a directory") from None
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
    except LookupError as e:  # encoding="x-klingon": Python knows no such codec
        raise SVGError(f"{name} declares an unknown character encoding ({e}); save it as UTF-8") from None
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
    # beyond 1e150 a product of two entries (a gradient's inverse, a composed CTM) overflows
    if not all(math.isfinite(float(v)) and abs(float(v)) <= MAX_TRANSFORM_ENTRY for v in vals):
        return m
    a, b, c, d, e, f = (float(v) for v in vals)
    return np.array([[a, c, e], [b, d, f], [0.0, 0.0, 1.0]])


def translate(x: float, y: float) -> np.ndarray:
    return np.array([[1.0, 0.0, x], [0.0, 1.0, y], [0.0, 0.0, 1.0]])


def scale(sx: float, sy: float) -> np.ndarray:
    return np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])


#: Transforms with an entry larger than this are invalid (treated as identity, like non-finite ones).
MAX_TRANSFORM_ENTRY = 1e150

#: Sizes (width, height, viewBox extent) outside this range are ignored as invalid: the canvas
#: scale ``size / extent`` (size up to 8192) must stay a finite float, and so must every product.
SIZE_RANGE = (1e-300, 1e300)


def _sane_size(x: Optional[float]) -> bool:
    return x is not None and math.isfinite(x) and SIZE_RANGE[0] <= x <= SIZE_RANGE[1]


def parse_view_box(text: Optional[str]) -> Optional[Tuple[float, float, float, float]]:
    nums = parse_numbers(text)
    if len(nums) != 4 or not (_sane_size(nums[2]) and _sane_size(nums[3])) or not all(map(math.isfinite, nums)):
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


Paint = Union[ColorParam, GradientRef, PatternRef]


@dataclass
class DrawItem:
    """One painted shape instance, in painter's order.

    Attributes:
        ctm: 3×3 matrix from the shape's user space to the root's user space (viewBox units).
        scope: ids of the element, its ancestors and the ``use`` elements that instanced it
            (what :meth:`pds.svg.SVGScene.select` matches).
        opacities: the element's ``opacity`` (last) and its ancestors' (the ancestors' are
            applied by the enclosing :attr:`layers`, the element's own by the draw group).
        layers: the offscreen layers the shape sits in, outermost first (see :mod:`pds.svg.layers`).
        clip_rule: its ``clip-rule`` (used when it is clip-path content).
        dash: its ``stroke-dasharray``/``stroke-dashoffset``, or ``None`` for a solid stroke.
        image: for an ``<image>``, the picture (``geometry`` is then its viewport rectangle, a
            constant used for bounding boxes), else ``None``.
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
    layers: Tuple[LayerDef, ...] = ()
    clip_rule: str = "nonzero"
    dash: Optional["DashDef"] = None
    image: Optional[ImageDef] = None

    @property
    def id(self) -> Optional[str]:
        return self.element.get("id")


@dataclass
class DashDef:
    """A resolved ``stroke-dasharray`` (even length, user units, sum > 0) and ``stroke-dashoffset``.

    ``scale`` is the ``pathLength`` factor: author lengths are multiplied by
    ``computed length / pathLength`` at render time (``None`` without ``pathLength``).
    """

    array: Tuple[float, ...]
    offset: float
    path_length: Optional[float] = None


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

#: Languages ``switch``/``systemLanguage`` accepts (resvg's default list).
LANGUAGES = ("en",)

_URL_RE = re.compile(r"""^url\(\s*['"]?\s*#([^'")\s]+)\s*['"]?\s*\)\s*(.*)$""", re.DOTALL)
_LINECAPS = ("butt", "round", "square")
_JOINS = {"miter": "miter", "round": "round", "bevel": "bevel", "miter-clip": "miter", "arcs": "miter"}


_CSS_FUNC_RE = re.compile(r"([a-zA-Z]+)\s*\(([^)]*)\)")
_ANGLE = {"deg": 1.0, "rad": 180.0 / math.pi, "grad": 0.9, "turn": 360.0}


def _css_transform_to_svg(text: str) -> str:
    """A CSS ``transform`` value as SVG transform-list syntax (units dropped, angles in degrees).

    Handles ``translate[X|Y]``, ``scale[X|Y]``, ``rotate``, ``skew[X|Y]`` and ``matrix``; anything
    else (3D functions) makes the whole value invalid, which gives the identity.
    """
    if text.strip().lower() == "none":
        return ""
    out = []
    for name, args in _CSS_FUNC_RE.findall(text):
        vals = []
        for a in (x for x in re.split(r"[\s,]+", args.strip()) if x):
            m = re.fullmatch(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(deg|rad|grad|turn|px)?", a)
            if not m:
                return ""
            v = float(m.group(1))
            vals.append(v * _ANGLE.get(m.group(2) or "", 1.0))
        n = name.lower()
        j = " ".join(f"{v:.12g}" for v in vals)
        if n in ("translate", "scale", "rotate", "skewx", "skewy", "matrix"):
            out.append(f"{ {'skewx': 'skewX', 'skewy': 'skewY'}.get(n, n)}({j})")
        elif n == "translatex":
            out.append(f"translate({j} 0)")
        elif n == "translatey":
            out.append(f"translate(0 {j})")
        elif n == "scalex":
            out.append(f"scale({j} 1)")
        elif n == "scaley":
            out.append(f"scale(1 {j})")
        elif n == "skew" and vals:
            out.append(f"skewX({vals[0]:.12g})" + (f" skewY({vals[1]:.12g})" if len(vals) > 1 else ""))
        else:
            return ""
    return " ".join(out)


def _transform_origin(text: str, viewport) -> Tuple[float, float]:
    """``transform-origin`` as a point: keywords, lengths and percentages of the viewport; a
    missing coordinate is ``center`` (CSS Transforms 1 §6)."""
    vw, vh = viewport
    x = y = None
    free = []
    for w in text.replace(",", " ").split()[:2]:
        k = w.lower()
        if k in ("left", "right"):
            x = 0.0 if k == "left" else vw
        elif k in ("top", "bottom"):
            y = 0.0 if k == "top" else vh
        else:
            free.append(None if k == "center" else w)
    for w in free:
        if x is None:
            x = vw / 2.0 if w is None else parse_length(w, vw, default=0.0)
        elif y is None:
            y = vh / 2.0 if w is None else parse_length(w, vh, default=0.0)
    return (vw / 2.0 if x is None else x), (vh / 2.0 if y is None else y)


#: CSS ``font-size`` keywords in px (CSS Fonts 4 §2.5, medium = 16px).
_FONT_KEYWORDS = {"xx-small": 9.0, "x-small": 10.0, "small": 13.0, "medium": 16.0, "large": 18.0,
                  "x-large": 24.0, "xx-large": 32.0, "xxx-large": 48.0}


def _resolve_font_size(text: str, parent: float) -> float:
    """A declared ``font-size`` in px, relative units resolved against the parent's ``parent``."""
    t = text.strip().lower()
    if t in _FONT_KEYWORDS:
        return _FONT_KEYWORDS[t]
    if t == "larger":
        return parent * 1.2
    if t == "smaller":
        return parent / 1.2
    v = parse_length(t, parent, parent, default=None)
    return parent if v is None or v < 0 else v


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


def _root_size(root: ET.Element, view_box) -> Tuple[float, float]:
    def size(name):
        v = root.get(name)
        if v is None or v.strip().endswith("%"):
            return None
        x = parse_length(v, 100.0)
        return x if _sane_size(x) else None  # 1e99999 is inf, 1e-320 makes the canvas scale inf

    w, h = size("width"), size("height")
    if view_box is not None:
        vw, vh = view_box[2], view_box[3]
        if w is None and h is None:
            return vw, vh
        if w is None:
            w = h * vw / vh
        elif h is None:
            h = w * vh / vw
        # a ratio of extreme sizes can still overflow: then the viewBox alone sizes the canvas
        return (w, h) if _sane_size(w) and _sane_size(h) else (vw, vh)
    return (w or 300.0), (h or 150.0)


_NUMBER_TOKEN = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _id_text(el: ET.Element) -> str:
    """`` id="x"`` for messages, or nothing."""
    i = el.get("id")
    return f' id="{i[:40]}"' if i else ""


def _check_segment_data(el: ET.Element, tag: str) -> None:
    """Refuse path data too long to parse before parsing it: every segment takes at least one
    number and at most seven (an arc), so more than ``7 × MAX_PATH_SEGMENTS`` numbers is over the
    limit for sure (the exact count is checked once the shape is read)."""
    text = el.get("d") if tag == "path" else el.get("points") if tag in ("polyline", "polygon") else None
    if not text or len(text) < 7 * MAX_PATH_SEGMENTS:  # cannot hold that many numbers
        return
    numbers = sum(1 for _ in _NUMBER_TOKEN.finditer(text))
    per_segment = 7 if tag == "path" else 2
    if numbers > per_segment * MAX_PATH_SEGMENTS:
        raise SVGError(f"<{tag}{_id_text(el)}> has more than {MAX_PATH_SEGMENTS} segments ({numbers} numbers), "
                       f"more than the limit; simplify it (e.g. Inkscape's Path > Simplify)")


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
            if k == "font-size":
                v = f"{_resolve_font_size(v, parse_length(parent.get('font-size', '16'), 16.0, default=16.0)):.12g}"
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
        """The ``filter`` property as :class:`pds.svg.filters.FilterDef` objects, or ``None`` (no
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
        m = _URL_RE.match(text)
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
        """The element's ``transform`` (attribute, or the CSS property, which wins) about its
        ``transform-origin`` (CSS Transforms 1 §6; ``transform-box: view-box`` for percentages)."""
        d = self.decl(el)
        css = d.get("transform")
        text = css.value if css is not None else el.get("transform")
        if css is not None:
            text = _css_transform_to_svg(text)
        m = parse_transform(text)
        origin = d.get("transform-origin")
        if origin is not None and not np.allclose(m, np.eye(3)):
            ox, oy = _transform_origin(origin.value, viewport)
            m = translate(ox, oy) @ m @ translate(-ox, -oy)
        return m

    # -- walk -------------------------------------------------------------------------------------
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

    # -- text ----------------------------------------------------------------------------------------
    def _text(self, el, style, m, chain, scope, uses, viewport) -> None:
        """A ``<text>`` as glyph outlines (:mod:`pds.svg.text`): one draw item per ``text``/``tspan``
        that has characters, painted with that element's style."""
        from .geometry import PathGeometry
        from .text import GlyphRun, layout, match_face

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
            if self.segments > MAX_SEGMENTS:
                raise SVGError(f"the document's shapes have more than {MAX_SEGMENTS} segments in all (<use> copies "
                               f"and <image> documents counted); simplify it or edit a part of it")
        if len(self.items) >= MAX_DRAW_ITEMS:
            raise SVGError(f"the document expands to more than {MAX_DRAW_ITEMS} shapes (recursive <use>?)")
        from .geometry import RectGeometry

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
        from .image import MAX_IMAGE_DEPTH, decode_data_uri, decode_raster, sniff_mime

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
            _check_segment_data(el, tag)
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
                if count > MAX_PATH_SEGMENTS:
                    raise SVGError(f"<{tag}{_id_text(el)}> has {count} segments, more than the {MAX_PATH_SEGMENTS} "
                                   f"limit; simplify it (e.g. Inkscape's Path > Simplify)")
                self._segment_counts[id(geom)] = count
                self._geom_params[id(geom)] = self._register(GeometryParam(geom))
        geom = self._geoms[key]
        if geom is None:
            return
        self.segments += self._segment_counts[id(geom)]
        if self.segments > MAX_SEGMENTS:
            raise SVGError(f"the document expands to more than {MAX_SEGMENTS} path segments in all (<use> copies "
                           f"counted); simplify it or edit a part of it")
        if self.get(style, "visibility") in ("hidden", "collapse"):
            return
        if len(self.items) >= MAX_DRAW_ITEMS:
            raise SVGError(f"the document expands to more than {MAX_DRAW_ITEMS} shapes (recursive <use>?)")
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
            mm = _URL_RE.match(text)
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
            rot = math.radians(float(num.group(1)) * _ANGLE[num.group(2) or "deg"]) if num else 0.0
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
            if len(elements) > MAX_GRADIENT_STOPS:
                raise SVGError(f"<{local_name(owner.tag)}{_id_text(owner)}> has more than {MAX_GRADIENT_STOPS} "
                               f"stops; merge them into fewer")
        if not elements:
            self._stops[id(owner)] = None
            return None
        p = self._register(StopsParam(which, elements, offsets, colors, opacities, origins, self.dtype, self.device))
        self._stops[id(owner)] = p
        return p


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
                   image_depth: int = 0) -> Document:
    """Walk a parsed SVG tree into a :class:`Document` (no warnings are emitted here).

    Unsupported features are counted in ``Document.unsupported`` (kind → occurrences); the caller
    turns them into warnings.  ``image_depth`` is how many ``<image>`` documents enclose this one
    (see :data:`pds.svg.image.MAX_IMAGE_DEPTH`).
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
                    b.items, params, b.unsupported)
