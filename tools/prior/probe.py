"""A small CNN that judges 64x64 pictures of the ``pds-tiny`` domain: foreground colour, shape and
background colour. It is trained on the procedural data (:mod:`tools.prior.data`) -- all
(colour, shape) pairs, held-out ones included, since it is a judge, not the prior -- with noise,
blur and colour jitter so that imperfect diffusion samples are still read correctly.

    python -m tools.prior.probe train --out tools/prior/probe.safetensors
    python -m tools.prior.probe evaluate --prior pds-tiny       # held-out quality figures

:func:`load_probe` loads the shipped weights; :func:`Probe.judge` returns names.
:func:`held_out_quality` samples a prior for the held-out combinations and scores them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import data

DEFAULT_PATH = Path(__file__).resolve().parent / "probe.safetensors"


class Probe(nn.Module):
    """Four strided conv blocks (64 -> 4 px) and three linear heads."""

    def __init__(self, width: int = 32):
        super().__init__()
        c = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(c[i], c[i + 1], 3, stride=1, padding=1), nn.GroupNorm(8, c[i + 1]), nn.SiLU(),
                       nn.Conv2d(c[i + 1], c[i + 1], 3, stride=2, padding=1), nn.SiLU()]
        self.features = nn.Sequential(*layers)
        d = c[-1] * 2
        self.color = nn.Linear(d, len(data.COLOR_NAMES))
        self.shape = nn.Linear(d, len(data.SHAPES))
        self.background = nn.Linear(d, len(data.COLOR_NAMES))

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """``images (B, 3, 64, 64)`` in [0, 1] -> logits per head."""
        if images.shape[-1] != data.RESOLUTION or images.shape[-2] != data.RESOLUTION:
            images = F.interpolate(images, size=(data.RESOLUTION, data.RESOLUTION), mode="bilinear",
                                   antialias=True, align_corners=False)
        h = self.features(images * 2 - 1)
        h = torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)
        return {"color": self.color(h), "shape": self.shape(h), "background": self.background(h)}

    @torch.no_grad()
    def judge(self, images: Tensor) -> list[dict[str, str]]:
        """Names of the predicted foreground colour, shape and background colour per image."""
        was = self.training
        self.eval()
        out = self(images.float())
        self.train(was)
        res = []
        for c, s, b in zip(out["color"].argmax(1).tolist(), out["shape"].argmax(1).tolist(),
                           out["background"].argmax(1).tolist()):
            res.append({"color": data.COLOR_NAMES[c], "shape": data.SHAPES[s], "background": data.COLOR_NAMES[b]})
        return res


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Gaussian noise, occasional blur, mild contrast change: what imperfect samples look like."""
    n = images.shape[0]
    dev = images.device
    u = torch.rand(n, 4, generator=generator, device=dev)
    blurred = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    x = torch.where((u[:, 0] < 0.3)[:, None, None, None], blurred, images)
    x = x + (u[:, 1] * 0.06)[:, None, None, None] * torch.randn(x.shape, generator=generator, device=dev)
    x = 0.5 + (x - 0.5) * (0.9 + 0.2 * u[:, 2])[:, None, None, None]
    return x.clamp(0, 1)


