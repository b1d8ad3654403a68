"""``python -m pds.nerf.ns_train METHOD ...``: ``ns-train``, able to build nerfacto offline.

nerfacto (and other nerfstudio models) construct torchmetrics' LPIPS metric, which downloads
AlexNet weights, so ``ns-train nerfacto`` fails on a machine without network access and without
those weights in the torch hub cache. This wrapper makes LPIPS lazy
(:class:`pds.nerf.compat.LazyLPIPS`: built on first use, NaN when unavailable) and then runs
nerfstudio's own ``ns-train`` with the same arguments::

    python -m pds.nerf.ns_train nerfacto --data examples/nerf_ball/data \\
        --pipeline.model.use_appearance_embedding False

Checkpoints are identical to those of ``ns-train`` (LPIPS has no trainable state). Plain
``ns-train`` needs no wrapper when pds is installed: nerfstudio imports ``pds.nerf.config`` to
discover the ``pds`` methods on every run, and that import installs the same lazy metric. This
module remains for environments where the entry points are not registered (e.g. a source
checkout on ``PYTHONPATH`` without ``pip install``).
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run ``ns-train`` with ``argv`` (default: the command line) and a lazy LPIPS metric."""
    from .compat import install_lazy_lpips

    install_lazy_lpips()
    from nerfstudio.scripts import train

    if argv is not None:
        sys.argv = ["ns-train", *argv]
    train.entrypoint()


if __name__ == "__main__":
    main()
