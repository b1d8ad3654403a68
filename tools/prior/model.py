"""Component configs and builders of the embedded prior ``pds-tiny``.

The prior is a text-conditioned pixel-space diffusion model in Stable Diffusion's folder layout,
so that ``pds.load_prior`` loads it exactly like any diffusers model folder:

* ``unet/``: a diffusers ``UNet2DConditionModel`` on 64x64 RGB mapped to [-1, 1] (no VAE).
  Four resolutions (64, 32, 16, 8) with one ResNet layer per block; cross-attention to the text
  only at 16x16 and 8x8 (and in the mid block), where attention over the pixels is cheap.
  This keeps one forward of batch 4 (the PDS step: source/target x cond/uncond) to a few tens
  of milliseconds on two CPU cores.
* ``text_encoder/``: a tiny ``CLIPTextModel`` (causal transformer) trained from scratch with the
  UNet. Its causal mask makes each word's state independent of the padding after it, so the
  embedding does not depend on whether a caller passes an attention mask.
* ``tokenizer/``: a word-level ``BertTokenizerFast`` (lower case, ``vocab.txt`` = special tokens
  + :func:`tools.prior.data.vocabulary`); a word outside the vocabulary becomes ``[UNK]``.
  Prompts are padded to ``model_max_length`` (16) and encoded without attention mask.
* ``scheduler/``: ``DDPMScheduler``, 1000 steps, ``squaredcos_cap_v2`` betas, epsilon
  prediction. Why cosine: in pixel space at 64x64 the linear schedule drives alpha_bar to ~0
  by t ~ 600, so the top 40% of the timesteps -- which PDS/SDS sample uniformly -- are nearly
  pure noise and carry no signal; the cosine schedule (Nichol & Dhariwal 2021, designed for
  64x64 pixels) destroys information evenly across t. SD's "scaled_linear" would leave
  alpha_bar_T = 0.005, too much signal at T for pixels.
  ``timestep_spacing="trailing"``: samplers should start at t = 999. Even the cosine schedule
  leaves alpha_bar_980 = 1e-3, and the *mean colour* of a 64x64 image is 64x less noisy than a
  pixel (SNR ~2 at t = 980), so pure noise started at t = 980 reads as "a grey picture" and
  backgrounds come out grey (the signal leak of Lin et al. 2024); at t = 999 that SNR is 0.1.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Union

from . import data

TOKENIZER_MAX_LENGTH = 16


@dataclass(frozen=True)
class UNetConfig:
    """Shape of the denoiser (a diffusers ``UNet2DConditionModel``)."""

    block_out_channels: tuple[int, ...] = (16, 32, 64, 128)
    """Channels per resolution level (64, 32, 16, 8 px)."""
    down_block_types: tuple[str, ...] = ("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D")
    """Cross-attention only at the two coarsest levels (cheap on CPU)."""
    up_block_types: tuple[str, ...] = ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D")
    layers_per_block: int = 1
    """ResNet layers per down block (up blocks get one more, as in diffusers)."""
    attention_heads: int = 4
    """Number of attention heads (diffusers calls this ``attention_head_dim``)."""
    norm_num_groups: int = 8
    text_pool: bool = False
    """Add an attention-pooled text embedding to the timestep embedding (diffusers'
    ``addition_embed_type="text"``), so every ResNet block sees the caption as a global vector:
    colour is a global attribute of the picture, and cross-attention alone binds it weakly."""


@dataclass(frozen=True)
class TextEncoderConfig:
    """Shape of the text encoder (a transformers ``CLIPTextModel``)."""

    hidden_size: int = 128
    """Width; also the UNet's ``cross_attention_dim``."""
    num_hidden_layers: int = 3
    num_attention_heads: int = 4
    intermediate_size: int = 256


