"""The document model: what the parser produces and :class:`~pds.svg.scene.SVGScene` renders.

A :class:`Document` is the kept XML tree, the viewport and a flat, painter-ordered list of
:class:`DrawItem` (what selection, parameters and write-back work on) with their parameters
(:mod:`pds.svg.parse.params`).  Each item carries the chain of :class:`LayerDef` it sits in,
outermost first.  One ``LayerDef`` object is one *instance* of a layer (a group reached through
two ``use`` elements gives two), so the scene rebuilds the layer tree by grouping consecutive
items with the same chain (:meth:`pds.svg.scene.SVGScene.draw_groups`).

Referenced definitions (gradients, patterns, clip paths, masks) are resolved once per element
by :mod:`pds.svg.parse.defs`.  Clip and mask content is walked once per ``clipPath``/``mask``
element into its own item list, in the element's *content space*; ``objectBoundingBox`` units
are applied at render time from the current geometry of the referencing element, like gradients.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Tuple, Union
from xml.etree import ElementTree as ET

import numpy as np

from ..geometry import Geometry
from ..image import ImageDef
from .params import ColorParam, Param, ScalarParam, StopsParam
from .transforms import scale, view_box_transform

__all__ = ["ClipDef", "DashDef", "Document", "DrawItem", "GradientDef", "GradientRef", "LayerDef", "MaskDef",
           "Paint", "PatternDef", "PatternRef", "Rect"]

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
        filter: its ``filter`` list (:class:`pds.svg.parse.filters.FilterDef`, applied in order), or
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


@dataclass
class GradientDef:
    """A gradient element with its ``href`` chain resolved (geometry in gradient units)."""

    kind: str  # "linear" | "radial"
    stops: StopsParam
    units: str  # "objectBoundingBox" | "userSpaceOnUse"
    transform: np.ndarray
    spread: str
    coords: Dict[str, float]


@dataclass
class GradientRef:
    """A shape's use of a gradient, with that shape's ``fill-opacity``/``stroke-opacity``."""

    gradient: GradientDef
    opacity: float


Paint = Union[ColorParam, GradientRef, PatternRef]


@dataclass
class DrawItem:
    """One painted shape instance, in painter's order.

    Attributes:
        ctm: 3×3 matrix from the shape's user space to the root's user space (viewBox units).
        scope: ids of the element, its ancestors and the ``use`` elements that instanced it
            (what :meth:`pds.svg.SVGScene.select` matches).
        opacities: the element's ``opacity`` (last) and its ancestors' (the ancestors' are
            applied by the enclosing :attr:`layers`, the element's own by the draw group).
        layers: the offscreen layers the shape sits in, outermost first (see :class:`LayerDef`).
        clip_rule: its ``clip-rule`` (used when it is clip-path content).
        dash: its ``stroke-dasharray``/``stroke-dashoffset``, or ``None`` for a solid stroke.
        image: for an ``<image>``, the picture (``geometry`` is then its viewport rectangle, a
            constant used for bounding boxes), else ``None``.
    """

    index: int
    element: ET.Element
    geometry: Geometry
    ctm: np.ndarray
    fill: Optional[Paint]
    stroke: Optional[Paint]
    stroke_width: Optional[ScalarParam]
    fill_rule: str
    linecap: str
    linejoin: str
    miterlimit: float
    opacities: List[ScalarParam]
    scope: FrozenSet[str]
    stroke_first: bool = False
    layers: Tuple[LayerDef, ...] = ()
    clip_rule: str = "nonzero"
    dash: Optional["DashDef"] = None
    image: Optional[ImageDef] = None

    @property
    def id(self) -> Optional[str]:
        return self.element.get("id")


@dataclass
class DashDef:
    """A resolved ``stroke-dasharray`` (even length, user units, sum > 0) and ``stroke-dashoffset``.

    ``scale`` is the ``pathLength`` factor: author lengths are multiplied by
    ``computed length / pathLength`` at render time (``None`` without ``pathLength``).
    """

    array: Tuple[float, ...]
    offset: float
    path_length: Optional[float] = None


@dataclass
class Document:
    """A parsed SVG: the kept XML tree, the viewport and the draw items with their parameters."""

    root: ET.Element
    namespaces: List[Tuple[str, str]]
    width: float  # intrinsic size in px
    height: float
    view_box: Optional[Tuple[float, float, float, float]]
    preserve_aspect_ratio: Optional[str]
    items: List[DrawItem]
    params: List[Param]
    unsupported: Counter = field(default_factory=Counter)
    #: comments and processing instructions outside the root element, ``(after_root, node)``
    outside: List[Tuple[bool, ET.Element]] = field(default_factory=list)

    def canvas_size(self, size: int) -> Tuple[int, int]:
        """``(W, H)`` in pixels with the longer side ``size`` and the document's aspect ratio."""
        s = size / max(self.width, self.height)
        return max(1, int(round(self.width * s))), max(1, int(round(self.height * s)))

    def canvas_matrix(self, width: int, height: int) -> np.ndarray:
        """Root user space → canvas pixels (the same mapping cairosvg uses for that output size)."""
        if self.view_box is not None:
            return view_box_transform(self.view_box, self.preserve_aspect_ratio, width, height)
        return scale(width / self.width, height / self.height)

    @property
    def user_size(self) -> float:
        """The longer side of the root coordinate system (viewBox, else intrinsic size)."""
        if self.view_box is not None:
            return max(self.view_box[2], self.view_box[3])
        return max(self.width, self.height)
