"""Editing a custom parametric image with PDS: a picture made of soft Gaussian blobs.

This is the Python API for renderers that are neither SVG nor NeRF. A renderer only needs
``parameters()`` (leaf tensors grouped by kind) and ``render()`` (an image in ``[0, 1]``);
``learning_rates`` and ``project()`` are optional.

Run::

    python examples/gaussian_blobs.py --src "a red circle" --tgt "a blue circle" --steps 200 -o blobs.png

It fits blobs to a red disk, then asks the prior to turn it blue, and writes
``source | edited`` side by side.
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor


class GaussianBlobs:
    """``N`` isotropic Gaussian blobs alpha-composited over a background colour.

    Args:
        n: number of blobs.
        size: output image side length in pixels.
        generator: RNG for the initial layout.

    Parameters (``parameters()``): ``centers`` ``(N, 2)`` in ``[0, 1]`` image units,
    ``log_scales`` ``(N,)``, ``colors`` ``(N, 3)`` in ``[0, 1]``, ``opacities`` ``(N,)`` logits.
    """

    learning_rates = {"centers": 0.01, "log_scales": 0.02, "colors": 0.02, "opacities": 0.05}

    def __init__(self, n: int = 24, size: int = 64, generator: torch.Generator | None = None,
                 background=(1.0, 1.0, 1.0)):
        g = generator or torch.Generator().manual_seed(0)
        self.size = size
        self.centers = torch.rand(n, 2, generator=g).mul(0.6).add(0.2).requires_grad_(True)
        self.log_scales = torch.full((n,), -2.5).requires_grad_(True)
        self.colors = torch.rand(n, 3, generator=g).requires_grad_(True)
        self.opacities = torch.zeros(n).requires_grad_(True)
        self.background = torch.tensor(background).view(3, 1, 1)

    def parameters(self) -> dict[str, list[Tensor]]:
        return {"centers": [self.centers], "log_scales": [self.log_scales], "colors": [self.colors],
                "opacities": [self.opacities]}

    def render(self) -> Tensor:
        """``(3, size, size)`` image in ``[0, 1]``; blobs are painted in index order ("over")."""
        ys, xs = torch.meshgrid(torch.linspace(0, 1, self.size), torch.linspace(0, 1, self.size), indexing="ij")
        grid = torch.stack([xs, ys], -1)  # (H, W, 2)
        d2 = ((grid[None] - self.centers[:, None, None]) ** 2).sum(-1)  # (N, H, W)
        alpha = torch.sigmoid(self.opacities)[:, None, None] * torch.exp(-d2 / (2 * self.log_scales.exp()[:, None, None] ** 2))
        image = self.background.expand(3, self.size, self.size)
        for a, c in zip(alpha, self.colors):
            image = image * (1 - a) + c[:, None, None] * a
        return image.clamp(0, 1)

    def project(self) -> None:
        self.colors.clamp_(0, 1)
        self.centers.clamp_(0, 1)


def disk(size: int, color=(0.9, 0.1, 0.1), radius: float = 0.3) -> Tensor:
    """A ``(3, size, size)`` target picture: a flat disk on white."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    inside = (((xs - 0.5) ** 2 + (ys - 0.5) ** 2).sqrt() < radius).float()
    return torch.tensor(color).view(3, 1, 1) * inside + (1 - inside)


def fit(blobs: GaussianBlobs, target: Tensor, steps: int = 300) -> None:
    """Fit the blobs to a picture by plain L2 (gives the edit a meaningful source)."""
    opt = torch.optim.Adam([{"params": v, "lr": blobs.learning_rates[k]} for k, v in blobs.parameters().items()])
    for _ in range(steps):
        opt.zero_grad()
        loss = ((blobs.render() - target) ** 2).mean()
        loss.backward()
        opt.step()
        with torch.no_grad():
            blobs.project()


def main() -> None:
    import pds

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=pds.DEFAULT_PRIOR, help="prior name, folder or hub id")
    ap.add_argument("--src", default="a red circle")
    ap.add_argument("--tgt", default="a blue circle")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--method", default="pds", choices=["pds", "sds", "dds"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", default="blobs_edit.png")
    args = ap.parse_args()

    prior = pds.load_prior(args.model)
    blobs = GaussianBlobs(size=prior.resolution)
    fit(blobs, disk(prior.resolution))
    with torch.no_grad():
        source = blobs.render()
    distiller = pds.Distiller(prior, method=args.method, t_range=(0.1, 0.98),
                              generator=torch.Generator().manual_seed(args.seed))
    result = distiller.optimize(blobs, source, args.src, args.tgt, steps=args.steps)
    with torch.no_grad():
        edited = blobs.render()
    from pds.util.images import save_png

    save_png(torch.cat([source, edited], dim=2), args.output)
    print(f"{result.steps} steps in {result.seconds:.1f}s, final loss {result.losses[-1]:.4g}; wrote {args.output}")


if __name__ == "__main__":
    main()
