"""Benchmark: SVG rendering speed, memory and fidelity against cairosvg on the vendored corpus.

For every SVG under ``tests/data/svg`` and every size (default 256 and 512 px, longer side) it
measures, in the same process and run:

* our forward time (``SVGScene.render`` under ``no_grad``) and forward+backward time (render, a
  weighted sum, ``backward`` into every parameter), median of ``--repeat`` runs after a warm-up;
* cairosvg's forward time on the same file at the same output size (parse + draw into an image
  surface, PNG encoding excluded), median of ``--repeat`` runs;
* PSNR of our render against cairosvg's (RGB over white);
* peak memory of the forward and of forward+backward (torch profiler with ``profile_memory``:
  the high-water mark of tensor memory allocated during the call, mean and max over files), the
  process peak RSS, and on CUDA ``max_memory_allocated``.

The figure of merit is the ratio of our time to cairosvg's. Prints one summary table per size
(plus a per-set breakdown, and per-file rows with ``--per-file``). Not a test: nothing is asserted.

Usage (the table goes to stdout; progress and the torch profiler's log lines go to stderr)::

    python benchmarks/svg_render.py [--sizes 256 512] [--repeat 3] [--device cpu] [--per-file] 2>/dev/null
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pds.svg import SVGScene  # noqa: E402

DATA = ROOT / "tests" / "data" / "svg"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, repeat: int, device: torch.device) -> float:
    fn()  # warm-up (allocator, lazy imports, caches)
    sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cairo_forward(svg: bytes, width: int, height: int):
    """cairosvg parse + draw into an ARGB surface (what svg2png does before PNG encoding)."""
    import cairosvg.parser
    import cairosvg.surface

    tree = cairosvg.parser.Tree(bytestring=svg)
    surface = cairosvg.surface.PNGSurface(tree, None, 96, output_width=width, output_height=height,
                                          background_color="white")
    return surface


def cairo_image(surface, width: int, height: int) -> np.ndarray:
    surface.cairo.flush()
    buf = np.frombuffer(surface.cairo.get_data(), dtype=np.uint8)
    stride = surface.cairo.get_stride()
    bgra = buf.reshape(height, stride // 4, 4)[:, :width, :].astype(np.float64) / 255.0
    return bgra[..., [2, 1, 0]]  # opaque (white background), so premultiplication does not matter


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return 100.0 if mse == 0 else 10.0 * np.log10(1.0 / mse)


def peak_bytes(fn, device: torch.device) -> int:
    """Peak of memory allocated by torch while running ``fn`` (torch profiler, ``profile_memory``).

    Every op's own allocations minus frees, accumulated in time order: the high-water mark of
    live tensor memory above what existed before ``fn`` (parameters, cached constants).
    """
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts, profile_memory=True) as prof:
        fn()
        sync(device)
    attr = "self_device_memory_usage" if device.type == "cuda" else "self_cpu_memory_usage"
    live = peak = 0
    for _start, used in sorted((e.time_range.start, getattr(e, attr, 0) or 0) for e in prof.events()):
        live += used
        peak = max(peak, live)
    return peak


def bench_file(path: Path, size: int, repeat: int, device: torch.device) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene = SVGScene.load(path, device=device)
    w, h = scene.canvas_size(size)
    data = path.read_bytes()

    def forward():
        with torch.no_grad():
            return scene.render(size)

    weights = torch.rand(3, h, w, generator=torch.Generator().manual_seed(0)).to(device)

    def forward_backward():
        for ts in scene.parameters().values():
            for t in ts:
                t.grad = None
        (scene.render(size) * weights).sum().backward()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_fwd = median_time(forward, repeat, device)
    t_fb = median_time(forward_backward, repeat, device)
    cuda_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    mem_fwd = peak_bytes(forward, device)
    mem_fb = peak_bytes(forward_backward, device)
    t_cairo = median_time(lambda: cairo_forward(data, w, h), repeat, torch.device("cpu"))
    ours = forward().permute(1, 2, 0).double().cpu().numpy()
    ref = cairo_image(cairo_forward(data, w, h), w, h)
    return {"file": f"{path.parent.name}/{path.name}", "set": path.parent.name, "fwd": t_fwd, "fb": t_fb,
            "cairo": t_cairo, "psnr": psnr(ours, ref), "mem_fwd": mem_fwd, "mem_fb": mem_fb, "cuda_peak": cuda_peak,
            "shapes": len(scene.items)}


def summary_row(label: str, rows: list) -> str:
    fwd = sum(r["fwd"] for r in rows)
    fb = sum(r["fb"] for r in rows)
    cairo = sum(r["cairo"] for r in rows)
    ps = [r["psnr"] for r in rows]
    mf = [r["mem_fwd"] / 2**20 for r in rows]
    mfb = [r["mem_fb"] / 2**20 for r in rows]
    return (f"{label:<12} {len(rows):>5} {1e3 * fwd / len(rows):>9.1f} {1e3 * fb / len(rows):>11.1f} "
            f"{1e3 * cairo / len(rows):>10.2f} {fwd / cairo:>8.1f}x {fb / cairo:>8.1f}x "
            f"{np.mean(ps):>7.2f} {np.min(ps):>7.2f} {np.mean(mf):>8.1f} {np.mean(mfb):>9.1f} {np.max(mfb):>8.1f}")


HEADER = (f"{'set':<12} {'files':>5} {'fwd ms':>9} {'fwd+bwd ms':>11} {'cairo ms':>10} {'fwd/cairo':>9} "
          f"{'f+b/cairo':>9} {'PSNR':>7} {'min':>7} {'fwd MiB':>8} {'f+b MiB':>9} {'max':>8}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (median)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--glob", default="*/*.svg", help="files under tests/data/svg")
    ap.add_argument("--per-file", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    files = sorted(DATA.glob(args.glob))
    if not files:
        raise SystemExit(f"no SVG matches {args.glob} under {DATA}")
    import cairosvg

    if device.type == "cuda":
        dev_name = torch.cuda.get_device_name(device)
    else:
        dev_name = f"CPU ({torch.get_num_threads()} threads)"
    print(f"pds.svg render benchmark: {len(files)} files, torch {torch.__version__}, cairosvg {cairosvg.__version__}, "
          f"device {dev_name}, median of {args.repeat}")
    for size in args.sizes:
        rows = []
        for i, f in enumerate(files):
            rows.append(bench_file(f, size, args.repeat, device))
            print(f"\r  {size}px: {i + 1}/{len(files)}", end="", file=sys.stderr, flush=True)
        print("\r", end="", file=sys.stderr)
        print(f"\n== {size} px (longer side); times are per file ==")
        print(HEADER)
        for s in sorted({r["set"] for r in rows}):
            print(summary_row(s, [r for r in rows if r["set"] == s]))
        print(summary_row("ALL", rows))
        if device.type == "cuda":
            print(f"CUDA peak allocated: {max(r['cuda_peak'] for r in rows) / 2**20:.1f} MiB")
        if args.per_file:
            print(f"\n{'file':<58} {'shapes':>6} {'fwd ms':>8} {'f+b ms':>8} {'cairo ms':>9} {'PSNR':>7} "
                  f"{'f+b MiB':>9}")
            for r in rows:
                print(f"{r['file']:<58} {r['shapes']:>6} {1e3 * r['fwd']:>8.1f} {1e3 * r['fb']:>8.1f} "
                      f"{1e3 * r['cairo']:>9.2f} {r['psnr']:>7.2f} {r['mem_fb'] / 2**20:>9.2f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
