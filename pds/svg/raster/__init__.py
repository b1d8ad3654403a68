"""Differentiable SVG rasterizer in pure PyTorch.

:func:`rasterize` turns a painter-ordered list of :class:`~pds.svg.shapes.DrawGroup` (geometry
already in canvas pixel coordinates) into a premultiplied RGBA image that is differentiable
w.r.t. control points, stroke widths, colours, opacities and gradient stops.

How it works (each stage is one module):

1. **Flatten** (:mod:`pds.svg.raster.geometry`): every Bézier becomes a polyline with enough
   uniform pieces to keep the chord error under ``tolerance`` (0.1 px, like cairo).  Fills close
   every subpath with a straight edge (SVG 1.1 §11.3); strokes become outline polygons with SVG
   joins and caps (SVG 1.1 §11.4), filled with the nonzero rule like cairo does.
2. **Cover** (:mod:`pds.svg.raster.coverage`): the exact integral of the winding number over
   each cell (one pixel wide, ``1/samples`` pixel tall: sub-scanlines, like cairo's scan
   converter) is accumulated from the edges (an edge only touches the cells it crosses; a row
   ``cumsum`` does the rest), turned into coverage by the fill rule and averaged over the
   sub-scanlines.  Anti-aliasing is therefore exact box-filter area coverage, as in cairo;
   ``samples`` only refines pixels where loops of one element cross each other.  Work is bounded
   by each layer's bounding box: nothing is evaluated outside it, and there is no
   edges × pixels tensor at all (cost is O(perimeter + box area) per layer).
3. **Paint** (:mod:`pds.svg.raster.paint`): solid colours or linear/radial gradients at pixel
   centres (through ``pixel_to_gradient``), straight-colour interpolation, pad/reflect/repeat.
4. **Composite** (:mod:`pds.svg.raster.composite`): per group, stroke over fill, times
   ``opacity`` (one layer, SVG 1.1 §14.5), then source-over onto the canvas in painter's order,
   with hand-written backward passes that keep only an int8 slope per coverage cell and each
   group's under-crop.
5. **Layers** (:mod:`pds.svg.raster.layers`): the compositing stage.  Groups with opacity,
   isolation, clip paths, masks, viewport clips, blend modes and filters are rendered offscreen
   (runs of plain groups through steps 1-4), then combined with ordinary autograd ops;
   :mod:`pds.svg.raster.filters` runs filter primitives on those offscreen layers.

:mod:`pds.svg.raster.pipeline` holds the entry points (:func:`rasterize`,
:func:`rasterize_batch`) and the glue between the stages.

Coordinates: x right, y down, pixel ``(i, j)`` covers ``[j, j+1) × [i, i+1)``.

Known, deliberate differences from cairosvg (the fidelity reference): an element's ``opacity``
applies to its fill and stroke as one layer (cairosvg multiplies it into fill- and
stroke-opacity separately for leaf elements), and zero-length subpaths with square caps draw a
square (cairo draws nothing).
"""

from .geometry import DEFAULT_TOLERANCE
from .pipeline import flatten_subpath, over_background, rasterize, rasterize_batch

__all__ = ["DEFAULT_TOLERANCE", "flatten_subpath", "over_background", "rasterize", "rasterize_batch"]
