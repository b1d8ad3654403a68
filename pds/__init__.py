"""pds: Posterior Distillation Sampling for parametric image editing.

Quick start::

    import pds
    prior = pds.load_prior("pds-tiny")                 # or a Stable Diffusion folder / hub id
    distiller = pds.Distiller(prior, method="pds")     # "sds" and "dds" as baselines
    loss = distiller.loss(render, source, "a blue circle", "a red circle")
    loss.backward()

Parameter spaces live in subpackages: :mod:`pds.svg` (SVG scenes) and :mod:`pds.nerf`
(the nerfstudio plugin). ``import pds`` loads neither, nor diffusers.
"""

from .distiller import Distiller, NonFiniteError, OptimizeResult
from .prior import DEFAULT_PRIOR, DiffusersPrior, Prior, PriorError, UnknownWordError, embedded_priors, load_prior
from .renderer import Renderer

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PRIOR",
    "DiffusersPrior",
    "Distiller",
    "NonFiniteError",
    "OptimizeResult",
    "Prior",
    "PriorError",
    "Renderer",
    "UnknownWordError",
    "embedded_priors",
    "load_prior",
]
