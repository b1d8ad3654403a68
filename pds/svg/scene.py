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

from .parse import (
    ColorParam,
    Document,
    DrawItem,
    GradientRef,
    Param,
    SVGError,
    SVGFeatureWarning,
    build_document,
    read_xml,
)
from .shapes import DrawGroup, LinearGradientPaint, RadialGradientPaint, SolidPaint, Subpath

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
        root, namespaces = read_xml(source)
        doc = build_document(root, namespaces, dtype=dtype, device=device)
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
        if paint is None:
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
        full = m @ to_user
        if abs(np.linalg.det(full[:2, :2])) < 1e-12:
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
        return RadialGradientPaint(center=t(c["cx"], c["cy"]), radius=t(c["r"])[0], focal=t(c["fx"], c["fy"]),
                                   offsets=stops.offsets, colors=colors, pixel_to_gradient=inv, spread=g.spread)

    def draw_groups(self, width: int, height: int) -> List[DrawGroup]:
        """The draw list for a ``width × height`` canvas (what :func:`pds.svg.raster.rasterize` takes)."""
        k = self.document.canvas_matrix(width, height)
        groups: List[DrawGroup] = []
        bbox_cache: dict = {}
        one = torch.ones((), dtype=self.dtype, device=self.device)
        for item in self.items:
            m = k @ item.ctm
            a, b = _mat(m, self.dtype, self.device)
            subs = [Subpath(points=s.points @ a + b, num_control_points=s.num_control_points, closed=s.closed)
                    for s in item.geometry.subpaths()]
            if not subs:
                continue
            fill = self._paint(item.fill, m, item, bbox_cache)
            stroke = self._paint(item.stroke, m, item, bbox_cache)
            if fill is None and stroke is None:
                continue
            if item.stroke_width is not None and stroke is not None:
                width_px = item.stroke_width.value * math.sqrt(abs(float(np.linalg.det(m[:2, :2]))))
            else:
                width_px = torch.zeros((), dtype=self.dtype, device=self.device)
            opacity = one
            for p in item.opacities:
                opacity = opacity * p.value
            common = dict(fill_rule=item.fill_rule, linecap=item.linecap, linejoin=item.linejoin,
                          miterlimit=item.miterlimit, opacity=opacity, source_id=item.index)
            if item.stroke_first and fill is not None and stroke is not None:
                groups.append(DrawGroup(subpaths=subs, fill=None, stroke=stroke, stroke_width=width_px, **common))
                groups.append(DrawGroup(subpaths=subs, fill=fill, stroke=None, stroke_width=width_px, **common))
            else:
                groups.append(DrawGroup(subpaths=subs, fill=fill, stroke=stroke, stroke_width=width_px, **common))
        return groups

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

