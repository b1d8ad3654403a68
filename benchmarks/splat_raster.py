"""Seconds per render (forward, backward) of the pure-PyTorch Gaussian rasterizer, and on a GPU the
same against gsplat with the PSNR between the two.

:func:`compare_with_gsplat` is the one comparison of the two rasterizers on given Gaussians
(image PSNR, gradient agreement, times); ``scripts/gpu_splat_check.py`` runs it on trained ones.

Usage::

    python benchmarks/splat_raster.py                       # CPU: 64 and 128 px, 1000-5000 Gaussians
    python benchmarks/splat_raster.py --device cuda         # also gsplat's time and PSNR(ours, gsplat)
    python benchmarks/splat_raster.py --sizes 64 --counts 2000 --repeat 5 --threads 1

The scene is a ball of Gaussians of the example scene's size (radius 0.25, the nerfstudio-normalised
ball of examples/nerf_ball) seen at the example cameras' distance and field of view, SH degree 3.
Prints a markdown table: one row per (size, count) with the median forward and forward+backward
time, the mean footprint radius (px) and, on a GPU, gsplat's forward time and the PSNR.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from pds.nerf.splat import raster


def ball_scene(n: int, device: torch.device, seed: int = 0):
    """``n`` Gaussians filling a ball of radius 0.25 around the origin, SH degree 3 coefficients."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    means = direction * 0.25 * torch.rand(n, 1, generator=g) ** (1 / 3)
    scales = torch.full((n, 3), 0.25 * 1.6 / n ** (1 / 3)) * (0.5 + torch.rand(n, 3, generator=g))
    params = [means, torch.randn(n, 4, generator=g), scales, 0.3 + 0.6 * torch.rand(n, generator=g),
              0.3 * torch.randn(n, 16, 3, generator=g)]
    return [p.to(device).requires_grad_(True) for p in params]


def camera(size: int, device: torch.device):
    """The example scene's camera (field of view 40°) at distance 1 from the ball's centre."""
    view = torch.eye(4, device=device)
    view[2, 3] = 1.0
    f = 0.5 * size / math.tan(math.radians(20))
    K = torch.tensor([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]], device=device)
    return view[None], K[None]


def timed(fn, repeat: int, device: torch.device) -> float:
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB between two images in ``[0, 1]`` (clamped first)."""
    mse = torch.mean((a.float().clamp(0, 1) - b.float().clamp(0, 1)) ** 2)
    return float(-10 * torch.log10(mse.clamp_min(1e-20)))


def compare_with_gsplat(means, quats, scales, opacities, colors, viewmats, Ks, width: int, height: int,
                        sh_degree=3, repeat: int = 3, seed: int = 0) -> dict:
    """Render the same Gaussians with gsplat and with :func:`pds.nerf.splat.raster.rasterization` (CUDA tensors).

    Args:
        means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree: as gsplat's
            ``rasterization`` (scales not log, opacities in ``[0, 1]``; ``colors`` SH coefficients
            ``(N, K, 3)`` when ``sh_degree`` is given).
        repeat: timed repetitions (median).
        seed: seed of the random image weighting whose gradients are compared.

    Returns:
        ``psnr`` (dB, RGB), ``max_abs`` (largest pixel difference), ``alpha_max_abs``, ``grad_cos``
        (``{input: cosine between the two gradients of sum(w * image)}``), ``t_ours``/``t_gsplat``
        (median forward seconds) and ``t_ours_fb``/``t_gsplat_fb`` (forward + backward).
    """
    from gsplat.rendering import rasterization as gsplat_rasterization

    names = ("means", "quats", "scales", "opacities", "colors")
    inputs = [t.detach().clone() for t in (means, quats, scales, opacities, colors)]
    device = inputs[0].device

    def render(fn, grad: bool):
        leaves = [t.clone().requires_grad_(grad) for t in inputs]
        out, alpha, _ = fn(*leaves, viewmats, Ks, width, height, sh_degree=sh_degree, packed=False)
        return out, alpha, leaves

    result = {}
    with torch.no_grad():
        ref, ref_alpha, _ = render(gsplat_rasterization, False)
        ours, ours_alpha, _ = render(raster.rasterization, False)
    result["psnr"] = psnr(ours[..., :3], ref[..., :3])
    result["max_abs"] = float((ours - ref).abs().max())
    result["alpha_max_abs"] = float((ours_alpha - ref_alpha).abs().max())
    weight = torch.rand(ref.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    grads = {}
    for key, fn in (("gsplat", gsplat_rasterization), ("ours", raster.rasterization)):
        out, _, leaves = render(fn, True)
        (out * weight).sum().backward()
        grads[key] = [leaf.grad.flatten() if leaf.grad is not None else torch.zeros(leaf.numel(), device=device)
                      for leaf in leaves]
    result["grad_cos"] = {name: float(torch.nn.functional.cosine_similarity(a, b, dim=0))
                          for name, a, b in zip(names, grads["ours"], grads["gsplat"])}

    def forward_backward(fn):
        out, _, _ = render(fn, True)
        out.sum().backward()

    result["t_ours"] = timed(lambda: render(raster.rasterization, False), repeat, device)
    result["t_gsplat"] = timed(lambda: render(gsplat_rasterization, False), repeat, device)
    result["t_ours_fb"] = timed(lambda: forward_backward(raster.rasterization), repeat, device)
    result["t_gsplat_fb"] = timed(lambda: forward_backward(gsplat_rasterization), repeat, device)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 2000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    head = "| px | Gaussians | forward s | fwd+bwd s | mean radius px |" + (
        " gsplat fwd s | PSNR dB | grad cos (means) |" if gpu else "")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for size in args.sizes:
        for n in args.counts:
            params = ball_scene(n, device)
            view, K = camera(size, device)

            def forward():
                return raster.rasterization(*params, view, K, size, size, sh_degree=3)

            def forward_backward():
                img, _, _ = forward()
                img.sum().backward()

            forward()  # warm-up
            t_fwd = timed(lambda: forward(), args.repeat, device)
            t_all = timed(forward_backward, args.repeat, device)
            radii = forward()[2]["radii"].float()
            row = f"| {size} | {n} | {t_fwd:.3f} | {t_all:.3f} | {radii[radii > 0].mean():.1f} |"
            if gpu:
                c = compare_with_gsplat(*params, view, K, size, size, sh_degree=3, repeat=args.repeat)
                row += f" {c['t_gsplat']:.4f} | {c['psnr']:.1f} | {c['grad_cos']['means']:.4f} |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
