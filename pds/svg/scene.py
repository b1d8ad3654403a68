"""``SVGScene``: an SVG document as a differentiable :class:`pds.Renderer`.

Example::

    from pds.svg import SVGScene
    scene = SVGScene.load("icon.svg")          # a path or SVG text
    img = scene.render(256)                    # (3, H, W) in [0, 1] over white, longer side 256
    params = scene.parameters()                # {"points": [...], "fill": [...], ...}
    scene.select(["eye-left"], kinds=["fill"]) # optimise only that element's fill
    scene.save("out.svg")                      # same document, optimised attributes rewritten

Parameters live in each element's own user space and units (a circle's ``center`` and ``r``, a
path's control points, ``stroke-width`` in user units), so an optimised scene writes back into the
attributes it was read from; transforms and the viewBox are applied at render time.
"""

from __future__ import annotations

import math
import warnings
from os import PathLike
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .dash import dash_subpaths
from .geometry import subpath_bbox
from .parse import (
    ClipDef,
    ColorParam,
    Document,
    DrawItem,
    GradientRef,
    LayerDef,
    MaskDef,
    Param,
    PatternRef,
    SVGError,
    SVGFeatureWarning,
    build_document,
    read_xml,
    view_box_transform,
)
from .shapes import (
    DrawGroup,
    ImageNode,
    Layer,
    LinearGradientPaint,
    Node,
    RadialGradientPaint,
    SolidPaint,
    Subpath,
)

__all__ = ["KINDS", "SVGError", "SVGFeatureWarning", "SVGScene"]

#: Parameter kinds, in the order :meth:`SVGScene.parameters` lists them.
KINDS: Tuple[str, ...] = ("points", "fill", "stroke", "stroke_width", "opacity")
#: Aliases accepted wherever kinds are named (``--optimize width`` on the command line).
KIND_ALIASES = {"width": "stroke_width", "stroke-width": "stroke_width", "color": None, "colors": None}

#: Reference learning rates (Adam): control points move 0.8 px per step on a 512-px render,
#: colours 0.01 per step (the PDS paper's SVG setting); widths a quarter of the point rate.
POINTS_LR_PX_AT_512 = 0.8
WIDTH_LR_PX_AT_512 = 0.2
COLOR_LR = 0.01
OPACITY_LR = 0.01


def normalize_kinds(kinds: Optional[Iterable[str]]) -> Tuple[str, ...]:
    """Validate kind names (aliases ``width``/``stroke-width`` → ``stroke_width``; ``color`` → fill+stroke)."""
    if kinds is None:
        return KINDS
    if isinstance(kinds, str):
        kinds = [k for k in kinds.replace(",", " ").split() if k]
    out: List[str] = []
    for k in kinds:
        k = k.strip().lower()
        if k in ("color", "colors"):
            names = ["fill", "stroke"]
        else:
            names = [KIND_ALIASES.get(k, k)]
        for n in names:
            if n not in KINDS:
                raise ValueError(f"unknown parameter kind {k!r}; choose from {', '.join(KINDS)} (or 'width')")
            if n not in out:
                out.append(n)
    if not out:
        raise ValueError(f"no parameter kind given; choose from {', '.join(KINDS)}")
    return tuple(out)


def _mat(m: np.ndarray, dtype, device) -> Tuple[Tensor, Tensor]:
    """(A^T, t) of an affine 3×3 matrix so that ``points @ A^T + t`` applies it to row vectors."""
    return (torch.tensor(m[:2, :2].T.copy(), dtype=dtype, device=device),
            torch.tensor(m[:2, 2].copy(), dtype=dtype, device=device))


#: A pattern needing more tiles than this over one shape is not drawn.
MAX_PATTERN_TILES = 4096


#: Canvas coordinates are kept within ± this many pixels: far outside any canvas (sizes are at
#: most 8192), and small enough that the rasterizer's lengths and areas stay finite.
CANVAS_LIMIT = 1e7


