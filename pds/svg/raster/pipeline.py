"""The flat path of the rasterizer and the public entry points.

:func:`rasterize_batch` runs the four stages (see :mod:`pds.svg.raster`) over painter-ordered
lists of :class:`~pds.svg.shapes.DrawGroup`: every subpath of every group is flattened, stroked,
covered and painted together, then composited in one autograd Function.  :func:`rasterize` hands
scenes with :class:`~pds.svg.shapes.Layer` or :class:`~pds.svg.shapes.ImageNode` nodes to the
compositing stage (:mod:`pds.svg.raster.layers`), which calls back into the flat path per run of
plain groups.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import Tensor

from .composite import CoverageSpec, GroupRecord, Part, coverage_layers, paint_composite
from .coverage import accumulate, make_boxes
from .geometry import (
    DEFAULT_TOLERANCE,
    Polylines,
    StrokeStyle,
    cap_code,
    drop_degenerate,
    fill_edges,
    flatten,
    join_code,
    stroke_edges,
)
from .paint import evaluate_paint
from .layers import render_nodes
from ..shapes import DrawGroup, ImageNode, Layer, Node, SolidPaint, Subpath

__all__ = ["DEFAULT_TOLERANCE", "flatten_subpath", "over_background", "rasterize", "rasterize_batch"]


def flatten_subpath(sub: Subpath, tolerance: float = DEFAULT_TOLERANCE) -> Tensor:
    """Differentiable polyline approximation of one subpath.

    Bézier segments are sampled uniformly in their parameter with as many pieces as keep the
    chord error below ``tolerance`` (pixels, default 0.1); lines stay single edges.

    Args:
        sub: the subpath (points in canvas pixels).
        tolerance: maximum distance between the curve and the polyline, in pixels.

    Returns:
        ``(N, 2)`` vertices in order, same dtype/device as ``sub.points``, differentiable w.r.t.
        them.  Consecutive rows are the polyline's edges: a closed subpath ends with its first
        point repeated.  A subpath without segments gives its single point (or ``(0, 2)``).
    """
    poly = flatten([sub], tolerance)
    v = poly.verts
    if sub.closed and len(v):
        v = torch.cat([v, v[:1]], 0)
    return v


def over_background(rgba: Tensor, rgb: Union[Sequence[float], Tensor] = (1.0, 1.0, 1.0)) -> Tensor:
    """Composite a premultiplied RGBA image over an opaque background colour.

    Args:
        rgba: ``(4, H, W)`` or ``(B, 4, H, W)`` premultiplied RGBA in ``[0, 1]``.
        rgb: background colour, 3 floats or a tensor broadcastable to ``(3, 1, 1)`` (or
            ``(B, 3, 1, 1)``), in ``[0, 1]``; white by default.  May require grad.

    Returns:
        ``(3, H, W)`` or ``(B, 3, H, W)`` RGB in ``[0, 1]``: ``rgb_premult + (1 − α) · background``.
    """
    if rgba.dim() not in (3, 4) or rgba.shape[-3] != 4:
        raise ValueError(f"expected (4, H, W) or (B, 4, H, W) premultiplied RGBA, got {tuple(rgba.shape)}")
    bg = torch.as_tensor(rgb, dtype=rgba.dtype, device=rgba.device)
    if bg.dim() == 1:
        bg = bg.view(3, 1, 1)
    color, alpha = rgba[..., :3, :, :], rgba[..., 3:, :, :]
    return color + (1 - alpha) * bg


def _as_scalar(x, dtype, device) -> Tensor:
    return torch.as_tensor(x, dtype=dtype, device=device).reshape(())


def _select_paths(poly: Polylines, paths: Tensor) -> Polylines:
    """The polylines of the given (increasing) subpath indices."""
    keep = torch.zeros(len(poly.count), dtype=torch.bool, device=poly.count.device)
    keep[paths] = True
    vmask = keep[poly.path_id]
    idx = torch.nonzero(vmask).squeeze(-1)
    count = poly.count[paths]
    start = torch.cumsum(count, 0) - count
    return poly.take(idx, start, count, poly.closed[paths])


def rasterize_batch(
    scenes: Sequence[Sequence[DrawGroup]],
    width: int,
    height: int,
    *,
    samples: int = 2,
    device=None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Tensor:
    """Rasterize several scenes into one batch (geometry of all scenes is processed together).

    Args:
        scenes: ``B`` painter-ordered lists of :class:`DrawGroup` in canvas pixel coordinates.
        width, height: canvas size in pixels.
        samples: sub-scanlines per pixel row (default 2).  Coverage is exact box-filter area for
            any value; the fill rule is applied per ``1 × 1/samples`` cell, so ``samples`` only
            matters in pixels where loops of one element cross (self-intersecting strokes,
            overlapping subpaths, evenodd stars), and costs about ``samples×`` the dense work.
        device: output device (default: that of the first geometry tensor, else CPU).
        tolerance: curve flattening tolerance in pixels (default 0.1, as cairo).

    Returns:
        ``(B, 4, height, width)`` premultiplied RGBA over transparent, in ``[0, 1]``; float32, or
        float64 when any subpath's points are float64 (e.g. for ``gradcheck``).
    """
    width, height, s = int(width), int(height), int(samples)
    if width <= 0 or height <= 0:
        raise ValueError(f"canvas size must be positive, got {width}x{height}")
    if s < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    groups: list[DrawGroup] = []
    scene_of: list[int] = []
    for b, sc in enumerate(scenes):
        for g in sc:
            if not isinstance(g, DrawGroup):
                raise TypeError(f"scenes must contain DrawGroup objects, got {type(g).__name__}")
            groups.append(g)
            scene_of.append(b)
    all_points = [sp.points for g in groups for sp in g.subpaths]
    dtype = torch.float64 if any(p.dtype == torch.float64 for p in all_points) else torch.float32
    if device is None:
        device = all_points[0].device if all_points else torch.device("cpu")
    device = torch.device(device)
    shape = (len(scenes), 4, height, width)

    # ---- which subpaths are needed, and how ---------------------------------------------------
    # Every subpath is flattened once; ``role`` says whether it is filled (bit 0), stroked
    # (bit 1) or both (a group strokes its fill geometry unless it has ``stroke_subpaths``).
    subs: list[Subpath] = []
    hw_hint: list[float] = []
    sub_group: list[int] = []
    role: list[int] = []
    for gi, g in enumerate(groups):
        if (g.fill is None and g.stroke is None) or not g.subpaths:
            continue
        hint = 0.0
        if g.stroke is not None:
            hint = max(float(torch.as_tensor(g.stroke_width).detach()) * 0.5, 0.0)
        separate = g.stroke is not None and g.stroke_subpaths is not None
        for sp in g.subpaths:
            r = (1 if g.fill is not None else 0) | (2 if g.stroke is not None and not separate else 0)
            if r:
                subs.append(sp)
                hw_hint.append(hint if r & 2 else 0.0)
                sub_group.append(gi)
                role.append(r)
        if separate:
            for sp in g.stroke_subpaths:
                subs.append(sp)
                hw_hint.append(hint)
                sub_group.append(gi)
                role.append(2)
    if not subs:
        return torch.zeros(shape, dtype=dtype, device=device)
    poly = flatten(subs, tolerance, hw_hint, dtype=dtype, device=device)
    sub_group_t = torch.tensor(sub_group, dtype=torch.long, device=device)
    role_t = torch.tensor(role, dtype=torch.long, device=device)

    edge_list, layer_list = [], []
    fill_paths = torch.nonzero(role_t & 1).squeeze(-1)
    if len(fill_paths):
        fp = _select_paths(poly, fill_paths)
        e, p = fill_edges(fp)
        edge_list.append(e)
        layer_list.append(2 * sub_group_t[fill_paths][p])
    stroke_paths = torch.nonzero(role_t & 2).squeeze(-1)
    if len(stroke_paths):
        sp_poly = drop_degenerate(_select_paths(poly, stroke_paths))
        sgroups = [groups[int(i)] for i in sub_group_t[stroke_paths].tolist()]
        uniq = {}
        for g in sgroups:
            uniq.setdefault(id(g), g)
        hw_of = {k: _as_scalar(g.stroke_width, dtype, device).clamp_min(0) * 0.5 for k, g in uniq.items()}
        style = StrokeStyle(
            half_width=torch.stack([hw_of[id(g)] for g in sgroups]),
            join=torch.tensor([join_code(g.linejoin) for g in sgroups], dtype=torch.long, device=device),
            cap=torch.tensor([cap_code(g.linecap) for g in sgroups], dtype=torch.long, device=device),
            miterlimit=torch.tensor([float(g.miterlimit) for g in sgroups], dtype=dtype, device=device),
        )
        e, p = stroke_edges(sp_poly, style, tolerance)
        if any(g.stroke_matrix is not None for g in uniq.values()):
            e = _map_outline(e, [sgroups[int(i)].stroke_matrix for i in p.tolist()], dtype, device)
        edge_list.append(e)
        layer_list.append(2 * sub_group_t[stroke_paths][p] + 1)
    edges = torch.cat(edge_list, 0)
    if s > 1:
        # Sub-scanlines: rows are split into ``s`` cells; x stays exact.
        edges = edges * torch.tensor([1.0, s, 1.0, s], dtype=dtype, device=device)
    layer = torch.cat(layer_list, 0)
    n_layers = 2 * len(groups)

    # ---- per-layer pixel boxes (bounding box of the edges, clipped to the canvas) ------------
    with torch.no_grad():
        ed = edges.detach()
        big = torch.finfo(dtype).max
        ext = torch.stack([-torch.minimum(ed[:, 0], ed[:, 2]), -torch.minimum(ed[:, 1], ed[:, 3]),
                           torch.maximum(ed[:, 0], ed[:, 2]), torch.maximum(ed[:, 1], ed[:, 3])], 1)
        ext = ext.clamp(-big, big)
        lim = torch.full((n_layers, 4), -big, dtype=dtype, device=device)
        lim.scatter_reduce_(0, layer.unsqueeze(1).expand(-1, 4), ext, "amax")
        present = lim[:, 0] > -big
        hi = float(max(width, height * s) + 2)
        lim = lim.clamp(-hi, hi)
        px0 = torch.floor(-lim[:, 0]).long().clamp(0, width)
        px1 = (torch.floor(lim[:, 2]).long() + 1).clamp(0, width)
        py0 = torch.floor(-lim[:, 1] / s).long().clamp(0, height)
        py1 = (torch.floor(lim[:, 3] / s).long() + 1).clamp(0, height)
        px1 = torch.where(present, px1, px0)
        boxes = make_boxes(px0, py0 * s, px1, py1 * s)
        box_list = torch.stack([px0, py0, boxes.w, boxes.h // s, boxes.offset], 1).tolist()

    buf = accumulate(edges, layer, boxes)

    # ---- coverage of every non-empty layer, then paint and composite per group ---------------
    specs, spec_of = [], {}
    for gi, g in enumerate(groups):
        for kind, paint in ((0, g.fill), (1, g.stroke)):
            x0, y0, w, h, off = box_list[2 * gi + kind]
            if paint is None or w == 0 or h == 0:
                continue
            spec_of[2 * gi + kind] = len(specs)
            specs.append(CoverageSpec(off, h * s, w, kind == 0 and g.fill_rule == "evenodd"))
    covs = coverage_layers(buf, specs, s)

    tensors: list[Tensor] = []
    records: list[GroupRecord] = []
    for gi, g in enumerate(groups):
        parts = {}
        for kind, paint in ((0, g.fill), (1, g.stroke)):
            li = 2 * gi + kind
            if li not in spec_of:
                continue
            x0, y0, w, h, _ = box_list[li]
            tensors.append(covs[spec_of[li]])
            if isinstance(paint, SolidPaint):
                tensors.append(_premultiplied(paint, dtype, device))  # (4,), broadcast in the composite
            else:
                tensors.append(evaluate_paint(paint, x0, y0, w, h, dtype, device))  # (4, h, w)
            parts[kind] = (x0, y0, w, h, len(tensors) - 2, len(tensors) - 1)
        if not parts:
            continue
        bx0 = min(p[0] for p in parts.values())
        by0 = min(p[1] for p in parts.values())
        bx1 = max(p[0] + p[2] for p in parts.values())
        by1 = max(p[1] + p[3] for p in parts.values())
        placed = {k: Part(x - bx0, y - by0, w, h, ci, pi) for k, (x, y, w, h, ci, pi) in parts.items()}
        op = g.opacity
        op_idx = None
        if (isinstance(op, Tensor) and (op.requires_grad or float(op.detach()) != 1.0)) or (
            not isinstance(op, Tensor) and float(op) != 1.0
        ):
            tensors.append(_as_scalar(op, dtype, device))
            op_idx = len(tensors) - 1
        records.append(GroupRecord(scene_of[gi], bx0, by0, bx1 - bx0, by1 - by0, placed.get(0), placed.get(1), op_idx))
    if not records:
        return torch.zeros(shape, dtype=dtype, device=device)
    return paint_composite(shape, records, tensors)


def _map_outline(edges: Tensor, matrices: list, dtype, device) -> Tensor:
    """Apply each edge's ``(2, 3)`` outline matrix (``None`` = identity) to both of its end points."""
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype, device=device)
    uniq: dict = {}
    for m in matrices:
        if m is not None:
            uniq.setdefault(id(m), m)
    table = [eye] + [m.to(dtype=dtype, device=device).reshape(2, 3) for m in uniq.values()]
    slot = {k: i + 1 for i, k in enumerate(uniq)}
    idx = torch.tensor([0 if m is None else slot[id(m)] for m in matrices], dtype=torch.long, device=device)
    mats = torch.stack(table)[idx]  # (E, 2, 3)
    a, t = mats[:, :, :2], mats[:, :, 2]
    p0 = torch.einsum("eij,ej->ei", a, edges[:, :2]) + t
    p1 = torch.einsum("eij,ej->ei", a, edges[:, 2:]) + t
    return torch.cat([p0, p1], 1)


