"""The SVG edit: one home for what ``pds-svg edit``, the benchmarks and Python users run.

:func:`edit_scene` resolves the settings (the user's, else the prior's measured ``edit``
metadata, else the reference's SVG defaults), builds the :class:`pds.Distiller` and optimises the
scene. Two choices here keep an edit from destroying what the prompt does not ask to change:

* **Colour alpha is frozen unless opacity is being optimised.** A fill is RGBA; left free, its
  alpha is the cheapest way to move a render towards any target colour (a red square "becomes"
  pale blue by fading over white), so edits faded instead of recolouring. Opacity changes stay
  available with ``optimize=(..., "opacity")``.
* **Learning rates come from the prior's metadata** (``edit.learning_rates``), where they were
  measured: geometry steps under a noisy distillation gradient random-walk, so a prior with a
  noisier gradient needs a smaller point rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

import torch

#: The reference's SVG settings, used where neither the caller nor the prior's metadata decides.
DEFAULT_STEPS = 1000
DEFAULT_GUIDANCE = 100.0
DEFAULT_T_RANGE = (0.1, 0.98)


@dataclass(frozen=True)
class EditSettings:
    """Resolved settings of one edit (see :func:`resolve_settings`).

    Attributes:
        method: a name of :data:`pds.methods.METHODS`.
        steps: optimiser steps.
        guidance_scale: classifier-free guidance.
        t_range: ``(t_min, t_max)`` fractions of the DDIM grid.
        learning_rates: ``{kind: lr}`` overriding the scene's defaults.
        keep_alpha: freeze the alpha of fill/stroke colours (see the module docstring).
        seed: seed of the run's generator.
    """

    method: str = "pds"
    steps: int = DEFAULT_STEPS
    guidance_scale: float = DEFAULT_GUIDANCE
    t_range: tuple[float, float] = DEFAULT_T_RANGE
    learning_rates: Mapping[str, float] = field(default_factory=dict)
    keep_alpha: bool = True
    seed: int = 0


def resolve_settings(prior, *, method: str = "pds", steps: Optional[int] = None, guidance: Optional[float] = None,
                     t_min: Optional[float] = None, t_max: Optional[float] = None,
                     learning_rates: Optional[Mapping[str, float]] = None, kinds=None,
                     seed: int = 0) -> EditSettings:
    """The user's values, else the prior's ``edit`` metadata, else the reference defaults.

    ``learning_rates`` are the user's per-kind rates; the prior's measured rates fill the kinds
    the user left open. ``kinds``: the parameter kinds being optimised (alpha stays frozen unless
    ``"opacity"`` is among them; default: frozen).

    Raises:
        ValueError: an empty timestep range.
    """
    from ..priors import metadata_of

    meta = metadata_of(prior).edit
    t_lo = t_min if t_min is not None else (meta.t_min if meta.t_min is not None else DEFAULT_T_RANGE[0])
    t_hi = t_max if t_max is not None else (meta.t_max if meta.t_max is not None else DEFAULT_T_RANGE[1])
    if not 0 <= t_lo < t_hi <= 1:
        raise ValueError(f"the timestep range t_min={t_lo} .. t_max={t_hi} is empty; pass --t-min below --t-max")
    rates = {**dict(meta.learning_rates), **dict(learning_rates or {})}
    return EditSettings(method=method, steps=int(steps if steps is not None else (meta.steps or DEFAULT_STEPS)),
                        guidance_scale=float(guidance if guidance is not None else (meta.guidance_scale or DEFAULT_GUIDANCE)),
                        t_range=(float(t_lo), float(t_hi)), learning_rates=rates,
                        keep_alpha=not (kinds is not None and "opacity" in kinds), seed=int(seed))


def _freeze_colour_alpha(scene) -> list:
    """Zero the alpha gradient of every optimised fill/stroke colour (``(..., 4)`` RGBA tensors)."""
    handles = []
    for kind in ("fill", "stroke"):
        for t in scene.parameters().get(kind, []):
            if t.shape[-1] == 4:
                mask = torch.ones(4, dtype=t.dtype, device=t.device)
                mask[3] = 0
                handles.append(t.register_hook(lambda g, m=mask: g * m))
    return handles


def edit_scene(scene, prior, src_prompt: str, tgt_prompt: str, settings: EditSettings, *,
               callback: Optional[Callable[[int, torch.Tensor, float], None]] = None, progress: bool = True):
    """Optimise ``scene`` (a :class:`pds.svg.SVGScene`, rendered at ``scene.render_size``) from
    ``src_prompt`` towards ``tgt_prompt`` with ``settings``.

    Returns the :class:`pds.distiller.OptimizeResult`; the scene holds the edited parameters
    (also after Ctrl-C, which ends the loop early with ``interrupted=True``).
    """
    import pds

    generator = torch.Generator(device="cpu").manual_seed(settings.seed)
    distiller = pds.Distiller(prior, method=settings.method, guidance_scale=settings.guidance_scale,
                              t_range=settings.t_range, generator=generator)
    present = scene.parameters()
    lr = {k: v for k, v in settings.learning_rates.items() if k in present} or None
    handles = _freeze_colour_alpha(scene) if settings.keep_alpha else []
    try:
        return distiller.optimize(scene, None, src_prompt, tgt_prompt, steps=settings.steps, lr=lr,
                                  callback=callback, progress=progress, generator=generator)
    finally:
        for h in handles:
            h.remove()
