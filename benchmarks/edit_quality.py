"""Edit-quality benchmark: PDS vs SDS vs DDS on SVG edits with the embedded prior.

Every edit starts from an SVG in ``examples/benchmark/`` (written by :func:`build_examples`),
runs each method with the same steps, seed and learning rates, writes the edited SVG, and
measures from the *written file* (re-rendered with cairosvg, so nothing of the optimiser's
state leaks into the score):

* **target**: the attribute the prompt asks for is there, judged by the embedded probe
  (``tools.prior.probe``, a small CNN trained on the prior's procedural domain):
  foreground colour for colour edits, shape for shape edits, background colour for background
  edits;
* **identity**: what the prompt does not mention is kept — silhouette IoU with the source for
  colour, background and element edits, 1 − foreground colour error (mean |ΔRGB|, 0–1) for shape
  edits; silhouettes are segmented against each picture's own border colour;
* **untouched Δ**: mean |ΔRGB| of the region the prompt does not mention — the background for
  colour, shape and element edits, the foreground for background edits;
* **seconds** per edit.

Usage::

    python benchmarks/edit_quality.py                    # full run, writes benchmarks/results/edit_quality.{md,png,json}
    python benchmarks/edit_quality.py --limit 3 --steps 50   # smoke run
    python benchmarks/edit_quality.py --methods pds,sds,dds,pds@300   # plus a PDS column at guidance 300
    # two processes of one thread each, then the report:
    OMP_NUM_THREADS=1 python benchmarks/edit_quality.py --shard 0/2 & OMP_NUM_THREADS=1 python benchmarks/edit_quality.py --shard 1/2; wait
    python benchmarks/edit_quality.py --shard 0/2 --merge
    # a slice with one setting changed (what benchmarks/results/edit_quality_rounds/ measured)
    python benchmarks/edit_quality.py --methods pds --seeds 0 --edits color_orange_triangle_white --set 't_range=[0.3,0.98]'

"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))  # the repository root: tools/ is not installed

import argparse
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import pds.methods
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "benchmark"
RESULTS = ROOT / "benchmarks" / "results"
METHODS = pds.methods.names()


@dataclass(frozen=True)
class Edit:
    """One benchmark edit: source and target attributes; ``kind`` picks the metrics."""

    kind: str  # "color" | "shape" | "background" | "element"
    shape: str
    color: str
    background: str
    tgt_shape: str
    tgt_color: str
    tgt_background: str

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.color}_{self.shape}_{self.background}"


def edits() -> list[Edit]:
    """24 edits: 8 colour, 8 shape, 4 background, 4 one-element-of-several."""
    out = []
    for shape, src, tgt in [("circle", "red", "blue"), ("star", "blue", "yellow"), ("square", "green", "purple"),
                            ("heart", "yellow", "red"), ("triangle", "orange", "blue"), ("diamond", "purple", "orange"),
                            ("circle", "pink", "black"), ("star", "gray", "pink")]:
        out.append(Edit("color", shape, src, "white", shape, tgt, "white"))
    for color, src, tgt in [("red", "circle", "square"), ("blue", "square", "circle"), ("yellow", "star", "circle"),
                            ("green", "circle", "star"), ("purple", "square", "diamond"), ("orange", "circle", "triangle"),
                            ("black", "triangle", "square"), ("red", "diamond", "circle")]:
        out.append(Edit("shape", src, color, "white", tgt, color, "white"))
    for shape, color, bg in [("circle", "red", "yellow"), ("star", "blue", "pink"), ("square", "green", "gray"),
                             ("heart", "purple", "orange")]:
        out.append(Edit("background", shape, color, "white", shape, color, bg))
    for shape, src, tgt, bg in [("circle", "red", "green", "yellow"), ("star", "yellow", "red", "blue"),
                                ("square", "blue", "orange", "gray"), ("heart", "pink", "purple", "green")]:
        out.append(Edit("element", shape, src, bg, shape, tgt, bg))
    return out


def outline_path(shape: str, center=(32.0, 32.0), scale: float = 19.0, samples: int = 24) -> str:
    """Path data drawing ``shape`` with ``samples`` cubic segments (so points can move freely).

    Straight edges become cubics with control points at 1/3 and 2/3, circles exact-ish arcs:
    every shape has the same number of movable points, so a circle can become a square and back.
    """
    from tools.prior import data

    if shape == "circle":
        r = data.CIRCLE_RADIUS * scale
        pts = [(center[0] + r * math.cos(2 * math.pi * i / samples), center[1] + r * math.sin(2 * math.pi * i / samples))
               for i in range(samples)]
        k = 4 / 3 * math.tan(math.pi / (2 * samples)) * r  # cubic handle length for an arc of 2π/samples
        d = [f"M {pts[0][0]:.3f} {pts[0][1]:.3f}"]
        for i in range(samples):
            a0, a1 = 2 * math.pi * i / samples, 2 * math.pi * (i + 1) / samples
            p0, p3 = pts[i], pts[(i + 1) % samples]
            c1 = (p0[0] - k * math.sin(a0), p0[1] + k * math.cos(a0))
            c2 = (p3[0] + k * math.sin(a1), p3[1] - k * math.cos(a1))
            d.append(f"C {c1[0]:.3f} {c1[1]:.3f} {c2[0]:.3f} {c2[1]:.3f} {p3[0]:.3f} {p3[1]:.3f}")
        return " ".join(d) + " Z"
    poly = [(center[0] + scale * x, center[1] - scale * y) for x, y in unit_outline(shape)]
    # Resample the polygon's perimeter into `samples` straight pieces, corners kept.
    per = [math.dist(poly[i], poly[(i + 1) % len(poly)]) for i in range(len(poly))]
    counts = [max(1, round(samples * p / sum(per))) for p in per]
    pts = []
    for i, n in enumerate(counts):
        a, b = poly[i], poly[(i + 1) % len(poly)]
        pts += [(a[0] + (b[0] - a[0]) * j / n, a[1] + (b[1] - a[1]) * j / n) for j in range(n)]
    d = [f"M {pts[0][0]:.3f} {pts[0][1]:.3f}"]
    for i in range(len(pts)):
        p0, p3 = pts[i], pts[(i + 1) % len(pts)]
        c1 = (p0[0] + (p3[0] - p0[0]) / 3, p0[1] + (p3[1] - p0[1]) / 3)
        c2 = (p0[0] + 2 * (p3[0] - p0[0]) / 3, p0[1] + 2 * (p3[1] - p0[1]) / 3)
        d.append(f"C {c1[0]:.3f} {c1[1]:.3f} {c2[0]:.3f} {c2[1]:.3f} {p3[0]:.3f} {p3[1]:.3f}")
    return " ".join(d) + " Z"


def unit_outline(shape: str) -> list[tuple[float, float]]:
    """Outline polygon of a flat shape in the training renderer's unit frame (y up)."""
    from tools.prior import data

    if shape in data.POLYGONS:
        return list(data.POLYGONS[shape])
    if shape != "heart":
        raise ValueError(f"no outline for {shape!r}")
    # The training heart: tip (0,0) -> (0.5,0.5) -> semicircle to (0,1) -> semicircle to (-0.5,0.5) -> tip,
    # scaled by HEART_SCALE about a shift of HEART_SHIFT (see data.shape_svg_element).
    r = math.sqrt(2) / 4
    pts = [(0.0, 0.0)]
    for cx, cy, a0 in ((0.25, 0.75, -math.pi / 4), (-0.25, 0.75, math.pi / 4)):
        pts += [(cx + r * math.cos(a0 + math.pi * k / 8), cy + r * math.sin(a0 + math.pi * k / 8)) for k in range(9)]
    return [(x * data.HEART_SCALE, (y - data.HEART_SHIFT) * data.HEART_SCALE) for x, y in pts[:-1]]


