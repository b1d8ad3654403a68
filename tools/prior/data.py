"""Procedural training data for the embedded prior ``pds-tiny``: pictures, captions, vocabulary.

The domain
==========
Two kinds of 64x64 pictures, each on a plain background (white or one of the palette colours):

* **Flat vector shapes** -- ``circle``, ``square``, ``triangle``, ``star``, ``heart``,
  ``diamond`` -- filled with one flat palette colour, with crisp anti-aliased edges, at a random
  size, position and rotation (within +-30 degrees, so that a square never becomes a diamond).
  They are drawn from exact signed distance functions (SDFs) of the same geometry that
  :func:`write_example_svg` writes as SVG, so a rasterized SVG of the domain looks like the
  training data: coverage of a pixel is ``clamp(0.5 - sdf_in_pixels, 0, 1)``, the box-filtered
  edge of a straight boundary.
* **Shaded 3-D objects seen by a camera** -- ``ball``: a Lambertian sphere with a white
  Blinn-Phong highlight, lit from a random direction. :func:`render_ball_view` renders the same
  ball from an arbitrary camera (for NeRF example scenes).

Captions are ``"a red circle"``, ``"an orange star on a white background"``,
``"a blue ball on a yellow background"`` or, one time in ten, ``"a heart"`` (colour left open).
A white background is implicit: ``"a red circle"`` always means a white background.
:func:`vocabulary` lists every word the tokenizer knows, including the rare identifier tokens
(:data:`IDENTIFIER_TOKENS`), which appear in no training caption and are reserved for
DreamBooth fine-tuning. :data:`HELD_OUT` lists (colour, shape) pairs that never appear in
training, neither as caption nor as picture; they measure compositional generalization.

Everything is batched torch code: :func:`sample_batch` draws random scenes and renders them on
any device (a batch of 256 takes milliseconds on a GPU, well under a second on two CPU cores).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

#: Palette, sRGB in 0..255. Foreground and background colours both come from it.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "orange": (245, 135, 20),
    "yellow": (250, 215, 35),
    "green": (40, 165, 60),
    "blue": (35, 90, 220),
    "purple": (130, 50, 180),
    "pink": (245, 130, 190),
    "brown": (125, 75, 35),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
    "white": (255, 255, 255),
}
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)

#: Flat shapes (SVG-like) and shaded 3-D objects.
FLAT_SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "heart", "diamond")
OBJECTS_3D: tuple[str, ...] = ("ball",)
SHAPES: tuple[str, ...] = FLAT_SHAPES + OBJECTS_3D

#: Rare words in the vocabulary that no training caption uses (DreamBooth identifiers).
IDENTIFIER_TOKENS: tuple[str, ...] = ("sks", "zwx")

#: Function words of the caption grammar.
FUNCTION_WORDS: tuple[str, ...] = ("a", "an", "on", "background")

#: (colour, shape) pairs never shown in training; the quality test samples them.
HELD_OUT: tuple[tuple[str, str], ...] = (
    ("purple", "star"),
    ("orange", "heart"),
    ("green", "triangle"),
    ("pink", "square"),
    ("blue", "diamond"),
    ("brown", "ball"),
)

#: Special tokens of the word-level BERT tokenizer, in vocab.txt order (ids 0..4).
SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

RESOLUTION = 64


def vocabulary() -> list[str]:
    """Every word the ``pds-tiny`` tokenizer knows (lower case), identifier tokens included."""
    return list(FUNCTION_WORDS) + list(COLOR_NAMES) + list(SHAPES) + list(IDENTIFIER_TOKENS)


def color_rgb(name: str) -> tuple[float, float, float]:
    """Palette colour ``name`` as floats in [0, 1]."""
    return tuple(c / 255.0 for c in COLORS[name])  # type: ignore[return-value]


def color_hex(name: str) -> str:
    """Palette colour ``name`` as ``#rrggbb``."""
    return "#%02x%02x%02x" % COLORS[name]


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption(color: Optional[str], shape: str, background: Optional[str] = "white",
            explicit_white: bool = False) -> str:
    """The canonical caption, e.g. ``caption("blue", "star", "yellow")`` ->
    ``"a blue star on a yellow background"``. ``color=None`` leaves the colour open;
    a white background is only spelled out when ``explicit_white``."""
    noun = shape if color is None else f"{color} {shape}"
    text = f"{article(noun)} {noun}"
    if background is not None and (background != "white" or explicit_white):
        text += f" on {article(background)} {background} background"
    return text


