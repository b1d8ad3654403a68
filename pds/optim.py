"""Optimisers for rendered parameters.

:class:`VectorAdam` is Adam whose second moment is shared by the components of one vector (the
last dimension of a tensor) in the parameter groups that ask for it, after VectorAdam (Ling,
Sharp and Jacobson, 2022). Plain Adam normalises every scalar on its own, so a colour moves by
about the learning rate in *each* channel whose gradient has a consistent sign, however small
that gradient is: the step follows the gradient's sign pattern, not its direction, and a
recolour drifts in hue (an orange triangle asked to be blue overshot to violet, a purple diamond
asked to be orange to ochre, with the green channel moving as fast as the ones the prompt
changes). With the second moment shared, a vector's step is parallel to its (averaged) gradient
and its length is still normalised, so the learning rate keeps its meaning.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import Tensor

__all__ = ["VectorAdam"]


class VectorAdam(torch.optim.Optimizer):
    """Adam (Kingma and Ba) with a per-vector second moment in the groups named in ``vector_groups``.

    In those groups (matched against each parameter group's ``"name"``, as built by
    :func:`pds.renderer.parameter_groups`), the second moment of a tensor ``(..., D)`` is the
    running mean of the squared gradient over the last dimension (RMS, so a gradient equal in
    every component gives Adam's step), shape ``(..., 1)``; elsewhere it is Adam's, elementwise.
    With no vector groups it computes what ``torch.optim.Adam`` does (no weight decay, no amsgrad).

    Args:
        params: tensors or parameter groups (dicts with ``"params"`` and optionally ``"lr"``,
            ``"name"``).
        lr: learning rate (default 1e-3, torch's).
        betas: ``(beta1, beta2)`` moment decays (default ``(0.9, 0.999)``).
        eps: added to the root of the second moment (default 1e-8).
        vector_groups: names of the groups whose tensors are vectors along their last dimension
            (default: none).
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, vector_groups: Sequence[str] = ()):
        if not lr >= 0:
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps))
        self.vector_groups = frozenset(vector_groups)

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter with a gradient; returns ``closure()``'s loss if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            vector = group.get("name") in self.vector_groups
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    shape = (*p.shape[:-1], 1) if vector and p.dim() > 0 else p.shape
                    state["v"] = torch.zeros(shape, dtype=p.dtype, device=p.device)
                state["step"] += 1
                t = state["step"]
                state["m"].mul_(beta1).add_(g, alpha=1 - beta1)
                g2 = g * g
                if vector and p.dim() > 0:
                    g2 = g2.mean(dim=-1, keepdim=True)
                state["v"].mul_(beta2).add_(g2, alpha=1 - beta2)
                m_hat = state["m"] / (1 - beta1 ** t)
                v_hat: Tensor = state["v"] / (1 - beta2 ** t)
                p.sub_(group["lr"] * m_hat / (v_hat.sqrt() + group["eps"]))
        return loss
