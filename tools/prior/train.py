"""Train the embedded prior ``pds-tiny`` from scratch on procedural data.

    python -m tools.prior.train --out runs/pds-tiny                  # CPU default, stops at 110 min
    python -m tools.prior.train --out runs/pds-tiny --preset gpu     # CUDA, bf16, large batch
    python -m tools.prior.train --out runs/pds-tiny --resume         # continue from checkpoint.pt

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
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import torch

from . import data, model
from .checkpoint import load_checkpoint, save_checkpoint
from pds import maths
from pds.priors.diffusers_prior import PromptTokens
from pds.util.images import image_grid

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
    max_cpu_minutes: Optional[float] = None
    """Stop after this much CPU time of the process (all threads): the ablation budget, fair
    between runs that share a machine, unlike wall time."""
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
    vae: Optional[str] = None
    """An ``AutoencoderKL`` folder (from :mod:`tools.prior.autoencoder`): train in its latent
    space and ship it as the prior's ``vae/``. ``None``: pixel space."""
    arch: Optional[str] = None
    """UNet shape, a key of :data:`ARCHS`; ``None``: ``model.unet``."""
    text_pool: bool = False
    """Pooled text embedding added to the timestep embedding (see ``UNetConfig.text_pool``)."""
    min_snr_gamma: float = 0.0
    """Min-SNR-gamma loss weighting (Hang et al. 2023); 0 = plain MSE. With gamma = 5 the
    low-noise steps, which dominate the plain loss but decide only texture, stop crowding out
    the high-noise ones that decide colour and layout."""
    eval_n: int = 4
    """Probe evaluation at the end of the run: samples per held-out pair and seed (0 = skip)."""
    model: model.ModelConfig = field(default_factory=model.ModelConfig)


#: UNet shapes measured in the ablation (``--arch``). Latent shapes work on 16x16x4 (f = 4).
ARCHS: dict[str, model.UNetConfig] = {
    "pixel": model.UNetConfig(),
    # 16, 8, 4 px; cross-attention at 8 and 4 px and in the mid block
    "latent": model.UNetConfig(block_out_channels=(64, 128, 128),
                               down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                               up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                               norm_num_groups=16),
    # the same, cross-attention at 16 px too (256 tokens: cheap at this size)
    "latent-attn16": model.UNetConfig(block_out_channels=(64, 128, 128),
                                      down_block_types=("CrossAttnDownBlock2D",) * 3,
                                      up_block_types=("CrossAttnUpBlock2D",) * 3, norm_num_groups=16),
}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


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
                      unet_template, metadata: dict, save_dtype: torch.dtype, vae=None) -> None:
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
    if vae is not None:
        vae.to(save_dtype).save_pretrained(folder / "vae", safe_serialization=True)
        vae.float()
    (folder / "model_index.json").write_text(json.dumps(model.model_index(vae=vae is not None), indent=2) + "\n")
    (folder / "pds_prior.json").write_text(json.dumps(metadata, indent=2) + "\n")


