"""How well a latent prior's autoencoder sees colour changes: one row per palette colour.

For a flat patch of each colour of the prior's palette (``pds_prior.json`` ``colors``) on white,
prints

* **round trip**: the decoded change of a +0.1 step in R, G and B (what the decoder gives back
  for the step, ideally 0.100 in the stepped channel);
* **encoder gains**: the singular values of the latent's Jacobian with respect to the patch colour
  (3 of them; the ratio of the largest to the smallest squared is how unevenly the latent-space
  gradient ``Jᵀg`` of a distillation weighs colour directions).

A distillation gradient reaches a colour only through these: a direction the autoencoder barely
represents gets almost no gradient (and is not restored by the decoder either). Usage::

    python benchmarks/vae_colour.py                 # the embedded prior
    python benchmarks/vae_colour.py --model DIR     # any latent prior
"""

from __future__ import annotations

import argparse

import torch

import pds


def patch(colour, size: int) -> torch.Tensor:
    """``(1, 3, size, size)`` white image with a flat ``colour`` square over its middle half."""
    x = torch.ones(1, 3, size, size)
    q = size // 4
    x[..., q:size - q, q:size - q] = torch.as_tensor(colour, dtype=torch.float32).view(1, 3, 1, 1)
    return x


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="pds-tiny")
    ap.add_argument("--step", type=float, default=0.1, help="colour step of the round trip (default 0.1)")
    args = ap.parse_args(argv)
    prior = pds.load_prior(args.model, device="cpu", dtype=torch.float32)
    if getattr(prior, "vae", None) is None:
        raise SystemExit(f"{args.model} is a pixel prior: it has no autoencoder to measure")
    palette = (prior.metadata.extra.get("colors") or {}) if hasattr(prior, "metadata") else {}
    if not palette:
        raise SystemExit(f"{args.model} lists no palette colours (pds_prior.json 'colors')")
    print(f"{args.model}: decoded change of a +{args.step} step per channel, and encoder gains (singular values)")
    print(f"{'colour':<8}{'hex':<9}{'dR->RGB':>23}{'dG->RGB':>23}{'dB->RGB':>23}{'gains':>22}{'cond²':>8}")
    for name, hex_colour, moved, gains in colour_round_trip(prior, palette, args.step):
        cells = [" ".join(f"{float(v):+.3f}"[:6] for v in row) for row in moved]
        print(f"{name:<8}{hex_colour:<9}" + "".join(f"{cell:>23}" for cell in cells)
              + f"{' '.join(f'{float(v):.1f}' for v in gains):>22}{float((gains[0] / gains[-1]) ** 2):>8.1f}")


def colour_round_trip(prior, palette: dict, step: float = 0.1, gains: bool = True):
    """For each ``name: "#rrggbb"`` of ``palette``: ``(name, hex, moved, gains)`` where ``moved``
    ``(3, 3)`` is the decoded RGB change (row k) of a ``step`` in channel k of a flat patch of
    that colour on white (stepped down where up would leave the gamut, and sign-corrected, so
    the ideal is ``step * I``), and ``gains`` ``(3,)`` the singular values of the latent's
    Jacobian with respect to the patch colour (``None`` with ``gains=False``)."""
    size = prior.resolution
    q = size // 4
    inner = (..., slice(q, size - q), slice(q, size - q))

    def encode(x):  # the posterior mean's noise drawn the same for every call
        return prior.encode_images(x, torch.Generator().manual_seed(0))

    out = []
    for name, hex_colour in palette.items():
        c = torch.tensor([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
        with torch.no_grad():
            base = prior.decode_latents(encode(patch(c, size)), clamp=False)[inner].mean((0, 2, 3))
            rows = []
            for k in range(3):
                d = torch.zeros(3)
                d[k] = step if c[k] + step <= 1 else -step  # stay in the gamut
                moved = prior.decode_latents(encode(patch(c + d, size)), clamp=False)[inner].mean((0, 2, 3))
                rows.append((moved - base) * (1 if d[k] > 0 else -1))
        s = None
        if gains:
            jac = torch.autograd.functional.jacobian(lambda cc: encode(patch(cc, size)).flatten(), c)
            s = torch.linalg.svdvals(jac)
        out.append((name, hex_colour, torch.stack(rows), s))
    return out

if __name__ == "__main__":
    main()
