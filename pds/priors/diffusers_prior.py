"""The diffusers implementation of the prior protocols, and :func:`load_prior`.

A *prior* is anything with the attributes of :class:`pds.priors.Prior`. :class:`DiffusersPrior` wraps the
components of a Stable-Diffusion-layout folder (``unet/``, ``text_encoder/``, ``tokenizer/``,
``scheduler/``, optional ``vae/``) and works in latent space when there is a VAE and in pixel
space when there is none. :func:`load_prior` resolves a name (embedded priors shipped in
``pds/priors/``), a folder, or a hub id, and picks a device and dtype.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import maths
from .metadata import MetadataError, PriorMetadata, read_metadata
from .protocol import Conditioning

EMBEDDED_DIR = Path(__file__).resolve().parent
DEFAULT_PRIOR = "pds-tiny"


class PriorError(ValueError):
    """A prior could not be loaded or used; the message names the problem and the fix."""


class UnknownWordError(PriorError):
    """A prompt uses a word the prior's vocabulary does not contain."""


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


# A word is a run of letters/digits in any script; every other visible character (punctuation,
# emoji, symbols) is a token of its own, as a BERT-style tokenizer splits them.
_TOKEN = re.compile(r"[^\W_]+|[^\w\s]|_")


def prompt_words(prompt: str) -> list[str]:
    """The tokens a word-level tokenizer sees in ``prompt``: lower-case words (any script) and each
    other visible character on its own (``"a red circle!"`` -> ``["a", "red", "circle", "!"]``)."""
    return _TOKEN.findall(prompt.lower())


def _shortened(items: Sequence[str], limit: int) -> str:
    """``items`` joined with commas, the first ``limit`` of them and a count of the rest (an
    error message stays one readable line for a 10,000-word vocabulary)."""
    head = ", ".join(items[:limit])
    return head if len(items) <= limit else f"{head} and {len(items) - limit} more"


def tokenize(tokenizer, prompts: Sequence[str]) -> Tensor:
    """``(N, L)`` int64 token ids of ``prompts``, padded to ``tokenizer.model_max_length`` and
    truncated, without attention mask (as Stable Diffusion encodes prompts)."""
    return tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt")["input_ids"]


