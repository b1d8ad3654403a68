"""Multi-view editing: one distillation step on one view of a 3-D scene at a time.

A NeRF or a Gaussian-splat scene is edited the way the PDS paper does it: each step renders ONE
training view in full, encodes it, and takes the distiller's loss against the latent of the
ORIGINAL image of that view. :class:`MultiViewEditor` holds what every such backend shares:

* the view schedule (a new random view every ``view_update_every`` steps, from one seeded
  generator, so a seed gives the same run on a CPU and a GPU);
* the per-view source cache: each original image is encoded once, from its full resolution, and
  resized once to the render resolution for metrics;
* the step itself (encode with gradient, :meth:`pds.Distiller.loss_from_latents`) and its metrics.

The backend supplies only ``source_image(index)`` and renders the view; see
:mod:`pds.nerf.pipeline` (NeRF) for a user. A renderer with views may instead expose
``num_views``, ``render_view(index)`` and ``source_view(index)`` and be driven by :func:`optimize_views`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .renderer import parameter_groups, project
from .rng import randint_with


@dataclass
class ViewStep:
    """One multi-view step: the view edited, its render, the loss (with graph) and metrics."""

    index: int
    image: Tensor
    loss: Tensor
    metrics: dict = field(default_factory=dict)


class MultiViewEditor:
    """View schedule, per-view source cache and the distillation step of multi-view editing.

    Args:
        distiller: a :class:`pds.Distiller`.
        source_image: ``index -> (3, H, W)`` original image of a view in ``[0, 1]``, full resolution.
        num_views: number of views (``≥ 1``).
        tgt_prompt, src_prompt: the edit's prompts.
        view_update_every: a new random view every this many steps (default 1).
        render_size: ``index -> (h, w)`` of the renders, for :meth:`source_small`; default: the
            source's own size.
        generator: the run's generator (view choice, VAE samples, timesteps, noises); default the
            distiller's.
    """

    def __init__(self, distiller, source_image: Callable[[int], Tensor], num_views: int, tgt_prompt: str,
                 src_prompt: str, *, view_update_every: int = 1,
                 render_size: Optional[Callable[[int], tuple[int, int]]] = None,
                 generator: Optional[torch.Generator] = None):
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        if view_update_every < 1:
            raise ValueError(f"view_update_every must be >= 1, got {view_update_every}")
        self.distiller = distiller
        self._source_image = source_image
        self.num_views = int(num_views)
        self.tgt_prompt, self.src_prompt = tgt_prompt, src_prompt
        self.view_update_every = int(view_update_every)
        self._render_size = render_size
        self.generator = generator if generator is not None else distiller.generator
        self.view: Optional[int] = None
        self.count = 0  # steps taken by this editor
        self._latents: dict[int, Tensor] = {}
        self._small: dict[int, Tensor] = {}

    def next_view(self) -> int:
        """The view of the coming step: a new random one every ``view_update_every`` steps."""
        if self.view is None or self.count % self.view_update_every == 0:
            self.view = int(randint_with(self.num_views, (1,), self.generator))
        return self.view

    @torch.no_grad()
    def source_latent(self, index: int) -> Tensor:
        """``(1, C, h, w)`` float32 latent of the original image of view ``index`` (encoded once)."""
        if index not in self._latents:
            image = self._source_image(index)[None]
            self._latents[index] = self.distiller.encode(image.float(), self.generator).float()
        return self._latents[index]

    def source_small(self, index: int) -> Tensor:
        """The original image of view ``index`` at the render size, ``(3, h, w)`` in ``[0, 1]``."""
        if index not in self._small:
            image = self._source_image(index)[None].float()
            if self._render_size is not None:
                h, w = self._render_size(index)
                if image.shape[-2:] != (h, w):
                    image = F.interpolate(image, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
            self._small[index] = image[0].clamp(0, 1)
        return self._small[index]

    def loss(self, index: int, image: Tensor) -> ViewStep:
        """The distillation loss of ``image`` ``(3, h, w)`` (a render of view ``index``, with graph).

        The prior runs in its own dtype, outside any autocast of the caller. Metrics:
        ``view`` and ``psnr_to_source`` (dB against the original image of that view).
        """
        device_type = image.device.type
        with torch.autocast(device_type, enabled=False):
            z_tgt = self.distiller.encode(image[None].float(), self.generator)
            loss = self.distiller.loss_from_latents(z_tgt, self.source_latent(index).to(z_tgt.device),
                                                    self.tgt_prompt, self.src_prompt, generator=self.generator)
        self.count += 1
        with torch.no_grad():
            src = self.source_small(index).to(image.device)
            mse = F.mse_loss(image.detach().float(), src) if src.shape == image.shape else None
        metrics = {"view": float(index)}
        if mse is not None:
            metrics["psnr_to_source"] = float(-10.0 * torch.log10(mse.clamp_min(1e-10)))
        return ViewStep(index, image, loss, metrics)

    def step(self, render_view: Callable[[int], Tensor]) -> ViewStep:
        """Choose the view, render it with ``render_view(index) -> (3, h, w)`` and return its :meth:`loss`."""
        index = self.next_view()
        return self.loss(index, render_view(index))


def optimize_views(distiller, renderer, src_prompt: str, tgt_prompt: str, steps: int,
                   lr: Union[float, Mapping[str, float], None] = None, view_update_every: int = 1,
                   generator: Optional[torch.Generator] = None,
                   callback: Optional[Callable[[ViewStep], None]] = None) -> list[float]:
    """Optimise a renderer with views (``num_views``, ``render_view(i)``, ``source_view(i)``, and the
    :class:`pds.renderer.Renderer` ``parameters()``) with Adam, one view per step.

    Returns the loss of every step. ``KeyboardInterrupt`` stops early; the parameters keep the
    last step's values.
    """
    editor = MultiViewEditor(distiller, renderer.source_view, int(renderer.num_views), tgt_prompt, src_prompt,
                             view_update_every=view_update_every, generator=generator)
    opt = torch.optim.Adam(parameter_groups(renderer, lr))
    losses: list[float] = []
    t0 = time.perf_counter()
    try:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            st = editor.step(renderer.render_view)
            st.loss.backward()
            opt.step()
            project(renderer)
            value = float(st.loss.detach())
            if not math.isfinite(value):
                from .distiller import NonFiniteError

                raise NonFiniteError(f"loss became {value} after {len(losses)} steps; lower the learning rates")
            losses.append(value)
            if callback is not None:
                st.metrics["seconds"] = time.perf_counter() - t0
                callback(st)
    except KeyboardInterrupt:
        pass
    return losses
