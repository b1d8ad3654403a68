"""Micro-benchmark of :func:`pds.svg.raster.rasterize` on synthetic icon-like scenes.

Prints a table of forward and forward+backward wall times (median of a few runs) and the peak
anonymous-memory growth of one forward+backward (sampled every millisecond in a fresh
subprocess on CPU; ``torch.cuda.max_memory_allocated`` on CUDA), for a few scene sizes and
resolutions::

    python benchmarks/svg_raster_micro.py                      # default table, 2 CPU threads
    python benchmarks/svg_raster_micro.py --paths 256 --size 512 --samples 1
    python benchmarks/svg_raster_micro.py --device cuda
    python benchmarks/svg_raster_micro.py --icons 'tests/data/svg/twemoji/*.svg'   # real files

The "emoji" scene mimics a twemoji file (about 40 filled blobs of 4-12 cubic segments, a few with
strokes and gradients, bounding boxes from a tenth to the whole canvas); "dense" is 256 such
paths, the scale quoted in the rasterizer's memory requirement.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from pds.svg.raster import over_background, rasterize
from pds.svg.shapes import DrawGroup, LinearGradientPaint, RadialGradientPaint, SolidPaint, Subpath


def blob(cx: float, cy: float, r: float, n_seg: int, gen: torch.Generator) -> Subpath:
    """A closed star-ish blob of ``n_seg`` cubic segments around ``(cx, cy)``."""
    ang = torch.linspace(0, 2 * math.pi, n_seg + 1)[:-1] + torch.rand(1, generator=gen) * 6.28
    rad = r * (0.6 + 0.4 * torch.rand(n_seg, generator=gen))
    anchors = torch.stack([cx + rad * torch.cos(ang), cy + rad * torch.sin(ang)], -1)
    pts = []
    for i in range(n_seg):
        a, b = anchors[i], anchors[(i + 1) % n_seg]
        jitter = (torch.rand(2, 2, generator=gen) - 0.5) * r * 0.5
        pts += [a, a + (b - a) / 3 + jitter[0], a + 2 * (b - a) / 3 + jitter[1]]
    return Subpath(torch.stack(pts).requires_grad_(True), torch.full((n_seg,), 2, dtype=torch.long), True)


def make_scene(n_paths: int, size: int, seed: int = 0) -> list[DrawGroup]:
    """``n_paths`` painter-ordered groups on a ``size``-pixel canvas (deterministic in ``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    groups = []
    for i in range(n_paths):
        u = torch.rand(8, generator=gen)
        r = size * (0.05 + 0.4 * float(u[0]) ** 2)
        cx, cy = size * (0.1 + 0.8 * float(u[1])), size * (0.1 + 0.8 * float(u[2]))
        subs = [blob(cx, cy, r, 4 + int(8 * float(u[3])), gen)]
        if u[4] < 0.2:  # a hole
            subs.append(blob(cx, cy, r * 0.3, 5, gen))
        color = torch.cat([torch.rand(3, generator=gen), torch.tensor([0.7 + 0.3 * float(u[5])])]).requires_grad_(True)
        if u[6] < 0.15:
            fill = LinearGradientPaint(torch.tensor([cx - r, cy]), torch.tensor([cx + r, cy]), torch.tensor([0.0, 1.0]),
                                       torch.stack([color.detach(), torch.rand(4, generator=gen)]).requires_grad_(True))
        elif u[6] < 0.25:
            fill = RadialGradientPaint(torch.tensor([cx, cy]), torch.tensor(r), torch.tensor([cx, cy]), torch.tensor([0.0, 1.0]),
                                       torch.stack([color.detach(), torch.rand(4, generator=gen)]).requires_grad_(True))
        else:
            fill = SolidPaint(color)
        stroke = None
        width = torch.tensor(1.0)
        if u[7] < 0.3:
            stroke = SolidPaint(torch.tensor([0.1, 0.1, 0.1, 1.0], requires_grad=True))
            width = torch.tensor(size / 128 * (1 + 3 * float(u[7])), requires_grad=True)
        groups.append(DrawGroup(subs, fill=fill, stroke=stroke, stroke_width=width,
                                linejoin="round", linecap="round", fill_rule="evenodd" if u[4] < 0.1 else "nonzero"))
    return groups


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, reps: int, device: torch.device) -> float:
    fn()  # warm-up
    _sync(device)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def _to(groups: list[DrawGroup], device: torch.device) -> list[DrawGroup]:
    """Move a scene's leaf tensors to ``device`` (keeping them leaves that require grad)."""
    def mv(t):
        if not isinstance(t, torch.Tensor):
            return t
        return t.detach().to(device).requires_grad_(t.requires_grad)

    out = []
    for g in groups:
        subs = [Subpath(mv(sp.points), sp.num_control_points, sp.closed) for sp in g.subpaths]
        paints = []
        for p in (g.fill, g.stroke):
            if p is None:
                paints.append(None)
            else:
                fields = {k: mv(v) for k, v in vars(p).items()}
                paints.append(type(p)(**fields))
        out.append(DrawGroup(subs, fill=paints[0], stroke=paints[1], stroke_width=mv(g.stroke_width),
                             fill_rule=g.fill_rule, linecap=g.linecap, linejoin=g.linejoin,
                             miterlimit=g.miterlimit, opacity=mv(g.opacity)))
    return out


