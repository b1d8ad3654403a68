"""Differentiable geometry of SVG shape elements, in each element's own user space.

Every shape keeps the numbers its SVG attributes hold as leaf tensors — a circle its centre and
radius, a rect its corner, size and corner radii, a path its control points — and turns them into
:class:`UserSubpath` chains of line/quadratic/cubic segments on every render (the draw-list
model of :mod:`pds.svg.shapes`). Transforms are not applied here: :mod:`pds.svg.scene` maps user
space to canvas pixels at render time, so optimised values can be written back into the very
attributes they came from (:meth:`Geometry.write`).

Path data is read with svgelements (see :mod:`pds.svg.parse` for why); elliptical arcs become
cubic Béziers (at most 90° each) because neither the rasterizer nor an optimiser has any use for
the endpoint arc parameterisation, and ``H``/``V``/``S``/``T`` become their explicit forms.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple
from xml.etree import ElementTree as ET

import numpy as np
import torch
from torch import Tensor

from .style import parse_length, parse_numbers

__all__ = [
    "CircleGeometry",
    "EllipseGeometry",
    "Geometry",
    "LineGeometry",
    "PathGeometry",
    "PolyGeometry",
    "RectGeometry",
    "UserSubpath",
    "make_geometry",
    "subpath_bbox",
]

#: Control-point distance of a cubic quarter circle of radius 1 (4/3·(√2 − 1)).
KAPPA = 4.0 / 3.0 * (math.sqrt(2.0) - 1.0)

Formatter = Callable[[float], str]


@dataclass
class UserSubpath:
    """A subpath in its element's user space (same point layout as :class:`pds.svg.shapes.Subpath`)."""

    points: Tensor
    num_control_points: Tensor
    closed: bool


class Geometry:
    """Base class: the tensors of one shape element and how to draw and write them."""

    tag = ""

    def __init__(self, element: ET.Element):
        self.element = element
        self._snapshot: List[Tensor] = []

    # -- parameters ---------------------------------------------------------------------------
    def tensors(self) -> List[Tensor]:
        """The leaf tensors holding this shape's geometry (kind ``"points"``)."""
        raise NotImplementedError

    def _remember(self) -> None:
        self._snapshot = [t.detach().cpu().clone() for t in self.tensors()]

    def changed(self) -> bool:
        """Whether any tensor differs from the value read from the file."""
        return any(not torch.equal(t.detach().cpu(), s) for t, s in zip(self.tensors(), self._snapshot))

    # -- drawing --------------------------------------------------------------------------------
    def subpaths(self) -> List[UserSubpath]:
        raise NotImplementedError

    def bbox(self) -> Optional[Tuple[float, float, float, float]]:
        """Tight bounding box ``(x0, y0, x1, y1)`` in user space (for ``objectBoundingBox``)."""
        boxes = [subpath_bbox(s.points.detach().cpu().double().numpy(), s.num_control_points.cpu().numpy(), s.closed)
                 for s in self.subpaths()]
        boxes = [b for b in boxes if b is not None]
        if not boxes:
            return None
        b = np.array(boxes)
        return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())

    # -- writing ------------------------------------------------------------------------------
    def write(self, fmt: Formatter, element: Optional[ET.Element] = None) -> None:
        """Rewrite the geometry attributes of ``element`` (default: the source element) from the tensors."""
        raise NotImplementedError

    def project(self) -> None:
        """Keep sizes and radii non-negative (called under no_grad after optimiser steps)."""

    def _write_changed(self, el: ET.Element, fmt: Formatter, names: Sequence[str]) -> None:
        """Set each attribute in ``names`` whose value (tensors flattened in order) changed."""
        now = torch.cat([t.detach().reshape(-1).cpu() for t in self.tensors()]).tolist()
        then = torch.cat([t.reshape(-1) for t in self._snapshot]).tolist()
        for name, v, v0 in zip(names, now, then):
            if name and v != v0:
                el.set(name, fmt(v))


def _tensor(values, dtype, device) -> Tensor:
    return torch.tensor(values, dtype=dtype, device=device)


# --------------------------------------------------------------------------------------------
# path
# --------------------------------------------------------------------------------------------

_COMMAND_RE = re.compile(r"[MmZzLlHhVvCcSsQqTtAa]")


@dataclass
class _SubpathLayout:
    start: int  # first row in the points tensor
    count: int  # rows
    ncp: List[int]
    closed: bool
    explicit_close: bool  # last segment was written out and ends at the start point