def source_svg(edit: Edit) -> str:
    from tools.prior import data

    return ('<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 64 64">\n'
            f'  <rect id="background" x="0" y="0" width="64" height="64" fill="{data.color_hex(edit.background)}"/>\n'
            f'  <path id="shape" d="{outline_path(edit.shape)}" fill="{data.color_hex(edit.color)}"/>\n'
            "</svg>\n")


def build_examples() -> list[tuple[Edit, Path]]:
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    out = []
    for e in edits():
        p = EXAMPLES / f"{e.name}.svg"
        text = source_svg(e)
        if not p.exists() or p.read_text() != text:
            p.write_text(text)
        out.append((e, p))
    return out


def render_file(path: Path, size: int = 64) -> np.ndarray:
    """cairosvg render of a written SVG over white: ``(size, size, 3)`` float in [0, 1]."""
    import cairosvg

    png = cairosvg.svg2png(url=str(path), output_width=size, output_height=size, background_color="white")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32) / 255.0


def border_colour(img: np.ndarray) -> np.ndarray:
    """The picture's own background colour: the median of its 1-pixel border, ``(3,)`` in [0, 1].

    Measured rather than assumed, so a background that drifted (a tint the prompt did not ask for)
    does not turn the whole canvas into "foreground" and wreck the silhouette; the drift itself
    is reported separately as the untouched change."""
    border = np.concatenate([img[0], img[-1], img[1:-1, 0], img[1:-1, -1]])
    return np.median(border, axis=0)


