"""Stroke dashing (``stroke-dasharray``, ``stroke-dashoffset``, ``pathLength``) on Bézier subpaths.

Dashes are cut from the element's geometry in its own user space (SVG 2 §13.5.5 dashes in user
units, before any transform), and every dash stays a chain of line/quadratic/cubic segments:
a piece of a Bézier over ``[a, b]`` is again a Bézier whose control points are the curve's
blossom at ``(a, a, b)``-style arguments, so the stroker still sees exact tangents and joins.

Arc length is measured on a fine detached polyline (topology decisions, as in the rasterizer);
the cut parameters are then made differentiable to first order, ``t = t̂ + (s − ŝ) / |B'(t̂)|``,
so a dash end moves along the curve with ``stroke-dashoffset`` (and with the control points,
through the Bézier itself).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from .geometry import UserSubpath

__all__ = ["dash_subpaths"]

#: Samples per curved segment for the arc-length table (the error is far below a pixel).
ARC_SAMPLES = 64


def _segments(sub: UserSubpath) -> List[Tensor]:
    """The subpath's segments as ``(degree + 1, 2)`` control-point tensors, in order."""
    pts, ncp = sub.points, [int(c) for c in sub.num_control_points.tolist()]
    out, s = [], 0
    for k, c in enumerate(ncp):
        e = s + c + 1
        end = pts[0:1] if (sub.closed and k == len(ncp) - 1) else pts[e:e + 1]
        out.append(torch.cat([pts[s:e], end], 0))
        s = e
    return out


def _blossom(cp: Tensor, args: Sequence[Tensor]) -> Tensor:
    """Polar form of a Bézier (control points ``cp``, degree ``len(args)``) at ``args``."""
    level = cp
    for u in args:
        level = level[:-1] + (level[1:] - level[:-1]) * u
    return level[0]


