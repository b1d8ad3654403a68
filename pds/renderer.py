"""The contract between a parametric image and the distiller.

A *renderer* owns differentiable parameters and turns them into images. SVG scenes
(:class:`pds.svg.SVGScene`), the NeRF adapter and any user-written renderer (see
``examples/gaussian_blobs.py``) satisfy :class:`Renderer`, so :meth:`pds.Distiller.optimize`
drives all of them the same way.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional, Protocol, Sequence, Union, runtime_checkable

import torch
from torch import Tensor

ParamSpec = Union[Mapping[str, Sequence[Tensor]], Iterable[Tensor]]


@runtime_checkable
class Renderer(Protocol):
    """A differentiable parametric image.

    Required:
        ``parameters()`` → leaf tensors with ``requires_grad``, grouped by kind
        (``{"points": [...], "fill": [...]}``) or a flat iterable (one group named ``"params"``).
        ``render()`` → ``(3, H, W)`` or ``(B, 3, H, W)`` float image in ``[0, 1]``.

    Optional:
        ``learning_rates``: ``{kind: lr}`` defaults for the Adam groups.
        ``project()``: called under ``torch.no_grad()`` after every optimizer step to keep
        parameters valid (clamp colours to ``[0, 1]``, widths ``≥ 0``...).
        ``regularization()``: a scalar tensor added to the distillation loss every step (a prior
        on the parameters themselves, e.g. :meth:`pds.svg.SVGScene.regularization` keeping each
        path's outline), or ``None``. Its gradient is summed with the distillation gradient
        before the optimizer step.
    """

    def parameters(self) -> ParamSpec: ...

    def render(self) -> Tensor: ...


def parameter_groups(
    renderer: Renderer, lr: Union[float, Mapping[str, float], None] = None, default_lr: float = 1e-2
) -> list[dict]:
    """Build ``torch.optim`` parameter groups from a renderer.

    Learning rates come from ``lr`` (a float for all groups, or ``{kind: lr}``), then from the
    renderer's ``learning_rates``, then ``default_lr``. Kinds with no tensors are skipped;
    tensors that do not require grad are left out (they are frozen).

    Returns:
        ``[{"params": [...], "lr": float, "name": kind}, ...]``.

    Raises:
        ValueError: when the renderer exposes no trainable tensor, or ``lr`` names an unknown kind.
    """
    spec = renderer.parameters()
    groups_in = dict(spec) if isinstance(spec, Mapping) else {"params": list(spec)}
    defaults = dict(getattr(renderer, "learning_rates", None) or {})
    if isinstance(lr, Mapping):
        unknown = set(lr) - set(groups_in)
        if unknown:
            raise ValueError(f"learning rate given for unknown parameter kind(s) {sorted(unknown)}; "
                             f"the renderer has {sorted(groups_in)}")
        defaults.update(lr)
    groups = []
    for kind, tensors in groups_in.items():
        params = [p for p in tensors if isinstance(p, Tensor) and p.requires_grad]
        if not params:
            continue
        rate = float(lr) if isinstance(lr, (int, float)) else float(defaults.get(kind, default_lr))
        groups.append({"params": params, "lr": rate, "name": kind})
    if not groups:
        raise ValueError("the renderer has no trainable parameters (every tensor is frozen or the selection is empty)")
    return groups


def as_batch(images: Tensor) -> Tensor:
    """``(3, H, W)`` → ``(1, 3, H, W)``; a 4-D batch passes through."""
    if images.dim() == 3:
        return images.unsqueeze(0)
    return images


def project(renderer: Renderer) -> None:
    """Call the renderer's optional ``project()`` without recording gradients."""
    fn: Optional[callable] = getattr(renderer, "project", None)
    if fn is not None:
        with torch.no_grad():
            fn()


def regularization(renderer: Renderer) -> Optional[Tensor]:
    """The renderer's optional ``regularization()`` term (a scalar tensor), or ``None``."""
    fn = getattr(renderer, "regularization", None)
    return fn() if fn is not None else None
