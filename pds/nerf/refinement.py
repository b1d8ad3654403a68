"""Stage 2, ``ns-train pds_refinement``: refine an edited NeRF by SDEdit iterative dataset updates.

``--data`` is stage 1's ``eval_outputs`` (renders of the edited NeRF at every training view).
Every ``update_every`` steps one training image, cycling through the views, is replaced by an
SDEdit (:func:`pds.sampling.sdedit`) of the NeRF's current render of that view: noised to a start
step that skips a fraction drawn from ``skip_ratio`` (0.8–0.9) of a ``sdedit_steps``-step DDIM
schedule, then denoised towards the target prompt with classifier-free guidance 15. In between,
the NeRF trains on the image set with ordinary nerfacto losses (Instruct-NeRF2NeRF's scheme).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Type

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.cuda.amp.grad_scaler import GradScaler

from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig

from ..sampling import sdedit
from .datamanager import PDSDataManagerConfig
from .model import PDSNerfactoModelConfig
from .pipeline import EditPipeline
from .render import render_view_no_grad
from .settings import RefinementSettings


@dataclass
class RefinementPipelineConfig(VanillaPipelineConfig):
    """Pipeline of ``ns-train pds_refinement``."""

    _target: Type = field(default_factory=lambda: RefinementPipeline)
    datamanager: PDSDataManagerConfig = field(default_factory=PDSDataManagerConfig)
    """Training views (all frames of --data, normally stage 1's eval_outputs)."""
    model: PDSNerfactoModelConfig = field(default_factory=PDSNerfactoModelConfig)
    """The NeRF being refined (nerfacto)."""
    pds: RefinementSettings = field(default_factory=RefinementSettings)
    """Target prompt, prior and SDEdit options."""


class RefinementPipeline(EditPipeline):
    """Stage 2: nerfacto training on an image set that SDEdit keeps rewriting (see the module docstring)."""

    config: RefinementPipelineConfig

    def __init__(self, config: RefinementPipelineConfig, device: str,
                 test_mode: Literal["test", "val", "inference"] = "val", world_size: int = 1, local_rank: int = 0,
                 grad_scaler: Optional[GradScaler] = None):
        super().__init__(config, device, test_mode, world_size, local_rank, grad_scaler)
        self.next_update_view = 0
        self.updates = 0
        if test_mode != "inference":
            self._load_prior((config.pds.tgt_prompt,))

    def sdedit_view(self, index: int) -> Tensor:
        """SDEdit of the current render of view ``index``: ``(3, H, W)`` in ``[0, 1]`` at the view's size."""
        s = self.config.pds
        render = render_view_no_grad(self.model, self.datamanager.cameras, index)
        lo, hi = s.skip_ratio
        skip = lo + (hi - lo) * float(torch.rand((), generator=self.generator))
        with torch.autocast(torch.device(self.device).type, enabled=False):
            edited = sdedit(self.prior, render[None], s.tgt_prompt, strength=1.0 - skip, steps=s.sdedit_steps,
                            guidance_scale=s.guidance_scale, generator=self.generator)
        if edited.shape[-2:] != render.shape[-2:]:
            edited = F.interpolate(edited, size=tuple(render.shape[-2:]), mode="bilinear", align_corners=False,
                                   antialias=True)
        return edited[0].clamp(0, 1)

    def update_dataset(self) -> int:
        """Replace the next training image (cycling) by its SDEdit; returns the view index."""
        index = self.next_update_view
        self.datamanager.replace_image(index, self.sdedit_view(index).permute(1, 2, 0))
        self.next_update_view = (index + 1) % self.datamanager.num_views
        self.updates += 1
        return index

    def get_train_loss_dict(self, step: int):
        if self.prior is None:
            raise RuntimeError("this pipeline was built for inference and has no prior")
        if self._count % self.config.pds.update_every == 0:
            self.update_dataset()
        self._count += 1
        outputs, loss_dict, metrics = super().get_train_loss_dict(step)
        metrics["dataset_updates"] = float(self.updates)
        return outputs, loss_dict, metrics
