"""The ``ns-train`` methods ``pds`` and ``pds_refinement`` (entry points ``nerfstudio.method_configs``).

Defaults follow the reference implementation: stage 1 runs 30000 PDS steps with Adam 1e-2 → 1e-3
for the fields and proposal networks, guidance 100, a new view every 10 steps, no appearance
embedding; stage 2 runs 15000 nerfacto steps with an SDEdit dataset update every 10 steps.
The three commands of the README::

    ns-train nerfacto --data DATA --pipeline.model.use_appearance_embedding False
    ns-train pds --data DATA --load-dir OUT/nerfacto/.../nerfstudio_models \\
        --pipeline.pds.src_prompt "a red ball" --pipeline.pds.tgt_prompt "a blue ball"
    ns-train pds_refinement --data OUT/pds/.../eval_outputs --load-dir OUT/pds/.../nerfstudio_models \\
        --pipeline.pds.tgt_prompt "a blue ball"

On a CPU add ``--machine.device-type cpu --pipeline.model.implementation torch`` to all three.
"""

from __future__ import annotations

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.plugins.types import MethodSpecification

from .compat import install_lazy_lpips
from .datamanager import PDSDataManagerConfig
from .model import PDSNerfactoModelConfig
from .pipeline import PDSPipelineConfig
from .refinement import RefinementPipelineConfig
from .settings import PDSSettings, RefinementSettings
from .trainer import PDSTrainerConfig


# nerfstudio imports this module (entry point discovery) on every `ns-train` run, before any model
# is built. Making LPIPS lazy here is what lets the seed's plain `ns-train nerfacto ...` start
# offline: nerfacto's constructor otherwise downloads AlexNet weights for an evaluation metric.
# With network access nothing changes but the moment the metric is built (its first use).
install_lazy_lpips()


def _adam(lr: float, lr_final: float, max_steps: int) -> dict:
    return {"optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15),
            "scheduler": ExponentialDecaySchedulerConfig(lr_final=lr_final, max_steps=max_steps)}


def pds_config() -> PDSTrainerConfig:
    """Trainer config of ``ns-train pds`` (stage 1)."""
    return PDSTrainerConfig(
        method_name="pds",
        max_num_iterations=30000,
        steps_per_save=2000,
        steps_per_eval_batch=500,
        steps_per_eval_image=500,
        steps_per_eval_all_images=100000,
        mixed_precision=True,
        pipeline=PDSPipelineConfig(datamanager=PDSDataManagerConfig(), model=PDSNerfactoModelConfig(),
                                   pds=PDSSettings()),
        optimizers={"proposal_networks": _adam(1e-2, 1e-3, 30000), "fields": _adam(1e-2, 1e-3, 30000)},
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15, quit_on_train_completion=True),
        vis="viewer",
    )


def pds_refinement_config() -> PDSTrainerConfig:
    """Trainer config of ``ns-train pds_refinement`` (stage 2)."""
    return PDSTrainerConfig(
        method_name="pds_refinement",
        max_num_iterations=15000,
        steps_per_save=2000,
        steps_per_eval_batch=500,
        steps_per_eval_image=500,
        steps_per_eval_all_images=100000,
        mixed_precision=True,
        pipeline=RefinementPipelineConfig(datamanager=PDSDataManagerConfig(), model=PDSNerfactoModelConfig(),
                                          pds=RefinementSettings()),
        optimizers={"proposal_networks": _adam(1e-2, 1e-4, 200000), "fields": _adam(1e-2, 1e-4, 200000)},
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15, quit_on_train_completion=True),
        vis="viewer",
    )


pds_method = MethodSpecification(
    config=pds_config(),
    description="PDS NeRF editing, stage 1: edit a trained nerfacto scene with Posterior Distillation Sampling "
                "(--load-dir, --pipeline.pds.src_prompt/tgt_prompt/sd_pretrained_model_or_path).",
)

pds_refinement_method = MethodSpecification(
    config=pds_refinement_config(),
    description="PDS NeRF editing, stage 2: refine a pds edit by SDEdit iterative dataset updates "
                "(--data <pds output>/eval_outputs).",
)
