"""DreamBooth fine-tuning of any prior, with prior preservation (Ruiz et al., CVPR 2023).

DreamBooth binds a rare *identifier token* (``sks``) to a subject shown in a handful of
*instance images* by fine-tuning the denoiser on them under a prompt that contains the token
(``"a photo of a sks man"``). So that the class itself (``"a photo of a man"``) neither drifts
towards the subject nor loses its diversity, the *prior-preservation loss* (paper eq. 2) trains
at the same time on *class images* that the base model generated from the class prompt:

    L = E ‖ε̂(x_t, c_inst) − ε‖² + λ · E ‖ε̂(x'_t', c_class) − ε'‖²

with ``x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε`` (DDPM eq. 4), ``t`` uniform over the training schedule and
``λ = prior_loss_weight``. For v-prediction models the target is ``v = √ᾱ ε − √(1−ᾱ) x0``.

The module has three layers, each usable on its own:

* :func:`train_dreambooth` -- the loop, over the components of a loaded
  :class:`pds.priors.DiffusersPrior` (latent or pixel space), which it updates in place;
* :func:`save_model` -- writes a complete diffusers-layout folder that :func:`pds.load_prior`
  (hence ``pds-svg edit --model`` and the nerfstudio plugin) loads unchanged;
* :func:`fine_tune` -- what ``pds-dreambooth`` runs: validate the input, load the base prior,
  generate missing class images with :func:`pds.sampling.sample`, train, and save atomically
  (into a temporary folder beside the output, renamed at the end).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import maths
from ..distiller import NonFiniteError
from ..rng import randn_like_with
from ..util.files import replace_folder
from ..util.images import save_png
from ..priors.metadata import PriorMetadata, metadata_of, read_metadata, write_metadata
from ..priors.diffusers_prior import prompt_words
from ..priors import DEFAULT_PRIOR, default_device, load_prior, resolve_prior_path

#: Learning rate of the upstream recipe for Stable Diffusion (batch 1, 800 steps, constant).
SD_LEARNING_RATE = 5e-6
#: Default for priors that reserve identifier tokens (small models trained from scratch, such as
#: the embedded ``pds-tiny``) but name no DreamBooth learning rate in their metadata. Measured on
#: pds-tiny (examples/dreambooth/measure.py): with the text encoder trained, 1e-4 binds the
#: subject within 400 steps but visibly shifts the class, 2e-5 keeps the class but barely binds
#: in 400 steps; Adam's first sign-like steps at 1e-4 and above degrade the 4M-parameter model
#: before the subject is learned (loss x10 after 40 steps at 1e-4 with a frozen text encoder).
EMBEDDED_LEARNING_RATE = 5e-5
#: File name suffixes read as images from the instance and class folders.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
#: Name of the class-image folder inside the output when ``class_dir`` is not given (as upstream).
CLASS_SUBDIR = "class_images"
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")

# Words as the embedded priors' closed vocabularies split them (same rule as DiffusersPrior.check_prompt).


class DreamBoothError(ValueError):
    """Bad input to DreamBooth; the message names the problem and the fix."""


# ---------------------------------------------------------------------------------------- images
def list_images(folder: Union[str, Path]) -> list[Path]:
    """Image files (by suffix, see :data:`IMAGE_SUFFIXES`) directly in ``folder``, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def load_image(path: Union[str, Path], resolution: int) -> Tensor:
    """Read one image as ``(3, R, R)`` uint8: transparent parts composited over white, the short
    side resized to ``resolution`` (Lanczos), then the centre square cropped (as upstream with
    ``--center_crop``).

    Raises:
        DreamBoothError: the file cannot be decoded.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                im = Image.new("RGB", rgba.size, (255, 255, 255))
                im.paste(rgba, mask=rgba.getchannel("A"))
            else:
                im = im.convert("RGB")
            w, h = im.size
            scale = resolution / min(w, h)
            size = (max(resolution, round(w * scale)), max(resolution, round(h * scale)))
            if size != (w, h):
                im = im.resize(size, Image.Resampling.LANCZOS)
            left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
            im = im.crop((left, top, left + resolution, top + resolution))
            data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise DreamBoothError(f"cannot read image {str(path)!r}: {exc}; remove or replace the file") from exc
    return data.reshape(resolution, resolution, 3).permute(2, 0, 1).contiguous()


def load_image_folder(folder: Union[str, Path], resolution: int, what: str = "instance",
                      limit: Optional[int] = None) -> Tensor:
    """All images of a folder as ``(N, 3, R, R)`` uint8 (see :func:`load_image`).

    Raises:
        DreamBoothError: missing folder, no images in it, or an unreadable image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DreamBoothError(f"{what} folder {str(folder)!r} does not exist or is not a folder")
    paths = list_images(folder)[:limit]
    if not paths:
        raise DreamBoothError(f"{what} folder {str(folder)!r} holds no images "
                              f"({', '.join(sorted(IMAGE_SUFFIXES))}); add a few pictures of the subject")
    return torch.stack([load_image(p, resolution) for p in paths])


