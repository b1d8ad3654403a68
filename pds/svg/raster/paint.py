"""Paint stage of the rasterizer: solid colours and SVG gradients evaluated at pixel centres."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..shapes import LinearGradientPaint, Paint, RadialGradientPaint, SolidPaint


def _spread(t: Tensor, spread: str) -> Tensor:
    """Map the gradient parameter through SVG ``spreadMethod`` (SVG 1.1 §13.2.4)."""
    if spread == "pad":
        return t.clamp(0, 1)
    if spread == "repeat":
        return t - torch.floor(t)
    if spread == "reflect":
        return 1 - (torch.remainder(t, 2.0) - 1).abs()
    raise ValueError(f"unknown spreadMethod {spread!r}; expected 'pad', 'reflect' or 'repeat'")


def interpolate_stops(t: Tensor, offsets: Tensor, colors: Tensor) -> Tensor:
    """Piecewise-linear colour ramp.

    Straight (not premultiplied) colours are interpolated, as SVG specifies and as cairo/pixman
    do; before the first and after the last stop the end colours extend.  Two stops with the
    same offset make a hard step.  Differentiable w.r.t. ``t``, ``colors`` and ``offsets`` (the
    latter wherever two offsets differ).

    Args:
        t: ``(...)`` gradient parameter (already mapped by the spread method).
        offsets: ``(K,)`` non-decreasing stop offsets.
        colors: ``(K, 4)`` straight RGBA.

    Returns:
        ``(4, ...)`` straight RGBA.
    """
    k = offsets.shape[0]
    if k == 0:
        return torch.zeros((4,) + tuple(t.shape), dtype=t.dtype, device=t.device)
    # SVG: a stop offset smaller than a previous one is raised to it.
    offsets = torch.cummax(offsets, 0).values
    out = colors[0].view((4,) + (1,) * t.dim()).expand((4,) + tuple(t.shape))
    if k == 1:
        return out
    o0, o1 = offsets[:-1], offsets[1:]
    width = o1 - o0
    step = width.detach() > 1e-9
    shape = (-1,) + (1,) * t.dim()
    safe = torch.where(step, width, torch.ones_like(width)).view(shape)
    ramp = ((t.unsqueeze(0) - o0.view(shape)) / safe).clamp(0, 1)
    hard = (t.unsqueeze(0) >= o0.view(shape)).to(t.dtype)
    w = torch.where(step.view(shape), ramp, hard)  # (K-1, ...)
    delta = (colors[1:] - colors[:-1])  # (K-1, 4)
    return out + torch.einsum("kc,k...->c...", delta, w)


def _to_gradient_space(paint, xs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor]:
    m = paint.pixel_to_gradient
    if m is None:
        return xs, ys
    m = m.to(xs.dtype)
    gx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    gy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    return gx, gy


def _linear_t(paint: LinearGradientPaint, gx: Tensor, gy: Tensor) -> Tensor:
    s, e = paint.start.to(gx.dtype), paint.end.to(gx.dtype)
    d = e - s
    dd = (d * d).sum()
    # A zero-length gradient vector paints the last stop colour (SVG 1.1 §13.2.2): t = 1.
    degenerate = bool(dd.detach() <= 1e-12)
    if degenerate:
        return torch.ones_like(gx)
    return ((gx - s[0]) * d[0] + (gy - s[1]) * d[1]) / dd


def _radial_t(paint: RadialGradientPaint, gx: Tensor, gy: Tensor) -> tuple[Tensor, Optional[Tensor]]:
    """Parameter of cairo's two-circle radial gradient from the focal point (radius 0) to the
    circle (``center``, ``radius``): the largest ``t ≥ 0`` with ``|p − f − t (c − f)| = t r``.

    Returns ``t`` and a validity mask (``None`` when every pixel has a solution, which is the case
    whenever the focal point lies inside the circle, as SVG 1.1 requires).
    """
    c, f = paint.center.to(gx.dtype), paint.focal.to(gx.dtype)
    r = paint.radius.to(gx.dtype).reshape(())
    if bool(r.detach() <= 1e-12):
        return torch.ones_like(gx), None  # zero radius: last stop colour (SVG 1.1 §13.2.3)
    if paint.focal_radius is not None and bool(paint.focal_radius.detach() > 0):
        return _two_circle_t(c, f, r, paint.focal_radius.to(gx.dtype).reshape(()), gx, gy)
    cd = c - f
    px, py = gx - f[0], gy - f[1]
    a = (cd * cd).sum() - r * r
    b = px * cd[0] + py * cd[1]
    cc = px * px + py * py
    if bool(a.detach() <= -1e-9 * r.detach() ** 2):
        # Focal point strictly inside: a < 0, the discriminant b² − a·c ≥ b² and the wanted root
        # (b − √D)/a = c / (b + √D) has a non-negative denominator (zero only at p = f, t = 0).
        disc = (b * b - a * cc).clamp_min(1e-20)
        den = b + torch.sqrt(disc)
        return cc / den.clamp_min(1e-20), None
    # Focal point on or outside the circle (a cone; cairo's extended radial gradient).
    if bool(a.detach().abs() <= 1e-9 * r.detach() ** 2):
        t = cc / (2 * b).clamp_min(1e-20)
        return t, b > 0
    disc = b * b - a * cc
    ok = disc >= 0
    sq = torch.sqrt(disc.clamp_min(1e-20))
    t1, t2 = (b + sq) / a, (b - sq) / a
    hi, lo_ = torch.maximum(t1, t2), torch.minimum(t1, t2)
    t = torch.where(hi >= 0, hi, lo_)
    return t, ok & (t >= 0)


def _two_circle_t(c: Tensor, f: Tensor, r: Tensor, fr: Tensor, gx: Tensor, gy: Tensor) -> tuple[Tensor, Tensor]:
    """SVG 2 radial gradient with a focal circle (``f``, ``fr``): the largest ``t`` with
    ``|p − f − t (c − f)| = fr + t (r − fr)`` and a non-negative radius ``fr + t (r − fr)``.

    Squaring gives ``a t² − 2 b t + cc = 0`` with ``a = |c − f|² − (r − fr)²``,
    ``b = (p − f)·(c − f) + fr (r − fr)`` and ``cc = |p − f|² − fr²``.
    """
    cd, dr = c - f, r - fr
    px, py = gx - f[0], gy - f[1]
    a = (cd * cd).sum() - dr * dr
    b = px * cd[0] + py * cd[1] + fr * dr
    cc = px * px + py * py - fr * fr
    if bool(a.detach().abs() <= 1e-9 * r.detach() ** 2):
        t = cc / (2 * b).where(b.abs() > 1e-20, torch.full_like(b, 1e-20))
        return t, (fr + t * dr >= 0) & (b.abs() > 1e-20)
    disc = b * b - a * cc
    ok = disc >= 0
    sq = torch.sqrt(disc.clamp_min(1e-20))
    t1, t2 = (b + sq) / a, (b - sq) / a
    hi, lo_ = torch.maximum(t1, t2), torch.minimum(t1, t2)
    t = torch.where(fr + hi * dr >= 0, hi, lo_)
    return t, ok & (fr + t * dr >= 0)


def evaluate_paint(paint: Paint, x0: int, y0: int, w: int, h: int, dtype: torch.dtype, device) -> Tensor:
    """Premultiplied RGBA of ``paint`` at the pixel centres of the box ``[x0, x0+w) × [y0, y0+h)``.

    Returns:
        ``(4, 1, 1)`` for solid paints (broadcastable) or ``(4, h, w)`` for gradients, in ``[0, 1]``.
    """
    if isinstance(paint, SolidPaint):
        c = paint.rgba.to(device=device, dtype=dtype).reshape(4)
        return torch.cat([c[:3] * c[3], c[3:]]).view(4, 1, 1)
    if not isinstance(paint, (LinearGradientPaint, RadialGradientPaint)):
        raise TypeError(f"unsupported paint type {type(paint).__name__}")
    ys = (torch.arange(y0, y0 + h, device=device, dtype=dtype) + 0.5).view(h, 1)
    xs = (torch.arange(x0, x0 + w, device=device, dtype=dtype) + 0.5).view(1, w)
    gx, gy = _to_gradient_space(paint, xs.expand(h, w), ys.expand(h, w))
    valid = None
    if isinstance(paint, LinearGradientPaint):
        t = _linear_t(paint, gx, gy)
    else:
        t, valid = _radial_t(paint, gx, gy)
    t = _spread(t, paint.spread)
    offsets = paint.offsets.to(device=device, dtype=dtype)
    rgba = interpolate_stops(t, offsets, paint.colors.to(device=device, dtype=dtype))
    alpha = rgba[3:]
    if valid is not None:
        alpha = alpha * valid.to(dtype)
    return torch.cat([rgba[:3] * alpha, alpha], 0)
