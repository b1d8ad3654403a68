"""Train the embedded prior ``pds-tiny`` from scratch on procedural data.

    python -m pds.embedded.train --out runs/pds-tiny                  # CPU default, stops at 110 min
    python -m pds.embedded.train --out runs/pds-tiny --preset gpu     # CUDA, bf16, large batch
    python -m pds.embedded.train --out runs/pds-tiny --resume         # continue from checkpoint.pt

Standard DDPM training (Ho et al. 2020): x0 in [-1, 1], t ~ U{0..999}, x_t = sqrt(abar_t) x0 +
sqrt(1 - abar_t) eps, loss = ||eps - eps_theta(x_t, t, text)||^2. The text encoder is trained
jointly; 10% of the captions are replaced by "" so the same network is the unconditional model
of classifier-free guidance (Ho & Salimans 2022). An exponential moving average (EMA) of both
networks is what gets shipped.

Everything is seeded (``--seed``): on the same device with the same arguments a run repeats.
``--max-minutes`` / ``--deadline-unix`` stop training at a wall-clock deadline (the learning-rate
schedule then follows the larger of step progress and time progress); the number of steps
actually run is recorded in ``pds_prior.json`` so the run can be repeated with ``--steps N``.

Outputs in ``--out``: ``model/`` (the prior folder, loadable by ``pds.load_prior``),
``loss.csv``, ``loss.png``, ``samples.png``, ``train.log``, ``checkpoint.pt``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from . import data, model

PRESETS = {
    # 2-core CPU: ~3 s a step at batch 32 (120 GFLOP); stops after 110 minutes of wall time so that
    # the run, the model folder and the sample grid fit in 2 hours
    "cpu": dict(device="cpu", batch_size=32, steps=6000, lr=5e-4, warmup_steps=200, ema_decay=0.999,
                checkpoint_every=100, log_every=25, data_chunk=4, max_minutes=110.0),
    # one big GPU: bf16 autocast, large batch; usually capped by --max-minutes
    "gpu": dict(device="cuda", batch_size=512, steps=40000, lr=5e-4, warmup_steps=500, ema_decay=0.9995,
                checkpoint_every=2000, log_every=100, data_chunk=8),
}


@dataclass(frozen=True)
class TrainConfig:
    """Training run settings (saved in ``train.log`` and ``pds_prior.json``)."""

    out: str
    """Run folder; the model folder is ``out/model``."""
    device: str = "cpu"
    batch_size: int = 32
    steps: int = 6000
    """Optimizer steps (upper bound when a deadline is set)."""
    lr: float = 5e-4
    """Peak AdamW learning rate (linear warm-up, cosine decay to ``min_lr_ratio * lr``)."""
    min_lr_ratio: float = 0.1
    warmup_steps: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    cond_dropout: float = 0.1
    """Probability that a caption is replaced by "" (classifier-free guidance)."""
    seed: int = 0
    max_minutes: Optional[float] = None
    """Stop training this many minutes after the script started."""
    deadline_unix: Optional[float] = None
    """Stop training at this absolute time (seconds since the epoch)."""
    checkpoint_every: int = 250
    log_every: int = 25
    data_chunk: int = 4
    """Scenes are rendered ``data_chunk`` batches at a time."""
    bf16: Optional[bool] = None
    """bf16 autocast; default on for CUDA."""
    num_threads: Optional[int] = None
    sample_steps: int = 50
    sample_guidance: float = 7.5
    resume: bool = False
    save_dtype: str = "float32"
    """dtype of the saved model weights (float32 or float16)."""
    prediction_type: str = "epsilon"
    """What the UNet predicts: "epsilon" (the noise) or "v_prediction" (v = sqrt(abar) eps -
    sqrt(1 - abar) x0, Salimans & Ho 2022; well conditioned at t ~ T, where an epsilon model's
    x0 estimate divides its error by sqrt(abar_t) ~ 0.002)."""
    offset_noise: float = 0.0
    """Std of a per-image, per-channel constant added to the training noise (Guttenberg 2023);
    teaches the model to change an image's mean colour."""
    init_from: Optional[str] = None
    """Start from the weights (and architecture) of this model folder instead of random ones."""
    model: model.ModelConfig = field(default_factory=model.ModelConfig)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


