"""Tensor images to pixels, PNG files and labelled grids (one rounding rule everywhere).

Images are float tensors in ``[0, 1]``: ``(3, H, W)`` or a batch ``(B, 3, H, W)``. Conversion to
8 bits clamps, then rounds to the nearest level (``round(255·x)``), so a value that went through
a PNG and back differs from the original by at most half a level.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor


def to_uint8(image: Tensor) -> np.ndarray:
    """``(3, H, W)`` (or ``(1, 3, H, W)``) float in ``[0, 1]`` -> ``(H, W, 3)`` uint8 array;
    a batch ``(B, 3, H, W)`` -> ``(B, H, W, 3)``."""
    x = image.detach().float().clamp(0, 1)
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    x = (x * 255.0).round().to(torch.uint8).cpu()
    return (x.permute(1, 2, 0) if x.dim() == 3 else x.permute(0, 2, 3, 1)).numpy()


def png_bytes(image) -> bytes:
    """PNG file contents of a ``(3, H, W)`` tensor in ``[0, 1]``, a ``(H, W, 3)`` uint8 array or a PIL image."""
    from PIL import Image

    if isinstance(image, Tensor):
        image = to_uint8(image)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def save_png(image, path: Union[str, Path]) -> Path:
    """Write ``image`` (anything :func:`png_bytes` takes) to ``path`` atomically; returns the path."""
    from .files import atomic_write

    atomic_write(path, png_bytes(image))
    return Path(path)


def image_grid(images: Tensor, ncols: int, labels: Optional[Sequence[str]] = None, *, scale: int = 1,
               pad: int = 2, label_width: int = 230, col_labels: Optional[Sequence[str]] = None):
    """A PIL image of ``(N, 3, H, W)`` images in ``[0, 1]``, ``ncols`` per row on white.

    Args:
        images: the tiles, row-major.
        ncols: tiles per row.
        labels: optional text drawn left of each row (``label_width`` pixels are reserved).
        scale: integer nearest-neighbour upscaling of each tile (default 1).
        pad: white pixels between tiles (default 2).
        col_labels: optional text above each column (a 14-pixel band is reserved).
    """
    from PIL import Image, ImageDraw

    n, _, h, w = images.shape
    nrows = math.ceil(n / ncols)
    H, W = h * scale, w * scale
    lw = label_width if labels else 0
    top = 14 if col_labels else 0
    canvas = Image.new("RGB", (lw + ncols * W + (ncols + 1) * pad, top + nrows * H + (nrows + 1) * pad), "white")
    arr = to_uint8(images) if n > 1 else to_uint8(images)[None]
    draw = ImageDraw.Draw(canvas)
    for i in range(n):
        r, c = divmod(i, ncols)
        tile = Image.fromarray(arr[i])
        if scale != 1:
            tile = tile.resize((W, H), Image.NEAREST)
        canvas.paste(tile, (lw + pad + c * (W + pad), top + pad + r * (H + pad)))
    for r, text in enumerate((labels or [])[:nrows]):
        draw.text((4, top + pad + r * (H + pad) + H // 2 - 5), str(text), fill="black")
    for c, text in enumerate((col_labels or [])[:ncols]):
        draw.text((lw + pad + c * (W + pad) + 2, 1), str(text), fill="black")
    return canvas