def foreground(img: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: pixels whose colour differs from the border colour by > 0.25 in some channel."""
    return np.abs(img - border_colour(img)).max(-1) > 0.25


def covered(img: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: pixels at least half covered by the picture's ink, for a picture of one
    foreground colour on its page. A pixel's coverage is its position on the line from the
    border colour to the ink colour (the median of :func:`foreground`'s pixels): an antialiased
    edge pixel ``p·ink + (1 - p)·page`` has coverage ``p`` whatever the two colours are. A
    threshold on the colour difference instead moves the edge with the contrast: the same heart
    measures bigger on a saturated page than on a paler one."""
    page = border_colour(img)
    seed = foreground(img)
    if not seed.any():
        return seed
    ink = np.median(img[seed], axis=0) - page
    p = ((img - page) @ ink) / max(float(ink @ ink), 1e-12)
    return p > 0.5


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def _oklab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] ``(..., 3)`` -> OKLab (Ottosson 2020) ``(..., 3)``: a perceptual space whose
    hues stay put where CIELAB's bend (CIELAB puts a saturated blue nearer to purple than blue)."""
    c = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    lms = c @ np.array([[0.4122214708, 0.5363325363, 0.0514459929], [0.2119034982, 0.6806995451, 0.1073969566],
                        [0.0883024619, 0.2817188376, 0.6299787005]]).T
    return np.cbrt(lms) @ np.array([[0.2104542553, 0.7936177850, -0.0040720468],
                                    [1.9779984951, -2.4285922050, 0.4505937099],
                                    [0.0259040371, 0.7827717662, -0.8086757660]]).T


#: Below this OKLab chroma, or this lightness, a colour is named by lightness alone (white, gray,
#: black): a near-black purple reads as black.
ACHROMATIC_CHROMA = 0.04
ACHROMATIC_LIGHTNESS = 0.3


def nearest_palette_colour(rgb) -> str:
    """The prior's palette colour (``tools.prior.data.COLORS``) that names ``rgb`` ``(3,)`` in
    [0, 1], as a person would: a colour with OKLab chroma below :data:`ACHROMATIC_CHROMA` (or
    lightness below :data:`ACHROMATIC_LIGHTNESS`) is the nearest of the palette's achromatic
    colours; any other is the nearest chromatic
    one by OKLab distance with lightness at half weight (a light blue is still blue, not gray).
    The probe must call every picture one of the palette's names; this is a second opinion."""
    from tools.prior import data

    names = list(data.COLORS)
    lab = _oklab(np.asarray([data.color_rgb(n) for n in names], dtype=np.float64))
    x = _oklab(np.asarray(rgb, dtype=np.float64))
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    grey = chroma < ACHROMATIC_CHROMA
    pool = grey if np.hypot(x[1], x[2]) < ACHROMATIC_CHROMA or x[0] < ACHROMATIC_LIGHTNESS else ~grey
    d = np.sqrt((0.5 * (lab[:, 0] - x[0])) ** 2 + (lab[:, 1] - x[1]) ** 2 + (lab[:, 2] - x[2]) ** 2)
    d[~pool] = np.inf
    return names[int(np.argmin(d))]