def peak_memory(n_paths: int, size: int, samples: int, threads: int, device: torch.device) -> float:
    """Peak memory growth (bytes) of one forward+backward."""
    if device.type == "cuda":
        scene = _to(make_scene(n_paths, size), device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        over_background(rasterize(scene, size, size, samples=samples)).square().mean().backward()
        return torch.cuda.max_memory_allocated(device) - base
    from pathlib import Path

    from pds.testing import peak_anon_memory

    return float(peak_anon_memory("from svg_raster_micro import make_scene\n"
                                  "from pds.svg.raster import over_background, rasterize\n"
                                  f"scene = make_scene({n_paths}, {size})",
                                  f"over_background(rasterize(scene, {size}, {size}, samples={samples}))"
                                  ".square().mean().backward()",
                                  paths=[Path(__file__).resolve().parent], threads=threads))


def bench(scene: list[DrawGroup], width: int, height: int, samples: int, reps: int, device: torch.device) -> tuple[float, float]:
    """Median forward and forward+backward seconds."""
    scene = _to(scene, device)

    def fwd():
        with torch.no_grad():
            return rasterize(scene, width, height, samples=samples, device=device)

    def fwd_bwd():
        img = over_background(rasterize(scene, width, height, samples=samples, device=device))
        img.square().mean().backward()

    return _time(fwd, reps, device), _time(fwd_bwd, reps, device)


def icons(pattern: str, size: int, samples: int, reps: int, device: torch.device) -> None:
    """Time real SVG files through the parser (:class:`pds.svg.SVGScene`)."""
    import glob
    import warnings

    from pds.svg.scene import SVGScene

    print(f"{'file':40s} {'groups':>6} {'fwd ms':>8} {'fwd+bwd ms':>11}")
    fw, fb = [], []
    for path in sorted(glob.glob(pattern)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc = SVGScene.load(path, render_size=size, device=device)
            w, h = sc.canvas_size(size)
            groups = sc.draw_groups(w, h)
        f, b = bench(groups, w, h, samples, reps, device)
        fw.append(f)
        fb.append(b)
        print(f"{path[-40:]:40s} {len(groups):>6} {1e3 * f:>8.1f} {1e3 * b:>11.1f}")
    if fw:
        print(f"{'median':40s} {'':>6} {1e3 * statistics.median(fw):>8.1f} {1e3 * statistics.median(fb):>11.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, nargs="*", default=[40, 256])
    ap.add_argument("--size", type=int, nargs="*", default=[256, 512])
    ap.add_argument("--samples", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory column")
    ap.add_argument("--icons", default=None, help="glob of SVG files to time through SVGScene instead")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}")
    if args.icons:
        for s in args.samples:
            print(f"samples={s}, size {args.size[0]}")
            icons(args.icons, args.size[0], s, args.reps, device)
        return
    print(f"{'paths':>6} {'size':>5} {'samples':>7} {'fwd ms':>9} {'fwd+bwd ms':>11} {'peak MB':>8}")
    for n in args.paths:
        for size in args.size:
            scene = make_scene(n, size)
            for s in args.samples:
                f, b = bench(scene, size, size, s, args.reps, device)
                mem = float("nan") if args.no_memory else peak_memory(n, size, s, args.threads, device) / 2**20
                print(f"{n:>6} {size:>5} {s:>7} {1e3 * f:>9.1f} {1e3 * b:>11.1f} {mem:>8.1f}")


if __name__ == "__main__":
    main()
