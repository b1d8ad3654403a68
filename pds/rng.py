"""Seeded random numbers shared by the distiller, the samplers and DreamBooth.

Noise is always drawn on the *generator's* device and then moved to where it is used, so one
seed gives the same run on a CPU and on a GPU.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def generator_device(generator: Optional[torch.Generator]) -> torch.device:
    """The device a generator draws on (the CPU when ``generator`` is ``None``)."""
    return generator.device if generator is not None else torch.device("cpu")


def randn_like_with(x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Standard normal float32 noise shaped like ``x``, drawn on the generator's device, returned on
    ``x.device``."""
    return torch.randn(x.shape, generator=generator, device=generator_device(generator), dtype=torch.float32).to(x.device)


def randint_with(high: int, size: tuple[int, ...], generator: Optional[torch.Generator], low: int = 0) -> Tensor:
    """Integers uniform in ``[low, high)`` of shape ``size`` (int64, on the CPU), drawn on the generator's device."""
    return torch.randint(low, high, size, generator=generator, device=generator_device(generator)).cpu()
