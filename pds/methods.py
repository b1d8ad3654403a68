"""The distillation methods, one registry entry each.

A method says which noises it draws and how it forms its gradient from the guided noise
predictions; :class:`pds.Distiller` draws the noises, runs the ONE batched prior forward over the
images the method asks for, and calls the entry's ``gradient``. Every CLI and config lists its
choices from :data:`METHODS`, so adding a method is one :func:`register` call here.

The algebra itself is in :mod:`pds.maths`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from torch import Tensor

from . import maths


@dataclass(frozen=True)
class StepInputs:
    """What a method's ``gradient`` receives for one step (all ``(B, C, h, w)`` float32 unless said).

    Attributes:
        z_tgt, z_src: clean target and source latents.
        eps_tgt: guided ε̂ of the noised target under the target prompt.
        eps_src: guided ε̂ of the noised source under the source prompt (``None`` when the
            method does not use the source).
        noise_t: the noise ε that made ``x_t``; ``noise_prev``: the second noise ε′ of the
            posterior sample (``None`` unless the method draws it).
        terms: the schedule terms of the step (:class:`pds.maths.StepTerms`).
    """

    z_tgt: Tensor
    z_src: Tensor
    eps_tgt: Tensor
    eps_src: Tensor | None
    noise_t: Tensor
    noise_prev: Tensor | None
    terms: maths.StepTerms


@dataclass(frozen=True)
class Method:
    """One distillation method.

    Attributes:
        name: the CLI / config spelling (lower case).
        title: one line for help texts.
        uses_source: whether the source latent is noised and predicted too (2 images per
            sample in the prior forward instead of 1).
        draws_prev_noise: whether a second noise ε′ is drawn (PDS's posterior sample).
        gradient: ``StepInputs -> g`` with the shape of ``z_tgt``.
    """

    name: str
    title: str
    uses_source: bool
    draws_prev_noise: bool
    gradient: Callable[[StepInputs], Tensor]


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS` (its ``name`` must be new) and return it."""
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def get(name: str) -> Method:
    """The registered method ``name``; ``ValueError`` naming the choices otherwise."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None


def names() -> tuple[str, ...]:
    """Registered method names, in registration order (the default first)."""
    return tuple(METHODS)


def help_text() -> str:
    """``"pds: ...; sds: ...; dds: ..."`` for CLI help."""
    return "; ".join(f"{m.name}: {m.title}" for m in METHODS.values())


register(Method("pds", "Posterior Distillation Sampling (Koo et al. 2024), keeps the source's identity",
                uses_source=True, draws_prev_noise=True,
                gradient=lambda s: maths.pds_gradient(s.z_tgt, s.z_src, s.eps_tgt, s.eps_src, s.noise_t,
                                                      s.noise_prev, s.terms)))
register(Method("sds", "Score Distillation Sampling (Poole et al. 2022), ignores the source",
                uses_source=False, draws_prev_noise=False,
                gradient=lambda s: maths.sds_gradient(s.eps_tgt, s.noise_t, s.terms)))
register(Method("dds", "Delta Denoising Score (Hertz et al. 2023)",
                uses_source=True, draws_prev_noise=False,
                gradient=lambda s: maths.dds_gradient(s.eps_tgt, s.eps_src)))

#: Read-only view for callers that only list names.
METHOD_NAMES: Mapping[str, Method] = METHODS
