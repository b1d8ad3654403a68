"""The trainer of both stages: nerfstudio's, with inputs checked first and checkpoints loaded right.

* :func:`check_inputs` runs when the trainer is built, before any dataset, model or prior is
  loaded: a missing or empty ``--load-dir``, a ``--data`` that is not a dataset, a missing prompt
  or an unknown prior end the run with ONE line saying what to fix, not a traceback, and exit
  status 2: through the package's error boundary (:func:`pds.cli.run`) under ``python -m
  pds.nerf.ns_train``, as its own ``SystemExit(2)`` under nerfstudio's ``ns-train``. Errors found
  while building the pipeline (words the prior does not know, a checkpoint of a different model)
  end the same way, still before the first step.
* Checkpoints load under torch >= 2.6 (:func:`pds.nerf.compat.load_checkpoint_file`). A checkpoint
  of ANOTHER method (nerfacto for ``pds``, ``pds`` for ``pds_refinement``) contributes its weights
  and step only: the optimizers and learning-rate schedules start fresh, as the editing recipe
  wants. A checkpoint of the same method resumes everything, as in nerfstudio.
* After training, every training view is rendered to ``<output>/eval_outputs`` (a dataset; see
  :mod:`pds.nerf.export`) before nerfstudio's viewer waits for Ctrl+C.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Type

import numpy as np

from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils.rich_utils import CONSOLE

from ..priors import PriorError, resolve_prior_path
from . import PDSNerfError
from .compat import find_checkpoint, load_checkpoint_file

_METHOD_LINE = re.compile(r"^method_name:\s*(\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class SceneKind:
    """What a trainer's methods edit: words for messages and how to recognise its checkpoints."""

    name: str
    """"NeRF" or "Gaussian splat"."""
    first_stage: str
    """The nerfstudio method that trains such a scene ("nerfacto", "splatfacto")."""
    stage1: str
    """Our stage-1 method for it ("pds", "pds_splat")."""
    marker: str
    """A state-dict key prefix that only its checkpoints have."""

    def check_checkpoint(self, state: dict, path: Path) -> None:
        """Raise :class:`pds.nerf.PDSNerfError` when checkpoint ``state`` holds another kind of scene."""
        keys = state.get("pipeline", {}).keys()
        if not any(k.startswith(self.marker) for k in keys):
            other = next((k for k in KINDS if k is not self and any(key.startswith(k.marker) for key in keys)), None)
            what = f"a {other.name} checkpoint" if other else "not a checkpoint of this kind of scene"
            raise PDSNerfError(f"--load-dir: {path} is {what}, but this method edits a {self.name}; pass the "
                               f"nerfstudio_models folder of `ns-train {self.first_stage}` (or of `ns-train "
                               f"{self.stage1}` for the refinement stage)")


NERF = SceneKind("NeRF", "nerfacto", "pds", "_model.field.")
SPLAT = SceneKind("Gaussian splat", "splatfacto", "pds_splat", "_model.gauss_params.")
KINDS = (NERF, SPLAT)


@dataclass
class PDSTrainerConfig(TrainerConfig):
    """Trainer of ``pds`` and ``pds_refinement``."""

    _target: Type = field(default_factory=lambda: PDSTrainer)
    save_eval_outputs: bool = True
    """After training, render every training view to <output>/eval_outputs (a nerfstudio dataset)."""

    def set_experiment_name(self) -> None:
        """Name runs on an ``eval_outputs`` folder after the scene that folder was rendered from."""
        if self.experiment_name is None:
            data = self.pipeline.datamanager.data
            meta = Path(data) / "transforms.json" if data is not None else None
            if meta is not None and meta.is_file():
                with contextlib.suppress(ValueError, OSError):
                    name = json.loads(meta.read_text()).get("pds", {}).get("experiment_name")
                    if name:
                        self.experiment_name = str(name)
        super().set_experiment_name()