# --------------------------------------------------------------------------------------- prompts
def identifier_tokens(prior) -> list[str]:
    """The tokens a prior reserves for DreamBooth (``pds_prior.json`` ``identifier_tokens``);
    empty for priors without such metadata (Stable Diffusion), where any rare word will do."""
    return list(metadata_of(prior).identifier_tokens)


def identifiers_in(prompt: str, tokens: Sequence[str]) -> list[str]:
    """The words of ``prompt`` that are among ``tokens``, in order."""
    known = set(tokens)
    return [w for w in prompt_words(prompt) if w in known]


def check_prompts(prior, instance_prompt: str, class_prompt: Optional[str], with_prior_preservation: bool) -> list[str]:
    """Validate the prompts against the prior; return the identifier tokens used.

    On a prior that reserves identifier tokens, the instance prompt must contain one and the class
    prompt none. Every word must be known to the prior (:meth:`DiffusersPrior.check_prompt`).

    Raises:
        DreamBoothError, pds.UnknownWordError.
    """
    if not instance_prompt or not instance_prompt.strip():
        raise DreamBoothError("the instance prompt is empty; describe the subject with a special token, e.g. 'a sks ball'")
    if with_prior_preservation and not (class_prompt and class_prompt.strip()):
        raise DreamBoothError("prior preservation needs --class_prompt (the instance prompt without the special "
                              "token, e.g. 'a photo of a man'), or pass --without_prior_preservation")
    prior.check_prompt(instance_prompt)
    if class_prompt:
        prior.check_prompt(class_prompt)
    tokens = identifier_tokens(prior)
    if not tokens:
        return []
    used = identifiers_in(instance_prompt, tokens)
    if not used:
        words = instance_prompt.split()
        example = " ".join(words[:-1] + [tokens[0], words[-1]])
        raise DreamBoothError(
            f"instance prompt {instance_prompt!r} has no special token; this prior reserves "
            f"{', '.join(repr(t) for t in tokens)} for new subjects (e.g. {example!r})")
    if class_prompt and identifiers_in(class_prompt, tokens):
        raise DreamBoothError(
            f"class prompt {class_prompt!r} contains the special token {identifiers_in(class_prompt, tokens)[0]!r}; "
            f"the class prompt describes the general class without it (e.g. {' '.join(w for w in class_prompt.split() if w.lower() not in tokens)!r})")
    return used


def default_learning_rate(prior) -> float:
    """``dreambooth.learning_rate`` from the prior's metadata; else :data:`EMBEDDED_LEARNING_RATE`
    for priors that reserve identifier tokens; else :data:`SD_LEARNING_RATE` (upstream's 5e-6)."""
    lr = metadata_of(prior).dreambooth.learning_rate
    if lr is not None:
        return float(lr)
    return EMBEDDED_LEARNING_RATE if identifier_tokens(prior) else SD_LEARNING_RATE


def identifier_token_ids(prior, words: Sequence[str]) -> list[int]:
    """Rows of the text encoder's input-embedding table that spell ``words`` (no special tokens).

    Raises:
        ValueError: a word maps to the tokenizer's unknown token.
    """
    ids: list[int] = []
    tokenizer = prior.tokenizer
    for word in words:
        word_ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        if not word_ids or tokenizer.unk_token_id in word_ids:
            raise ValueError(f"{word!r} is not in the tokenizer's vocabulary; it cannot get a trained embedding")
        ids += [i for i in word_ids if i not in ids]
    return ids


def embed_prompts(prior, prompts: Sequence[str]) -> Tensor:
    """``(N, L, D)`` embeddings through ``prior.text_encoder`` with gradients (for training it)."""
    return prior.embed_tokens(prior.tokenize(prompts))


# ----------------------------------------------------------------------------------- class images
def generate_class_images(prior, class_prompt: str, class_dir: Union[str, Path], num_images: int, *,
                          batch_size: int = 8, steps: int = 50, guidance_scale: float = 7.5,
                          generator: Optional[torch.Generator] = None, mixed_precision: str = "no",
                          progress: bool = False, log: Optional[Callable[[str], None]] = None) -> list[Path]:
    """Top ``class_dir`` up to ``num_images`` images of ``class_prompt`` drawn from ``prior``.

    Existing images are kept (and count); new ones are written as ``class-NNNNN.png``, each
    atomically, so an interrupted run leaves only whole images. Returns the first
    ``num_images`` image paths of the folder.
    """
    from tqdm.auto import tqdm

    from ..sampling import sample

    class_dir = Path(class_dir)
    class_dir.mkdir(parents=True, exist_ok=True)
    existing = list_images(class_dir)
    missing = num_images - len(existing)
    if missing > 0:
        if log:
            log(f"generating {missing} class image(s) of {class_prompt!r} into {class_dir}")
        taken = {p.name for p in class_dir.iterdir()}
        index = 0
        bar = tqdm(total=missing, desc="class images", unit="img", disable=not progress, file=sys.stderr,
                   dynamic_ncols=True)
        with _autocast(prior.device, mixed_precision):
            while missing > 0:
                n = min(batch_size, missing)
                images = sample(prior, class_prompt, steps=steps, guidance_scale=guidance_scale,
                                generator=generator, num_images=n)
                for image in images:
                    while f"class-{index:05d}.png" in taken:
                        index += 1
                    taken.add(f"class-{index:05d}.png")
                    save_png(image, class_dir / f"class-{index:05d}.png")
                missing -= n
                bar.update(n)
        bar.close()
    return list_images(class_dir)[:num_images]


