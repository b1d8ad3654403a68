"""The ``ns-train`` methods ``pds`` and ``pds_refinement`` (entry points ``nerfstudio.method_configs``).

Defaults follow the reference implementation: stage 1 runs 30000 PDS steps in full precision with
the reference's optimiser (:func:`stage1_optimizers`: Adam 1e-2 for the fields and proposal
networks, warmed up over 1000 steps and decaying towards 1e-3, plus nerfstudio's frozen
``camera_opt`` group), guidance 100, a new view every 10 steps, no appearance embedding; stage 2
runs 15000 nerfacto steps with an SDEdit dataset update every 10 steps.
The three commands of the README::

    ns-train nerfacto --data DATA --pipeline.model.use_appearance_embedding False
    ns-train pds --data DATA --load-dir OUT/nerfacto/.../nerfstudio_models \\
        --pipeline.pds.src_prompt "a red ball" --pipeline.pds.tgt_prompt "a blue ball"
    ns-train pds_refinement --data OUT/pds/.../eval_outputs --load-dir OUT/pds/.../nerfstudio_models \\
        --pipeline.pds.tgt_prompt "a blue ball"

On a CPU add ``--machine.device-type cpu --pipeline.model.implementation torch`` to all three.
"""

from __future__ import annotations

from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
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


#: Stage 1's learning-rate warm-up, in steps (the reference's ``warmup_steps=1000``).
WARMUP_STEPS = 1000
#: Stage 1's decay length. The reference sets ``lr_final=1e-3`` but no ``max_steps``, so nerfstudio's
#: default of 100000 applies: over the 30000 steps of a run the rate falls from 1e-2 to about 5e-3 and
#: never reaches 1e-3. We keep that schedule rather than the 1e-3 its numbers suggest.
DECAY_STEPS = 100000
#: Learning rate of the camera-pose group: numerically zero, the reference's value (see stage1_optimizers).
FROZEN_LR = 1e-30


def stage1_optimizers() -> dict:
    """The reference's stage-1 optimiser groups (its ``pds_config.py``).

    * ``fields`` and ``proposal_networks``: Adam 1e-2 (eps 1e-15), warmed up from 1e-8 over
      :data:`WARMUP_STEPS` steps with nerfstudio's default ramp (a quarter sine), then decaying
      exponentially towards 1e-3 over :data:`DECAY_STEPS` steps. (The reference gives no reason; a
      warm-up keeps the first Adam steps, taken while its moment estimates are still noisy, from
      jolting the converged nerfacto field.)
    * ``camera_opt``: nerfstudio's camera optimiser, SO3xR3 with Adam at :data:`FROZEN_LR` (weight
      decay 1e-2), as the reference's first release ran it on nerfstudio 0.3.4; its later release
      keeps the same setting in the datamanager, where nerfstudio 1.x ignores it. The pose corrections ``ns-train nerfacto`` learned are loaded with
      the checkpoint when they fit this run's views (:mod:`pds.nerf.model`) and applied to every
      render, so that a render lines up with the source image whose latent PDS compares it with;
      the edit itself cannot move a camera. The group exists only while the model has camera
      parameters (``--pipeline.model.camera-optimizer.mode off`` removes both); nerfstudio ignores
      an optimiser entry without parameters.
    """
    def field_group() -> dict:
        return {"optimizer": AdamOptimizerConfig(lr=1e-2, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=1e-3, warmup_steps=WARMUP_STEPS,
                                                             max_steps=DECAY_STEPS, ramp="cosine")}

    return {"proposal_networks": field_group(), "fields": field_group(),
            "camera_opt": {"optimizer": AdamOptimizerConfig(lr=FROZEN_LR, eps=1e-8, weight_decay=1e-2),
                           "scheduler": None}}


def pds_config() -> PDSTrainerConfig:
    """Trainer config of ``ns-train pds`` (stage 1)."""
    return PDSTrainerConfig(
        method_name="pds",
        max_num_iterations=30000,
        steps_per_save=2000,
        steps_per_eval_batch=500,
        steps_per_eval_image=500,
        steps_per_eval_all_images=100000,
        # Full precision, as the reference. nerfstudio's mixed precision is fp16 autocast over the whole
        # step: the render, the VAE encoding whose backward carries the PDS gradient, and the prior.
        # PDS's gradient is a difference of two nearly equal posterior terms (z_tgt - z_src), so it is
        # sensitive to rounding in the noise predictions (a bf16 prior moves it by 2-12 %,
        # docs/PDS_NOTES.md), and spread over the 4x64x64 latent elements it reaches the encoder's
        # backward near fp16's smallest normal number (6e-5), where only the loss scaler keeps it.
        mixed_precision=False,
        pipeline=PDSPipelineConfig(datamanager=PDSDataManagerConfig(), pds=PDSSettings(),
                                   model=PDSNerfactoModelConfig(camera_optimizer=CameraOptimizerConfig(mode="SO3xR3"))),
        optimizers=stage1_optimizers(),
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