@dataclass(frozen=True)
class ModelConfig:
    """The whole prior's architecture."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    resolution: int = data.RESOLUTION


def token_list() -> list[str]:
    """``vocab.txt`` lines: BERT special tokens (ids 0..4) then the words."""
    return list(data.SPECIAL_TOKENS) + data.vocabulary()


def build_tokenizer(directory: Union[str, Path]):
    """Return the word-level ``BertTokenizerFast`` (also writing ``vocab.txt`` into ``directory``
    for reference); save it with ``save_pretrained`` to make the ``tokenizer/`` folder."""
    from transformers import BertTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(token_list()) + "\n")
    vocab = {tok: i for i, tok in enumerate(token_list())}
    return BertTokenizerFast(vocab=vocab, do_lower_case=True,
                             model_max_length=TOKENIZER_MAX_LENGTH, tokenize_chinese_chars=False,
                             strip_accents=True)


def build_text_encoder(cfg: TextEncoderConfig, vocab_size: int):
    """A randomly initialised ``CLIPTextModel`` for the word-level vocabulary."""
    from transformers import CLIPTextConfig, CLIPTextModel

    tokens = token_list()
    conf = CLIPTextConfig(vocab_size=vocab_size, hidden_size=cfg.hidden_size,
                          intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.num_hidden_layers,
                          num_attention_heads=cfg.num_attention_heads,
                          max_position_embeddings=TOKENIZER_MAX_LENGTH, projection_dim=cfg.hidden_size,
                          pad_token_id=tokens.index("[PAD]"), bos_token_id=tokens.index("[CLS]"),
                          eos_token_id=tokens.index("[SEP]"))
    return CLIPTextModel(conf)


def unet_kwargs(cfg: UNetConfig, cross_attention_dim: int, resolution: int, channels: int = 3) -> dict:
    """``UNet2DConditionModel`` arguments; ``resolution``/``channels`` are those of the space the
    UNet denoises (pixels, or the VAE's latents)."""
    extra = dict(addition_embed_type="text", addition_embed_type_num_heads=cfg.attention_heads) if cfg.text_pool else {}
    return dict(sample_size=resolution, in_channels=channels, out_channels=channels, **extra,
                down_block_types=tuple(cfg.down_block_types), up_block_types=tuple(cfg.up_block_types),
                block_out_channels=tuple(cfg.block_out_channels), layers_per_block=cfg.layers_per_block,
                cross_attention_dim=cross_attention_dim, attention_head_dim=cfg.attention_heads,
                norm_num_groups=cfg.norm_num_groups)


def build_unet(cfg: UNetConfig, cross_attention_dim: int, resolution: int = data.RESOLUTION, channels: int = 3):
    """A randomly initialised ``UNet2DConditionModel`` (``channels`` in and out: 3 in pixel space,
    the VAE's latent channels in latent space)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**unet_kwargs(cfg, cross_attention_dim, resolution, channels))


def build_scheduler(prediction_type: str = "epsilon", clip_sample: bool = True):
    """The training noise schedule (see module docstring for the choice of betas);
    ``clip_sample`` only for pixel space, where x0 lies in [-1, 1]."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                         prediction_type=prediction_type, clip_sample=clip_sample, clip_sample_range=1.0,
                         timestep_spacing="trailing")


