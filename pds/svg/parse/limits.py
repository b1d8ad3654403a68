"""Complexity limits: what the parser refuses to read, checked while it reads.

Each limit is read at call time as ``limits.NAME``, so a caller (or a test) can change it here
for the whole parser; a refused document raises :class:`~pds.svg.parse.reader.SVGError` with a
one-line message saying which limit it passed and what to do about it.  (Values that are merely
invalid, such as a transform entry beyond :data:`pds.svg.parse.transforms.MAX_TRANSFORM_ENTRY`,
are ignored where they are read instead; ``<image>`` nesting is
:data:`pds.svg.image.MAX_IMAGE_DEPTH`.)
"""

#: Refuse files larger than this (bytes): icons are kilobytes.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Refuse documents that expand (through ``use``) into more painted elements than this.
MAX_DRAW_ITEMS = 20_000
#: Refuse documents whose walk (with ``use`` expanded) visits more elements than this.
MAX_VISITS = 200_000
#: Refuse element nesting deeper than this (keeps recursion bounded).
MAX_DEPTH = 400
#: Refuse a path (or polyline/polygon) with more segments than this: rasterizer memory grows
#: with segments × pixels crossed (10,000 canvas-crossing segments take about 1.6 GB at 256 px).
MAX_PATH_SEGMENTS = 10_000
#: Refuse documents whose painted shapes (``use`` instances counted) have more segments in all.
MAX_SEGMENTS = 50_000
#: Refuse gradients with more stops than this (each stop is a parameter and a colour band).
MAX_GRADIENT_STOPS = 1_000