class Tokens:
    """Caches the token ids of each distinct caption (the caption set is small)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.cache: dict[str, torch.Tensor] = {}

    def __call__(self, captions: Sequence[str], device) -> torch.Tensor:
        missing = [c for c in dict.fromkeys(captions) if c not in self.cache]
        if missing:
            ids = self.tokenizer(missing, padding="max_length", max_length=self.tokenizer.model_max_length,
                                 truncation=True, return_tensors="pt")["input_ids"]
            for c, row in zip(missing, ids):
                self.cache[c] = row
        return torch.stack([self.cache[c] for c in captions]).to(device)


class EMA:
    """Exponential moving average of parameters, with the usual warm-up
    ``decay_k = min(decay, (1 + k) / (10 + k))``."""

    def __init__(self, modules: Sequence[torch.nn.Module], decay: float):
        self.params = [p for m in modules for p in m.parameters()]
        self.shadow = [p.detach().clone().float() for p in self.params]
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.shadow, [p.detach().float() for p in self.params], 1.0 - d)

    @torch.no_grad()
    def copy_to(self, modules: Sequence[torch.nn.Module]) -> None:
        targets = [p for m in modules for p in m.parameters()]
        for t, s in zip(targets, self.shadow):
            t.copy_(s.to(t.dtype))

    def state_dict(self) -> dict:
        return {"shadow": self.shadow, "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        for s, v in zip(self.shadow, state["shadow"]):
            s.copy_(v)
        self.updates = state["updates"]


def lr_factor(progress: float, step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    p = min(max(progress, 0.0), 1.0)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p))


@torch.no_grad()
def sample_components(unet, text_encoder, tokenizer, scheduler, prompts: Sequence[str], *, steps: int = 50,
                      guidance_scale: float = 7.5, generator: Optional[torch.Generator] = None,
                      device="cpu", autocast_dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """Minimal deterministic DDIM sampler over raw components (used before the model folder
    exists; the public sampler is :func:`pds.sampling.sample`). Returns ``(B, 3, R, R)`` in
    [0, 1]."""
    n = len(prompts)
    tok = Tokens(tokenizer)
    ids = tok([""] * n + list(prompts), device)
    emb = text_encoder(ids)[0]
    res = unet.config.sample_size
    x = torch.randn((n, 3, res, res), generator=generator, device=device)
    ac = scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)
    T = scheduler.config.num_train_timesteps
    if getattr(scheduler.config, "timestep_spacing", "leading") == "trailing":
        ts = [int(round(T - i * T / steps)) - 1 for i in range(steps)]  # 999, ..., T/steps - 1
    else:
        ts = list(range((steps - 1) * (T // steps), -1, -(T // steps)))
    for i, t in enumerate(ts):
        t_in = torch.full((2 * n,), t, device=device, dtype=torch.long)
        with torch.autocast(device_type=torch.device(device).type, dtype=autocast_dtype or torch.bfloat16,
                            enabled=autocast_dtype is not None):
            out = unet(torch.cat([x, x]), t_in, encoder_hidden_states=emb).sample.float()
        if scheduler.config.prediction_type == "v_prediction":  # eps = sqrt(abar) v + sqrt(1 - abar) x_t
            a_in = ac[t]
            out = a_in.sqrt() * out + (1 - a_in).sqrt() * torch.cat([x, x])
        eu, ec = out.chunk(2)
        eps = eu + guidance_scale * (ec - eu)
        a_t = ac[t]
        a_prev = ac[ts[i + 1]] if i + 1 < len(ts) else torch.ones((), device=device)
        x0 = ((x - (1 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-1, 1)
        eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return ((x + 1) / 2).clamp(0, 1)


def load_components(folder, device="cpu"):
    """(unet, text_encoder, tokenizer, scheduler) of a model folder, float32, eval mode."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import AutoModel, AutoTokenizer

    folder = Path(folder)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet", torch_dtype=torch.float32).to(device).eval()
    te = AutoModel.from_pretrained(folder / "text_encoder", dtype=torch.float32).to(device).eval()
    tok = AutoTokenizer.from_pretrained(folder / "tokenizer")
    sch = DDPMScheduler.from_pretrained(folder / "scheduler")
    return unet, te, tok, sch


