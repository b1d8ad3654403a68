"""The ``--pipeline.pds.*`` options of ``ns-train pds`` and ``ns-train pds_refinement``.

Option names follow the upstream README (``src_prompt``, ``tgt_prompt``,
``sd_pretrained_model_or_path``); tyro accepts them with underscores or hyphens. Each field's
docstring is its ``--help`` text. Defaults are the reference implementation's unless noted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Tuple

import torch

from .. import methods
from ..priors import DEFAULT_PRIOR
from . import PDSNerfError

DType = Literal["auto", "float32", "float16", "bfloat16"]


def torch_dtype(name: DType) -> Optional[torch.dtype]:
    """``"auto"`` → ``None`` (let :func:`pds.load_prior` choose), else the torch dtype."""
    return None if name == "auto" else getattr(torch, name)


@dataclass(frozen=True)
class PriorSettings:
    """Options shared by both stages: which diffusion prior, and the target."""

    tgt_prompt: str = ""
    """Description of the edited scene, e.g. "a blue ball" (with the DreamBooth token if the prior has one)."""
    sd_pretrained_model_or_path: str = DEFAULT_PRIOR
    """Diffusion prior: an embedded prior name (default "pds-tiny"), a diffusers model folder such as a
    DreamBooth output, or a hub id like "runwayml/stable-diffusion-v1-5"."""
    prior_dtype: DType = "auto"
    """dtype of the prior's networks: "auto" is float32 on CPU and bfloat16/float16 on a GPU."""
    seed: int = 0
    """Seed of the generator for views, timesteps and noises."""

    def check_prompts(self) -> None:
        if not self.tgt_prompt.strip():
            raise PDSNerfError('missing target prompt: pass --pipeline.pds.tgt_prompt "DESCRIPTION OF THE EDITED SCENE"')


@dataclass(frozen=True)
class PDSSettings(PriorSettings):
    """Stage 1 (``ns-train pds``): Posterior Distillation Sampling on rendered views."""

    src_prompt: str = ""
    """Description of the original scene, e.g. "a red ball" (with the DreamBooth token if the prior has one)."""
    method: Literal[methods.names()] = methods.names()[0]  # type: ignore[valid-type]
    """Distillation method, a name of pds.methods.METHODS: "pds" (this paper), or the baselines "sds" and "dds"."""
    guidance_scale: float = 100.0
    """Classifier-free guidance weight w (the reference uses 100 for NeRF editing)."""
    t_min: float = 0.1
    """Lower end of the timestep range, a fraction of the DDIM grid (the authors advise 0.1 for NeRFs)."""
    t_max: float = 0.9
    """Upper end of the timestep range (the authors advise 0.9 for NeRFs; the reference default is 0.98)."""
    num_inference_steps: int = 500
    """Size of the DDIM grid whose stride is the PDS step t -> t_prev (500: stride 2)."""
    discretization: Literal["reference", "exact"] = "reference"
    """Posterior of the reference implementation (identity-preserving term), or the exact stride posterior."""
    view_update_every: int = 10
    """Edit the same training view for this many steps, then draw another one."""
    render_scale: float = 1.0
    """Resolution of the differentiable render relative to the dataset images (1.0: full views, as the
    reference; lower it on a CPU, e.g. 0.25)."""
    chunk_rays: int = 4096
    """Rays rendered with gradients at once; larger views are rendered in chunks and re-rendered chunk by
    chunk in the backward pass, so memory stays bounded whatever the view size."""

    def check_prompts(self) -> None:
        if not self.src_prompt.strip():
            raise PDSNerfError('missing source prompt: pass --pipeline.pds.src_prompt "DESCRIPTION OF THE ORIGINAL SCENE"')
        super().check_prompts()

    def validate(self) -> None:
        """Raise :class:`pds.nerf.PDSNerfError` for a missing prompt or an out-of-range option."""
        self.check_prompts()
        if not 0.0 <= self.t_min < self.t_max <= 1.0:
            raise PDSNerfError(f"--pipeline.pds.t_min {self.t_min} / t_max {self.t_max}: need 0 <= t_min < t_max <= 1")
        if self.guidance_scale <= 0:
            raise PDSNerfError(f"--pipeline.pds.guidance_scale must be > 0, got {self.guidance_scale}")
        if not 0.0 < self.render_scale <= 1.0:
            raise PDSNerfError(f"--pipeline.pds.render_scale must be in (0, 1], got {self.render_scale}")
        if self.view_update_every < 1 or self.chunk_rays < 1:
            raise PDSNerfError("--pipeline.pds.view_update_every and --pipeline.pds.chunk_rays must be >= 1")


@dataclass(frozen=True)
class RefinementSettings(PriorSettings):
    """Stage 2 (``ns-train pds_refinement``): SDEdit iterative dataset update."""

    update_every: int = 10
    """Replace one training image (cycling through the views) every this many steps."""
    skip_ratio: Tuple[float, float] = (0.8, 0.9)
    """SDEdit starts after skipping a fraction of the DDIM schedule drawn uniformly from this range
    (0.8-0.9 of 20 steps: re-run the last 2-4 steps)."""
    sdedit_steps: int = 20
    """Length of the full DDIM schedule SDEdit is a part of."""
    guidance_scale: float = 15.0
    """Classifier-free guidance weight of SDEdit."""

    def validate(self) -> None:
        """Raise :class:`pds.nerf.PDSNerfError` for a missing prompt or an out-of-range option."""
        self.check_prompts()
        lo, hi = self.skip_ratio
        if not 0.0 <= lo <= hi < 1.0:
            raise PDSNerfError(f"--pipeline.pds.skip_ratio {lo} {hi}: need 0 <= low <= high < 1")
        if self.update_every < 1 or self.sdedit_steps < 1:
            raise PDSNerfError("--pipeline.pds.update_every and --pipeline.pds.sdedit_steps must be >= 1")
        if self.guidance_scale < 0:
            raise PDSNerfError(f"--pipeline.pds.guidance_scale must be >= 0, got {self.guidance_scale}")
