"""The ``ns-train`` methods ``pds_splat`` and ``pds_splat_refinement`` (entry points ``nerfstudio.method_configs``).

Both run 30000 steps (the reference's splat defaults) with splatfacto's learning rates for the
Gaussian parameters, no warm-up, no mixed precision and no camera optimisation (all three as the
reference's splat stages and splatfacto), and the Gaussian set fixed (see
:mod:`pds.nerf.splat.pipeline`). Stage 1 takes guidance 100 and a new view every 10 steps, as the
NeRF stage; stage 2 an SDEdit dataset update every 10 steps. The three commands::

    ns-train splatfacto --data DATA
    ns-train pds_splat --data DATA --load-dir OUT/splatfacto/.../nerfstudio_models \\
        --pipeline.pds.src_prompt "a red ball" --pipeline.pds.tgt_prompt "a blue ball"
    ns-train pds_splat_refinement --data OUT/pds_splat/.../eval_outputs \\
        --load-dir OUT/pds_splat/.../nerfstudio_models --pipeline.pds.tgt_prompt "a blue ball"

On a CPU the first is ``python -m pds.nerf.ns_train splatfacto ... --machine.device-type cpu`` and the
others take ``--machine.device-type cpu``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Type

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.plugins.types import MethodSpecification

from ..compat import install_lazy_lpips
from ..settings import PDSSettings, RefinementSettings
from ..trainer import SPLAT, PDSTrainer, PDSTrainerConfig
from .datamanager import SplatDataManagerConfig
from .model import PDSSplatfactoModelConfig
from .pipeline import SplatPDSPipelineConfig, SplatRefinementPipelineConfig

install_lazy_lpips()  # as pds.nerf.config: plain `ns-train splatfacto` builds offline too

ITERATIONS = 30000


class SplatTrainer(PDSTrainer):
    """:class:`pds.nerf.trainer.PDSTrainer` for Gaussian splats (checks and messages name splatfacto)."""

    kind = SPLAT


@dataclass
class SplatTrainerConfig(PDSTrainerConfig):
    """Trainer of ``pds_splat`` and ``pds_splat_refinement``."""

    _target: Type = field(default_factory=lambda: SplatTrainer)


def gaussian_optimizers(max_steps: int = ITERATIONS) -> dict:
    """Adam settings per parameter group, the reference's splat stages' (splatfacto's rates): means
    1.6e-4 → 1.6e-6 exponentially over ``max_steps``; colours 2.5e-3, higher SH bands /20; opacities
    0.05; scales 5e-3; rotations 1e-3; no warm-up.

    ``camera_opt`` (1e-3 → 5e-5) is the reference's entry too. As there, it has no parameters to
    act on by default: splatfacto's camera optimiser is off, and the reference does not turn it on
    for its splat model (its datamanager's camera-optimiser setting is one nerfstudio 1.x ignores).
    The entry serves a run that turns it on (``--pipeline.model.camera-optimizer.mode SO3xR3``)."""
    def adam(lr: float, final: float = 0.0) -> dict:
        scheduler = ExponentialDecaySchedulerConfig(lr_final=final, max_steps=max_steps) if final else None
        return {"optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15), "scheduler": scheduler}

    return {"means": adam(1.6e-4, 1.6e-6), "features_dc": adam(0.0025), "features_rest": adam(0.0025 / 20),
            "opacities": adam(0.05), "scales": adam(0.005), "quats": adam(0.001), "camera_opt": adam(1e-3, 5e-5)}


def _trainer(method: str, pipeline) -> SplatTrainerConfig:
    return SplatTrainerConfig(
        method_name=method, max_num_iterations=ITERATIONS, steps_per_save=2000, steps_per_eval_batch=0,
        steps_per_eval_image=500, steps_per_eval_all_images=100000, mixed_precision=False, pipeline=pipeline,
        optimizers=gaussian_optimizers(), viewer=ViewerConfig(num_rays_per_chunk=1 << 15, quit_on_train_completion=True),
        vis="viewer")


def pds_splat_config() -> SplatTrainerConfig:
    """Trainer config of ``ns-train pds_splat`` (stage 1)."""
    return _trainer("pds_splat", SplatPDSPipelineConfig(datamanager=SplatDataManagerConfig(),
                                                        model=PDSSplatfactoModelConfig(), pds=PDSSettings()))


def pds_splat_refinement_config() -> SplatTrainerConfig:
    """Trainer config of ``ns-train pds_splat_refinement`` (stage 2)."""
    return _trainer("pds_splat_refinement",
                    SplatRefinementPipelineConfig(datamanager=SplatDataManagerConfig(), model=PDSSplatfactoModelConfig(),
                                                  pds=RefinementSettings()))


pds_splat_method = MethodSpecification(
    config=pds_splat_config(),
    description="PDS Gaussian-splat editing, stage 1: edit a trained splatfacto scene with Posterior Distillation "
                "Sampling (--load-dir, --pipeline.pds.src_prompt/tgt_prompt/sd_pretrained_model_or_path).",
)

pds_splat_refinement_method = MethodSpecification(
    config=pds_splat_refinement_config(),
    description="PDS Gaussian-splat editing, stage 2: refine a pds_splat edit by SDEdit iterative dataset updates "
                "(--data <pds_splat output>/eval_outputs).",
)
