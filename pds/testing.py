"""Tiny randomly initialised priors for tests and examples that must run offline.

:func:`save_tiny_prior` writes a complete diffusers-layout folder (the same layout as Stable
Diffusion) with networks small enough to run in milliseconds on a CPU, the way diffusers' own
fast tests do. The outputs are noise, but every code path (tokenizer, text encoder, UNet with
cross-attention, optional VAE, scheduler config) is the real one, so loading and distillation
can be tested without weights from a hub.

:func:`peak_anon_memory` measures the peak memory of a snippet in a fresh process.

:func:`feature_cases` reads the SVG feature corpus (``tests/data/svg/features/<feature>/<variant>.svg``)
and :func:`resvg_psnr` is the one comparison of our render with resvg's (``resvg-py``) that its
test and ``benchmarks/svg_coverage.py`` use.
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


# ---------------------------------------------------------------------------------------------
# The SVG feature corpus (tests/data/svg/features/<feature>/<variant>.svg) against resvg
# ---------------------------------------------------------------------------------------------

#: Side length (longer side, pixels) a feature case is compared at, unless its file says ``@size``.
FEATURE_SIZE = 256
#: The PSNR (dB, RGB over white) every feature case must reach against resvg.
MIN_FEATURE_PSNR = 30.0
#: Fonts resvg is given for the generic families: the ones :mod:`pds.svg.text` maps them to, so
#: text cases differ in layout and rasterization only.
RESVG_FONTS = dict(font_family="DejaVu Serif", serif_family="DejaVu Serif", sans_serif_family="DejaVu Sans",
                   monospace_family="DejaVu Sans Mono")
#: The document wrapper the feature cases were written in: a 100 × 100 user-unit canvas.
SVG_HEADER = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" '
              'height="100" viewBox="0 0 100 100">')


def svg_document(body: str) -> str:
    """``body`` inside :data:`SVG_HEADER` (a 100 × 100 document)."""
    return SVG_HEADER + body + "</svg>"


class FeatureCase:
    """One file of the feature corpus: ``<root>/<feature>/<variant>.svg``.

    The file opens with an XML comment saying what it exercises. Lines of that comment may set:

    * ``@size N``: compare at ``N`` px instead of :data:`FEATURE_SIZE` (the rest of the line says why);
    * ``@warns TEXT``: loading must give an :class:`~pds.svg.SVGFeatureWarning` containing ``TEXT``
      (any other feature warning, or none, fails).

    A sibling ``<variant>.resvg.svg`` is what resvg renders instead of the case itself, where resvg
    departs from the specification and the same picture must be spelled the way it supports.
    """

    def __init__(self, path: Union[str, Path]):
        import re

        self.path = Path(path)
        self.feature = self.path.parent.name
        self.variant = self.path.name[: -len(".svg")]
        self.text = self.path.read_text(encoding="utf-8")
        ref = self.path.with_name(self.variant + ".resvg.svg")
        self.reference = ref.read_text(encoding="utf-8") if ref.is_file() else self.text
        head = re.match(r"\s*<!--(.*?)-->", self.text, re.S)
        self.description = head.group(1).strip() if head else ""
        directives = dict(re.findall(r"^\s*@(\w+)\s+(.*?)\s*$", self.description, re.M))
        self.size = int(directives["size"].split()[0]) if "size" in directives else FEATURE_SIZE
        self.warns = directives.get("warns")

    @property
    def name(self) -> str:
        """``feature/variant``, the test id."""
        return f"{self.feature}/{self.variant}"

    @property
    def has_text(self) -> bool:
        """Whether the case draws ``<text>`` (needs the DejaVu fonts installed)."""
        return "<text" in self.text

    def __repr__(self) -> str:
        return f"FeatureCase({self.name!r})"


def feature_cases(root: Union[str, Path]) -> list:
    """Every :class:`FeatureCase` under ``root`` (``<feature>/<variant>.svg``, sorted; reference
    files ``*.resvg.svg`` are not cases)."""
    return [FeatureCase(p) for p in sorted(Path(root).glob("*/*.svg")) if not p.name.endswith(".resvg.svg")]


def psnr(a, b) -> float:
    """PSNR (dB) of two arrays of values in [0, 1]; 100 for identical arrays."""
    import numpy as np

    mse = float(((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2).mean())
    return 100.0 if mse == 0 else 10.0 * float(np.log10(1.0 / mse))


def render_svg(text: str, size: int = FEATURE_SIZE, *, warns: Union[str, None] = None, **load_kw):
    """Our render of an SVG document as an ``(H, W, 3)`` float64 array over white.

    A :class:`~pds.svg.SVGFeatureWarning` while loading is an error (``AssertionError``) unless
    ``warns`` is given, in which case exactly the warnings containing ``warns`` are expected (at
    least one). Other warnings pass through.
    """
    import warnings

    import torch

    from pds.svg import SVGFeatureWarning, SVGScene

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SVGFeatureWarning)
        scene = SVGScene.load(text, **load_kw)
    feature = [str(w.message) for w in caught if issubclass(w.category, SVGFeatureWarning)]
    for w in caught:
        if not issubclass(w.category, SVGFeatureWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    unexpected = [m for m in feature if warns is None or warns not in m]
    if unexpected:
        raise AssertionError(f"unexpected SVGFeatureWarning: {unexpected}")
    if warns is not None and not feature:
        raise AssertionError(f"expected an SVGFeatureWarning containing {warns!r}, got none")
    with torch.no_grad():
        return scene.render(size).permute(1, 2, 0).double().numpy()


def resvg_render(text: str, width: int, height: int, **fonts):
    """resvg's (``resvg-py``) render of an SVG document as an ``(H, W, 3)`` float64 array over white.

    Rendered over transparent and composited over white here (resvg's ``background`` fills the
    canvas first, which would make blend modes blend with white instead of with nothing), with
    ``languages=["en"]`` (resvg's command-line default) and :data:`RESVG_FONTS` unless ``fonts``
    overrides them.
    """
    import io

    import imageio.v3 as iio
    import numpy as np
    import resvg_py

    png = resvg_py.svg_to_bytes(svg_string=text, width=int(width), height=int(height), languages=["en"],
                                **{**RESVG_FONTS, **fonts})
    img = iio.imread(io.BytesIO(bytes(png))).astype(np.float64) / 255.0
    if img.shape[-1] == 3:
        return img
    return img[..., :3] * img[..., 3:] + (1.0 - img[..., 3:])


def resvg_psnr(case: Union[FeatureCase, str], size: Union[int, None] = None, *, reference: Union[str, None] = None,
               warns: Union[str, None] = None) -> float:
    """PSNR (dB) of our render against resvg's: the one comparison every feature case goes through.

    Args:
        case: a :class:`FeatureCase` (its size, reference and expected warning are used), or an
            SVG document.
        size: longer side in pixels (default: the case's, else :data:`FEATURE_SIZE`).
        reference: what resvg renders (default: the case's reference, else ``case`` itself).
        warns: the expected feature warning (see :func:`render_svg`; default: the case's).
    """
    if isinstance(case, FeatureCase):
        text = case.text
        size = case.size if size is None else size
        reference = case.reference if reference is None else reference
        warns = case.warns if warns is None else warns
    else:
        text = case
    size = FEATURE_SIZE if size is None else size
    ours = render_svg(text, size, warns=warns)
    return psnr(ours, resvg_render(text if reference is None else reference, ours.shape[1], ours.shape[0]))


_DEJAVU: list = []


def dejavu_installed() -> bool:
    """Whether the DejaVu fonts the text cases are drawn with are installed (``fonts-dejavu-core``)."""
    if not _DEJAVU:
        import warnings

        try:
            from pds.svg import SVGScene

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                SVGScene.load(svg_document("".join(f'<text font-family="{f}">x</text>' for f in
                                                   ("DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono"))))
            _DEJAVU.append(not any("not installed" in str(w.message) for w in caught))
        except Exception:  # pragma: no cover - no fontTools
            _DEJAVU.append(False)
    return _DEJAVU[0]