def _premultiplied(paint: SolidPaint, dtype, device) -> Tensor:
    c = paint.rgba.to(device=device, dtype=dtype).reshape(4)
    return torch.cat([c[:3] * c[3:], c[3:]])


def _has_layers(nodes) -> bool:
    return any(isinstance(n, (Layer, ImageNode)) for n in nodes)


def rasterize(
    groups: Sequence[Node],
    width: int,
    height: int,
    *,
    samples: int = 2,
    device=None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Tensor:
    """Rasterize one painter-ordered scene.

    Args:
        groups: :class:`DrawGroup` / :class:`~pds.svg.shapes.Layer` nodes in canvas pixel
            coordinates (x right, y down; pixel ``(i, j)`` covers ``[j, j+1) × [i, i+1)``).
            Layers (group opacity, clip paths, masks, blend modes) are rendered offscreen by
            :mod:`pds.svg.raster.layers`; a list of plain groups takes the fast path only.
        width, height: canvas size in pixels.
        samples: sub-scanlines per pixel row for the fill rule (default 2; see
            :func:`rasterize_batch`).
        device: output device (default: that of the geometry, else CPU).
        tolerance: curve flattening tolerance in pixels (default 0.1).

    Returns:
        ``(4, height, width)`` premultiplied RGBA over transparent in ``[0, 1]`` (float32, or
        float64 for float64 geometry).  Differentiable w.r.t. points, stroke widths, paint colours,
        gradient stops (colours and offsets), gradient geometry and opacities, including those
        inside clip, mask and layer content.
    """
    if not _has_layers(groups):
        return rasterize_batch([groups], width, height, samples=samples, device=device, tolerance=tolerance)[0]

    def flat(run):
        return rasterize_batch([run], width, height, samples=samples, device=device, tolerance=tolerance)[0]

    like = flat([])  # empty canvas: right dtype/device for an empty first run
    dtype = _scene_dtype(groups)
    return render_nodes(groups, int(width), int(height), flat, like.to(dtype))


def _scene_dtype(nodes) -> torch.dtype:
    """float64 when any geometry in the tree is float64 (as :func:`rasterize_batch` decides)."""
    stack = list(nodes)
    while stack:
        n = stack.pop()
        if isinstance(n, Layer):
            stack.extend(n.children)
            stack.extend(n.clip or ())
            stack.extend(n.mask or ())
        elif isinstance(n, ImageNode):
            continue
        elif any(sp.points.dtype == torch.float64 for sp in n.subpaths):
            return torch.float64
    return torch.float32
