"""Read an SVG document into differentiable parameters and a painter-ordered list of draw items.

Parser choice
-------------
XML is read with **defusedxml** (``forbid_entities``, ``forbid_external``: no entity expansion, so
no "billion laughs", and no external entities or DTD fetches; :mod:`.reader`) into a stdlib
ElementTree that we keep, so :mod:`pds.svg.write` can write the same document back with only optimised attributes
changed. On top of that tree we use **svgelements** as the SVG parser for what is hard to get
right: path data (every command, relative/absolute, smooth curves, implicit commands, minified
numbers such as ``.5.5``, and elliptical arcs with out-of-range radii, converted to cubics) and
transform lists. svgelements was chosen over svgpathtools because it follows the SVG spec as its
stated goal ("if the spec says one thing and we do another, that is a bug"), keeps subpath
structure (``Move``/``Close`` segments, which svgpathtools' ``parse_path`` drops) and parses
transforms, where svgpathtools would need hand-written code. svgelements' own document loader is
not used: it parses XML without defusedxml and flattens the tree, losing the structure we must
write back. CSS (``style`` attributes, ``<style>`` sheets, colours) goes through tinycss2 and
cssselect2, see :mod:`pds.svg.style`.

What is supported
-----------------
``path``, ``rect`` (rx/ry), ``circle``, ``ellipse``, ``line``, ``polyline``, ``polygon``; ``g``,
``a``, ``switch`` (``systemLanguage``, ``requiredExtensions``), nested ``svg`` and ``symbol``
viewports (clipped unless ``overflow`` is visible, ``preserveAspectRatio``), ``defs``, ``use``,
``transform`` everywhere, the CSS ``transform`` property and ``transform-origin``; presentation
attributes, ``style`` and ``<style>`` sheets with inheritance and ``inherit``; colours;
``font-size`` with relative units (``em``/``ex``/``%`` lengths); ``opacity`` (groups are offscreen
layers, :mod:`.model`), ``fill-opacity``, ``stroke-opacity``; ``clip-path`` /
``clipPath`` (units, ``clip-rule``, nested), ``mask`` (luminance/alpha, units),
``mix-blend-mode`` (separable modes), ``isolation``; ``fill-rule``; strokes (width, caps, joins,
miter limit, ``stroke-dasharray``/``-dashoffset``/``pathLength``); ``paint-order``; markers;
``display``/``visibility``; linear and radial gradients and patterns with ``href`` inheritance.

``image`` from ``data:`` URIs (PNG, JPEG, GIF, WebP, BMP, SVG; :mod:`pds.svg.image`), filters
(:mod:`.filters`, applied by :mod:`pds.svg.raster.filters`), ``text``/``tspan`` as glyph
outlines (:mod:`pds.svg.text`), radial gradient ``fr``, ``context-fill``/``context-stroke``.

Anything else (``textPath``, ``foreignObject``, animation...) is skipped with one
:class:`SVGFeatureWarning` per kind, never an exception.

Where things are
----------------
One module per concern; :class:`~.builder._Builder` is assembled from the two mixins.

* :mod:`.reader`: safe XML reading, :class:`SVGError`, :class:`SVGFeatureWarning`.
* :mod:`.limits`: the complexity limits (read at call time: change them there, not here).
* :mod:`pds.svg.style` (shared with the writer): the CSS cascade, computed style, colours, lengths.
* :mod:`.transforms`: transform lists, the CSS ``transform`` property, viewBox, document size.
* :mod:`.model`: :class:`Document`, :class:`DrawItem` and the resolved definitions (layers, clips,
  masks, patterns, gradients); :mod:`.params`: the optimisable parameters and their write-back.
* :mod:`.builder`: the tree walk (containers, ``switch``, nested ``svg``/``symbol``, ``use``) and
  :func:`build_document`.
* :mod:`.defs`: references (``clip-path``, ``mask``, ``filter`` and the other layer properties,
  patterns, gradients, paint).
* :mod:`.elements`: shapes, ``text``, ``image``, strokes, dashes and markers into draw items.
* :mod:`.filters`: ``<filter>`` elements and CSS filter functions into definitions.
"""

from .builder import build_document
from .elements import marker_vertices
from .model import (
    ClipDef,
    DashDef,
    Document,
    DrawItem,
    GradientDef,
    GradientRef,
    LayerDef,
    MaskDef,
    Paint,
    PatternDef,
    PatternRef,
)
from .params import ColorParam, GeometryParam, Param, ScalarParam, StopsParam
from .reader import SVGError, SVGFeatureWarning, read_xml
from .transforms import parse_transform, parse_view_box, scale, translate, view_box_transform

__all__ = [
    "ClipDef",
    "ColorParam",
    "DashDef",
    "Document",
    "DrawItem",
    "GeometryParam",
    "GradientDef",
    "GradientRef",
    "LayerDef",
    "MaskDef",
    "Paint",
    "Param",
    "PatternDef",
    "PatternRef",
    "SVGError",
    "SVGFeatureWarning",
    "ScalarParam",
    "StopsParam",
    "build_document",
    "marker_vertices",
    "parse_transform",
    "parse_view_box",
    "read_xml",
    "scale",
    "translate",
    "view_box_transform",
]
