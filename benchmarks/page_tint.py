"""Why a grey page turns green under guidance: the page colour each prediction gives, per timestep.

For the embedded world's picture of a ``--fg`` square on a ``--bg`` page (the edit's target
itself), noised at a range of timesteps, prints the page colour (median of the 1-pixel border,
averaged over ``--n`` noises) of the denoiser's clean-image estimate

* ``w 0``: unconditional;
* ``w 1``: conditional on the picture's own caption;
* ``w W``: classifier-free guided at the edit's scale ``--guidance`` (default: the prior's
  ``edit.guidance_scale``).

A page the picture already shows is predicted correctly by the conditional at every noise level;
where the unconditional prediction disagrees with it, even by a few levels, guidance multiplies
the disagreement by ``w``. An edit that drives the page towards the guided prediction then tints
it: on pds-tiny the grey page under a green square, at guidance 25, is predicted green from
t = 0.1 to 0.5 and only near grey above 0.7, hence ``edit.page_guidance_interval``. Usage::

    python benchmarks/page_tint.py                        # pds-tiny, a green square on gray
    python benchmarks/page_tint.py --fg red --bg gray --model DIR
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import pds
from edit_quality import border_colour
from pds import maths


def page_colours(prior, image: torch.Tensor, prompt: str, t_fracs, guidance: float, n: int = 8, seed: int = 0):
    """Rows ``(t, {w: (3,) page colour in [0, 1]})`` for ``w`` in ``(0, 1, guidance)``.

    Args:
        prior: a latent or pixel prior (:func:`pds.load_prior`).
        image: ``(1, 3, H, W)`` in ``[0, 1]``, the prior's resolution.
        prompt: the conditional caption.
        t_fracs: fractions of the training schedule.
        guidance: the guided weight.
        n: noises per timestep (default 8).
        seed: of the noises (default 0).
    """
    ac = prior.scheduler.alphas_cumprod.float()
    total = len(ac)
    rows = []
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        z0 = prior.encode_images(image.to(prior.device), g)  # the VAE's posterior sample drawn from the seed too
        emb = prior.encode_prompt([prompt] * n + [""] * n)
        for frac in t_fracs:
            t = min(int(frac * total), total - 1)
            a = ac[t].to(z0.device)
            noise = torch.randn((n, *z0.shape[1:]), generator=g).to(z0.device)
            zt = maths.add_noise(z0, noise, a)
            eps = prior.predict_noise(torch.cat([zt, zt]), torch.full((2 * n,), t, device=z0.device), emb)
            cond, uncond = eps[:n], eps[n:]
            out = {}
            for w in (0.0, 1.0, float(guidance)):
                img = prior.decode_latents(maths.x0_from_eps(zt, maths.guided(uncond, cond, w), a))
                pages = [border_colour(im.permute(1, 2, 0).cpu().numpy()) for im in img]
                out[w] = torch.from_numpy(np.mean(pages, axis=0)).float()
            rows.append((frac, out))
    return rows


def main(argv=None) -> None:
    from tools.prior import data

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="pds-tiny")
    ap.add_argument("--fg", default="green", help="shape colour (default green)")
    ap.add_argument("--bg", default="gray", help="page colour (default gray)")
    ap.add_argument("--shape", default="square")
    ap.add_argument("--guidance", type=float, default=None, help="default: the prior's edit.guidance_scale")
    ap.add_argument("--n", type=int, default=8)
    args = ap.parse_args(argv)
    prior = pds.load_prior(args.model)
    guidance = args.guidance if args.guidance is not None else (prior.metadata.edit.guidance_scale or 25.0)
    image = data.render(args.shape, args.fg, args.bg, resolution=prior.resolution)[None]
    prompt = data.caption(args.fg, args.shape, args.bg)
    hexes = lambda c: "#%02x%02x%02x" % tuple(int(round(float(v) * 255)) for v in c.clamp(0, 1))
    print(f"{args.model}: page colour of the clean-image estimate for {prompt!r} (true page {data.color_hex(args.bg)}), "
          f"{args.n} noises per t")
    print(f"| t | w 0 (unconditional) | w 1 (conditional) | w {guidance:g} (guided) |")
    print("|---|---|---|---|")
    for frac, out in page_colours(prior, image, prompt, (0.1, 0.2, 0.35, 0.5, 0.7, 0.8, 0.9), guidance, args.n):
        print(f"| {frac:g} | {hexes(out[0.0])} | {hexes(out[1.0])} | {hexes(out[float(guidance)])} |")


if __name__ == "__main__":
    main()
