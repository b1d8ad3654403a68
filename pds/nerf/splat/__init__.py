"""Gaussian-splat editing with PDS: ``ns-train pds_splat`` and ``ns-train pds_splat_refinement``.

The same three commands as for NeRFs, on nerfstudio's splatfacto (see ``docs/splat.md``)::

    ns-train splatfacto --data DATA
    ns-train pds_splat --data DATA --load-dir OUT/splatfacto/.../nerfstudio_models \\
        --pipeline.pds.src_prompt "a red ball" --pipeline.pds.tgt_prompt "a blue ball"
    ns-train pds_splat_refinement --data OUT/pds_splat/.../eval_outputs \\
        --load-dir OUT/pds_splat/.../nerfstudio_models --pipeline.pds.tgt_prompt "a blue ball"

On a CPU, train the first stage with ``python -m pds.nerf.ns_train splatfacto ... --machine.device-type
cpu`` and add ``--machine.device-type cpu`` to the others.

Modules, one concern each:

* :mod:`pds.nerf.splat.raster` -- a differentiable Gaussian rasterizer in plain PyTorch (gsplat's
  ``rasterization`` for CPUs); imports only torch.
* :mod:`pds.nerf.splat.model` -- splatfacto that renders through gsplat on CUDA and through
  :mod:`~pds.nerf.splat.raster` elsewhere.
* :mod:`pds.nerf.splat.datamanager` -- full training images with cameras, editable.
* :mod:`pds.nerf.splat.pipeline` -- stage 1 (PDS on full renders) and stage 2 (SDEdit refinement),
  built on the NeRF stages' pipelines (:mod:`pds.nerf.pipeline`, :mod:`pds.nerf.refinement`).
* :mod:`pds.nerf.splat.config` -- the two ``MethodSpecification`` entry points.

``import pds.nerf.splat`` imports neither nerfstudio nor gsplat.
"""
