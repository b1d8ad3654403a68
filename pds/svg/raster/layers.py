"""Compositing stage of the rasterizer: offscreen groups, clip paths, masks and blend modes.

A scene is a tree of :class:`~pds.svg.shapes.DrawGroup` leaves and
:class:`~pds.svg.shapes.Layer` nodes.  Runs of consecutive leaves go through the fast
flat path (:func:`pds.svg.raster.rasterize_batch`: one flatten/cover/composite pass per run);
source-over is associative, so drawing a run onto a transparent canvas and compositing that over
what is below gives exactly the painter's-order result.  A layer renders its children the same
way into a fresh canvas (that is what makes group opacity and isolation correct), multiplies it
by its clip coverage, mask value and opacity, and composites it with its blend mode.  Everything
after the flat path is ordinary autograd on ``(4, H, W)`` tensors.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from ..shapes import BLEND_MODES, DrawGroup, ImageNode, Layer

#: Luminance weights of CSS Masking §7.1 (the sRGB / Rec. 709 luma coefficients resvg uses).
LUMINANCE = (0.2125, 0.7154, 0.0721)

#: Below this alpha a premultiplied colour is treated as transparent when un-premultiplying.
_ALPHA_EPS = 1e-6


def render_nodes(nodes: Sequence, width: int, height: int, flat: Callable[[list], Tensor], like: Tensor) -> Tensor:
    """Premultiplied RGBA ``(4, height, width)`` of a painter-ordered node list.

    Args:
        nodes: :class:`DrawGroup` and :class:`Layer` objects.
        width, height: canvas size in pixels.
        flat: renders a list of :class:`DrawGroup` to ``(4, height, width)`` (the fast path).
        like: a tensor whose dtype/device the empty canvas takes.
    """
    canvas = like.new_zeros(4, height, width)
    run: list = []

    def flush(canvas: Tensor) -> Tensor:
        if not run:
            return canvas
        top = flat(list(run))
        run.clear()
        return top + (1 - top[3:4]) * canvas

    for node in nodes:
        if isinstance(node, DrawGroup):
            run.append(node)
            continue
        if isinstance(node, ImageNode):
            canvas = flush(canvas)
            top = draw_image(node, width, height, like)
            canvas = top + (1 - top[3:4]) * canvas
            continue
        if not isinstance(node, Layer):
            raise TypeError(f"scenes must contain DrawGroup, Layer or ImageNode objects, got {type(node).__name__}")
        canvas = flush(canvas)
        layer = render_layer(node, width, height, flat, like)
        if layer is not None:
            canvas = blend(layer, canvas, node.blend)
    return flush(canvas)


def render_layer(layer: Layer, width: int, height: int, flat, like: Tensor):
    """The layer's premultiplied RGBA after clip, mask and opacity (``None`` when it is empty)."""
    if not layer.children:
        return None
    img = render_nodes(layer.children, width, height, flat, like)
    if layer.filter is not None:  # filter, then clip, mask and opacity (CSS Masking §3)
        from .filters import apply_filter

        for stage in layer.filter:
            img = apply_filter(img, stage)
    if layer.clip is not None:
        img = img * render_nodes(layer.clip, width, height, flat, like)[3:4]
    if layer.mask is not None:
        img = img * mask_value(render_nodes(layer.mask, width, height, flat, like), layer.mask_type)
    op = layer.opacity
    if isinstance(op, Tensor) or float(op) != 1.0:
        img = img * torch.as_tensor(op, dtype=img.dtype, device=img.device).reshape(())
    return img


def draw_image(node: ImageNode, width: int, height: int, like: Tensor) -> Tensor:
    """Premultiplied ``(4, height, width)`` of a picture sampled at the canvas pixel centres.

    The picture is extended by its border (the enclosing layer's clip cuts it to the image
    rectangle with exact edge coverage); where the map shrinks it by more than 2×, it is
    first reduced with an antialiased resize so that bilinear sampling does not alias.
    """
    import numpy as np
    import torch.nn.functional as F

    pix = node.pixels.to(dtype=like.dtype, device=like.device)
    m = np.asarray(node.pixel_to_image, dtype=np.float64)
    h0, w0 = pix.shape[1:]
    # image pixels per canvas pixel along each canvas axis
    shrink = max(float(np.hypot(m[0, 0], m[1, 0])), float(np.hypot(m[0, 1], m[1, 1])))
    if node.smooth and shrink > 2.0:
        nw, nh = max(1, int(round(w0 / shrink))), max(1, int(round(h0 / shrink)))
        pix = F.interpolate(pix.unsqueeze(0), size=(nh, nw), mode="bilinear", antialias=True,
                            align_corners=False)[0]
        m = np.diag([nw / w0, nh / h0, 1.0]) @ m
        h0, w0 = nh, nw
    ys = torch.arange(height, dtype=like.dtype, device=like.device) + 0.5
    xs = torch.arange(width, dtype=like.dtype, device=like.device) + 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    mt = torch.as_tensor(m, dtype=like.dtype, device=like.device)
    u = mt[0, 0] * gx + mt[0, 1] * gy + mt[0, 2]
    v = mt[1, 0] * gx + mt[1, 1] * gy + mt[1, 2]
    grid = torch.stack([2 * u / w0 - 1, 2 * v / h0 - 1], -1).unsqueeze(0)
    mode = "bilinear" if node.smooth else "nearest"
    return F.grid_sample(pix.unsqueeze(0), grid, mode=mode, padding_mode="border", align_corners=False)[0]