class PromptTokens:
    """:func:`tokenize` with a cache per distinct prompt (a training loop sees few distinct captions)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.cache: dict[str, Tensor] = {}

    def __call__(self, prompts: Sequence[str], device=None) -> Tensor:
        """``(N, L)`` token ids on ``device``."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self.cache]
        if missing:
            for p, row in zip(missing, tokenize(self.tokenizer, missing)):
                self.cache[p] = row
        return torch.stack([self.cache[p] for p in prompts]).to(device)


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
        metadata: a :class:`~pds.priors.metadata.PriorMetadata` (or the parsed ``pds_prior.json`` dict).
        device, dtype: where the networks run; the modules are moved there.
    """

    def __init__(self, unet, text_encoder, tokenizer, scheduler, vae=None,
                 metadata: Union[PriorMetadata, Mapping, None] = None,
                 device: Union[str, torch.device, None] = None, dtype: Optional[torch.dtype] = None):
        self.device = torch.device(device) if device is not None else default_device()
        self.dtype = dtype or default_dtype(self.device)
        self.unet = self._place(unet)
        self.text_encoder = self._place(text_encoder)
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.vae = self._place(vae) if vae is not None else None
        self.metadata = metadata if isinstance(metadata, PriorMetadata) else PriorMetadata.from_json(metadata)
        self._use_fused_attention()
        if self.vae is not None:
            self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
            self.scaling_factor = float(getattr(self.vae.config, "scaling_factor", 0.18215))
        else:
            self.vae_scale_factor = 1
            self.scaling_factor = 1.0
        self.resolution = int(self.metadata.resolution or self.unet.config.sample_size * self.vae_scale_factor)
        self.prediction_type = getattr(scheduler.config, "prediction_type", "epsilon")
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise PriorError(f"prediction_type {self.prediction_type!r} is not supported; use an epsilon or v model")
        self._alphas_cumprod = scheduler.alphas_cumprod.to(torch.float32)
        self._embedding_cache: dict[str, Tensor] = {}
        self.unet_calls = 0  # forward passes of the UNet, for benchmarks and tests
        self._output_checked = False  # see predict_noise: the first finite input's output is checked once

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
        vocab = self.metadata.vocabulary
        return list(vocab) if vocab else None

    def check_prompt(self, prompt: str) -> None:
        """Raise :class:`UnknownWordError` when ``prompt`` has a word the tokenizer cannot represent."""
        unk = getattr(self.tokenizer, "unk_token_id", None)
        vocab = self.vocabulary
        unknown: list[str] = []
        if vocab is not None:
            known = set(vocab)
            unknown = list(dict.fromkeys(w for w in prompt_words(prompt) if w not in known))
        elif unk is not None and prompt:
            ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            if unk in ids:
                unknown = [w for w in prompt.split() if unk in self.tokenizer(w, add_special_tokens=False)["input_ids"]]
        if unknown:
            known_list = _shortened(sorted(vocab), 40) if vocab else "see the tokenizer"
            shown = prompt if len(prompt) <= 200 else prompt[:200] + "..."
            raise UnknownWordError(
                f"prompt {shown!r} uses word(s) {_shortened([repr(w) for w in unknown], 10)} that this prior does not know "
                f"(known words: {known_list}); rephrase, or pass --model with a prior that knows them"
            )

    def tokenize(self, prompts: Sequence[str]) -> Tensor:
        """``(N, L)`` token ids padded to the tokenizer's model length, on the prior's device.

        The one tokenization of the project (:func:`tokenize`): sampling, distillation,
        DreamBooth and the embedded prior's training all see prompts the same way.
        """
        return tokenize(self.tokenizer, prompts).to(self.device)

    def embed_tokens(self, token_ids: Tensor) -> Tensor:
        """``(N, L, D)`` text-encoder states of ``(N, L)`` token ids, with gradients (DreamBooth)."""
        return self.text_encoder(token_ids)[0]

    def clear_prompt_cache(self) -> None:
        """Forget cached prompt embeddings (after the text encoder changed)."""
        self._embedding_cache.clear()

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
        return self.encode_images_at(self.resize(images.to(self.device)), generator)

    def encode_images_at(self, images: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """:meth:`encode_images` at the images' own size (DreamBooth trains at its own resolution)."""
        x = images.to(self.device) * 2.0 - 1.0
        if self.vae is None:
            return x.float()
        dist = self.vae.encode(x.to(self.dtype)).latent_dist
        noise = torch.randn(dist.mean.shape, generator=generator, device=generator.device if generator else self.device,
                            dtype=torch.float32).to(self.device)
        latents = dist.mean.float() + dist.std.float() * noise
        return latents * self.scaling_factor

    def decode_latents(self, latents: Tensor, clamp: bool = True) -> Tensor:
        """Latents → ``(B, 3, H, W)`` images in ``[0, 1]`` (float32); ``clamp=False`` leaves the
        decoder's values outside ``[0, 1]`` as they are (for differences of two decodes)."""
        if self.vae is None:
            x = latents
        else:
            x = self.vae.decode((latents / self.scaling_factor).to(self.dtype)).sample
        x = x.float() / 2 + 0.5
        return x.clamp(0, 1) if clamp else x

    # ----------------------------------------------------------------- noise
    def predict_noise(self, x_t: Tensor, t: Tensor, embeddings: Union[Tensor, Conditioning]) -> Tensor:
        """One batched UNet forward; returns ε-prediction as float32 ``(N, C, h, w)``.

        ``embeddings``: ``(N, L, D)`` hidden states, or a :class:`Conditioning` whose ``"hidden"``
        entry is them and whose other entries go to the UNet as ``added_cond_kwargs`` (SDXL's
        ``text_embeds`` and ``time_ids``)."""
        self.unet_calls += 1
        extra = {}
        if isinstance(embeddings, Conditioning):
            rest = {k: v.to(self.device, self.dtype) for k, v in embeddings.tensors.items() if k != "hidden"}
            extra = {"added_cond_kwargs": rest} if rest else {}
            embeddings = embeddings.tensors["hidden"]
        out = self.unet(x_t.to(self.dtype), t.to(self.device), encoder_hidden_states=embeddings.to(self.dtype),
                        **extra).sample
        out = out.float()
        if not self._output_checked:
            self._check_first_output(x_t, embeddings, out)
        if self.prediction_type == "v_prediction":
            a = self._alphas_cumprod.to(self.device)[t.to(self.device)].reshape(-1, 1, 1, 1)
            out = maths.eps_from_v(out, x_t.float(), a)
        return out

    def _check_first_output(self, x_t: Tensor, embeddings: Tensor, out: Tensor) -> None:
        """Raise :class:`PriorError` when the UNet turns finite input into NaN/inf.

        Done once, on the first call with finite input (one reduction, one sync): a prior with
        NaN weights, or one overflowing its dtype, would otherwise run to the end and write a
        black result with exit status 0. Later calls are not checked; the distiller watches its
        own gradients.
        """
        with torch.no_grad():
            if not (bool(torch.isfinite(x_t).all()) and bool(torch.isfinite(embeddings).all())):
                return  # a NaN input is the caller's problem, not evidence against the weights
            self._output_checked = True
            if not bool(torch.isfinite(out).all()):
                raise PriorError(f"the prior's UNet predicts NaN or infinite values for finite input ({self.dtype}): "
                                 f"its weights are corrupt or overflow this dtype; re-download or retrain the model, "
                                 f"or load it in float32")

    @property
    def latent_channels(self) -> int:
        return int(self.unet.config.in_channels)

    def __repr__(self) -> str:
        space = "latent" if self.vae is not None else "pixel"
        name = self.metadata.name or "diffusers prior"
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


