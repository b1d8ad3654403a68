"""``<image>``: embedded pictures from ``data:`` URIs, decoded once at parse time.

Only ``data:`` URIs are read (SVG 2 §5.7): PNG, JPEG, GIF, WebP and BMP through Pillow, and
``image/svg+xml`` parsed by our own parser (:func:`pds.svg.parse.build_document`, nested at most
:data:`MAX_IMAGE_DEPTH` deep) and drawn as vectors by the rasterizer.  A file name or URL is never
opened or fetched: the parser warns and draws nothing.  Image pixels are constants; the
element's ``opacity`` stays a parameter (it is the layer opacity of the image's node).

Placement (SVG 2 §5.7 / §8.2): the picture's intrinsic ``w0 × h0`` box is fitted into the
element's ``x, y, width, height`` viewport by ``preserveAspectRatio`` (default ``xMidYMid meet``),
then clipped to the viewport (``slice`` overflows it).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .parse import Document

__all__ = ["ImageDef", "MAX_IMAGE_DEPTH", "MAX_IMAGE_PIXELS", "decode_data_uri", "decode_raster"]

#: An SVG image inside an SVG image ... is drawn at most this many levels deep.
MAX_IMAGE_DEPTH = 4
#: Decoded raster images larger than this (pixels) are refused (Pillow's bomb guard is 89 M).
MAX_IMAGE_PIXELS = 16 * 1024 * 1024

_DATA_RE = re.compile(r"^\s*data:([^,]*?),(.*)$", re.DOTALL | re.IGNORECASE)
_RASTER_MIME = ("image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp", "image/bmp")


@dataclass(eq=False)
class ImageDef:
    """An ``<image>`` element, resolved.

    Attributes:
        pixels: ``(h0, w0, 4)`` float32 straight RGBA in ``[0, 1]`` of a raster picture, or ``None``.
        document: the parsed document of an SVG picture, or ``None``.
        size: intrinsic ``(w0, h0)`` in px (raster: pixel counts; SVG: its width/height).
        viewport: ``x, y, width, height`` of the element in its user space.
        preserve_aspect_ratio: the element's attribute (``None`` = ``xMidYMid meet``).
        smooth: bilinear sampling (``False`` for ``image-rendering: pixelated``/``optimizeSpeed``:
            nearest neighbour).
    """

    pixels: Optional[np.ndarray]
    document: Optional["Document"]
    size: Tuple[float, float]
    viewport: Tuple[float, float, float, float]
    preserve_aspect_ratio: Optional[str]
    smooth: bool = True


def decode_data_uri(href: str) -> Optional[Tuple[str, bytes]]:
    """``(mime type, payload)`` of a ``data:`` URI (RFC 2397), or ``None`` if ``href`` is not one
    or is malformed.  The MIME type is lower-cased without parameters (``""`` when absent)."""
    m = _DATA_RE.match(href)
    if m is None:
        return None
    meta, payload = m.group(1), m.group(2)
    parts = [p.strip() for p in meta.split(";")]
    mime = parts[0].lower() if parts else ""
    if any(p.lower() == "base64" for p in parts[1:]):
        try:
            # whitespace (line-wrapped base64 in attributes) is not part of the data
            data = base64.b64decode(re.sub(r"\s+", "", payload), validate=True)
        except (binascii.Error, ValueError):
            return None
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    return mime, data


def sniff_mime(data: bytes) -> str:
    """The picture format from its magic bytes (browsers and resvg ignore a wrong declared type)."""
    head = data[:16]
    if head.startswith(b"\x89PNG"):
        return "image/png"
    if head.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"BM"):
        return "image/bmp"
    text = data[:512].lstrip().lower()
    if text.startswith(b"<") and (b"<svg" in data[:4096].lower()):
        return "image/svg+xml"
    return ""


def decode_raster(data: bytes) -> Optional[np.ndarray]:
    """``(h, w, 4)`` float32 straight RGBA in ``[0, 1]`` of a PNG/JPEG/GIF/WebP/BMP, or ``None``
    when Pillow cannot read it or it has more than :data:`MAX_IMAGE_PIXELS` pixels."""
    from PIL import Image  # deferred: only documents with images need Pillow

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS or im.width == 0 or im.height == 0:
                return None
            rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
    except Exception:  # noqa: BLE001 - any decoding failure is "not a readable image"
        return None
    return rgba


def placement(size, viewport, par: Optional[str]) -> Tuple[np.ndarray, Tuple[float, float, float, float]]:
    """The intrinsic box → user space matrix of a picture, and the rectangle it is clipped to.

    Args:
        size: intrinsic ``(w0, h0)``.
        viewport: the element's ``(x, y, width, height)``.
        par: ``preserveAspectRatio`` (``None`` = ``xMidYMid meet``).

    Returns:
        ``(matrix, clip)``: 3×3 matrix, and ``(x, y, w, h)`` of the visible part in user space
        (the viewport intersected with the placed picture).
    """
    from .parse.transforms import translate, view_box_transform

    x, y, w, h = viewport
    m = translate(x, y) @ view_box_transform((0.0, 0.0, float(size[0]), float(size[1])), par, w, h)
    corners = m @ np.array([[0.0, size[0]], [0.0, size[1]], [1.0, 1.0]])
    px0, px1 = sorted(corners[0])
    py0, py1 = sorted(corners[1])
    cx0, cy0 = max(x, px0), max(y, py0)
    cx1, cy1 = min(x + w, px1), min(y + h, py1)
    return m, (cx0, cy0, max(cx1 - cx0, 0.0), max(cy1 - cy0, 0.0))
