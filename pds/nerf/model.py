"""Nerfacto as the PDS stages use it.

Same fields, same state-dict layout as ``ns-train nerfacto`` (so its checkpoints load), with three
differences:

* no appearance embedding by default (the README trains nerfacto with
  ``--pipeline.model.use_appearance_embedding False``; it reduces editing artifacts);
* the camera optimiser is off by default (the refinement stage's images are renders at the
  nominal poses, so no pose correction applies to them); stage 1 turns it on, frozen, to apply
  the pose corrections of the nerfacto checkpoint (see :func:`pds.nerf.config.stage1_optimizers`);
* LPIPS is built on first use (:class:`pds.nerf.compat.LazyLPIPS`), so constructing the model
  downloads nothing.

:meth:`PDSNerfactoModel.load_state_dict` accepts checkpoints trained on a different set of
training images, or with the camera optimiser on where this model has it off or the reverse:
per-image parameters (camera pose adjustments, appearance embeddings) that this model lacks or
whose shape does not match are skipped (this model's own stay at their initial values: zero
pose corrections), as are LPIPS weights. ``ns-train nerfacto``'s default split trains on 90 % of
the frames and the editing stages on all of them, so its pose corrections are used only when it
trained on every frame (for example with fewer than 10). Every other tensor must match, and a
mismatch raises :class:`pds.nerf.PDSNerfError` naming the option to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Mapping, Type

from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.models.nerfacto import NerfactoModel, NerfactoModelConfig
from nerfstudio.utils.rich_utils import CONSOLE

from . import PDSNerfError
from .compat import lazy_lpips

#: State-dict prefixes of parameters sized by the number of training images.
PER_IMAGE_PREFIXES = ("camera_optimizer.", "field.embedding_appearance.")
#: State-dict prefixes of evaluation metrics (no training state).
METRIC_PREFIXES = ("lpips.",)


@dataclass
class PDSNerfactoModelConfig(NerfactoModelConfig):
    """Nerfacto for editing (see :mod:`pds.nerf.model`). Pass the same ``--pipeline.model.*`` options
    as for ``ns-train nerfacto`` when that run changed any."""

    _target: Type = field(default_factory=lambda: PDSNerfactoModel)
    use_appearance_embedding: bool = False
    """Whether to use a per-image appearance embedding (off, as the README trains nerfacto)."""
    average_init_density: float = 0.01
    """Initial density (nerfacto's method default)."""
    eval_num_rays_per_chunk: int = 1 << 15
    """Rays per chunk when rendering a whole view without gradients."""
    camera_optimizer: CameraOptimizerConfig = field(default_factory=lambda: CameraOptimizerConfig(mode="off"))
    """Camera pose corrections (``pds`` turns them on with a frozen learning rate, to apply those of the
    nerfacto checkpoint; off in ``pds_refinement``, whose images are renders at the nominal poses)."""


class PDSNerfactoModel(NerfactoModel):
    """:class:`NerfactoModel` that constructs offline and loads checkpoints of another split."""

    config: PDSNerfactoModelConfig

    def populate_modules(self) -> None:
        with lazy_lpips():
            super().populate_modules()

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        own = self.state_dict()
        kept, skipped, unused = {}, [], []
        for key, value in state_dict.items():
            if key.startswith(METRIC_PREFIXES) and key not in own:
                continue
            if key.startswith(PER_IMAGE_PREFIXES) and key not in own:
                unused.append(key)  # e.g. pose corrections, where this model's camera optimiser is off
                continue
            if key.startswith(PER_IMAGE_PREFIXES) and own[key].shape != value.shape:
                skipped.append(key)
                continue
            kept[key] = value
        unexpected = [k for k in kept if k not in own]
        missing = [k for k in own if k not in kept and not k.startswith(PER_IMAGE_PREFIXES + METRIC_PREFIXES)]
        mismatched = [k for k in kept if k in own and own[k].shape != kept[k].shape]
        if strict and (unexpected or missing or mismatched):
            detail: List[str] = []
            if mismatched:
                k = mismatched[0]
                detail.append(f"{k} is {tuple(kept[k].shape)} in the checkpoint but {tuple(own[k].shape)} here")
            if missing:
                detail.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
            if unexpected:
                detail.append(f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}")
            raise PDSNerfError(
                "the checkpoint does not fit this nerfacto model (" + "; ".join(detail) + "). Train the NeRF with "
                "`ns-train nerfacto --pipeline.model.use_appearance_embedding False` and pass the same "
                "--pipeline.model.* options to this method as to that run")
        if skipped:
            CONSOLE.print(f"[yellow]pds: not loading {len(skipped)} per-image parameter tensor(s) of the checkpoint "
                          f"({', '.join(sorted({k.split('.')[0] for k in skipped}))}): the checkpoint was trained on "
                          f"another number of images than this run's {self.num_train_data}; they start from their "
                          f"initial values")
        if unused:
            CONSOLE.print(f"pds: the checkpoint's {', '.join(sorted({k.split('.')[0] for k in unused}))} "
                          f"parameters are not used (off in this model)")
        return super().load_state_dict(kept, strict=False, assign=assign)