def model_index(vae: bool = False) -> dict:
    import diffusers

    index = {"_class_name": "DiffusionPipeline", "_diffusers_version": diffusers.__version__,
             "scheduler": ["diffusers", "DDPMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "BertTokenizerFast"], "unet": ["diffusers", "UNet2DConditionModel"]}
    if vae:
        index["vae"] = ["diffusers", "AutoencoderKL"]
    return index


#: Version of the embedded prior ``pds-tiny``: 1 = the pixel-space epsilon model trained on a GPU;
#: 2 = the latent-space model trained on a 2-core CPU (benchmarks/results/prior_training/).
PRIOR_VERSION = 4


def prior_metadata(training: dict, name: str = "pds-tiny", *, latent: bool = True,
                   edit: Optional[dict] = None) -> dict:
    """Content of ``pds_prior.json`` (the schema is :class:`pds.priors.PriorMetadata`).

    ``edit``: the measured ``pds-svg edit`` defaults for this prior (see
    ``benchmarks/results/edit_quality_findings.md``); ``None`` keeps :data:`EDIT_DEFAULTS`.
    """
    space = "latent-space (f = 4 autoencoder, 16x16x4 latents)" if latent else "pixel-space"
    return {
        "name": name,
        "version": PRIOR_VERSION,
        "description": (f"Tiny {space} text-to-image diffusion prior trained from scratch on procedural "
                        "pictures: flat vector shapes (circle, square, triangle, star, heart, diamond) and "
                        "shaded balls, in palette colours on white or coloured backgrounds, 64x64. "
                        "Captions like 'a red circle', 'a blue star on a yellow background', 'a green ball'."),
        "resolution": data.RESOLUTION,
        "vocabulary": data.vocabulary(),
        "identifier_tokens": list(data.IDENTIFIER_TOKENS),
        "held_out": [list(p) for p in data.HELD_OUT],
        "colors": {k: data.color_hex(k) for k in data.COLOR_NAMES},
        "shapes": list(data.SHAPES),
        "caption_examples": ["a red circle", "a blue star on a yellow background", "a green ball",
                             "an orange heart on a white background", "a square"],
        "prompt_encoding": {"padding": "max_length", "max_length": TOKENIZER_MAX_LENGTH, "attention_mask": False},
        "edit": dict(EDIT_DEFAULTS if edit is None else edit),
        "sampling": {"guidance_scale": 7.5, "steps": 50},
        # DreamBooth defaults for this prior (examples/dreambooth/measure.py): the whole text encoder
        # at 5e-5 binds `sks` where the UNet alone or the `sks` embedding alone leak more into
        # "a ball", and a prior-preservation weight of 3 keeps the class.
        "dreambooth": {"learning_rate": 5e-5, "train_text_encoder": True, "prior_loss_weight": 3.0},
        "training": training,
    }


#: ``pds-svg edit`` defaults for the embedded prior. 300 steps keep a CPU edit under a minute.
#: Measured on benchmark edits (benchmarks/results/edit_quality_findings.md):
#: * points move 0.4 px per step at a 512-px render, half the reference's 0.8 (v2 at 1,600 steps:
#:   5 of 6 targets instead of 4, silhouettes kept at least as well; 0.2 px froze shape edits);
#: * the outline term at 0.015 (pds.svg.editing.outline_term) keeps a recoloured star's silhouette
#:   (IoU 0.29 -> 0.98) and is off when the prompts name different shapes (``shape_words``);
#: * guidance 25 instead of the reference's 100: the untouched background of a one-element edit
#:   moves 0.028 instead of 0.092 and the README's circle turns blue (#3d75cd) where guidance 50
#:   or 100 overshoot to cyan; Adam beta1 0.98 (``adam_beta1``) overshot colours too, so it stays 0.9;
#: * measured and left off (round 4 of the findings): ``vector_colours`` with guidance 50 and t from
#:   0.2 took recolour success from 0.71 to 0.92 but turned the README's circle cyan and lost a red->green
#:   element edit at every seed; ``gradient_space: "image"`` fixed the orange->blue triangle at
#:   2 of 3 seeds but lost background and element edits (0.78 of all runs against 0.82). Both
#:   miss for one reason, the autoencoder: it returns a +0.1 green step on a blue patch as
#:   +0.007 (benchmarks/vae_colour.py).
EDIT_DEFAULTS: dict = {"steps": 300, "guidance_scale": 25, "learning_rates": {"points": 0.4},
                       "shape_weight": 0.015, "shape_words": list(data.SHAPES)}


def config_to_json(cfg: ModelConfig) -> str:
    return json.dumps(asdict(cfg), indent=2)
