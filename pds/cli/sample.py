"""``pds-sample``: draw images from any prior that :func:`pds.load_prior` accepts and save a grid.

    pds-sample --prompt "a red circle" -n 8 -o red_circles.png
    pds-sample --model path/to/dreambooth_out --prompt "a sks ball" --prompt "a ball" -n 4 -o grid.png

Each prompt gets one row of ``n`` samples (deterministic DDIM, classifier-free guidance against
the empty prompt, :func:`pds.sampling.sample`).
"""

from __future__ import annotations

if __name__ == "__main__":  # python -m pds.cli.sample: Ctrl-C exits 130 from here on (pds.entry)
    from pds.entry import guard

    guard("pds-sample")

from pathlib import Path
from typing import Optional, Sequence

import click
import torch

from ..util.images import image_grid, save_png
from . import SEED, CLIError, FiniteFloat, main_of, parse_device, quiet_libraries


def sample_grid(model: str, prompts: Sequence[str], n: int = 4, steps: int = 50, guidance: float = 7.5,
                seed: int = 0, device: Optional[str] = None, batch_size: int = 16, scale: int = 1):
    """Sample ``n`` images per prompt (one row each) and return ``(grid PIL image, images)``."""
    import pds
    from pds.sampling import sample

    prior = pds.load_prior(model, device=parse_device(device))
    for p in prompts:
        prior.check_prompt(p)
    plist = [p for p in prompts for _ in range(n)]
    generator = torch.Generator(device=prior.device).manual_seed(seed)
    chunks = [sample(prior, plist[i:i + batch_size], steps=steps, guidance_scale=guidance, generator=generator)
              for i in range(0, len(plist), batch_size)]
    images = torch.cat(chunks)
    return image_grid(images, n, scale=scale), images


@click.command("pds-sample", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", "-m", default="pds-tiny", show_default=True,
              help="Embedded prior name, model folder (diffusers layout) or hub id.")
@click.option("--prompt", "-p", "prompts", multiple=True, required=True,
              help="Text prompt; repeat for several rows.")
@click.option("--steps", type=click.IntRange(1, 1000), default=50, show_default=True, help="DDIM steps.")
@click.option("--guidance", type=FiniteFloat(0, 1000), default=7.5, show_default=True,
              help="Classifier-free guidance scale.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the initial noise.")
@click.option("-n", "--num", "n", type=click.IntRange(1, 256), default=4, show_default=True, help="Samples per prompt.")
@click.option("-o", "--output", default="samples.png", show_default=True, type=click.Path(dir_okay=False),
              help="Grid PNG to write.")
@click.option("--device", default=None, help="torch device (default: cuda if available, else cpu).")
@click.option("--scale", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Upscale each tile by this integer (nearest).")
def command(model: str, prompts: tuple[str, ...], steps: int, guidance: float, seed: int, n: int, output: str,
         device: Optional[str], scale: int) -> None:
    """Draw N samples per PROMPT from a diffusion prior and save them as one grid PNG
    (one row per prompt)."""
    out = Path(output)
    if out.suffix.lower() != ".png":
        raise click.UsageError(f"--output {out} must end with .png")
    from ..util.files import OutputError, check_replaceable

    try:  # before the model loads: a device or FIFO named as output is refused, not replaced
        check_replaceable(out)
    except OutputError as e:
        raise CLIError(str(e)) from None
    quiet_libraries()
    grid, images = sample_grid(model, list(prompts), n=n, steps=steps, guidance=guidance, seed=seed,
                               device=device, scale=scale)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_png(grid, out)
    click.echo(f"wrote {out} ({len(prompts)} prompt(s) x {n} samples, {images.shape[-1]} px, "
               f"{steps} DDIM steps, guidance {guidance}, seed {seed})")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console entry point ``pds-sample``: errors are one line (exit 2), never a traceback."""
    main_of("pds-sample", command, argv)


if __name__ == "__main__":
    main()
