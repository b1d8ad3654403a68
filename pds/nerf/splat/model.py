"""Splatfacto on any device: gsplat's CUDA rasterizer on a GPU, :mod:`pds.nerf.splat.raster` on a CPU.

:class:`PDSSplatfactoModel` is nerfstudio 1.1.5's ``SplatfactoModel`` with the same parameters and
state-dict layout (``gauss_params.*``), so checkpoints move freely between it and ``ns-train
splatfacto``, and between devices. What differs:

* ``get_outputs`` on a CUDA device is splatfacto's own (gsplat). On any other device it does the
  same steps -- camera optimiser, crop box, resolution schedule, SH degree schedule, background,
  densification bookkeeping -- around the pure-PyTorch :func:`pds.nerf.splat.raster.rasterization`,
  which returns the same ``info`` that gsplat's strategy reads (``means2d`` with ``absgrad``, ``radii``).
* construction puts nothing on CUDA (splatfacto moves seed-point colours to ``.cuda()``) and
  downloads nothing (LPIPS is built on first use, :class:`pds.nerf.compat.LazyLPIPS`).
* :class:`PDSSplatfactoModelConfig` (the editing stages' model) fixes the set of Gaussians
  (``refine_gaussians=False``), renders at full resolution from the first step and composites on a
  fixed white background; see :mod:`pds.nerf.splat.pipeline` for why.

:func:`use_torch_splatfacto` points nerfstudio's own ``splatfacto`` methods at this model, which is
how ``python -m pds.nerf.ns_train splatfacto --machine.device-type cpu ...`` trains on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Type, Union

import torch
from torch import Tensor

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes
from nerfstudio.models.splatfacto import RGB2SH, SplatfactoModel, SplatfactoModelConfig

from ..compat import lazy_lpips
from . import raster

_GL_TO_CV = (1.0, -1.0, -1.0)  # nerfstudio cameras are OpenGL (y up, z back); gsplat's are OpenCV


def world_to_camera(camera_to_worlds: Tensor) -> Tensor:
    """gsplat view matrices of nerfstudio cameras.

    Args:
        camera_to_worlds: ``(C, 3, 4)`` OpenGL camera-to-world poses (nerfstudio convention).

    Returns:
        ``(C, 4, 4)`` world-to-camera matrices in OpenCV axes (x right, y down, z forward).
    """
    rot = camera_to_worlds[:, :3, :3] * torch.tensor(_GL_TO_CV, device=camera_to_worlds.device,
                                                      dtype=camera_to_worlds.dtype)
    trans = camera_to_worlds[:, :3, 3:4]
    view = torch.zeros(len(rot), 4, 4, device=rot.device, dtype=rot.dtype)
    view[:, :3, :3] = rot.transpose(1, 2)  # rotations invert by transposition
    view[:, :3, 3:4] = -rot.transpose(1, 2) @ trans
    view[:, 3, 3] = 1.0
    return view


@dataclass
class PDSSplatfactoModelConfig(SplatfactoModelConfig):
    """Splatfacto for the editing stages (see :mod:`pds.nerf.splat.model`). Pass the same
    ``--pipeline.model.sh-degree`` as the ``ns-train splatfacto`` run if it changed it."""

    _target: Type = field(default_factory=lambda: PDSSplatfactoModel)
    refine_gaussians: bool = False
    """Densify, prune and reset opacities with splatfacto's schedule (off: the edit keeps the loaded set of
    Gaussians and optimises their parameters only)."""
    num_downscales: int = 0
    """Render at 1/2^d of the image size early in training (0: full resolution from the first step, since
    the edit starts from a trained scene)."""
    background_color: Literal["random", "black", "white"] = "white"
    """Colour behind the Gaussians (white: the prior judges renders, and a random backdrop would be noise
    in every render; it matches the example scene's white background)."""
    num_random: int = 1000
    """Gaussians of the throw-away random initialisation that the checkpoint replaces (kept small: the
    nearest-neighbour scale initialisation costs time on a CPU)."""


class PDSSplatfactoModel(SplatfactoModel):
    """Splatfacto with a pure-PyTorch CPU path (see :mod:`pds.nerf.splat.model`)."""

    config: SplatfactoModelConfig

    def populate_modules(self) -> None:
        seeds = self.seed_points
        colors = None
        if seeds is not None and not self.config.random_init and seeds[1].shape[0] > 0:
            # splatfacto builds seed colours with `.cuda()`; build without colours, then set them here.
            colors = seeds[1]
            self.seed_points = (seeds[0], seeds[1][:0])
        with lazy_lpips():
            super().populate_modules()
        self.seed_points = seeds
        if colors is not None:
            rgb = colors.float() / 255.0
            dc = RGB2SH(rgb) if self.config.sh_degree > 0 else torch.logit(rgb, eps=1e-10)
            self.gauss_params["features_dc"] = torch.nn.Parameter(dc)

    @property
    def refines(self) -> bool:
        """Whether splatfacto's densification runs (``refine_gaussians``; always for plain splatfacto configs)."""
        return bool(getattr(self.config, "refine_gaussians", True))

    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        callbacks = super().get_training_callbacks(training_callback_attributes)
        if self.refines:
            return callbacks
        # keep step_cb (it sets the step and the optimizers), drop the densification after backward
        return [cb for cb in callbacks if getattr(cb.func, "__func__", None) is not SplatfactoModel.step_post_backward]

    def get_outputs(self, camera: Cameras) -> Dict[str, Union[Tensor, List]]:
        """Render ``camera`` (one camera in training): splatfacto's outputs ``rgb`` ``(H, W, 3)``,
        ``depth`` ``(H, W, 1)`` or ``None``, ``accumulation`` ``(H, W, 1)``, ``background``."""
        if self.device.type == "cuda":
            return super().get_outputs(camera)
        return self._torch_outputs(camera)

    def _torch_outputs(self, camera: Cameras) -> Dict[str, Union[Tensor, List]]:
        # The steps of SplatfactoModel.get_outputs (nerfstudio 1.1.5) around the PyTorch rasterizer.
        if not isinstance(camera, Cameras):
            raise TypeError(f"splatfacto renders Cameras, got {type(camera).__name__}")
        if self.training:
            if camera.shape[0] != 1:
                raise ValueError("splatfacto trains on one camera at a time")
            camera_to_world = self.camera_optimizer.apply_to_camera(camera)
        else:
            camera_to_world = camera.camera_to_worlds
        params = {k: self.gauss_params[k] for k in ("means", "scales", "quats", "features_dc", "features_rest",
                                                     "opacities")}
        if self.crop_box is not None and not self.training:
            keep = self.crop_box.within(self.means).squeeze()
            if keep.sum() == 0:
                return self.get_empty_outputs(int(camera.width.item()), int(camera.height.item()),
                                              self.background_color)
            params = {k: v[keep] for k, v in params.items()}
        colors = torch.cat((params["features_dc"][:, None, :], params["features_rest"]), dim=1)
        factor = self._get_downscale_factor()
        camera.rescale_output_resolution(1 / factor)
        viewmat = world_to_camera(camera_to_world)
        K = camera.get_intrinsics_matrices().to(self.device)
        width, height = int(camera.width.item()), int(camera.height.item())
        self.last_size = (height, width)
        camera.rescale_output_resolution(factor)
        render_mode = "RGB+ED" if self.config.output_depth_during_training or not self.training else "RGB"
        if self.config.sh_degree > 0:
            sh_degree = min(self.step // self.config.sh_degree_interval, self.config.sh_degree)
        else:
            colors, sh_degree = torch.sigmoid(colors).squeeze(1), None
        render, alpha, self.info = raster.rasterization(
            means=params["means"], quats=params["quats"], scales=torch.exp(params["scales"]),
            opacities=torch.sigmoid(params["opacities"]).squeeze(-1), colors=colors, viewmats=viewmat, Ks=K,
            width=width, height=height, near_plane=0.01, far_plane=1e10, render_mode=render_mode,
            sh_degree=sh_degree, absgrad=self.strategy.absgrad, rasterize_mode=self.config.rasterize_mode)
        if self.training:
            self.strategy.step_pre_backward(self.gauss_params, self.optimizers, self.strategy_state, self.step,
                                            self.info)
        background = self._get_background_color()
        rgb = torch.clamp(render[..., :3] + (1 - alpha) * background, 0.0, 1.0)
        if self.config.use_bilateral_grid and self.training and camera.metadata and "cam_idx" in camera.metadata:
            rgb = self._apply_bilateral_grid(rgb, camera.metadata["cam_idx"], height, width)
        depth = None
        if render_mode == "RGB+ED":
            depth = render[..., 3:4]
            depth = torch.where(alpha > 0, depth, depth.detach().max()).squeeze(0)
        if background.shape[0] == 3 and not self.training:
            background = background.expand(height, width, 3)
        return {"rgb": rgb.squeeze(0), "depth": depth, "accumulation": alpha.squeeze(0), "background": background}


def use_torch_splatfacto(configs: dict) -> List[str]:
    """Make nerfstudio's ``splatfacto`` methods in ``configs`` (name → TrainerConfig) build
    :class:`PDSSplatfactoModel`, so they also train on a CPU. Same options, same checkpoints.

    Returns:
        The method names changed.
    """
    changed = []
    for name, config in configs.items():
        model = getattr(getattr(config, "pipeline", None), "model", None)
        if type(model) is SplatfactoModelConfig:
            model._target = PDSSplatfactoModel
            changed.append(name)
    return changed
