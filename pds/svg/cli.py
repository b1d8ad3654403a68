"""``pds-svg``: render SVGs and edit them with a diffusion prior from the command line.

Examples::

    pds-svg render icon.svg -o icon.png --size 256
    pds-svg info icon.svg
    pds-svg edit icon.svg --src "a red circle" --tgt "a blue circle" -o edited.svg --steps 200
    pds-svg edit cat.svg --src "a cat" --tgt "a dog" --model runwayml/stable-diffusion-v1-5 \\
        --style iconography --only head --optimize points,fill --video edit.gif

``edit`` writes the edited SVG (same document structure, optimised attributes rewritten) and a
PNG of it next to it (``edited.png``). Errors are one line on stderr with exit status 2; the
input is never overwritten and outputs are written atomically, so a failed run leaves nothing
behind. Ctrl-C during the optimisation writes the current result and exits with status 130.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import List, Optional, Sequence

import click

__all__ = ["STYLE_PRESETS", "cli", "main"]

#: Named style suffixes appended to both prompts. ``iconography`` is the PDS paper's SVG suffix.
STYLE_PRESETS = {
    "none": "",
    "iconography": ". minimal flat 2d vector image. lineal color. trending on artstation",
}

#: Exit status for every user error (bad input, bad option, unreadable model...).
EXIT_USAGE = 2
#: Exit status after Ctrl-C (the current result is still written by ``edit``).
EXIT_INTERRUPTED = 130


class CLIError(click.ClickException):
    """A user error: printed as one line, exit status 2."""

    exit_code = EXIT_USAGE


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


class _Group(click.Group):
    """A click group whose errors are one line on stderr (exit status 2) and never a traceback."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        from .parse import SVGError

        try:
            from ..prior import PriorError
        except ImportError:  # pragma: no cover - foundation missing
            PriorError = SVGError  # noqa: N806
        prog = "pds-svg"  # the console script name, whatever invoked us
        code = 0
        try:
            rv = super().main(args, prog, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except click.exceptions.Abort:
            click.echo(f"{prog}: interrupted", err=True)
            code = EXIT_INTERRUPTED
        except click.ClickException as e:
            click.echo(f"{prog}: error: {_one_line(e.format_message())}", err=True)
            code = EXIT_USAGE
        except (SVGError, PriorError) as e:
            click.echo(f"{prog}: error: {_one_line(e)}", err=True)
            code = EXIT_USAGE
        if standalone_mode:
            sys.exit(code)
        return code


def _echo_warnings(caught: Sequence[warnings.WarningMessage]) -> None:
    seen = set()
    for w in caught:
        msg = _one_line(w.message)
        if msg not in seen:
            seen.add(msg)
            click.echo(f"pds-svg: warning: {msg}", err=True)


def _load_scene(path: str, **kwargs):
    """Load an SVG, reporting parser warnings as one line each."""
    from .parse import SVGError
    from .scene import SVGScene

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            scene = SVGScene.load(Path(path), **kwargs)
        except ValueError as e:  # bad --only / --optimize
            if isinstance(e, SVGError):
                raise
            raise CLIError(str(e)) from None
    if not scene.items:
        skipped = ", ".join(scene.document.unsupported)
        raise CLIError(f"{path} has no drawable element (no visible path, rect, circle, ellipse, line, polyline "
                       f"or polygon)" + (f"; unsupported and skipped: {skipped}" if skipped else ""))
    _echo_warnings([w for w in caught if issubclass(w.category, UserWarning)])
    return scene


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _check_output(path: Path, inputs: Sequence[Path], what: str = "output") -> Path:
    """Refuse to overwrite an input and check that the folder exists and is writable."""
    for i in inputs:
        if _same_file(path, i):
            raise CLIError(f"{what} {path} is the input file; choose another name (the input is never overwritten)")
    if path.exists() and path.is_dir():
        raise CLIError(f"cannot write {what} {path}: it is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"cannot write {what} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"cannot write {what} {path}: folder {parent} is not writable")
    return path


def _write_atomic(path: Path, data, what: str) -> None:
    from .write import atomic_write

    try:
        atomic_write(path, data)
    except OSError as e:
        raise CLIError(f"cannot write {what} {path}: {e.strerror or e}") from None


def _png_bytes(image) -> bytes:
    """``(3, H, W)`` float tensor in ``[0, 1]`` → PNG bytes."""
    import imageio.v3 as iio
    import numpy as np

    arr = (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return iio.imwrite("<bytes>", arr, extension=".png")


def _to_uint8(image):
    import numpy as np

    if image.dim() == 4:
        image = image[0]
    return (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def _write_video(path: Path, frames: List, fps: float) -> None:
    """Write frames as GIF (Pillow) or MP4 (imageio-ffmpeg) through a temporary file + rename."""
    import imageio.v3 as iio

    suffix = path.suffix.lower()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=str(path.parent))
    os.close(fd)
    try:
        if suffix == ".gif":
            iio.imwrite(tmp, frames, extension=".gif", duration=1000.0 / fps, loop=0)
        else:
            iio.imwrite(tmp, frames, extension=suffix, fps=fps)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise CLIError(f"cannot write video {path}: {e.strerror or e}") from None
        raise


def _video_supported(path: Path) -> None:
    import importlib.util

    suffix = path.suffix.lower()
    if suffix == ".gif":
        if importlib.util.find_spec("PIL") is None:
            raise CLIError("writing a .gif needs Pillow (pip install pillow)")
        return
    if suffix in (".mp4", ".webm", ".mkv", ".mov", ".avi"):
        if importlib.util.find_spec("imageio_ffmpeg") is None:
            raise CLIError(f"writing {suffix} video needs the imageio-ffmpeg package (pip install imageio-ffmpeg); "
                           f"or use a .gif")
        return
    raise CLIError(f"unsupported video format {suffix or '(none)'} for {path}; use .gif or .mp4")


def resolve_style(style: str, prior) -> str:
    """The suffix for ``--style``: a preset name, ``auto``, or free text used verbatim.

    ``auto`` uses the prior's own ``style_suffix`` metadata when it has one, nothing for priors
    with a closed vocabulary (the embedded ones), and the ``iconography`` preset otherwise.
    """
    key = style.strip().lower()
    if key in STYLE_PRESETS:
        return STYLE_PRESETS[key]
    if key == "auto":
        meta = getattr(prior, "metadata", None) or {}
        if meta.get("style_suffix") is not None:
            return str(meta["style_suffix"])
        if getattr(prior, "vocabulary", None):
            return ""
        return STYLE_PRESETS["iconography"]
    return style


def _device(name: str):
    import torch

    if name == "auto":
        from ..prior import default_device

        return default_device()
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise CLIError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:1 or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CLIError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CLIError("--device mps was asked for but MPS is not available; use --device cpu")
    return dev


def _quiet_library_progress() -> None:
    """Silence transformers/diffusers weight-loading bars: our own bar reports the optimisation."""
    for module in ("transformers.utils.logging", "diffusers.utils.logging"):
        try:
            import importlib

            importlib.import_module(module).disable_progress_bar()
        except Exception:  # noqa: BLE001 - optional cosmetics
            pass


# ------------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------------

_SIZE = click.IntRange(min=1, max=8192)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Render SVGs and edit them with Posterior Distillation Sampling (PDS)."""


@cli.command()
@click.argument("input", type=click.Path(dir_okay=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="PNG to write (default: INPUT with .png).")
@click.option("--size", type=_SIZE, default=256, show_default=True, help="Longer side in pixels.")
@click.option("--samples", type=click.IntRange(1, 8), default=2, show_default=True,
              help="Sub-pixel grid per axis for the fill rule.")
def render(input: Path, output: Optional[Path], size: int, samples: int):
    """Render INPUT (an SVG file) to a PNG with the differentiable rasterizer."""
    import torch

    output = output if output is not None else input.with_suffix(".png")
    _check_output(output, [input])
    scene = _load_scene(str(input), samples=samples)
    with torch.no_grad():
        image = scene.render(size)
    _write_atomic(output, _png_bytes(image), "image")
    w, h = scene.canvas_size(size)
    click.echo(f"wrote {output} ({w}x{h})", err=True)


@cli.command()
@click.argument("input", type=click.Path(dir_okay=True, path_type=Path))
def info(input: Path):
    """List INPUT's size, painted elements, ids (for --only) and parameters."""
    scene = _load_scene(str(input))
    counts = {k: sum(t.numel() for t in v) for k, v in scene.all_parameters().items()}
    click.echo(f"{input}: {scene.width:g}x{scene.height:g} px, {len(scene.items)} painted shape(s)")
    click.echo("parameters: " + ", ".join(f"{k}={n}" for k, n in counts.items()))
    ids = scene.ids()
    click.echo("ids: " + (" ".join(ids) if ids else "(none)"))


def _parse_optimize(value: str) -> List[str]:
    from .scene import normalize_kinds

    try:
        return list(normalize_kinds(value))
    except ValueError as e:
        raise CLIError(f"--optimize: {e}") from None


@cli.command()
@click.argument("input", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--src", "src_prompt", required=True, help="Prompt describing the input.")
@click.option("--tgt", "tgt_prompt", required=True, help="Prompt describing the desired result.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Edited SVG to write; a PNG of it is written next to it.")
@click.option("--model", default="pds-tiny", show_default=True,
              help="Prior: embedded name, diffusers folder (e.g. a DreamBooth output) or hub id.")
@click.option("--method", type=click.Choice(["pds", "sds", "dds"]), default="pds", show_default=True)
@click.option("--steps", type=click.IntRange(min=0), default=None,
              help="Optimizer steps [default: the prior's edit_steps (300 for pds-tiny), else 1000 as the reference].")
@click.option("--guidance", type=float, default=100.0, show_default=True,
              help="Classifier-free guidance scale. On pds-tiny, 300 lets PDS finish edits that change most of "
                   "the picture (backgrounds); 100 keeps identity best otherwise.")
@click.option("--t-min", type=click.FloatRange(0, 1), default=0.1, show_default=True)
@click.option("--t-max", type=click.FloatRange(0, 1), default=0.98, show_default=True)
@click.option("--lr-points", type=click.FloatRange(min=0), default=None,
              help="Adam lr for geometry in user units [default: 0.8 px at 512 px].")
@click.option("--lr-color", type=click.FloatRange(min=0), default=None, help="Adam lr for colours [default: 0.01].")
@click.option("--lr-width", type=click.FloatRange(min=0), default=None, help="Adam lr for stroke widths.")
@click.option("--lr-opacity", type=click.FloatRange(min=0), default=None, help="Adam lr for opacities [0.01].")
@click.option("--optimize", "optimize", default="points,fill,stroke", show_default=True,
              help="Comma list of points, fill, stroke, width, opacity.")
@click.option("--only", multiple=True, metavar="ID",
              help="Edit only elements with this id (or inside a group with it); repeatable. Others are frozen.")
@click.option("--size", type=_SIZE, default=None,
              help="Render size while optimising [default: the prior's resolution].")
@click.option("--png-size", type=_SIZE, default=512, show_default=True, help="Size of the PNG written next to the SVG.")
@click.option("--style", default="auto", show_default=True,
              help="Suffix for both prompts: 'iconography', 'none', 'auto' or free text used as is.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--frames", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to save progress frames (PNG) into.")
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the optimisation as a .gif (or .mp4 with imageio-ffmpeg).")
@click.option("--frame-every", type=click.IntRange(min=1), default=None,
              help="Save a frame every N steps [default: about 100 frames].")
@click.option("--fps", type=click.FloatRange(min=0.1), default=20.0, show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def edit(input: Path, src_prompt: str, tgt_prompt: str, output: Path, model: str, method: str, steps: Optional[int],
         guidance: float, t_min: float, t_max: float, lr_points, lr_color, lr_width, lr_opacity, optimize: str,
         only: Sequence[str], size: Optional[int], png_size: int, style: str, seed: int, device: str,
         frames: Optional[Path], video: Optional[Path], frame_every: Optional[int], fps: float, quiet: bool):
    """Edit INPUT so that it matches --tgt, with a diffusion prior (PDS by default)."""
    import torch

    # ---- validate everything before any work or output --------------------------------------
    if not src_prompt.strip():
        raise CLIError("--src is empty; describe the input image")
    if not tgt_prompt.strip():
        raise CLIError("--tgt is empty; describe the result you want")
    if not t_min < t_max:
        raise CLIError(f"--t-min ({t_min}) must be smaller than --t-max ({t_max})")
    if output.suffix.lower() != ".svg":
        raise CLIError(f"output {output} must end with .svg (a PNG is written next to it)")
    png = output.with_suffix(".png")
    _check_output(output, [input])
    _check_output(png, [input], "image")
    if video is not None:
        _check_output(video, [input, output, png], "video")
        _video_supported(video)
    if frames is not None:
        if frames.exists() and not frames.is_dir():
            raise CLIError(f"--frames {frames} exists and is not a folder")
        parent = frames if frames.exists() else frames.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise CLIError(f"cannot create frames folder {frames}")
    kinds = _parse_optimize(optimize)
    dev = _device(device)
    scene = _load_scene(str(input), device=dev, only=list(only) or None, optimize=kinds)
    if not any(t.requires_grad for ts in scene.parameters().values() for t in ts):
        raise CLIError(f"nothing to optimise: the selection has no {', '.join(kinds)} parameters"
                       + (f" in elements {', '.join(only)}" if only else ""))

    import pds

    _quiet_library_progress()
    prior = pds.load_prior(model, device=dev)
    suffix = resolve_style(style, prior)
    src_full, tgt_full = src_prompt.strip() + suffix, tgt_prompt.strip() + suffix
    for p in (src_full, tgt_full):
        if hasattr(prior, "check_prompt"):
            prior.check_prompt(p)  # UnknownWordError → one-line error
    scene.render_size = int(size) if size is not None else int(getattr(prior, "resolution", 256))
    generator = torch.Generator(device="cpu").manual_seed(seed)
    try:
        distiller = pds.Distiller(prior, method=method, guidance_scale=guidance, t_range=(t_min, t_max),
                                  generator=generator)
    except ValueError as e:
        raise CLIError(str(e)) from None
    present = scene.parameters()
    rates = {"points": lr_points, "fill": lr_color, "stroke": lr_color, "stroke_width": lr_width,
             "opacity": lr_opacity}
    lr = {k: v for k, v in rates.items() if v is not None and k in present} or None

    if steps is None:
        steps = int(getattr(prior, "metadata", {}).get("edit_steps", 1000))

    # ---- optimise ---------------------------------------------------------------------------------
    every = frame_every or max(1, steps // 100)
    video_frames: List = []
    if frames is not None:
        frames.mkdir(parents=True, exist_ok=True)

    def keep(step: int, image) -> None:
        if video is not None:
            video_frames.append(_to_uint8(image))
        if frames is not None:
            img = image[0] if image.dim() == 4 else image
            _write_atomic(frames / f"frame_{step:05d}.png", _png_bytes(img), "frame")

    if frames is not None or video is not None:
        with torch.no_grad():
            keep(0, scene.render())

    def callback(step: int, images, loss: float) -> None:
        if (step + 1) % every == 0 or step + 1 == steps:
            with torch.no_grad():
                keep(step + 1, scene.render())

    result = distiller.optimize(scene, None, src_full, tgt_full, steps=steps, lr=lr, callback=callback,
                                progress=not quiet, generator=generator)

    # ---- write results (atomically) ------------------------------------------------------------
    _write_atomic(output, scene.to_svg(), "SVG")
    with torch.no_grad():
        image = scene.render(png_size)
    _write_atomic(png, _png_bytes(image), "image")
    if video is not None and video_frames:
        _write_video(video, video_frames, fps)
    last = f", final loss {result.losses[-1]:.4g}" if result.losses else ""
    written = ", ".join(str(p) for p in (output, png, video) if p is not None)
    if result.interrupted:
        click.echo(f"pds-svg: interrupted after {result.steps} step(s); wrote the current result to {written}",
                   err=True)
        return EXIT_INTERRUPTED
    click.echo(f"wrote {written} ({result.steps} steps in {result.seconds:.1f} s{last})", err=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console entry point ``pds-svg`` (``pds.svg.cli:main``)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="pds-svg")


if __name__ == "__main__":  # pragma: no cover
    main()