def _piece(cp: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Control points of the segment ``cp`` restricted to ``t ∈ [a, b]``."""
    n = cp.shape[0] - 1
    return torch.stack([_blossom(cp, [a] * (n - i) + [b] * i) for i in range(n + 1)])


def _table(cp: Tensor) -> Tensor:
    """Cumulative arc length at ``ARC_SAMPLES + 1`` uniform parameters (detached, float64)."""
    c = cp.detach().double()
    if c.shape[0] == 2:
        return torch.stack([torch.zeros((), dtype=c.dtype), (c[1] - c[0]).norm()])
    t = torch.linspace(0, 1, ARC_SAMPLES + 1, dtype=c.dtype).view(-1, 1)
    n = c.shape[0] - 1
    binom = [1, n, n * (n - 1) // 2, 1][: n + 1] if n == 3 else [1, n, 1][: n + 1]
    p = sum(binom[i] * t ** i * (1 - t) ** (n - i) * c[i] for i in range(n + 1))
    d = (p[1:] - p[:-1]).norm(dim=-1)
    return torch.cat([torch.zeros(1, dtype=c.dtype), torch.cumsum(d, 0)])


def _speed(cp: Tensor, t: float) -> float:
    """``|B'(t)|`` (detached)."""
    c = cp.detach().double()
    d = c.shape[0] - 1
    deriv = d * (c[1:] - c[:-1])
    v = _blossom(deriv, [torch.tensor(t, dtype=c.dtype)] * (d - 1)) if d > 1 else deriv[0]
    return float(v.norm())


class _Locator:
    """Maps arc length along one subpath to ``(segment, t)``, differentiably to first order."""

    def __init__(self, segs: List[Tensor]):
        self.segs = segs
        self.tables = [_table(cp) for cp in segs]
        lengths = [float(tb[-1]) for tb in self.tables]
        self.starts = [0.0]
        for length in lengths:
            self.starts.append(self.starts[-1] + length)
        self.length = self.starts[-1]

    def locate(self, s: Tensor) -> tuple:
        s_hat = float(s.detach())
        k = 0
        while k < len(self.segs) - 1 and s_hat > self.starts[k + 1]:
            k += 1
        tb = self.tables[k]
        local = min(max(s_hat - self.starts[k], 0.0), float(tb[-1]))
        j = int(torch.searchsorted(tb, torch.tensor(local, dtype=tb.dtype)).clamp(1, len(tb) - 1))
        l0, l1 = float(tb[j - 1]), float(tb[j])
        n = len(tb) - 1
        t_hat = ((j - 1) + ((local - l0) / (l1 - l0) if l1 > l0 else 0.0)) / n
        speed = _speed(self.segs[k], t_hat)
        dt = (s - s_hat) / speed if speed > 1e-12 else s * 0
        return k, (t_hat + dt).to(self.segs[k].dtype)


def _extract(loc: _Locator, a: Tensor, b: Tensor) -> UserSubpath:
    """The open subpath between arc lengths ``a ≤ b``."""
    ka, ta = loc.locate(a)
    kb, tb = loc.locate(b)
    pieces = []
    for k in range(ka, kb + 1):
        cp = loc.segs[k]
        lo = ta if k == ka else torch.zeros((), dtype=cp.dtype)
        hi = tb if k == kb else torch.ones((), dtype=cp.dtype)
        pieces.append(_piece(cp, lo, hi))
    return _chain(pieces)


def _chain(pieces: List[Tensor]) -> UserSubpath:
    """Join consecutive segments (sharing end points) into one open subpath."""
    pts = [pieces[0][:1]] + [p[1:] for p in pieces]
    ncp = torch.tensor([p.shape[0] - 2 for p in pieces], dtype=torch.long)
    return UserSubpath(torch.cat(pts, 0), ncp, False)


def dash_subpaths(subpaths: Sequence[UserSubpath], array: Sequence[float], offset: Union[float, Tensor] = 0.0,
                  path_length: Optional[float] = None) -> List[UserSubpath]:
    """Cut subpaths into dashes.

    Args:
        subpaths: the geometry (user units), as :meth:`pds.svg.geometry.Geometry.subpaths` gives it.
        array: ``stroke-dasharray``, an even number of non-negative lengths with a positive sum.
        offset: ``stroke-dashoffset`` (user units; a tensor to differentiate through it).
        path_length: the element's ``pathLength``: author lengths are scaled by the computed
            length over it.

    Returns:
        The dashes as open subpaths (a zero-length dash is a single point, which round and
        square caps draw as a dot).  The pattern restarts on every subpath (SVG 2 §13.5.5); on a
        closed subpath a dash through its start point is one dash.
    """
    if len(array) == 0 or len(array) % 2:
        raise ValueError(f"a dash array needs an even, non-zero number of lengths, got {list(array)}")
    locs = []
    for sub in subpaths:
        segs = _segments(sub)
        locs.append((sub, _Locator(segs) if segs else None))
    total = sum(loc.length for _s, loc in locs if loc is not None)
    scale = total / path_length if path_length else 1.0
    dashes = [float(v) * scale for v in array]
    period = sum(dashes)
    if period <= 0:
        raise ValueError("the dash array lengths must have a positive sum")
    out: List[UserSubpath] = []
    for sub, loc in locs:
        if loc is None or loc.length <= 0:
            continue
        dtype = sub.points.dtype
        off = torch.as_tensor(offset, dtype=dtype) * scale
        phase = float(off.detach()) % period
        # Pattern position p ↦ arc length p − phase − k·period; the on-intervals are the even entries.
        s = -phase
        on_ends = []
        k = 0
        while s < loc.length:
            for i, d in enumerate(dashes):
                if i % 2 == 0 and s + d >= 0 and s <= loc.length:
                    on_ends.append((s, s + d))
                s += d
            k += 1
        shift = off.detach() - off  # moves with the offset: a larger offset slides dashes back
        intervals = []
        for a, b in on_ends:
            ta = torch.as_tensor(a, dtype=dtype) + shift if a > 0 else torch.zeros((), dtype=dtype)
            tb = torch.as_tensor(b, dtype=dtype) + shift if b < loc.length else torch.full((), loc.length, dtype=dtype)
            intervals.append((ta, tb, a <= 0, b >= loc.length))
        if sub.closed and len(intervals) > 1 and intervals[0][2] and intervals[-1][3]:
            last = _extract(loc, intervals[-1][0], intervals[-1][1])
            first = _extract(loc, intervals[0][0], intervals[0][1])
            joined = UserSubpath(torch.cat([last.points, first.points[1:]], 0),
                                 torch.cat([last.num_control_points, first.num_control_points]), False)
            out.append(joined)
            intervals = intervals[1:-1]
        elif sub.closed and len(intervals) == 1 and intervals[0][2] and intervals[0][3]:
            out.append(sub)
            continue
        for ta, tb, _s0, _s1 in intervals:
            if float(tb.detach()) - float(ta.detach()) <= 1e-9:
                k_, t_ = loc.locate(ta)
                point = _blossom(loc.segs[k_], [t_] * (loc.segs[k_].shape[0] - 1)).view(1, 2)
                out.append(UserSubpath(point, torch.zeros(0, dtype=torch.long), False))
            else:
                out.append(_extract(loc, ta, tb))
    return out
