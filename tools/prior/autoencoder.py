"""Train the embedded prior's autoencoder: a small diffusers ``AutoencoderKL`` (f = 4, 4 latent
channels) on the procedural pictures, so the prior denoises 16x16x4 latents instead of 64x64x3
pixels -- exactly Stable Diffusion's layout, with a ``vae/`` folder.

    python -m tools.prior.autoencoder --out runs/vae --max-minutes 12
    python -m tools.prior.autoencoder --out runs/vae --resume --max-minutes 5   # continue

Why a latent space on a CPU: a 64x64 picture is 12,288 numbers, its latent 1,024; the denoiser's
cost per sample falls about 4x at equal width, so a 2-core machine sees 4x more training pictures
in the same wall time, and the wide, low-resolution convolutions run nearer the CPU's peak than
thin 64x64 ones do. The pictures are flat colours and sharp edges, which a tiny autoencoder
reconstructs well (PSNR in ``vae.log``).

Loss: L1 + MSE on pixels in [-1, 1], plus a very small KL term (1e-6, as in Stable Diffusion's
KL-f8) that keeps the latent distribution near N(0, I) without blurring. After training the
latents' standard deviation over fresh data sets ``scaling_factor`` so that the diffusion model
sees unit-variance latents (Rombach et al. 2022, Sec. 4.3.2).

Outputs in ``--out``: ``vae/`` (diffusers ``AutoencoderKL`` folder), ``vae.log``, ``vae_checkpoint.pt``,
``vae_recon.png`` (top: originals, bottom: reconstructions), ``vae.json`` (PSNR, scaling factor).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from . import data
from .checkpoint import load_checkpoint, save_checkpoint
from pds.util.images import image_grid


@dataclass(frozen=True)
class VAEConfig:
    """Shape of the autoencoder (a diffusers ``AutoencoderKL``)."""

    block_out_channels: tuple[int, ...] = (16, 32, 64)
    """Channels per level; ``len - 1`` downsamplings, so three levels give f = 4 (64 -> 16 px)."""
    latent_channels: int = 4
    layers_per_block: int = 1
    norm_num_groups: int = 8
    mid_block_add_attention: bool = False
    """No attention in the mid block: the pictures need no global context to be reconstructed,
    and it would be the costliest layer of an encoder backward during an edit."""


def build_vae(cfg: VAEConfig, resolution: int = data.RESOLUTION):
    """A randomly initialised ``AutoencoderKL`` (3 <-> ``latent_channels``)."""
    from diffusers import AutoencoderKL

    n = len(cfg.block_out_channels)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
                         up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(cfg.block_out_channels),
                         layers_per_block=cfg.layers_per_block, latent_channels=cfg.latent_channels,
                         norm_num_groups=cfg.norm_num_groups, sample_size=resolution,
                         mid_block_add_attention=cfg.mid_block_add_attention)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [0, 1] (mean over the batch of per-image PSNR)."""
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp(min=1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


@torch.no_grad()
def reconstruct(vae, imgs: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """Encode (posterior mean) and decode ``imgs`` ``(B, 3, H, W)`` in [0, 1], ``chunk`` at a
    time; returns the reconstructions clamped to [0, 1]."""
    rec = torch.cat([vae.decode(vae.encode(imgs[i:i + chunk] * 2 - 1).latent_dist.mean).sample
                     for i in range(0, imgs.shape[0], chunk)])
    return ((rec + 1) / 2).clamp(0, 1)


@torch.no_grad()
def latent_std(vae, n: int = 512, seed: int = 7) -> float:
    """Standard deviation of the posterior means over ``n`` fresh pictures."""
    g = torch.Generator().manual_seed(seed)
    imgs, _, _ = data.sample_batch(n, g, "cpu", cpu_generator=torch.Generator().manual_seed(seed))
    z = torch.cat([vae.encode(imgs[i:i + 64] * 2 - 1).latent_dist.mean for i in range(0, n, 64)])
    return float(z.std())


def train_vae(out: Path, *, steps: int = 20000, batch_size: int = 16, lr: float = 1e-3, kl_weight: float = 1e-6,
              max_minutes: Optional[float] = None, resume: bool = False, seed: int = 0,
              cfg: VAEConfig = VAEConfig(), log_every: int = 50, checkpoint_every: int = 200,
              init_from: Optional[Path] = None, free_color_fraction: float = 0.0,
              anchor_weight: float = 0.0) -> Path:
    """Train until ``steps`` or ``max_minutes``; write ``out/vae`` and return its path.

    ``free_color_fraction`` (default 0): share of each batch drawn in any RGB colour rather than
    the palette's (:func:`data.random_scenes`), so the autoencoder represents colours between the
    palette's instead of snapping them to it. ``init_from``: a ``vae/`` folder to start from (its
    architecture replaces ``cfg``, and its ``scaling_factor`` is kept, so a denoiser trained on
    its latents still sees unit-variance latents). ``anchor_weight`` (default 0; needs
    ``init_from``): weight of the squared distance between the posterior means of exact-palette
    pictures and those of the starting encoder, which keeps the latents a denoiser learnt where
    they were while the space around them opens up to other colours.
    """
    import math

    if anchor_weight > 0 and init_from is None:
        raise ValueError("anchor_weight needs init_from: the anchor is the starting encoder's latents")

    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    log_f = open(out / "vae.log", "a")

    def log(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')} +{time.time() - t0:7.1f}s] {msg}"
        print(line, flush=True)
        log_f.write(line + "\n")
        log_f.flush()

    torch.manual_seed(seed)
    anchor, keep_scale = None, None
    if init_from is not None:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(init_from, torch_dtype=torch.float32)
        keep_scale = float(vae.config.scaling_factor)
        cfg = VAEConfig(block_out_channels=tuple(vae.config.block_out_channels),
                        latent_channels=vae.config.latent_channels, layers_per_block=vae.config.layers_per_block,
                        norm_num_groups=vae.config.norm_num_groups,
                        mid_block_add_attention=vae.config.mid_block_add_attention)
        if anchor_weight > 0:
            anchor = copy.deepcopy(vae).eval().requires_grad_(False)
    else:
        vae = build_vae(cfg)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    step, elapsed_before = 0, 0.0
    ck_path = out / "vae_checkpoint.pt"
    if resume and ck_path.exists():
        ck = load_checkpoint(ck_path)
        vae.load_state_dict(ck["vae"])
        opt.load_state_dict(ck["opt"])
        g.set_state(ck["g"])
        step, elapsed_before = ck["step"], ck["elapsed"]
        log(f"resumed at step {step}")
    log(f"config {json.dumps(asdict(cfg))} batch {batch_size} lr {lr} kl {kl_weight} init {init_from} "
        f"free colours {free_color_fraction} anchor {anchor_weight} threads {torch.get_num_threads()} "
        f"params {sum(p.numel() for p in vae.parameters()) / 1e6:.2f} M")
    budget = None if max_minutes is None else 60.0 * max_minutes
    t_train = time.time()
    step0 = step

    def save_ck():
        save_checkpoint(ck_path, {"vae": vae.state_dict(), "opt": opt.state_dict(), "g": g.get_state(), "step": step,
                                  "elapsed": elapsed_before + time.time() - t_train, "config": asdict(cfg)})

    vae.train()
    while step < steps and (budget is None or time.time() - t_train < budget):
        progress = step / steps if budget is None else max(step / steps, (time.time() - t_train) / budget)
        for grp in opt.param_groups:  # cosine to 10 % after a 100-step warm-up
            grp["lr"] = lr * min(1.0, (step + 1) / 100) * (0.1 + 0.45 * (1 + math.cos(math.pi * min(progress, 1.0))))
        imgs, _, _ = data.sample_batch(batch_size, g, "cpu", cpu_generator=g, free_color_fraction=free_color_fraction)
        x = imgs * 2 - 1
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=g)).sample
        loss_rec = (rec - x).abs().mean() + F.mse_loss(rec, x)
        loss = loss_rec + kl_weight * post.kl().mean()
        if anchor is not None:
            # exact palette colours (no jitter): the points the denoiser's latents sit on
            pal, _, _ = data.sample_batch(max(batch_size // 4, 1), g, "cpu", cpu_generator=g, color_jitter=0.0)
            xp = pal * 2 - 1
            loss_anchor = F.mse_loss(vae.encode(xp).latent_dist.mean, anchor.encode(xp).latent_dist.mean)
            loss = loss + anchor_weight * loss_anchor
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        if step % log_every == 0 or step == 1:
            dt = time.time() - t_train
            extra = f" anchor {loss_anchor.item():.5f}" if anchor is not None else ""
            log(f"step {step} loss {loss_rec.item():.4f}{extra} psnr {psnr((rec.detach() + 1) / 2, imgs):.2f} dB "
                f"{dt / max(step - step0, 1):.3f} s/step")
        if step % checkpoint_every == 0:
            save_ck()
    save_ck()
    vae.eval()
    with torch.no_grad():
        gt = torch.Generator().manual_seed(99)
        imgs, _, _ = data.sample_batch(256, gt, "cpu", cpu_generator=gt, include_held_out=True)
        rec = reconstruct(vae, imgs)
        gf = torch.Generator().manual_seed(98)
        free, _, _ = data.sample_batch(256, gf, "cpu", cpu_generator=gf, free_color_fraction=1.0)
        p_free = psnr(reconstruct(vae, free), free)
    p = psnr(rec, imgs)
    std = latent_std(vae)
    vae.register_to_config(scaling_factor=keep_scale if keep_scale is not None else round(1.0 / std, 5))
    vae.save_pretrained(out / "vae", safe_serialization=True)
    image_grid(torch.cat([imgs[:16], rec[:16]]), 16, scale=2).save(out / "vae_recon.png")
    summary = {"steps": step, "wall_s": round(elapsed_before + time.time() - t_train, 1), "psnr_db_held_out_data": round(p, 2),
               "psnr_db_any_colour": round(p_free, 2), "latent_std": round(std, 4),
               "scaling_factor": float(vae.config.scaling_factor), "config": asdict(cfg),
               "init_from": None if init_from is None else str(init_from), "free_color_fraction": free_color_fraction,
               "anchor_weight": anchor_weight,
               "params": sum(p_.numel() for p_ in vae.parameters())}
    (out / "vae.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"done: step {step}, reconstruction PSNR {p:.2f} dB on fresh data, {p_free:.2f} dB in any colour, "
        f"latent std {std:.4f}")
    log_f.close()
    return out / "vae"


def main(argv: Optional[Sequence[str]] = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tools.prior.autoencoder", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--num-threads", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--init-from", type=Path, default=None, help="a vae/ folder to fine-tune (keeps its scaling factor)")
    p.add_argument("--free-colour-fraction", type=float, default=0.0,
                   help="share of each batch in any RGB colour instead of the palette's (default 0)")
    p.add_argument("--anchor-weight", type=float, default=0.0,
                   help="keep exact-palette latents at --init-from's (weight of their squared distance; default 0)")
    a = p.parse_args(argv)
    if a.num_threads:
        torch.set_num_threads(a.num_threads)
    train_vae(a.out, steps=a.steps, batch_size=a.batch_size, lr=a.lr, max_minutes=a.max_minutes, resume=a.resume,
              init_from=a.init_from, free_color_fraction=a.free_colour_fraction, anchor_weight=a.anchor_weight)


if __name__ == "__main__":
    main()
