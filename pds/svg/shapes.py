"""Draw-list types shared by the SVG parser (``pds.svg.scene``) and the rasterizer (``pds.svg.raster``).

The parser turns an SVG document into a flat, painter-ordered list of :class:`DrawGroup`
objects whose geometry is already in **canvas pixel coordinates** (x right, y down, the
top-left pixel covers ``[0, 1) x [0, 1)`` so its centre is ``(0.5, 0.5)``).  The rasterizer
only ever sees these types, so it never needs to know about XML, units or transforms.

The geometry model is diffvg's, because it maps one-to-one onto SVG path data: a subpath is a
chain of polynomial segments that share end points, and ``num_control_points[i]`` says how many
off-curve points segment ``i`` has (0 = line, 1 = quadratic, 2 = cubic).  For an open subpath
with segment counts ``n_i`` the ``points`` tensor holds ``1 + sum(n_i + 1)`` points; for a
closed one the last segment's end point is the first point and is not repeated, so it holds
``sum(n_i + 1)`` points.

All tensors may require grad; the rasterizer is differentiable with respect to every float
tensor here (points, colours, offsets of gradient stops, widths, opacities).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Sequence, Union

import torch
from torch import Tensor

SpreadMethod = Literal["pad", "reflect", "repeat"]


@dataclass
class SolidPaint:
    """A flat colour.

    Attributes:
        rgba: ``(4,)`` float tensor, straight (not premultiplied) RGBA in ``[0, 1]``.
    """

    rgba: Tensor


@dataclass
class LinearGradientPaint:
    """An SVG ``linearGradient`` resolved to pixel space.

    Attributes:
        start: ``(2,)`` gradient vector start (``x1, y1``) in *gradient space*.
        end: ``(2,)`` gradient vector end (``x2, y2``) in *gradient space*.
        offsets: ``(K,)`` stop offsets in ``[0, 1]``, non-decreasing.
        colors: ``(K, 4)`` straight RGBA stop colours in ``[0, 1]`` (stop-opacity folded into alpha).
        pixel_to_gradient: ``(3, 3)`` affine matrix mapping homogeneous canvas pixel coordinates
            to gradient space (the inverse of ``shape_to_canvas @ gradientTransform`` and, for
            ``objectBoundingBox`` units, of the bounding-box map). Identity when ``None``.
        spread: SVG ``spreadMethod``.
    """

    start: Tensor
    end: Tensor
    offsets: Tensor
    colors: Tensor
    pixel_to_gradient: Optional[Tensor] = None
    spread: SpreadMethod = "pad"


@dataclass
class RadialGradientPaint:
    """An SVG ``radialGradient`` resolved to pixel space (see :class:`LinearGradientPaint`).

    Attributes:
        center: ``(2,)`` ``cx, cy`` in gradient space.
        radius: scalar tensor ``r`` in gradient space.
        focal: ``(2,)`` ``fx, fy`` in gradient space (equal to ``center`` when absent).
        offsets, colors, pixel_to_gradient, spread: as for :class:`LinearGradientPaint`.
        focal_radius: scalar tensor ``fr`` (SVG 2), the radius of the start circle; ``None`` = 0.
    """

    center: Tensor
    radius: Tensor
    focal: Tensor
    offsets: Tensor
    colors: Tensor
    pixel_to_gradient: Optional[Tensor] = None
    spread: SpreadMethod = "pad"
    focal_radius: Optional[Tensor] = None


Paint = Union[SolidPaint, LinearGradientPaint, RadialGradientPaint]


@dataclass
class Subpath:
    """One subpath in canvas pixel coordinates.

    Attributes:
        points: ``(P, 2)`` float tensor of on- and off-curve points (see module docstring).
        num_control_points: ``(S,)`` int64 tensor, 0/1/2 per segment.
        closed: whether the subpath ends with ``Z`` (closed subpaths get a join, not caps,
            at their start point when stroked). Open subpaths are still filled as if closed
            by a straight line, as SVG requires.
    """

    points: Tensor
    num_control_points: Tensor
    closed: bool


@dataclass
class DrawGroup:
    """One painted SVG element (after ``use`` expansion), painted fill first, then stroke.

    Attributes:
        subpaths: the element's geometry, all filled together with ``fill_rule``.
        fill: fill paint or ``None`` for ``fill="none"``.
        stroke: stroke paint or ``None``.
        stroke_width: scalar tensor, stroke width in **pixels** (already scaled by the transform).
        fill_rule: ``"nonzero"`` or ``"evenodd"``.
        linecap: ``"butt"``, ``"round"`` or ``"square"``.
        linejoin: ``"miter"``, ``"round"`` or ``"bevel"`` (``miter-clip``/``arcs`` fall back to miter).
        miterlimit: SVG ``stroke-miterlimit`` (default 4).
        opacity: scalar tensor in ``[0, 1]``; the element's ``opacity`` (times inherited group
            opacity). Applied to the element's fill+stroke as one layer, as SVG specifies.
        source_id: index of the element in document order, so the parser can map edits back.
        stroke_subpaths: geometry to stroke when it differs from ``subpaths`` (dashes, or
            strokes built before a non-similarity transform); ``None`` strokes ``subpaths``.
        stroke_matrix: ``(2, 3)`` affine map applied to the stroke *outline* (after
            stroking): ``stroke_subpaths`` and ``stroke_width`` are then in that pre-image
            space.  SVG strokes in user space, so a skew or non-uniform scale must act on the
            outline, not on the centre line.  ``None`` = identity.
    """

    subpaths: Sequence[Subpath]
    fill: Optional[Paint] = None
    stroke: Optional[Paint] = None
    stroke_width: Tensor = field(default_factory=lambda: torch.tensor(1.0))
    fill_rule: Literal["nonzero", "evenodd"] = "nonzero"
    linecap: Literal["butt", "round", "square"] = "butt"
    linejoin: Literal["miter", "round", "bevel"] = "miter"
    miterlimit: float = 4.0
    opacity: Tensor = field(default_factory=lambda: torch.tensor(1.0))
    source_id: int = -1
    stroke_subpaths: Optional[Sequence[Subpath]] = None
    stroke_matrix: Optional[Tensor] = None


#: ``mix-blend-mode`` values the compositor implements (the separable modes of Compositing 1).
BLEND_MODES = ("normal", "multiply", "screen", "overlay", "darken", "lighten", "color-dodge", "color-burn",
               "hard-light", "soft-light", "difference", "exclusion")


@dataclass
class Layer:
    """A group rendered offscreen, then clipped, masked, faded and blended onto what is below.

    SVG 1.1 §14.5 / Compositing 1: a group with ``opacity``, ``clip-path``, ``mask`` or
    ``mix-blend-mode`` is drawn into its own transparent canvas first, so overlapping children
    do not show through each other.

    Attributes:
        children: painter-ordered :class:`DrawGroup` / :class:`Layer` nodes.
        opacity: scalar (tensor or float) in ``[0, 1]`` multiplied into the whole layer.
        clip: nodes whose rendered **alpha** multiplies the layer (a clip path: its shapes
            filled opaque with their ``clip-rule``), or ``None``.
        mask: nodes whose rendering multiplies the layer by its luminance (premultiplied
            ``0.2125 R + 0.7154 G + 0.0721 B``, CSS Masking §7.1) or alpha, or ``None``.
        mask_type: ``"luminance"`` or ``"alpha"``.
        blend: one of :data:`BLEND_MODES`.
        filter: a :class:`pds.svg.raster.filters.PixelFilter` applied to the rendered children before
            clip, mask and opacity (Filter Effects 1 §5 / CSS Masking order), or ``None``.
    """

    children: Sequence["Node"]
    opacity: Union[Tensor, float] = 1.0
    clip: Optional[Sequence["Node"]] = None
    mask: Optional[Sequence["Node"]] = None
    mask_type: Literal["luminance", "alpha"] = "luminance"
    blend: str = "normal"
    filter: Optional[object] = None


@dataclass
class ImageNode:
    """A raster picture drawn with an affine map (an SVG ``<image>``; its clip is the enclosing layer's).

    Attributes:
        pixels: ``(4, h, w)`` premultiplied RGBA in ``[0, 1]`` (a constant).
        pixel_to_image: ``(3, 3)`` float64 numpy matrix from canvas pixel coordinates to image
            pixel coordinates (image pixel ``(i, j)`` covers ``[j, j+1) × [i, i+1)``).
        smooth: bilinear (``True``) or nearest-neighbour sampling.

    The picture is sampled at canvas pixel centres and extended by its border colour: the layer
    around it clips it to the image rectangle with exact area coverage.
    """

    pixels: Tensor
    pixel_to_image: object
    smooth: bool = True


Node = Union[DrawGroup, Layer, ImageNode]
