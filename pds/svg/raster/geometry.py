"""Flatten stage of the rasterizer: Bézier flattening, fill outlines and stroke outlines.

Everything here turns :class:`~pds.svg.shapes.Subpath` geometry into **directed line edges**
``(E, 4) = (x0, y0, x1, y1)`` whose union is a set of closed loops; the cover stage
(:mod:`pds.svg.raster.coverage`) only needs the edges, never their order.  All work is
vectorised over every subpath of every group at once: Python loops run per subpath only to
build integer index tables.

Decisions that change topology (how many pieces a curve gets, which side of a join is the outer
one, whether a miter fits under the miter limit, which zero-length edges to drop) are taken on
detached values; the coordinates themselves are always computed differentiably from the input
points and stroke widths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor

from ..shapes import Subpath

#: Default flattening tolerance in pixels (cairo's default ``tolerance`` is also 0.1 device px).
DEFAULT_TOLERANCE = 0.1
#: Upper bound on the number of line pieces a single Bézier segment is flattened into.
MAX_PIECES = 128
#: Polyline edges shorter than this (pixels) are dropped before stroking: their direction is
#: noise, and SVG says zero-length segments do not affect joins (SVG 1.1 §11.4 "zero-length").
DEGENERATE_EPS = 1e-3

_JOIN_CODES = {"miter": 0, "miter-clip": 0, "arcs": 0, "round": 1, "bevel": 2}
_CAP_CODES = {"butt": 0, "round": 1, "square": 2}


@dataclass
class Polylines:
    """Flattened subpaths, concatenated.

    Attributes:
        verts: ``(V, 2)`` vertices (differentiable), subpath after subpath.  Open subpaths end
            with their last point; closed subpaths do not repeat their first point.
        start: ``(N,)`` int64 index of each subpath's first vertex in ``verts``.
        count: ``(N,)`` int64 number of vertices per subpath.
        closed: ``(N,)`` bool.
        corner: ``(V,)`` bool, True for vertices that are segment end points of the original
            path (where the SVG ``stroke-linejoin`` applies); False for vertices that only come
            from flattening a curve.
        tan_in, tan_out: ``(V, 2)`` unit tangents of the curve arriving at / leaving a corner
            vertex (differentiable), used by the stroker instead of the adjacent chord's
            direction so that joins and caps at curve ends see the exact tangent, as cairo's
            stroker does (a chord is off by half a flattening step, enough to flip a miter whose
            ratio is near the limit). Only meaningful where ``has_in`` / ``has_out``.
        has_in, has_out: ``(V,)`` bool.
    """

    verts: Tensor
    start: Tensor
    count: Tensor
    closed: Tensor
    corner: Tensor
    tan_in: Optional[Tensor] = None
    tan_out: Optional[Tensor] = None
    has_in: Optional[Tensor] = None
    has_out: Optional[Tensor] = None

    def take(self, idx: Tensor, start: Tensor, count: Tensor, closed: Tensor) -> "Polylines":
        """The vertices ``idx`` (in order) regrouped into subpaths ``start``/``count``/``closed``."""
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return Polylines(self.verts[idx], start, count, closed, self.corner[idx],
                         pick(self.tan_in), pick(self.tan_out), pick(self.has_in), pick(self.has_out))

    @property
    def path_id(self) -> Tensor:
        """``(V,)`` index of the subpath each vertex belongs to."""
        return torch.repeat_interleave(torch.arange(len(self.count), device=self.verts.device), self.count)


def _segment_table(sub: Subpath, base: int) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """Index table of one subpath: for every segment the indices of its start point, two
    control points (lines repeat the end points, quadratics repeat their control point) and end
    point into the concatenated point tensor, plus its degree."""
    ncp = [int(c) for c in sub.num_control_points.tolist()]
    n_pts = int(sub.points.shape[0])
    expected = sum(c + 1 for c in ncp) + (0 if sub.closed else 1)
    if any(c not in (0, 1, 2) for c in ncp):
        raise ValueError(f"num_control_points must contain only 0, 1 or 2, got {ncp}")
    if ncp and n_pts != expected:
        kind = "closed" if sub.closed else "open"
        raise ValueError(
            f"a {kind} subpath with num_control_points={ncp} needs {expected} points, got {n_pts} "
            "(closed subpaths must not repeat their first point; see pds.svg.shapes)"
        )
    i0, i1, i2, i3, deg = [], [], [], [], []
    s = 0
    for k, c in enumerate(ncp):
        e = s + c + 1
        end = 0 if (sub.closed and k == len(ncp) - 1) else e
        i0.append(base + s)
        i3.append(base + end)
        if c == 0:
            i1.append(base + s)
            i2.append(base + end)
        elif c == 1:
            i1.append(base + s + 1)
            i2.append(base + s + 1)
        else:
            i1.append(base + s + 1)
            i2.append(base + s + 2)
        deg.append(c)
        s = e
    return i0, i1, i2, i3, deg


def flatten(
    subpaths: Sequence[Subpath],
    tolerance: float = DEFAULT_TOLERANCE,
    half_widths: Sequence[float] | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> Polylines:
    """Flatten many subpaths into polylines in one vectorised pass.

    Every segment is first written as a cubic (lines and quadratics are degree-elevated, which
    does not change the curve) and sampled at ``n`` uniform parameter values, where ``n`` keeps
    the chord error below ``tolerance``: for a cubic the distance between the curve and the
    chord over ``[t, t + 1/n]`` is at most ``max|B''| / (8 n²)`` with
    ``max|B''| ≤ 6 max(|p0 − 2p1 + p2|, |p1 − 2p2 + p3|)``, so ``n = ⌈√(0.75 dd / tol)⌉``.
    When the subpath is stroked with half width ``w`` its offset curve turns through the same
    angle on a radius grown by ``w``, so ``n`` also covers ``turn · √(w / (8 tol))``.

    Args:
        subpaths: the subpaths, in any order.
        tolerance: maximum chord error in pixels.
        half_widths: optional per-subpath stroke half width (pixels, plain floats) used only to
            choose ``n``; ``0`` or ``None`` for fill-only subpaths.
        dtype, device: of the output vertices (default: those of the first subpath's points).

    Returns:
        :class:`Polylines`; subpaths without points yield zero vertices.
    """
    if dtype is None:
        dtype = subpaths[0].points.dtype if subpaths else torch.float32
    if device is None:
        device = subpaths[0].points.device if subpaths else torch.device("cpu")
    tables: list[list[int]] = [[], [], [], [], []]
    seg_path: list[int] = []
    lone: list[int] = []  # subpaths with a single point and no segment (a bare "M x y")
    pts, base = [], 0
    n_seg = []
    for p, sub in enumerate(subpaths):
        if sub.points.dim() != 2 or sub.points.shape[-1] != 2:
            raise ValueError(f"Subpath.points must have shape (P, 2), got {tuple(sub.points.shape)}")
        t = _segment_table(sub, base)
        for acc, vals in zip(tables, t):
            acc.extend(vals)
        seg_path.extend([p] * len(t[4]))
        n_seg.append(len(t[4]))
        if not t[4]:
            lone.append(p)
        pts.append(sub.points.to(device=device, dtype=dtype))
        base += int(sub.points.shape[0])
    n_paths = len(subpaths)
    if base == 0:
        empty = torch.zeros(0, 2, dtype=dtype, device=device)
        z = torch.zeros(n_paths, dtype=torch.long, device=device)
        closed = torch.tensor([s.closed for s in subpaths], dtype=torch.bool, device=device)
        return Polylines(empty, z, z.clone(), closed, torch.zeros(0, dtype=torch.bool, device=device))
    all_pts = torch.cat(pts, 0)
    i0, i1, i2, i3, deg = (torch.tensor(v, dtype=torch.long, device=device) for v in tables)
    seg_path_t = torch.tensor(seg_path, dtype=torch.long, device=device)
    closed = torch.tensor([s.closed for s in subpaths], dtype=torch.bool, device=device)

    a, b, c, d = all_pts[i0], all_pts[i1], all_pts[i2], all_pts[i3]
    quad = (deg == 1).unsqueeze(-1)
    # Degree elevation of a quadratic (q0, q1, q2): c1 = q0 + 2/3 (q1 − q0), c2 = q2 + 2/3 (q1 − q2).
    p1 = torch.where(quad, a + (2.0 / 3.0) * (b - a), b)
    p2 = torch.where(quad, d + (2.0 / 3.0) * (c - d), c)

    with torch.no_grad():
        dd = torch.maximum((a - 2 * p1 + p2).norm(dim=-1), (p1 - 2 * p2 + d).norm(dim=-1))
        n = torch.ceil(torch.sqrt(0.75 * dd / tolerance))
        if half_widths is not None:
            hw = torch.tensor([float(h or 0.0) for h in half_widths], dtype=dd.dtype, device=device)[seg_path_t]
            l1, l2, l3 = p1 - a, p2 - p1, d - p2

            def angle(u: Tensor, v: Tensor) -> Tensor:
                cr = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
                return torch.atan2(cr.abs(), (u * v).sum(-1))

            turn = torch.maximum(angle(l1, l2) + angle(l2, l3), angle(l1, l3))
            n = torch.maximum(n, torch.ceil(turn * torch.sqrt(hw / (8 * tolerance))))
        # coordinates near the float limit overflow the estimate to NaN (as a long: negative)
        n = torch.nan_to_num(n, nan=float(MAX_PIECES))
        n = torch.where(deg == 0, torch.ones_like(n), n.clamp(1, MAX_PIECES)).long()
        n_seg_t = torch.tensor(n_seg, dtype=torch.long, device=device)
        seg_start = torch.cumsum(n_seg_t, 0) - n_seg_t  # first segment of each subpath
        is_last = torch.zeros(len(deg), dtype=torch.bool, device=device)
        has_seg = n_seg_t > 0
        is_last[(seg_start + n_seg_t - 1)[has_seg]] = True
        # The last segment of an open subpath also emits its end point (t = 1).
        extra = (is_last & ~closed[seg_path_t]).long()
        samples = n + extra
        seg_of = torch.repeat_interleave(torch.arange(len(deg), device=device), samples)
        first = torch.cumsum(samples, 0) - samples
        j = torch.arange(int(samples.sum()), device=device) - first[seg_of]
        t = (j.to(dtype) / n[seg_of].to(dtype)).unsqueeze(-1)
        corner = (j == 0) | (j == n[seg_of])
        vert_path = seg_path_t[seg_of]

    mt = 1 - t
    verts = ((mt * mt * mt) * a[seg_of] + (3 * mt * mt * t) * p1[seg_of]
             + (3 * mt * t * t) * p2[seg_of] + (t * t * t) * d[seg_of])

    # End tangents of curve segments: B'(0) ∝ p1 − p0, falling back to p2 − p0 and p3 − p0 when
    # control points coincide with the end point (B'(1) symmetrically).
    def first_nonzero(*cands: Tensor) -> Tensor:
        out = cands[-1]
        for c in reversed(cands[:-1]):
            out = torch.where((c.detach().norm(dim=-1, keepdim=True) > 1e-9), c, out)
        return out / torch.sqrt((out * out).sum(-1, keepdim=True).clamp_min(1e-24))

    t0 = first_nonzero(p1 - a, p2 - a, d - a)
    t1 = first_nonzero(d - p2, d - p1, d - a)
    with torch.no_grad():
        curve = deg > 0
        n_samples = len(seg_of)
        seg_ids = torch.arange(len(deg), device=device)
        nxt_seg = torch.where(is_last, seg_start[seg_path_t], seg_ids + 1)
        end_vertex = torch.where(is_last & ~closed[seg_path_t], first + n, first[nxt_seg.clamp(max=len(deg) - 1)])
        has_out = torch.zeros(n_samples, dtype=torch.bool, device=device)
        has_in = torch.zeros(n_samples, dtype=torch.bool, device=device)
        has_out[first[curve]] = True
        has_in[end_vertex[curve]] = True
    tan_out = verts.new_zeros(n_samples, 2).index_put((first[curve],), t0[curve])
    tan_in = verts.new_zeros(n_samples, 2).index_put((end_vertex[curve],), t1[curve])

    if lone:
        # A bare moveto still defines a (zero-length) subpath: it gets one vertex so that round
        # and square caps can draw a dot, as SVG 2 (§13.5.7) and cairo do.
        lone_t = torch.tensor(lone, dtype=torch.long, device=device)
        base_idx = torch.tensor([0] + [int(s.points.shape[0]) for s in subpaths], device=device).cumsum(0)[:-1]
        has_pt = torch.tensor([int(subpaths[p].points.shape[0]) > 0 for p in lone], dtype=torch.bool, device=device)
        lone_t = lone_t[has_pt]
        n_lone = len(lone_t)
        verts = torch.cat([verts, all_pts[base_idx[lone_t]]], 0)
        vert_path = torch.cat([vert_path, lone_t])
        false = torch.zeros(n_lone, dtype=torch.bool, device=device)
        corner = torch.cat([corner, ~false])
        tan_in = torch.cat([tan_in, verts.new_zeros(n_lone, 2)])
        tan_out = torch.cat([tan_out, verts.new_zeros(n_lone, 2)])
        has_in, has_out = torch.cat([has_in, false]), torch.cat([has_out, false])
        order = torch.argsort(vert_path, stable=True)
        verts, vert_path, corner = verts[order], vert_path[order], corner[order]
        tan_in, tan_out, has_in, has_out = tan_in[order], tan_out[order], has_in[order], has_out[order]
    count = torch.bincount(vert_path, minlength=n_paths)
    start = torch.cumsum(count, 0) - count
    return Polylines(verts, start, count, closed, corner, tan_in, tan_out, has_in, has_out)


def _ring_neighbours(start: Tensor, count: Tensor, path_id: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Local index, next and previous vertex (cyclic within each subpath) for every vertex."""
    k = torch.arange(len(path_id), device=path_id.device)
    s, m = start[path_id], count[path_id]
    j = k - s
    nxt = torch.where(j < m - 1, k + 1, s)
    prv = torch.where(j > 0, k - 1, s + m - 1)
    return j, nxt, prv


def fill_edges(poly: Polylines) -> tuple[Tensor, Tensor]:
    """Directed edges of the fill outline: every polyline closed by a straight line.

    SVG fills open subpaths as if they were closed (SVG 1.1 §11.3), so each subpath contributes
    its edges plus the edge from its last vertex back to its first.

    Returns:
        ``edges (E, 4)`` and ``path (E,)`` (the subpath index of each edge).
    """
    path_id = poly.path_id
    _, nxt, _ = _ring_neighbours(poly.start, poly.count, path_id)
    edges = torch.cat([poly.verts, poly.verts[nxt]], 1)
    return edges, path_id


def _rot(v: Tensor, ang: Tensor) -> Tensor:
    """Rotate 2-vectors ``v (..., 2)`` by ``ang (...)`` radians (x right, y down: the rotation
    is written in the usual maths convention; only consistency matters here)."""
    c, s = torch.cos(ang), torch.sin(ang)
    return torch.stack([v[..., 0] * c - v[..., 1] * s, v[..., 0] * s + v[..., 1] * c], -1)


def _arc_steps(angle: Tensor, radius: Tensor, tolerance: float) -> Tensor:
    """Number of chords so that an arc of ``angle`` radians and ``radius`` px deviates from
    its inscribed polygon by at most ``tolerance`` (sagitta ``r (1 − cos(Δ/2)) ≤ tol``)."""
    r = radius.clamp_min(tolerance)
    step = 2 * torch.acos((1 - tolerance / r).clamp(-1, 1))
    return torch.ceil(angle.abs() / step.clamp_min(1e-3)).clamp(1, 256).long()


def _polyline_block_edges(pts: Tensor) -> Tensor:
    """``(N, k, 2)`` point chains → ``(N·(k−1), 4)`` edges between consecutive points."""
    return torch.cat([pts[:, :-1], pts[:, 1:]], -1).reshape(-1, 4)


def _arc_edges(center: Tensor, radius: Tensor, a: Tensor, sweep: Tensor, steps: Tensor) -> tuple[Tensor, Tensor]:
    """Chords of arcs ``center + radius · R(sweep · s) a`` for ``s`` in ``[0, 1]``.

    Returns the ``(Σ steps, 4)`` edges and, for each edge, the index of its arc.
    """
    arc = torch.repeat_interleave(torch.arange(len(steps), device=steps.device), steps)
    first = torch.cumsum(steps, 0) - steps
    j = (torch.arange(len(arc), device=steps.device) - first[arc]).to(center.dtype)
    m = steps[arc].to(center.dtype)
    sw = sweep[arc]
    r = radius[arc].unsqueeze(-1)
    p0 = center[arc] + r * _rot(a[arc], sw * (j / m))
    p1 = center[arc] + r * _rot(a[arc], sw * ((j + 1) / m))
    return torch.cat([p0, p1], -1), arc


@dataclass
class StrokeStyle:
    """Per-subpath stroke parameters (one row per stroked subpath).

    Attributes:
        half_width: ``(N,)`` differentiable half stroke width in pixels.
        join: ``(N,)`` int64 join code (0 miter, 1 round, 2 bevel).
        cap: ``(N,)`` int64 cap code (0 butt, 1 round, 2 square).
        miterlimit: ``(N,)`` float miter limit.
    """

    half_width: Tensor
    join: Tensor
    cap: Tensor
    miterlimit: Tensor


def join_code(name: str) -> int:
    """SVG ``stroke-linejoin`` keyword → code used by :class:`StrokeStyle`."""
    try:
        return _JOIN_CODES[name]
    except KeyError:
        raise ValueError(f"unknown linejoin {name!r}; expected one of {sorted(_JOIN_CODES)}") from None


def cap_code(name: str) -> int:
    """SVG ``stroke-linecap`` keyword → code used by :class:`StrokeStyle`."""
    try:
        return _CAP_CODES[name]
    except KeyError:
        raise ValueError(f"unknown linecap {name!r}; expected one of {sorted(_CAP_CODES)}") from None


def drop_degenerate(poly: Polylines, eps: float = DEGENERATE_EPS) -> Polylines:
    """Remove vertices closer than ``eps`` to their predecessor (and, for closed subpaths, a
    last vertex that coincides with the first), so every remaining edge has a direction."""
    with torch.no_grad():
        path_id = poly.path_id
        j, _, prv = _ring_neighbours(poly.start, poly.count, path_id)
        v = poly.verts.detach()
        step = (v - v[prv]).norm(dim=-1)
        m = poly.count[path_id]
        keep = (j == 0) | (step > eps)
        # Closing duplicate: a closed subpath whose last vertex sits on its first.
        last = j == m - 1
        first_of = poly.start[path_id]
        close_dup = last & poly.closed[path_id] & (j > 0) & ((v - v[first_of]).norm(dim=-1) <= eps)
        keep &= ~close_dup
        idx = torch.nonzero(keep).squeeze(-1)
        count = torch.bincount(path_id[idx], minlength=len(poly.count))
        start = torch.cumsum(count, 0) - count
    return poly.take(idx, start, count, poly.closed)


def stroke_edges(poly: Polylines, style: StrokeStyle, tolerance: float = DEFAULT_TOLERANCE) -> tuple[Tensor, Tensor]:
    """Directed edges of the stroke outline of every polyline (fill them with nonzero).

    The outline is the one cairo and Skia build (SVG 1.1 §11.4): for every edge the two offset
    edges at ``±w`` along its normal (side A forward, side B backward), joined at each vertex by
    an outer connector (miter point while ``1/sin(α/2) ≤ miterlimit``, else bevel; or a round
    arc; vertices that only come from curve flattening always get a round join so the offset of
    a curve stays within ``tolerance``) and an inner connector through the inner miter point
    when both edges are long enough, else through the vertex itself (so the overlap of the two
    edges' rectangles stays inside the outline with positive winding; see the comment below).
    Open subpaths get caps (butt: a straight edge; square: extended by ``w``; round: a half
    circle); closed ones get a join at their start point instead.  Single-point subpaths become a
    disc (round caps, as cairo) or an axis-aligned square (square caps, as SVG 2 §13.5.7 says;
    cairo draws nothing there).

    Every loop is oriented the same way, so the nonzero winding of the union is positive
    everywhere inside the stroke.

    Args:
        poly: polylines, with degenerate edges already removed by :func:`drop_degenerate`.
        style: per-subpath stroke parameters.
        tolerance: chord error for round joins and caps (pixels).

    Returns:
        ``edges (E, 4)`` and ``path (E,)``.
    """
    verts, dev = poly.verts, poly.verts.device
    path_id = poly.path_id
    n_v = len(path_id)
    if n_v == 0:
        return verts.new_zeros(0, 4), torch.zeros(0, dtype=torch.long, device=dev)
    j, nxt, prv = _ring_neighbours(poly.start, poly.count, path_id)
    m = poly.count[path_id]
    closed_v = poly.closed[path_id]
    hw = style.half_width.to(verts.dtype)[path_id]
    join, cap = style.join[path_id], style.cap[path_id]

    d = verts[nxt] - verts
    # Clamped squared length keeps the normalisation (and its gradient) finite on the edges
    # that are never used (last vertex of an open subpath, single-point subpaths).
    length = torch.sqrt((d * d).sum(-1).clamp_min(1e-12))
    u = d / length.unsqueeze(-1)
    # Direction leaving each vertex (u_out) and arriving at it (u_in): the chord's, except at
    # curve ends, where the exact tangent is used (see Polylines.tan_in).
    u_out, u_in = u, u[prv]
    if poly.tan_out is not None:
        u_out = torch.where(poly.has_out.unsqueeze(-1), poly.tan_out.to(u.dtype), u)
        u_in = torch.where(poly.has_in.unsqueeze(-1), poly.tan_in.to(u.dtype), u[prv])

    def perp(v: Tensor) -> Tensor:
        return torch.stack([-v[:, 1], v[:, 0]], -1)

    # Each edge's offset starts along the normal leaving its start vertex and ends along the
    # normal arriving at its end vertex (equal to the chord normal except at curve ends).
    off_s = hw.unsqueeze(-1) * perp(u_out)
    off_e = hw[nxt].unsqueeze(-1) * perp(u_in[nxt])

    out_e, out_p = [], []

    def emit(e: Tensor, p: Tensor) -> None:
        if len(e):
            out_e.append(e)
            out_p.append(p)

    with torch.no_grad():
        has_edge = (j < m - 1) | (closed_v & (m >= 2))
        has_join = (closed_v & (m >= 2)) | (~closed_v & (j >= 1) & (j <= m - 2))
        open_ok = ~closed_v & (m >= 2)
        is_start = open_ok & (j == 0)
        is_end = open_ok & (j == m - 1)
        is_dot = m == 1
    # Offset edges: side A forward, side B backward.
    e_idx = torch.nonzero(has_edge).squeeze(-1)
    v0, v1, o0, o1 = verts[e_idx], verts[nxt[e_idx]], off_s[e_idx], off_e[e_idx]
    emit(torch.cat([v0 + o0, v1 + o1], -1), path_id[e_idx])
    emit(torch.cat([v1 - o1, v0 - o0], -1), path_id[e_idx])

    # Joins between the incoming edge (starting at prv) and the outgoing edge (starting here).
    k = torch.nonzero(has_join).squeeze(-1)
    if len(k):
        v, r = verts[k], hw[k]
        u1, u2 = u_in[k], u_out[k]
        n1, n2 = perp(u1), perp(u2)
        cross = u1[:, 0] * u2[:, 1] - u1[:, 1] * u2[:, 0]
        dot = (u1 * u2).sum(-1)
        theta = torch.atan2(cross, dot)  # signed turn from u1 to u2, |θ| ≤ π
        with torch.no_grad():
            left = (theta > 0).unsqueeze(-1)
        # The outer side is the one the path turns away from; the loops are oriented so that
        # every outer connector sweeps by −|θ| (the caps also sweep negatively).
        a = torch.where(left, -n2, n1)
        b = torch.where(left, -n1, n2)
        c_in = torch.where(left, n1, -n2)
        d_in = torch.where(left, n2, -n1)
        rr = r.unsqueeze(-1)
        pk = path_id[k]
        # Inner side.  The two offset edges overlap beyond the point X where the inner offset
        # lines cross.  When X lies within the first half of both edges (so that the joins at
        # either end of an edge cannot interfere), the connector A → X → B retraces the
        # overshooting parts backwards and cancels them exactly (the winding integral is linear
        # in the edges), leaving a clean inner boundary.  Otherwise (short edges, thick strokes,
        # U-turns) it goes through the vertex itself, as cairo and Skia do: the overlap then stays
        # inside the outline with winding 2, which coverage clamps, and only touches its border
        # at X.  Without this, every curve-flattening vertex would leave a winding-2 sliver on
        # the inner border and over-cover the edge pixels there.
        with torch.no_grad():
            shorter = torch.minimum(length[prv[k]], length[k]).detach()
            x_ok = (r.detach() * cross.detach().abs() <= 0.5 * shorter * (1 + dot.detach())) & (dot.detach() > -0.9)
        x_pt = v + rr * (c_in + d_in) / torch.where(x_ok, 1 + dot, torch.ones_like(dot)).unsqueeze(-1)
        mid = torch.where(x_ok.unsqueeze(-1), x_pt, v)
        inner = torch.stack([v + rr * c_in, mid, v + rr * d_in], 1)
        emit(_polyline_block_edges(inner), pk.repeat_interleave(2))
        with torch.no_grad():
            jc = torch.where(poly.corner[k], join[k], torch.ones_like(join[k]))
            limit = style.miterlimit.to(verts.dtype)[pk]
            # SVG: miter if 1/sin(α/2) ≤ limit with α the angle between the segments, i.e.
            # cos(θ/2) ≥ 1/limit with θ the turn; cos²(θ/2) = (1 + cos θ)/2.
            miter_ok = (jc == 0) & (limit >= 1) & ((1 + dot.detach()) * 0.5 * limit * limit >= 1)
            round_m = jc == 1
            bevel = ~miter_ok & ~round_m
        sel = torch.nonzero(miter_ok).squeeze(-1)
        if len(sel):
            denom = (1 + dot[sel]).clamp_min(1e-6).unsqueeze(-1)
            tip = v[sel] + rr[sel] * (a[sel] + b[sel]) / denom
            blk = torch.stack([v[sel] + rr[sel] * a[sel], tip, v[sel] + rr[sel] * b[sel]], 1)
            emit(_polyline_block_edges(blk), pk[sel].repeat_interleave(2))
        sel = torch.nonzero(bevel).squeeze(-1)
        if len(sel):
            emit(torch.cat([v[sel] + rr[sel] * a[sel], v[sel] + rr[sel] * b[sel]], -1), pk[sel])
        sel = torch.nonzero(round_m).squeeze(-1)
        if len(sel):
            sweep = -theta[sel].abs()
            with torch.no_grad():
                steps = _arc_steps(sweep.detach(), r[sel].detach(), tolerance)
            e, arc = _arc_edges(v[sel], r[sel], a[sel], sweep, steps)
            emit(e, pk[sel][arc])

    # Caps. End cap at the last vertex of an open subpath goes from side A (+n) to side B (−n)
    # around the end; the start cap from side B back to side A around the start.
    ends = []
    ke = torch.nonzero(is_end).squeeze(-1)
    if len(ke):
        ends.append((verts[ke], u_in[ke], perp(u_in[ke]), hw[ke], cap[ke], path_id[ke]))
    ks = torch.nonzero(is_start).squeeze(-1)
    if len(ks):
        # Seen from the start, "forward" is −u: flipping u and n makes it an end cap.
        ends.append((verts[ks], -u_out[ks], -perp(u_out[ks]), hw[ks], cap[ks], path_id[ks]))
    for v, uu, nn, r, cp, pk in ends:
        rr = r.unsqueeze(-1)
        sel = torch.nonzero(cp == 0).squeeze(-1)
        if len(sel):
            emit(torch.cat([v[sel] + rr[sel] * nn[sel], v[sel] - rr[sel] * nn[sel]], -1), pk[sel])
        sel = torch.nonzero(cp == 2).squeeze(-1)
        if len(sel):
            vv, ext, side = v[sel], rr[sel] * uu[sel], rr[sel] * nn[sel]
            blk = torch.stack([vv + side, vv + side + ext, vv - side + ext, vv - side], 1)
            emit(_polyline_block_edges(blk), pk[sel].repeat_interleave(3))
        sel = torch.nonzero(cp == 1).squeeze(-1)
        if len(sel):
            sweep = torch.full((len(sel),), -math.pi, dtype=verts.dtype, device=dev)
            with torch.no_grad():
                steps = _arc_steps(sweep, r[sel].detach(), tolerance)
            e, arc = _arc_edges(v[sel], r[sel], nn[sel], sweep, steps)
            emit(e, pk[sel][arc])

    # Single-point subpaths.
    kd = torch.nonzero(is_dot & (cap != 0)).squeeze(-1)
    if len(kd):
        v, r, cp, pk = verts[kd], hw[kd], cap[kd], path_id[kd]
        sel = torch.nonzero(cp == 1).squeeze(-1)
        if len(sel):
            ax = torch.zeros(len(sel), 2, dtype=verts.dtype, device=dev)
            ax[:, 0] = 1
            sweep = torch.full((len(sel),), -2 * math.pi, dtype=verts.dtype, device=dev)
            with torch.no_grad():
                steps = _arc_steps(sweep, r[sel].detach(), tolerance)
            e, arc = _arc_edges(v[sel], r[sel], ax, sweep, steps)
            emit(e, pk[sel][arc])
        sel = torch.nonzero(cp == 2).squeeze(-1)
        if len(sel):
            corners = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]],
                                   dtype=verts.dtype, device=dev)
            blk = v[sel].unsqueeze(1) + r[sel].view(-1, 1, 1) * corners
            emit(_polyline_block_edges(blk), pk[sel].repeat_interleave(4))

    if not out_e:
        return verts.new_zeros(0, 4), torch.zeros(0, dtype=torch.long, device=dev)
    return torch.cat(out_e, 0), torch.cat(out_p, 0)
