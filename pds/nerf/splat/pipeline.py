"""The splat stages: ``pds_splat`` (PDS on full renders) and ``pds_splat_refinement`` (SDEdit).

Both are the NeRF stages' pipelines with a splatfacto model and a full-image data manager; nothing
about diffusion, PDS or the view schedule is written here:

* **Stage 1** (:class:`SplatPDSPipeline`, a :class:`pds.nerf.pipeline.PDSPipeline`): every step
  the core's :class:`pds.views.MultiViewEditor` picks a view (a new one every
  ``view_update_every`` steps), the Gaussians render that camera in full with gradients
  (splatfacto's camera-based ``get_outputs``; gsplat on CUDA, :mod:`pds.nerf.splat.raster` on a
  CPU), and :class:`pds.Distiller`'s loss against the cached latent of the ORIGINAL image is the
  only loss. At the end every view is rendered to ``eval_outputs/`` by the NeRF stages' exporter.
* **Stage 2** (:class:`SplatRefinementPipeline`, a :class:`pds.nerf.refinement.RefinementPipeline`):
  every ``update_every`` steps one training image, cycling, is replaced by the SDEdit
  (:func:`pds.sampling.sdedit`) of the current render of that view; in between, splatfacto's own
  L1 + SSIM loss fits the Gaussians to the image set.

**Densification is off in both stages** (``--pipeline.model.refine-gaussians False``, the
default): the loaded Gaussians keep their number and only their parameters move. Why:

* splatfacto's split/duplicate rule thresholds the accumulated screen-space gradient at a value
  tuned for a photometric loss; the PDS gradient is a different, noisier signal spread over the
  whole image, so the same threshold would clone Gaussians wherever the prior is uncertain;
* its periodic opacity reset (every 3000 steps) relies on the photometric loss to re-grow the
  opacities; with PDS as the only loss nothing pulls them back to the source, and the reset
  would erase the scene's identity that PDS is built to keep;
* a fixed set keeps every optimiser state and the cost per step constant, and a stage-1 checkpoint
  can be refined without any resizing; the reference's refinement stage does not split either.

Edits that need new geometry (adding an object) can opt in with ``--pipeline.model.refine-gaussians
True``, which runs splatfacto's schedule from the loaded step on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Type

from torch import Tensor

from ..pipeline import PDSPipeline, PDSPipelineConfig
from ..refinement import RefinementPipeline, RefinementPipelineConfig
from ..settings import PDSSettings, RefinementSettings
from .datamanager import SplatDataManagerConfig
from .model import PDSSplatfactoModelConfig


@dataclass
class SplatPDSPipelineConfig(PDSPipelineConfig):
    """Pipeline of ``ns-train pds_splat``."""

    _target: Type = field(default_factory=lambda: SplatPDSPipeline)
    datamanager: SplatDataManagerConfig = field(default_factory=SplatDataManagerConfig)
    """Training views (all frames of --data), as full images with cameras."""
    model: PDSSplatfactoModelConfig = field(default_factory=PDSSplatfactoModelConfig)
    """The Gaussians being edited (splatfacto)."""
    pds: PDSSettings = field(default_factory=PDSSettings)
    """Prompts, prior and distillation options (chunk_rays is not used: a splat renders a view at once)."""


class SplatPDSPipeline(PDSPipeline):
    """Stage 1 on Gaussians: :class:`pds.nerf.pipeline.PDSPipeline` with a splat render (see the module docstring)."""

    config: SplatPDSPipelineConfig

    def render_train_view(self, index: int) -> Tensor:
        """Render view ``index`` at ``render_scale`` with gradients to the Gaussians: ``(3, h, w)`` in ``[0, 1]``."""
        camera = self.render_cameras[index:index + 1]
        return self._model.get_outputs(camera)["rgb"].float().permute(2, 0, 1)


@dataclass
class SplatRefinementPipelineConfig(RefinementPipelineConfig):
    """Pipeline of ``ns-train pds_splat_refinement``."""

    _target: Type = field(default_factory=lambda: SplatRefinementPipeline)
    datamanager: SplatDataManagerConfig = field(default_factory=SplatDataManagerConfig)
    """Training views (all frames of --data, normally stage 1's eval_outputs)."""
    model: PDSSplatfactoModelConfig = field(default_factory=PDSSplatfactoModelConfig)
    """The Gaussians being refined (splatfacto)."""
    pds: RefinementSettings = field(default_factory=RefinementSettings)
    """Target prompt, prior and SDEdit options."""


class SplatRefinementPipeline(RefinementPipeline):
    """Stage 2 on Gaussians: :class:`pds.nerf.refinement.RefinementPipeline` with splatfacto's losses."""

    config: SplatRefinementPipelineConfig
