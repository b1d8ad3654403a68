"""``pds_prior.json``: the typed schema of a prior folder's metadata, read in one place.

A prior folder may carry ``pds_prior.json`` beside its diffusers components. Everything in it is
optional; a Stable Diffusion folder has none. :func:`read_metadata` validates the file and
returns a :class:`PriorMetadata`; a malformed file is a :class:`~pds.priors.PriorError` naming
the key and the fix. Unknown keys are kept (``extra``) and written back unchanged.

Defaults that depend on the prior (how many edit steps, which guidance, the DreamBooth recipe)
live here rather than in the CLIs: a CLI asks the prior's metadata, then falls back to the
library default stated next to the option.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Union

METADATA_FILE = "pds_prior.json"


class MetadataError(ValueError):
    """``pds_prior.json`` is malformed (re-raised as ``PriorError`` by the loader)."""


def _num(d: Mapping, key: str, where: str, kind=float, positive: bool = True):
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer()):
        raise MetadataError(f"{where}{key} must be {'an integer' if kind is int else 'a number'}, got {v!r}")
    if not math.isfinite(float(v)) or (positive and v <= 0):
        raise MetadataError(f"{where}{key} must be a finite {'positive ' if positive else ''}number, got {v!r}")
    return kind(v)


def _flag(d: Mapping, key: str, where: str) -> Optional[bool]:
    v = d.get(key)
    if v is not None and not isinstance(v, bool):
        raise MetadataError(f"{where}{key} must be true or false, got {v!r}")
    return v


def _words(d: Mapping, key: str) -> Optional[tuple[str, ...]]:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or not all(isinstance(w, str) and w for w in v):
        raise MetadataError(f"{key} must be a list of non-empty strings")
    return tuple(str(w).lower() for w in v)


@dataclass(frozen=True)
class DreamBoothRecipe:
    """DreamBooth defaults measured for this prior (``None``: the CLI's fallback)."""

    learning_rate: Optional[float] = None
    train_text_encoder: Optional[bool] = None
    prior_loss_weight: Optional[float] = None
    train_identifier_embedding: Optional[bool] = None

    @staticmethod
    def from_json(d: Any) -> "DreamBoothRecipe":
        if d is None:
            return DreamBoothRecipe()
        if not isinstance(d, Mapping):
            raise MetadataError("dreambooth must be an object")
        flags = {key: _flag(d, key, "dreambooth.") for key in ("train_text_encoder", "train_identifier_embedding")}
        return DreamBoothRecipe(_num(d, "learning_rate", "dreambooth."), flags["train_text_encoder"],
                                _num(d, "prior_loss_weight", "dreambooth.", positive=False),
                                flags["train_identifier_embedding"])


@dataclass(frozen=True)
class SamplingDefaults:
    """Sampler defaults for this prior (class images, ``pds-sample``); ``None``: the library default."""

    guidance_scale: Optional[float] = None
    steps: Optional[int] = None

    @staticmethod
    def from_json(d: Any) -> "SamplingDefaults":
        if d is None:
            return SamplingDefaults()
        if not isinstance(d, Mapping):
            raise MetadataError("sampling must be an object")
        return SamplingDefaults(_num(d, "guidance_scale", "sampling."), _num(d, "steps", "sampling.", int))


@dataclass(frozen=True)
class EditDefaults:
    """Edit defaults measured for this prior (``None``: the library default).

    Attributes:
        steps: optimiser steps of ``pds-svg edit``.
        guidance_scale: classifier-free guidance of the distillation.
        t_min, t_max: timestep range (fractions of the DDIM grid).
        learning_rates: ``{parameter kind: lr}`` for the SVG scene (``points``, ``fill``...).
        samples_per_step: noise samples averaged per optimiser step.
        shape_weight: weight of the outline-keeping term of SVG edits
            (:func:`pds.svg.editing.outline_term`; ``0`` turns it off).
        position_weight: weight of that term's centroid spring, which keeps each outline in
            place (``0`` turns it off; off like the outline term when the prompts name different shapes).
        adam_beta1: Adam's first-moment decay for the edit (in ``[0, 1)``; torch's default 0.9).
        vector_colours: SVG colours step along their gradient (:class:`pds.optim.VectorAdam`)
            rather than by Adam's per-channel normalisation (``None``: off).
        gradient_space: ``"latent"`` or ``"image"``: where the edit applies the distillation
            gradient (:class:`pds.Distiller`; ``None``: latent, the reference's).
        page_guidance_interval: ``(lo, hi)``: for edits whose prompts differ only in the
            background, classifier-free guidance only at timesteps ``lo ≤ t/T ≤ hi``
            (:class:`pds.Distiller`'s ``guidance_interval``; ``None``: everywhere).
        shape_words: the words of this prior's vocabulary that name a shape; when the two prompts
            name different ones the edit is a shape edit and the outline term is off.
    """

    steps: Optional[int] = None
    guidance_scale: Optional[float] = None
    t_min: Optional[float] = None
    t_max: Optional[float] = None
    learning_rates: Mapping[str, float] = field(default_factory=dict)
    samples_per_step: Optional[int] = None
    shape_weight: Optional[float] = None
    adam_beta1: Optional[float] = None
    shape_words: Optional[tuple[str, ...]] = None
    vector_colours: Optional[bool] = None
    gradient_space: Optional[str] = None
    position_weight: Optional[float] = None
    page_guidance_interval: Optional[tuple[float, float]] = None

    @staticmethod
    def from_json(d: Any, legacy_steps: Any = None) -> "EditDefaults":
        d = {} if d is None else d
        if not isinstance(d, Mapping):
            raise MetadataError("edit must be an object")
        steps = _num(d, "steps", "edit.", int) if "steps" in d else _num({"edit_steps": legacy_steps}, "edit_steps", "", int)
        lrs = d.get("learning_rates") or {}
        if not isinstance(lrs, Mapping):
            raise MetadataError("edit.learning_rates must be an object {kind: rate}")
        rates = {str(k): _num(lrs, k, "edit.learning_rates.") for k in lrs}
        t_min = _num(d, "t_min", "edit.", positive=False)
        t_max = _num(d, "t_max", "edit.")
        if t_min is not None and t_max is not None and not 0 <= t_min < t_max <= 1:
            raise MetadataError(f"edit.t_min/t_max must satisfy 0 <= t_min < t_max <= 1, got {t_min}, {t_max}")
        shape_weight = _num(d, "shape_weight", "edit.", positive=False)
        if shape_weight is not None and shape_weight < 0:
            raise MetadataError(f"edit.shape_weight must be >= 0, got {shape_weight}")
        spring = _num(d, "position_weight", "edit.", positive=False)
        if spring is not None and spring < 0:
            raise MetadataError(f"edit.position_weight must be >= 0, got {spring}")
        beta1 = _num(d, "adam_beta1", "edit.", positive=False)
        if beta1 is not None and not 0 <= beta1 < 1:
            raise MetadataError(f"edit.adam_beta1 must be in [0, 1), got {beta1}")
        interval = d.get("page_guidance_interval")
        if interval is not None:
            from ..distiller import check_guidance_interval  # the Distiller's own rule (torch is loaded by then)

            try:
                interval = check_guidance_interval(interval, "edit.page_guidance_interval", "write [lo, hi], e.g. [0.7, 1.0]")
            except ValueError as exc:
                raise MetadataError(str(exc)) from None
        space = d.get("gradient_space")
        if space is not None and space not in ("latent", "image"):
            raise MetadataError(f"edit.gradient_space must be 'latent' or 'image', got {space!r}")
        return EditDefaults(steps, _num(d, "guidance_scale", "edit."), t_min, t_max, rates,
                            _num(d, "samples_per_step", "edit.", int), shape_weight, beta1,
                            _words(d, "shape_words"), _flag(d, "vector_colours", "edit."), space, spring, interval)


@dataclass(frozen=True)
class PriorMetadata:
    """The contents of ``pds_prior.json`` (every field optional).

    Attributes:
        name, description: for messages and ``repr``.
        version: the prior's version (a retrained embedded prior bumps it).
        resolution: working resolution in pixels (default: the UNet's sample size times the VAE factor).
        vocabulary: the closed vocabulary, lower case, or ``None`` (open vocabulary).
        identifier_tokens: rare words reserved for DreamBooth subjects.
        style_suffix: what ``--style auto`` appends to prompts (``None``: the CLI decides).
        edit: :class:`EditDefaults`; sampling: :class:`SamplingDefaults`; dreambooth: :class:`DreamBoothRecipe`.
        extra: every other key (training record, domain description...), kept verbatim.
    """

    name: Optional[str] = None
    description: str = ""
    version: Optional[int] = None
    resolution: Optional[int] = None
    vocabulary: Optional[tuple[str, ...]] = None
    identifier_tokens: tuple[str, ...] = ()
    style_suffix: Optional[str] = None
    edit: EditDefaults = field(default_factory=EditDefaults)
    sampling: SamplingDefaults = field(default_factory=SamplingDefaults)
    dreambooth: DreamBoothRecipe = field(default_factory=DreamBoothRecipe)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_json(d: Any) -> "PriorMetadata":
        """Validate a parsed ``pds_prior.json``; :class:`MetadataError` names the bad key."""
        if d is None:
            return PriorMetadata()
        if not isinstance(d, Mapping):
            raise MetadataError("the file must hold a JSON object")
        known = {f.name for f in fields(PriorMetadata)} | {"edit_steps"}
        name = d.get("name")
        if name is not None and not isinstance(name, str):
            raise MetadataError(f"name must be a string, got {name!r}")
        desc = d.get("description", "")
        if not isinstance(desc, str):
            raise MetadataError("description must be a string")
        style = d.get("style_suffix")
        if style is not None and not isinstance(style, str):
            raise MetadataError("style_suffix must be a string")
        return PriorMetadata(
            name=name, description=desc, version=_num(d, "version", "", int),
            resolution=_num(d, "resolution", "", int), vocabulary=_words(d, "vocabulary"),
            identifier_tokens=_words(d, "identifier_tokens") or (), style_suffix=style,
            edit=EditDefaults.from_json(d.get("edit"), d.get("edit_steps")),
            sampling=SamplingDefaults.from_json(d.get("sampling")),
            dreambooth=DreamBoothRecipe.from_json(d.get("dreambooth")),
            extra={k: v for k, v in d.items() if k not in known})

    def to_json(self) -> dict:
        """The JSON object to write (``None`` fields left out, ``extra`` keys kept)."""
        out: dict = {}
        for k in ("name", "description", "version", "resolution", "style_suffix"):
            v = getattr(self, k)
            if v not in (None, ""):
                out[k] = v
        if self.vocabulary is not None:
            out["vocabulary"] = list(self.vocabulary)
        if self.identifier_tokens:
            out["identifier_tokens"] = list(self.identifier_tokens)
        edit = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.edit).items() if v not in (None, {})}
        if edit:
            out["edit"] = edit
        for key in ("sampling", "dreambooth"):
            sub = {k: v for k, v in asdict(getattr(self, key)).items() if v is not None}
            if sub:
                out[key] = sub
        out.update(self.extra)
        return out

    def replace(self, **changes) -> "PriorMetadata":
        """A copy with fields changed; unknown names go to ``extra``."""
        from dataclasses import replace as dc_replace

        own = {k: v for k, v in changes.items() if k in {f.name for f in fields(self)}}
        rest = {k: v for k, v in changes.items() if k not in own}
        return dc_replace(self, **own, extra={**self.extra, **rest})


def metadata_of(prior) -> PriorMetadata:
    """The :class:`PriorMetadata` of any prior: its ``metadata`` attribute when typed, parsed when
    a dict, empty when absent (a third-party prior need not have any)."""
    meta = getattr(prior, "metadata", None)
    return meta if isinstance(meta, PriorMetadata) else PriorMetadata.from_json(meta)


def read_metadata(folder: Union[str, Path]) -> PriorMetadata:
    """``folder/pds_prior.json`` as :class:`PriorMetadata` (empty when the file is absent).

    Raises:
        MetadataError: unreadable JSON or a key of the wrong type (the message names it).
    """
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        return PriorMetadata()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MetadataError(f"{path} is not valid JSON ({type(exc).__name__}: {str(exc)[:120]})") from None
    try:
        return PriorMetadata.from_json(raw)
    except MetadataError as exc:
        raise MetadataError(f"{path}: {exc}") from None


def write_metadata(folder: Union[str, Path], metadata: PriorMetadata) -> Path:
    """Write ``folder/pds_prior.json`` (indented JSON) and return its path."""
    path = Path(folder) / METADATA_FILE
    path.write_text(json.dumps(metadata.to_json(), indent=2) + "\n", encoding="utf-8")
    return path