# --------------------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    """What :func:`train_dreambooth` did.

    Attributes:
        losses: total loss per step (instance + λ·prior).
        instance_losses: the instance term per step.
        prior_losses: the prior-preservation term per step (empty without prior preservation).
        steps: optimizer steps taken.
        seconds: wall time of the loop.
    """

    losses: list[float] = field(default_factory=list)
    instance_losses: list[float] = field(default_factory=list)
    prior_losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


def resolve_mixed_precision(mixed_precision: str, device: torch.device) -> str:
    """``"auto"`` → ``"bf16"`` on CUDA cards that support it, ``"fp16"`` on other CUDA cards,
    ``"no"`` elsewhere. fp16 autocast needs CUDA.

    Raises:
        DreamBoothError: unknown value, or fp16 off CUDA.
    """
    if mixed_precision not in MIXED_PRECISION:
        raise DreamBoothError(f"mixed precision {mixed_precision!r} is not one of {', '.join(MIXED_PRECISION)}")
    if mixed_precision == "auto":
        if device.type != "cuda":
            return "no"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if mixed_precision == "fp16" and device.type != "cuda":
        raise DreamBoothError(f"--mixed_precision fp16 needs a CUDA device, not {device.type}; use bf16 or no")
    return mixed_precision


def _autocast(device: torch.device, mixed_precision: str):
    if mixed_precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if mixed_precision == "bf16" else torch.float16
        return torch.autocast(device_type=device.type, dtype=dtype)
    return nullcontext()


def _batches(n: int, batch_size: int, generator: Optional[torch.Generator]) -> Iterator[Tensor]:
    """Endless stream of index batches: shuffled epochs over ``n`` items, batches may straddle epochs."""
    order = torch.empty(0, dtype=torch.long)
    while True:
        while order.numel() < batch_size:
            order = torch.cat([order, torch.randperm(n, generator=generator)])
        yield order[:batch_size]
        order = order[batch_size:]


def _set_checkpointing(module, on: bool) -> None:
    """Activation checkpointing on/off for a diffusers model or a transformers model (whose
    method names changed in transformers 5)."""
    names = (("enable_gradient_checkpointing", "activation_checkpointing_enable", "gradient_checkpointing_enable")
             if on else
             ("disable_gradient_checkpointing", "activation_checkpointing_disable", "gradient_checkpointing_disable"))
    for name in names:
        if hasattr(module, name):
            getattr(module, name)()
            return


def _to_unit(images: Tensor) -> Tensor:
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


def train_dreambooth(
    prior,
    instance_images: Tensor,
    instance_prompt: str,
    class_images: Optional[Tensor] = None,
    class_prompt: Optional[str] = None,
    *,
    steps: int = 800,
    learning_rate: float = SD_LEARNING_RATE,
    batch_size: int = 1,
    prior_loss_weight: float = 1.0,
    train_text_encoder: bool = False,
    train_identifier_embeddings: Sequence[str] = (),
    mixed_precision: str = "no",
    gradient_checkpointing: bool = False,
    max_grad_norm: float = 1.0,
    weight_decay: float = 1e-2,
    generator: Optional[torch.Generator] = None,
    progress: bool = False,
    callback: Optional[Callable[[int, float], None]] = None,
) -> TrainResult:
    """Fine-tune ``prior.unet`` (and ``prior.text_encoder`` if asked) in place with DreamBooth.

    Each step draws ``batch_size`` instance images and, with prior preservation, as many class
    images, noises them at uniform timesteps and regresses the noise (one UNet forward on the
    concatenated batch). AdamW with constant learning rate, gradient-norm clipping; the text
    encoder stays frozen unless ``train_text_encoder``. The VAE (latent priors) is always frozen.

    Args:
        prior: a :class:`pds.priors.DiffusersPrior` loaded in float32 (use ``mixed_precision``
            for speed; training half-precision weights directly is unstable).
        instance_images: ``(N, 3, R, R)`` uint8 or float in [0, 1]; resized by the prior to its
            resolution if needed.
        instance_prompt: the prompt with the identifier token.
        class_images, class_prompt: the prior-preservation set, or ``None`` to train without it.
        steps: optimizer steps.
        learning_rate: AdamW learning rate (constant).
        batch_size: instance images per step (and as many class images).
        prior_loss_weight: λ of the prior-preservation term.
        train_text_encoder: also fine-tune the text encoder.
        train_identifier_embeddings: words (e.g. ``["sks"]``) whose rows of the text encoder's
            input-embedding table are trained, textual-inversion style, together with the UNet; all
            other rows stay bit-identical (masked gradient, no weight decay), so every prompt
            without these words, the class prompt included, is encoded exactly as before.
            Ignored when ``train_text_encoder`` (which trains the whole table). Default none.
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"`` autocast (fp16 with loss scaling).
        gradient_checkpointing: trade compute for activation memory.
        max_grad_norm: gradient clipping threshold.
        weight_decay: AdamW decoupled weight decay (upstream's 1e-2).
        generator: RNG for batches, timesteps and noise (CPU generators keep runs reproducible
            across devices).
        progress: show a tqdm bar (step, loss, ETA) on stderr.
        callback: called as ``callback(step, loss)`` after every step.

    Returns:
        :class:`TrainResult`. The networks are left in eval mode with gradients off.

    Raises:
        ValueError: bad arguments or half-precision weights.
        pds.NonFiniteError: the loss became NaN/inf (lower the learning rate).
    """
    from tqdm.auto import tqdm

    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be at least 1, got {steps} and {batch_size}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    if instance_images.ndim != 4 or instance_images.shape[1] != 3 or instance_images.shape[0] == 0:
        raise ValueError(f"instance_images must be (N, 3, H, W) with N >= 1, got {tuple(instance_images.shape)}")
    preserve = class_images is not None
    if preserve and (class_prompt is None or class_images.ndim != 4 or class_images.shape[0] == 0):
        raise ValueError("prior preservation needs a class prompt and at least one (3, H, W) class image")
    device = prior.device
    if mixed_precision not in ("no", "bf16", "fp16"):
        raise ValueError(f"mixed_precision must be 'no', 'bf16' or 'fp16', got {mixed_precision!r}")

    unet, text_encoder = prior.unet, prior.text_encoder
    modules = [unet] + ([text_encoder] if train_text_encoder else [])
    for module in modules:
        half = [n for n, p in module.named_parameters() if p.dtype != torch.float32][:1]
        if half:
            raise ValueError(f"{type(module).__name__} weights are {module.get_parameter(half[0]).dtype}; load the "
                             f"prior with dtype=torch.float32 for training and pass mixed_precision for speed")
        module.train().requires_grad_(True)
        if gradient_checkpointing:
            _set_checkpointing(module, True)
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    groups = [{"params": params, "weight_decay": weight_decay}]
    row_hook = None
    rows = [] if train_text_encoder else identifier_token_ids(prior, train_identifier_embeddings)
    if rows:
        table = text_encoder.get_input_embeddings().weight
        if table.dtype != torch.float32:
            raise ValueError(f"text encoder weights are {table.dtype}; load the prior with dtype=torch.float32")
        mask = torch.zeros(table.shape[0], 1, device=table.device, dtype=table.dtype)
        mask[rows] = 1.0
        table.requires_grad_(True)
        # Only the identifier rows may move: zero every other row's gradient, and no weight decay
        # here (AdamW's decay would shrink all rows, gradient or not).
        row_hook = table.register_hook(lambda grad: grad * mask)
        groups.append({"params": [table], "weight_decay": 0.0})
        params = params + [table]
    optimizer = torch.optim.AdamW(groups, lr=learning_rate, betas=(0.9, 0.999), eps=1e-8)
    scaler = torch.amp.GradScaler(device.type) if mixed_precision == "fp16" else None

    prompts = [instance_prompt] + ([class_prompt] if preserve else [])
    encode_each_step = train_text_encoder or bool(rows)
    if encode_each_step:
        token_ids = prior.tokenize(prompts)
        fixed_embeddings = None
    else:
        fixed_embeddings = prior.encode_prompt(prompts).detach()
    alphas_cumprod = prior.scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)
    num_train_timesteps = int(prior.scheduler.config.num_train_timesteps)
    v_prediction = getattr(prior, "prediction_type", "epsilon") == "v_prediction"

    instance_batches = _batches(instance_images.shape[0], batch_size, generator)
    class_batches = _batches(class_images.shape[0], batch_size, generator) if preserve else None
    result = TrainResult()
    start = time.perf_counter()
    bar = tqdm(total=steps, desc="DreamBooth", unit="step", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for step in range(steps):
            images = _to_unit(instance_images[next(instance_batches)])
            if preserve:
                images = torch.cat([images, _to_unit(class_images[next(class_batches)]).to(images.device)])
            with torch.no_grad(), _autocast(device, mixed_precision):
                z0 = prior.encode_images_at(images.to(device), generator).float()
            noise = randn_like_with(z0, generator)
            t = torch.randint(0, num_train_timesteps, (z0.shape[0],), generator=generator).to(device)
            a_t = alphas_cumprod[t].reshape(-1, 1, 1, 1)
            x_t = maths.add_noise(z0, noise, a_t)
            target = maths.v_target(z0, noise, a_t) if v_prediction else noise

            with _autocast(device, mixed_precision):
                if encode_each_step:
                    embeddings = prior.text_encoder(token_ids)[0]
                else:
                    embeddings = fixed_embeddings
                embeddings = embeddings.repeat_interleave(batch_size, dim=0)
                pred = unet(x_t, t, encoder_hidden_states=embeddings).sample
            pred = pred.float()
            instance_loss = F.mse_loss(pred[:batch_size], target[:batch_size])
            if preserve:
                prior_loss = F.mse_loss(pred[batch_size:], target[batch_size:])
                loss = instance_loss + prior_loss_weight * prior_loss
            else:
                prior_loss = None
                loss = instance_loss
            if not torch.isfinite(loss):
                raise NonFiniteError(f"the DreamBooth loss became {loss.item()} at step {step + 1}; lower the "
                                     f"learning rate ({learning_rate:g}) or use bf16 instead of fp16")

            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)

            value = float(loss.detach())
            result.losses.append(value)
            result.instance_losses.append(float(instance_loss.detach()))
            if prior_loss is not None:
                result.prior_losses.append(float(prior_loss.detach()))
            result.steps = step + 1
            bar.set_postfix(loss=f"{value:.4f}", refresh=False)
            bar.update(1)
            if callback is not None:
                callback(step, value)
    finally:
        bar.close()
        result.seconds = time.perf_counter() - start
        for module in modules:
            if gradient_checkpointing:
                _set_checkpointing(module, False)
            module.eval().requires_grad_(False)
        if row_hook is not None:
            row_hook.remove()
            text_encoder.get_input_embeddings().weight.requires_grad_(False)
        if encode_each_step:
            # Prompt embeddings the prior cached before training are stale now.
            prior.clear_prompt_cache()
    return result


# ----------------------------------------------------------------------------------------- saving
_COMPONENT_CLASSES = {"unet": "diffusers", "vae": "diffusers", "scheduler": "diffusers",
                      "text_encoder": "transformers", "tokenizer": "transformers"}


def save_model(prior, directory: Union[str, Path], source: Union[str, Path, None] = None,
               metadata: Optional[PriorMetadata] = None, trained_text_encoder: bool = False) -> Path:
    """Write ``prior`` as a diffusers-layout model folder that :func:`pds.load_prior` loads.

    The UNet (and a trained text encoder) are saved with ``save_pretrained`` (safetensors). Frozen
    components are copied byte for byte from ``source`` when it is a local folder that has them,
    else saved from memory. ``model_index.json`` keeps the source's entries for the components
    written and marks others (a safety checker, say) absent. ``pds_prior.json`` gets ``metadata``.

    Args:
        prior: a :class:`pds.priors.DiffusersPrior`.
        directory: output folder (created; its existing files with the same names are replaced).
        source: the base model's folder (or hub id) the prior was loaded from.
        metadata: the :class:`~pds.priors.PriorMetadata` to write (default: the prior's).
        trained_text_encoder: save the text encoder from memory even if ``source`` has one.
    """
    import diffusers

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    src = Path(source) if source is not None and Path(source).is_dir() else None

    copied: set[str] = set()

    def copy_or(name: str, save: Callable[[Path], None]) -> None:
        if src is not None and (src / name).is_dir():
            shutil.copytree(src / name, out / name, dirs_exist_ok=True)
            copied.add(name)
        else:
            save(out / name)

    prior.unet.save_pretrained(out / "unet")
    if trained_text_encoder:
        prior.text_encoder.save_pretrained(out / "text_encoder")
    else:
        copy_or("text_encoder", prior.text_encoder.save_pretrained)
    copy_or("tokenizer", prior.tokenizer.save_pretrained)

    def save_scheduler(path: Path) -> None:
        # The prior holds a DDIM scheduler built from the base config; keep the base's own class
        # and config where it can be read, so the output trains and samples like the base.
        config = None
        if source is not None:
            try:
                config = dict(type(prior.scheduler).load_config(str(source), subfolder="scheduler"))
            except (OSError, ValueError):
                config = None
        if config is None:
            prior.scheduler.save_pretrained(path)
            return
        path.mkdir(parents=True, exist_ok=True)
        (path / "scheduler_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    copy_or("scheduler", save_scheduler)
    if prior.vae is not None:
        copy_or("vae", prior.vae.save_pretrained)

    index: dict = {}
    if src is not None and (src / "model_index.json").is_file():
        index = json.loads((src / "model_index.json").read_text())
    scheduler_class = json.loads((out / "scheduler" / "scheduler_config.json").read_text()).get(
        "_class_name", type(prior.scheduler).__name__)
    written = {"unet": type(prior.unet).__name__, "text_encoder": type(prior.text_encoder).__name__,
               "tokenizer": type(prior.tokenizer).__name__, "scheduler": scheduler_class}
    if prior.vae is not None:
        written["vae"] = type(prior.vae).__name__
    index.setdefault("_class_name", "StableDiffusionPipeline")
    index["_diffusers_version"] = diffusers.__version__
    for key, value in list(index.items()):
        if not key.startswith("_") and key not in written and isinstance(value, list):
            index[key] = [None, None]  # a component of the base we do not carry (e.g. safety_checker)
    for key, cls in written.items():
        if key in copied and isinstance(index.get(key), list) and index[key][0]:
            continue  # copied verbatim: the base's entry describes it
        index[key] = [_COMPONENT_CLASSES[key], cls]
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    meta = metadata_of(prior) if metadata is None else metadata
    if meta.to_json():
        write_metadata(out, meta)
    return out


# ------------------------------------------------------------------------------------ orchestrator
@dataclass(frozen=True)
class DreamBoothConfig:
    """Settings of a DreamBooth run (the ``pds-dreambooth`` options)."""

    instance_prompt: str
    """Prompt with the special token describing the instance images, e.g. ``"a photo of a sks man"``."""
    instance_dir: Path
    """Folder with the instance images (a handful of pictures of the subject)."""
    save_dir: Path
    """Output folder: a diffusers-layout model that ``pds.load_prior`` loads."""
    class_prompt: Optional[str] = None
    """The instance prompt without the special token, e.g. ``"a photo of a man"`` (needed with prior preservation)."""
    class_dir: Optional[Path] = None
    """Folder of class images, topped up with images from the base model; default ``save_dir/class_images``."""
    model: str = DEFAULT_PRIOR
    """Base prior: an embedded name, a diffusers folder or a hub id."""
    num_class_images: int = 200
    """Class images used for prior preservation (generated when ``class_dir`` has fewer)."""
    learning_rate: Optional[float] = None
    """Constant AdamW learning rate; default from the prior's metadata, else 5e-6 (upstream, Stable Diffusion)."""
    max_train_steps: int = 800
    """Optimizer steps."""
    resolution: Optional[int] = None
    """Training image side length; default the prior's resolution."""
    batch_size: int = 1
    """Instance images per step (and as many class images)."""
    train_text_encoder: Optional[bool] = None
    """Also fine-tune the text encoder; default the prior's metadata ``dreambooth.train_text_encoder``, else off."""
    train_identifier_embedding: Optional[bool] = None
    """Train the identifier tokens' input embeddings (only their rows; other prompts encode exactly as
    before); default the prior's metadata ``dreambooth.train_identifier_embedding``, else on for
    priors that reserve identifier tokens (their embeddings were never trained) and off otherwise."""
    with_prior_preservation: bool = True
    """Add the prior-preservation loss on class images."""
    prior_loss_weight: Optional[float] = None
    """Weight λ of the prior-preservation loss; default the prior's metadata ``dreambooth.prior_loss_weight``, else 1 (upstream)."""
    seed: Optional[int] = None
    """Seed of every random draw (class images, batches, timesteps, noise); random when unset."""
    mixed_precision: str = "auto"
    """``auto`` (bf16 or fp16 on CUDA, none elsewhere), ``no``, ``fp16`` (CUDA) or ``bf16``."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    overwrite: bool = False
    """Replace a non-empty ``save_dir``."""
    device: Optional[str] = None
    """Torch device; default CUDA, then MPS, then CPU."""
    sample_batch_size: int = 8
    """Class images drawn per sampling batch."""
    class_sample_steps: int = 50
    """DDIM steps per class image."""
    class_guidance_scale: Optional[float] = None
    """Classifier-free guidance for class images; default the prior's metadata ``sampling.guidance_scale``, else 7.5."""
    max_grad_norm: float = 1.0
    """Gradient clipping threshold."""


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _validate_save_dir(save_dir: Path, overwrite: bool) -> None:
    if save_dir.exists() and not save_dir.is_dir():
        raise DreamBoothError(f"save folder {str(save_dir)!r} is a file; pass a folder path")
    if save_dir.is_dir() and any(save_dir.iterdir()) and not overwrite:
        raise DreamBoothError(f"save folder {str(save_dir)!r} exists and is not empty; pass --overwrite to "
                              f"replace it or choose another --save_dir")


def _reusable_class_images(save_dir: Path, config: DreamBoothConfig) -> list[Path]:
    """Class images of a previous run in ``save_dir`` with the same base model and class prompt."""
    try:
        last = (read_metadata(save_dir).extra.get("fine_tuning") or [{}])[-1]
    except (OSError, ValueError, AttributeError, IndexError, TypeError, KeyError):
        return []
    if (last.get("base_model"), last.get("class_prompt")) != (str(config.model), config.class_prompt):
        return []
    folder = save_dir / CLASS_SUBDIR
    return list_images(folder) if folder.is_dir() else []


def fine_tune(config: DreamBoothConfig, log: Optional[Callable[[str], None]] = None, progress: bool = True) -> Path:
    """Run DreamBooth end to end (what ``pds-dreambooth`` does) and return the output folder.

    Input is checked before anything is written. The model (and, without ``class_dir``, the class
    images) is built in a hidden temporary folder beside ``save_dir`` and renamed to ``save_dir``
    at the end; on any error or interrupt the temporary folder is removed, so nothing
    half-written is left. Class images written into an explicit ``class_dir`` are kept.

    Raises:
        DreamBoothError, pds.PriorError: bad input (the message says the fix).
    """
    log = log or (lambda message: print(message, file=sys.stderr))
    save_dir = Path(config.save_dir).expanduser().absolute()
    instance_dir = Path(config.instance_dir).expanduser().absolute()
    class_dir = Path(config.class_dir).expanduser().absolute() if config.class_dir else None
    for name, value in (("max_train_steps", config.max_train_steps), ("batch_size", config.batch_size),
                        ("sample_batch_size", config.sample_batch_size),
                        ("class_sample_steps", config.class_sample_steps)):
        if value < 1:
            raise DreamBoothError(f"--{name} must be at least 1, got {value}")
    if config.with_prior_preservation and config.num_class_images < 1:
        raise DreamBoothError(f"--num_class_images must be at least 1 with prior preservation, got {config.num_class_images}")
    if config.learning_rate is not None and not (config.learning_rate > 0 and math.isfinite(config.learning_rate)):
        raise DreamBoothError(f"--learning_rate must be a positive number, got {config.learning_rate}")
    if config.prior_loss_weight is not None and not config.prior_loss_weight >= 0:
        raise DreamBoothError(f"--prior_loss_weight must be non-negative, got {config.prior_loss_weight}")
    _validate_save_dir(save_dir, config.overwrite)
    if _inside(instance_dir, save_dir):
        raise DreamBoothError(f"the instance folder {str(instance_dir)!r} is inside --save_dir, which is replaced "
                              f"at the end; move the images elsewhere")
    if class_dir is not None and _inside(class_dir, save_dir):
        raise DreamBoothError(f"--class_dir {str(class_dir)!r} is inside --save_dir, which is replaced at the end; "
                              f"leave --class_dir out to keep class images in the output, or choose another folder")
    if class_dir is not None and class_dir.exists() and not class_dir.is_dir():
        raise DreamBoothError(f"--class_dir {str(class_dir)!r} is a file; pass a folder path")
    if config.resolution is not None and config.resolution < 8:
        raise DreamBoothError(f"--resolution must be at least 8, got {config.resolution}")
    # Cheap checks on the images before the (possibly slow) model load.
    load_image_folder(instance_dir, 8, "instance")  # missing, empty or unreadable: fail before the model loads
    source = resolve_prior_path(config.model)
    if isinstance(source, Path) and (_inside(source.absolute(), save_dir) or _inside(save_dir, source.absolute())):
        raise DreamBoothError(f"--save_dir {str(save_dir)!r} overlaps the base model folder {str(source)!r}; "
                              f"choose another --save_dir")

    try:
        device = torch.device(config.device) if config.device else default_device()
    except RuntimeError as exc:
        raise DreamBoothError(f"--device {config.device!r} is not a torch device (cpu, cuda, cuda:1, mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DreamBoothError(f"--device {config.device} asked for CUDA, but this torch has no CUDA device; use --device cpu")
    mixed_precision = resolve_mixed_precision(config.mixed_precision, device)
    prior = load_prior(config.model, device=device, dtype=torch.float32)
    used_tokens = check_prompts(prior, config.instance_prompt, config.class_prompt, config.with_prior_preservation)
    resolution = int(config.resolution or prior.resolution)
    multiple = getattr(prior, "vae_scale_factor", 1) * 2 ** (len(prior.unet.config.block_out_channels) - 1)
    if resolution % multiple:
        raise DreamBoothError(f"--resolution {resolution} must be a multiple of {multiple} for this prior")
    instance_images = load_image_folder(instance_dir, resolution, "instance")
    class_existing: list[Path] = []
    if class_dir is not None and class_dir.is_dir() and config.with_prior_preservation:
        class_existing = list_images(class_dir)[:config.num_class_images]
        for p in class_existing:  # fail now, not after generating the rest
            load_image(p, 8)
    learning_rate = config.learning_rate if config.learning_rate is not None else default_learning_rate(prior)
    meta = metadata_of(prior)

    def chosen(option: str, fallback):
        """The user's value, else the prior's recipe (pds_prior.json ``dreambooth``), else ``fallback``."""
        value = getattr(config, option)
        if value is not None:
            return value
        measured = getattr(meta.dreambooth, option)
        return type(fallback)(measured) if measured is not None else fallback

    train_text_encoder = chosen("train_text_encoder", False)
    prior_loss_weight = chosen("prior_loss_weight", 1.0)
    train_identifier = chosen("train_identifier_embedding", bool(identifier_tokens(prior)))
    if config.train_identifier_embedding and not used_tokens:
        raise DreamBoothError("--train_identifier_embedding needs a prior that reserves identifier tokens "
                              "(pds_prior.json identifier_tokens); use --train_text_encoder with this prior")
    identifier_words = list(used_tokens)
    train_identifier = train_identifier and not train_text_encoder and bool(identifier_words)
    seed = config.seed if config.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
    generator = torch.Generator("cpu").manual_seed(seed)
    guidance = config.class_guidance_scale
    if guidance is None:
        guidance = meta.sampling.guidance_scale or 7.5

    # Everything below writes only into `work` (and an explicit class_dir) until the final rename.
    created_parents = [p for p in reversed(save_dir.parents) if not p.exists()]
    save_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{save_dir.name}.", suffix=".partial", dir=save_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(work, 0o777 & ~umask)  # mkdtemp makes it private; the model folder should not be
    try:
        class_images = None
        if config.with_prior_preservation:
            target = class_dir
            if target is None:
                target = work / CLASS_SUBDIR
                target.mkdir()
                if config.overwrite and save_dir.is_dir():
                    for p in _reusable_class_images(save_dir, config)[:config.num_class_images]:
                        shutil.copy2(p, target / p.name)
            generate_class_images(prior, config.class_prompt, target, config.num_class_images,
                                  batch_size=config.sample_batch_size, steps=config.class_sample_steps,
                                  guidance_scale=guidance, generator=generator,
                                  mixed_precision=mixed_precision, progress=progress, log=log)
            class_images = load_image_folder(target, resolution, "class", limit=config.num_class_images)

        log(f"fine-tuning {config.model} on {instance_images.shape[0]} instance image(s) "
            f"({'with ' + str(class_images.shape[0]) + ' class images' if class_images is not None else 'without prior preservation'}), "
            f"{config.max_train_steps} steps, lr {learning_rate:g}{', text encoder too' if train_text_encoder else ''}"
            f"{', embedding of ' + '/'.join(identifier_words) if train_identifier else ''}, "
            f"{resolution}px, {device}"
            f"{', ' + mixed_precision if mixed_precision != 'no' else ''}")
        result = train_dreambooth(
            prior, instance_images, config.instance_prompt, class_images,
            config.class_prompt if class_images is not None else None,
            steps=config.max_train_steps, learning_rate=learning_rate, batch_size=config.batch_size,
            prior_loss_weight=prior_loss_weight, train_text_encoder=train_text_encoder,
            train_identifier_embeddings=identifier_words if train_identifier else (),
            mixed_precision=mixed_precision, gradient_checkpointing=config.gradient_checkpointing,
            max_grad_norm=config.max_grad_norm, generator=generator, progress=progress)

        run_info = {
            "base_model": str(config.model), "instance_prompt": config.instance_prompt,
            "class_prompt": config.class_prompt if class_images is not None else None,
            "identifier_tokens": used_tokens, "num_instance_images": int(instance_images.shape[0]),
            "num_class_images": int(class_images.shape[0]) if class_images is not None else 0,
            "with_prior_preservation": class_images is not None, "prior_loss_weight": prior_loss_weight,
            "learning_rate": learning_rate, "max_train_steps": result.steps, "batch_size": config.batch_size,
            "resolution": resolution, "train_text_encoder": train_text_encoder,
            "trained_identifier_embeddings": identifier_words if train_identifier else [],
            "mixed_precision": mixed_precision, "seed": seed,
            "final_loss": sum(result.losses[-20:]) / len(result.losses[-20:]),
            "seconds": round(result.seconds, 1),
        }
        base_name = meta.name or Path(str(config.model)).name
        metadata = meta.replace(
            name=save_dir.name,
            description=f"DreamBooth fine-tune of {base_name} on {config.instance_prompt!r}. {meta.description}".strip(),
            fine_tuning=list(meta.extra.get("fine_tuning") or []) + [run_info])
        save_model(prior, work, source=source, metadata=metadata,
                   trained_text_encoder=train_text_encoder or train_identifier)
        replace_folder(work, save_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        for p in reversed(created_parents):
            try:
                p.rmdir()
            except OSError:
                pass
        raise
    log(f"saved DreamBooth model to {save_dir} (load it with --model {save_dir})")
    return save_dir


__all__ = [
    "CLASS_SUBDIR", "DreamBoothConfig", "DreamBoothError", "EMBEDDED_LEARNING_RATE", "SD_LEARNING_RATE",
    "TrainResult", "check_prompts", "default_learning_rate", "embed_prompts", "fine_tune",
    "generate_class_images", "identifier_tokens", "identifiers_in", "list_images", "load_image",
    "load_image_folder", "resolve_mixed_precision", "save_model", "train_dreambooth",
]