def judge(probe, img: np.ndarray) -> dict:
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    return probe.judge(x)[0]


def score(edit: Edit, src_img: np.ndarray, out_img: np.ndarray, probe) -> dict:
    """Target success, identity and untouched change of one written edit (both images ``(H, W, 3)``).

    * colour / background / element edits: identity = silhouette IoU with the source
      (:func:`foreground`; background edits by coverage, :func:`covered`, since their page
      changes colour and a colour-difference threshold would measure its contrast);
    * shape edits: identity = 1 - mean |RGB error| of the foreground against the source colour;
    * target: the probe sees the asked attribute and, for colours (the element's, or the
      background's), the measured colour's nearest palette colour (:func:`nearest_palette_colour`)
      is the asked one too;
    * untouched change (mean |RGB change|, 0-1) of what the prompt does not mention: the
      background (outside both silhouettes) for colour, shape and element edits, the foreground
      (inside both silhouettes) for background edits.
    """
    from tools.prior import data

    j = judge(probe, out_img)
    src_fg = foreground(src_img)
    out_fg = foreground(out_img)
    row = {"judged": j, "out_background": [round(float(v), 3) for v in border_colour(out_img)]}
    if edit.kind in ("color", "element"):
        row["identity"] = iou(src_fg, out_fg)
        row["identity_metric"] = "silhouette IoU"
    elif edit.kind == "background":
        row["identity"] = iou(covered(src_img), covered(out_img))
        row["identity_metric"] = "silhouette IoU"
    else:
        mean_col = out_img[out_fg].mean(0) if out_fg.any() else border_colour(out_img)
        row["identity"] = 1.0 - float(np.abs(mean_col - np.asarray(data.color_rgb(edit.color))).mean())
        row["identity_metric"] = "1 - fg colour error"
    attribute = {"color": ("color", edit.tgt_color), "element": ("color", edit.tgt_color),
                 "shape": ("shape", edit.tgt_shape), "background": ("background", edit.tgt_background)}[edit.kind]
    row["probe_target"] = float(j[attribute[0]] == attribute[1])
    if attribute[0] == "color":  # the edited element's colour: where it is now, else where it was
        region = out_fg if out_fg.sum() >= 0.5 * src_fg.sum() and out_fg.any() else src_fg
        measured = out_img[region].mean(0) if region.any() else border_colour(out_img)
    elif attribute[0] == "background":
        measured = border_colour(out_img)
    if attribute[0] in ("color", "background"):
        row["nearest_colour"] = nearest_palette_colour(measured)
        row["measured_colour"] = "#%02x%02x%02x" % tuple(int(round(float(v) * 255)) for v in np.clip(measured, 0, 1))
        # success needs both: the probe's verdict and a colour nearest the asked one
        row["target"] = float(row["probe_target"] and row["nearest_colour"] == attribute[1])
    else:
        row["target"] = row["probe_target"]
    region = (src_fg & out_fg) if edit.kind == "background" else ~(src_fg | out_fg)
    row["untouched_change"] = float(np.abs(out_img - src_img)[region].mean()) if region.any() else 1.0
    row["untouched_region"] = "foreground" if edit.kind == "background" else "background"
    return row


