"""Diffusion priors: the protocols (:mod:`.protocol`), the typed ``pds_prior.json`` schema
(:mod:`.metadata`), the diffusers implementation and :func:`load_prior`
(:mod:`.diffusers_prior`), and the embedded priors' weights (the folders beside this file).

A new kind of prior is one module here implementing :class:`Prior`.
"""

from .diffusers_prior import (DEFAULT_PRIOR, EMBEDDED_DIR, DiffusersPrior, PriorError, UnknownWordError,
                              default_device, default_dtype, embedded_priors, load_prior, resolve_prior_path)
from .metadata import (DreamBoothRecipe, EditDefaults, MetadataError, PriorMetadata, SamplingDefaults, metadata_of,
                       read_metadata, write_metadata)
from .protocol import Conditioning, Prior, TrainablePrior, VocabularyPrior

__all__ = [
    "DEFAULT_PRIOR", "EMBEDDED_DIR", "Conditioning", "DiffusersPrior", "DreamBoothRecipe", "EditDefaults",
    "MetadataError", "Prior", "SamplingDefaults", "metadata_of", "PriorError", "PriorMetadata", "TrainablePrior", "UnknownWordError", "VocabularyPrior",
    "default_device", "default_dtype", "embedded_priors", "load_prior", "read_metadata", "resolve_prior_path",
    "write_metadata",
]
