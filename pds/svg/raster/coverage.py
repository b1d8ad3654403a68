"""Cover stage of the rasterizer: exact box-filtered winding integrals from line edges.

For a set of closed loops with winding number ``w(p)``, the integral of ``w`` over a pixel cell
is a *sum over edges* (it is linear in ``w``), and each edge's share can be split into

* the cells the edge passes through, which get the exact trapezoid area to the edge's right,
* every cell further right in the same row, which gets the edge's full signed height ``Δy``.

The second part is a running sum along the row, so an edge only deposits two numbers per cell it
crosses, and one ``cumsum`` per row turns the deposits into per-cell integrals (the "signed area
accumulation" of font rasterizers such as font-rs and stb_truetype, and what cairo's scan
converter approximates with 256×15 sub-samples).  Cost is ``O(perimeter + bounding-box area)``
instead of ``O(edges × pixels)``, memory is one accumulation buffer per layer bounding box, and
the result is an exact (up to flattening) differentiable function of the edge end points.

Coverage then follows the fill rule applied to the cell integral ``W`` (in
:mod:`pds.svg.raster.composite`): ``min(|W|, 1)`` for nonzero and the triangle wave
``1 − |W mod 2 − 1|`` for evenodd.  Both are exact while a cell only
mixes windings ``{0, ±1}`` (nonzero) or two adjacent windings (evenodd); cells where a loop
crosses another (e.g. at the inner corners of a pentagram) are approximated, which is why
:func:`pds.svg.raster.rasterize` evaluates the rule on ``samples`` sub-scanlines per pixel row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: Edges whose extent along an axis is below this (in cells) are not split along that axis:
#: the crossing point of a nearly horizontal edge with a row boundary is ill-conditioned, and
#: treating it as one piece changes the area by less than this bound times its length.
_SPLIT_EPS = 1e-4


@dataclass
class LayerBoxes:
    """Integer cell boxes of the layers being rasterized (all ``(L,)`` int64, cell units).

    Attributes:
        x0, y0: top-left cell of each layer's box.
        w, h: box size; a layer with ``w == 0`` or ``h == 0`` is empty.
        offset: start of the layer's ``h × (w + 1)`` block in the flat accumulation buffer (the
            extra column receives what falls right of the box, so that every row sums to 0).
    """

    x0: Tensor
    y0: Tensor
    w: Tensor
    h: Tensor
    offset: Tensor

    @property
    def total(self) -> int:
        """Size of the flat accumulation buffer."""
        if len(self.offset) == 0:
            return 0
        return int((self.offset[-1] + self.h[-1] * (self.w[-1] + 1)).item())


def make_boxes(x0: Tensor, y0: Tensor, x1: Tensor, y1: Tensor) -> LayerBoxes:
    """Boxes ``[x0, x1) × [y0, y1)`` (int64 cell indices, ``x1 ≤ x0`` meaning empty)."""
    w = (x1 - x0).clamp_min(0)
    h = (y1 - y0).clamp_min(0)
    w = torch.where(h > 0, w, torch.zeros_like(w))
    h = torch.where(w > 0, h, torch.zeros_like(h))
    size = h * (w + 1)
    offset = torch.cumsum(size, 0) - size
    return LayerBoxes(x0, y0, w, h, offset)


def _split_counts(lo: Tensor, hi: Tensor, first_min: Tensor, last_max: Tensor) -> tuple[Tensor, Tensor]:
    """First cell index and number of cells of ``[lo, hi]`` clamped to ``[first_min, last_max]``."""
    a = torch.floor(lo).long().clamp(min=first_min, max=last_max)
    b = torch.floor(hi).long().clamp(min=first_min, max=last_max)
    return a, (b - a + 1).clamp_min(0)


def accumulate(edges: Tensor, layer: Tensor, boxes: LayerBoxes) -> Tensor:
    """Deposit the exact per-cell area contributions of directed edges.

    Args:
        edges: ``(E, 4)`` directed edges ``(x0, y0, x1, y1)`` in cell units (differentiable).
        layer: ``(E,)`` int64 layer of each edge.
        boxes: cell boxes of the layers.

    Returns:
        ``(boxes.total,)`` flat buffer; a layer's block viewed as ``(h, w + 1)`` and summed along
        rows gives the integral of the winding number over each cell of its box (the last column
        is a carry that always sums to ~0).  The winding sign convention is: an edge going down
        (``Δy > 0``) adds ``+1`` to the points on its right.
    """
    dev, dt = edges.device, edges.dtype
    buf = edges.new_zeros(boxes.total)
    if len(edges) == 0 or boxes.total == 0:
        return buf
    # ---- split edges into row pieces --------------------------------------------------------
    with torch.no_grad():
        ed = edges.detach()
        down = ed[:, 1] <= ed[:, 3]
        yt = torch.where(down, ed[:, 1], ed[:, 3])
        yb = torch.where(down, ed[:, 3], ed[:, 1])
        flat = (yb - yt) < _SPLIT_EPS
        ymid = 0.5 * (yt + yb)
        lo = torch.where(flat, ymid, yt)
        hi = torch.where(flat, ymid, yb)
        ly0 = boxes.y0[layer]
        r_first, n_rows = _split_counts(lo, hi, ly0, ly0 + boxes.h[layer] - 1)
        # Rows outside the box contribute nothing to it (a row's winding only depends on the
        # pieces of edges within that row).
        # An empty box (a layer entirely off the canvas) has no rows at all: without the h == 0
        # test an edge spanning its clamped row would write into the next layer's cells.
        n_rows = torch.where((torch.floor(hi).long() < ly0) | (torch.floor(lo).long() >= ly0 + boxes.h[layer])
                             | (boxes.h[layer] == 0), torch.zeros_like(n_rows), n_rows)
        e_of = torch.repeat_interleave(torch.arange(len(edges), device=dev), n_rows)
        if len(e_of) == 0:
            return buf
        row = r_first[e_of] + (torch.arange(len(e_of), device=dev) - (torch.cumsum(n_rows, 0) - n_rows)[e_of])
        first_row = row == torch.floor(lo[e_of]).long()
        last_row = row == torch.floor(hi[e_of]).long()
        flat_p = flat[e_of]
        down_p = down[e_of].unsqueeze(-1)
    e = edges[e_of]
    top = torch.where(down_p, e[:, :2], e[:, 2:])
    bot = torch.where(down_p, e[:, 2:], e[:, :2])
    sign = torch.where(down_p.squeeze(-1), 1.0, -1.0).to(dt)
    dy = bot[:, 1] - top[:, 1]
    dx = bot[:, 0] - top[:, 0]
    inv_dy = 1.0 / torch.where(flat_p, torch.ones_like(dy), dy)
    rowf = row.to(dt)
    # Interior row boundaries are constants; the end points keep their own coordinates (and so
    # carry their gradient exactly once, even when they sit exactly on a row boundary).
    ya = torch.where(first_row | flat_p, top[:, 1], rowf)
    yb = torch.where(last_row | flat_p, bot[:, 1], rowf + 1)
    xa = torch.where(first_row | flat_p, top[:, 0], top[:, 0] + (rowf - top[:, 1]) * dx * inv_dy)
    xb = torch.where(last_row | flat_p, bot[:, 0], top[:, 0] + (rowf + 1 - top[:, 1]) * dx * inv_dy)
    layer_p = layer[e_of]

    # ---- split row pieces into cells --------------------------------------------------------
    with torch.no_grad():
        ltr = (xa <= xb).detach()
        xl = torch.where(ltr, xa, xb).detach()
        xr = torch.where(ltr, xb, xa).detach()
        thin = (xr - xl) < _SPLIT_EPS
        xm = 0.5 * (xl + xr)
        clo = torch.where(thin, xm, xl)
        chi = torch.where(thin, xm, xr)
        bx0 = boxes.x0[layer_p]
        bw = boxes.w[layer_p]
        # Column x0 − 1 stands for "everything left of the box", x0 + w for "right of it".
        c_first, n_cells = _split_counts(clo, chi, bx0 - 1, bx0 + bw)
        p_of = torch.repeat_interleave(torch.arange(len(row), device=dev), n_cells)
        col = c_first[p_of] + (torch.arange(len(p_of), device=dev) - (torch.cumsum(n_cells, 0) - n_cells)[p_of])
        first_c = col == c_first[p_of]
        last_c = col == (c_first + n_cells - 1)[p_of]
        thin_c = thin[p_of]
        ltr_c = ltr[p_of].unsqueeze(-1)
        bx0_c, bw_c = bx0[p_of], bw[p_of]
        left_region = col < bx0_c
        right_region = col >= bx0_c + bw_c
        lay_c = layer_p[p_of]
        base = boxes.offset[lay_c] + (row[p_of] - boxes.y0[lay_c]) * (bw_c + 1)
    pa = torch.stack([xa, ya], -1)[p_of]
    pb = torch.stack([xb, yb], -1)[p_of]
    pl = torch.where(ltr_c, pa, pb)
    pr = torch.where(ltr_c, pb, pa)
    ddx = pr[:, 0] - pl[:, 0]
    slope = (pr[:, 1] - pl[:, 1]) / torch.where(thin_c, torch.ones_like(ddx), ddx)
    colf = col.to(dt)
    keep_l = first_c | thin_c
    keep_r = last_c | thin_c
    x_lb = torch.where(keep_l, pl[:, 0], colf)
    y_lb = torch.where(keep_l, pl[:, 1], pl[:, 1] + (colf - pl[:, 0]) * slope)
    x_rb = torch.where(keep_r, pr[:, 0], colf + 1)
    y_rb = torch.where(keep_r, pr[:, 1], pl[:, 1] + (colf + 1 - pl[:, 0]) * slope)
    # Signed height of the cell piece: the original edge direction decides the sign.
    sgn = sign[p_of] * torch.where(ltr_c.squeeze(-1), 1.0, -1.0).to(dt)
    h_c = sgn * (y_rb - y_lb)
    xmid = 0.5 * (x_lb + x_rb)
    frac_right = (xmid - colf).clamp(0, 1)  # share of the height that belongs to the next cell
    normal = ~(left_region | right_region)
    v_here = torch.where(normal, h_c * (1 - frac_right), h_c)
    v_next = torch.where(normal, h_c * frac_right, torch.zeros_like(h_c))
    local = torch.where(left_region, torch.zeros_like(col), torch.where(right_region, bw_c, col - bx0_c))
    idx = torch.cat([base + local, base + (local + 1).clamp(max=bw_c)])
    return buf.index_add_(0, idx, torch.cat([v_here, v_next]))
