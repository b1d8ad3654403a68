"""Diffusion priors: the protocol the distiller needs, and one implementation over diffusers.

A *prior* is anything with the attributes of :class:`Prior`. :class:`DiffusersPrior` wraps the
components of a Stable-Diffusion-layout folder (``unet/``, ``text_encoder/``, ``tokenizer/``,
``scheduler/``, optional ``vae/``) and works in latent space when there is a VAE and in pixel
space when there is none. :func:`load_prior` resolves a name (embedded priors shipped in
``pds/priors/``), a folder, or a hub id, and picks a device and dtype.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Optional, Protocol, Sequence, Union, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor

EMBEDDED_DIR = Path(__file__).resolve().parent / "priors"
DEFAULT_PRIOR = "pds-tiny"


class PriorError(ValueError):
    """A prior could not be loaded or used; the message names the problem and the fix."""


class UnknownWordError(PriorError):
    """A prompt uses a word the prior's vocabulary does not contain."""


@runtime_checkable
class Prior(Protocol):
    """What :class:`pds.Distiller` needs from a diffusion model.

    Attributes:
        scheduler: a diffusers scheduler (or any object) exposing ``alphas_cumprod``, ``betas``,
            ``alphas`` (``(T,)`` tensors) and ``config.num_train_timesteps``.
        resolution: side length in pixels of the images the prior was trained on; renders are
            resized so that their short side matches it before encoding.
    """

    scheduler: object
    resolution: int

    def encode_prompt(self, prompts: Sequence[str]) -> Tensor:
        """``N`` prompts → ``(N, L, D)`` embeddings (``""`` is the unconditional prompt)."""

    def encode_images(self, images: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """``(B, 3, H, W)`` images in ``[0, 1]`` → latents ``(B, C, h, w)`` (differentiable)."""

    def decode_latents(self, latents: Tensor) -> Tensor:
        """Latents → ``(B, 3, H, W)`` images in ``[0, 1]``."""

    def predict_noise(self, x_t: Tensor, t: Tensor, embeddings: Tensor) -> Tensor:
        """ε-prediction for ``x_t`` ``(N, C, h, w)`` at timesteps ``t`` ``(N,)`` with ``(N, L, D)`` embeddings."""


def default_device() -> torch.device:
    """CUDA if available, else Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA cards that support it (fp16 otherwise), fp16 on MPS, fp32 on CPU."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


_WORD = re.compile(r"[a-z0-9']+")


class DiffusersPrior:
    """A text-to-image diffusion prior built from diffusers/transformers components.

    Components are passed in (see :func:`load_prior` for loading). All outputs that enter the
    distillation maths are float32, whatever the model dtype.

    Args:
        unet: ``UNet2DConditionModel`` predicting ε (or v, see ``scheduler.config.prediction_type``).
        text_encoder: a transformers model whose first output is ``(N, L, D)`` hidden states.
        tokenizer: the matching tokenizer.
        scheduler: a diffusers scheduler giving the training beta schedule.
        vae: ``AutoencoderKL`` for latent-space models, ``None`` for pixel-space ones.
        metadata: optional ``pds_prior.json`` contents (``vocabulary``, ``identifier_tokens``...).
        device, dtype: where the networks run; the modules are moved there.
    """

    def __init__(self, unet, text_encoder, tokenizer, scheduler, vae=None, metadata: Optional[dict] = None,
                 device: Union[str, torch.device, None] = None, dtype: Optional[torch.dtype] = None):
        self.device = torch.device(device) if device is not None else default_device()
        self.dtype = dtype or default_dtype(self.device)
        self.unet = self._place(unet)
        self.text_encoder = self._place(text_encoder)
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.vae = self._place(vae) if vae is not None else None
        self.metadata = dict(metadata or {})
        self._use_fused_attention()
        if self.vae is not None:
            self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
            self.scaling_factor = float(getattr(self.vae.config, "scaling_factor", 0.18215))
        else:
            self.vae_scale_factor = 1
            self.scaling_factor = 1.0
        self.resolution = int(self.metadata.get("resolution", self.unet.config.sample_size * self.vae_scale_factor))
        self.prediction_type = getattr(scheduler.config, "prediction_type", "epsilon")
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise PriorError(f"prediction_type {self.prediction_type!r} is not supported; use an epsilon or v model")
        self._alphas_cumprod = scheduler.alphas_cumprod.to(torch.float32)
        self._embedding_cache: dict[str, Tensor] = {}
        self.unet_calls = 0  # forward passes of the UNet, for benchmarks and tests

    def _place(self, module):
        """Move a frozen network to the prior's device and dtype (casting only when needed:
        diffusers warns on every ``.to(dtype)``, even a no-op)."""
        first = next(module.parameters(), None)
        if first is not None and first.dtype != self.dtype:
            module = module.to(dtype=self.dtype)
        return module.to(self.device).eval().requires_grad_(False)

    def _use_fused_attention(self) -> None:
        # PyTorch's scaled_dot_product_attention (flash / memory-efficient kernels) for every block.
        try:
            from diffusers.models.attention_processor import AttnProcessor2_0

            self.unet.set_attn_processor(AttnProcessor2_0())
            if self.vae is not None:
                self.vae.set_attn_processor(AttnProcessor2_0())
        except Exception as exc:  # an exotic UNet without processors still works, just slower
            warnings.warn(f"could not enable fused attention: {exc}")

    # ------------------------------------------------------------------ text
    @property
    def vocabulary(self) -> Optional[list[str]]:
        """The words this prior knows, when it declares a closed vocabulary (embedded priors), else ``None``."""
        vocab = self.metadata.get("vocabulary")
        return list(vocab) if vocab else None

    def check_prompt(self, prompt: str) -> None:
        """Raise :class:`UnknownWordError` when ``prompt`` has a word the tokenizer cannot represent."""
        unk = getattr(self.tokenizer, "unk_token_id", None)
        vocab = self.vocabulary
        unknown: list[str] = []
        if vocab is not None:
            known = set(vocab)
            unknown = [w for w in _WORD.findall(prompt.lower()) if w not in known]
        elif unk is not None and prompt:
            ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            if unk in ids:
                unknown = [w for w in prompt.split() if unk in self.tokenizer(w, add_special_tokens=False)["input_ids"]]
        if unknown:
            known_list = ", ".join(sorted(vocab)) if vocab else "see the tokenizer"
            raise UnknownWordError(
                f"prompt {prompt!r} uses word(s) {', '.join(repr(w) for w in unknown)} that this prior does not know "
                f"(known words: {known_list}); rephrase, or pass --model with a prior that knows them"
            )

    def tokenize(self, prompts: Sequence[str]) -> Tensor:
        """``(N, L)`` token ids padded to the tokenizer's model length, on the prior's device.

        The one tokenization of the project (no attention mask, as Stable Diffusion): sampling,
        distillation and DreamBooth's text-encoder training all see prompts the same way.
        """
        tok = self.tokenizer(list(prompts), padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt")
        return tok["input_ids"].to(self.device)

    @torch.no_grad()
    def encode_prompt(self, prompts: Sequence[str]) -> Tensor:
        """Embed prompts, caching each distinct prompt. Returns ``(N, L, D)`` in the model dtype."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self._embedding_cache]
        if missing:
            for p in missing:
                self.check_prompt(p)
            hidden = self.text_encoder(self.tokenize(missing))[0]
            for p, h in zip(missing, hidden):
                self._embedding_cache[p] = h
        return torch.stack([self._embedding_cache[p] for p in prompts])

    # ---------------------------------------------------------------- images
    def resize(self, images: Tensor) -> Tensor:
        """Resize ``(B, 3, H, W)`` so the short side equals :attr:`resolution` (antialiased bilinear)."""
        h, w = images.shape[-2:]
        if min(h, w) == self.resolution:
            return images
        scale = self.resolution / min(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)

    def encode_images(self, images: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` → float32 latents; pixel priors return ``2x − 1``.

        Latent priors sample the VAE posterior (as the reference does) with ``generator``
        and scale by ``vae.config.scaling_factor``. Differentiable.
        """
        x = self.resize(images.to(self.device)) * 2.0 - 1.0
        if self.vae is None:
            return x.float()
        dist = self.vae.encode(x.to(self.dtype)).latent_dist
        noise = torch.randn(dist.mean.shape, generator=generator, device=generator.device if generator else self.device,
                            dtype=torch.float32).to(self.device)
        latents = dist.mean.float() + dist.std.float() * noise
        return latents * self.scaling_factor

    def decode_latents(self, latents: Tensor) -> Tensor:
        """Latents → ``(B, 3, H, W)`` images in ``[0, 1]`` (float32)."""
        if self.vae is None:
            x = latents
        else:
            x = self.vae.decode((latents / self.scaling_factor).to(self.dtype)).sample
        return (x.float() / 2 + 0.5).clamp(0, 1)

    # ----------------------------------------------------------------- noise
    def predict_noise(self, x_t: Tensor, t: Tensor, embeddings: Tensor) -> Tensor:
        """One batched UNet forward; returns ε-prediction as float32 ``(N, C, h, w)``."""
        self.unet_calls += 1
        out = self.unet(x_t.to(self.dtype), t.to(self.device), encoder_hidden_states=embeddings.to(self.dtype)).sample
        out = out.float()
        if self.prediction_type == "v_prediction":
            # v = √ᾱ ε − √(1−ᾱ) x0  ⇒  ε = √ᾱ v + √(1−ᾱ) x_t  (Salimans & Ho 2022).
            a = self._alphas_cumprod.to(self.device)[t.to(self.device)].reshape(-1, 1, 1, 1)
            out = a.sqrt() * out + (1 - a).sqrt() * x_t.float()
        return out

    @property
    def latent_channels(self) -> int:
        return int(self.unet.config.in_channels)

    def __repr__(self) -> str:
        space = "latent" if self.vae is not None else "pixel"
        name = self.metadata.get("name", "diffusers prior")
        return f"DiffusersPrior({name!r}, {space} space, {self.resolution}px, device={self.device}, dtype={self.dtype})"


def embedded_priors() -> list[str]:
    """Names of the priors shipped inside the package (folders of ``pds/priors/``)."""
    if not EMBEDDED_DIR.is_dir():
        return []
    return sorted(p.name for p in EMBEDDED_DIR.iterdir() if (p / "model_index.json").is_file())


def resolve_prior_path(name_or_path: Union[str, Path]) -> Union[Path, str]:
    """Map an embedded name to its folder, keep existing folders, and pass hub ids through.

    Raises:
        PriorError: for a folder that does not exist and does not look like a hub id.
    """
    s = str(name_or_path)
    if s in embedded_priors():
        return EMBEDDED_DIR / s
    p = Path(s).expanduser()
    if p.exists():
        if not p.is_dir():
            raise PriorError(f"prior {s!r} is a file, not a model folder; pass a diffusers model folder")
        return p
    if re.fullmatch(r"[\w.-]+/[\w.-]+", s) and not s.startswith((".", "/")):
        return s  # looks like a hub id
    raise PriorError(
        f"prior {s!r} is neither an embedded prior ({', '.join(embedded_priors()) or 'none installed'}), "
        f"nor an existing folder, nor a hub id like 'runwayml/stable-diffusion-v1-5'"
    )


def load_prior(
    name_or_path: Union[str, Path] = DEFAULT_PRIOR,
    device: Union[str, torch.device, None] = None,
    dtype: Optional[torch.dtype] = None,
) -> DiffusersPrior:
    """Load a diffusion prior.

    Args:
        name_or_path: an embedded prior name (``"pds-tiny"``), a diffusers-layout folder (for
            example a DreamBooth output), or a hub id (``"runwayml/stable-diffusion-v1-5"``;
            needs network access or a populated hub cache).
        device: defaults to :func:`default_device`.
        dtype: defaults to :func:`default_dtype` (fp32 on CPU, bf16/fp16 on GPU).

    Raises:
        PriorError: missing folder, no ``unet/``, or a hub id that cannot be fetched.
    """
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import AutoModel, AutoTokenizer

    where = resolve_prior_path(name_or_path)
    local = isinstance(where, Path)
    if local:
        if not (where / "unet").is_dir():
            raise PriorError(f"prior folder {str(where)!r} has no unet/ subfolder; pass a diffusers model folder "
                             f"(Stable Diffusion layout: unet/, text_encoder/, tokenizer/, scheduler/)")
        for sub in ("text_encoder", "tokenizer", "scheduler"):
            if not (where / sub).is_dir():
                raise PriorError(f"prior folder {str(where)!r} has no {sub}/ subfolder; it must be a complete "
                                 f"text-to-image diffusers model")
    src = str(where)
    dev = torch.device(device) if device is not None else default_device()
    dt = dtype or default_dtype(dev)
    try:
        unet = UNet2DConditionModel.from_pretrained(src, subfolder="unet", torch_dtype=dt)
        text_encoder = AutoModel.from_pretrained(src, subfolder="text_encoder", dtype=dt)
        tokenizer = AutoTokenizer.from_pretrained(src, subfolder="tokenizer")
        scheduler = DDIMScheduler.from_pretrained(src, subfolder="scheduler")
        vae = None
        if (where / "vae").is_dir() if local else True:
            try:
                vae = AutoencoderKL.from_pretrained(src, subfolder="vae", torch_dtype=dt)
            except OSError:
                if local:
                    raise  # a local vae/ folder that fails to load is corrupt, not absent
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ("the model hub is unreachable from this machine: download the model elsewhere and pass its folder"
                if not local else "the folder is incomplete or corrupt")
        raise PriorError(f"could not load prior {src!r}: {first} ({hint})") from exc
    metadata = {}
    if local and (where / "pds_prior.json").is_file():
        metadata = json.loads((where / "pds_prior.json").read_text())
    return DiffusersPrior(unet, text_encoder, tokenizer, scheduler, vae=vae, metadata=metadata, device=dev, dtype=dt)