# ---------------------------------------------------------------------------------------------
# Shape geometry (canonical frame: unit size, centred at 0, y up)
# ---------------------------------------------------------------------------------------------

CIRCLE_RADIUS = 0.9
HEART_SCALE = 1.72  # the unit heart below spans y in [0, 1.104]; scaled to [-0.95, 0.95]
HEART_SHIFT = 0.552


def _regular(n: int, radius: float, phase_deg: float = 90.0) -> list[tuple[float, float]]:
    return [(radius * math.cos(math.radians(phase_deg + 360.0 * k / n)),
             radius * math.sin(math.radians(phase_deg + 360.0 * k / n))) for k in range(n)]


def _star(outer: float = 1.0, inner: float = 0.45) -> list[tuple[float, float]]:
    pts = []
    for k in range(10):
        r = outer if k % 2 == 0 else inner
        a = math.radians(90.0 + 36.0 * k)
        pts.append((r * math.cos(a), r * math.sin(a) - 0.08))
    return pts


#: Polygon vertices (counter-clockwise, y up) of the polygonal shapes in their unit frame.
POLYGONS: dict[str, list[tuple[float, float]]] = {
    "square": [(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)],
    "triangle": [(x, y - 0.22) for x, y in _regular(3, 1.05)],
    "star": _star(),
    "diamond": [(0.0, -1.0), (0.62, 0.0), (0.0, 1.0), (-0.62, 0.0)],
}


def _sd_polygon(p: Tensor, verts: Sequence[tuple[float, float]]) -> Tensor:
    """Exact signed distance (negative inside) from points ``p (..., 2)`` to the polygon with
    vertices ``verts`` (Inigo Quilez's sdPolygon, vectorized over points)."""
    px, py = p[..., 0].contiguous(), p[..., 1].contiguous()
    d = (px - verts[0][0]) ** 2 + (py - verts[0][1]) ** 2
    inside = torch.zeros_like(px, dtype=torch.bool)
    n = len(verts)
    for i in range(n):
        (xi, yi), (xj, yj) = verts[i], verts[i - 1]
        ex, ey = xj - xi, yj - yi
        wx, wy = px - xi, py - yi
        h = ((wx * ex + wy * ey) * (1.0 / (ex * ex + ey * ey))).clamp_(0.0, 1.0)
        bx, by = wx - h * ex, wy - h * ey
        d = torch.minimum(d, bx * bx + by * by)
        c1 = py >= yi
        c2 = py < yj
        c3 = (ex * wy) > (ey * wx)
        inside ^= (c1 & c2 & c3) | ~(c1 | c2 | c3)
    return torch.where(inside, -d.sqrt(), d.sqrt())


def _sd_heart(p: Tensor) -> Tensor:
    """Signed distance to the unit heart (Quilez): bottom tip at (0, 0), two lobes of radius
    sqrt(2)/4 centred at (+-0.25, 0.75)."""
    x = p[..., 0].abs()
    y = p[..., 1]
    upper = ((x - 0.25) ** 2 + (y - 0.75) ** 2).sqrt() - math.sqrt(2.0) / 4.0
    m = 0.5 * (x + y).clamp(min=0.0)
    lower = torch.minimum(x ** 2 + (y - 1.0) ** 2, (x - m) ** 2 + (y - m) ** 2).sqrt()
    lower = lower * torch.sign(x - y)
    return torch.where(x + y > 1.0, upper, lower)


def shape_sdf(shape: str, p: Tensor) -> Tensor:
    """Signed distance (unit frame) of ``shape`` at points ``p (..., 2)``, negative inside."""
    if shape == "circle" or shape == "ball":
        return p.norm(dim=-1) - CIRCLE_RADIUS
    if shape == "heart":
        q = p / HEART_SCALE + p.new_tensor([0.0, HEART_SHIFT])
        return _sd_heart(q) * HEART_SCALE
    if shape in POLYGONS:
        return _sd_polygon(p, POLYGONS[shape])
    raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


