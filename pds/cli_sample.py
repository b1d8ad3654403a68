"""``pds-sample``: draw images from any prior that :func:`pds.load_prior` accepts and save a grid.

    pds-sample --prompt "a red circle" -n 8 -o red_circles.png
    pds-sample --model path/to/dreambooth_out --prompt "a sks ball" --prompt "a ball" -n 4 -o grid.png

Each prompt gets one row of ``n`` samples (deterministic DDIM, classifier-free guidance against
the empty prompt, :func:`pds.sampling.sample`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import click
import torch
from torch import Tensor


def make_grid(images: Tensor, ncols: int, pad: int = 2, scale: int = 1):
    """A PIL image of ``(N, 3, H, W)`` images in [0, 1], ``ncols`` per row, white padding."""
    from PIL import Image

    n, _, h, w = images.shape
    nrows = math.ceil(n / ncols)
    H, W = h * scale, w * scale
    grid = Image.new("RGB", (ncols * W + (ncols + 1) * pad, nrows * H + (nrows + 1) * pad), "white")
    arr = (images.detach().float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    for i in range(n):
        r, c = divmod(i, ncols)
        tile = Image.fromarray(arr[i])
        if scale != 1:
            tile = tile.resize((W, H), Image.NEAREST)
        grid.paste(tile, (pad + c * (W + pad), pad + r * (H + pad)))
    return grid


def sample_grid(model: str, prompts: Sequence[str], n: int = 4, steps: int = 50, guidance: float = 7.5,
                seed: int = 0, device: Optional[str] = None, batch_size: int = 16, scale: int = 1):
    """Sample ``n`` images per prompt (one row each) and return ``(grid PIL image, images)``."""
    import pds
    from pds.sampling import sample

    prior = pds.load_prior(model, device=device)
    for p in prompts:
        prior.check_prompt(p)
    plist = [p for p in prompts for _ in range(n)]
    generator = torch.Generator(device=prior.device).manual_seed(seed)
    chunks = [sample(prior, plist[i:i + batch_size], steps=steps, guidance_scale=guidance, generator=generator)
              for i in range(0, len(plist), batch_size)]
    images = torch.cat(chunks)
    return make_grid(images, n, scale=scale), images


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", "-m", default="pds-tiny", show_default=True,
              help="Embedded prior name, model folder (diffusers layout) or hub id.")
@click.option("--prompt", "-p", "prompts", multiple=True, required=True,
              help="Text prompt; repeat for several rows.")
@click.option("--steps", default=50, show_default=True, help="DDIM steps.")
@click.option("--guidance", default=7.5, show_default=True, help="Classifier-free guidance scale.")
@click.option("--seed", default=0, show_default=True, help="Seed of the initial noise.")
@click.option("-n", "--num", "n", default=4, show_default=True, help="Samples per prompt.")
@click.option("-o", "--output", default="samples.png", show_default=True, type=click.Path(dir_okay=False),
              help="Grid PNG to write.")
@click.option("--device", default=None, help="torch device (default: cuda if available, else cpu).")
@click.option("--scale", default=1, show_default=True, help="Upscale each tile by this integer (nearest).")
def main(model: str, prompts: tuple[str, ...], steps: int, guidance: float, seed: int, n: int, output: str,
         device: Optional[str], scale: int) -> None:
    """Draw N samples per PROMPT from a diffusion prior and save them as one grid PNG
    (one row per prompt)."""
    import pds

    try:
        grid, images = sample_grid(model, list(prompts), n=n, steps=steps, guidance=guidance, seed=seed,
                                   device=device, scale=scale)
    except pds.PriorError as e:  # unknown words, missing folders: a message, not a traceback
        raise click.ClickException(str(e)) from e
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    click.echo(f"wrote {out} ({len(prompts)} prompt(s) x {n} samples, {images.shape[-1]} px, "
               f"{steps} DDIM steps, guidance {guidance}, seed {seed})")


if __name__ == "__main__":
    main()