def parse_method(spec: str, guidance: float | None) -> tuple[str, float | None]:
    """``"pds"`` -> ``("pds", guidance)``; ``"pds@300"`` -> ``("pds", 300.0)`` (a column with its own
    classifier-free guidance scale, for studying the guidance / identity trade-off)."""
    name, _, w = spec.partition("@")
    if name not in METHODS:
        raise SystemExit(f"unknown method {name!r} in --methods; use {', '.join(METHODS)}, optionally with @<guidance>")
    return name, (float(w) if w else guidance)


def parse_override(text: str) -> tuple[str, object]:
    """``--set key=value``: a field of :class:`pds.svg.editing.EditSettings` and a JSON value
    (``t_range=[0.3,0.98]``, ``guidance_scale=50``, ``measured_rates={"points":0.4,"fill":0.02}``)."""
    from dataclasses import fields

    from pds.svg.editing import EditSettings

    key, sep, value = text.partition("=")
    names = [f.name for f in fields(EditSettings)]
    if not sep or key not in names:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY one of {', '.join(names)}, got {text!r}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"--set {key}: {value!r} is not a JSON value") from None
    return key, tuple(parsed) if isinstance(parsed, list) else parsed


def run_edit(path: Path, edit: Edit, spec: str, prior, steps: int | None, seed: int, guidance: float | None,
             out_dir: Path, background: str = "auto", overrides=()) -> tuple[Path, float]:
    """Run one edit with method ``spec`` (see :func:`parse_method`) exactly as ``pds-svg edit`` does at
    its defaults (:func:`pds.svg.editing.edit_scene`: the prior's measured edit settings, default
    ``--optimize points,fill,stroke``, ``--background`` ``background``), with ``overrides``
    (``(field, value)`` pairs, :func:`parse_override`) replacing resolved settings; returns the
    written SVG and seconds."""
    import dataclasses

    from pds.svg import SVGScene
    from pds.svg.editing import edit_scene, resolve_settings
    from tools.prior import data

    method, guidance = parse_method(spec, guidance)
    kinds = ("points", "fill", "stroke")
    scene = SVGScene.load(path, optimize=list(kinds))
    scene.render_size = prior.resolution
    src = data.caption(edit.color, edit.shape, edit.background)
    tgt = data.caption(edit.tgt_color, edit.tgt_shape, edit.tgt_background)
    settings = resolve_settings(prior, method=method, steps=steps, guidance=guidance, kinds=kinds, seed=seed,
                                prompts=(src, tgt), background=background)
    settings = dataclasses.replace(settings, **dict(overrides))
    start = time.perf_counter()
    edit_scene(scene, prior, src, tgt, settings, progress=False)
    seconds = time.perf_counter() - start
    out = out_dir / f"{edit.name}_{spec.replace('@', '_w')}_s{seed}.svg"
    scene.save(out)
    return out, seconds


def grid(rows: list[list[np.ndarray]], cell: int = 96) -> Image.Image:
    h = len(rows)
    w = max(len(r) for r in rows)
    canvas = Image.new("RGB", (w * cell, h * cell), "white")
    for i, r in enumerate(rows):
        for j, img in enumerate(r):
            tile = Image.fromarray((img * 255).round().astype(np.uint8)).resize((cell - 4, cell - 4), Image.NEAREST)
            canvas.paste(tile, (j * cell + 2, i * cell + 2))
    return canvas