def parse_path_data(d: str):
    """svgelements segments of ``d`` and whether an error cut the data short.

    SVG renders path data up to the first error (SVG 1.1 §F.2), so on a parse error the longest
    prefix that ends at a command letter and parses is used.
    """
    from svgelements import Path as _SEPath  # heavy import, deferred

    def parse(text):
        segs = list(_SEPath(text).segments())
        return segs

    try:
        return parse(d), False
    except Exception:  # noqa: BLE001 - svgelements raises ValueError/IndexError on bad data
        cuts = [m.start() for m in _COMMAND_RE.finditer(d)]
        for c in reversed(cuts):
            try:
                return parse(d[:c]), True
            except Exception:  # noqa: BLE001
                continue
        return [], True


class PathGeometry(Geometry):
    """``<path d>``: one ``(P, 2)`` tensor of all on- and off-curve points of all subpaths."""

    tag = "path"

    def __init__(self, element: ET.Element, d: str, dtype=torch.float32, device=None):
        super().__init__(element)
        from svgelements import Arc, Close, CubicBezier, Line, Move, QuadraticBezier

        segs, self.data_error = parse_path_data(d or "")
        if segs and not isinstance(segs[0], Move):  # data must start with a moveto
            segs, self.data_error = [], True
        pts: List[Tuple[float, float]] = []
        layouts: List[_SubpathLayout] = []
        cur: Optional[dict] = None

        def xy(p) -> Tuple[float, float]:
            return (float(p.x), float(p.y))

        def flush():
            if cur is not None and cur["ncp"]:
                start = len(pts)
                pts.extend(cur["pts"])
                layouts.append(_SubpathLayout(start, len(cur["pts"]), cur["ncp"], cur["closed"], cur["explicit"]))

        def begin(p):
            return {"pts": [xy(p)], "ncp": [], "closed": False, "explicit": False}

        for seg in segs:
            if isinstance(seg, Move):
                flush()
                cur = begin(seg.end)
                continue
            if isinstance(seg, Close):
                if cur is not None and cur["ncp"]:
                    first, last = cur["pts"][0], cur["pts"][-1]
                    tol = 1e-9 * max(1.0, abs(first[0]), abs(first[1]))
                    if abs(first[0] - last[0]) <= tol and abs(first[1] - last[1]) <= tol and len(cur["pts"]) > 1:
                        cur["pts"].pop()
                        cur["explicit"] = True
                    else:
                        cur["ncp"].append(0)
                    cur["closed"] = True
                flush()
                cur = None
                continue
            if cur is None:  # a segment after Z starts a new subpath at the previous start
                cur = begin(seg.start)
            if isinstance(seg, Line):
                cur["pts"].append(xy(seg.end))
                cur["ncp"].append(0)
            elif isinstance(seg, QuadraticBezier):
                cur["pts"] += [xy(seg.control), xy(seg.end)]
                cur["ncp"].append(1)
            elif isinstance(seg, CubicBezier):
                cur["pts"] += [xy(seg.control1), xy(seg.control2), xy(seg.end)]
                cur["ncp"].append(2)
            elif isinstance(seg, Arc):
                s, e = xy(seg.start), xy(seg.end)
                if s == e:
                    continue  # SVG: an arc to its own start point is omitted
                if not seg.rx or not seg.ry:
                    cur["pts"].append(e)  # zero radius: straight line
                    cur["ncp"].append(0)
                    continue
                for c in seg.as_cubic_curves():
                    cur["pts"] += [xy(c.control1), xy(c.control2), xy(c.end)]
                    cur["ncp"].append(2)
                cur["pts"][-1] = e  # exact end point, as written in the file
        flush()
        self.layouts = layouts
        self.points = _tensor(pts if pts else np.zeros((0, 2)), dtype, device).reshape(-1, 2)
        self._ncp = [torch.tensor(l.ncp, dtype=torch.long, device=device) for l in layouts]
        self._remember()

    def tensors(self) -> List[Tensor]:
        return [self.points]

    def subpaths(self) -> List[UserSubpath]:
        return [UserSubpath(self.points[l.start : l.start + l.count], n, l.closed)
                for l, n in zip(self.layouts, self._ncp)]

    def path_data(self, fmt: Formatter) -> str:
        """The ``d`` attribute regenerated from the control points (absolute M/L/Q/C/Z)."""
        pts = self.points.detach().cpu().double().numpy()
        parts = []

        def p(i):
            return f"{fmt(pts[i, 0])},{fmt(pts[i, 1])}"

        for l in self.layouts:
            parts.append("M" + p(l.start))
            i = l.start + 1
            for k, n in enumerate(l.ncp):
                last = k == len(l.ncp) - 1
                if l.closed and last and not l.explicit_close:
                    break  # the closing line is implied by Z
                ctrl = [p(j) for j in range(i, i + n)]
                end = p(l.start) if (l.closed and last) else p(i + n)
                parts.append("LQC"[n] + " ".join(ctrl + [end]))
                i += n + 1
            if l.closed:
                parts.append("Z")
        return "".join(parts)

    def write(self, fmt: Formatter, element=None) -> None:
        (self.element if element is None else element).set("d", self.path_data(fmt))


