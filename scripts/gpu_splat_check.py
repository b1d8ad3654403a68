"""Device check of the Gaussian-splat backend: its three stages on the example scene, timed, and
our PyTorch rasterizer against gsplat on the trained Gaussians.

Runs, in this process, with the documented flags (parsed by nerfstudio's ``ns-train`` parser;
``examples/nerf_ball/run_splat.sh`` is the same workflow as commands):

1. ``ns-train splatfacto --data examples/nerf_ball/red_ball`` from random Gaussians (short);
2. ``ns-train pds_splat --load-dir ... --pipeline.pds.src_prompt "a red ball" --pipeline.pds.tgt_prompt "a blue ball"``;
3. ``ns-train pds_splat_refinement --data <pds_splat>/eval_outputs --load-dir ...``;

then prints, per stage, the steps, seconds per step and peak GPU memory
(``torch.cuda.max_memory_allocated``, the prior's weights included), and the time to write
``eval_outputs``; in the source images and in the renders before and after each stage, the
mean colour inside the source's ball, the change of the white background outside it and the
silhouette IoU, with the verdict of ``gpu_nerf_check.verdict`` (blue, background kept, ball
kept); and, for every view of the pds_splat result, the PSNR between
:mod:`pds.nerf.splat.raster` and gsplat rendering the same Gaussians through the same model,
plus :func:`benchmarks.splat_raster.compare_with_gsplat` (image PSNR, gradient cosines, times) on
those Gaussians at 1x and 4x the view size. Each stage stops at its step count or its time cap.

Written to ``--out`` (three files): ``splat_strip.png`` (6 views; rows: source, splatfacto =
before the edit, pds_splat = after, refinement), ``splat_check.json`` (every number printed) and
``splat_check.txt`` (the printed report). Runs and datasets go to ``--work`` (default: a fresh
temporary folder).

Usage::

    python scripts/gpu_splat_check.py --out "$OUT"             # CUDA; also: gpu_nerf_check.py --backend splat
    python scripts/gpu_splat_check.py --device cpu --views 10 --size 32 --gaussians 300 --steps 5 4 3

gsplat (installed with nerfstudio) compiles its CUDA kernels on first use unless a prebuilt
build is installed: that needs ``nvcc`` and takes minutes once per machine; the check does it
first and reports its time apart from the stages'. On a CPU the stages run on the PyTorch
rasterizer and the gsplat comparison is skipped (a smoke run of this script).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import shutil
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
VIEWS_IN_STRIP = 6


def _fail(message: str) -> int:
    print(f"gpu_splat_check: {message}", file=sys.stderr)
    return 2


def preflight(device: str) -> str | None:
    """Why this check cannot run here (``None`` when it can), before anything heavy is imported."""
    if device == "cuda" and not torch.cuda.is_available():
        return ("no CUDA device: this check measures the GPU path (gsplat) and needs one; "
                "`--device cpu` runs the same stages on the PyTorch rasterizer as a smoke test")
    for module, hint in (("nerfstudio", "pip install -e '.[nerf]' (nerfstudio 1.1.5)"),
                         ("gsplat", "it comes with nerfstudio: pip install -e '.[nerf]'")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: {hint}"
    if device == "cuda" and importlib.util.find_spec("gsplat.csrc") is None and shutil.which("nvcc") is None:
        return "gsplat has no prebuilt kernels and there is no nvcc to compile them (install the CUDA toolkit)"
    return None


def gsplat_ready() -> float:
    """Seconds until gsplat's kernels run (their JIT build on a machine's first use, then a tiny render)."""
    start = time.perf_counter()
    from gsplat.rendering import rasterization

    means = torch.zeros(1, 3, device="cuda")
    means[0, 2] = 2.0
    K = torch.tensor([[[16.0, 0, 8], [0, 16.0, 8], [0, 0, 1]]], device="cuda")
    rasterization(means, torch.tensor([[1.0, 0, 0, 0]], device="cuda"), torch.full((1, 3), 0.1, device="cuda"),
                  torch.ones(1, device="cuda"), torch.ones(1, 3, device="cuda"), torch.eye(4, device="cuda")[None], K,
                  16, 16)
    torch.cuda.synchronize()
    return time.perf_counter() - start


def model_psnr(model, cameras, views) -> list:
    """PSNR between the model's gsplat render and its PyTorch-rasterizer render of each view (eval mode)."""
    from benchmarks.splat_raster import psnr

    model.eval()
    out = []
    with torch.no_grad():
        for i in views:
            camera = cameras[i:i + 1].to(model.device)
            reference = model.get_outputs(camera)["rgb"]  # CUDA: splatfacto's own, through gsplat
            ours = model._torch_outputs(camera)["rgb"]
            out.append(psnr(ours, reference))
    model.train()
    return out