def _shard(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    try:
        k, n = int(k), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard wants K/N such as 0/2, got {text!r}") from None
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="pds-tiny")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps per edit (default: the CLI default)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds; every edit runs once per seed")
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--limit", type=int, default=None, help="only the first N edits (smoke runs)")
    ap.add_argument("--per-kind", type=int, default=None, help="only the first N edits of each kind")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="comma-separated columns: pds, sds, dds, each optionally @<guidance> (e.g. pds@300)")
    ap.add_argument("--background", choices=("auto", "keep", "free"), default="auto",
                    help="pds-svg edit --background: 'free' optimises the page too, as the reference does")
    ap.add_argument("--set", dest="overrides", type=parse_override, action="append", default=[], metavar="KEY=VALUE",
                    help="replace a resolved edit setting for every run (EditSettings field, JSON value); repeatable")
    ap.add_argument("--edits", default=None, help="comma-separated edit names (see examples/benchmark/); default: all")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--shard", type=_shard, default=(0, 1), metavar="K/N",
                    help="run only every N-th edit starting at K (0-based), e.g. two processes 0/2 and 1/2")
    ap.add_argument("--merge", action="store_true",
                    help="write the report from the shard results in --out (give the same --shard N and selection)")
    ap.add_argument("--partial", action="store_true", help="with --merge: report the runs that finished")
    ap.add_argument("--rescore", action="store_true",
                    help="score the SVGs already in --out again (after a change to the metrics) instead of editing; "
                         "seconds come from the edit_quality.json there")
    args = ap.parse_args()

    import pds
    from tools.prior.probe import load_probe

    torch.set_num_threads(max(1, torch.get_num_threads()))
    prior = pds.load_prior(args.model)
    probe = load_probe()
    steps = args.steps  # None: the prior's edit.steps, as pds-svg edit
    seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    out_dir = Path(args.out)
    svg_dir = out_dir / "edit_quality_svgs"
    svg_dir.mkdir(parents=True, exist_ok=True)
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        parse_method(m, None)
    todo = build_examples()
    if args.edits:
        wanted = [n for n in args.edits.split(",") if n]
        unknown = sorted(set(wanted) - {e.name for e, _ in todo})
        if unknown:
            raise SystemExit(f"--edits: unknown edit(s) {', '.join(unknown)}; see {EXAMPLES}")
        todo = [(e, p) for e, p in todo if e.name in wanted]
    todo = todo[: args.limit]
    if args.per_kind:
        seen: dict[str, int] = {}
        todo = [(e, p) for e, p in todo if seen.setdefault(e.kind, 0) < args.per_kind
                and not seen.__setitem__(e.kind, seen[e.kind] + 1)]
    # seed-major, so that a partial run holds whole seeds of every edit and method
    jobs = [(edit, path, method, seed) for seed in seeds for edit, path in todo for method in methods]
    shard, shards = args.shard
    results = []
    if args.rescore:
        previous = {(r["edit"], r["method"], r["seed"]): r.get("seconds", float("nan"))
                    for r in json.loads((out_dir / "edit_quality.json").read_text())} \
            if (out_dir / "edit_quality.json").is_file() else {}
        for edit, path, method, seed in jobs:
            out = svg_dir / f"{edit.name}_{method.replace('@', '_w')}_s{seed}.svg"
            if not out.is_file():
                raise SystemExit(f"--rescore: {out} is missing; run the edits first")
            r = score(edit, render_file(path), render_file(out), probe)
            r.update(edit=edit.name, kind=edit.kind, method=method, seed=seed,
                     seconds=previous.get((edit.name, method, seed), float("nan")))
            results.append(r)
    elif not args.merge:
        for i, (edit, path, method, seed) in enumerate(jobs):
            if i % shards != shard:
                continue
            src_img = render_file(path)
            out, seconds = run_edit(path, edit, method, prior, steps, seed, args.guidance, svg_dir, args.background,
                                   args.overrides)
            r = score(edit, src_img, render_file(out), probe)
            r.update(edit=edit.name, kind=edit.kind, method=method, seed=seed, seconds=seconds)
            results.append(r)
            print(f"[{i + 1}/{len(jobs)}] {edit.name:32s} {method} seed {seed}: target={r['target']:.0f} "
                  f"identity={r['identity']:.3f} untouched={r['untouched_change']:.3f} {seconds:.1f}s "
                  f"judged={r['judged']}", flush=True)
            if shards > 1:  # a shard keeps its rows on disk as it goes; `--merge` writes the report
                (out_dir / f"edit_quality.shard{shard}of{shards}.json").write_text(json.dumps(results, indent=1, default=str))
        if shards > 1:
            print(f"wrote shard {shard}/{shards}; run again with --merge when every shard is done")
            return
    else:
        for f in sorted(out_dir.glob(f"edit_quality.shard*of{shards}.json")):
            results.extend(json.loads(f.read_text()))
        missing = len(jobs) - len(results)
        if missing and not args.partial:
            raise SystemExit(f"--merge: {missing} of {len(jobs)} edits have no result in {out_dir}; finish every shard "
                             f"or pass --partial")
    title = f"{args.model}, {steps or 'default'} steps, seeds {args.seeds}, --background {args.background}"
    title += "".join(f", {k}={v}" for k, v in args.overrides)
    if len(results) < len(jobs):
        title += f"; PARTIAL: {len(results)} of {len(jobs)} runs"
    report(results, todo, methods, seeds, out_dir, title)


