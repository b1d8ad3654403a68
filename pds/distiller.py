"""``Distiller``: a diffusion prior turned into a gradient on rendered images.

The maths lives in :mod:`pds.maths`; this module holds the prior, the timestep range and the
random numbers, runs the ONE batched UNet forward per step, validates inputs, and provides the
optimisation loop for any :class:`pds.renderer.Renderer`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor

from . import maths, methods
from .renderer import Renderer, as_batch, parameter_groups, project, regularization
from .rng import randint_with, randn_like_with

Method = str  # a name registered in :mod:`pds.methods` ("pds", "sds", "dds", ...)
Prompt = Union[str, Sequence[str]]


#: Where :meth:`Distiller.optimize` applies the gradient (see :class:`Distiller`).
GRADIENT_SPACES = ("latent", "image")
#: Length of the decoder finite difference of ``gradient_space="image"``: RMS of the latent step.
IMAGE_STEP_RMS = 0.05


class NonFiniteError(FloatingPointError):
    """A distillation step produced NaN or infinite values."""


@dataclass
class OptimizeResult:
    """What :meth:`Distiller.optimize` did.

    Attributes:
        losses: the distillation loss of every step (``0.5·mean(g²)/B``, the reference's value).
        steps: number of optimizer steps taken (fewer than asked when interrupted).
        seconds: wall time of the loop.
        interrupted: ``True`` when the loop stopped on ``KeyboardInterrupt``.
    """

    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    interrupted: bool = False


def check_guidance_interval(interval, what: str = "guidance_interval",
                            fix: str = "for example (0.7, 1.0)") -> tuple[float, float]:
    """``interval`` as ``(lo, hi)`` floats with ``0 ≤ lo < hi ≤ 1`` (fractions of the training
    schedule; see :class:`Distiller`), else :class:`ValueError` naming ``what`` and ``fix``."""
    try:
        if isinstance(interval, (str, bytes)) or len(interval) != 2 or any(isinstance(v, bool) for v in interval):
            raise TypeError
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError):
        lo = hi = float("nan")
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"{what} {interval!r} must be two numbers 0 <= lo < hi <= 1 ({fix})")
    return lo, hi


class Distiller:
    """Score distillation with a diffusion prior: PDS (default), SDS or DDS.

    Args:
        prior: any :class:`pds.priors.Prior`.
        method: a name from :data:`pds.methods.METHODS`: ``"pds"`` (Koo et al. 2024, default),
            ``"sds"`` (Poole et al. 2022) or ``"dds"`` (Hertz et al. 2023).
        guidance_scale: classifier-free guidance weight ``w``; the reference uses 100 for PDS.
        t_range: ``(t_min, t_max)`` fractions of the DDIM grid to sample timesteps from,
            ``0 ≤ t_min < t_max ≤ 1``; default ``(0.02, 0.98)`` (the authors use 0.1–0.98 for SVG).
        num_inference_steps: size of the DDIM grid; its stride ``T / n`` is the PDS jump
            ``t → t_prev``. Default 500 (stride 2 on a 1000-step schedule).
        t: a fixed timestep used for every step instead of sampling (for analysis and tests).
        discretization: ``"reference"`` (default; the published single-step-β posterior whose
            identity term ψ(t) preserves the source) or ``"exact"`` (consistent stride posterior).
        gradient_space: where :meth:`optimize` hands the gradient to the renderer. ``"latent"``
            (default, the reference): backpropagate ``g`` through the VAE encoder, which applies
            its Jacobian's transpose ``Jᵀg``. ``"image"``: take the image-space change the latent
            step means, ``J_D g`` through the decoder (a finite difference of two decodes), and
            backpropagate that from the render, which skips the encoder's backward pass. A small
            autoencoder's encoder is far from isotropic in colour (on pds-tiny's the three colour
            directions of a flat blue patch have gains 34, 23 and 6, so ``JᵀJ`` spans a factor
            of 33), and ``Jᵀg`` then bends a recolour towards the directions the encoder sees
            best; where the autoencoder reconstructs a change, ``J_D ≈ J_E⁺`` undoes that. A
            direction it does not represent at all is lost either way
            (``benchmarks/vae_colour.py`` measures both). Pixel priors (no VAE) give the same
            result either way.
        guidance_interval: ``(lo, hi)`` fractions of the training schedule, ``0 ≤ lo < hi ≤ 1``:
            classifier-free guidance applies only to timesteps with ``lo ≤ t / T ≤ hi``, and
            outside it ``w = 1`` (the conditional prediction alone), as in Kynkäänniemi et al.
            2024, "Applying guidance in a limited interval". Default ``None``: every timestep,
            as the reference does. Where the picture already shows what the prompt asks about
            (a flat page at low noise), the conditional barely pulls it and a small disagreement
            between the conditional and unconditional predictions, multiplied by ``w``, becomes
            the edit (a grey page tinted by the colour of the shape on it).
        generator: default ``torch.Generator`` for the noises and timesteps.

    Raises:
        ValueError: unknown method, bad ``t_range``, ``guidance_interval`` or
            ``num_inference_steps``, or ``t`` off the schedule.
    """

    def __init__(
        self,
        prior,
        method: Method = "pds",
        guidance_scale: float = 100.0,
        t_range: tuple[float, float] = (0.02, 0.98),
        num_inference_steps: int = 500,
        t: Optional[int] = None,
        discretization: maths.Discretization = "reference",
        generator: Optional[torch.Generator] = None,
        gradient_space: str = "latent",
        guidance_interval: Optional[tuple[float, float]] = None,
    ):
        self.method_spec = methods.get(method)
        self.guidance_interval = None if guidance_interval is None else check_guidance_interval(guidance_interval)
        t_min, t_max = (float(v) for v in t_range)
        if not 0.0 <= t_min < t_max <= 1.0:
            raise ValueError(f"t_range {t_range} must satisfy 0 <= t_min < t_max <= 1 (for example (0.02, 0.98))")
        if discretization not in ("reference", "exact"):
            raise ValueError(f"unknown discretization {discretization!r}; use 'reference' or 'exact'")
        if gradient_space not in GRADIENT_SPACES:
            raise ValueError(f"unknown gradient_space {gradient_space!r}; use one of {', '.join(GRADIENT_SPACES)}")
        self.gradient_space = gradient_space
        self.prior = prior
        self.method = method
        self.guidance_scale = float(guidance_scale)
        self.t_range = (t_min, t_max)
        self.discretization = discretization
        self.generator = generator
        sched = prior.scheduler
        self.num_train_timesteps = int(sched.config.num_train_timesteps)
        if not 1 <= int(num_inference_steps) <= self.num_train_timesteps:
            raise ValueError(f"num_inference_steps must be in [1, {self.num_train_timesteps}], got {num_inference_steps}")
        self.num_inference_steps = int(num_inference_steps)
        self.stride = self.num_train_timesteps // self.num_inference_steps
        self.steps_offset = int(getattr(sched.config, "steps_offset", 0) or 0)
        self.alphas_cumprod = sched.alphas_cumprod.detach().to(torch.float32).cpu()
        self.betas = sched.betas.detach().to(torch.float32).cpu()
        self.t = None if t is None else self._check_t(t)

    # ------------------------------------------------------------ timesteps
    def _check_t(self, t: int) -> int:
        lo, hi = self.stride, self.num_train_timesteps - 1
        if isinstance(t, bool) or not isinstance(t, (int,)) or not lo <= t <= hi:
            raise ValueError(f"timestep t={t!r} is outside the schedule; use an integer in [{lo}, {hi}] "
                             f"(t_prev = t - {self.stride} must be a valid step)")
        return int(t)

    def sample_timesteps(self, batch: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """Draw ``batch`` timesteps on the DDIM grid: index uniform in ``[⌊n·t_min⌋, ⌊n·t_max⌋)``.

        Returns ``(batch,)`` int64 ``t = index · stride + steps_offset`` (``{1, 3, …}`` for SD).
        """
        n = self.num_inference_steps
        # Index 0 would give t_prev < 0, where σ_t = 0 and the stochastic latent is undefined.
        lo = max(int(n * self.t_range[0]), 1)
        hi = max(int(n * self.t_range[1]), lo + 1)
        idx = randint_with(hi, (batch,), generator, low=lo)
        return (idx * self.stride + self.steps_offset).clamp(max=self.num_train_timesteps - 1)

    def _timesteps(self, batch: int, t: Optional[int], generator) -> Tensor:
        if t is not None:
            return torch.full((batch,), self._check_t(t), dtype=torch.long)
        if self.t is not None:
            return torch.full((batch,), self.t, dtype=torch.long)
        return self.sample_timesteps(batch, generator)

    # -------------------------------------------------------------- prompts
    @staticmethod
    def _prompts(prompt: Prompt, batch: int, what: str) -> list[str]:
        if isinstance(prompt, str):
            return [prompt] * batch
        prompts = list(prompt)
        if len(prompts) != batch or not all(isinstance(p, str) for p in prompts):
            raise ValueError(f"{what} must be a string or a list of {batch} strings (one per batch element)")
        return prompts

    def _guided_noise(self, xs: Sequence[Tensor], prompts: Sequence[list[str]], t: Tensor) -> list[Tensor]:
        """Guided ε̂ for each ``x`` in ``xs`` with its prompts, from ONE batched UNet forward.

        The batch is ``[uncond(x_1..x_k), cond(x_1..x_k)]`` so classifier-free guidance of
        source and target shares a single call (4B images for PDS/DDS, 2B for SDS).
        """
        batch = xs[0].shape[0]
        flat_prompts = [""] * (batch * len(xs)) + [p for ps in prompts for p in ps]
        emb = self.prior.encode_prompt(flat_prompts)
        x_in = torch.cat(list(xs) * 2, dim=0)
        t_in = t.repeat(2 * len(xs)).to(x_in.device)
        eps = self.prior.predict_noise(x_in, t_in, emb).float()
        if not torch.isfinite(eps).all():
            raise NonFiniteError(
                f"the prior predicted non-finite noise at t={t.tolist()}; load it in float32 "
                f"(dtype=torch.float32) or lower the guidance scale")
        uncond, cond = eps.chunk(2)
        w = self.guidance_scale
        if self.guidance_interval is not None:
            frac = t.to(eps.device, torch.float32) / self.num_train_timesteps
            inside = (frac >= self.guidance_interval[0]) & (frac <= self.guidance_interval[1])
            w = torch.where(inside, w, 1.0).view(-1, *([1] * (eps.dim() - 1)))
        return [maths.guided(u, c, w) for u, c in zip(uncond.chunk(len(xs)), cond.chunk(len(xs)))]

    # ------------------------------------------------------------- gradient
    @torch.no_grad()
    def gradient(self, z_tgt: Tensor, z_src: Tensor, tgt_prompt: Prompt, src_prompt: Prompt,
                 t: Optional[int] = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """The distillation gradient ``g`` in the prior's latent space.

        Args:
            z_tgt: ``(B, C, h, w)`` target latent (``prior.encode_images`` of the current render).
            z_src: ``(B, C, h, w)`` source latent (ignored by SDS, but must match in shape).
            tgt_prompt, src_prompt: a string or one string per batch element.
            t: fixed integer timestep for this call, else the distiller's ``t`` or a sampled one.
            generator: overrides the distiller's generator for this call.

        Returns:
            ``g`` with the shape of ``z_tgt`` (float32), NOT scaled by the loss normalisation:
            PDS ``z_tgt − z_src`` (stochastic latents), SDS ``(1−ᾱ_t)(ε̂ − ε)``, DDS ``ε̂_tgt − ε̂_src``.
        """
        if z_tgt.dim() != 4 or z_tgt.shape != z_src.shape:
            raise ValueError(f"z_tgt and z_src must be (B, C, h, w) latents of the same shape, got "
                             f"{tuple(z_tgt.shape)} and {tuple(z_src.shape)}")
        generator = generator if generator is not None else self.generator
        batch = z_tgt.shape[0]
        tgt = self._prompts(tgt_prompt, batch, "tgt_prompt")
        src = self._prompts(src_prompt, batch, "src_prompt")
        t_b = self._timesteps(batch, t, generator)
        z_tgt, z_src = z_tgt.detach().float(), z_src.detach().float()
        terms = maths.step_terms(self.alphas_cumprod, self.betas, t_b, t_b - self.stride, self.discretization)
        terms = maths.StepTerms(*(v.to(z_tgt.device) for v in vars(terms).values()))
        m = self.method_spec
        # Draw order (timesteps, ε, then ε′) is part of the seeded behaviour: keep it.
        noise_t = randn_like_with(z_tgt, generator)
        noise_prev = randn_like_with(z_tgt, generator) if m.draws_prev_noise else None
        x_tgt = maths.add_noise(z_tgt, noise_t, terms.a_t)
        if m.uses_source:
            eps_tgt, eps_src = self._guided_noise([x_tgt, maths.add_noise(z_src, noise_t, terms.a_t)], [tgt, src], t_b)
        else:
            (eps_tgt,), eps_src = self._guided_noise([x_tgt], [tgt], t_b), None
        g = m.gradient(methods.StepInputs(z_tgt, z_src, eps_tgt, eps_src, noise_t, noise_prev, terms))
        if not torch.isfinite(g).all():
            raise NonFiniteError(f"the {self.method.upper()} gradient is not finite at t={t_b.tolist()}; "
                                 f"check the inputs for NaNs and load the prior in float32")
        return g

    # ----------------------------------------------------------------- loss
    @staticmethod
    def check_images(images: Tensor, what: str) -> Tensor:
        """Validate ``(B, 3, H, W)`` (or ``(3, H, W)``) images in ``[0, 1]``; returns the 4-D batch."""
        if not isinstance(images, Tensor):
            raise TypeError(f"{what} must be a torch.Tensor of shape (B, 3, H, W), got {type(images).__name__}")
        images = as_batch(images)
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"{what} must have shape (B, 3, H, W) with RGB channels, got {tuple(images.shape)}")
        with torch.no_grad():
            if not torch.isfinite(images).all():
                raise ValueError(f"{what} contains NaN or infinite values")
            lo, hi = float(images.min()), float(images.max())
        if lo < -1e-4 or hi > 1 + 1e-4:
            raise ValueError(f"{what} must be in [0, 1] (got values in [{lo:.3g}, {hi:.3g}]); "
                             f"convert with images / 255 or (images + 1) / 2")
        return images

    def encode(self, images: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Encode ``[0, 1]`` images with the prior (differentiable)."""
        return self.prior.encode_images(images, generator=generator)

    def loss_from_latents(self, z_tgt: Tensor, z_src: Tensor, tgt_prompt: Prompt, src_prompt: Prompt,
                          t: Optional[int] = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """Distillation loss on latents; ``backward()`` gives ``∂L/∂z_tgt = g / (numel · B)``."""
        g = self.gradient(z_tgt, z_src, tgt_prompt, src_prompt, t=t, generator=generator)
        return maths.distillation_loss(z_tgt, g)

    def loss(self, images_tgt: Tensor, images_src: Tensor, tgt_prompt: Prompt, src_prompt: Prompt,
             generator: Optional[torch.Generator] = None, t: Optional[int] = None) -> Tensor:
        """Distillation loss on images.

        Args:
            images_tgt: ``(B, 3, H, W)`` current renders in ``[0, 1]``; gradients flow to them.
            images_src: ``(B, 3, H, W)`` source images in ``[0, 1]`` (same shape).
            tgt_prompt, src_prompt: strings or lists of ``B`` strings.
            generator: RNG for the VAE posterior sample, timesteps and noises.

        Returns:
            Scalar loss; ``loss.backward()`` reaches ``images_tgt``.
        """
        images_tgt = self.check_images(images_tgt, "images_tgt")
        images_src = self.check_images(images_src, "images_src")
        if images_tgt.shape != images_src.shape:
            raise ValueError(f"source and target images must have the same shape, got "
                             f"{tuple(images_src.shape)} and {tuple(images_tgt.shape)}")
        generator = generator if generator is not None else self.generator
        with torch.no_grad():
            z_src = self.encode(images_src, generator)
        z_tgt = self.encode(images_tgt, generator)
        return self.loss_from_latents(z_tgt, z_src, tgt_prompt, src_prompt, t=t, generator=generator)

    @torch.no_grad()
    def image_gradient(self, z: Tensor, g: Tensor, size: tuple[int, int]) -> Tensor:
        """The image-space change ``J_D(z) g`` of the latent gradient ``g`` at ``z`` (both
        ``(B, C, h, w)``), by a finite difference of two decodes whose latent step has RMS
        :data:`IMAGE_STEP_RMS`; resized to ``size`` ``(H, W)``. Returns ``(B, 3, H, W)`` float32."""
        rms = g.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
        h = IMAGE_STEP_RMS / rms.clamp(min=1e-12)
        decode = self.prior.decode_latents
        delta = (decode(z, clamp=False) - decode(z - h * g, clamp=False)) / h
        delta = torch.where(rms > 0, delta, torch.zeros_like(delta))
        if tuple(delta.shape[-2:]) != tuple(size):
            delta = torch.nn.functional.interpolate(delta, size=tuple(size), mode="bilinear", align_corners=False)
        return delta.float()

    def _step_loss(self, images: Tensor, z_src: Tensor, tgt_prompt: Prompt, src_prompt: Prompt,
                   generator) -> tuple[Tensor, float]:
        """One optimisation step's ``(loss to backpropagate, reported distillation loss)``."""
        if self.gradient_space == "image" and getattr(self.prior, "vae", None) is not None:
            with torch.no_grad():
                z_tgt = self.encode(images, generator)
            g = self.gradient(z_tgt, z_src, tgt_prompt, src_prompt, generator=generator)
            loss = maths.distillation_loss(images, self.image_gradient(z_tgt, g, images.shape[-2:]).to(images.device))
            return loss, float(0.5 * g.pow(2).mean() / g.shape[0])
        z_tgt = self.encode(images, generator)
        loss = self.loss_from_latents(z_tgt, z_src, tgt_prompt, src_prompt, generator=generator)
        return loss, float(loss.detach())

    # ------------------------------------------------------------- optimize
    def optimize(
        self,
        renderer: Renderer,
        src_images: Optional[Tensor],
        src_prompt: Prompt,
        tgt_prompt: Prompt,
        steps: int = 1000,
        lr: Union[float, Mapping[str, float], None] = None,
        callback: Optional[Callable[[int, Tensor, float], None]] = None,
        progress: bool = True,
        generator: Optional[torch.Generator] = None,
        optimizer_cls: type = torch.optim.Adam,
    ) -> OptimizeResult:
        """Optimise a renderer's parameters so its renders follow ``tgt_prompt``.

        Each step: render → encode → :meth:`gradient` → backward into the renderer's
        parameters (plus the renderer's optional ``regularization()`` term) → Adam step →
        ``renderer.project()``. The reported loss is the distillation loss alone.

        Args:
            renderer: a :class:`pds.renderer.Renderer`.
            src_images: ``(B, 3, H, W)`` source images in ``[0, 1]``; ``None`` renders the
                renderer once before optimising (the usual case: the source IS the input).
            src_prompt, tgt_prompt: prompts describing source and desired target.
            steps: optimizer steps (default 1000, the reference's SVG setting).
            lr: one learning rate, ``{kind: lr}``, or ``None`` for the renderer's defaults.
            callback: ``callback(step, images, loss)`` after every step (``images`` detached).
            progress: show a tqdm bar with step, loss and ETA.
            generator: RNG; defaults to the distiller's.

        Returns:
            :class:`OptimizeResult`. ``KeyboardInterrupt`` ends the loop early with
            ``interrupted=True`` so callers can save the current state.
        """
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        generator = generator if generator is not None else self.generator
        opt = optimizer_cls(parameter_groups(renderer, lr))
        with torch.no_grad():
            if src_images is None:
                src_images = renderer.render()
            src_images = self.check_images(src_images, "src_images")
            z_src = self.encode(src_images, generator)
        result = OptimizeResult()
        bar = None
        start = time.perf_counter()
        try:  # the bar too: Ctrl-C right after it is drawn is still an interrupted run, not an error
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=steps, desc=f"{self.method.upper()}", unit="step", dynamic_ncols=True)
            for step in range(steps):
                opt.zero_grad(set_to_none=True)
                images = self.check_images(renderer.render(), "renderer.render()")
                if images.shape != src_images.shape:
                    raise ValueError(f"renderer.render() returned {tuple(images.shape)} but the source images are "
                                     f"{tuple(src_images.shape)}; render at the same size")
                loss, value = self._step_loss(images, z_src, tgt_prompt, src_prompt, generator)
                reg = regularization(renderer)
                (loss if reg is None else loss + reg).backward()
                opt.step()
                project(renderer)
                if not math.isfinite(value):
                    raise NonFiniteError(f"loss became {value} at step {step}; lower the learning rates")
                result.losses.append(value)
                result.steps = step + 1
                if bar is not None:
                    bar.set_postfix(loss=f"{value:.4g}")
                    bar.update(1)
                if callback is not None:
                    callback(step, images.detach(), value)
        except KeyboardInterrupt:
            result.interrupted = True
        finally:
            if bar is not None:
                bar.close()
            result.seconds = time.perf_counter() - start
        return result
