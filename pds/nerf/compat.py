"""Workarounds for nerfstudio 1.1.5 on current PyTorch, Python and offline machines.

* nerfacto builds torchmetrics' LPIPS metric in its constructor, which downloads AlexNet weights
  (fails offline). :class:`LazyLPIPS` builds the metric on first use instead, and returns NaN with
  one warning when it cannot be built; :func:`lazy_lpips` installs it for the duration of a block.
* nerfstudio's trainer calls ``torch.load(path)``; from torch 2.6 on that means
  ``weights_only=True``, which refuses nerfstudio checkpoints. :func:`load_checkpoint_file` loads
  them (they are the user's own files, produced by ``ns-train``).
* :func:`find_checkpoint` resolves ``--load-dir``/``--load-step`` with errors that say the fix,
  where nerfstudio fails with an ``IndexError`` on an empty folder.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import torch
import torchmetrics.image.lpip as lpip_module
from torch import Tensor, nn
from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity as _RealLPIPS

from . import PDSNerfError

_CKPT = re.compile(r"^step-(\d+)\.ckpt$")


class LazyLPIPS(nn.Module):
    """Drop-in for ``torchmetrics``' ``LearnedPerceptualImagePatchSimilarity`` that loads nothing
    until it is called.

    The real metric is kept outside the module tree, so it is neither saved in checkpoints nor
    expected when loading them. When it cannot be built (no network and no cached AlexNet weights)
    every call returns NaN and a single warning explains why.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self._args, self._kwargs = args, kwargs
        object.__setattr__(self, "_metric", None)  # not a registered submodule
        self._failed: Optional[str] = None

    def _build(self):
        return _RealLPIPS(*self._args, **self._kwargs)

    def forward(self, img1: Tensor, img2: Tensor) -> Tensor:
        if self._metric is None and self._failed is None:
            try:
                object.__setattr__(self, "_metric", self._build())
            except Exception as exc:  # offline: URLError/OSError/RuntimeError from torch.hub
                self._failed = f"{type(exc).__name__}: {exc}"
                warnings.warn(f"LPIPS is unavailable ({self._failed}); it is reported as NaN. Put AlexNet's weights in "
                              f"the torch hub cache (~/.cache/torch/hub/checkpoints) to enable it.", RuntimeWarning)
        if self._metric is None:
            return torch.tensor(float("nan"), device=img1.device)
        metric = self._metric.to(img1.device)
        return metric(img1, img2)


@contextlib.contextmanager
def lazy_lpips() -> Iterator[None]:
    """Within the block, ``torchmetrics.image.lpip.LearnedPerceptualImagePatchSimilarity`` is
    :class:`LazyLPIPS` (nerfacto imports it inside ``populate_modules``)."""
    saved = lpip_module.LearnedPerceptualImagePatchSimilarity
    lpip_module.LearnedPerceptualImagePatchSimilarity = LazyLPIPS
    try:
        yield
    finally:
        lpip_module.LearnedPerceptualImagePatchSimilarity = saved


def install_lazy_lpips() -> None:
    """Make every later LPIPS construction in this process lazy (for ``python -m pds.nerf.ns_train``;
    models that import the class at module level must be imported after this call)."""
    import torchmetrics.image

    lpip_module.LearnedPerceptualImagePatchSimilarity = LazyLPIPS
    torchmetrics.image.LearnedPerceptualImagePatchSimilarity = LazyLPIPS


def find_checkpoint(load_dir: Optional[Path] = None, load_step: Optional[int] = None,
                    load_checkpoint: Optional[Path] = None, missing_hint: Optional[str] = None) -> Path:
    """The checkpoint file named by ``--load-dir`` (+ ``--load-step``) or ``--load-checkpoint``.

    ``missing_hint`` replaces the message for a missing ``--load-dir`` (default: the NeRF methods').

    Raises:
        PDSNerfError: nothing given, a missing folder, a folder without ``step-*.ckpt`` files, or a
            step that is not there.
    """
    if load_checkpoint is not None:
        path = Path(load_checkpoint)
        if not path.is_file():
            raise PDSNerfError(f"--load-checkpoint {path} does not exist")
        return path
    if load_dir is None:
        raise PDSNerfError(missing_hint or "this method edits a trained NeRF: pass --load-dir "
                           "PATH/TO/OUTPUT/nerfstudio_models (the checkpoint folder of `ns-train nerfacto`, or of "
                           "`ns-train pds` for pds_refinement)")
    load_dir = Path(load_dir)
    if not load_dir.is_dir():
        raise PDSNerfError(f"--load-dir {load_dir} is not a folder; pass the nerfstudio_models folder of a finished run")
    steps = sorted(int(m.group(1)) for p in load_dir.iterdir() if (m := _CKPT.match(p.name)))
    if not steps:
        hint = (f" (it contains a nerfstudio_models folder: pass {load_dir / 'nerfstudio_models'})"
                if (load_dir / "nerfstudio_models").is_dir() else "")
        raise PDSNerfError(f"--load-dir {load_dir} contains no checkpoint (step-XXXXXXXXX.ckpt){hint}")
    step = steps[-1] if load_step is None else int(load_step)
    path = load_dir / f"step-{step:09d}.ckpt"
    if not path.is_file():
        raise PDSNerfError(f"--load-step {step}: no {path.name} in {load_dir}; available steps: {steps}")
    return path


def load_checkpoint_file(path: Path) -> Dict[str, Any]:
    """``torch.load`` a nerfstudio checkpoint on CPU under any torch version.

    ``weights_only=True`` (the torch >= 2.6 default) is tried first; nerfstudio checkpoints hold
    objects it refuses, so the fallback loads the full pickle, which is only done for files the
    user points ``--load-dir`` at.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise PDSNerfError(f"could not read the checkpoint {path} ({type(exc).__name__}: {exc}); "
                               f"is it a complete `ns-train` checkpoint?") from exc
    if not isinstance(state, dict) or "pipeline" not in state or "step" not in state:
        raise PDSNerfError(f"{path} is not a nerfstudio checkpoint (no 'pipeline'/'step' entries)")
    return state
