"""Seconds per Distiller step and UNet calls per step, for a prior at a resolution.

Usage::

    python benchmarks/distiller_step.py --model pds-tiny --size 64 --steps 20
    python benchmarks/distiller_step.py --tiny            # a random tiny prior, no weights needed

Prints a markdown table: one row per method (PDS, SDS, DDS) with the mean and p90 wall time of a
full step (encode, gradient, backward to the image), the UNet forward calls and the batch each call
saw.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

import pds
import pds.methods


def bench(prior, method: str, size: int, steps: int, batch: int) -> dict:
    d = pds.Distiller(prior, method=method, generator=torch.Generator().manual_seed(0))
    src = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    calls: list[int] = []
    hook = prior.unet.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    times = []
    try:
        for i in range(steps + 2):
            img = src.clone().requires_grad_(True)
            start = time.perf_counter()
            loss = d.loss(img, src, "a blue circle", "a red circle")
            loss.backward()
            if prior.device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:  # warm-up
                times.append(time.perf_counter() - start)
    finally:
        hook.remove()
    times.sort()
    return {"method": method, "mean_ms": 1000 * statistics.mean(times), "p90_ms": 1000 * times[int(0.9 * (len(times) - 1))],
            "calls_per_step": len(calls) / (steps + 2), "unet_batch": calls[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=pds.DEFAULT_PRIOR)
    ap.add_argument("--tiny", action="store_true", help="use a random tiny prior (no weights)")
    ap.add_argument("--size", type=int, default=None, help="render size (default: the prior's resolution)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tiny:
        from pds.testing import save_tiny_prior

        prior = pds.load_prior(save_tiny_prior(tempfile.mkdtemp()), device=args.device)
    else:
        prior = pds.load_prior(args.model, device=args.device)
    size = args.size or prior.resolution
    print(f"prior: {prior}; render {size}x{size}, batch {args.batch}, torch threads {torch.get_num_threads()}")
    print("| method | s/step (mean) | s/step (p90) | UNet calls/step | UNet batch |")
    print("|---|---|---|---|---|")
    for method in pds.methods.names():
        r = bench(prior, method, size, args.steps, args.batch)
        print(f"| {method.upper()} | {r['mean_ms'] / 1000:.4f} | {r['p90_ms'] / 1000:.4f} | {r['calls_per_step']:.0f} | {r['unet_batch']} |")


if __name__ == "__main__":
    main()
