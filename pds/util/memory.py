"""How much memory a device has free, and what a differentiable render of a given size needs.

Used to refuse a ``--size`` that cannot fit before any work starts, instead of failing with an
allocation error minutes (and gigabytes) later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

#: Bytes per sub-pixel sample of a differentiable render, measured with ``pds-svg edit`` on a
#: shape covering the canvas (about 45 B at 1024 and 2048 px, two samples per axis), rounded up
#: for the buffers a few overlapping shapes add.
RENDER_BYTES_PER_SAMPLE = 64


def _cgroup_headroom() -> Optional[int]:
    """Bytes left under a cgroup v2 memory limit (containers), or ``None`` without one."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def available_bytes(device=None) -> Optional[int]:
    """Free memory on ``device`` in bytes (GPU memory for CUDA, else the machine's available
    memory, capped by a container limit), or ``None`` where it cannot be told."""
    if device is not None and getattr(device, "type", str(device)) == "cuda":
        try:
            import torch

            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    free: Optional[int] = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        free = None
    headroom = _cgroup_headroom()
    if headroom is not None:
        free = headroom if free is None else min(free, headroom)
    return free


def render_bytes(width: int, height: int, samples: int) -> int:
    """Estimated peak bytes of one differentiable render of ``width × height`` pixels with
    ``samples × samples`` sub-pixel samples (forward and backward)."""
    return int(width) * int(height) * int(samples) ** 2 * RENDER_BYTES_PER_SAMPLE
