"""The document model of what is composited as a layer: groups with opacity, clips, masks, blends.

The parser (:mod:`pds.svg.parse`) keeps painted shapes as one flat, painter-ordered list of
:class:`~pds.svg.parse.DrawItem` (what selection, parameters and write-back work on); each item
carries the chain of :class:`LayerDef` it sits in, outermost first.  One ``LayerDef`` object is
one *instance* of a layer (a group reached through two ``use`` elements gives two), so the
scene rebuilds the layer tree by grouping consecutive items with the same chain
(:meth:`pds.svg.scene.SVGScene.draw_groups`).

Clip and mask content is walked once per ``clipPath``/``mask`` element into its own item list,
in the element's *content space*; ``objectBoundingBox`` units are applied at render time from
the current geometry of the referencing element, like gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Tuple

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .parse import DrawItem, ScalarParam

__all__ = ["ClipDef", "LayerDef", "MaskDef", "PatternDef", "PatternRef", "Rect"]

#: ``(x, y, width, height)`` in some user space.
Rect = Tuple[float, float, float, float]


@dataclass(eq=False)
class ClipDef:
    """A ``clipPath`` element, resolved.

    Attributes:
        items: its shapes (``use`` expanded) in content space; each is filled opaque with its
            ``clip-rule``, and their union is the clip.
        bbox_units: ``clipPathUnits="objectBoundingBox"`` (content space = the referencing
            element's bounding box as the unit square).
        transform: the ``clipPath``'s own ``transform`` (content → referencing user space,
            before the bounding-box map).
        clip: the ``clip-path`` of the ``clipPath`` element itself (intersected), or ``None``.
    """

    items: List["DrawItem"]
    bbox_units: bool
    transform: np.ndarray
    clip: Optional["ClipDef"] = None


@dataclass(eq=False)
class MaskDef:
    """A ``mask`` element, resolved.

    Attributes:
        items: its content (any painted elements) in content space.
        region: ``x, y, width, height`` of the mask region (outside it the mask is 0), in the
            referencing user space, or in bounding-box fractions when ``region_bbox``.
        region_bbox: ``maskUnits="objectBoundingBox"`` (the default).
        content_bbox: ``maskContentUnits="objectBoundingBox"``.
        mask_type: ``"luminance"`` (default) or ``"alpha"`` (the ``mask-type`` property).
    """

    items: List["DrawItem"]
    region: Rect
    region_bbox: bool
    content_bbox: bool
    mask_type: str = "luminance"


@dataclass(eq=False)
class LayerDef:
    """One instance of an element rendered as an offscreen layer.

    Attributes:
        element: the element (group, ``use``, nested ``svg``, symbol instance or shape).
        ctm: 3×3 matrix from the element's user space to root user space (clip and mask
            coordinates, and bounding boxes, are in that space).
        opacity: its ``opacity`` parameter, or ``None`` (1).
        clip: its ``clip-path``.
        mask: its ``mask``.
        blend: ``mix-blend-mode``.
        viewport: a rectangle in the element's user space that clips it (nested ``svg`` and
            ``symbol`` viewports with ``overflow: hidden``, the default), or ``None``.
        filter: its ``filter`` list (:class:`pds.svg.filters.FilterDef`, applied in order), or
            ``None``; a definition without primitives means the element is not rendered.
    """

    element: object
    ctm: np.ndarray
    opacity: Optional["ScalarParam"] = None
    clip: Optional[ClipDef] = None
    mask: Optional[MaskDef] = None
    blend: str = "normal"
    viewport: Optional[Rect] = None
    filter: Optional[tuple] = None


@dataclass(eq=False)
class PatternDef:
    """A ``pattern`` element with its ``href`` chain resolved (attributes and content).

    Attributes:
        items: its content in content space (tile origin at ``(0, 0)``).
        tile: ``x, y, width, height`` of the tile, in bounding-box fractions when ``tile_bbox``
            (``patternUnits="objectBoundingBox"``, the default), else user units.
        tile_bbox: see ``tile``.
        content_bbox: ``patternContentUnits="objectBoundingBox"`` (ignored with a viewBox).
        view_box, preserve_aspect_ratio: the tile's viewBox, if any.
        transform: ``patternTransform``.
    """

    items: List["DrawItem"]
    tile: Rect
    tile_bbox: bool
    content_bbox: bool
    view_box: Optional[Rect]
    preserve_aspect_ratio: Optional[str]
    transform: np.ndarray


@dataclass
class PatternRef:
    """A shape's ``fill``/``stroke`` of a pattern, with its ``fill-opacity``/``stroke-opacity``."""

    pattern: PatternDef
    opacity: float
