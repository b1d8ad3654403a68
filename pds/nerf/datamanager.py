"""Training views for both stages: every image with its camera, in memory, and overwritable.

Stage 1 needs whole views (a camera and the original picture, whose latent is the PDS source);
stage 2 samples rays from an image set it rewrites every few steps (Instruct-NeRF2NeRF's
iterative dataset update). :class:`PDSDataManager` serves both: it loads the training images once
into :attr:`PDSDataManager.image_batch` and samples rays from that batch, never from disk again,
so a replaced image is what the next rays see. Training images live in memory only, never in
checkpoints.

The default dataparser uses every frame for training (``eval_mode="all"``): an edit must cover
every view, scenes with fewer than 10 frames work, and ``eval_outputs`` holds the same set of
poses as the original dataset, so re-parsing it reproduces the scene normalisation exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple, Type

import torch
from torch import Tensor

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.configs.dataparser_configs import AnnotatedDataParserUnion
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

from . import PDSNerfError


def rgb_over_white(image: Tensor) -> Tensor:
    """``(H, W, 3|4)`` image in ``[0, 1]`` (uint8 in ``[0, 255]`` too) → ``(H, W, 3)`` float; RGBA is
    composited over white, the convention of the example data."""
    image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
    if image.shape[-1] == 4:
        image = image[..., :3] * image[..., 3:] + (1.0 - image[..., 3:])
    return image[..., :3]


@dataclass
class PDSDataManagerConfig(VanillaDataManagerConfig):
    """Data manager of ``pds`` and ``pds_refinement``: all training images cached and editable."""

    _target: Type = field(default_factory=lambda: PDSDataManager)
    dataparser: AnnotatedDataParserUnion = field(default_factory=lambda: NerfstudioDataParserConfig(eval_mode="all"))
    """Dataparser; by default nerfstudio-data with every frame used for training."""
    train_num_rays_per_batch: int = 4096
    """Rays per step of the refinement stage's nerfacto losses."""
    eval_num_rays_per_batch: int = 4096
    """Rays per evaluation batch."""


class PDSDataManager(VanillaDataManager):
    """A :class:`VanillaDataManager` whose training images stay in one mutable in-memory batch.

    Attributes:
        image_batch: the collated training batch (``"image"``: ``(N, H, W, C)`` tensor, or a list of
            ``(H, W, C)`` for mixed resolutions; ``"image_idx"``: dataset index of each entry).
        original_images: the images as loaded, never modified (the PDS source views).
    """

    config: PDSDataManagerConfig
    image_batch: Dict
    original_images: list

    def setup_train(self) -> None:
        super().setup_train()
        self._check_patch_size()
        batch = next(self.iter_train_image_dataloader)
        self.image_batch = batch
        self.original_images = [img.clone() for img in batch["image"]]
        self._position = {int(i): p for p, i in enumerate(batch["image_idx"].tolist())}

    def _check_patch_size(self) -> None:
        patch = self.config.patch_size
        if patch <= 1:
            return
        cams = self.train_dataset.cameras
        smallest = int(min(cams.height.min(), cams.width.min()))
        if patch > smallest:
            raise PDSNerfError(f"--pipeline.datamanager.patch-size {patch} is larger than the smallest training image "
                               f"({smallest} px); use a patch size <= {smallest}")
        rays = self.config.train_num_rays_per_batch
        if rays % (patch * patch):
            raise PDSNerfError(f"--pipeline.datamanager.train-num-rays-per-batch {rays} must be a multiple of patch-size² "
                               f"= {patch * patch} (for example {max(1, rays // (patch * patch)) * patch * patch})")

    # ------------------------------------------------------------------ views
    @property
    def num_views(self) -> int:
        return len(self.train_dataset)

    @property
    def cameras(self) -> Cameras:
        """The training cameras (dataset order), on the data manager's device."""
        return self.train_ray_generator.cameras

    def _rgb(self, image: Tensor) -> Tensor:
        return rgb_over_white(image)

    def original_image(self, index: int) -> Tensor:
        """The original training image of dataset view ``index``: ``(H, W, 3)`` float in ``[0, 1]``."""
        return self._rgb(self.original_images[self._position[index]])

    def current_image(self, index: int) -> Tensor:
        """The training image of view ``index`` as the refinement stage currently sees it."""
        return self._rgb(self.image_batch["image"][self._position[index]])

    def replace_image(self, index: int, image: Tensor) -> None:
        """Overwrite the training image of view ``index`` with ``image`` ``(H, W, 3)`` in ``[0, 1]``."""
        pos = self._position[index]
        old = self.image_batch["image"][pos]
        if tuple(image.shape[:2]) != tuple(old.shape[:2]) or image.shape[-1] != 3:
            raise ValueError(f"replacement image must be {tuple(old.shape[:2]) + (3,)}, got {tuple(image.shape)}")
        new = image.to(device=old.device, dtype=old.dtype).clamp(0, 1)
        if old.shape[-1] == 4:
            new = torch.cat([new, torch.ones_like(new[..., :1])], -1)
        self.image_batch["image"][pos] = new

    def next_train(self, step: int) -> Tuple[RayBundle, Dict]:
        """Rays and pixels sampled from :attr:`image_batch` (so replaced images take effect)."""
        self.train_count += 1
        assert self.train_pixel_sampler is not None
        batch = self.train_pixel_sampler.sample(self.image_batch)
        ray_bundle = self.train_ray_generator(batch["indices"])
        return ray_bundle, batch