def data_path(config: TrainerConfig) -> Optional[Path]:
    """The dataset folder of a config (``--data`` or the dataparser's ``--data``), ``None`` if unset."""
    for candidate in (config.data, config.pipeline.datamanager.data, config.pipeline.datamanager.dataparser.data):
        if candidate is not None and str(candidate) not in ("", "."):
            return Path(candidate)
    return None


def check_data(config: TrainerConfig) -> Path:
    """``--data`` must name a dataset the configured dataparser can read."""
    data = data_path(config)
    if data is None:
        raise PDSNerfError("pass --data PATH/TO/DATASET (the same dataset as `ns-train nerfacto`; for pds_refinement "
                           "the eval_outputs folder of the pds run)")
    if not data.exists():
        raise PDSNerfError(f"--data {data} does not exist")
    if isinstance(config.pipeline.datamanager.dataparser, NerfstudioDataParserConfig):
        meta_path = data if data.suffix == ".json" else data / "transforms.json"
        if not meta_path.is_file():
            raise PDSNerfError(f"--data {data} is not a nerfstudio dataset: it has no transforms.json (convert images "
                               f"with `ns-process-data`, or pass the eval_outputs folder of a pds run)")
        try:
            frames = json.loads(meta_path.read_text()).get("frames")
        except ValueError as exc:
            raise PDSNerfError(f"--data {data}: transforms.json is not valid JSON ({exc})") from exc
        if not frames:
            raise PDSNerfError(f"--data {data}: transforms.json lists no frames")
        first = meta_path.parent / frames[0].get("file_path", "")
        if not first.is_file():
            raise PDSNerfError(f"--data {data}: the first frame's image {first} does not exist")
    return data


def check_inputs(config: TrainerConfig, kind: SceneKind = NERF) -> Path:
    """Check prompts, prior name, data and checkpoint of a run; returns the checkpoint to load.

    ``kind`` (default NeRF) names the scene and its first stage in the message for a missing ``--load-dir``.

    Raises:
        PDSNerfError: with a message that names the flag to fix.
    """
    settings = config.pipeline.pds
    settings.validate()
    try:
        resolve_prior_path(settings.sd_pretrained_model_or_path)
    except PriorError as exc:
        raise PDSNerfError(f"--pipeline.pds.sd_pretrained_model_or_path: {exc}") from exc
    check_data(config)
    hint = None if kind is NERF else (
        f"this method edits a trained {kind.name}: pass --load-dir PATH/TO/OUTPUT/nerfstudio_models (the checkpoint "
        f"folder of `ns-train {kind.first_stage}`, or of `ns-train {kind.stage1}` for the refinement stage)")
    return find_checkpoint(config.load_dir, config.load_step, config.load_checkpoint, hint)


def run_method(checkpoint: Path) -> Optional[str]:
    """``method_name`` of the nerfstudio run a checkpoint belongs to (from its ``config.yml``)."""
    config_yml = checkpoint.parent.parent / "config.yml"
    if not config_yml.is_file():
        return None
    found = _METHOD_LINE.search(config_yml.read_text(errors="replace"))
    return found.group(1).strip("'\"") if found else None


def _plain_numbers(container) -> None:
    """Replace numpy scalars by Python numbers, in place, inside dicts and lists."""
    items = container.items() if isinstance(container, dict) else enumerate(container)
    for key, value in list(items):
        if isinstance(value, np.generic):
            container[key] = value.item()
        elif isinstance(value, (dict, list)):
            _plain_numbers(value)