def _hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for no network access (read at call time: the hub
    library reads it only once, at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the model hub (``HF_ENDPOINT``, default huggingface.co) accepts a TCP connection
    within ``timeout`` seconds. The hub client would instead retry for half a minute and then
    report a missing ``config.json``."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    # name resolution has no timeout of its own: the probe runs in a thread we stop waiting for
    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    return bool(result and result[0])


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
    try:
        metadata = read_metadata(where) if local else PriorMetadata()
    except MetadataError as exc:
        raise PriorError(f"{exc}; fix or delete the file") from None
    src = str(where)
    dev = torch.device(device) if device is not None else default_device()
    dt = dtype or default_dtype(dev)
    # A folder never reaches for the hub; a hub id does only when the hub answers, so that an
    # offline machine fails in seconds with a message that says so (or loads from the cache).
    offline = local or _hub_offline() or not hub_reachable()
    hub = {"local_files_only": True} if offline else {}
    from diffusers.utils import is_accelerate_available

    # diffusers asks for low-memory loading by default and warns on every load without accelerate
    low_mem = {"low_cpu_mem_usage": is_accelerate_available()}
    try:
        unet = UNet2DConditionModel.from_pretrained(src, subfolder="unet", torch_dtype=dt, **low_mem, **hub)
        text_encoder = AutoModel.from_pretrained(src, subfolder="text_encoder", dtype=dt, **hub)
        tokenizer = AutoTokenizer.from_pretrained(src, subfolder="tokenizer", **hub)
        scheduler = DDIMScheduler.from_pretrained(src, subfolder="scheduler", **hub)
        vae = None
        if (where / "vae").is_dir() if local else True:
            try:
                vae = AutoencoderKL.from_pretrained(src, subfolder="vae", torch_dtype=dt, **low_mem, **hub)
            except OSError:
                if local:
                    raise  # a local vae/ folder that fails to load is corrupt, not absent
    except (OSError, ValueError, RuntimeError, TypeError, KeyError, IndexError, AttributeError) as exc:
        # RuntimeError & co.: a config that builds no network (negative channels, wrong types)
        if isinstance(exc, RuntimeError) and ("allocate" in str(exc) or "out of memory" in str(exc)):
            raise  # an exhausted machine, not a corrupt folder
        if not local and offline:
            why = "HF_HUB_OFFLINE is set" if _hub_offline() else "the model hub is unreachable from this machine"
            raise PriorError(f"could not load prior {src!r}: {why} and it is not in the local hub cache; "
                             f"download the model elsewhere and pass its folder (--model path/to/folder)") from exc
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        hint = "the folder is incomplete or corrupt" if local else "check the hub id"
        raise PriorError(f"could not load prior {src!r}: {first} ({hint})") from exc
    return DiffusersPrior(unet, text_encoder, tokenizer, scheduler, vae=vae, metadata=metadata, device=dev, dtype=dt)