def mask_value(rgba: Tensor, mask_type: str = "luminance") -> Tensor:
    """``(1, H, W)`` mask of a rendered mask image: luminance of the premultiplied colour, or alpha."""
    if mask_type == "alpha":
        return rgba[3:4]
    w = torch.tensor(LUMINANCE, dtype=rgba.dtype, device=rgba.device).view(3, 1, 1)
    return (rgba[:3] * w).sum(0, keepdim=True)


def _unpremultiply(c: Tensor, a: Tensor) -> Tensor:
    return torch.where(a > _ALPHA_EPS, c / a.clamp_min(_ALPHA_EPS), torch.zeros_like(c)).clamp(0, 1)


def _hard_light(cb: Tensor, cs: Tensor) -> Tensor:
    return torch.where(cs <= 0.5, cb * 2 * cs, cb + (2 * cs - 1) - cb * (2 * cs - 1))


def _soft_light(cb: Tensor, cs: Tensor) -> Tensor:
    d = torch.where(cb <= 0.25, ((16 * cb - 12) * cb + 4) * cb, torch.sqrt(cb.clamp_min(1e-12)))
    return torch.where(cs <= 0.5, cb - (1 - 2 * cs) * cb * (1 - cb), cb + (2 * cs - 1) * (d - cb))


def _color_dodge(cb: Tensor, cs: Tensor) -> Tensor:
    safe = (1 - cs).clamp_min(1e-6)
    out = torch.where(cs >= 1, torch.ones_like(cb), (cb / safe).clamp(max=1))
    return torch.where(cb <= 0, torch.zeros_like(cb), out)


def _color_burn(cb: Tensor, cs: Tensor) -> Tensor:
    out = torch.where(cs <= 0, torch.zeros_like(cb), 1 - ((1 - cb) / cs.clamp_min(1e-6)).clamp(max=1))
    return torch.where(cb >= 1, torch.ones_like(cb), out)


#: ``B(cb, cs)`` of Compositing 1 §9 for straight colours in ``[0, 1]``.
_BLEND = {
    "multiply": lambda cb, cs: cb * cs,
    "screen": lambda cb, cs: cb + cs - cb * cs,
    "overlay": lambda cb, cs: _hard_light(cs, cb),
    "darken": torch.minimum,
    "lighten": torch.maximum,
    "color-dodge": _color_dodge,
    "color-burn": _color_burn,
    "hard-light": _hard_light,
    "soft-light": _soft_light,
    "difference": lambda cb, cs: (cb - cs).abs(),
    "exclusion": lambda cb, cs: cb + cs - 2 * cb * cs,
}


def blend(src: Tensor, dst: Tensor, mode: str = "normal") -> Tensor:
    """Composite premultiplied ``src`` over ``dst`` (both ``(4, H, W)``) with a separable blend mode.

    Compositing 1 §5.8/§9: ``Cr = (1 − αb) Cs + (1 − αs) Cb + αs αb B(cb, cs)`` on premultiplied
    ``C`` and straight ``c``, ``αr = αs + αb (1 − αs)``; ``normal`` is plain source-over.
    """
    if mode == "normal":
        return src + (1 - src[3:4]) * dst
    if mode not in _BLEND:
        raise ValueError(f"unknown blend mode {mode!r}; expected one of {', '.join(BLEND_MODES)}")
    a_s, a_b = src[3:4], dst[3:4]
    cs, cb = _unpremultiply(src[:3], a_s), _unpremultiply(dst[:3], a_b)
    color = (1 - a_b) * src[:3] + (1 - a_s) * dst[:3] + a_s * a_b * _BLEND[mode](cb, cs)
    return torch.cat([color, a_s + a_b * (1 - a_s)], 0)
