"""SVG filters (Filter Effects 1), document side: ``<filter>`` elements, the ``filter`` property
and CSS filter functions parsed once into :class:`FilterDef` (user units).  The pixel side,
resolving a definition to a canvas and running it on a layer with torch ops, is
:mod:`pds.svg.raster.filters`.

Supported primitives: ``feGaussianBlur``, ``feOffset``, ``feFlood``, ``feColorMatrix`` (matrix,
saturate, hueRotate, luminanceToAlpha), ``feComponentTransfer`` (identity, table, discrete,
linear, gamma), ``feComposite`` (over, in, out, atop, xor, arithmetic), ``feMerge``, ``feBlend``
(the separable blend modes), ``feDropShadow``; inputs ``SourceGraphic``, ``SourceAlpha`` and named
results; the filter region (``x/y/width/height``, ``filterUnits``), primitive subregions and
``primitiveUnits``; ``color-interpolation-filters`` (``linearRGB`` by default, as the spec says);
several filters in one ``filter`` list; the CSS functions ``blur()``, ``drop-shadow()``,
``grayscale()``, ``sepia()``, ``saturate()``, ``hue-rotate()``, ``invert()``, ``opacity()``,
``brightness()`` and ``contrast()``.  Any other primitive passes its input through (the parser
warns once).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["FilterDef", "Primitive", "color_matrix", "css_filter_functions", "parse_filter_element",
           "parse_filter_list"]

#: Primitives :func:`pds.svg.raster.filters.apply_filter` implements (the parser warns about others).
SUPPORTED = frozenset({"feGaussianBlur", "feOffset", "feFlood", "feColorMatrix", "feComponentTransfer",
                       "feComposite", "feMerge", "feBlend", "feDropShadow"})
#: Luminance-to-alpha and ``saturate`` weights (Filter Effects 1 §9.6, Rec. 709 luma).
_LUMA = (0.2125, 0.7154, 0.0721)


@dataclass(eq=False)
class Primitive:
    """One filter primitive in the filter's own units.

    Attributes:
        kind: the element name (``"feGaussianBlur"``...); an unsupported one passes ``in`` through.
        inputs: its ``in`` and ``in2`` (``feMerge``: one per node); ``None`` = the previous result
            (``SourceGraphic`` for the first primitive).
        result: its ``result`` name, or ``None``.
        subregion: ``x, y, width, height`` in primitive units, each ``None`` when not given.
        linear_rgb: ``color-interpolation-filters`` is ``linearRGB`` (the default).
        params: kind-specific values (``std``, ``dx``/``dy``, ``color``, ``matrix``, ``operator``,
            ``k``, ``mode``, ``funcs``), lengths in primitive units.
    """

    kind: str
    inputs: Tuple[Optional[str], ...]
    result: Optional[str]
    subregion: Tuple[Optional[float], Optional[float], Optional[float], Optional[float]]
    linear_rgb: bool = True
    params: Dict[str, object] = field(default_factory=dict)


@dataclass(eq=False)
class FilterDef:
    """A ``filter`` element (or one CSS filter function), resolved.

    Attributes:
        primitives: in document order; empty = the element is not rendered (an empty filter or a
            reference to a missing one, Filter Effects 1 §6).
        region: ``x, y, width, height`` of the filter region, in bounding-box fractions when
            ``region_bbox`` (``filterUnits="objectBoundingBox"``, the default) else user units.
        region_bbox: see ``region``.
        primitive_bbox: ``primitiveUnits="objectBoundingBox"``.
    """

    primitives: Tuple[Primitive, ...]
    region: Tuple[float, float, float, float] = (-0.1, -0.1, 1.2, 1.2)
    region_bbox: bool = True
    primitive_bbox: bool = False


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------

def _numbers(text: Optional[str]) -> List[float]:
    if not text:
        return []
    out = []
    for t in re.split(r"[\s,]+", text.strip()):
        if not t:
            continue
        try:
            v = float(t)
        except ValueError:
            return []
        if not math.isfinite(v):
            return []
        out.append(v)
    return out


def _number(text: Optional[str], default: float) -> float:
    vals = _numbers(text)
    return vals[0] if vals else default


def _fraction_or_length(text: Optional[str], bbox: bool, ref: float) -> Optional[float]:
    """A region coordinate: a fraction (``50%`` = 0.5) in bounding-box units, else a user length."""
    from ..style import parse_length

    if text is None:
        return None
    return parse_length(text, 1.0 if bbox else ref, default=None)


def parse_filter_element(el, lookup: Callable[[object, str], Optional[str]], color_of: Callable[[object], Tuple],
                         viewport: Tuple[float, float], warn: Callable[[str], None]) -> FilterDef:
    """A ``<filter>`` element as a :class:`FilterDef`.

    Args:
        el: the element (its ``href`` chain is not followed).
        lookup: ``lookup(element, property)``: the element's declared property value or ``None``
            (presentation attribute or CSS).
        color_of: ``color_of(element)``: ``(flood-color RGBA, flood-opacity)`` of a primitive.
        viewport: the user-space viewport ``(w, h)`` percentages of user lengths refer to.
        warn: records an unsupported feature.
    """
    from ..style import local_name, parse_length

    region_bbox = (el.get("filterUnits") or "").strip() != "userSpaceOnUse"
    prim_bbox = (el.get("primitiveUnits") or "").strip() == "objectBoundingBox"
    vw, vh = viewport
    defaults = ("-10%", "-10%", "120%", "120%")
    region = []
    for name, default, ref in zip(("x", "y", "width", "height"), defaults, (vw, vh, vw, vh)):
        v = _fraction_or_length(el.get(name), region_bbox, ref)
        region.append(v if v is not None else parse_length(default, 1.0 if region_bbox else ref))
    if not (region[2] > 0 and region[3] > 0):
        return FilterDef((), tuple(region), region_bbox, prim_bbox)  # type: ignore[arg-type]
    own = (lookup(el, "color-interpolation-filters") or "").strip().lower()
    prims: List[Primitive] = []
    for child in el:
        if not isinstance(child.tag, str):
            continue
        kind = local_name(child.tag)
        if not kind.startswith("fe"):
            continue
        cif = (lookup(child, "color-interpolation-filters") or "").strip().lower()
        if cif in ("", "inherit", "auto"):
            cif = own if own not in ("", "inherit", "auto") else "linearrgb"
        sub = tuple(_fraction_or_length(child.get(n), prim_bbox, r)
                    for n, r in zip(("x", "y", "width", "height"), (vw, vh, vw, vh)))
        inputs: Tuple[Optional[str], ...] = (child.get("in"), child.get("in2"))
        params: Dict[str, object] = {}
        if kind == "feGaussianBlur" or kind == "feDropShadow":
            std = _numbers(child.get("stdDeviation"))
            default = 2.0 if kind == "feDropShadow" else 0.0
            sx = std[0] if std else default
            sy = std[1] if len(std) > 1 else sx
            params["std"] = (sx, sy)
        if kind in ("feOffset", "feDropShadow"):
            d = 2.0 if kind == "feDropShadow" else 0.0
            params["dx"], params["dy"] = _number(child.get("dx"), d), _number(child.get("dy"), d)
        if kind in ("feFlood", "feDropShadow"):
            params["color"] = color_of(child)
        if kind == "feColorMatrix":
            params["matrix"] = color_matrix(child.get("type"), child.get("values"))
        elif kind == "feComponentTransfer":
            funcs = {}
            for f in child:
                name = local_name(f.tag) if isinstance(f.tag, str) else ""
                if name in ("feFuncR", "feFuncG", "feFuncB", "feFuncA"):
                    funcs["RGBA".index(name[-1])] = _transfer(f)
            params["funcs"] = funcs
        elif kind == "feComposite":
            op = (child.get("operator") or "over").strip()
            params["operator"] = op if op in ("over", "in", "out", "atop", "xor", "arithmetic") else "over"
            params["k"] = tuple(_number(child.get(f"k{i}"), 0.0) for i in range(1, 5))
        elif kind == "feBlend":
            params["mode"] = (child.get("mode") or "normal").strip()
        elif kind == "feMerge":
            inputs = tuple(n.get("in") for n in child if isinstance(n.tag, str) and local_name(n.tag) == "feMergeNode")
        if kind not in SUPPORTED:
            warn(f"<{kind}> filter primitive")
        prims.append(Primitive(kind, inputs, child.get("result"), sub, cif == "linearrgb", params))  # type: ignore
    return FilterDef(tuple(prims), tuple(region), region_bbox, prim_bbox)  # type: ignore[arg-type]


def color_matrix(kind: Optional[str], values: Optional[str]) -> np.ndarray:
    """The ``(4, 5)`` matrix of ``feColorMatrix`` (Filter Effects 1 §9.6) acting on straight RGBA + 1."""
    kind = (kind or "matrix").strip()
    vals = _numbers(values)
    eye = np.eye(4, 5)
    if kind == "saturate":
        s = vals[0] if vals else 1.0
        return _saturate(s)
    if kind == "hueRotate":
        return _hue_rotate(vals[0] if vals else 0.0)
    if kind == "luminanceToAlpha":
        m = np.zeros((4, 5))
        m[3, :3] = _LUMA
        return m
    if kind == "matrix" and len(vals) == 20:
        return np.array(vals, dtype=np.float64).reshape(4, 5)
    return eye


def _saturate(s: float) -> np.ndarray:
    r, g, b = _LUMA
    m = np.eye(4, 5)
    m[:3, :3] = np.array([[r + (1 - r) * s, g - g * s, b - b * s],
                          [r - r * s, g + (1 - g) * s, b - b * s],
                          [r - r * s, g - g * s, b + (1 - b) * s]])
    return m


def _hue_rotate(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    m = np.eye(4, 5)
    m[:3, :3] = (np.array([[0.213, 0.715, 0.072]] * 3)
                 + c * np.array([[0.787, -0.715, -0.072], [-0.213, 0.285, -0.072], [-0.213, -0.715, 0.928]])
                 + s * np.array([[-0.213, -0.715, 0.928], [0.143, 0.140, -0.283], [-0.787, 0.715, 0.072]]))
    return m


def _transfer(f) -> Tuple:
    """One ``feFunc*``: ``(type, values...)`` (Filter Effects 1 §9.7)."""
    t = (f.get("type") or "identity").strip()
    if t in ("table", "discrete"):
        vals = _numbers(f.get("tableValues"))
        return (t, tuple(vals)) if vals else ("identity",)
    if t == "linear":
        return ("linear", _number(f.get("slope"), 1.0), _number(f.get("intercept"), 0.0))
    if t == "gamma":
        return ("gamma", _number(f.get("amplitude"), 1.0), _number(f.get("exponent"), 1.0),
                _number(f.get("offset"), 0.0))
    return ("identity",)


#: The region of a CSS filter function: it has none (unbounded); like resvg, the bounding box
#: grown by half its size on every side (``objectBoundingBox`` units).
_CSS_REGION = (-0.5, -0.5, 2.0, 2.0)

_FUNC_RE = re.compile(r"([a-zA-Z-]+)\(([^()]*(?:\([^()]*\)[^()]*)*)\)")


def css_filter_functions(name: str, args: str, parse_color) -> Optional[FilterDef]:
    """One CSS filter function (Filter Effects 1 §12) as a :class:`FilterDef` in user units, or
    ``None`` when it is unknown or malformed.  Like resvg, its region is the element's bounding
    box grown by half its size on every side (:data:`_CSS_REGION`)."""
    from ..style import parse_length

    name = name.strip().lower()
    words = args.replace(",", " ").split()

    def amount(default: float) -> Optional[float]:
        if not words:
            return default
        w = words[0]
        try:
            return float(w[:-1]) / 100.0 if w.endswith("%") else float(w)
        except ValueError:
            return None

    def prim(kind, **params):
        return Primitive(kind, (None, None), None, (None, None, None, None), False, params)

    if name == "blur":
        r = parse_length(words[0], 1.0, default=None) if words else 0.0
        if r is None or r < 0:
            return None
        return FilterDef((Primitive("feGaussianBlur", (None, None), None, (None,) * 4, False, {"std": (r, r)}),),
                         region=_CSS_REGION)
    if name == "drop-shadow":
        lengths, color = [], None
        colour_words = []
        for w in re.findall(r"[a-zA-Z-]+\([^)]*\)|[^\s,]+", args):
            v = parse_length(w, 1.0, default=None)
            if v is not None and len(lengths) < 3 and not colour_words:
                lengths.append(v)
            else:
                colour_words.append(w)
        if len(lengths) < 2:
            return None
        if colour_words:
            color = parse_color(" ".join(colour_words))
            if color is None:
                return None
        color = color or (0.0, 0.0, 0.0, 1.0)
        std = lengths[2] if len(lengths) > 2 else 0.0  # the spec's equivalent: stdDeviation = radius
        return FilterDef((Primitive("feDropShadow", (None, None), None, (None,) * 4, False,
                                    {"std": (std, std), "dx": lengths[0], "dy": lengths[1],
                                     "color": (tuple(color[:3]), color[3])}),), region=_CSS_REGION)
    a = amount(1.0 if name not in ("hue-rotate",) else 0.0)
    if name == "hue-rotate":
        m = re.fullmatch(r"([+-]?[\d.]+(?:e[+-]?\d+)?)(deg|rad|grad|turn)?", words[0].lower()) if words else None
        if words and m is None:
            return None
        deg = 0.0 if not words else float(m.group(1)) * {"deg": 1.0, "rad": 180 / math.pi, "grad": 0.9,
                                                          "turn": 360.0}[m.group(2) or "deg"]
        return FilterDef((prim("feColorMatrix", matrix=_hue_rotate(deg)),), region=_CSS_REGION)
    if a is None or a < 0:
        return None
    if name == "grayscale":
        return FilterDef((prim("feColorMatrix", matrix=_saturate(1 - min(a, 1.0))),), region=_CSS_REGION)
    if name == "saturate":
        return FilterDef((prim("feColorMatrix", matrix=_saturate(a)),), region=_CSS_REGION)
    if name == "sepia":
        a = min(a, 1.0)
        m = np.eye(4, 5)
        m[:3, :3] = np.array([[0.393 + 0.607 * (1 - a), 0.769 - 0.769 * (1 - a), 0.189 - 0.189 * (1 - a)],
                              [0.349 - 0.349 * (1 - a), 0.686 + 0.314 * (1 - a), 0.168 - 0.168 * (1 - a)],
                              [0.272 - 0.272 * (1 - a), 0.534 - 0.534 * (1 - a), 0.131 + 0.869 * (1 - a)]])
        return FilterDef((prim("feColorMatrix", matrix=m),), region=_CSS_REGION)
    if name in ("invert", "opacity", "brightness", "contrast"):
        a = min(a, 1.0) if name in ("invert", "opacity") else a
        rgb = {"invert": ("table", (a, 1 - a)), "brightness": ("linear", a, 0.0),
               "contrast": ("linear", a, 0.5 - a / 2), "opacity": ("identity",)}[name]
        alpha = ("table", (0.0, a)) if name == "opacity" else ("identity",)
        return FilterDef((prim("feComponentTransfer", funcs={0: rgb, 1: rgb, 2: rgb, 3: alpha}),),
                         region=_CSS_REGION)
    return None


def parse_filter_list(text: str) -> List[Tuple[str, str]]:
    """``filter`` property → ``[(kind, value)]`` with kind ``"url"`` (value: the id) or a function
    name (value: its arguments); ``[]`` and a trailing ``("invalid", text)`` for garbage."""
    out: List[Tuple[str, str]] = []
    pos, text = 0, text.strip()
    while pos < len(text):
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            break
        m = re.compile(r"url\(\s*['\"]?\s*#([^'\")\s]+)\s*['\"]?\s*\)").match(text, pos)
        if m:
            out.append(("url", m.group(1)))
            pos = m.end()
            continue
        m = _FUNC_RE.match(text, pos)
        if not m:
            out.append(("invalid", text[pos:]))
            break
        out.append((m.group(1).lower(), m.group(2)))
        pos = m.end()
    return out