class RunLog:
    """``train.log``: each message printed and appended as ``[HH:MM:SS +seconds] message``, the
    seconds counted from ``t0`` (the script's start)."""

    def __init__(self, path: Path, t0: float):
        self.t0 = t0
        self._f = open(path, "a")

    def __call__(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')} +{time.time() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        self._f.write(line + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


@dataclass
class TrainRun:
    """One training run in progress: its models, optimizer, EMA, random generators, and the
    progress a checkpoint saves (``step``, ``losses``, training seconds of earlier sessions)."""

    cfg: TrainConfig
    out: Path
    device: torch.device
    use_bf16: bool
    log: RunLog
    t_start: float
    """Wall time the script started (the log's clock, the deadline of ``--max-minutes``)."""
    tokenizer: object
    unet: torch.nn.Module
    text_encoder: torch.nn.Module
    vae: Optional[torch.nn.Module]
    """The frozen autoencoder of a latent run; ``None`` in pixel space."""
    latent_scale: float
    """The VAE's ``scaling_factor`` (1.0 in pixel space)."""
    scheduler: object
    params: list
    opt: torch.optim.Optimizer
    ema: EMA
    g_data: torch.Generator
    g_cpu: torch.Generator
    tokens: PromptTokens
    alphas_cumprod: torch.Tensor
    n_unet: int
    n_text: int
    losses: list = field(default_factory=list)
    step: int = 0
    elapsed_before: float = 0.0
    """Training seconds of the sessions before a ``--resume``."""
    t_train: float = 0.0
    """Wall time this session's training loop started."""

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def training_seconds(self) -> float:
        """Seconds of training so far, earlier sessions included."""
        return self.elapsed_before + time.time() - self.t_train


def resolve_deadline(cfg: TrainConfig, t_start: float) -> Optional[float]:
    """The wall-clock stop time: the earlier of ``--deadline-unix`` and ``--max-minutes`` after
    ``t_start``; ``None`` when neither is set."""
    deadline = cfg.deadline_unix
    if cfg.max_minutes is not None:
        d2 = t_start + 60.0 * cfg.max_minutes
        deadline = d2 if deadline is None else min(deadline, d2)
    return deadline


def setup_device(cfg: TrainConfig) -> tuple[torch.device, bool]:
    """Apply ``--num-threads`` and the CUDA speed flags (TF32, cuDNN benchmark); return the
    device and whether bf16 autocast is on (``--bf16``, default: on CUDA)."""
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = torch.device(cfg.device)
    use_bf16 = cfg.bf16 if cfg.bf16 is not None else device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return device, use_bf16


def build_networks(cfg: TrainConfig, tokenizer, device: torch.device):
    """The UNet and text encoder (from ``--init-from`` or freshly initialised from the seeded
    global generator) and the frozen VAE of ``--vae``. Returns ``(unet, text_encoder, vae,
    scaling_factor)``; ``vae`` is ``None`` and the factor 1.0 in pixel space."""
    if cfg.init_from:
        from diffusers import UNet2DConditionModel
        from transformers import AutoModel

        src = Path(cfg.init_from)
        unet = UNet2DConditionModel.from_pretrained(src / "unet", torch_dtype=torch.float32).to(device)
        text_encoder = AutoModel.from_pretrained(src / "text_encoder", dtype=torch.float32).to(device)
    vae, sf = None, 1.0
    if cfg.vae:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(cfg.vae, torch_dtype=torch.float32).to(device).eval().requires_grad_(False)
        sf = float(vae.config.scaling_factor)
    space_res = cfg.model.resolution // (2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1)
    space_ch = vae.config.latent_channels if vae is not None else 3
    if not cfg.init_from:
        text_encoder = model.build_text_encoder(cfg.model.text, len(tokenizer)).to(device)
        unet_cfg = replace(ARCHS[cfg.arch] if cfg.arch else cfg.model.unet, text_pool=cfg.text_pool)
        unet = model.build_unet(unet_cfg, cfg.model.text.hidden_size, space_res, space_ch).to(device)
    return unet, text_encoder, vae, sf


def build_run(cfg: TrainConfig, t_start: float) -> TrainRun:
    """Set up a run from scratch: the run folder and its ``train.log``, the device, the seeded
    tokenizer/networks/scheduler, the AdamW optimizer, the EMA and the data generators."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device, use_bf16 = setup_device(cfg)
    log = RunLog(out / "train.log", t_start)
    torch.manual_seed(cfg.seed)
    tokenizer = model.build_tokenizer(out / "tokenizer_src")
    unet, text_encoder, vae, sf = build_networks(cfg, tokenizer, device)
    scheduler = model.build_scheduler(cfg.prediction_type, clip_sample=vae is None)
    n_unet = sum(p.numel() for p in unet.parameters())
    n_text = sum(p.numel() for p in text_encoder.parameters())
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay,
                            **({"fused": True} if device.type == "cuda" else {}))
    ema = EMA([unet, text_encoder], cfg.ema_decay)
    g_data = torch.Generator(device=device).manual_seed(cfg.seed)
    g_cpu = torch.Generator().manual_seed(cfg.seed + 1)
    tokens = PromptTokens(tokenizer)
    ac = scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)
    return TrainRun(cfg=cfg, out=out, device=device, use_bf16=use_bf16, log=log, t_start=t_start,
                    tokenizer=tokenizer, unet=unet, text_encoder=text_encoder, vae=vae, latent_scale=sf,
                    scheduler=scheduler, params=params, opt=opt, ema=ema, g_data=g_data, g_cpu=g_cpu,
                    tokens=tokens, alphas_cumprod=ac, n_unet=n_unet, n_text=n_text)


def checkpoint_state(run: TrainRun) -> dict:
    """What ``checkpoint.pt`` holds (read back by :func:`resume_run` and :func:`export_checkpoint`)."""
    return {"unet": run.unet.state_dict(), "text_encoder": run.text_encoder.state_dict(), "opt": run.opt.state_dict(),
            "ema": run.ema.state_dict(), "g_data": run.g_data.get_state(), "g_cpu": run.g_cpu.get_state(),
            "losses": run.losses, "step": run.step, "elapsed": run.training_seconds(),
            "config": asdict(run.cfg)}


def resume_run(run: TrainRun) -> None:
    """With ``--resume`` and an ``OUT/checkpoint.pt``, continue where it stopped: weights,
    optimizer, EMA, generator states, loss history, step and training seconds. Without a
    checkpoint the run starts from scratch."""
    ckpt_path = run.checkpoint_path
    if run.cfg.resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, map_location=run.device)
        run.unet.load_state_dict(ck["unet"])
        run.text_encoder.load_state_dict(ck["text_encoder"])
        run.opt.load_state_dict(ck["opt"])
        run.ema.load_state_dict(ck["ema"])
        run.g_data.set_state(ck["g_data"].cpu())
        run.g_cpu.set_state(ck["g_cpu"])
        run.losses = [tuple(r) for r in ck["losses"]]
        run.step = ck["step"]
        run.elapsed_before = ck.get("elapsed", 0.0)
        run.log(f"resumed from {ckpt_path} at step {run.step}")


def log_run_header(run: TrainRun) -> None:
    """The config, device and model-size lines at the top of each session in ``train.log``."""
    cfg, device = run.cfg, run.device
    run.log(f"config {json.dumps(asdict(cfg))}")
    run.log(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or 'cpu'}), "
            f"bf16 {run.use_bf16}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    run.log(f"unet {run.n_unet / 1e6:.2f} M params, text encoder {run.n_text / 1e6:.2f} M params, vocab {len(run.tokenizer)}")


@dataclass
class StopRule:
    """When the training loop stops early, and how far through its budget it is: the
    wall-clock deadline (``--max-minutes`` / ``--deadline-unix``), the process CPU time
    (``--max-cpu-minutes``, counted from the loop's start) and the ``OUT/STOP`` file."""

    deadline: Optional[float]
    t_train: float
    wall_budget: Optional[float]
    cpu_budget: Optional[float]
    cpu0: float

    @classmethod
    def start(cls, cfg: TrainConfig, deadline: Optional[float], t_train: float) -> "StopRule":
        """The rule for a loop that starts at ``t_train`` (wall time; the CPU clock is read now)."""
        wall_budget = None if deadline is None else max(deadline - t_train, 1.0)
        cpu_budget = None if cfg.max_cpu_minutes is None else 60.0 * cfg.max_cpu_minutes
        return cls(deadline, t_train, wall_budget, cpu_budget, time.process_time())

    def reason(self, step: int, out: Path) -> Optional[str]:
        """Why training stops before ``step`` ("deadline", "cpu budget", "STOP file"), or ``None``.
        The STOP file (``touch OUT/STOP``, a graceful early stop) is looked for every 25 steps."""
        if self.deadline is not None and time.time() >= self.deadline:
            return "deadline"
        if self.cpu_budget is not None and time.process_time() - self.cpu0 >= self.cpu_budget:
            return "cpu budget"
        if step % 25 == 0 and (out / "STOP").exists():
            return "STOP file"
        return None

    def progress(self, step: int, steps: int) -> float:
        """Schedule progress: the largest of step, wall-time and CPU-time progress."""
        progress = step / steps
        if self.wall_budget is not None:
            progress = max(progress, (time.time() - self.t_train) / self.wall_budget)
        if self.cpu_budget is not None:
            progress = max(progress, (time.process_time() - self.cpu0) / self.cpu_budget)
        return progress


def next_chunk(run: TrainRun) -> list:
    """Render ``data_chunk`` batches at once (encoded to latents by the frozen VAE in latent
    space), drop captions for classifier-free guidance and tokenize them. Returns the
    ``(images, token ids)`` batches in reverse order, so that ``pop()`` yields them in order."""
    cfg, device = run.cfg, run.device
    imgs, caps, _ = data.sample_batch(cfg.batch_size * cfg.data_chunk, run.g_data, device, cpu_generator=run.g_cpu)
    if run.vae is not None:  # latents of the chunk, one encoder pass (frozen VAE, no gradient)
        with torch.no_grad():
            imgs = run.vae.encode(imgs * 2 - 1).latent_dist.sample(generator=run.g_data) * run.latent_scale
    drop = torch.rand(len(caps), generator=run.g_cpu) < cfg.cond_dropout
    caps = ["" if dr else c for c, dr in zip(caps, drop.tolist())]
    ids = run.tokens(caps, device)
    return [(imgs[i:i + cfg.batch_size], ids[i:i + cfg.batch_size])
            for i in range(0, len(caps), cfg.batch_size)][::-1]


def train_step(run: TrainRun, imgs: torch.Tensor, ids: torch.Tensor, lr: float) -> torch.Tensor:
    """One optimizer step at learning rate ``lr``: noise the batch at random timesteps, predict
    epsilon (or v), take the (min-SNR weighted) MSE, clip, step AdamW and update the EMA.
    Returns the loss (a tensor; read it only when logging)."""
    cfg, device = run.cfg, run.device
    for group in run.opt.param_groups:
        group["lr"] = lr
    x0 = imgs if run.vae is not None else imgs * 2 - 1
    noise = torch.randn(x0.shape, generator=run.g_data, device=device)
    if cfg.offset_noise:
        noise = noise + cfg.offset_noise * torch.randn((x0.shape[0], x0.shape[1], 1, 1), generator=run.g_data, device=device)
    t = torch.randint(0, run.scheduler.config.num_train_timesteps, (x0.shape[0],), generator=run.g_data, device=device)
    a = run.alphas_cumprod[t][:, None, None, None]
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=run.use_bf16):
        emb = run.text_encoder(ids)[0]
        pred = run.unet(x_t, t, encoder_hidden_states=emb).sample
    target = noise if cfg.prediction_type == "epsilon" else maths.v_target(x0, noise, a)
    per_sample = (pred.float() - target).pow(2).flatten(1).mean(1)
    if cfg.min_snr_gamma:
        snr = (a / (1 - a)).flatten()
        w = snr.clamp(max=cfg.min_snr_gamma) / (snr + 1 if cfg.prediction_type == "v_prediction" else snr)
        loss = (w * per_sample).mean()
    else:
        loss = per_sample.mean()
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
    run.opt.step()
    run.ema.update()
    return loss


def log_step(run: TrainRun, loss: torch.Tensor, running: Optional[float], step_start: int) -> Optional[float]:
    """Every ``log_every`` steps (and at step 1): record the loss in the history and log it with
    its running average, the learning rate and the seconds per step of this session. Returns the
    updated running average."""
    step = run.step
    if step % run.cfg.log_every == 0 or step == 1:
        lv = loss.item()
        run.losses.append((step, lv))
        running = lv if running is None else 0.9 * running + 0.1 * lv
        dt = time.time() - run.t_train
        run.log(f"step {step} loss {lv:.4f} (avg {running:.4f}) lr {run.opt.param_groups[0]['lr']:.2e} "
                f"{dt / max(step - step_start, 1):.3f} s/step")
    return running


def train_loop(run: TrainRun, deadline: Optional[float]) -> str:
    """Train from ``run.step`` to ``--steps`` or an early stop, logging and writing
    ``checkpoint.pt`` every ``checkpoint_every`` steps. Returns why it stopped: "steps",
    "deadline", "cpu budget" or "STOP file"."""
    cfg = run.cfg
    run.unet.train()
    run.text_encoder.train()
    run.t_train = time.time()
    step_start = run.step
    stop = StopRule.start(cfg, deadline, run.t_train)
    chunk: list = []
    running = None
    while run.step < cfg.steps:
        reason = stop.reason(run.step, run.out)
        if reason is not None:
            return reason
        if not chunk:
            chunk = next_chunk(run)
        imgs, ids = chunk.pop()
        lr = cfg.lr * lr_factor(stop.progress(run.step, cfg.steps), run.step, cfg)
        loss = train_step(run, imgs, ids, lr)
        run.step += 1
        running = log_step(run, loss, running, step_start)
        if cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0:
            save_checkpoint(run.checkpoint_path, checkpoint_state(run))
    return "steps"


def write_loss_curve(run: TrainRun) -> float:
    """``loss.csv`` and ``loss.png`` from the loss history; returns the final loss (the mean of
    the last 20 logged values)."""
    cfg, out, losses = run.cfg, run.out, run.losses
    with open(out / "loss.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "loss"])
        w.writerows(losses)
    plot_loss(losses, out / "loss.png", f"training loss (MSE on {'epsilon' if cfg.prediction_type == 'epsilon' else 'v'})")
    tail = [v for _, v in losses[-20:]]
    return sum(tail) / max(len(tail), 1)


def training_metadata(run: TrainRun, argv: Optional[Sequence[str]], train_wall: float, final_loss: float) -> dict:
    """The ``training`` record of ``pds_prior.json``: command, how to reproduce it, steps run,
    times, device, loss, settings and architecture."""
    cfg, device, step = run.cfg, run.device, run.step
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    return {
        "command": "python -m tools.prior.train " + " ".join(argv if argv is not None else sys.argv[1:]),
        "reproduce": f"python -m tools.prior.train --out OUT --device {cfg.device} --batch-size {cfg.batch_size} "
                     f"--steps {step} --seed {cfg.seed}" + (" --preset gpu" if device.type == "cuda" else ""),
        "seed": cfg.seed, "steps": step, "batch_size": cfg.batch_size, "samples_seen": step * cfg.batch_size,
        "wall_time_s": round(train_wall, 1), "device": dev_name, "bf16_autocast": run.use_bf16,
        "final_loss": round(final_loss, 5), "lr": cfg.lr, "ema_decay": cfg.ema_decay, "cond_dropout": cfg.cond_dropout,
        "torch": torch.__version__, "params": {"unet": run.n_unet, "text_encoder": run.n_text},
        "architecture": {**asdict(cfg.model), "unet": asdict(replace(ARCHS[cfg.arch] if cfg.arch else cfg.model.unet, text_pool=cfg.text_pool)),
                         "space": "latent" if run.vae is not None else "pixel"},
        "prediction_type": cfg.prediction_type, "min_snr_gamma": cfg.min_snr_gamma,
    }


def write_sample_grid(run: TrainRun, folder: Path, final_loss: float) -> None:
    """``samples.png``: 4 samples of each of :data:`SAMPLE_PROMPTS` from the saved model folder,
    through the public path (``pds.load_prior`` + ``pds.sampling.sample``, EMA weights)."""
    import pds
    from pds.sampling import sample

    cfg, device = run.cfg, run.device
    prior = pds.load_prior(str(folder), device=device, dtype=torch.float32)
    g = torch.Generator(device=device).manual_seed(1234)
    per = 4
    prompts = [p for p in SAMPLE_PROMPTS for _ in range(per)]
    imgs = torch.cat([sample(prior, prompts[i:i + 32], steps=cfg.sample_steps, guidance_scale=cfg.sample_guidance,
                             generator=g) for i in range(0, len(prompts), 32)])
    image_grid(imgs.float().cpu(), per * 2, [f"{a} | {b}" for a, b in zip(SAMPLE_PROMPTS[::2], SAMPLE_PROMPTS[1::2])],
               scale=2).save(run.out / "samples.png")
    run.log(f"wrote samples.png ({len(prompts)} samples, {cfg.sample_steps} DDIM steps, guidance {cfg.sample_guidance}); "
            f"final loss {final_loss:.4f}; total {time.time() - run.t_start:.0f} s")


def write_probe_eval(run: TrainRun, folder: Path, train_wall: float, final_loss: float) -> None:
    """``eval.json``: the probe's held-out and seen quality of the model folder (:func:`probe_eval`,
    ``--eval-n`` samples per pair and seed), logged in one line."""
    cfg, step = run.cfg, run.step
    ev = probe_eval(folder, n_per_combo=cfg.eval_n, steps=25, guidance_scale=cfg.sample_guidance)
    ev.update(steps=step, samples_seen=step * cfg.batch_size, train_wall_s=round(train_wall, 1), final_loss=final_loss)
    (run.out / "eval.json").write_text(json.dumps(ev, indent=2) + "\n")
    run.log(f"probe (held-out, n={ev['held_out']['n']}): colour {ev['held_out']['color']:.2f} shape "
            f"{ev['held_out']['shape']:.2f} white bg {ev['held_out']['background']:.2f}; seen: colour "
            f"{ev['seen']['color']:.2f} shape {ev['seen']['shape']:.2f} white bg {ev['seen']['background']:.2f}")


def export_run(run: TrainRun, argv: Optional[Sequence[str]], train_wall: float) -> Path:
    """The end of a run: loss curve, the model folder ``OUT/model`` (EMA weights), the sample
    grid and, with ``--eval-n``, the probe evaluation. Returns the model folder."""
    final_loss = write_loss_curve(run)
    folder = run.out / "model"
    metadata = model.prior_metadata(training_metadata(run, argv, train_wall, final_loss), latent=run.vae is not None)
    save_model_folder(folder, run.text_encoder, run.tokenizer, run.scheduler, run.ema, run.unet, metadata,
                      getattr(torch, run.cfg.save_dtype), vae=run.vae)
    run.log(f"saved model folder {folder} ({sum(p.stat().st_size for p in folder.rglob('*') if p.is_file()) / 1e6:.1f} MB)")
    write_sample_grid(run, folder, final_loss)
    if run.cfg.eval_n:
        write_probe_eval(run, folder, train_wall, final_loss)
    return folder


def train(cfg: TrainConfig, argv: Optional[Sequence[str]] = None) -> Path:
    """Run a training session (see the module docstring): set up, resume with ``--resume``,
    train to ``--steps`` or a deadline/budget/STOP file, save the final checkpoint, then write
    the model folder, loss curve, samples and evaluation. ``argv`` is recorded as the command.
    Returns the model folder ``OUT/model``."""
    t_start = time.time()
    deadline = resolve_deadline(cfg, t_start)
    run = build_run(cfg, t_start)
    resume_run(run)
    log_run_header(run)
    stop_reason = train_loop(run, deadline)
    train_wall = run.training_seconds()
    run.log(f"stopped ({stop_reason}) at step {run.step} after {train_wall:.0f} s of training")
    save_checkpoint(run.checkpoint_path, checkpoint_state(run))
    folder = export_run(run, argv, train_wall)
    run.log.close()
    return folder


def export_checkpoint(run: Path, folder: Path) -> Path:
    """Write the model folder of ``run/checkpoint.pt`` (its EMA weights) to ``folder`` without
    training: for a look at a run in progress, or to ship a run that was stopped before it wrote
    ``model/``. Returns ``folder``."""
    ck = load_checkpoint(Path(run) / "checkpoint.pt", map_location="cpu")
    c = ck["config"]
    tokenizer = model.build_tokenizer(Path(run) / "tokenizer_src")
    text_cfg = model.TextEncoderConfig(**c["model"]["text"])
    unet_raw = asdict(ARCHS[c["arch"]]) if c.get("arch") else c["model"]["unet"]
    unet_cfg = model.UNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in unet_raw.items()})
    unet_cfg = replace(unet_cfg, text_pool=bool(c.get("text_pool")))
    vae = None
    if c.get("vae"):
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(c["vae"], torch_dtype=torch.float32).eval()
    res = c["model"]["resolution"] // (2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1)
    text_encoder = model.build_text_encoder(text_cfg, len(tokenizer))
    unet = model.build_unet(unet_cfg, text_cfg.hidden_size, res, vae.config.latent_channels if vae is not None else 3)
    ema = EMA([unet, text_encoder], c["ema_decay"])
    ema.load_state_dict(ck["ema"])
    scheduler = model.build_scheduler(c["prediction_type"], clip_sample=vae is None)
    tail = [v for _, v in ck["losses"][-20:]]
    training = {"exported_from": str(Path(run) / "checkpoint.pt"), "steps": ck["step"],
                "batch_size": c["batch_size"], "samples_seen": ck["step"] * c["batch_size"],
                "wall_time_s": round(ck.get("elapsed", 0.0), 1), "final_loss": round(sum(tail) / max(len(tail), 1), 5),
                "prediction_type": c["prediction_type"], "min_snr_gamma": c.get("min_snr_gamma", 0.0),
                "architecture": {"unet": asdict(unet_cfg), "text": asdict(text_cfg),
                                 "space": "latent" if vae is not None else "pixel"}}
    save_model_folder(Path(folder), text_encoder, tokenizer, scheduler, ema, unet,
                      model.prior_metadata(training, latent=vae is not None), torch.float32, vae=vae)
    return Path(folder)


