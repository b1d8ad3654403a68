"""Measure what DreamBooth does to the embedded prior: does ``sks`` learn the subject, is the class kept?

The subject is a purple ball on a yellow background (``make_instance_images.py``). For the base
prior and for each fine-tuned variant, samples are drawn from the same noise for

* ``"a sks ball"``  -- should become the subject: RMS pixel distance to the nearest instance image
  (``inst_rms``, lower is better) and the probe's reading (purple / ball / yellow);
* ``"a ball"``      -- the class, should stay as it was: RMS difference to the base model's sample
  from the same noise (``class_drift``) and how often the probe reads a yellow background or a
  purple ball (leaks of the subject into the class);
* ``"a red ball"``  -- an attribute the class must still obey: probe reads red ball on white.

    python examples/dreambooth/measure.py --runs default@800,nopp@800,lr2e-5+te@800 --device cuda
    python examples/dreambooth/measure.py --runs default@100,lr5e-5@100 --num-class-images 20 --n-eval 8

Prints a table (and ``--json`` writes the figures).
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[2]))  # the repository root: tools/ is not installed

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

def variant(name: str) -> dict:
    """``DreamBoothConfig`` overrides from a name: ``default``, or ``+``-joined parts among
    ``lr<value>`` (learning rate), ``te`` / ``note`` (train the whole text encoder, or not), ``noemb`` (keep the identifier
    token's embedding frozen; by default it is trained), ``nopp`` (no prior preservation),
    ``w<value>`` (prior loss weight), e.g. ``lr2e-5+te``."""
    out: dict = {}
    for part in name.split("+"):
        if part == "default":
            continue
        if part == "te":
            out["train_text_encoder"] = True
        elif part == "note":
            out["train_text_encoder"] = False
        elif part == "noemb":
            out["train_identifier_embedding"] = False
        elif part == "nopp":
            out["with_prior_preservation"] = False
        elif part.startswith("lr"):
            out["learning_rate"] = float(part[2:])
        elif part.startswith("w"):
            out["prior_loss_weight"] = float(part[1:])
        else:
            raise SystemExit(f"unknown variant part {part!r} in {name!r}")
    return out


BACKGROUND = ["yellow"]  # the subject's background (--background)


def write_instances(folder: Path, views: int = 5) -> Path:
    from pds.util.images import save_png
    from tools.prior.data import orbit_camera, render_ball_view

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(views):
        image = render_ball_view(orbit_camera(360.0 * i / views, 5.0 + 10.0 * (i % 3)), "purple", BACKGROUND[0])
        save_png(image, folder / f"view{i:02d}.png")
    return folder


def figures(prior, instances: torch.Tensor, base_class: torch.Tensor | None, n: int, steps: int, probe,
            grid: Path | None = None) -> dict:
    from pds.sampling import sample

    def draw(prompt):
        return sample(prior, prompt, steps=steps, num_images=n, generator=torch.Generator(prior.device).manual_seed(7)).cpu()

    inst, cls, red = draw("a sks ball"), draw("a ball"), draw("a red ball")
    if grid is not None:
        from pds.util.images import image_grid

        grid.parent.mkdir(parents=True, exist_ok=True)
        image_grid(torch.cat([inst[:8], cls[:8], red[:8]]), min(8, n), scale=2).save(grid)
    d = ((inst[:, None] - instances[None]) ** 2).mean((2, 3, 4)).sqrt()
    out = {"inst_rms": float(d.min(1).values.mean())}
    if base_class is not None:
        out["class_drift"] = float(((cls - base_class) ** 2).mean((1, 2, 3)).sqrt().mean())
    if probe is not None:
        def frac(images, **want):
            judged = probe.judge(images)
            return sum(all(j[k] == v for k, v in want.items()) for j in judged) / len(judged)

        out.update({
            "inst_subject": frac(inst, color="purple", shape="ball", background=BACKGROUND[0]),
            "inst_purple": frac(inst, color="purple"),
            "inst_bg": frac(inst, background=BACKGROUND[0]),
            "class_bg": frac(cls, background=BACKGROUND[0]),
            "class_purple": frac(cls, color="purple"),
            "class_ball": frac(cls, shape="ball"),
            "red_ball_ok": frac(red, color="red", shape="ball", background="white"),
        })
    return out, cls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pds-tiny", help="base prior (pds-tiny or a folder of the same domain)")
    parser.add_argument("--runs", default="default@800,nopp@800",
                        help="comma list of VARIANT@STEPS (see variant())")
    parser.add_argument("--num-class-images", type=int, default=200)
    parser.add_argument("--class-sample-steps", type=int, default=50)
    parser.add_argument("--device", default=None)
    parser.add_argument("--n-eval", type=int, default=32)
    parser.add_argument("--sample-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe", default=None, help="probe weights (default: the shipped pds-tiny probe)")
    parser.add_argument("--background", default="yellow", help="the subject's background colour")
    parser.add_argument("--grid", type=Path, default=None, help="save sample grids (PNG) into this folder")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here (after every run)")
    args = parser.parse_args()
    BACKGROUND[0] = args.background

    import pds
    from pds.dreambooth import DreamBoothConfig, fine_tune, load_image_folder

    try:
        from tools.prior.probe import load_probe

        probe = load_probe(args.probe) if args.probe else load_probe()
    except Exception as exc:  # the probe weights may not be installed
        print(f"(no probe: {exc})")
        probe = None
    rows = {}

    def report():
        keys = sorted({k for r in rows.values() for k in r})
        print("run".ljust(18) + "".join(k.rjust(16) for k in keys))
        for name, r in rows.items():
            print(name.ljust(18) + "".join((f"{r[k]:.4g}" if isinstance(r.get(k), float) else str(r.get(k, ""))).rjust(16)
                                           for k in keys))
        if args.json:
            args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inst_dir = write_instances(tmp / "instances")
        instances = load_image_folder(inst_dir, 64).float() / 255
        base = pds.load_prior(args.model, device=args.device)
        t = time.perf_counter()
        grid = (lambda name: args.grid / f"{name}.png" if args.grid else None)
        rows["base"], base_class = figures(base, instances, None, args.n_eval, args.sample_steps, probe, grid("base"))
        rows["base"].update(class_drift=0.0, seconds=round(time.perf_counter() - t, 1))
        del base
        for spec in args.runs.split(","):
            name, _, steps = spec.partition("@")
            t = time.perf_counter()
            out = tmp / spec
            config = DreamBoothConfig(instance_prompt="a sks ball", instance_dir=inst_dir, class_prompt="a ball",
                                      save_dir=out, class_dir=tmp / "class_images", device=args.device, model=args.model,
                                      num_class_images=args.num_class_images, max_train_steps=int(steps or 800),
                                      class_sample_steps=args.class_sample_steps,
                                      seed=args.seed, **variant(name))
            fine_tune(config, log=print, progress=False)
            prior = pds.load_prior(out, device=args.device)
            run = prior.metadata.extra["fine_tuning"][-1]
            rows[spec], _ = figures(prior, instances, base_class, args.n_eval, args.sample_steps, probe, grid(spec))
            rows[spec].update(lr=run["learning_rate"], loss=round(run["final_loss"], 4), train_s=run["seconds"],
                              seconds=round(time.perf_counter() - t, 1))
            del prior
            report()


if __name__ == "__main__":
    main()
