"""DDIM sampling and SDEdit with any prior.

One deterministic DDIM loop (Song et al. 2021, eq. 12 with η = 0) serves both: :func:`sample`
starts from pure noise, :func:`sdedit` (Meng et al. 2022) from a noised input image. Both use
only the :class:`pds.priors.Prior` protocol, so they work for Stable Diffusion, DreamBooth
outputs and the embedded priors alike.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from . import maths
from .rng import randn_like_with


def ddim_timesteps(num_train_timesteps: int, steps: int, offset: int = 0, spacing: str = "leading") -> Tensor:
    """Descending DDIM grid with stride ``s = T // steps``.

    ``spacing="leading"`` (Stable Diffusion): ``[(steps−1)·s + offset, …, offset]``.
    ``spacing="trailing"`` (Lin et al. 2024): ``[T−1, T−1−s, …]`` — starts from pure noise,
    which matters for small pixel-space models whose first step fixes the global colour.
    """
    if not 1 <= steps <= num_train_timesteps:
        raise ValueError(f"steps must be in [1, {num_train_timesteps}], got {steps}")
    if spacing == "trailing":
        return (torch.arange(num_train_timesteps, 0, -num_train_timesteps / steps).round() - 1).long()
    stride = num_train_timesteps // steps
    return (torch.arange(steps - 1, -1, -1) * stride + offset).clamp(max=num_train_timesteps - 1)


def scheduler_timesteps(prior, steps: int) -> Tensor:
    """The DDIM grid for ``steps`` following the prior's scheduler config (offset, spacing)."""
    cfg = prior.scheduler.config
    return ddim_timesteps(cfg.num_train_timesteps, steps, int(getattr(cfg, "steps_offset", 0) or 0),
                          str(getattr(cfg, "timestep_spacing", "leading") or "leading"))


def _embeddings(prior, prompts: Sequence[str]) -> Tensor:
    return prior.encode_prompt([""] * len(prompts) + list(prompts))


@torch.no_grad()
def ddim_denoise(prior, x: Tensor, timesteps: Tensor, prompts: Sequence[str], guidance_scale: float,
                 clip_sample: Optional[bool] = None) -> Tensor:
    """Run DDIM from ``x`` at ``timesteps[0]`` down to a clean latent.

    Args:
        prior: a :class:`pds.priors.Prior`.
        x: ``(B, C, h, w)`` noisy latent at ``timesteps[0]``.
        timesteps: descending int64 timesteps.
        prompts: ``B`` prompts; guidance against the empty prompt.
        guidance_scale: classifier-free guidance ``w``.
        clip_sample: clamp ``x̂0`` to ``[-1, 1]`` each step; defaults to the scheduler's
            ``clip_sample`` for pixel-space priors and ``False`` for latent priors.

    Returns:
        The clean latent ``(B, C, h, w)`` (float32).
    """
    ac = prior.scheduler.alphas_cumprod.to(torch.float32).to(x.device)
    if clip_sample is None:
        clip_sample = getattr(prior, "vae", None) is None and bool(getattr(prior.scheduler.config, "clip_sample", False))
    emb = _embeddings(prior, prompts)
    x = x.float()
    ts = [int(v) for v in timesteps]
    for i, t in enumerate(ts):
        t_in = torch.full((2 * x.shape[0],), t, dtype=torch.long, device=x.device)
        uncond, cond = prior.predict_noise(torch.cat([x, x]), t_in, emb).chunk(2)
        eps = maths.guided(uncond, cond, guidance_scale)
        a_t = ac[t]
        a_prev = ac[ts[i + 1]] if i + 1 < len(ts) else torch.ones((), device=x.device)
        x0 = maths.x0_from_eps(x, eps, a_t)
        if clip_sample:
            x0 = x0.clamp(-1, 1)
            eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        x = maths.add_noise(x0, eps, a_prev)
    return x


def _prompt_list(prompts: Union[str, Sequence[str]], n: Optional[int] = None) -> list[str]:
    if isinstance(prompts, str):
        return [prompts] * (n or 1)
    return list(prompts)


@torch.no_grad()
def sample(prior, prompts: Union[str, Sequence[str]], steps: int = 50, guidance_scale: float = 7.5,
           generator: Optional[torch.Generator] = None, num_images: Optional[int] = None) -> Tensor:
    """Draw images from a prior.

    Args:
        prior: a :class:`pds.priors.Prior`.
        prompts: one prompt or a list (one image per prompt).
        steps: DDIM steps (default 50).
        guidance_scale: classifier-free guidance (default 7.5).
        generator: RNG for the initial noise.
        num_images: with a single string prompt, how many images to draw (default 1).

    Returns:
        ``(B, 3, R, R)`` images in ``[0, 1]`` with ``R = prior.resolution``.
    """
    plist = _prompt_list(prompts, num_images)
    if not plist:
        raise ValueError("give at least one prompt")
    size = prior.resolution // getattr(prior, "vae_scale_factor", 1)
    channels = getattr(prior, "latent_channels", 3 if getattr(prior, "vae", None) is None else 4)
    shape = torch.empty(len(plist), channels, size, size, device=getattr(prior, "device", "cpu"))
    x = randn_like_with(shape, generator)
    ts = scheduler_timesteps(prior, steps)
    return prior.decode_latents(ddim_denoise(prior, x, ts, plist, guidance_scale))


@torch.no_grad()
def sdedit(prior, images: Tensor, prompt: Union[str, Sequence[str]], strength: float = 0.1, steps: int = 20,
           guidance_scale: float = 15.0, generator: Optional[torch.Generator] = None) -> Tensor:
    """SDEdit: noise ``images`` part of the way, then denoise towards ``prompt``.

    Args:
        prior: a :class:`pds.priors.Prior`.
        images: ``(B, 3, H, W)`` in ``[0, 1]``.
        prompt: one prompt or ``B`` prompts.
        strength: fraction of the DDIM schedule to re-run, in ``(0, 1]``; the PDS refinement
            stage uses 0.1–0.2 (a skip ratio of 0.8–0.9 on a 20-step schedule).
        steps: size of the full DDIM schedule (default 20).
        guidance_scale: classifier-free guidance (default 15, as the reference).
        generator: RNG for the VAE sample and the noise.

    Returns:
        ``(B, 3, R, R')`` edited images in ``[0, 1]`` at the prior's resolution (resize back as needed).
    """
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    plist = _prompt_list(prompt, images.shape[0])
    if len(plist) != images.shape[0]:
        raise ValueError(f"give one prompt or {images.shape[0]} prompts, got {len(plist)}")
    sched = prior.scheduler
    ts = scheduler_timesteps(prior, steps)
    keep = max(1, round(steps * strength))
    ts = ts[-keep:]
    z0 = prior.encode_images(images, generator=generator)
    a = sched.alphas_cumprod.to(torch.float32)[int(ts[0])].to(z0.device)
    x = maths.add_noise(z0, randn_like_with(z0, generator), a)
    return prior.decode_latents(ddim_denoise(prior, x, ts, plist, guidance_scale))