# --------------------------------------------------------------------------------------------
# basic shapes
# --------------------------------------------------------------------------------------------

# Unit circle as four cubic quarter arcs starting at angle 0, in the positive angle direction
# (SVG 1.1 §9.3: the circle "starts at (cx + r, cy)" and proceeds clockwise on screen).
_K = KAPPA
_UNIT_CIRCLE = np.array(
    [[1, 0], [1, _K], [_K, 1], [0, 1], [-_K, 1], [-1, _K], [-1, 0], [-1, -_K], [-_K, -1], [0, -1], [_K, -1], [1, -_K]],
    dtype=np.float64,
)
_FOUR_CUBICS = [2, 2, 2, 2]


class CircleGeometry(Geometry):
    """``<circle>``: ``center`` ``(2,)`` and radius ``r`` (0-d) tensors."""

    tag = "circle"

    def __init__(self, element, cx, cy, r, dtype=torch.float32, device=None):
        super().__init__(element)
        self.center = _tensor([cx, cy], dtype, device)
        self.r = _tensor(r, dtype, device)
        self._unit = _tensor(_UNIT_CIRCLE, dtype, device)
        self._ncp = torch.tensor(_FOUR_CUBICS, dtype=torch.long, device=device)
        self._remember()

    def tensors(self):
        return [self.center, self.r]

    def project(self):
        self.r.clamp_(min=0.0)

    def subpaths(self):
        return [UserSubpath(self.center + self._unit * self.r, self._ncp, True)]

    def write(self, fmt, element=None):
        el = self.element if element is None else element
        self._write_changed(el, fmt, ("cx", "cy", "r"))


class EllipseGeometry(Geometry):
    """``<ellipse>``: ``center`` ``(2,)`` and ``radii`` ``(2,)`` (rx, ry) tensors."""

    tag = "ellipse"

    def __init__(self, element, cx, cy, rx, ry, dtype=torch.float32, device=None):
        super().__init__(element)
        self.center = _tensor([cx, cy], dtype, device)
        self.radii = _tensor([rx, ry], dtype, device)
        self._unit = _tensor(_UNIT_CIRCLE, dtype, device)
        self._ncp = torch.tensor(_FOUR_CUBICS, dtype=torch.long, device=device)
        self._remember()

    def tensors(self):
        return [self.center, self.radii]

    def project(self):
        self.radii.clamp_(min=0.0)

    def subpaths(self):
        return [UserSubpath(self.center + self._unit * self.radii, self._ncp, True)]

    def write(self, fmt, element=None):
        el = self.element if element is None else element
        self._write_changed(el, fmt, ("cx", "cy", "rx", "ry"))


# Rounded rect (SVG 1.1 §9.2): point = corner + A·size + B·radius, clockwise from (x + rx, y);
# the last corner's cubic ends at the start point, which a closed subpath does not repeat.
_RA = np.array(
    [[0, 0], [1, 0], [1, 0], [1, 0], [1, 0], [1, 1], [1, 1], [1, 1], [1, 1], [0, 1], [0, 1], [0, 1], [0, 1],
     [0, 0], [0, 0], [0, 0]], dtype=np.float64)
_RB = np.array(
    [[1, 0], [-1, 0], [-1 + _K, 0], [0, 1 - _K], [0, 1], [0, -1], [0, -1 + _K], [-1 + _K, 0], [-1, 0], [1, 0],
     [1 - _K, 0], [0, -1 + _K], [0, -1], [0, 1], [0, 1 - _K], [1 - _K, 0]], dtype=np.float64)
_RNCP = [0, 2, 0, 2, 0, 2, 0, 2]
_SQUARE = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64)


