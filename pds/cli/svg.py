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

if __name__ == "__main__":  # python -m pds.cli.svg: Ctrl-C exits 130 from here on (pds.entry)
    from pds.entry import guard

    guard("pds-svg")

import os
import re
import sys
import warnings
from pathlib import Path
from typing import List, Optional, Sequence

import click

from .. import methods
from . import EXIT_INTERRUPTED, SEED, CLIError, FiniteFloat, one_line, parse_device, quiet_libraries, run
from ..svg.editing import DEFAULT_GUIDANCE, DEFAULT_STEPS, DEFAULT_T_RANGE
from ..util.images import png_bytes, to_uint8

__all__ = ["STYLE_PRESETS", "cli", "main"]

#: Named style suffixes appended to both prompts. ``iconography`` is the PDS paper's SVG suffix.
STYLE_PRESETS = {
    "none": "",
    "iconography": ". minimal flat 2d vector image. lineal color. trending on artstation",
}

class _Group(click.Group):
    """A click group behind the package's error boundary (:func:`pds.cli.run`): errors are one
    line on stderr (exit status 2), never a traceback."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        prog = "pds-svg"  # the console script name, whatever invoked us
        code = run(prog, lambda: super(_Group, self).main(args, prog, complete_var, standalone_mode=False, **extra),
                   release=False)
        if standalone_mode:
            sys.exit(code)
        return code


def _echo_warnings(caught: Sequence[warnings.WarningMessage]) -> None:
    seen = set()
    for w in caught:
        msg = one_line(w.message)
        if msg not in seen:
            seen.add(msg)
            click.echo(f"pds-svg: warning: {msg}", err=True)


def _load_scene(path: str, **kwargs):
    """Load an SVG, reporting parser warnings as one line each."""
    from ..svg.parse import SVGError
    from ..svg.scene import SVGScene

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
    """Refuse to overwrite an input or a special file (a device, a FIFO: it would be replaced by
    a regular file) and check that the folder exists and is writable, before any work starts."""
    from ..util.files import OutputError, check_replaceable

    for i in inputs:
        if _same_file(path, i):
            raise CLIError(f"{what} {path} is the input file; choose another name (the input is never overwritten)")
    if path.exists() and path.is_dir():
        raise CLIError(f"cannot write {what} {path}: it is a directory")
    try:
        check_replaceable(path)
    except OutputError as e:
        raise CLIError(f"{what}: {e}") from None
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"cannot write {what} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"cannot write {what} {path}: folder {parent} is not writable")
    return path


#: Names of progress frames (``frame_00012.png``), as ``edit`` writes them.
_FRAME_NAME = re.compile(r"frame_\d{5,}\.png")


def _check_frames(folder: Path, others: Sequence[Path]) -> None:
    """Refuse a ``--frames`` folder where a frame would replace the input, another output or a
    special file (frames are written while the edit runs, one file per saved step)."""
    from ..util.files import OutputError, check_replaceable

    if folder.exists() and not folder.is_dir():
        raise CLIError(f"--frames {folder} exists and is not a folder")
    parent = folder if folder.exists() else folder.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"cannot create frames folder {folder}")
    where = folder.resolve()
    for other in others:
        for candidate in {other, other.resolve()}:  # a symlink into the folder counts too
            if candidate.parent.resolve() == where and _FRAME_NAME.fullmatch(candidate.name):
                raise CLIError(f"--frames {folder} would overwrite {other} (frames are named frame_NNNNN.png); "
                               f"choose another folder")
    if folder.is_dir():
        for entry in folder.iterdir():
            if _FRAME_NAME.fullmatch(entry.name):
                try:
                    check_replaceable(entry)
                except OutputError as e:
                    raise CLIError(f"--frames: {e}") from None


def _write_atomic(path: Path, data, what: str) -> None:
    from ..util.files import OutputError, atomic_write

    try:
        atomic_write(path, data)
    except OutputError as e:  # already names the path and the reason
        raise CLIError(str(e)) from None
    except OSError as e:
        raise CLIError(f"cannot write {what} {path}: {e.strerror or e}") from None


def _write_video(path: Path, frames: List, fps: float) -> None:
    """Write uint8 frames as GIF (Pillow) or MP4 (imageio-ffmpeg), atomically."""
    import imageio.v3 as iio

    from ..util.files import OutputError, atomic_write_with

    suffix = path.suffix.lower()

    def write(tmp: str) -> None:
        if suffix == ".gif":
            iio.imwrite(tmp, frames, extension=".gif", duration=1000.0 / fps, loop=0)
        else:
            iio.imwrite(tmp, frames, extension=suffix, fps=fps)

    try:
        atomic_write_with(path, write, suffix=suffix)
    except OutputError as e:
        raise CLIError(str(e)) from None
    except OSError as e:
        raise CLIError(f"cannot write video {path}: {e.strerror or e}") from None


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
        from ..priors import metadata_of

        suffix = metadata_of(prior).style_suffix
        if suffix is not None:
            return suffix
        if getattr(prior, "vocabulary", None):
            return ""
        return STYLE_PRESETS["iconography"]
    return style


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
    _write_atomic(output, png_bytes(image), "image")
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


def _check_render_memory(scene, size: int, device) -> None:
    """Refuse a render size whose differentiable render would not fit in the free memory of
    ``device`` (an estimate, :func:`pds.util.memory.render_bytes`), before the model loads."""
    from ..util import memory

    w, h = scene.canvas_size(size)
    need = memory.render_bytes(w, h, scene.samples)
    free = memory.available_bytes(device)
    if free is not None and need > free:
        raise CLIError(f"--size {size} needs about {need / 2**30:.1f} GiB to optimise ({w}x{h} px) but "
                       f"{free / 2**30:.1f} GiB is free on {device}; pass a smaller --size")


def _check_visible(scene) -> None:
    """Refuse an edit whose optimised elements draw nothing on the canvas (all outside it, or
    degenerate: the loss would not depend on them), or whose render has non-finite gradients
    (geometry at the edge of floating point, e.g. a 1e-300 viewBox: the first step would turn
    every coordinate into NaN). One forward and backward pass, before the optimisation."""
    import torch

    image = scene.render_rgba()
    if not image.requires_grad:
        raise CLIError("nothing to optimise: the selected elements draw nothing on the canvas (outside the "
                       "viewBox, zero-sized or with coordinates too large); check the file or --only")
    leaves = [t for ts in scene.parameters().values() for t in ts if t.requires_grad]
    grads = torch.autograd.grad(image.sum(), leaves, allow_unused=True)  # leaves' .grad stay untouched
    if any(g is not None and not bool(torch.isfinite(g).all()) for g in grads):
        raise CLIError("cannot optimise this file: its gradients overflow (coordinates or a viewBox at the edge of "
                       "floating point, such as 1e-300 or 1e300); rescale the drawing to ordinary numbers")


def _parse_optimize(value: str) -> List[str]:
    from ..svg.scene import normalize_kinds

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
@click.option("--method", type=click.Choice(list(methods.names())), default=methods.names()[0], show_default=True,
              help=methods.help_text())
@click.option("--steps", type=click.IntRange(min=0), default=None,
              help=f"Optimizer steps [default: the prior's edit.steps, else {DEFAULT_STEPS} as the reference].")
@click.option("--guidance", type=FiniteFloat(), default=None,
              help=f"Classifier-free guidance scale [default: the prior's edit.guidance_scale, else {DEFAULT_GUIDANCE:g} "
                   f"as the reference].")
@click.option("--t-min", type=click.FloatRange(0, 1), default=None,
              help=f"Lowest timestep, a fraction of the schedule [default: the prior's edit.t_min, else {DEFAULT_T_RANGE[0]:g}].")
@click.option("--t-max", type=click.FloatRange(0, 1), default=None,
              help=f"Highest timestep [default: the prior's edit.t_max, else {DEFAULT_T_RANGE[1]:g}].")
@click.option("--lr-points", type=FiniteFloat(min=0), default=None,
              help="Adam lr for geometry in user units [default: 0.8 px at 512 px].")
@click.option("--lr-color", type=FiniteFloat(min=0), default=None, help="Adam lr for colours [default: 0.01].")
@click.option("--lr-width", type=FiniteFloat(min=0), default=None, help="Adam lr for stroke widths.")
@click.option("--lr-opacity", type=FiniteFloat(min=0), default=None, help="Adam lr for opacities [0.01].")
@click.option("--samples-per-step", type=click.IntRange(1, 64), default=None,
              help="Noise samples averaged per step: less random walk of the geometry, more time per step "
                   "[default: the prior's edit.samples_per_step, else 1].")
@click.option("--shape-weight", type=FiniteFloat(min=0), default=None,
              help="Weight of the term keeping each outline's local shape (0: off; higher keeps silhouettes, "
                   "lower lets shapes change) [default: the prior's edit.shape_weight, else 0].")
@click.option("--guidance-interval", type=(FiniteFloat(min=0, max=1), FiniteFloat(min=0, max=1)), default=None,
              metavar="LO HI",
              help="Apply guidance only at timesteps LO <= t <= HI (fractions of the schedule), the conditional "
                   "prediction alone elsewhere [default: everywhere; the prior's edit.page_guidance_interval when "
                   "--src and --tgt differ only in the background].")
@click.option("--position-weight", type=FiniteFloat(min=0), default=None,
              help="Weight of the spring keeping each outline's centroid in place (0: off; off by default when "
                   "--src and --tgt name different shapes) [default: the prior's edit.position_weight, else 0].")
@click.option("--background", "background", type=click.Choice(["auto", "keep", "free"]), default="auto",
              show_default=True,
              help="The background shape (one covering the canvas, at the bottom): 'keep' it as it is, 'free' "
                   "to edit it too, 'auto' keeps it unless --src and --tgt describe the background differently, "
                   "and edits only it when that is all they differ in.")
@click.option("--optimize", "optimize", default="points,fill,stroke", show_default=True,
              help="Comma list of points, fill, stroke, width, opacity.")
@click.option("--only", multiple=True, metavar="ID",
              help="Edit only elements with this id (or inside a group with it); repeatable. Others are frozen.")
@click.option("--size", type=_SIZE, default=None,
              help="Render size while optimising [default: the prior's resolution].")
@click.option("--png-size", type=_SIZE, default=512, show_default=True, help="Size of the PNG written next to the SVG.")
@click.option("--style", default="auto", show_default=True,
              help="Suffix for both prompts: 'iconography', 'none', 'auto' or free text used as is.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--frames", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to save progress frames (PNG) into.")
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the optimisation as a .gif (or .mp4 with imageio-ffmpeg).")
@click.option("--frame-every", type=click.IntRange(min=1), default=None,
              help="Save a frame every N steps [default: about 100 frames].")
@click.option("--fps", type=FiniteFloat(min=0.1, max=1000), default=20.0, show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def edit(input: Path, src_prompt: str, tgt_prompt: str, output: Path, model: str, method: str, steps: Optional[int],
         guidance: Optional[float], t_min: Optional[float], t_max: Optional[float], lr_points, lr_color, lr_width, lr_opacity,
         samples_per_step: Optional[int], shape_weight: Optional[float], guidance_interval, position_weight: Optional[float],
         background: str, optimize: str,
         only: Sequence[str], size: Optional[int], png_size: int, style: str, seed: int, device: str,
         frames: Optional[Path], video: Optional[Path], frame_every: Optional[int], fps: float, quiet: bool):
    """Edit INPUT so that it matches --tgt, with a diffusion prior (PDS by default)."""
    import torch

    # ---- validate everything before any work or output --------------------------------------
    if not src_prompt.strip():
        raise CLIError("--src is empty; describe the input image")
    if not tgt_prompt.strip():
        raise CLIError("--tgt is empty; describe the result you want")
    if t_min is not None and t_max is not None and not t_min < t_max:
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
        _check_frames(frames, [p for p in (input, output, png, video) if p is not None])
    kinds = _parse_optimize(optimize)
    dev = parse_device(device)
    scene = _load_scene(str(input), device=dev, only=list(only) or None, optimize=kinds)
    if not any(t.requires_grad for ts in scene.parameters().values() for t in ts):
        raise CLIError(f"nothing to optimise: the selection has no {', '.join(kinds)} parameters"
                       + (f" in elements {', '.join(only)}" if only else ""))
    if size is not None:
        _check_render_memory(scene, size, dev)

    import pds

    quiet_libraries()
    prior = pds.load_prior(model, device=dev)
    suffix = resolve_style(style, prior)
    src_full, tgt_full = src_prompt.strip() + suffix, tgt_prompt.strip() + suffix
    for p in (src_full, tgt_full):
        if hasattr(prior, "check_prompt"):
            prior.check_prompt(p)  # UnknownWordError → one-line error
    scene.render_size = int(size) if size is not None else int(getattr(prior, "resolution", 256))
    if size is None:
        _check_render_memory(scene, scene.render_size, dev)
    _check_visible(scene)
    from ..svg.editing import background_items, edit_scene, kept_background, kept_foreground, resolve_settings

    present = scene.parameters()
    rates = {"points": lr_points, "fill": lr_color, "stroke": lr_color, "stroke_width": lr_width,
             "opacity": lr_opacity}
    try:
        settings = resolve_settings(prior, method=method, steps=steps, guidance=guidance, t_min=t_min, t_max=t_max,
                                    learning_rates={k: v for k, v in rates.items() if v is not None and k in present},
                                    kinds=kinds, samples_per_step=samples_per_step,
                                    shape_weight=shape_weight, position_weight=position_weight,
                                    prompts=(src_full, tgt_full), background=background,
                                    guidance_interval=guidance_interval, seed=seed)
        pds.Distiller(prior, method=method, guidance_scale=settings.guidance_scale, t_range=settings.t_range,
                      guidance_interval=settings.guidance_interval)
    except ValueError as e:  # bad values the option types let through (a NaN guidance, say)
        raise CLIError(str(e)) from None
    steps = settings.steps
    def names(indices) -> str:
        return ", ".join(repr(scene.items[i].id) if scene.items[i].id else f"<{scene.items[i].element.tag.split('}')[-1]}>"
                         for i in indices)

    kept = kept_background(scene) if settings.keep_background else []
    if kept and not quiet:
        click.echo(f"pds-svg: keeping the background ({names(kept)}) as it is: the prompts do not change it "
                   f"(--background free edits it)", err=True)
    if settings.keep_foreground and kept_foreground(scene) and not quiet:
        click.echo(f"pds-svg: editing only the background ({names(background_items(scene))}): the prompts differ "
                   f"only in it (--background free edits everything)", err=True)

    # ---- optimise ---------------------------------------------------------------------------------
    every = frame_every or max(1, steps // 100)
    video_frames: List = []
    if frames is not None:
        frames.mkdir(parents=True, exist_ok=True)

    def keep(step: int, image) -> None:
        if video is not None:
            video_frames.append(to_uint8(image))
        if frames is not None:
            img = image[0] if image.dim() == 4 else image
            _write_atomic(frames / f"frame_{step:05d}.png", png_bytes(img), "frame")

    if frames is not None or video is not None:
        with torch.no_grad():
            keep(0, scene.render())

    def callback(step: int, images, loss: float) -> None:
        if (step + 1) % every == 0 or step + 1 == steps:
            with torch.no_grad():
                keep(step + 1, scene.render())

    from .. import entry

    entry.release()  # from here on Ctrl-C ends the optimisation and the current result is written
    result = edit_scene(scene, prior, src_full, tgt_full, settings, callback=callback, progress=not quiet)

    # ---- write results (atomically) ------------------------------------------------------------
    # Everything is encoded first and the video (the writer most likely to fail) goes first, so a
    # failure leaves no SVG without its PNG behind.
    svg_text = scene.to_svg()
    with torch.no_grad():
        png_data = png_bytes(scene.render(png_size))
    if video is not None and video_frames:
        _write_video(video, video_frames, fps)
    _write_atomic(output, svg_text, "SVG")
    _write_atomic(png, png_data, "image")
    last = f", final loss {result.losses[-1]:.4g}" if result.losses else ""
    written = ", ".join(str(p) for p in (output, png, video) if p is not None)
    if result.interrupted:
        click.echo(f"pds-svg: interrupted after {result.steps} step(s); wrote the current result to {written}",
                   err=True)
        return EXIT_INTERRUPTED
    click.echo(f"wrote {written} ({result.steps} steps in {result.seconds:.1f} s{last})", err=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console entry point ``pds-svg`` (``pds.cli.svg:main``)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="pds-svg")


if __name__ == "__main__":  # pragma: no cover
    main()