def paired_identity(results: list[dict], methods: list[str]) -> list[str]:
    """Table lines: each method's mean identity over the (edit, seed) runs that *every* method
    got right, per kind. The main table's identity mixes in failures (an edit that did not happen
    keeps its identity best), so this is the comparison at equal target success."""
    if len(methods) < 2:
        return []
    by_run: dict = {}
    for r in results:
        by_run.setdefault((r["kind"], r["edit"], r["seed"]), {})[r["method"]] = r
    lines = ["", "Identity on the runs every method got right (equal target success):", "",
             "| kind | runs | " + " | ".join(m.upper() for m in methods) + " |", "|---|---|" + "---|" * len(methods)]
    for kind in ("color", "shape", "background", "element"):
        both = [rs for (k, _, _), rs in by_run.items()
                if k == kind and all(m in rs and rs[m]["target"] == 1.0 for m in methods)]
        if both:
            lines.append(f"| {kind} | {len(both)} | "
                         + " | ".join(f"{np.mean([rs[m]['identity'] for rs in both]):.3f}" for m in methods) + " |")
    return lines


def report(results: list[dict], todo, methods: list[str], seeds: list[int], out_dir: Path, title: str) -> None:
    """Write ``edit_quality.{md,json,png}`` (table of means per kind and method; grid of the
    first seed's written SVGs: source | one column per method)."""
    lines = [f"# Edit quality: PDS vs SDS vs DDS ({title})", "",
             "| kind | method | edits | target success | identity | identity metric | untouched Δ | s/edit |",
             "|---|---|---|---|---|---|---|---|"]
    for kind in ("color", "shape", "background", "element", "all"):
        for method in methods:
            sel = [r for r in results if r["method"] == method and (kind == "all" or r["kind"] == kind)]
            if not sel:
                continue
            unt = [r["untouched_change"] for r in sel if "untouched_change" in r]
            metric = sel[0]["identity_metric"] if kind != "all" else "mixed"
            lines.append(f"| {kind} | {method.upper()} | {len(sel)} | {np.mean([r['target'] for r in sel]):.2f} | "
                         f"{np.mean([r['identity'] for r in sel]):.3f} | {metric} | "
                         f"{np.mean(unt) if unt else float('nan'):.3f} | {np.mean([r['seconds'] for r in sel]):.1f} |")
    lines += paired_identity(results, methods)
    table = "\n".join(lines)
    print(table)
    (out_dir / "edit_quality.md").write_text(table + f"\n\nMeans over edits and seeds. Grid: edit_quality.png "
                                             f"(seed {seeds[0]}; columns: source | "
                                             + " | ".join(m.upper() for m in methods) + ")\n")
    (out_dir / "edit_quality.json").write_text(json.dumps(results, indent=1, default=str))
    svg_dir = out_dir / "edit_quality_svgs"
    def cell(edit, m):  # a run a partial report lacks is drawn white
        f = svg_dir / f"{edit.name}_{m.replace('@', '_w')}_s{seeds[0]}.svg"
        return render_file(f) if f.is_file() else np.ones((64, 64, 3))

    rows = [[render_file(path)] + [cell(edit, m) for m in methods] for edit, path in todo]
    grid(rows).save(out_dir / "edit_quality.png")
    print(f"wrote {out_dir / 'edit_quality.md'} and edit_quality.png")


if __name__ == "__main__":
    main()
