"""NeRF editing with PDS: a nerfstudio plugin.

Installing ``pds`` with the ``nerf`` extra (``pip install "pds[nerf]"``) registers two methods with
nerfstudio through entry points (``nerfstudio.method_configs``), so ``ns-train -h`` lists them:

* ``ns-train pds`` -- stage 1: edit a trained nerfacto scene with Posterior Distillation Sampling
  (:mod:`pds.nerf.pipeline`); every view is rendered to ``<output>/eval_outputs`` at the end.
* ``ns-train pds_refinement`` -- stage 2: refine the edit by SDEdit iterative dataset updates
  (:mod:`pds.nerf.refinement`), with ``--data <stage 1 output>/eval_outputs``.

The modules, one concern each:

* :mod:`pds.nerf.config` -- the two ``MethodSpecification`` objects (the entry points).
* :mod:`pds.nerf.settings` -- the ``--pipeline.pds.*`` options of both stages.
* :mod:`pds.nerf.model` -- nerfacto without hub downloads at construction, and a checkpoint
  loader that tolerates per-image parameters of a different split.
* :mod:`pds.nerf.datamanager` -- every training view with its original image and camera, and an
  image set the refinement stage can overwrite.
* :mod:`pds.nerf.render` -- a differentiable full-view render (chunked, bounded memory).
* :mod:`pds.nerf.export` -- ``eval_outputs``: renders + ``transforms.json`` + animation.
* :mod:`pds.nerf.trainer` -- input checks before training, checkpoint loading under torch >= 2.6.
* :mod:`pds.nerf.ns_train` -- ``python -m pds.nerf.ns_train``: ``ns-train`` with a lazy LPIPS
  metric. Plain ``ns-train`` gets the same once it discovers this plugin (``pds.nerf.config``
  installs it), so the seed's ``ns-train nerfacto`` builds offline.

``import pds.nerf`` does not import nerfstudio; the submodules do.
"""

from __future__ import annotations

INSTALL_HINT = 'the NeRF backend needs nerfstudio 1.1.5: pip install "pds[nerf]" (or pip install nerfstudio==1.1.5)'


class PDSNerfError(ValueError):
    """Bad input to ``ns-train pds`` / ``ns-train pds_refinement``; the message says what to fix."""


def require_nerfstudio() -> None:
    """Raise ``ImportError`` with the install command when nerfstudio is missing."""
    try:
        import nerfstudio  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(INSTALL_HINT) from exc


__all__ = ["INSTALL_HINT", "PDSNerfError", "require_nerfstudio"]