def folder_sample_fn(folder, device="cpu", steps: int = 50, guidance_scale: float = 7.5):
    """``sample_fn(prompts, generator)`` over a raw model folder (no ``pds.load_prior`` needed)."""
    unet, te, tok, sch = load_components(folder, device)

    def fn(prompts, generator):
        return sample_components(unet, te, tok, sch, prompts, steps=steps, guidance_scale=guidance_scale,
                                 generator=generator, device=device)

    return fn


def image_grid(images: torch.Tensor, ncols: int, labels: Optional[Sequence[str]] = None, scale: int = 2):
    """PIL grid of ``(N, 3, H, W)`` images in [0, 1]; one label per row drawn on the left."""
    from PIL import Image, ImageDraw

    n, _, h, w = images.shape
    nrows = math.ceil(n / ncols)
    lw = 230 if labels else 0
    H, W = h * scale, w * scale
    canvas = Image.new("RGB", (lw + ncols * (W + 2), nrows * (H + 2)), "white")
    arr = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    draw = ImageDraw.Draw(canvas)
    for i in range(n):
        r, c = divmod(i, ncols)
        tile = Image.fromarray(arr[i]).resize((W, H), Image.NEAREST)
        canvas.paste(tile, (lw + c * (W + 2), r * (H + 2)))
    if labels:
        for r, text in enumerate(labels[:nrows]):
            draw.text((4, r * (H + 2) + H // 2 - 5), text, fill="black")
    return canvas


def plot_loss(rows: Sequence[tuple[int, float]], path: Path, title: str = "training loss (MSE on epsilon)") -> None:
    """Loss curve (log y, with a moving average) drawn with PIL."""
    from PIL import Image, ImageDraw

    W, H, m = 800, 450, 60
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    if len(rows) < 2:
        img.save(path)
        return
    steps = [r[0] for r in rows]
    losses = [max(r[1], 1e-6) for r in rows]
    k = max(1, len(losses) // 50)
    smooth = [sum(losses[max(0, i - k):i + 1]) / len(losses[max(0, i - k):i + 1]) for i in range(len(losses))]
    lo, hi = math.log10(min(losses)), math.log10(max(losses))
    hi = max(hi, lo + 1e-3)
    s0, s1 = steps[0], max(steps[-1], steps[0] + 1)

    def xy(s, v):
        return (m + (W - 2 * m) * (s - s0) / (s1 - s0), H - m - (H - 2 * m) * (math.log10(max(v, 1e-6)) - lo) / (hi - lo))

    d.rectangle([m, m, W - m, H - m], outline="black")
    d.line([xy(s, v) for s, v in zip(steps, losses)], fill=(180, 200, 240), width=1)
    d.line([xy(s, v) for s, v in zip(steps, smooth)], fill=(20, 60, 200), width=2)
    for frac in (0, 0.5, 1):
        v = 10 ** (lo + frac * (hi - lo))
        y = xy(s0, v)[1]
        d.text((4, y - 6), f"{v:.3g}", fill="black")
        s = s0 + frac * (s1 - s0)
        d.text((xy(s, 10 ** lo)[0] - 15, H - m + 8), f"{int(s)}", fill="black")
    d.text((m, 20), f"{title}; final (smoothed) {smooth[-1]:.4f}", fill="black")
    d.text((W // 2 - 15, H - 25), "step", fill="black")
    img.save(path)


SAMPLE_PROMPTS = [
    "a red circle", "a blue star on a yellow background", "a green ball", "an orange square",
    "a yellow heart on a blue background", "a black triangle", "a pink diamond", "a purple ball on a white background",
    # held-out combinations (never seen in training)
    "a purple star", "an orange heart", "a green triangle", "a pink square", "a blue diamond", "a brown ball",
    "a gray star on a green background", "a white circle on a red background",
]


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def save_model_folder(folder: Path, text_encoder, tokenizer, scheduler, ema: EMA,
                      unet_template, metadata: dict, save_dtype: torch.dtype) -> None:
    """Write the diffusers-layout prior folder with the EMA weights."""
    import copy

    folder.mkdir(parents=True, exist_ok=True)
    unet = copy.deepcopy(unet_template).float().cpu()
    te = copy.deepcopy(text_encoder).float().cpu()
    ema.copy_to([unet, te])
    unet.to(save_dtype).save_pretrained(folder / "unet", safe_serialization=True)
    te.to(save_dtype).save_pretrained(folder / "text_encoder", safe_serialization=True)
    tokenizer.save_pretrained(folder / "tokenizer")
    (folder / "tokenizer" / "vocab.txt").write_text("\n".join(model.token_list()) + "\n")
    scheduler.save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(json.dumps(model.model_index(), indent=2) + "\n")
    (folder / "pds_prior.json").write_text(json.dumps(metadata, indent=2) + "\n")


def train(cfg: TrainConfig, argv: Optional[Sequence[str]] = None) -> Path:
    t_start = time.time()
    deadline = cfg.deadline_unix
    if cfg.max_minutes is not None:
        d2 = t_start + 60.0 * cfg.max_minutes
        deadline = d2 if deadline is None else min(deadline, d2)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = torch.device(cfg.device)
    use_bf16 = cfg.bf16 if cfg.bf16 is not None else device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    log_f = open(out / "train.log", "a")

    def log(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')} +{time.time() - t_start:7.1f}s] {msg}"
        print(line, flush=True)
        log_f.write(line + "\n")
        log_f.flush()

    torch.manual_seed(cfg.seed)
    tokenizer = model.build_tokenizer(out / "tokenizer_src")
    if cfg.init_from:
        from diffusers import UNet2DConditionModel
        from transformers import AutoModel

        src = Path(cfg.init_from)
        unet = UNet2DConditionModel.from_pretrained(src / "unet", torch_dtype=torch.float32).to(device)
        text_encoder = AutoModel.from_pretrained(src / "text_encoder", dtype=torch.float32).to(device)
    else:
        text_encoder = model.build_text_encoder(cfg.model.text, len(tokenizer)).to(device)
        unet = model.build_unet(cfg.model.unet, cfg.model.text.hidden_size, cfg.model.resolution).to(device)
    scheduler = model.build_scheduler(cfg.prediction_type)
    n_unet = sum(p.numel() for p in unet.parameters())
    n_text = sum(p.numel() for p in text_encoder.parameters())
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay,
                            **({"fused": True} if device.type == "cuda" else {}))
    ema = EMA([unet, text_encoder], cfg.ema_decay)
    g_data = torch.Generator(device=device).manual_seed(cfg.seed)
    g_cpu = torch.Generator().manual_seed(cfg.seed + 1)
    tokens = Tokens(tokenizer)
    ac = scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)
    losses: list[tuple[int, float]] = []
    step = 0
    elapsed_before = 0.0
    ckpt_path = out / "checkpoint.pt"
    if cfg.resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        unet.load_state_dict(ck["unet"])
        text_encoder.load_state_dict(ck["text_encoder"])
        opt.load_state_dict(ck["opt"])
        ema.load_state_dict(ck["ema"])
        g_data.set_state(ck["g_data"].cpu())
        g_cpu.set_state(ck["g_cpu"])
        losses = [tuple(r) for r in ck["losses"]]
        step = ck["step"]
        elapsed_before = ck.get("elapsed", 0.0)
        log(f"resumed from {ckpt_path} at step {step}")
    log(f"config {json.dumps(asdict(cfg))}")
    log(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or 'cpu'}), "
        f"bf16 {use_bf16}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    log(f"unet {n_unet / 1e6:.2f} M params, text encoder {n_text / 1e6:.2f} M params, vocab {len(tokenizer)}")

    def save_checkpoint():
        torch.save({"unet": unet.state_dict(), "text_encoder": text_encoder.state_dict(), "opt": opt.state_dict(),
                    "ema": ema.state_dict(), "g_data": g_data.get_state(), "g_cpu": g_cpu.get_state(),
                    "losses": losses, "step": step, "elapsed": elapsed_before + time.time() - t_train,
                    "config": asdict(cfg)}, ckpt_path.with_suffix(".tmp"))
        os.replace(ckpt_path.with_suffix(".tmp"), ckpt_path)

    unet.train()
    text_encoder.train()
    t_train = time.time()
    step_start = step
    budget = None if deadline is None else max(deadline - t_train, 1.0)
    chunk: list = []
    running = None
    stop_reason = "steps"
    while step < cfg.steps:
        if deadline is not None and time.time() >= deadline:
            stop_reason = "deadline"
            break
        if not chunk:
            imgs, caps, _ = data.sample_batch(cfg.batch_size * cfg.data_chunk, g_data, device, cpu_generator=g_cpu)
            drop = torch.rand(len(caps), generator=g_cpu) < cfg.cond_dropout
            caps = ["" if dr else c for c, dr in zip(caps, drop.tolist())]
            ids = tokens(caps, device)
            chunk = [(imgs[i:i + cfg.batch_size], ids[i:i + cfg.batch_size])
                     for i in range(0, len(caps), cfg.batch_size)][::-1]
        imgs, ids = chunk.pop()
        progress = step / cfg.steps
        if budget is not None:
            progress = max(progress, (time.time() - t_train) / budget)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(progress, step, cfg)
        x0 = imgs * 2 - 1
        noise = torch.randn(x0.shape, generator=g_data, device=device)
        if cfg.offset_noise:
            noise = noise + cfg.offset_noise * torch.randn((x0.shape[0], x0.shape[1], 1, 1), generator=g_data, device=device)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), generator=g_data, device=device)
        a = ac[t][:, None, None, None]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            emb = text_encoder(ids)[0]
            pred = unet(x_t, t, encoder_hidden_states=emb).sample
        target = noise if cfg.prediction_type == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * x0
        loss = F.mse_loss(pred.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        ema.update()
        step += 1
        if step % cfg.log_every == 0 or step == 1:
            lv = loss.item()
            losses.append((step, lv))
            running = lv if running is None else 0.9 * running + 0.1 * lv
            dt = time.time() - t_train
            log(f"step {step} loss {lv:.4f} (avg {running:.4f}) lr {opt.param_groups[0]['lr']:.2e} "
                f"{dt / max(step - step_start, 1):.3f} s/step")
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            save_checkpoint()
    train_wall = elapsed_before + time.time() - t_train
    log(f"stopped ({stop_reason}) at step {step} after {train_wall:.0f} s of training")
    save_checkpoint()

    # loss curve
    with open(out / "loss.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "loss"])
        w.writerows(losses)
    plot_loss(losses, out / "loss.png", f"training loss (MSE on {'epsilon' if cfg.prediction_type == 'epsilon' else 'v'})")
    tail = [v for _, v in losses[-20:]]
    final_loss = sum(tail) / max(len(tail), 1)

    # model folder (EMA weights)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    training = {
        "command": "python -m pds.embedded.train " + " ".join(argv if argv is not None else sys.argv[1:]),
        "reproduce": f"python -m pds.embedded.train --out OUT --device {cfg.device} --batch-size {cfg.batch_size} "
                     f"--steps {step} --seed {cfg.seed}" + (f" --preset gpu" if device.type == "cuda" else ""),
        "seed": cfg.seed, "steps": step, "batch_size": cfg.batch_size, "samples_seen": step * cfg.batch_size,
        "wall_time_s": round(train_wall, 1), "device": dev_name, "bf16_autocast": use_bf16,
        "final_loss": round(final_loss, 5), "lr": cfg.lr, "ema_decay": cfg.ema_decay, "cond_dropout": cfg.cond_dropout,
        "torch": torch.__version__, "params": {"unet": n_unet, "text_encoder": n_text},
        "architecture": asdict(cfg.model),
    }
    folder = out / "model"
    save_model_folder(folder, text_encoder, tokenizer, scheduler, ema, unet, model.prior_metadata(training),
                      getattr(torch, cfg.save_dtype))
    log(f"saved model folder {folder} ({sum(p.stat().st_size for p in folder.rglob('*') if p.is_file()) / 1e6:.1f} MB)")

    # sample grid with the EMA weights
    import copy

    su, st = copy.deepcopy(unet).eval(), copy.deepcopy(text_encoder).eval()
    ema.copy_to([su, st])
    g = torch.Generator(device=device).manual_seed(1234)
    per = 4
    prompts = [p for p in SAMPLE_PROMPTS for _ in range(per)]
    imgs = sample_components(su, st, tokenizer, scheduler, prompts, steps=cfg.sample_steps,
                             guidance_scale=cfg.sample_guidance, generator=g, device=device,
                             autocast_dtype=torch.bfloat16 if use_bf16 else None)
    image_grid(imgs.float().cpu(), per * 2, [f"{a} | {b}" for a, b in zip(SAMPLE_PROMPTS[::2], SAMPLE_PROMPTS[1::2])]).save(out / "samples.png")
    log(f"wrote samples.png ({len(prompts)} samples, {cfg.sample_steps} DDIM steps, guidance {cfg.sample_guidance}); "
        f"final loss {final_loss:.4f}; total {time.time() - t_start:.0f} s")
    log_f.close()
    return folder


def parse_args(argv: Optional[Sequence[str]] = None) -> TrainConfig:
    p = argparse.ArgumentParser(prog="python -m pds.embedded.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="run folder (model/, loss.csv, loss.png, samples.png, train.log)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="defaults for 'cpu' (2 cores, < 2 h) or 'gpu' (CUDA, bf16); default: cpu")
    for f in ("device", "batch_size", "steps", "lr", "warmup_steps", "ema_decay", "cond_dropout", "seed",
              "max_minutes", "deadline_unix", "checkpoint_every", "log_every", "data_chunk", "num_threads",
              "sample_steps", "sample_guidance", "save_dtype", "prediction_type", "offset_noise", "init_from"):
        default = TrainConfig.__dataclass_fields__[f].default
        typ = type(default) if default is not None else float
        if f in ("num_threads",):
            typ = int
        if f in ("init_from",):
            typ = str
        p.add_argument("--" + f.replace("_", "-"), type=typ, default=None, help=f"(default {default})")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast (default: on CUDA)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    a = p.parse_args(argv)
    base = dict(PRESETS[a.preset or ("gpu" if a.device == "cuda" else "cpu")])
    base.update({k: v for k, v in vars(a).items() if v is not None and k not in ("preset",)})
    return TrainConfig(**base)


def main(argv: Optional[Sequence[str]] = None) -> None:
    cfg = parse_args(argv)
    train(cfg, argv)


if __name__ == "__main__":
    main()
