"""Dense stage of the rasterizer: coverage from winding integrals, paint, and painter's-order
compositing, as two autograd Functions with hand-written backward passes.

Both walk layers one bounding box at a time.  Writing the backward by hand (instead of letting
autograd record ~15 ops per layer) keeps only what the gradient needs — one int8 slope per
coverage sub-cell and the canvas crop under each group — and avoids full-canvas gradient copies,
which is what bounds memory by the sum of the layers' bounding boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass(frozen=True)
class CoverageSpec:
    """One layer's block in the flat accumulation buffer.

    Attributes:
        offset: start of the block.
        rows: number of sub-scanlines (``pixel rows × samples``).
        width: pixels per row (the block has one extra carry column).
        evenodd: fill rule.
    """

    offset: int
    rows: int
    width: int
    evenodd: bool


class _Coverage(torch.autograd.Function):
    """Flat winding-increment buffer → per-layer pixel coverage ``(rows / samples, width)``.

    Per sub-scanline cell: ``W = cumsum`` along the row (the exact winding integral over the
    cell), coverage ``min(|W|, 1)`` (nonzero) or ``1 − |W mod 2 − 1|`` (evenodd), then the mean
    over the ``samples`` sub-scanlines of each pixel row.
    """

    @staticmethod
    def forward(ctx, buf: Tensor, specs: tuple, samples: int):  # noqa: D401 - autograd signature
        ctx.set_materialize_grads(False)
        want_grad = ctx.needs_input_grad[0]
        outs, slopes = [], []
        for sp in specs:
            blk = buf[sp.offset : sp.offset + sp.rows * (sp.width + 1)].view(sp.rows, sp.width + 1)
            wind = torch.cumsum(blk, 1)[:, : sp.width]
            if sp.evenodd:
                m = torch.remainder(wind, 2.0) - 1
                cov = 1 - m.abs()
                if want_grad:
                    slopes.append((-torch.sign(m)).to(torch.int8))
            else:
                a = wind.abs()
                cov = a.clamp(max=1)
                if want_grad:
                    # d min(|W|, 1) / dW, stored as int8: it is always -1, 0 or 1.
                    slopes.append((torch.sign(wind) * (a < 1)).to(torch.int8))
            if samples > 1:
                cov = cov.view(sp.rows // samples, samples, sp.width).mean(1)
            outs.append(cov)
        ctx.specs, ctx.slopes, ctx.samples, ctx.n = specs, slopes, samples, buf.numel()
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        s = ctx.samples
        gbuf: Optional[Tensor] = None
        for sp, slope, g in zip(ctx.specs, ctx.slopes, grads):
            if g is None:
                continue
            if gbuf is None:
                gbuf = g.new_zeros(ctx.n)
            gsub = g.unsqueeze(1).expand(sp.rows // s, s, sp.width).reshape(sp.rows, sp.width) * (slope.to(g.dtype) / s)
            # d W_j / d inc_k = 1 for k ≤ j: the gradient of a cumsum is a reversed cumsum.
            rev = torch.flip(torch.cumsum(torch.flip(gsub, (1,)), 1), (1,))
            gbuf[sp.offset : sp.offset + sp.rows * (sp.width + 1)].view(sp.rows, sp.width + 1)[:, : sp.width] = rev
        return gbuf, None, None


def coverage_layers(buf: Tensor, specs: list[CoverageSpec], samples: int) -> tuple[Tensor, ...]:
    """Coverage ``(rows / samples, width)`` in ``[0, 1]`` for every spec (see :class:`_Coverage`)."""
    if not specs:
        return ()
    return _Coverage.apply(buf, tuple(specs), samples)


@dataclass(frozen=True)
class Part:
    """A fill or stroke inside its group's box: sub-box offset/size and input indices.

    Attributes:
        dx, dy, w, h: placement of the part's box inside the group box.
        cov: index of its ``(h, w)`` coverage tensor among the Function inputs.
        paint: index of its premultiplied paint, ``(4,)`` (solid) or ``(4, h, w)`` (gradient).
    """

    dx: int
    dy: int
    w: int
    h: int
    cov: int
    paint: int


@dataclass(frozen=True)
class GroupRecord:
    """One group to composite: canvas box, its fill/stroke parts and opacity input index."""

    batch: int
    x0: int
    y0: int
    w: int
    h: int
    fill: Optional[Part]
    stroke: Optional[Part]
    opacity: Optional[int]


def _part_layer(p: Part, tensors) -> Tensor:
    paint = tensors[p.paint]
    if paint.dim() == 1:
        paint = paint.view(4, 1, 1)
    return paint * tensors[p.cov]


def _group_layers(rec: GroupRecord, tensors) -> tuple[Optional[Tensor], Optional[Tensor], Tensor]:
    """``(F placed in the group box or None, S or None, M = S over F)`` before opacity."""
    fpl = None
    if rec.fill is not None:
        f = _part_layer(rec.fill, tensors)
        p = rec.fill
        if (p.dx, p.dy, p.w, p.h) == (0, 0, rec.w, rec.h):
            fpl = f
        else:
            fpl = f.new_zeros(4, rec.h, rec.w)
            fpl[:, p.dy : p.dy + p.h, p.dx : p.dx + p.w] = f
    if rec.stroke is None:
        return fpl, None, fpl
    s = _part_layer(rec.stroke, tensors)
    p = rec.stroke
    m = fpl.clone() if fpl is not None else s.new_zeros(4, rec.h, rec.w)
    view = m[:, p.dy : p.dy + p.h, p.dx : p.dx + p.w]
    view.mul_(1 - s[3:4]).add_(s)
    return fpl, s, m


class _PaintComposite(torch.autograd.Function):
    """Paint × coverage per part, stroke over fill, times opacity, source-over onto the canvas.

    Forward per group (SVG 1.1 §14.5: the element is rendered as one layer, then composited with
    its opacity): ``M = S + (1 − S_α) F``, ``L = opacity · M``, ``canvas = L + (1 − L_α) canvas``.
    Backward walks the groups in reverse, recomputing ``F``, ``S``, ``M`` from the saved inputs
    and keeping only each group's under-crop from the forward pass.
    """

    @staticmethod
    def forward(ctx, shape, records: tuple, *tensors):  # noqa: D401 - autograd signature
        canvas = tensors[0].new_zeros(shape)
        unders = []
        for rec in records:
            _, _, m = _group_layers(rec, tensors)
            lay = m * tensors[rec.opacity] if rec.opacity is not None else m
            view = canvas[rec.batch, :, rec.y0 : rec.y0 + rec.h, rec.x0 : rec.x0 + rec.w]
            unders.append(view.clone())
            view.mul_(1 - lay[3:4]).add_(lay)
        ctx.records, ctx.unders = records, unders
        ctx.save_for_backward(*tensors)
        return canvas

    @staticmethod
    def backward(ctx, grad):
        tensors = ctx.saved_tensors
        need = ctx.needs_input_grad[2:]
        grads: list[Optional[Tensor]] = [None] * len(tensors)

        def add(i: int, val: Tensor) -> None:
            if need[i]:
                grads[i] = val if grads[i] is None else grads[i] + val

        def part_grads(p: Part, g_part: Tensor) -> None:
            paint = tensors[p.paint]
            cov = tensors[p.cov]
            if need[p.paint]:
                add(p.paint, (g_part * cov).sum((1, 2)) if paint.dim() == 1 else g_part * cov)
            if need[p.cov]:
                pv = paint.view(4, 1, 1) if paint.dim() == 1 else paint
                add(p.cov, (g_part * pv).sum(0))

        g = grad.clone()
        for rec, under in zip(reversed(ctx.records), reversed(ctx.unders)):
            fpl, s, m = _group_layers(rec, tensors)
            op = tensors[rec.opacity] if rec.opacity is not None else None
            la = m[3:4] * op if op is not None else m[3:4]
            view = g[rec.batch, :, rec.y0 : rec.y0 + rec.h, rec.x0 : rec.x0 + rec.w]
            g_lay = view.clone()
            g_lay[3] -= (view * under).sum(0)
            view.mul_(1 - la)
            if op is not None:
                add(rec.opacity, (g_lay * m).sum().reshape(op.shape))
                g_m = g_lay * op
            else:
                g_m = g_lay
            if s is not None:
                p = rec.stroke
                g_ms = g_m[:, p.dy : p.dy + p.h, p.dx : p.dx + p.w]
                g_s = g_ms.clone()
                if fpl is not None:
                    g_s[3] -= (g_ms * fpl[:, p.dy : p.dy + p.h, p.dx : p.dx + p.w]).sum(0)
                part_grads(p, g_s)
                g_ms.mul_(1 - s[3:4])
            if rec.fill is not None:
                p = rec.fill
                part_grads(p, g_m[:, p.dy : p.dy + p.h, p.dx : p.dx + p.w])
        return (None, None, *grads)


def paint_composite(shape: tuple, records: list[GroupRecord], tensors: list[Tensor]) -> Tensor:
    """Composite the groups described by ``records`` onto a transparent ``shape`` canvas."""
    return _PaintComposite.apply(shape, tuple(records), *tensors)
