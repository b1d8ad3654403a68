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
    """

    center: Tensor
    radius: Tensor
    focal: Tensor
    offsets: Tensor
    colors: Tensor
    pixel_to_gradient: Optional[Tensor] = None
    spread: SpreadMethod = "pad"


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