# ---------------------------------------------------------------------------------------------
# Scenes and rendering
# ---------------------------------------------------------------------------------------------


@dataclass
class Scenes:
    """Parameters of a batch of B scenes (all tensors on one device).

    Attributes:
        shape: ``(B,)`` long, index into :data:`SHAPES`.
        color: ``(B,)`` long, index into :data:`COLOR_NAMES` (foreground).
        background: ``(B,)`` long, index into :data:`COLOR_NAMES`.
        fg_rgb, bg_rgb: ``(B, 3)`` actual colours in [0, 1] (palette plus jitter).
        center: ``(B, 2)`` centre in canvas units (0..1, x right, y down).
        scale: ``(B,)`` half-size of the unit frame in canvas units.
        rotation: ``(B,)`` radians, counter-clockwise.
        light: ``(B, 3)`` unit light direction in camera space (x right, y up, z to the viewer).
        ambient, specular, shininess: ``(B,)`` shading of 3-D objects.
    """

    shape: Tensor
    color: Tensor
    background: Tensor
    fg_rgb: Tensor
    bg_rgb: Tensor
    center: Tensor
    scale: Tensor
    rotation: Tensor
    light: Tensor
    ambient: Tensor
    specular: Tensor
    shininess: Tensor

    def __len__(self) -> int:
        return self.shape.shape[0]


def _palette(device) -> Tensor:
    return torch.tensor([COLORS[c] for c in COLOR_NAMES], dtype=torch.float32, device=device) / 255.0


def _held_out_mask(color: Tensor, shape: Tensor) -> Tensor:
    bad = torch.zeros_like(color, dtype=torch.bool)
    for c, s in HELD_OUT:
        bad |= (color == COLOR_NAMES.index(c)) & (shape == SHAPES.index(s))
    return bad


def _free_colours(n: int, generator: torch.Generator, pal: Tensor) -> Tensor:
    """``(n, 3)`` colours anywhere in the RGB cube, in three equal parts: uniform in the cube;
    pale tints (white mixed with a uniform colour at a uniform amount), which the cube's corner
    would leave almost unsampled although every edit of a white page starts there; and a palette
    colour moved by up to 0.25 per channel, the neighbourhoods an edit walks through."""
    def u(*size):
        return torch.rand(*size, generator=generator, device=pal.device)

    kind = u(n)
    cube = u(n, 3)
    tint = 1 - u(n, 1) * (1 - u(n, 3))
    near = (pal[torch.randint(0, pal.shape[0], (n,), generator=generator, device=pal.device)]
            + 0.25 * (2 * u(n, 3) - 1)).clamp(0, 1)
    return torch.where((kind < 1 / 3)[:, None], cube, torch.where((kind < 2 / 3)[:, None], tint, near))


