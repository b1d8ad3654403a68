"""``python -m pds.nerf.ns_train METHOD ...``: ``ns-train``, able to build nerfacto offline.

nerfacto (and other nerfstudio models) construct torchmetrics' LPIPS metric, which downloads
AlexNet weights, so ``ns-train nerfacto`` fails on a machine without network access and without
those weights in the torch hub cache. This wrapper makes LPIPS lazy
(:class:`pds.nerf.compat.LazyLPIPS`: built on first use, NaN when unavailable) and then runs
nerfstudio's own ``ns-train`` with the same arguments::

    python -m pds.nerf.ns_train nerfacto --data examples/nerf_ball/data \\
        --pipeline.model.use_appearance_embedding False

With ``--machine.device-type cpu`` the wrapper also points nerfstudio's ``splatfacto`` methods at
:class:`pds.nerf.splat.model.PDSSplatfactoModel` (same options and checkpoints; gsplat on CUDA, a
pure-PyTorch rasterizer on the CPU), so the splat workflow's first stage trains without a GPU::

    python -m pds.nerf.ns_train splatfacto --data examples/nerf_ball/red_ball --machine.device-type cpu

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
    if _wants_cpu(sys.argv[1:]):
        from nerfstudio.configs.method_configs import all_methods

        from .splat.model import use_torch_splatfacto

        use_torch_splatfacto(all_methods)  # gsplat's kernels need CUDA
    train.entrypoint()


def _wants_cpu(args: Sequence[str]) -> bool:
    """Whether the command line asks for ``--machine.device-type cpu`` (either spelling, ``=`` or not)."""
    args = list(args)
    for i, arg in enumerate(args):
        name, _, value = arg.partition("=")
        if name in ("--machine.device-type", "--machine.device_type"):
            value = value or (args[i + 1] if i + 1 < len(args) else "")
            return value == "cpu"
    return False


if __name__ == "__main__":
    main()
