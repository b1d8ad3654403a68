"""Tiny randomly initialised priors for tests and examples that must run offline.

:func:`save_tiny_prior` writes a complete diffusers-layout folder (the same layout as Stable
Diffusion) with networks small enough to run in milliseconds on a CPU, the way diffusers' own
fast tests do. The outputs are noise, but every code path (tokenizer, text encoder, UNet with
cross-attention, optional VAE, scheduler config) is the real one, so loading and distillation
can be tested without weights from a hub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Union

import torch

TINY_WORDS = ["a", "an", "red", "blue", "green", "circle", "square", "star", "photo", "of", "on", "background",
              "sks", "man", "dog", "ball", "yellow", "white"]


def _bert_parts(out: Path):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tok_dir = out / "tokenizer"
    tok_dir.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS]
    (tok_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(str(tok_dir / "vocab.txt"), do_lower_case=True, model_max_length=8)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=16)
    return tokenizer, BertModel(config), 32


def _clip_parts(out: Path):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tok_dir = out / "tokenizer"
    tok_dir.mkdir(parents=True, exist_ok=True)
    # A byte-level BPE with no merges: every word splits into characters, which is enough to
    # exercise CLIP's tokenizer and text model exactly as Stable Diffusion uses them.
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,'-!")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=16)
    config = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                            num_attention_heads=2, max_position_embeddings=16, bos_token_id=0, eos_token_id=1,
                            pad_token_id=1)
    return tokenizer, CLIPTextModel(config), 32


def save_tiny_prior(path: Union[str, Path], latent: bool = False, resolution: int = 32, seed: int = 0,
                    vocabulary: bool = True) -> Path:
    """Write a tiny random text-to-image prior in diffusers layout.

    Args:
        path: output folder (created).
        latent: ``False`` for a pixel-space prior (no ``vae/``, BERT word tokenizer with a closed
            vocabulary); ``True`` for a Stable-Diffusion-like latent prior (tiny ``AutoencoderKL``
            with downsampling 2, CLIP tokenizer and text model).
        resolution: image side length in pixels.
        seed: ``torch.manual_seed`` for the initialisation.
        vocabulary: for pixel priors, also write ``pds_prior.json`` with the word list.

    Returns:
        The folder path.
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer, text_encoder, dim = (_clip_parts if latent else _bert_parts)(out)
    sample = resolution // 2 if latent else resolution
    channels = 4 if latent else 3
    unet = UNet2DConditionModel(
        sample_size=sample, in_channels=channels, out_channels=channels, layers_per_block=1,
        block_out_channels=(16, 32), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=dim, attention_head_dim=8,
        norm_num_groups=8,
    )
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, steps_offset=1)
    unet.save_pretrained(out / "unet")
    text_encoder.save_pretrained(out / "text_encoder")
    tokenizer.save_pretrained(out / "tokenizer")
    scheduler.save_pretrained(out / "scheduler")
    index = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "text_encoder": ["transformers", type(text_encoder).__name__],
             "tokenizer": ["transformers", type(tokenizer).__name__],
             "scheduler": ["diffusers", "DDPMScheduler"]}
    if latent:
        vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16), latent_channels=4,
                            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=8,
                            sample_size=resolution)
        vae.save_pretrained(out / "vae")
        index["vae"] = ["diffusers", "AutoencoderKL"]
    elif vocabulary:
        (out / "pds_prior.json").write_text(json.dumps({"name": "tiny-test", "resolution": resolution,
                                                        "vocabulary": TINY_WORDS, "identifier_tokens": ["sks"]}))
    (out / "model_index.json").write_text(json.dumps(index, indent=2))
    return out


_PEAK_HARNESS = """
import sys, threading, time, torch
sys.path[:0] = {paths!r}
torch.set_num_threads({threads})
{setup}


def _anon():  # resident anonymous memory (bytes): heap and tensors, not shared-library pages
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024


_before, _peak, _done = _anon(), [0], threading.Event()


def _poll():
    while not _done.is_set():
        _peak[0] = max(_peak[0], _anon())
        time.sleep(0.001)


_thread = threading.Thread(target=_poll)
_thread.start()
{run}
_done.set()
_thread.join()
print(max(_peak[0], _anon()) - _before)
"""


def peak_anon_memory(setup: str, run: str, *, paths=(), threads: int = 1, timeout: float = 600,
                     cwd: Union[str, Path, None] = None) -> int:
    """Peak growth (bytes) of resident anonymous memory while ``run`` executes.

    Both snippets run in a fresh Python process (so earlier allocations of the caller do not
    hide the peak): ``setup`` first (imports, building inputs; not counted), then ``run`` while a
    thread samples ``RssAnon`` from ``/proc/self/status`` every millisecond. Linux only.

    Args:
        setup, run: Python source, top-level statements.
        paths: folders put in front of ``sys.path`` (e.g. a benchmark's own folder).
        threads: ``torch.set_num_threads`` in the child (default 1).
        timeout: seconds before the child is killed (default 600).
        cwd: working directory of the child.

    Raises:
        RuntimeError: the child failed (its stderr is in the message).
    """
    import subprocess
    import sys

    code = _PEAK_HARNESS.format(paths=[str(p) for p in paths], threads=int(threads), setup=setup, run=run)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                         cwd=None if cwd is None else str(cwd))
    if out.returncode != 0:
        raise RuntimeError(f"peak-memory child failed:\n{out.stderr[-3000:]}")
    return int(out.stdout.strip().splitlines()[-1])