def _on_canvas(points: Tensor) -> Tensor:
    """``points`` with coordinates that overflow in pixels (a shape in a 1e-300 viewBox is
    ``inf`` on the canvas, and ``inf - inf`` is NaN) pulled back to ±:data:`CANVAS_LIMIT`; points
    in range are unchanged."""
    return torch.nan_to_num(points, nan=0.0, posinf=CANVAS_LIMIT, neginf=-CANVAS_LIMIT).clamp(-CANVAS_LIMIT,
                                                                                             CANVAS_LIMIT)


def _width_on_canvas(width: Tensor) -> Tensor:
    """A stroke width in pixels kept within ``[0, CANVAS_LIMIT]`` (a 1e308 width under a scaling
    transform is ``inf``, and ``0 · inf`` is NaN); widths in range are unchanged."""
    return torch.nan_to_num(width, nan=0.0, posinf=CANVAS_LIMIT, neginf=0.0).clamp(0.0, CANVAS_LIMIT)


def _box_matrix(box) -> np.ndarray:
    """The unit square → ``box`` ``(x0, y0, x1, y1)`` (``objectBoundingBox`` units)."""
    return np.array([[box[2] - box[0], 0.0, box[0]], [0.0, box[3] - box[1], box[1]], [0.0, 0.0, 1.0]])


def _bbox(items: Sequence[DrawItem], ctm: np.ndarray):
    """Tight geometry bounding box ``(x0, y0, x1, y1)`` of ``items`` in the user space ``ctm``
    maps to root (a group's ``objectBoundingBox``), or ``None`` when it has no area."""
    if abs(np.linalg.det(ctm[:2, :2])) < 1e-300:
        return None
    inv = np.linalg.inv(ctm)
    boxes = []
    for item in items:
        rel = inv @ item.ctm
        if np.allclose(rel, np.eye(3)):
            bb = item.geometry.bbox()
            if bb is not None:
                boxes.append(bb)
            continue
        for s in item.geometry.subpaths():
            pts = s.points.detach().cpu().double().numpy() @ rel[:2, :2].T + rel[:2, 2]
            bb = subpath_bbox(pts, s.num_control_points.cpu().numpy(), s.closed)
            if bb is not None:
                boxes.append(bb)
    if not boxes:
        return None
    arr = np.array(boxes)
    box = (float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 2].max()), float(arr[:, 3].max()))
    return box if box[2] > box[0] and box[3] > box[1] else None


