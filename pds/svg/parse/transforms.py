"""Coordinate systems: transform lists, the CSS ``transform`` property, viewBox mapping, sizes.

Matrices are 3×3 numpy affine matrices acting on column vectors ``(x, y, 1)``; they map an
element's user space to its parent's.  Transform lists are parsed by svgelements (every SVG
transform function, with SVG's lenient number syntax); the CSS ``transform`` property is first
rewritten into that syntax (:func:`css_transform_to_svg`).
"""

from __future__ import annotations

import math
import re
from typing import Dict, Optional, Tuple
from xml.etree import ElementTree as ET

import numpy as np

from ..style import Declared, parse_length, parse_numbers

__all__ = ["element_transform", "parse_transform", "parse_view_box", "scale", "translate", "view_box_transform"]


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
    """The translation by ``(x, y)``."""
    return np.array([[1.0, 0.0, x], [0.0, 1.0, y], [0.0, 0.0, 1.0]])


def scale(sx: float, sy: float) -> np.ndarray:
    """The scaling by ``sx`` along x and ``sy`` along y."""
    return np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])


#: Transforms with an entry larger than this are invalid (treated as identity, like non-finite ones).
MAX_TRANSFORM_ENTRY = 1e150

#: Sizes (width, height, viewBox extent) outside this range are ignored as invalid: the canvas
#: scale ``size / extent`` (size up to 8192) must stay a finite float, and so must every product.
SIZE_RANGE = (1e-300, 1e300)


def sane_size(x: Optional[float]) -> bool:
    """Whether ``x`` is a usable size (finite, inside :data:`SIZE_RANGE`)."""
    return x is not None and math.isfinite(x) and SIZE_RANGE[0] <= x <= SIZE_RANGE[1]


def parse_view_box(text: Optional[str]) -> Optional[Tuple[float, float, float, float]]:
    """A ``viewBox`` as ``(x, y, width, height)``, or ``None`` when absent or invalid."""
    nums = parse_numbers(text)
    if len(nums) != 4 or not (sane_size(nums[2]) and sane_size(nums[3])) or not all(map(math.isfinite, nums)):
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


_CSS_FUNC_RE = re.compile(r"([a-zA-Z]+)\s*\(([^)]*)\)")
#: Angle units in degrees (CSS Values 4 §7.1).
ANGLE_UNITS = {"deg": 1.0, "rad": 180.0 / math.pi, "grad": 0.9, "turn": 360.0}


def css_transform_to_svg(text: str) -> str:
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
            vals.append(v * ANGLE_UNITS.get(m.group(2) or "", 1.0))
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


def transform_origin(text: str, viewport) -> Tuple[float, float]:
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


def root_size(root: ET.Element, view_box) -> Tuple[float, float]:
    """The root ``svg``'s intrinsic ``(width, height)`` in px: from the viewBox (and its ratio when
    only one of ``width``/``height`` is given), else 300 x 150."""

    def size(name):
        v = root.get(name)
        if v is None or v.strip().endswith("%"):
            return None
        x = parse_length(v, 100.0)
        return x if sane_size(x) else None  # 1e99999 is inf, 1e-320 makes the canvas scale inf

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
        return (w, h) if sane_size(w) and sane_size(h) else (vw, vh)
    return (w or 300.0), (h or 150.0)


def element_transform(el: ET.Element, declared: Dict[str, Declared], viewport) -> np.ndarray:
    """The element's ``transform`` (attribute, or the CSS property, which wins) about its
    ``transform-origin`` (CSS Transforms 1 §6; ``transform-box: view-box`` for percentages).

    ``declared`` is the element's cascaded declarations, ``viewport`` the ``(w, h)`` that
    percentages in ``transform-origin`` refer to.
    """
    css = declared.get("transform")
    text = css.value if css is not None else el.get("transform")
    if css is not None:
        text = css_transform_to_svg(text)
    m = parse_transform(text)
    origin = declared.get("transform-origin")
    if origin is not None and not np.allclose(m, np.eye(3)):
        ox, oy = transform_origin(origin.value, viewport)
        m = translate(ox, oy) @ m @ translate(-ox, -oy)
    return m
