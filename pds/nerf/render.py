"""Render a whole training view of a NeRF with gradients, in bounded memory.

nerfstudio's ``get_outputs_for_camera`` is ``no_grad``; PDS needs ``∂loss/∂θ`` through a complete
image (the prior judges pictures, not ray batches). :func:`render_view` renders the rays of one
camera in training mode:

* a view of at most ``chunk_rays`` rays is one ordinary differentiable forward;
* a larger view is rendered chunk by chunk without keeping activations, and the backward pass
  re-renders each chunk with gradients and back-propagates that chunk's slice of ``∂L/∂image``
  (gradient checkpointing at chunk granularity). The RNG state of every chunk is replayed so the
  re-render draws the same ray samples, which makes the gradient exactly that of one big render.

The memory of a step is therefore that of ``chunk_rays`` rays, whatever the view size; the cost
is one extra forward pass per step.
"""

from __future__ import annotations

from typing import Any, List, Tuple

import torch
from torch import Tensor

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle


def _autocast_state(device_type: str) -> Tuple[bool, torch.dtype]:
    """Whether autocast is on for ``device_type`` and its dtype (the API gained a device argument in torch 2.4)."""
    if hasattr(torch, "get_autocast_dtype"):
        return torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)
    if device_type == "cuda":
        return torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype()
    return torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()


def _rng_state(device: torch.device) -> Tuple[Tensor, Any]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_rng_state(device: torch.device, state: Tuple[Tensor, Any]) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


class _ChunkedRender(torch.autograd.Function):
    """``rgb = model(rays)`` over chunks; see the module docstring. ``anchor`` is a scalar that
    requires grad so that autograd calls :meth:`backward` (the real inputs are the model's
    parameters, which autograd cannot see through ``apply``)."""

    @staticmethod
    def forward(ctx, anchor: Tensor, model, rays: RayBundle, chunk: int) -> Tensor:  # type: ignore[override]
        device = rays.origins.device
        states: List[Tuple[Tensor, Any]] = []
        outs = []
        for start in range(0, len(rays), chunk):
            states.append(_rng_state(device))
            outs.append(model(rays[start:start + chunk])["rgb"].float())
        ctx.model, ctx.rays, ctx.chunk, ctx.states = model, rays, chunk, states
        ctx.autocast = (device.type, *_autocast_state(device.type))
        return torch.cat(outs)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        device = ctx.rays.origins.device
        device_type, enabled, dtype = ctx.autocast
        resume = _rng_state(device)
        with torch.enable_grad(), torch.autocast(device_type, dtype=dtype, enabled=enabled):
            for i, start in enumerate(range(0, len(ctx.rays), ctx.chunk)):
                _set_rng_state(device, ctx.states[i])
                rgb = ctx.model(ctx.rays[start:start + ctx.chunk])["rgb"].float()
                torch.autograd.backward(rgb, grad[start:start + ctx.chunk])
        _set_rng_state(device, resume)
        ctx.model = ctx.rays = ctx.states = None
        return None, None, None, None


def view_rays(cameras: Cameras, index: int, device: torch.device) -> Tuple[RayBundle, int, int]:
    """Flattened rays of camera ``index`` (``camera_indices`` = ``index``), with its height and width."""
    rays = cameras.generate_rays(camera_indices=index, keep_shape=True).to(device)
    height, width = rays.shape[:2]
    return rays.flatten(), int(height), int(width)


def render_view(model, cameras: Cameras, index: int, chunk_rays: int = 4096) -> Tensor:
    """Render view ``index`` of ``cameras`` with gradients to the model's parameters.

    Args:
        model: a nerfstudio ray model (``model(ray_bundle)["rgb"]``), in training mode.
        cameras: the cameras (``index`` selects one; rescale them first for a smaller render).
        index: which camera.
        chunk_rays: the most rays rendered with activations kept at once.

    Returns:
        ``(3, H, W)`` float32 image in ``[0, 1]``.
    """
    device = next(model.parameters()).device
    rays, height, width = view_rays(cameras, index, device)
    if len(rays) <= chunk_rays:
        rgb = model(rays)["rgb"].float()
    else:
        anchor = torch.zeros((), device=device, requires_grad=True)
        rgb = _ChunkedRender.apply(anchor, model, rays, int(chunk_rays))
    return rgb.reshape(height, width, 3).permute(2, 0, 1).clamp(0.0, 1.0)


@torch.no_grad()
def render_view_no_grad(model, cameras: Cameras, index: int) -> Tensor:
    """Evaluation render (model in eval mode, nerfstudio's chunking): ``(3, H, W)`` in ``[0, 1]``."""
    was_training = model.training
    model.eval()
    try:
        camera = cameras[index:index + 1].to(next(model.parameters()).device)
        rgb = model.get_outputs_for_camera(camera)["rgb"]
    finally:
        model.train(was_training)
    return rgb.float().permute(2, 0, 1).clamp(0.0, 1.0)