class SVGScene:
    """A parsed SVG whose geometry, colours, stroke widths and opacities are leaf tensors.

    Use :meth:`load` to create one. The scene satisfies :class:`pds.Renderer`: ``render()``
    (differentiable), ``parameters()``, ``learning_rates`` and ``project()``.

    Attributes:
        render_size: default longer side in pixels for :meth:`render` without an argument.
        samples: sub-pixel grid per axis of the rasterizer's fill rule (2 = the reference's 2×2).
        background: RGB the image is composited over (white).
    """

    def __init__(self, document: Document, *, render_size: int = 256, samples: int = 2,
                 background: Sequence[float] = (1.0, 1.0, 1.0), dtype=torch.float32, device=None):
        self.document = document
        self.render_size = int(render_size)
        self.samples = int(samples)
        self.background = tuple(float(c) for c in background)
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._kinds: Tuple[str, ...] = KINDS
        self._selected: Optional[frozenset] = None  # draw item indices; None = all
        self._canvas_wh: Tuple[int, int] = (0, 0)  # size of the canvas being drawn (draw_groups)
        self._apply_selection()

    # ------------------------------------------------------------------------------------------
    # construction
    # ------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, source: Union[str, bytes, PathLike], *, render_size: int = 256, samples: int = 2,
             background: Sequence[float] = (1.0, 1.0, 1.0), dtype=torch.float32, device=None,
             only: Optional[Iterable[str]] = None, optimize: Optional[Iterable[str]] = None) -> "SVGScene":
        """Read an SVG file or SVG text.

        Args:
            source: a path, or the SVG itself as ``str`` (starting with ``<``) or ``bytes``.
            render_size: default longer side of :meth:`render` in pixels.
            samples: rasterizer sub-grid per pixel axis.
            background: RGB in ``[0, 1]`` behind the drawing.
            dtype, device: of every parameter tensor (``torch.float64`` for gradient checks).
            only: element ids to optimise (the rest is frozen); see :meth:`select`.
            optimize: parameter kinds to optimise (default all of :data:`KINDS`).

        Raises:
            SVGError: unreadable, malformed or unsafe XML (entity declarations, external
                entities), or not an SVG. Unsupported features only warn
                (:class:`SVGFeatureWarning`, one per kind).
        """
        outside: list = []
        root, namespaces = read_xml(source, outside)
        doc = build_document(root, namespaces, dtype=dtype, device=device, outside=outside)
        for what, n in doc.unsupported.items():
            times = f"{n} time{'s' if n > 1 else ''}"
            message = f"unsupported or invalid SVG content ignored: {what} ({times})"
            warnings.warn(SVGFeatureWarning(message), stacklevel=2)
        scene = cls(doc, render_size=render_size, samples=samples, background=background, dtype=dtype,
                    device=device)
        if only is not None or optimize is not None:
            scene.select(only, kinds=optimize)
        return scene

    # ------------------------------------------------------------------------------------------
    # document facts
    # ------------------------------------------------------------------------------------------
    @property
    def items(self) -> List[DrawItem]:
        """The painted shapes in painter's order."""
        return self.document.items

    @property
    def width(self) -> float:
        """Intrinsic width in px (from ``width``, else the viewBox)."""
        return self.document.width

    @property
    def height(self) -> float:
        return self.document.height

    def ids(self) -> List[str]:
        """Every id that :meth:`select` accepts (elements, their groups, ``use`` elements), in order."""
        seen: Dict[str, None] = {}
        for item in self.items:
            for i in sorted(item.scope):
                seen.setdefault(i, None)
        return list(seen)

    def canvas_size(self, size: Optional[int] = None) -> Tuple[int, int]:
        """``(W, H)`` of a render whose longer side is ``size`` (default :attr:`render_size`)."""
        size = self.render_size if size is None else size
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"render size must be a positive integer number of pixels, got {size!r}")
        return self.document.canvas_size(int(size))

    # ------------------------------------------------------------------------------------------
    # parameters
    # ------------------------------------------------------------------------------------------
    @property
    def kinds(self) -> Tuple[str, ...]:
        """The parameter kinds being optimised."""
        return self._kinds

    def select(self, ids: Optional[Iterable[str]] = None, *, kinds: Optional[Iterable[str]] = None) -> "SVGScene":
        """Choose what :meth:`parameters` exposes; everything else is frozen (``requires_grad=False``).

        Args:
            ids: element ids; an element is selected when it, one of its ancestor groups or the
                ``use`` that instanced it has one of these ids. ``None`` selects everything.
                A parameter shared with unselected elements (a group's ``opacity``, a gradient
                used elsewhere) stays frozen so that unselected elements never change.
            kinds: parameter kinds (see :data:`KINDS`; ``None`` = all).

        Raises:
            ValueError: an id that names no painted element, or an unknown kind.

        Returns:
            ``self``, for chaining.
        """
        self._kinds = normalize_kinds(kinds)
        if ids is None:
            self._selected = None
        else:
            if isinstance(ids, str):
                ids = [ids]
            wanted = set(ids)
            known = {i for item in self.items for i in item.scope}
            unknown = sorted(wanted - known)
            if unknown:
                hint = ", ".join(self.ids()[:12]) or "none"
                raise ValueError(f"no painted element has id {', '.join(map(repr, unknown))}; ids in this SVG: {hint}")
            self._selected = frozenset(item.index for item in self.items if item.scope & wanted)
        self._apply_selection()
        return self

    def _active(self, p: Param) -> bool:
        if p.kind not in self._kinds:
            return False
        return self._selected is None or p.users <= self._selected

    def _apply_selection(self) -> None:
        for p in self.document.params:
            on = self._active(p)
            for t in p.tensors():
                t.requires_grad_(on)

    def parameters(self) -> Dict[str, List[Tensor]]:
        """Leaf tensors being optimised, grouped by kind (kinds with none are left out).

        ``points``: path control points ``(P, 2)``, circle ``center`` ``(2,)`` and ``r``, ellipse
        ``center``/``radii``, rect ``xy``/``size``/``radii``, line and poly ``points``;
        ``fill``/``stroke``: solid RGBA ``(4,)`` or gradient stop colours ``(K, 4)``;
        ``stroke_width``: scalars in user units; ``opacity``: element and group opacities.
        """
        out: Dict[str, List[Tensor]] = {}
        seen = set()
        for p in self.document.params:
            if not self._active(p):
                continue
            for t in p.tensors():
                if id(t) not in seen:
                    seen.add(id(t))
                    out.setdefault(p.kind, []).append(t)
        return {k: out[k] for k in KINDS if k in out}

    def all_parameters(self) -> Dict[str, List[Tensor]]:
        """Every parameter tensor by kind, frozen ones included."""
        out: Dict[str, List[Tensor]] = {}
        for p in self.document.params:
            out.setdefault(p.kind, []).extend(p.tensors())
        return {k: out[k] for k in KINDS if k in out}

    @property
    def learning_rates(self) -> Dict[str, float]:
        """Adam learning rates per kind, geometry scaled from pixels at 512 px to user units."""
        unit = self.document.user_size / 512.0
        return {
            "points": POINTS_LR_PX_AT_512 * unit,
            "fill": COLOR_LR,
            "stroke": COLOR_LR,
            "stroke_width": WIDTH_LR_PX_AT_512 * unit,
            "opacity": OPACITY_LR,
        }

    @torch.no_grad()
    def project(self) -> None:
        """Clamp colours and opacities to ``[0, 1]``, widths, sizes and radii to ``≥ 0``."""
        for p in self.document.params:
            p.project()

    def state_dict(self) -> Dict[str, Tensor]:
        """A copy of every parameter tensor (see :meth:`load_state_dict`)."""
        return {f"{i}.{j}": t.detach().clone()
                for i, p in enumerate(self.document.params) for j, t in enumerate(p.tensors())}

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Restore values saved by :meth:`state_dict` on the same scene."""
        for i, p in enumerate(self.document.params):
            for j, t in enumerate(p.tensors()):
                t.copy_(state[f"{i}.{j}"])

    # ------------------------------------------------------------------------------------------
    # rendering
    # ------------------------------------------------------------------------------------------
    def _paint(self, paint, m: np.ndarray, item: DrawItem, cache: dict):
        if paint is None or isinstance(paint, PatternRef):  # patterns are layers: see _item_nodes
            return None
        if isinstance(paint, ColorParam):
            return SolidPaint(rgba=paint.rgba)
        assert isinstance(paint, GradientRef)
        g = paint.gradient
        stops = g.stops
        colors = stops.colors
        if paint.opacity != 1.0:
            colors = colors * torch.tensor([1.0, 1.0, 1.0, paint.opacity], dtype=colors.dtype, device=colors.device)
        if len(stops.stops) == 1:
            return SolidPaint(rgba=colors[0])
        to_user = g.transform
        if g.units == "objectBoundingBox":
            key = id(item.geometry)
            if key not in cache:
                cache[key] = item.geometry.bbox()
            box = cache[key]
            if box is None or box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
                return None  # SVG: objectBoundingBox units on a zero-area box paint nothing
            to_user = np.array([[box[2] - box[0], 0, box[0]], [0, box[3] - box[1], box[1]], [0, 0, 1.0]]) @ to_user
        with np.errstate(over="ignore", invalid="ignore"):
            full = m @ to_user
            det = np.linalg.det(full[:2, :2])
        if not (np.isfinite(full).all() and np.isfinite(det)):
            return None  # overflowed (a 1e-300 viewBox under a near-singular skew): paint nothing, not NaN
        if abs(det) < 1e-12:
            return SolidPaint(rgba=colors[-1])
        inv = torch.tensor(np.linalg.inv(full), dtype=self.dtype, device=self.device)
        c = g.coords

        def t(*v):
            return torch.tensor(v, dtype=self.dtype, device=self.device)

        if g.kind == "linear":
            if c["x1"] == c["x2"] and c["y1"] == c["y2"]:
                return SolidPaint(rgba=colors[-1])  # SVG: zero-length vector paints the last stop
            return LinearGradientPaint(start=t(c["x1"], c["y1"]), end=t(c["x2"], c["y2"]), offsets=stops.offsets,
                                       colors=colors, pixel_to_gradient=inv, spread=g.spread)
        if c["r"] <= 0:
            return SolidPaint(rgba=colors[-1])
        fr = c.get("fr", 0.0)
        return RadialGradientPaint(center=t(c["cx"], c["cy"]), radius=t(c["r"])[0], focal=t(c["fx"], c["fy"]),
                                   offsets=stops.offsets, colors=colors, pixel_to_gradient=inv, spread=g.spread,
                                   focal_radius=t(min(fr, c["r"]))[0] if fr > 0 else None)

    def draw_groups(self, width: int, height: int) -> List[Node]:
        """The draw list for a ``width × height`` canvas (what :func:`pds.svg.raster.rasterize` takes).

        Painter-ordered :class:`DrawGroup` nodes, with :class:`Layer` nodes wherever the
        document composites a group offscreen (group opacity, clip paths, masks, blend modes,
        clipped nested viewports); a document without any of these gives plain groups only.
        """
        self._canvas_wh = (int(width), int(height))  # filter regions are clipped to the canvas
        return self._nodes(self.items, self.document.canvas_matrix(width, height), False, {})

    def _nodes(self, items: Sequence[DrawItem], k: np.ndarray, clip_mode: bool, cache: dict) -> List[Node]:
        """Nodes of ``items`` (user space → pixels by ``k @ item.ctm``), their layer chains
        turned back into a tree: consecutive items that share a layer instance share its node."""
        root: List[Node] = []
        stack: List[tuple] = []  # (LayerDef, child nodes, items under it)

        def close():
            ld, children, its = stack.pop()
            node = self._layer_node(ld, children, its, k, clip_mode, cache)
            if node is not None:
                (stack[-1][1] if stack else root).append(node)

        for item in items:
            chain = item.layers
            while stack and (len(stack) > len(chain) or chain[len(stack) - 1] is not stack[-1][0]):
                close()
            for ld in chain[len(stack):]:
                stack.append((ld, [], []))
            for entry in stack:
                entry[2].append(item)
            (stack[-1][1] if stack else root).extend(self._item_nodes(item, k, clip_mode, cache))
        while stack:
            close()
        return root

    def _layer_node(self, ld: LayerDef, children: List[Node], items: List[DrawItem], k: np.ndarray,
                    clip_mode: bool, cache: dict) -> Optional[Layer]:
        if not children:
            return None
        if ld.viewport is not None:
            children = [Layer(children, clip=[self._rect_group(ld.viewport, k @ ld.ctm)])]
        clip = self._clip_nodes(ld.clip, ld.ctm, items, k, cache) if ld.clip is not None else None
        if clip_mode:
            return Layer(children, clip=clip)
        mask = self._mask_nodes(ld.mask, ld.ctm, items, k, cache) if ld.mask is not None else None
        opacity = ld.opacity.value if ld.opacity is not None else 1.0
        stages = None
        if ld.filter is not None:
            from .raster.filters import resolve

            box = _bbox(items, ld.ctm)
            w, h = self._canvas_wh
            stages = []
            for fd in ld.filter:
                pf = resolve(fd, box, k @ ld.ctm, w, h)
                if pf is None:  # an empty or invalid filter: the element is not rendered
                    return None
                stages.append(pf)
        return Layer(children, opacity=opacity, clip=clip, mask=mask,
                     mask_type=ld.mask.mask_type if ld.mask is not None else "luminance", blend=ld.blend,
                     filter=stages)

    def _clip_nodes(self, cd: ClipDef, ctm: np.ndarray, items, k, cache) -> List[Node]:
        """A clip path's nodes (white fills) for an element with user space ``ctm``."""
        m = ctm @ cd.transform
        if cd.bbox_units:
            box = _bbox(items, ctm)
            if box is None:
                return []  # CSS Masking §6.1: a zero-area box with bounding-box units clips everything
            m = m @ _box_matrix(box)
        nodes = self._nodes(cd.items, k @ m, True, cache)
        if cd.clip is not None:
            nodes = [Layer(nodes, clip=self._clip_nodes(cd.clip, ctm, items, k, cache))]
        return nodes

    def _mask_nodes(self, md: MaskDef, ctm: np.ndarray, items, k, cache) -> List[Node]:
        """A mask's content nodes, clipped to the mask region."""
        box = _bbox(items, ctm) if (md.region_bbox or md.content_bbox) else None
        if (md.region_bbox or md.content_bbox) and box is None:
            return []
        x, y, w, h = md.region
        if md.region_bbox:
            bw, bh = box[2] - box[0], box[3] - box[1]
            x, y, w, h = box[0] + x * bw, box[1] + y * bh, w * bw, h * bh
        if not (w > 0 and h > 0):
            return []
        cm = ctm @ _box_matrix(box) if md.content_bbox else ctm
        nodes = self._nodes(md.items, k @ cm, False, cache)
        return [Layer(nodes, clip=[self._rect_group((x, y, w, h), k @ ctm)])]

    def _pattern_layer(self, ref: PatternRef, item: DrawItem, k: np.ndarray, shape: List[Node]) -> Optional[Layer]:
        """A pattern paint as a layer: one clipped copy of the tile content per tile over the
        shape's bounding box, clipped to the painted ``shape`` (SVG 1.1 §13.3)."""
        pd = ref.pattern
        box = item.geometry.bbox()
        if box is None:
            return None
        bw, bh = box[2] - box[0], box[3] - box[1]
        x, y, w, h = pd.tile
        if pd.tile_bbox:
            x, y, w, h = box[0] + x * bw, box[1] + y * bh, w * bw, h * bh
        if not (w > 0 and h > 0):
            return None
        if pd.view_box is not None:
            content = view_box_transform(pd.view_box, pd.preserve_aspect_ratio, w, h)
        elif pd.content_bbox:
            content = np.diag([bw, bh, 1.0])
        else:
            content = np.eye(3)
        if abs(np.linalg.det(pd.transform[:2, :2])) < 1e-12:
            return None
        inv = np.linalg.inv(pd.transform)
        # the stroke may paint outside the geometry box: pad by the stroke width
        pad = float(item.stroke_width.value.detach()) if item.stroke_width is not None else 0.0
        corners = np.array([[box[0] - pad, box[1] - pad, 1], [box[2] + pad, box[1] - pad, 1],
                            [box[2] + pad, box[3] + pad, 1], [box[0] - pad, box[3] + pad, 1]]) @ inv.T
        i0, i1 = math.floor((corners[:, 0].min() - x) / w), math.ceil((corners[:, 0].max() - x) / w)
        j0, j1 = math.floor((corners[:, 1].min() - y) / h), math.ceil((corners[:, 1].max() - y) / h)
        if (i1 - i0) * (j1 - j0) > MAX_PATTERN_TILES:
            warnings.warn(SVGFeatureWarning(f"pattern needs more than {MAX_PATTERN_TILES} tiles; not drawn"),
                          stacklevel=2)
            return None
        base = k @ item.ctm @ pd.transform
        tiles: List[Node] = []
        for j in range(j0, j1):
            for i in range(i0, i1):
                tm = base @ np.array([[1.0, 0.0, x + i * w], [0.0, 1.0, y + j * h], [0.0, 0.0, 1.0]])
                nodes = self._nodes(pd.items, tm @ content, False, {})
                if nodes:
                    tiles.append(Layer(nodes, clip=[self._rect_group((0.0, 0.0, w, h), tm)]))
        if not tiles:
            return None
        return Layer(tiles, opacity=ref.opacity, clip=shape)

    def _rect_group(self, rect, m: np.ndarray) -> DrawGroup:
        """An opaque white rectangle ``(x, y, w, h)`` mapped by ``m`` (viewport and mask-region clips)."""
        x, y, w, h = rect
        corners = np.array([[x, y, 1.0], [x + w, y, 1.0], [x + w, y + h, 1.0], [x, y + h, 1.0]]) @ m.T
        pts = torch.tensor(corners[:, :2], dtype=self.dtype, device=self.device)
        sub = Subpath(points=pts, num_control_points=torch.zeros(4, dtype=torch.long), closed=True)
        return DrawGroup(subpaths=[sub], fill=SolidPaint(rgba=self._white()))

    def _white(self) -> Tensor:
        return torch.ones(4, dtype=self.dtype, device=self.device)

    def _image_nodes(self, item: DrawItem, k: np.ndarray) -> List[Node]:
        """An ``<image>``: the picture (pixels, or an SVG document's own nodes) placed by its
        ``preserveAspectRatio``, as a layer clipped to the visible rectangle, faded by its opacity."""
        from .image import placement

        im = item.image
        place, visible = placement(im.size, im.viewport, im.preserve_aspect_ratio)
        if not (visible[2] > 0 and visible[3] > 0):
            return []
        m = k @ item.ctm
        full = m @ place  # intrinsic picture box → canvas pixels
        if abs(np.linalg.det(full[:2, :2])) < 1e-12:
            return []
        if im.document is not None:
            subs = self.__dict__.setdefault("_image_scenes", {})
            sub = subs.get(id(im.document))
            if sub is None:
                sub = subs[id(im.document)] = SVGScene(im.document, dtype=self.dtype, device=self.device).select([])
            sub._canvas_wh = self._canvas_wh
            inner = im.document.canvas_matrix(im.size[0], im.size[1])
            children = sub._nodes(im.document.items, full @ inner, False, {})
        else:
            cache = self.__dict__.setdefault("_image_pixels", {})
            pix = cache.get(id(im.pixels))
            if pix is None:
                rgba = torch.tensor(im.pixels, dtype=self.dtype, device=self.device).permute(2, 0, 1)
                pix = cache[id(im.pixels)] = torch.cat([rgba[:3] * rgba[3:], rgba[3:]], 0)
            children = [ImageNode(pixels=pix, pixel_to_image=np.linalg.inv(full), smooth=im.smooth)]
        if not children:
            return []
        opacity = item.opacities[-1].value if item.opacities else 1.0
        return [Layer(children, opacity=opacity, clip=[self._rect_group(visible, m)])]

    def _item_nodes(self, item: DrawItem, k: np.ndarray, clip_mode: bool, cache: dict) -> List[Node]:
        if item.image is not None:
            return [] if clip_mode else self._image_nodes(item, k)
        m = k @ item.ctm
        a, b = _mat(m, self.dtype, self.device)
        user = item.geometry.subpaths()
        subs = [Subpath(points=_on_canvas(s.points @ a + b), num_control_points=s.num_control_points, closed=s.closed)
                for s in user]
        if not subs:
            return []
        if clip_mode:
            return [DrawGroup(subpaths=subs, fill=SolidPaint(rgba=self._white()), fill_rule=item.clip_rule,
                              source_id=item.index)]
        fill = self._paint(item.fill, m, item, cache)
        stroke = self._paint(item.stroke, m, item, cache)
        fill_pat = item.fill if isinstance(item.fill, PatternRef) else None
        stroke_pat = item.stroke if isinstance(item.stroke, PatternRef) else None
        if fill is None and stroke is None and fill_pat is None and stroke_pat is None:
            return []
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        width_px, stroke_subs, stroke_matrix = zero, None, None
        if item.stroke_width is not None and (stroke is not None or stroke_pat is not None):
            lin = m[:2, :2]
            sv = np.linalg.svd(lin, compute_uv=False)
            similar = sv[0] - sv[1] <= 1e-9 * max(sv[0], 1e-300)
            stroked = user
            if item.dash is not None:
                stroked = dash_subpaths(user, item.dash.array, item.dash.offset, item.dash.path_length)
            if similar:
                width_px = _width_on_canvas(item.stroke_width.value * math.sqrt(abs(float(np.linalg.det(lin)))))
                if item.dash is not None:
                    stroke_subs = [Subpath(points=s.points @ a + b, num_control_points=s.num_control_points,
                                           closed=s.closed) for s in stroked]
            else:
                # SVG strokes in user space: stroke the user-space geometry (scaled by the
                # largest singular value so flattening tolerances stay in pixels), then map
                # the outline by the rest of the transform.
                scale = float(sv[0])
                width_px = _width_on_canvas(item.stroke_width.value * scale)
                stroke_subs = [Subpath(points=s.points * scale, num_control_points=s.num_control_points,
                                       closed=s.closed) for s in stroked]
                mat = np.concatenate([lin / scale, m[:2, 2:3]], 1)
                stroke_matrix = torch.tensor(mat, dtype=self.dtype, device=self.device)
            if item.dash is not None and not stroke_subs:
                stroke = None  # every dash fell outside the path
        opacity = item.opacities[-1].value if item.opacities else torch.ones((), dtype=self.dtype, device=self.device)
        common = dict(fill_rule=item.fill_rule, linecap=item.linecap, linejoin=item.linejoin,
                      miterlimit=item.miterlimit, source_id=item.index, stroke_width=width_px,
                      stroke_matrix=stroke_matrix)
        if fill_pat is not None or stroke_pat is not None:
            white = SolidPaint(rgba=self._white())
            parts: List[Node] = []
            for which in (("stroke", "fill") if item.stroke_first else ("fill", "stroke")):
                if which == "fill" and fill_pat is not None:
                    shape = [DrawGroup(subpaths=subs, fill=white, **common)]
                    parts.append(self._pattern_layer(fill_pat, item, k, shape))
                elif which == "fill" and fill is not None:
                    parts.append(DrawGroup(subpaths=subs, fill=fill, **common))
                elif which == "stroke" and stroke_pat is not None and item.stroke_width is not None:
                    shape = [DrawGroup(subpaths=subs, stroke=white, stroke_subpaths=stroke_subs, **common)]
                    parts.append(self._pattern_layer(stroke_pat, item, k, shape))
                elif which == "stroke" and stroke is not None:
                    parts.append(DrawGroup(subpaths=subs, stroke=stroke, stroke_subpaths=stroke_subs, **common))
            parts = [p for p in parts if p is not None]
            return [Layer(parts, opacity=opacity)] if parts else []
        if item.stroke_first and fill is not None and stroke is not None:
            # stroke below fill; the element's opacity applies to both as one layer
            if float(opacity.detach()) == 1.0:  # nothing to fade: two plain groups (the fast path)
                return [DrawGroup(subpaths=subs, stroke=stroke, stroke_subpaths=stroke_subs, opacity=opacity, **common),
                        DrawGroup(subpaths=subs, fill=fill, opacity=opacity, **common)]
            parts = [DrawGroup(subpaths=subs, stroke=stroke, stroke_subpaths=stroke_subs, **common),
                     DrawGroup(subpaths=subs, fill=fill, **common)]
            return [Layer(parts, opacity=opacity)]
        return [DrawGroup(subpaths=subs, fill=fill, stroke=stroke, stroke_subpaths=stroke_subs, opacity=opacity,
                          **common)]

    def render_rgba(self, size: Optional[int] = None) -> Tensor:
        """Premultiplied RGBA ``(4, H, W)`` over transparent, longer side ``size``."""
        from .raster import rasterize  # deferred so that ``import pds.svg`` stays light

        w, h = self.canvas_size(size)
        return rasterize(self.draw_groups(w, h), w, h, samples=self.samples, device=self.device)

    def render(self, size: Optional[int] = None) -> Tensor:
        """The image ``(3, H, W)`` in ``[0, 1]`` over :attr:`background`, differentiable in every parameter.

        Args:
            size: longer side in pixels (default :attr:`render_size`); the aspect ratio of the
                document is kept.
        """
        from .raster import over_background

        return over_background(self.render_rgba(size), self.background)

    # ------------------------------------------------------------------------------------------
    # writing
    # ------------------------------------------------------------------------------------------
    def to_svg(self) -> str:
        """The input document with optimised attributes rewritten (see :mod:`pds.svg.write`)."""
        from .write import document_to_string

        return document_to_string(self.document)

    def save(self, path: Union[str, PathLike]) -> None:
        """Write :meth:`to_svg` to ``path`` atomically (temporary file + rename)."""
        from .write import atomic_write

        atomic_write(path, self.to_svg())

    def __repr__(self) -> str:
        counts = {k: len(v) for k, v in self.all_parameters().items()}
        return (f"SVGScene({self.width:g}x{self.height:g}, {len(self.items)} shapes, parameters={counts}, "
                f"optimising={list(self._kinds)})")