def random_scenes(n: int, generator: torch.Generator, device="cpu", *, include_held_out: bool = False,
                  color_jitter: float = 0.06, p_white_background: float = 0.5,
                  p_ball: float = 0.2, free_color_fraction: float = 0.0) -> Scenes:
    """Draw ``n`` random scenes. Held-out (colour, shape) pairs are redrawn unless
    ``include_held_out``. Random numbers come from ``generator`` (on ``device``).

    ``free_color_fraction`` (default 0, in [0, 1]): the share of scenes, the last ones of the
    batch, whose foreground and background colours are drawn by :func:`_free_colours` (anywhere
    in the RGB cube) instead of from the palette. Their ``color``/``background`` names are then meaningless; the autoencoder
    trains on them so that it represents every colour, not only the palette's (a distillation
    gradient reaches a colour only through the encoder's Jacobian)."""
    g = generator

    def u(*size):
        return torch.rand(*size, generator=g, device=device)

    nflat = len(FLAT_SHAPES)
    white = COLOR_NAMES.index("white")
    shape = torch.where(u(n) < p_ball, torch.full((n,), SHAPES.index("ball"), device=device),
                        torch.randint(0, nflat, (n,), generator=g, device=device))
    bg = torch.where(u(n) < p_white_background, torch.full((n,), white, device=device),
                     torch.randint(0, len(COLOR_NAMES) - 1, (n,), generator=g, device=device))
    color = torch.randint(0, len(COLOR_NAMES), (n,), generator=g, device=device)
    for _ in range(20):  # rejection: fg != bg, and held-out pairs excluded
        bad = color == bg
        if not include_held_out:
            bad |= _held_out_mask(color, shape)
        if not bool(bad.any()):
            break
        color = torch.where(bad, torch.randint(0, len(COLOR_NAMES), (n,), generator=g, device=device), color)
    pal = _palette(device)
    fg_rgb = (pal[color] + color_jitter * (2 * u(n, 3) - 1)).clamp(0, 1)
    bg_rgb = (pal[bg] + 0.5 * color_jitter * (2 * u(n, 3) - 1)).clamp(0, 1)
    n_free = int(round(free_color_fraction * n))
    if n_free:
        fg_rgb[n - n_free:] = _free_colours(n_free, g, pal)
        bg_rgb[n - n_free:] = _free_colours(n_free, g, pal)
    scale = 0.17 + 0.21 * u(n)  # half-size 11..25 px at 64 px
    margin = scale * 1.0 + 0.02
    center = margin[:, None] + (1 - 2 * margin[:, None]) * u(n, 2)
    rotation = torch.where(shape == SHAPES.index("circle"), torch.zeros(n, device=device),
                           (2 * u(n) - 1) * math.radians(30.0))
    light = torch.stack([2 * u(n) - 1, 1.2 * u(n) - 0.2, 1.2 * u(n) - 0.2], -1)
    light = light / light.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    return Scenes(shape=shape, color=color, background=bg, fg_rgb=fg_rgb, bg_rgb=bg_rgb,
                  center=center, scale=scale, rotation=rotation, light=light,
                  ambient=0.25 + 0.2 * u(n), specular=0.3 + 0.5 * u(n), shininess=15 + 45 * u(n))


def _pixel_grid(resolution: int, device) -> Tensor:
    """Pixel centres in canvas units, ``(R, R, 2)`` as (x, y) with y down."""
    c = (torch.arange(resolution, device=device, dtype=torch.float32) + 0.5) / resolution
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([xx, yy], -1)


def shade_sphere(normal: Tensor, view: Tensor, albedo: Tensor, light: Tensor, ambient: Tensor,
                 specular: Tensor, shininess: Tensor) -> Tensor:
    """Lambertian + Blinn-Phong shading. ``normal``/``view`` ``(..., 3)`` unit vectors (view
    points from the surface to the eye); ``albedo`` ``(..., 3)``; ``light`` ``(..., 3)`` unit
    direction towards the light; scalars broadcast as ``(...)``. Returns RGB in [0, 1]."""
    ndl = (normal * light).sum(-1).clamp(min=0.0)
    half = light + view
    half = half / half.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    ndh = (normal * half).sum(-1).clamp(min=0.0)
    diffuse = albedo * (ambient + (1.0 - ambient) * ndl)[..., None]
    spec = (specular * ndh.pow(shininess) * (ndl > 0))[..., None]
    return (diffuse + spec).clamp(0.0, 1.0)