class RectGeometry(Geometry):
    """``<rect>``: ``xy`` ``(2,)``, ``size`` ``(2,)`` (width, height) and ``radii`` ``(2,)`` tensors.

    ``radii`` holds the *used* corner radii (SVG's rx/ry defaulting rules applied); at render time
    they are clamped to half the size as the spec requires.
    """

    tag = "rect"

    def __init__(self, element, x, y, w, h, rx, ry, dtype=torch.float32, device=None):
        super().__init__(element)
        self.xy = _tensor([x, y], dtype, device)
        self.size = _tensor([w, h], dtype, device)
        self.radii = _tensor([rx, ry], dtype, device)
        self._a = _tensor(_RA, dtype, device)
        self._b = _tensor(_RB, dtype, device)
        self._square = _tensor(_SQUARE, dtype, device)
        self._rncp = torch.tensor(_RNCP, dtype=torch.long, device=device)
        self._sncp = torch.zeros(4, dtype=torch.long, device=device)
        self._remember()

    def tensors(self):
        return [self.xy, self.size, self.radii]

    def project(self):
        self.size.clamp_(min=0.0)
        self.radii.clamp_(min=0.0)

    def subpaths(self):
        r = torch.minimum(self.radii.clamp_min(0), self.size.abs() * 0.5)
        if float(r.detach().min()) <= 0:
            return [UserSubpath(self.xy + self._square * self.size, self._sncp, True)]
        return [UserSubpath(self.xy + self._a * self.size + self._b * r, self._rncp, True)]

    def write(self, fmt, element=None):
        el = self.element if element is None else element
        self._write_changed(el, fmt, ("x", "y", "width", "height", "", ""))
        r = self.radii.detach().cpu().tolist()
        if r != self._snapshot[2].tolist():  # both, since rx/ry default to each other
            el.set("rx", fmt(max(r[0], 0.0)))
            el.set("ry", fmt(max(r[1], 0.0)))


class LineGeometry(Geometry):
    """``<line>``: ``points`` ``(2, 2)`` = ``[[x1, y1], [x2, y2]]``."""

    tag = "line"

    def __init__(self, element, x1, y1, x2, y2, dtype=torch.float32, device=None):
        super().__init__(element)
        self.points = _tensor([[x1, y1], [x2, y2]], dtype, device)
        self._ncp = torch.zeros(1, dtype=torch.long, device=device)
        self._remember()

    def tensors(self):
        return [self.points]

    def subpaths(self):
        return [UserSubpath(self.points, self._ncp, False)]

    def write(self, fmt, element=None):
        el = self.element if element is None else element
        self._write_changed(el, fmt, ("x1", "y1", "x2", "y2"))


class PolyGeometry(Geometry):
    """``<polyline>`` / ``<polygon>``: ``points`` ``(N, 2)``."""

    def __init__(self, element, tag, pts, dtype=torch.float32, device=None):
        super().__init__(element)
        self.tag = tag
        self.closed = tag == "polygon"
        self.points = _tensor(pts, dtype, device).reshape(-1, 2)
        n = len(pts) if self.closed else len(pts) - 1
        self._ncp = torch.zeros(n, dtype=torch.long, device=device)
        self._remember()

    def tensors(self):
        return [self.points]

    def subpaths(self):
        return [UserSubpath(self.points, self._ncp, self.closed)]

    def write(self, fmt, element=None):
        el = self.element if element is None else element
        p = self.points.detach().cpu().tolist()
        el.set("points", " ".join(f"{fmt(x)},{fmt(y)}" for x, y in p))


# --------------------------------------------------------------------------------------------
# factory
# --------------------------------------------------------------------------------------------

