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

from __future__ import annotations

# First of all: when this process is one of our commands (a console script or ``python -m pds.X``),
# Ctrl-C is answered from this line on (pds.entry: standard library only, guards on import).
from . import entry as _entry  # noqa: F401

TYPE_CHECKING = False  # not typing's: that module alone takes longer to import than this package

if TYPE_CHECKING:  # pragma: no cover - what the names below resolve to, for type checkers
    from .distiller import Distiller, NonFiniteError, OptimizeResult
    from .priors import (DEFAULT_PRIOR, Conditioning, DiffusersPrior, Prior, PriorError, PriorMetadata,
                         UnknownWordError, embedded_priors, load_prior)
    from .renderer import Renderer
    from .views import MultiViewEditor

#: Where each public name lives. They are imported on first use (``pds.Distiller``,
#: ``from pds import load_prior``), so ``import pds`` itself imports neither torch nor anything
#: else: the console entry points (:mod:`pds.entry`) must answer Ctrl-C before torch loads.
_LAZY = {
    "Distiller": "distiller", "NonFiniteError": "distiller", "OptimizeResult": "distiller",
    "DEFAULT_PRIOR": "priors", "Conditioning": "priors", "DiffusersPrior": "priors", "Prior": "priors",
    "PriorError": "priors", "PriorMetadata": "priors", "UnknownWordError": "priors", "embedded_priors": "priors",
    "load_prior": "priors",
    "Renderer": "renderer",
    "MultiViewEditor": "views",
}

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


def __getattr__(name: str):
    """Import a public name (see :data:`_LAZY`) or a submodule (``pds.priors``) on first use."""
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif not name.startswith("__"):
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups (and monkeypatching) see a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