def probe_eval(folder, *, n_per_combo: int = 4, seeds: Sequence[int] = (0, 1), steps: int = 25,
               guidance_scale: float = 7.5) -> dict:
    """Probe-judged quality of a model folder through the public path (``pds.load_prior`` +
    ``pds.sampling.sample``): held-out and seen (colour, shape) pairs on the implicit white
    background. Returns ``{"held_out": {...}, "seen": {...}, "sampler": ...}``."""
    import pds
    from . import probe as probe_mod

    prior = pds.load_prior(str(folder), device="cpu", dtype=torch.float32)
    pr = probe_mod.load_probe()
    fn = probe_mod.prior_sample_fn(prior, steps=steps, guidance_scale=guidance_scale)
    t0 = time.time()
    held = probe_mod.held_out_quality(fn, pr, n_per_combo=n_per_combo, seeds=seeds)
    seen = probe_mod.held_out_quality(fn, pr, combos=probe_mod.SEEN_EXAMPLES, n_per_combo=n_per_combo, seeds=seeds)
    return {"held_out": held, "seen": seen, "sampler": f"pds.sampling.sample, {steps} DDIM steps, guidance {guidance_scale}",
            "seeds": list(seeds), "eval_seconds": round(time.time() - t0, 1)}


def parse_args(argv: Optional[Sequence[str]] = None) -> TrainConfig:
    p = argparse.ArgumentParser(prog="python -m tools.prior.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="run folder (model/, loss.csv, loss.png, samples.png, train.log)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="defaults for 'cpu' (2 cores, < 2 h) or 'gpu' (CUDA, bf16); default: cpu")
    for f in ("device", "batch_size", "steps", "lr", "warmup_steps", "ema_decay", "cond_dropout", "seed",
              "max_minutes", "deadline_unix", "max_cpu_minutes", "checkpoint_every", "log_every", "data_chunk", "num_threads",
              "sample_steps", "sample_guidance", "save_dtype", "prediction_type", "offset_noise", "init_from",
              "vae", "arch", "min_snr_gamma", "eval_n"):
        default = TrainConfig.__dataclass_fields__[f].default
        typ = type(default) if default is not None else float
        if f in ("num_threads",):
            typ = int
        if f in ("init_from", "vae", "arch"):
            typ = str
        p.add_argument("--" + f.replace("_", "-"), type=typ, default=None, help=f"(default {default})")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast (default: on CUDA)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--export-to", default=None, metavar="FOLDER",
                   help="do not train: write the model folder of OUT/checkpoint.pt (EMA weights) to FOLDER")
    p.add_argument("--text-pool", action=argparse.BooleanOptionalAction, default=None,
                   help="pooled text embedding added to the timestep embedding")
    a = p.parse_args(argv)
    if a.export_to:
        export_checkpoint(Path(a.out), Path(a.export_to))
        raise SystemExit(0)
    base = dict(PRESETS[a.preset or ("gpu" if a.device == "cuda" else "cpu")])
    base.update({k: v for k, v in vars(a).items() if v is not None and k not in ("preset", "export_to")})
    return TrainConfig(**base)


def main(argv: Optional[Sequence[str]] = None) -> None:
    cfg = parse_args(argv)
    train(cfg, argv)


if __name__ == "__main__":
    main()