def make_geometry(element: ET.Element, tag: str, viewport: Tuple[float, float], font_size: float = 16.0,
                  dtype=torch.float32, device=None) -> Tuple[Optional[Geometry], Optional[str]]:
    """Read one shape element's geometry.

    Args:
        element: the XML element.
        tag: its local name (``path``, ``rect``, ``circle``, ``ellipse``, ``line``, ``polyline``,
            ``polygon``).
        viewport: ``(width, height)`` of the nearest viewport in user units, for percentages.

    Returns:
        ``(geometry, problem)``: ``geometry`` is ``None`` when the element draws nothing (zero
        radius, missing data...); ``problem`` is a short description when the data was invalid
        (the caller warns), else ``None``.
    """
    vw, vh = viewport
    diag = math.sqrt((vw * vw + vh * vh) / 2.0)
    get = element.get

    def length(name, ref, default=0.0):
        return parse_length(get(name), ref, font_size, default)

    kw = {"dtype": dtype, "device": device}
    if tag == "path":
        d = get("d")
        if not d or not d.strip():
            return None, None
        g = PathGeometry(element, d, **kw)
        problem = "invalid path data" if g.data_error else None
        return (g if g.layouts else None), problem
    if tag == "circle":
        r = length("r", diag)
        if r is None or r <= 0:
            return None, ("negative radius" if r is not None and r < 0 else None)
        return CircleGeometry(element, length("cx", vw), length("cy", vh), r, **kw), None
    if tag == "ellipse":
        rx, ry = length("rx", vw, None), length("ry", vh, None)
        if rx is None or get("rx") == "auto":
            rx = ry
        if ry is None or get("ry") == "auto":
            ry = rx
        if rx is None or ry is None or rx <= 0 or ry <= 0:
            return None, None
        return EllipseGeometry(element, length("cx", vw), length("cy", vh), rx, ry, **kw), None
    if tag == "rect":
        w, h = length("width", vw), length("height", vh)
        if w is None or h is None or w <= 0 or h <= 0:
            return None, ("negative size" if (w or 0) < 0 or (h or 0) < 0 else None)
        rx, ry = length("rx", vw, None), length("ry", vh, None)
        if rx is not None and rx < 0:
            rx = None
        if ry is not None and ry < 0:
            ry = None
        if rx is None and ry is None:
            rx = ry = 0.0
        elif rx is None:
            rx = ry
        elif ry is None:
            ry = rx
        rx, ry = min(rx, w / 2.0), min(ry, h / 2.0)
        return RectGeometry(element, length("x", vw), length("y", vh), w, h, rx, ry, **kw), None
    if tag == "line":
        return LineGeometry(element, length("x1", vw), length("y1", vh), length("x2", vw), length("y2", vh), **kw), None
    if tag in ("polyline", "polygon"):
        nums = parse_numbers(get("points"))
        problem = "odd number of coordinates in points" if len(nums) % 2 else None
        pts = [(nums[i], nums[i + 1]) for i in range(0, len(nums) - 1, 2)]
        if len(pts) < 2:
            return None, problem
        return PolyGeometry(element, tag, pts, **kw), problem
    raise ValueError(f"not a shape element: <{tag}>")


# --------------------------------------------------------------------------------------------
# bounding boxes
# --------------------------------------------------------------------------------------------

def _bezier_extrema(p: np.ndarray) -> List[float]:
    """Parameters in (0, 1) where a quadratic/cubic (control polygon ``p`` of one axis) is extremal."""
    if len(p) == 3:
        den = p[0] - 2 * p[1] + p[2]
        return [float((p[0] - p[1]) / den)] if abs(den) > 1e-12 else []
    a = -p[0] + 3 * p[1] - 3 * p[2] + p[3]
    b = 2 * (p[0] - 2 * p[1] + p[2])
    c = p[1] - p[0]
    if abs(a) < 1e-12:
        return [float(-c / b)] if abs(b) > 1e-12 else []
    disc = b * b - 4 * a * c
    if disc < 0:
        return []
    s = math.sqrt(disc)
    return [float((-b + s) / (2 * a)), float((-b - s) / (2 * a))]


def _bezier_point(p: np.ndarray, t: float) -> np.ndarray:
    while len(p) > 1:
        p = (1 - t) * p[:-1] + t * p[1:]
    return p[0]


def subpath_bbox(points: np.ndarray, ncp: Sequence[int], closed: bool):
    """Tight bounding box ``(x0, y0, x1, y1)`` of a subpath (curve extrema included)."""
    if len(points) == 0:
        return None
    xs, ys = [points[0, 0]], [points[0, 1]]
    i = 0
    for k, n in enumerate(ncp):
        n = int(n)
        end = (i + n + 1) if not (closed and k == len(ncp) - 1) else 0
        ctrl = points[i + 1 : i + 1 + n]
        seg = np.concatenate([points[i : i + 1], ctrl, points[end : end + 1]], 0)
        xs.append(seg[-1, 0])
        ys.append(seg[-1, 1])
        if n:
            for axis, acc in ((0, xs), (1, ys)):
                for t in _bezier_extrema(seg[:, axis]):
                    if 0 < t < 1:
                        acc.append(_bezier_point(seg[:, axis], t))
        i += n + 1
    return float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))
