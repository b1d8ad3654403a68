"""What a diffusion prior must offer, in three layers.

* :class:`Prior` -- everything :class:`pds.Distiller`, :mod:`pds.sampling` and
  :class:`pds.views.MultiViewEditor` use. A third-party model needs only this.
* :class:`VocabularyPrior` -- a prior bound to a closed vocabulary and a metadata file
  (the embedded priors): the CLIs check prompts against it before any work starts.
* :class:`TrainablePrior` -- what DreamBooth fine-tuning needs on top: the networks, the one
  tokenization, and a way to drop cached prompt embeddings after the text encoder changed.

Conditioning is opaque to callers: :meth:`Prior.encode_prompt` returns whatever the prior wants
(a tensor for Stable Diffusion; :class:`Conditioning` when a model needs several tensors, such as
SDXL's pooled embeddings and time ids), and the distiller only hands it back to
:meth:`Prior.predict_noise`, batched in the order of the prompts it asked for. It never reads,
slices or concatenates its contents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor


@dataclass(frozen=True)
class Conditioning:
    """Several batch-first tensors that together condition one forward (for example
    ``{"hidden": (N, L, D), "pooled": (N, P)}``). Build it in ``encode_prompt``; read it in
    ``predict_noise``. :meth:`cat` and :meth:`select` batch it without knowing what it holds."""

    tensors: Mapping[str, Tensor]

    def __len__(self) -> int:
        return int(next(iter(self.tensors.values())).shape[0])

    @staticmethod
    def cat(parts: Sequence["Conditioning"]) -> "Conditioning":
        """Concatenate along the batch dimension (every part must hold the same keys)."""
        keys = list(parts[0].tensors)
        return Conditioning({k: torch.cat([p.tensors[k] for p in parts]) for k in keys})

    def select(self, index: Tensor) -> "Conditioning":
        """The rows ``index`` (an int64 tensor) of every tensor."""
        return Conditioning({k: v[index.to(v.device)] for k, v in self.tensors.items()})


@runtime_checkable
class Prior(Protocol):
    """What the distiller, the samplers and the multi-view editor need from a diffusion model.

    Attributes:
        scheduler: exposes ``alphas_cumprod`` and ``betas`` (``(T,)`` tensors) and
            ``config.num_train_timesteps`` (optionally ``config.steps_offset``,
            ``config.timestep_spacing``, ``config.clip_sample``); a diffusers scheduler does.
        resolution: side length in pixels of the images the prior works at; ``encode_images``
            resizes inputs so their short side matches it.
        latent_channels: channels ``C`` of the latents ``encode_images`` returns.
        vae_scale_factor: pixels per latent cell along a side (1 for pixel-space priors).
        device: where the prior computes; inputs are moved there.
    """

    scheduler: Any
    resolution: int
    latent_channels: int
    vae_scale_factor: int
    device: torch.device

    def encode_prompt(self, prompts: Sequence[str]) -> Any:
        """``N`` prompts (``""`` = unconditional) -> conditioning for ``N`` samples, opaque to callers."""

    def encode_images(self, images: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """``(B, 3, H, W)`` images in ``[0, 1]`` -> float32 latents ``(B, C, h, w)``; differentiable.
        ``generator`` drives any sampling inside (a VAE posterior sample); it may be ignored."""

    def decode_latents(self, latents: Tensor, clamp: bool = True) -> Tensor:
        """Latents ``(B, C, h, w)`` -> ``(B, 3, H, W)`` float32 images in ``[0, 1]``; with
        ``clamp=False`` the decoder's values are not clipped (a prior with a ``vae`` must accept it:
        ``Distiller(gradient_space="image")`` differences two decodes)."""

    def predict_noise(self, x_t: Tensor, t: Tensor, conditioning: Any) -> Tensor:
        """Float32 ε-prediction ``(N, C, h, w)`` for ``x_t`` at int64 timesteps ``t`` ``(N,)`` with the
        conditioning of ``N`` prompts (as returned by :meth:`encode_prompt`)."""


@runtime_checkable
class VocabularyPrior(Prior, Protocol):
    """A prior that declares the words it knows and carries typed metadata (``pds_prior.json``).

    Attributes:
        metadata: a :class:`pds.priors.metadata.PriorMetadata`.
        vocabulary: the known words, or ``None`` when the vocabulary is open (Stable Diffusion).
    """

    metadata: Any
    vocabulary: Optional[list[str]]

    def check_prompt(self, prompt: str) -> None:
        """Raise :class:`pds.priors.UnknownWordError` (one line: the words, the known words, the fix)
        when ``prompt`` cannot be represented."""


@runtime_checkable
class TrainablePrior(VocabularyPrior, Protocol):
    """What DreamBooth fine-tuning uses on top of :class:`VocabularyPrior`.

    Attributes:
        unet: the denoiser (a diffusers ``UNet2DConditionModel``), trained in place.
        text_encoder: trained in place when asked.
        tokenizer: saved with the fine-tune.
        vae: the autoencoder, or ``None`` for pixel-space priors.
        dtype: the networks' dtype.
    """

    unet: Any
    text_encoder: Any
    tokenizer: Any
    vae: Any
    dtype: torch.dtype

    def tokenize(self, prompts: Sequence[str]) -> Tensor:
        """``(N, L)`` token ids, the one tokenization of the project."""

    def embed_tokens(self, token_ids: Tensor) -> Any:
        """Conditioning from token ids WITH gradients (for training the text encoder)."""

    def encode_images_at(self, images: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Like ``encode_images`` but at the images' own size (no resize to :attr:`resolution`)."""

    def clear_prompt_cache(self) -> None:
        """Forget cached prompt embeddings (call after changing the text encoder)."""