def train_probe(out: Union[str, Path] = DEFAULT_PATH, *, steps: int = 1500, batch_size: int = 128, lr: float = 2e-3,
                seed: int = 0, device="cpu", max_seconds: Optional[float] = None, log: Callable[[str], None] = print) -> Probe:
    """Train the probe on fresh procedural data and save it (safetensors, ~1 MB)."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    dev = torch.device(device)
    probe = Probe().to(dev)
    opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    g = torch.Generator(device=dev).manual_seed(seed)
    t0 = time.time()
    for step in range(1, steps + 1):
        scenes = data.random_scenes(batch_size, g, dev, include_held_out=True, color_jitter=0.08, p_ball=1 / 7)
        x = augment(data.render_scenes(scenes), g)
        logits = probe(x)
        loss = (F.cross_entropy(logits["color"], scenes.color) + F.cross_entropy(logits["shape"], scenes.shape)
                + F.cross_entropy(logits["background"], scenes.background))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == 1:
            log(f"probe step {step} loss {loss.item():.4f} ({time.time() - t0:.0f} s)")
        if max_seconds is not None and time.time() - t0 > max_seconds:
            log(f"probe: time limit at step {step}")
            break
    probe.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # float16 on disk (~1 MB); load_probe upcasts
    save_file({k: v.detach().half().cpu().contiguous() for k, v in probe.state_dict().items()}, str(out),
              metadata={"trained_steps": str(step), "seed": str(seed), "batch_size": str(batch_size), "dtype": "float16"})
    return probe


def load_probe(path: Union[str, Path] = DEFAULT_PATH, device="cpu") -> Probe:
    """Load the shipped probe weights."""
    from safetensors.torch import load_file

    probe = Probe()
    probe.load_state_dict(load_file(str(path)))
    return probe.to(device).eval()


@torch.no_grad()
def accuracy_on_data(probe: Probe, n: int = 2048, seed: int = 123, device="cpu") -> dict[str, float]:
    """Accuracy of each head on fresh clean procedural pictures (held-out pairs included)."""
    g = torch.Generator(device=device).manual_seed(seed)
    scenes = data.random_scenes(n, g, device, include_held_out=True)
    out = probe.to(device).eval()(data.render_scenes(scenes))
    return {k: float((out[k].argmax(1) == getattr(scenes, k)).float().mean()) for k in ("color", "shape", "background")}


def score(judged: Sequence[dict[str, str]], color: str, shape: str, background: str = "white") -> dict[str, float]:
    n = max(len(judged), 1)
    return {"color": sum(j["color"] == color for j in judged) / n, "shape": sum(j["shape"] == shape for j in judged) / n,
            "background": sum(j["background"] == background for j in judged) / n, "n": len(judged)}


def held_out_quality(sample_fn: Callable[[list[str], torch.Generator], Tensor], probe: Probe, *,
                     combos: Sequence[tuple[str, str]] = data.HELD_OUT, n_per_combo: int = 10,
                     seeds: Sequence[int] = (0, 1, 2), background: str = "white", device="cpu") -> dict:
    """Sample ``n_per_combo`` pictures per (colour, shape) and seed with ``sample_fn(prompts, generator)
    -> (B, 3, H, W)`` in [0, 1] and score them with ``probe``. Returns per-combo and overall
    accuracies."""
    per: dict[str, dict] = {}
    all_j: list[tuple[dict, str, str]] = []
    for color, shape in combos:
        prompt = data.caption(color, shape, background)
        judged = []
        for seed in seeds:
            g = torch.Generator(device=device).manual_seed(seed)
            imgs = sample_fn([prompt] * n_per_combo, g)
            judged += probe.judge(imgs.to(next(probe.parameters()).device))
        per[prompt] = score(judged, color, shape, background)
        all_j += [(j, color, shape) for j in judged]
    n = len(all_j)
    return {
        "color": sum(j["color"] == c for j, c, _ in all_j) / n,
        "shape": sum(j["shape"] == s for j, _, s in all_j) / n,
        "background": sum(j["background"] == background for j, _, _ in all_j) / n,
        "n": n, "per_prompt": per,
    }


#: Seen (trained) combinations, for comparison with the held-out figures.
SEEN_EXAMPLES: tuple[tuple[str, str], ...] = (("red", "circle"), ("blue", "star"), ("yellow", "heart"),
                                              ("purple", "triangle"), ("green", "square"), ("orange", "diamond"),
                                              ("pink", "ball"))


def prior_sample_fn(prior, steps: int = 50, guidance_scale: float = 7.5):
    """``sample_fn`` for :func:`held_out_quality` using :func:`pds.sampling.sample`."""
    from pds.sampling import sample

    def fn(prompts, generator):
        return sample(prior, prompts, steps=steps, guidance_scale=guidance_scale, generator=generator)

    return fn


def main(argv: Optional[Sequence[str]] = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tools.prior.probe")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the probe on procedural data")
    t.add_argument("--out", default=str(DEFAULT_PATH))
    t.add_argument("--steps", type=int, default=1500)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu")
    t.add_argument("--max-seconds", type=float, default=None)
    e = sub.add_parser("evaluate", help="score a prior's samples for the held-out combinations")
    e.add_argument("--prior", default="pds-tiny", help="name or model folder (a training run's model/) for pds.load_prior")
    e.add_argument("--probe", default=str(DEFAULT_PATH))
    e.add_argument("--n", type=int, default=10, help="samples per combination and seed")
    e.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    e.add_argument("--steps", type=int, default=50)
    e.add_argument("--guidance", type=float, default=7.5)
    e.add_argument("--device", default=None)
    e.add_argument("--json", default=None, help="also write the figures here")
    a = p.parse_args(argv)
    if a.cmd == "train":
        probe = train_probe(a.out, steps=a.steps, batch_size=a.batch_size, seed=a.seed, device=a.device,
                            max_seconds=a.max_seconds)
        print(json.dumps({"accuracy_on_procedural_data": accuracy_on_data(probe, device=a.device)}))
    else:
        import pds

        prior = pds.load_prior(a.prior, device=a.device)
        probe = load_probe(a.probe, device=prior.device)
        res = held_out_quality(prior_sample_fn(prior, a.steps, a.guidance), probe, n_per_combo=a.n,
                               seeds=a.seeds, device=prior.device)
        res["seen_combos"] = held_out_quality(prior_sample_fn(prior, a.steps, a.guidance), probe, combos=SEEN_EXAMPLES,
                                              n_per_combo=a.n, seeds=a.seeds, device=prior.device)
        res["settings"] = {"steps": a.steps, "guidance": a.guidance, "seeds": a.seeds, "n_per_combo_and_seed": a.n,
                           "sampler": "pds.sampling.sample"}
    if a.cmd == "evaluate":
        print(json.dumps({k: v for k, v in res.items() if k not in ("per_prompt",)}, indent=2))
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
