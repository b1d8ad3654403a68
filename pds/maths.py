"""The score-distillation maths, as pure functions over tensors.

Nothing here loads a model or holds state: every function takes the diffusion schedule
(``alphas_cumprod``, ``betas``) and already-computed noise predictions, so the algebra can be
read, tested and reused on its own. :class:`pds.Distiller` wires these to a prior.

Notation follows the PDS paper (Koo, Park, Sung, CVPR 2024) and ``docs/PDS_NOTES.md``:

* ``x0`` is a clean image or latent, ``ᾱ_t = alphas_cumprod[t]``;
* ``x_t = √ᾱ_t x0 + √(1-ᾱ_t) ε`` (the forward process, DDPM eq. 4);
* ``ε̂`` is the classifier-free-guided noise prediction;
* the DDPM posterior of ``x_{t_prev}`` given ``x_t`` and the predicted ``x̂0`` has mean
  ``μ = c0 x̂0 + c1 x_t`` and standard deviation ``σ_t`` (DDPM eq. 7).

PDS (paper eq. 9) matches the *stochastic latents* ``z = (x_{t_prev} − μ) / σ_t`` of the target
and the source, computed with the SAME two noises ``ε`` and ``ε'`` for both, and returns
``g = z_tgt − z_src``.  Because the noises are shared, ``g`` collapses to

    g = ψ(t) (x0_tgt − x0_src) + χ(t) (ε̂_tgt − ε̂_src)

with ``ψ, χ`` from :func:`pds_coefficients`; the tests check this identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Discretization = Literal["reference", "exact"]


@dataclass(frozen=True)
class StepTerms:
    """Per-sample schedule terms for one PDS step, each of shape ``(B, 1, 1, 1)``.

    Attributes:
        a_t: ``ᾱ_t``.
        a_prev: ``ᾱ_{t_prev}`` (``1`` when ``t_prev < 0``).
        c0: posterior-mean coefficient of ``x̂0``.
        c1: posterior-mean coefficient of ``x_t``.
        sigma: posterior standard deviation ``σ_t``.
    """

    a_t: Tensor
    a_prev: Tensor
    c0: Tensor
    c1: Tensor
    sigma: Tensor


def _expand(v: Tensor) -> Tensor:
    return v.reshape(-1, 1, 1, 1)


def step_terms(
    alphas_cumprod: Tensor,
    betas: Tensor,
    t: Tensor,
    t_prev: Tensor,
    discretization: Discretization = "reference",
) -> StepTerms:
    """Posterior coefficients for the transition ``t → t_prev``.

    Args:
        alphas_cumprod: ``(T,)`` float tensor ``ᾱ`` of the 1000-step training schedule.
        betas: ``(T,)`` float tensor ``β`` of the same schedule.
        t: ``(B,)`` int64 timesteps in ``[0, T)``.
        t_prev: ``(B,)`` int64 previous timesteps, ``t_prev < t``; negative means "the clean
            image" (``ᾱ = 1``), as DDIM's ``final_alpha_cumprod`` with ``set_alpha_to_one``.
        discretization: ``"reference"`` reproduces the published implementation, which uses
            the SINGLE-STEP ``β_t`` and ``α_t = 1 − β_t`` at ``t`` although it jumps by a
            stride; ``"exact"`` uses the consistent stride posterior, ``β = 1 − ᾱ_t/ᾱ_{t_prev}``.
            With ``"exact"`` ``ψ(t) ≡ 0`` and PDS reduces to a t-weighted DDS (see module doc).

    Returns:
        :class:`StepTerms`, all float64-accurate values cast to ``alphas_cumprod.dtype``.
    """
    ac = alphas_cumprod.to(torch.float64)
    a_t = ac[t]
    a_prev = torch.where(t_prev >= 0, ac[t_prev.clamp(min=0)], torch.ones_like(a_t))
    if discretization == "reference":
        beta_t = betas.to(torch.float64)[t]
    elif discretization == "exact":
        beta_t = 1.0 - a_t / a_prev
    else:
        raise ValueError(f"unknown discretization {discretization!r}; use 'reference' or 'exact'")
    alpha_t = 1.0 - beta_t
    # DDPM eq. 7: μ̃(x_t, x0) = √ᾱ_{t-1} β_t/(1-ᾱ_t) x0 + √α_t (1-ᾱ_{t-1})/(1-ᾱ_t) x_t.
    c0 = a_prev.sqrt() * beta_t / (1.0 - a_t)
    c1 = alpha_t.sqrt() * (1.0 - a_prev) / (1.0 - a_t)
    sigma = ((1.0 - a_prev) / (1.0 - a_t) * beta_t).sqrt()
    dt = alphas_cumprod.dtype if alphas_cumprod.is_floating_point() else torch.float32
    return StepTerms(*(_expand(v).to(dt) for v in (a_t, a_prev, c0, c1, sigma)))


def add_noise(x0: Tensor, noise: Tensor, alpha_cumprod: Tensor) -> Tensor:
    """Forward process ``√ᾱ x0 + √(1−ᾱ) ε``; ``alpha_cumprod`` broadcasts against ``x0``."""
    return alpha_cumprod.sqrt() * x0 + (1.0 - alpha_cumprod).sqrt() * noise


def v_target(x0: Tensor, noise: Tensor, alpha_cumprod: Tensor) -> Tensor:
    """The v-prediction training target ``v = √ᾱ ε − √(1−ᾱ) x0`` (Salimans & Ho 2022)."""
    return alpha_cumprod.sqrt() * noise - (1 - alpha_cumprod).sqrt() * x0


def eps_from_v(v: Tensor, x_t: Tensor, alpha_cumprod: Tensor) -> Tensor:
    """ε from a v-prediction: ``ε = √ᾱ v + √(1−ᾱ) x_t`` (the inverse of :func:`v_target` given ``x_t``)."""
    return alpha_cumprod.sqrt() * v + (1 - alpha_cumprod).sqrt() * x_t


def x0_from_eps(x_t: Tensor, eps: Tensor, alpha_cumprod: Tensor) -> Tensor:
    """The clean estimate ``x̂0 = (x_t − √(1−ᾱ) ε̂) / √ᾱ`` (the inverse of :func:`add_noise` given ``ε̂``)."""
    return (x_t - (1.0 - alpha_cumprod).sqrt() * eps) / alpha_cumprod.sqrt()


def stochastic_latent(x0: Tensor, eps_pred: Tensor, noise_t: Tensor, noise_prev: Tensor, terms: StepTerms) -> Tensor:
    """The PDS stochastic latent ``z = (x_{t_prev} − μ(x_t, ε̂)) / σ_t`` (paper eq. 8).

    Args:
        x0: ``(B, C, H, W)`` clean latent.
        eps_pred: ``(B, C, H, W)`` guided noise prediction at ``x_t``.
        noise_t: ``ε`` used to form ``x_t``.
        noise_prev: ``ε'`` used to form ``x_{t_prev}`` (independent of ``ε``).
        terms: :func:`step_terms` output.
    """
    x_t = add_noise(x0, noise_t, terms.a_t)
    x_prev = add_noise(x0, noise_prev, terms.a_prev)
    x0_pred = x0_from_eps(x_t, eps_pred, terms.a_t)
    mu = terms.c0 * x0_pred + terms.c1 * x_t
    return (x_prev - mu) / terms.sigma


def pds_coefficients(terms: StepTerms) -> tuple[Tensor, Tensor]:
    """``(ψ, χ)`` such that ``g_PDS = ψ (x0_tgt − x0_src) + χ (ε̂_tgt − ε̂_src)``.

    ψ = (√ᾱ_prev − c0 − c1 √ᾱ_t) / σ;  χ = c0 √(1−ᾱ_t) / (√ᾱ_t σ).
    """
    psi = (terms.a_prev.sqrt() - terms.c0 - terms.c1 * terms.a_t.sqrt()) / terms.sigma
    chi = terms.c0 * (1.0 - terms.a_t).sqrt() / (terms.a_t.sqrt() * terms.sigma)
    return psi, chi


def guided(eps_uncond: Tensor, eps_cond: Tensor, guidance_scale) -> Tensor:
    """Classifier-free guidance ``ε_u + w (ε_c − ε_u)`` (Ho & Salimans 2022); ``w`` a float or a
    tensor broadcastable to the predictions (one weight per sample)."""
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)


def pds_gradient(
    z_tgt: Tensor, z_src: Tensor, eps_tgt: Tensor, eps_src: Tensor, noise_t: Tensor, noise_prev: Tensor, terms: StepTerms
) -> Tensor:
    """PDS gradient ``g = z(x0_tgt) − z(x0_src)`` with shared noises (paper eq. 9)."""
    return stochastic_latent(z_tgt, eps_tgt, noise_t, noise_prev, terms) - stochastic_latent(
        z_src, eps_src, noise_t, noise_prev, terms
    )


def sds_gradient(eps_tgt: Tensor, noise_t: Tensor, terms: StepTerms) -> Tensor:
    """SDS gradient ``(1 − ᾱ_t)(ε̂ − ε)`` on the target alone (DreamFusion eq. 3 with w(t) = 1 − ᾱ_t)."""
    return (1.0 - terms.a_t) * (eps_tgt - noise_t)


def dds_gradient(eps_tgt: Tensor, eps_src: Tensor) -> Tensor:
    """DDS gradient ``ε̂_tgt − ε̂_src`` (Hertz et al. 2023), both predicted from the same noise and t."""
    return eps_tgt - eps_src


def distillation_loss(x0: Tensor, grad: Tensor) -> Tensor:
    """A scalar whose gradient with respect to ``x0`` is ``grad / (x0.numel() · B)``.

    The reference writes ``0.5 · MSE(x0, stopgrad(x0 − g)) / B``; computing it this way keeps
    the autograd graph of ``x0`` and lets ``loss.backward()`` carry ``g`` to the parameters.
    ``grad`` has non-finite entries zeroed, as the reference does.
    """
    grad = torch.nan_to_num(grad.detach(), nan=0.0, posinf=0.0, neginf=0.0)
    target = (x0 - grad).detach()
    return 0.5 * torch.nn.functional.mse_loss(x0, target, reduction="mean") / x0.shape[0]