def render_scenes(scenes: Scenes, resolution: int = RESOLUTION) -> Tensor:
    """Render ``scenes`` to ``(B, 3, R, R)`` images in [0, 1]."""
    device = scenes.shape.device
    n = len(scenes)
    grid = _pixel_grid(resolution, device)  # (R, R, 2)
    # canvas -> unit frame: translate, flip y (unit frame is y up), rotate by -rotation, scale
    d = grid[None] - scenes.center[:, None, None, :]
    d = torch.stack([d[..., 0], -d[..., 1]], -1)
    cos, sin = scenes.rotation.cos()[:, None, None], scenes.rotation.sin()[:, None, None]
    local = torch.stack([cos * d[..., 0] + sin * d[..., 1], -sin * d[..., 0] + cos * d[..., 1]], -1)
    local = local / scenes.scale[:, None, None, None]
    sdf = torch.empty(n, resolution, resolution, device=device)
    for k, name in enumerate(SHAPES):
        idx = (scenes.shape == k).nonzero().squeeze(1)
        if idx.numel():
            sdf[idx] = shape_sdf(name, local[idx])
    px = sdf * scenes.scale[:, None, None] * resolution  # distance in pixels
    alpha = (0.5 - px).clamp(0.0, 1.0)[:, None]
    fg = scenes.fg_rgb[:, :, None, None].expand(n, 3, resolution, resolution).clone()
    balls = (scenes.shape == SHAPES.index("ball")).nonzero().squeeze(1)
    if balls.numel():
        q = local[balls] / CIRCLE_RADIUS
        z = (1.0 - (q ** 2).sum(-1)).clamp(min=0.0).sqrt()
        normal = torch.cat([q, z[..., None]], -1)
        normal = normal / normal.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        # the light is given in camera space; the normal is in the (rotated) unit frame, and a
        # sphere is rotation invariant, so rotate the light into that frame instead
        rl = scenes.light[balls]
        c, s = scenes.rotation[balls].cos(), scenes.rotation[balls].sin()
        light = torch.stack([c * rl[:, 0] + s * rl[:, 1], -s * rl[:, 0] + c * rl[:, 1], rl[:, 2]], -1)
        view = torch.zeros_like(normal)
        view[..., 2] = 1.0
        shaded = shade_sphere(normal, view, scenes.fg_rgb[balls][:, None, None, :],
                              light[:, None, None, :], scenes.ambient[balls][:, None, None],
                              scenes.specular[balls][:, None, None], scenes.shininess[balls][:, None, None])
        fg[balls] = shaded.permute(0, 3, 1, 2)
    bg = scenes.bg_rgb[:, :, None, None]
    return alpha * fg + (1 - alpha) * bg


def scene_captions(scenes: Scenes, generator: Optional[torch.Generator] = None, *,
                   p_no_color: float = 0.1, p_explicit_white: float = 0.4) -> list[str]:
    """Captions for ``scenes``; random choices (colour omitted, white background spelled out)
    come from a CPU ``generator``."""
    n = len(scenes)
    r = torch.rand(n, 2, generator=generator)
    shapes = scenes.shape.tolist()
    colors = scenes.color.tolist()
    bgs = scenes.background.tolist()
    out = []
    for i in range(n):
        col = None if r[i, 0] < p_no_color else COLOR_NAMES[colors[i]]
        out.append(caption(col, SHAPES[shapes[i]], COLOR_NAMES[bgs[i]], explicit_white=bool(r[i, 1] < p_explicit_white)))
    return out


def sample_batch(n: int, generator: torch.Generator, device="cpu", *, cpu_generator: Optional[torch.Generator] = None,
                 resolution: int = RESOLUTION, **kwargs) -> tuple[Tensor, list[str], Scenes]:
    """Draw ``n`` training pairs: images ``(n, 3, R, R)`` in [0, 1], captions, scene parameters."""
    scenes = random_scenes(n, generator, device, **kwargs)
    return render_scenes(scenes, resolution), scene_captions(scenes, cpu_generator), scenes


def make_scenes(shape: Sequence[str], color: Sequence[str], background: Sequence[str], *,
                center=None, scale=None, rotation=None, light=None, device="cpu") -> Scenes:
    """Scenes with given names and default (centred, medium, upright, lit from upper left)
    geometry; keyword tensors override."""
    n = len(shape)
    pal = _palette(device)
    ci = torch.tensor([COLOR_NAMES.index(c) for c in color], device=device)
    bi = torch.tensor([COLOR_NAMES.index(c) for c in background], device=device)
    si = torch.tensor([SHAPES.index(s) for s in shape], device=device)
    lt = torch.tensor([-0.45, 0.55, 0.7], device=device)
    return Scenes(shape=si, color=ci, background=bi, fg_rgb=pal[ci], bg_rgb=pal[bi],
                  center=torch.full((n, 2), 0.5, device=device) if center is None else torch.as_tensor(center, device=device, dtype=torch.float32),
                  scale=torch.full((n,), 0.3, device=device) if scale is None else torch.as_tensor(scale, device=device, dtype=torch.float32),
                  rotation=torch.zeros(n, device=device) if rotation is None else torch.as_tensor(rotation, device=device, dtype=torch.float32),
                  light=(lt / lt.norm()).expand(n, 3).clone() if light is None else torch.as_tensor(light, device=device, dtype=torch.float32),
                  ambient=torch.full((n,), 0.35, device=device), specular=torch.full((n,), 0.5, device=device),
                  shininess=torch.full((n,), 30.0, device=device))


