"""Training views of the splat stages: full images with their cameras, in memory, and overwritable.

nerfstudio's :class:`FullImageDatamanager` (splatfacto's) serves one whole image and its camera per
step. :class:`SplatDataManager` adds what the editing stages need, with the same methods as the
NeRF stages' :class:`pds.nerf.datamanager.PDSDataManager`: ``num_views``, ``cameras``,
``original_image`` (the PDS source of stage 1), ``current_image`` and ``replace_image`` (stage 2's
SDEdit dataset update: the cached image is replaced, so the next step that draws that view trains
on the edit). As for NeRFs, every frame is a training frame (``eval_mode="all"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Literal, Type

import torch
from torch import Tensor

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.configs.dataparser_configs import AnnotatedDataParserUnion
from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanager, FullImageDatamanagerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

from ..datamanager import rgb_over_white


@dataclass
class SplatDataManagerConfig(FullImageDatamanagerConfig):
    """Data manager of ``pds_splat`` and ``pds_splat_refinement``: all training images cached, editable."""

    _target: Type = field(default_factory=lambda: SplatDataManager)
    dataparser: AnnotatedDataParserUnion = field(default_factory=lambda: NerfstudioDataParserConfig(eval_mode="all"))
    """Dataparser; by default nerfstudio-data with every frame used for training."""
    cache_images_type: Literal["uint8", "float32"] = "float32"
    """Cached image type (float32: SDEdit results are stored without rounding)."""


class SplatDataManager(FullImageDatamanager):
    """:class:`FullImageDatamanager` whose cached training images can be read as originals and replaced.

    Attributes:
        original_images: ``(H, W, 3)`` float images as loaded (RGBA composited over white), never modified.
    """

    config: SplatDataManagerConfig
    original_images: List[Tensor]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.test_mode != "inference":
            self.original_images = [rgb_over_white(d["image"]).clone() for d in self.cached_train]

    @property
    def num_views(self) -> int:
        """Number of training views."""
        return len(self.train_dataset)

    @property
    def cameras(self) -> Cameras:
        """The training cameras in dataset order (after undistortion), on the data manager's device."""
        return self.train_dataset.cameras.to(self.device)

    def original_image(self, index: int) -> Tensor:
        """The original training image of view ``index``: ``(H, W, 3)`` float in ``[0, 1]``."""
        return self.original_images[index]

    def current_image(self, index: int) -> Tensor:
        """The training image of view ``index`` as the refinement stage currently sees it, ``(H, W, 3)``."""
        return rgb_over_white(self.cached_train[index]["image"])

    def replace_image(self, index: int, image: Tensor) -> None:
        """Overwrite the training image of view ``index`` with ``image`` ``(H, W, 3)`` in ``[0, 1]``."""
        old = self.cached_train[index]["image"]
        if tuple(image.shape[:2]) != tuple(old.shape[:2]) or image.shape[-1] != 3:
            raise ValueError(f"replacement image must be {tuple(old.shape[:2]) + (3,)}, got {tuple(image.shape)}")
        new = image.detach().to(device=old.device, dtype=torch.float32).clamp(0, 1)
        if old.shape[-1] == 4:  # keep the channel layout splatfacto's loss expects (alpha: opaque)
            new = torch.cat([new, torch.ones_like(new[..., :1])], -1)
        if old.dtype == torch.uint8:
            new = (new * 255.0 + 0.5).to(torch.uint8)
        self.cached_train[index]["image"] = new
