"""Training checkpoints of :mod:`.train` and :mod:`.autoencoder`, in one place.

A checkpoint is a ``torch.save`` of a plain dict (each script chooses its keys). It is written
through :func:`pds.util.files.atomic_write_with`: under a temporary name in the same folder,
then renamed over ``path``, so a run killed while saving leaves the previous checkpoint whole.
"""

from __future__ import annotations

import os
from typing import Union

import torch

from pds.util.files import atomic_write_with


def save_checkpoint(path: Union[str, os.PathLike], state: dict) -> None:
    """Write ``state`` to ``path`` atomically (the old checkpoint stays until the new one is whole)."""
    atomic_write_with(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Union[str, os.PathLike], map_location=None) -> dict:
    """The dict :func:`save_checkpoint` wrote to ``path``; tensors go to ``map_location``
    (``None``: where they were saved). Checkpoints hold generator states and plain Python
    values, so this is a full (``weights_only=False``) load: only load files of your own runs."""
    return torch.load(path, map_location=map_location, weights_only=False)