def render(shape: str, color: str, background: str = "white", resolution: int = RESOLUTION, **kwargs) -> Tensor:
    """Render one canonical picture ``(3, R, R)`` in [0, 1], e.g. ``render("star", "red")``."""
    return render_scenes(make_scenes([shape], [color], [background], **kwargs), resolution)[0]


# ---------------------------------------------------------------------------------------------
# A ball seen from a camera (for NeRF example scenes)
# ---------------------------------------------------------------------------------------------


def orbit_camera(azimuth_deg: float, elevation_deg: float, distance: float = 4.0) -> Tensor:
    """Camera-to-world ``(4, 4)`` matrix (OpenGL/nerfstudio convention: camera looks along -z,
    y up) on a sphere of radius ``distance`` around the origin, looking at the origin; world z is
    up."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    eye = torch.tensor([distance * math.cos(el) * math.cos(az), distance * math.cos(el) * math.sin(az),
                        distance * math.sin(el)])
    forward = -eye / eye.norm()
    up = torch.tensor([0.0, 0.0, 1.0])
    right = torch.linalg.cross(forward, up)
    if right.norm() < 1e-6:
        right = torch.tensor([1.0, 0.0, 0.0])
    right = right / right.norm()
    true_up = torch.linalg.cross(right, forward)
    c2w = torch.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, true_up, -forward, eye
    return c2w


def render_ball_view(camera_to_world: Tensor, color: Union[str, Sequence[float]] = "red",
                     background: Union[str, Sequence[float]] = "white", *, resolution: int = RESOLUTION,
                     focal: Optional[float] = None, radius: float = 1.0,
                     light_dir: Sequence[float] = (0.3, -0.5, 0.8), ambient: float = 0.35,
                     specular: float = 0.5, shininess: float = 30.0,
                     return_alpha: bool = False) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """Ray-trace a shaded ball of ``radius`` at the world origin, lit by a directional light
    fixed in the world (``light_dir`` points towards the light), from a pinhole camera
    (``camera_to_world`` as from :func:`orbit_camera`; ``focal`` in pixels, default a 40 degree
    field of view). Returns ``(3, R, R)`` in [0, 1] (and the ``(1, R, R)`` coverage if
    ``return_alpha``). The shading model is the training data's, so the prior knows the look."""
    c2w = torch.as_tensor(camera_to_world, dtype=torch.float32)
    if focal is None:
        focal = 0.5 * resolution / math.tan(math.radians(20.0))
    albedo = torch.tensor(color_rgb(color) if isinstance(color, str) else color, dtype=torch.float32)
    bg = torch.tensor(color_rgb(background) if isinstance(background, str) else background, dtype=torch.float32)
    ss = 4  # 4x4 supersampling gives the anti-aliased edge
    c = (torch.arange(resolution * ss, dtype=torch.float32) + 0.5) / ss
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    dirs = torch.stack([(xx - resolution / 2) / focal, -(yy - resolution / 2) / focal, -torch.ones_like(xx)], -1)
    dirs = dirs @ c2w[:3, :3].T
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    o = c2w[:3, 3]
    b = (dirs * o).sum(-1)
    disc = b ** 2 - (o @ o - radius ** 2)
    hit = disc > 0
    t = -b - disc.clamp(min=0).sqrt()
    pts = o + t[..., None] * dirs
    normal = pts / radius
    light = torch.tensor(light_dir, dtype=torch.float32)
    light = light / light.norm()
    rgb = shade_sphere(normal, -dirs, albedo, light, torch.tensor(ambient), torch.tensor(specular),
                       torch.tensor(shininess))
    rgb = torch.where(hit[..., None], rgb, bg)
    img = rgb.permute(2, 0, 1).reshape(3, resolution, ss, resolution, ss).mean((2, 4))
    alpha = hit.float().reshape(resolution, ss, resolution, ss).mean((1, 3))[None]
    return (img, alpha) if return_alpha else img


