"""Device check of the NeRF backend: the README's three stages on the example scene, timed.

Runs, in this process and with the README's flags (parsed by nerfstudio's ``ns-train`` parser):

1. ``ns-train nerfacto --data examples/nerf_ball/red_ball --pipeline.model.use_appearance_embedding False``
2. ``ns-train pds --load-dir ... --pipeline.pds.src_prompt "a red ball" --pipeline.pds.tgt_prompt "a blue ball"``
3. ``ns-train pds_refinement --data <pds>/eval_outputs --load-dir ... --pipeline.pds.tgt_prompt "a blue ball"``

long enough to see the ball turn blue, then prints a table: steps, seconds per step, peak GPU
memory of each stage (``torch.cuda.max_memory_allocated`` during its training loop, earlier stages
freed), the time to write ``eval_outputs``, and the mean colour of the ball in the
source images and in each stage's renders. ``strip.png`` in ``--out`` shows 6 views: source /
after pds / after refinement. Each stage stops at its step count or its time cap, whichever
comes first (the whole run fits in about 8 minutes on one H100).

Usage::

    python scripts/gpu_nerf_check.py --out "$OUT"                  # CUDA, embedded prior pds-tiny
    python scripts/gpu_nerf_check.py --device cpu --small --rays 512 --render-scale 0.5 --steps 300 200 30
    python scripts/gpu_nerf_check.py --backend splat --out "$OUT"  # the splat stages instead
                                                                   # (scripts/gpu_splat_check.py; its own options)

Needs nerfstudio 1.1.5 (``pip install -e ".[nerf]"``) and the prior (default ``pds-tiny``).
Works offline (LPIPS is made lazy, see ``pds.nerf.compat``).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--pipeline.model.num-levels", "4", "--pipeline.model.log2-hashmap-size", "12",
         "--pipeline.model.max-res", "64", "--pipeline.model.hidden-dim", "16",
         "--pipeline.model.hidden-dim-color", "16", "--pipeline.model.num-proposal-samples-per-ray", "16", "8",
         "--pipeline.model.num-nerf-samples-per-ray", "8"]


def parse(args):
    import tyro
    from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion

    return tyro.cli(AnnotatedBaseConfigUnion, args=[str(a) for a in args])


def train(config, out: Path, name: str, cap_s: float, device: str, on_setup: Optional[Callable] = None):
    """Train like ``ns-train`` (minus its process launcher), stopping after ``cap_s`` seconds.

    ``on_setup(trainer)``, if given, runs once the trainer is set up (checkpoint loaded), before the
    peak-memory count starts.

    Returns ``(trainer, steps, seconds in the training loop, peak memory MiB)``."""
    from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation

    config.output_dir, config.timestamp = out, name
    if config.data:
        config.pipeline.datamanager.data = config.data
    if hasattr(config, "save_eval_outputs"):
        config.save_eval_outputs = False  # written (and timed) separately below
    config.save_config()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    if on_setup is not None:
        on_setup(trainer)
    steps = {"n": 0}
    start = {"t": None}

    def tick(step: int) -> None:
        if start["t"] is None:
            start["t"] = time.perf_counter()
        steps["n"] += 1
        if time.perf_counter() - start["t"] > cap_s:
            trainer.stop_training = True

    trainer.callbacks.append(TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], tick))
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - (start["t"] or time.perf_counter())
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if device == "cuda" else float("nan")
    return trainer, steps["n"], seconds, peak


def rendered_views(folder: Path) -> np.ndarray:
    """The views of an ``eval_outputs`` dataset, ``(V, H, W, 3)`` in [0, 1], in frame order."""
    meta = json.loads((folder / "transforms.json").read_text())
    from PIL import Image

    return np.stack([np.asarray(Image.open(folder / f["file_path"]).convert("RGB"), dtype=np.float32) / 255
                     for f in meta["frames"]])


def scene_figures(views: np.ndarray, mask: np.ndarray) -> dict:
    """What an edit of the ball must keep and change: the mean colour inside the source's ball
    silhouette ``mask`` ``(V, H, W)``, the mean change of the white background outside it, and the
    IoU of the rendered non-white region with the source silhouette (a ball that faded, or a scene
    that turned one colour, fails this even when the mean colour inside looks blue)."""
    fg = np.abs(views - 1.0).max(-1) > 0.1
    union = (fg | mask).sum()
    return {"colour": views[mask].mean(0), "background_change": float(np.abs(views[~mask] - 1.0).mean()),
            "silhouette_iou": float((fg & mask).sum() / union) if union else 1.0}


def figure_lines(figures: dict) -> list[str]:
    """The report lines of ``{stage: scene_figures(...)}``: a header, then one line per stage."""
    lines = ["inside the source ball: mean colour (R, G, B); outside it: mean change of the white background;"
             " silhouette IoU with the source ball"]
    for name, f in figures.items():
        c = f["colour"]
        lines.append(f"  {name:<11} {c[0]:.3f} {c[1]:.3f} {c[2]:.3f}   blue - red = {c[2] - c[0]:+.3f}   "
                     f"background change {f['background_change']:.3f}   IoU {f['silhouette_iou']:.3f}")
    return lines


def verdict(figures: dict) -> tuple[dict, str]:
    """Whether a stage's :func:`scene_figures` show the ball turned blue and nothing else changed:
    ``({check: passed}, one line)``. A ball that faded, or a whole view turned blue, also moves the
    colour inside the ball, so the background and the silhouette are judged too."""
    c = figures["colour"]
    ok = {"blue": bool(c[2] > c[0] + 0.1), "background kept": figures["background_change"] < 0.1,
          "ball kept": figures["silhouette_iou"] > 0.7}
    line = (", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in ok.items())
            + f" -> the ball {'turned blue' if all(ok.values()) else 'did not turn blue as asked'}")
    return ok, line


def release() -> None:
    """Free what finished stages left on the GPU (call after dropping their trainers), so that each
    stage's peak memory is its own."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument("--backend", default="nerf", choices=["nerf", "splat"])
    known, rest = backend.parse_known_args(argv)
    if known.backend == "splat":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from gpu_splat_check import main as splat_main

        return splat_main(rest)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="nerf", choices=["nerf", "splat"],
                        help="nerf: this check; splat: scripts/gpu_splat_check.py with the remaining options "
                             "(`--backend splat --help` lists them)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", default=str(REPO / "outputs" / "gpu_nerf_check"), help="output folder")
    parser.add_argument("--prior", default=None, help="prior for stages 1-2 (default: pds.DEFAULT_PRIOR)")
    parser.add_argument("--src", default="a red ball")
    parser.add_argument("--tgt", default="a blue ball")
    parser.add_argument("--steps", type=int, nargs=3, default=[2000, 1500, 300], metavar=("NERFACTO", "PDS", "REFINE"))
    parser.add_argument("--caps", type=float, nargs=3, default=[90.0, 240.0, 90.0], metavar=("NERFACTO", "PDS", "REFINE"),
                        help="time cap of each stage's training loop in seconds")
    parser.add_argument("--small", action="store_true", help="small nerfacto (for CPU runs)")
    parser.add_argument("--render-scale", type=float, default=1.0, help="--pipeline.pds.render_scale")
    parser.add_argument("--guidance", type=float, default=None,
                        help="--pipeline.pds.guidance_scale of stage 1 (default: the method's, 100 as the reference)")
    parser.add_argument("--rays", type=int, default=4096, help="rays per step of nerfacto and pds_refinement")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():  # before the slow imports
        print("gpu_nerf_check: no CUDA device: this check measures the GPU path and needs one; `--device cpu` "
              "runs the same stages as a smoke test", file=sys.stderr)
        return 2

    import pds
    from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig

    from pds.nerf.compat import install_lazy_lpips

    sys.path.insert(0, str(REPO / "examples" / "nerf_ball"))
    from make_scene import make_scene

    install_lazy_lpips()
    torch.set_float32_matmul_precision("high")
    out = Path(args.out)
    data = out / "red_ball"
    make_scene(data)
    prior = args.prior or pds.DEFAULT_PRIOR
    dev = ["--machine.device-type", args.device, "--vis", "tensorboard", "--logging.local-writer.enable", "False"]
    if args.device == "cpu":
        dev += ["--pipeline.model.implementation", "torch"]
    model = SMALL if args.small else []
    rows = []

    # 1. nerfacto (vanilla data manager: same data, no worker process)
    config = parse(["nerfacto", "--data", data, "--pipeline.model.use_appearance_embedding", "False", *dev, *model,
                    "--max-num-iterations", args.steps[0]])
    config.pipeline.datamanager = VanillaDataManagerConfig(dataparser=config.pipeline.datamanager.dataparser,
                                                           train_num_rays_per_batch=args.rays)
    t0, n0, s0, m0 = train(config, out / "runs", "nerfacto", args.caps[0], args.device)
    rows.append(("nerfacto", n0, s0, m0, float("nan")))
    checkpoints0 = t0.checkpoint_dir
    del t0
    release()

    # 2. pds
    config = parse(["pds", "--data", data, "--load-dir", checkpoints0, "--pipeline.pds.src_prompt", args.src,
                    "--pipeline.pds.tgt_prompt", args.tgt, "--pipeline.pds.sd_pretrained_model_or_path", prior,
                    "--pipeline.pds.render_scale", args.render_scale, *dev, *model,
                    *(["--pipeline.pds.guidance_scale", args.guidance] if args.guidance is not None else []),
                    "--max-num-iterations", args.steps[1]])
    t1, n1, s1, m1 = train(config, out / "runs", "pds", args.caps[1], args.device)
    start = time.perf_counter()
    eval1 = t1.export_eval_outputs(t1.step)
    rows.append(("pds", n1, s1, m1, time.perf_counter() - start))
    losses = t1.pipeline.losses
    checkpoints1 = t1.checkpoint_dir
    del t1
    release()

    # 3. pds_refinement
    config = parse(["pds_refinement", "--data", eval1, "--load-dir", checkpoints1, "--pipeline.pds.tgt_prompt",
                    args.tgt, "--pipeline.pds.sd_pretrained_model_or_path", prior, *dev, *model,
                    "--pipeline.datamanager.train-num-rays-per-batch", args.rays, "--max-num-iterations", args.steps[2]])
    t2, n2, s2, m2 = train(config, out / "runs", "refine", args.caps[2], args.device)
    start = time.perf_counter()
    eval2 = t2.export_eval_outputs(t2.step)
    rows.append(("pds_refinement", n2, s2, m2, time.perf_counter() - start))

    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"\nNeRF stages on {device_name}, example scene (24 views, 64x64), prior {prior}")
    print(f"{'stage':<16}{'steps':>7}{'s/step':>10}{'peak MiB':>10}{'export s':>10}")
    for name, n, s, m, e in rows:
        print(f"{name:<16}{n:>7}{s / max(n, 1):>10.4f}{m:>10.0f}{e:>10.2f}")
    if losses:
        print(f"pds loss: first 10 mean {np.mean(losses[:10]):.4g}, last 10 mean {np.mean(losses[-10:]):.4g}, "
              f"finite: {bool(np.isfinite(losses).all())}")

    from PIL import Image

    src = np.stack([np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255
                    for p in sorted((data / "images").glob("*.png"))])
    mask = (np.abs(src - 1.0).max(-1) > 0.1)
    figures = {"source": scene_figures(src, mask), "pds": scene_figures(rendered_views(eval1), mask),
               "refinement": scene_figures(rendered_views(eval2), mask)}
    for line in figure_lines(figures):
        print(line)
    for name in ("pds", "refinement"):
        print(f"after {name}: {verdict(figures[name])[1]}")

    views = [0, 4, 8, 12, 16, 20]
    strip = []
    for folder in (data, eval1, eval2):
        row = [np.asarray(Image.open(folder / "images" / f"frame_{i:05d}.png").convert("RGB")) for i in views]
        strip.append(np.concatenate(row, 1))
    Image.fromarray(np.concatenate(strip, 0)).resize((64 * 6 * 3, 64 * 3 * 3), Image.NEAREST).save(out / "strip.png")
    print(f"wrote {out / 'strip.png'} (rows: source, pds, refinement)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