@contextlib.contextmanager
def _one_line_errors(method: Optional[str]) -> Iterator[None]:
    """Bad input inside the block: under the package's error boundary (``python -m
    pds.nerf.ns_train``, :func:`pds.cli.run`) the error is raised for the boundary to report;
    under nerfstudio's own ``ns-train`` it is the boundary's line, ``ns-train METHOD: error:
    ...`` on stderr, and exit status 2 (not a traceback)."""
    from ..cli import EXIT_USAGE, inside_boundary, one_line

    try:
        yield
    except (PDSNerfError, PriorError) as exc:
        if inside_boundary():
            raise
        print(f"ns-train {method or ''}: error: {one_line(exc)}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_USAGE) from exc


class PDSTrainer(Trainer):
    """nerfstudio's :class:`Trainer` with input checks, torch >= 2.6 checkpoint loading, and
    ``eval_outputs`` (see the module docstring)."""

    config: PDSTrainerConfig
    kind: SceneKind = NERF
    """The kind of scene this trainer's methods edit (a subclass for splats sets :data:`SPLAT`)."""

    def __init__(self, config: PDSTrainerConfig, local_rank: int = 0, world_size: int = 1) -> None:
        from ..cli import quiet_libraries

        quiet_libraries()  # no loading bars of the prior's libraries: an error stays one line
        with _one_line_errors(config.method_name):
            self.checkpoint_path = check_inputs(config, self.kind)
        super().__init__(config, local_rank, world_size)

    def setup(self, test_mode="val") -> None:
        with _one_line_errors(self.config.method_name):
            super().setup(test_mode)
        if self.config.save_eval_outputs:
            self.callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN], self.export_eval_outputs))

    def _load_checkpoint(self) -> None:
        path = self.checkpoint_path
        state = load_checkpoint_file(path)
        self.kind.check_checkpoint(state, path)  # a splat checkpoint for a NeRF method or the reverse
        step = int(state["step"])
        self._start_step = step + 1
        self.pipeline.load_pipeline(state["pipeline"], step)
        self._rebind_optimizers()
        source = run_method(path)
        if source == self.config.method_name:
            self.optimizers.load_optimizers(state["optimizers"])
            if "schedulers" in state and self.config.load_scheduler:
                self.optimizers.load_schedulers(state["schedulers"])
            self.grad_scaler.load_state_dict(state["scalers"])
            CONSOLE.print(f"Resuming {source} from {path} (step {step})")
        else:
            CONSOLE.print(f"Loaded the {source or 'NeRF'} weights of {path} (step {step}); "
                          f"{self.config.method_name} starts its own optimizers and schedules")

    def _rebind_optimizers(self) -> None:
        """Point every optimizer at the model's current parameters. splatfacto's ``load_state_dict``
        replaces its Parameter objects (their number follows the checkpoint), which would leave the
        optimizers built before loading stepping the discarded ones; for NeRFs this changes nothing."""
        for name, params in self.pipeline.get_param_groups().items():
            optimizer = self.optimizers.optimizers.get(name)
            if optimizer is not None and len(optimizer.param_groups) == 1:
                optimizer.param_groups[0]["params"] = list(params)
                self.optimizers.parameters[name] = params

    def save_checkpoint(self, step: int) -> None:
        """nerfstudio's checkpoint, with numpy scalars (learning rates written by its schedulers)
        turned into Python floats so that ``torch.load(weights_only=True)``, the torch >= 2.6
        default of ``ns-viewer``/``ns-render``/``ns-export``, accepts the file."""
        for optimizer in self.optimizers.optimizers.values():
            for group in optimizer.param_groups:
                _plain_numbers(group)
        for scheduler in self.optimizers.schedulers.values():
            _plain_numbers(scheduler.__dict__)
        super().save_checkpoint(step)

    def export_eval_outputs(self, step: int) -> Path:
        """Render every training view to ``<output>/eval_outputs``."""
        pds = self.config.pipeline.pds
        extra = {"method": self.config.method_name, "step": int(step), "tgt_prompt": pds.tgt_prompt,
                 "src_prompt": getattr(pds, "src_prompt", None), "prior": pds.sd_pretrained_model_or_path,
                 "experiment_name": self.config.experiment_name, "source_data": str(data_path(self.config))}
        out = self.pipeline.export_views(self.base_dir / "eval_outputs", extra)
        CONSOLE.print(f"Rendered {self.pipeline.datamanager.num_views} views to {out}")
        return out