# ---------------------------------------------------------------------------------------------
# SVG export
# ---------------------------------------------------------------------------------------------


def shape_svg_element(shape: str, color: str, *, center=(0.5, 0.5), scale: float = 0.3, rotation_deg: float = 0.0,
                      size: float = 64.0) -> str:
    """One SVG element (``<circle>`` or ``<path>``) drawing ``shape`` exactly as the training
    renderer does, in a ``0 0 size size`` canvas (``center``/``scale`` in canvas units)."""
    if shape not in FLAT_SHAPES:
        raise ValueError(f"{shape!r} is not a flat shape; SVG export knows {', '.join(FLAT_SHAPES)}")
    fill = color_hex(color)
    cx, cy = center[0] * size, center[1] * size
    s = scale * size
    a = math.radians(rotation_deg)

    def tf(x: float, y: float) -> tuple[float, float]:  # unit frame (y up) -> canvas (y down)
        xr, yr = math.cos(a) * x - math.sin(a) * y, math.sin(a) * x + math.cos(a) * y
        return cx + s * xr, cy - s * yr

    def fmt(v: float) -> str:
        return f"{v:.3f}".rstrip("0").rstrip(".")

    if shape == "circle":
        return f'<circle cx="{fmt(cx)}" cy="{fmt(cy)}" r="{fmt(CIRCLE_RADIUS * s)}" fill="{fill}"/>'
    if shape == "heart":
        # unit heart: tip (0,0) -> (0.5,0.5) -> semicircle to (0,1) -> semicircle to (-0.5,0.5) -> tip
        def h(x, y):
            return tf((x) * HEART_SCALE, (y - HEART_SHIFT) * HEART_SCALE)
        r = math.sqrt(2.0) / 4.0 * HEART_SCALE * s
        p0, p1, p2, p3 = h(0, 0), h(0.5, 0.5), h(0, 1), h(-0.5, 0.5)
        # in canvas (y down) the outline runs p0 -> p1 -> p2 -> p3 clockwise-on-screen; arcs bulge outwards
        d = (f"M {fmt(p0[0])} {fmt(p0[1])} L {fmt(p1[0])} {fmt(p1[1])} "
             f"A {fmt(r)} {fmt(r)} 0 0 0 {fmt(p2[0])} {fmt(p2[1])} "
             f"A {fmt(r)} {fmt(r)} 0 0 0 {fmt(p3[0])} {fmt(p3[1])} Z")
        return f'<path d="{d}" fill="{fill}"/>'
    pts = [tf(x, y) for x, y in POLYGONS[shape]]
    d = "M " + " L ".join(f"{fmt(x)} {fmt(y)}" for x, y in pts) + " Z"
    return f'<path d="{d}" fill="{fill}"/>'


def example_svg(shape: str, color: str, background: str = "white", *, size: int = 64, center=(0.5, 0.5),
                scale: float = 0.3, rotation_deg: float = 0.0) -> str:
    """A clean SVG document: a background ``<rect>`` and one shape element, viewBox
    ``0 0 size size``."""
    bg = f'<rect x="0" y="0" width="{size}" height="{size}" fill="{color_hex(background)}"/>'
    el = shape_svg_element(shape, color, center=center, scale=scale, rotation_deg=rotation_deg, size=size)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}">\n'
            f"  {bg}\n  {el}\n</svg>\n")


def write_example_svg(shape: str, color: str, background: str = "white", path: Union[str, Path] = "example.svg",
                      **kwargs) -> Path:
    """Write :func:`example_svg` to ``path`` and return it, e.g.
    ``write_example_svg("star", "red", "white", "examples/red_star.svg")``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(example_svg(shape, color, background, **kwargs))
    return path
