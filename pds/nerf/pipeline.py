"""Stage 1, ``ns-train pds``: edit a trained NeRF with Posterior Distillation Sampling.

Every step renders one training view in full with gradients (:func:`pds.nerf.render.render_view`)
and hands it to the core's :class:`pds.views.MultiViewEditor`, which encodes it with the prior and
takes the :class:`pds.Distiller` loss against the latent of the ORIGINAL image of that view
(encoded once and cached). The PDS loss is the only loss. The view changes every
``view_update_every`` steps. Nothing here re-implements diffusion or the view schedule.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Literal, Optional, Type

import torch
from torch import Tensor
from torch.cuda.amp.grad_scaler import GradScaler

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig

from ..distiller import Distiller
from ..priors import PriorError, load_prior
from ..views import MultiViewEditor
from . import PDSNerfError
from .datamanager import PDSDataManager, PDSDataManagerConfig
from .export import write_eval_outputs
from .model import PDSNerfactoModelConfig
from .render import render_view, render_view_no_grad
from .settings import PDSSettings, PriorSettings, torch_dtype


def load_checked_prior(settings: PriorSettings, device: torch.device, prompts: tuple[str, ...]):
    """Load the prior named by ``--pipeline.pds.sd_pretrained_model_or_path`` and check the prompts'
    words against it, so that a bad prior or prompt fails before the first step."""
    try:
        prior = load_prior(settings.sd_pretrained_model_or_path, device=device, dtype=torch_dtype(settings.prior_dtype))
    except PriorError as exc:
        raise PDSNerfError(f"--pipeline.pds.sd_pretrained_model_or_path: {exc}") from exc
    check = getattr(prior, "check_prompt", None)
    if check is not None:
        for prompt in prompts:
            check(prompt)
    return prior


class EditPipeline(VanillaPipeline):
    """What both stages share: the prior (loaded at construction, except for inference), a seeded
    generator, the training views, and :meth:`export_views`."""

    datamanager: PDSDataManager

    def __init__(self, config, device: str, test_mode: Literal["test", "val", "inference"] = "val",
                 world_size: int = 1, local_rank: int = 0, grad_scaler: Optional[GradScaler] = None):
        config.pds.validate()
        super().__init__(config, device, test_mode, world_size, local_rank, grad_scaler)
        self.prior = None
        # One CPU generator for view choice, VAE samples, timesteps and noises: the same seed gives the
        # same run on CPU and GPU.
        self.generator = torch.Generator().manual_seed(int(config.pds.seed))
        self._count = 0  # training steps taken by this run (the trainer's step starts at the checkpoint's)

    def _load_prior(self, prompts: tuple[str, ...]):
        self.prior = load_checked_prior(self.config.pds, torch.device(self.device), prompts)

    def export_views(self, out_dir: Path, extra: Optional[dict] = None) -> Path:
        """Render every training view to ``out_dir`` as a nerfstudio dataset (see :mod:`pds.nerf.export`)."""
        cameras = self.datamanager.train_dataset.cameras
        return write_eval_outputs(out_dir, lambda i: render_view_no_grad(self.model, cameras, i), cameras,
                                  self.datamanager.train_dataparser_outputs, self.datamanager.get_datapath(), extra)


@dataclass
class PDSPipelineConfig(VanillaPipelineConfig):
    """Pipeline of ``ns-train pds``."""

    _target: Type = field(default_factory=lambda: PDSPipeline)
    datamanager: PDSDataManagerConfig = field(default_factory=PDSDataManagerConfig)
    """Training views (all frames of --data)."""
    model: PDSNerfactoModelConfig = field(default_factory=PDSNerfactoModelConfig)
    """The NeRF being edited (nerfacto)."""
    pds: PDSSettings = field(default_factory=PDSSettings)
    """Prompts, prior and distillation options."""


class PDSPipeline(EditPipeline):
    """Stage 1: the PDS loss on full rendered views (see the module docstring)."""

    config: PDSPipelineConfig

    def __init__(self, config: PDSPipelineConfig, device: str, test_mode: Literal["test", "val", "inference"] = "val",
                 world_size: int = 1, local_rank: int = 0, grad_scaler: Optional[GradScaler] = None):
        super().__init__(config, device, test_mode, world_size, local_rank, grad_scaler)
        s = config.pds
        self.losses: List[float] = []  # the PDS loss of every step of this run
        cameras = copy.deepcopy(self.datamanager.train_dataset.cameras)
        if s.render_scale != 1.0:
            cameras.rescale_output_resolution(s.render_scale)
        self.render_cameras: Cameras = cameras.to(self.device)
        if test_mode == "inference":
            return
        self._load_prior((s.src_prompt, s.tgt_prompt))
        self.distiller = Distiller(self.prior, method=s.method, guidance_scale=s.guidance_scale,
                                   t_range=(s.t_min, s.t_max), num_inference_steps=s.num_inference_steps,
                                   discretization=s.discretization, generator=self.generator)
        self.editor = MultiViewEditor(
            self.distiller, lambda i: self.datamanager.original_image(i).permute(2, 0, 1).to(self.device),
            self.datamanager.num_views, s.tgt_prompt, s.src_prompt, view_update_every=s.view_update_every,
            render_size=lambda i: (int(self.render_cameras.height[i]), int(self.render_cameras.width[i])),
            generator=self.generator)

    def render_train_view(self, index: int) -> Tensor:
        """Differentiable render of view ``index`` at the render cameras' size: ``(3, h, w)`` in ``[0, 1]``
        (the one step a scene representation supplies; the splat stage overrides it)."""
        return render_view(self._model, self.render_cameras, index, self.config.pds.chunk_rays)

    def get_train_loss_dict(self, step: int):
        if self.prior is None:
            raise RuntimeError("this pipeline was built for inference and has no prior")
        self._count += 1
        st = self.editor.step(self.render_train_view)
        self.losses.append(float(st.loss.detach()))
        return {"rgb": st.image}, {"pds_loss": st.loss}, st.metrics
