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
from .priors import (DEFAULT_PRIOR, Conditioning, DiffusersPrior, Prior, PriorError, PriorMetadata, UnknownWordError,
                     embedded_priors, load_prior)
from .renderer import Renderer
from .views import MultiViewEditor

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PRIOR",
    "Conditioning",
    "DiffusersPrior",
    "Distiller",
    "NonFiniteError",
    "MultiViewEditor",
    "OptimizeResult",
    "Prior",
    "PriorError",
    "PriorMetadata",
    "Renderer",
    "UnknownWordError",
    "embedded_priors",
    "load_prior",
]