def raster_comparison(model, camera, scale: int) -> dict:
    """:func:`benchmarks.splat_raster.compare_with_gsplat` on the model's Gaussians seen from ``camera``
    rendered at ``scale`` times its size."""
    from benchmarks.splat_raster import compare_with_gsplat
    from pds.nerf.splat.model import world_to_camera

    camera = camera.to(model.device)
    camera.rescale_output_resolution(scale)
    g = model.gauss_params
    colors = torch.cat((g["features_dc"][:, None, :], g["features_rest"]), dim=1)
    result = compare_with_gsplat(g["means"], g["quats"], torch.exp(g["scales"]), torch.sigmoid(g["opacities"]).squeeze(-1),
                                 colors, world_to_camera(camera.camera_to_worlds), camera.get_intrinsics_matrices(),
                                 int(camera.width.item()), int(camera.height.item()), sh_degree=model.config.sh_degree)
    result["size"] = [int(camera.height.item()), int(camera.width.item())]
    result["gaussians"] = int(g["means"].shape[0])
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_splat_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", default=str(REPO / "outputs" / "gpu_splat_check"),
                        help="folder for the three result files")
    parser.add_argument("--work", default=None, help="folder for the scene and the runs (default: a temporary one)")
    parser.add_argument("--prior", default=None, help="prior of stages 1-2 (default: pds.DEFAULT_PRIOR)")
    parser.add_argument("--src", default="a red ball")
    parser.add_argument("--tgt", default="a blue ball")
    parser.add_argument("--views", type=int, default=24, help="views of the example scene")
    parser.add_argument("--size", type=int, default=64, help="image side of the example scene in pixels")
    parser.add_argument("--gaussians", type=int, default=2000, help="random Gaussians splatfacto starts from")
    parser.add_argument("--steps", type=int, nargs=3, default=[2000, 300, 100],
                        metavar=("SPLATFACTO", "PDS_SPLAT", "REFINE"))
    parser.add_argument("--caps", type=float, nargs=3, default=[60.0, 120.0, 60.0],
                        metavar=("SPLATFACTO", "PDS_SPLAT", "REFINE"),
                        help="time cap of each stage's training loop in seconds")
    args = parser.parse_args(argv)
    problem = preflight(args.device)
    if problem:
        return _fail(problem)
    if args.views < VIEWS_IN_STRIP:
        return _fail(f"--views must be at least {VIEWS_IN_STRIP}")

    report = io.StringIO()

    def say(line: str = "") -> None:
        print(line, flush=True)
        report.write(line + "\n")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="pds_splat_check_"))
    results: dict = {"device": args.device, "work": str(work)}
    if args.device == "cuda":
        results["gsplat_ready_s"] = gsplat_ready()
        say(f"gsplat kernels ready in {results['gsplat_ready_s']:.1f} s (the first use on a machine compiles them)")

    sys.path[:0] = [str(REPO), str(REPO / "scripts"), str(REPO / "examples" / "nerf_ball")]
    import pds
    from gpu_nerf_check import figure_lines, parse, release, rendered_views, scene_figures, train, verdict
    from make_scene import make_scene
    from pds.nerf.compat import install_lazy_lpips
    from pds.nerf.splat.model import use_torch_splatfacto

    install_lazy_lpips()
    torch.set_float32_matmul_precision("high")
    data = work / "red_ball"
    with redirect_stdout(io.StringIO()):
        make_scene(data, views=args.views, size=args.size)
    prior = args.prior or pds.DEFAULT_PRIOR
    dev = ["--machine.device-type", args.device, "--vis", "tensorboard", "--logging.local-writer.enable", "False"]
    runs = work / "runs"
    rows = []

    # 0. splatfacto from random Gaussians (the scene has no point cloud), as run_splat.sh
    config = parse(["splatfacto", "--data", data, *dev, "--max-num-iterations", args.steps[0],
                    "--pipeline.model.num-random", args.gaussians, "--pipeline.model.random-scale", "1.0",
                    "--pipeline.model.background-color", "white"])
    if args.device == "cpu":
        use_torch_splatfacto({"splatfacto": config})  # what `python -m pds.nerf.ns_train` does for a CPU
    t0, n0, s0, m0 = train(config, runs, "splatfacto", args.caps[0], args.device)
    rows.append(("splatfacto", n0, s0, m0, float("nan"), int(t0.pipeline.model.num_points)))
    checkpoints0 = t0.checkpoint_dir
    del t0
    release()

    # 1. pds_splat; the loaded Gaussians are rendered to before/ first (the "before" picture)
    before = work / "before"

    def render_before(trainer) -> None:
        trainer.pipeline.export_views(before, {"method": "splatfacto", "step": int(trainer._start_step) - 1})

    config = parse(["pds_splat", "--data", data, "--load-dir", checkpoints0, "--pipeline.pds.src_prompt", args.src,
                    "--pipeline.pds.tgt_prompt", args.tgt, "--pipeline.pds.sd_pretrained_model_or_path", prior, *dev,
                    "--max-num-iterations", args.steps[1]])
    t1, n1, s1, m1 = train(config, runs, "pds_splat", args.caps[1], args.device, on_setup=render_before)
    start = time.perf_counter()
    eval1 = t1.export_eval_outputs(t1.step)
    rows.append(("pds_splat", n1, s1, m1, time.perf_counter() - start, int(t1.pipeline.model.num_points)))
    losses = t1.pipeline.losses

    # rasterizers, on the edited Gaussians: model renders of every view, then the raw rasterizers
    if args.device == "cuda":
        model = t1.pipeline.model
        cameras = t1.pipeline.datamanager.train_dataset.cameras
        per_view = model_psnr(model, cameras, range(len(cameras)))
        results["model_psnr"] = {"mean": float(np.mean(per_view)), "min": float(np.min(per_view)), "views": per_view}
        results["raster"] = [raster_comparison(model, cameras[0:1], scale) for scale in (1, 4)]
        del model
    checkpoints1 = t1.checkpoint_dir
    del t1
    release()

    # 2. pds_splat_refinement on stage 1's renders
    config = parse(["pds_splat_refinement", "--data", eval1, "--load-dir", checkpoints1,
                    "--pipeline.pds.tgt_prompt", args.tgt, "--pipeline.pds.sd_pretrained_model_or_path", prior, *dev,
                    "--max-num-iterations", args.steps[2]])
    t2, n2, s2, m2 = train(config, runs, "refine", args.caps[2], args.device)
    start = time.perf_counter()
    eval2 = t2.export_eval_outputs(t2.step)
    rows.append(("pds_splat_refinement", n2, s2, m2, time.perf_counter() - start, int(t2.pipeline.model.num_points)))
    del t2
    release()

    # ------------------------------------------------------------------ report
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    say(f"\nGaussian-splat stages on {name}, example scene ({args.views} views, {args.size}x{args.size}), prior {prior}")
    say(f"{'stage':<22}{'steps':>7}{'s/step':>10}{'peak MiB':>10}{'export s':>10}{'Gaussians':>11}")
    for stage, n, s, m, e, g in rows:
        say(f"{stage:<22}{n:>7}{s / max(n, 1):>10.4f}{m:>10.0f}{e:>10.2f}{g:>11}")
    results["stages"] = [{"stage": stage, "steps": n, "seconds": s, "s_per_step": s / max(n, 1), "peak_mib": m,
                          "export_s": e, "gaussians": g} for stage, n, s, m, e, g in rows]
    if losses:
        results["pds_loss"] = {"first10": float(np.mean(losses[:10])), "last10": float(np.mean(losses[-10:])),
                               "finite": bool(np.isfinite(losses).all())}
        say(f"pds loss: first 10 mean {results['pds_loss']['first10']:.4g}, last 10 mean "
            f"{results['pds_loss']['last10']:.4g}, finite: {results['pds_loss']['finite']}")

    from PIL import Image

    src = np.stack([np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255
                    for p in sorted((data / "images").glob("*.png"))])
    mask = np.abs(src - 1.0).max(-1) > 0.1
    figures = {"source": scene_figures(src, mask), "splatfacto": scene_figures(rendered_views(before), mask),
               "pds_splat": scene_figures(rendered_views(eval1), mask),
               "refinement": scene_figures(rendered_views(eval2), mask)}
    results["ball"] = {k: {"colour": [float(x) for x in f["colour"]], "background_change": f["background_change"],
                           "silhouette_iou": f["silhouette_iou"]} for k, f in figures.items()}
    for line in figure_lines(figures):
        say(line)
    c0, c1 = figures["splatfacto"]["colour"], figures["pds_splat"]["colour"]
    results["edit_shift"] = float((c1[2] - c1[0]) - (c0[2] - c0[0]))
    say(f"blue - red, after pds_splat minus before: {results['edit_shift']:+.3f}")
    results["verdict"] = {}
    for stage in ("pds_splat", "refinement"):
        ok, line = verdict(figures[stage])
        results["verdict"][stage] = {**ok, "passed": all(ok.values())}
        say(f"after {stage}: {line}")

    if "raster" in results:
        p = results["model_psnr"]
        say(f"model renders, PyTorch rasterizer vs gsplat, {len(p['views'])} views: PSNR mean {p['mean']:.1f} dB, "
            f"min {p['min']:.1f} dB")
        say("raw rasterizers on the edited Gaussians (view 0):")
        say(f"  {'px':>9} {'N':>6} {'PSNR dB':>8} {'max |d|':>8} {'cos(grad means/colors/opac)':>28} "
            f"{'ours fwd s':>10} {'gsplat fwd s':>12} {'ours f+b s':>10} {'gsplat f+b s':>12}")
        for r in results["raster"]:
            cos = r["grad_cos"]
            say(f"  {r['size'][0]:>4}x{r['size'][1]:<4} {r['gaussians']:>6} {r['psnr']:>8.1f} {r['max_abs']:>8.4f} "
                f"{cos['means']:>10.4f}/{cos['colors']:.4f}/{cos['opacities']:.4f} {r['t_ours']:>10.4f} "
                f"{r['t_gsplat']:>12.5f} {r['t_ours_fb']:>10.4f} {r['t_gsplat_fb']:>12.5f}")
    else:
        say("rasterizer comparison with gsplat: needs CUDA, skipped")

    views = np.linspace(0, args.views - 1, VIEWS_IN_STRIP).astype(int)
    strip = []
    for folder in (data, before, eval1, eval2):
        strip.append(np.concatenate([np.asarray(Image.open(folder / "images" / f"frame_{i:05d}.png").convert("RGB"))
                                     for i in views], 1))
    picture = np.concatenate(strip, 0)
    zoom = max(1, 192 // args.size)
    Image.fromarray(picture).resize((picture.shape[1] * zoom, picture.shape[0] * zoom), Image.NEAREST).save(
        out / "splat_strip.png")
    say(f"wrote {out / 'splat_strip.png'} (rows: source, splatfacto = before, pds_splat = after, refinement)")
    (out / "splat_check.json").write_text(json.dumps(results, indent=2))
    (out / "splat_check.txt").write_text(report.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
