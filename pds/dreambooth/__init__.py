"""DreamBooth fine-tuning of any prior, with prior preservation.

Command line: ``pds-dreambooth`` (or ``python -m pds.dreambooth``, or ``python run.py`` in this
folder, as upstream). From Python::

    from pds.dreambooth import DreamBoothConfig, fine_tune
    out = fine_tune(DreamBoothConfig(instance_prompt="a sks ball", instance_dir="my_ball/",
                                     class_prompt="a ball", save_dir="sks_ball_model"))
    prior = pds.load_prior(out)

The pieces (:func:`train_dreambooth`, :func:`save_model`, :func:`generate_class_images`) work on
an already loaded :class:`pds.priors.DiffusersPrior`; see :mod:`pds.dreambooth.train`.

The names load on first use (``import pds.dreambooth`` imports no torch), so that ``python -m
pds.dreambooth`` answers Ctrl-C before torch loads (:mod:`pds.entry`).
"""

TYPE_CHECKING = False  # typing's costs more to import than this package

if TYPE_CHECKING:  # pragma: no cover - what the names below resolve to, for type checkers
    from .train import (
        CLASS_SUBDIR,
        EMBEDDED_LEARNING_RATE,
        SD_LEARNING_RATE,
        DreamBoothConfig,
        DreamBoothError,
        TrainResult,
        check_prompts,
        default_learning_rate,
        fine_tune,
        generate_class_images,
        identifier_tokens,
        load_image_folder,
        save_model,
        train_dreambooth,
    )

__all__ = [
    "CLASS_SUBDIR",
    "EMBEDDED_LEARNING_RATE",
    "SD_LEARNING_RATE",
    "DreamBoothConfig",
    "DreamBoothError",
    "TrainResult",
    "check_prompts",
    "default_learning_rate",
    "fine_tune",
    "generate_class_images",
    "identifier_tokens",
    "load_image_folder",
    "save_model",
    "train_dreambooth",
]


def __getattr__(name: str):
    if name in __all__:
        from . import train

        value = getattr(train, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
