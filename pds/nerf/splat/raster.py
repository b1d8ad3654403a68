"""A differentiable 3-D Gaussian rasterizer in plain PyTorch (the CPU path of the splat backend).

gsplat's kernels need CUDA, and its PyTorch "reference" functions still call CUDA helpers, so on a
CPU nothing of gsplat can render. :func:`rasterization` reproduces what gsplat 1.4's function of
the same name computes for pinhole cameras (``packed`` or not: the results are unpacked), with the
same arguments and the same ``info`` entries that splatfacto and gsplat's densification strategy
read, so a splatfacto model can call either one:

1. **Covariance** (:func:`quat_scale_to_covar`): ``Σ = R S Sᵀ Rᵀ`` with ``R`` from the normalised
   quaternion ``(w, x, y, z)`` and ``S = diag(scales)``.
2. **Projection** (:func:`project_gaussians`): world → camera with the ``viewmat`` (OpenCV axes:
   x right, y down, z forward), the EWA Jacobian ``J = [[fx/z, 0, -fx·tx/z²], [0, fy/z, -fy·ty/z²]]``
   evaluated at the mean clamped to 1.3× the field of view (``tx, ty``, as gsplat, so that
   Gaussians far off-screen do not get huge footprints), ``Σ₂ = J Σ_c Jᵀ`` plus the low-pass
   dilation ``eps2d·I`` (0.3 px²; in ``"antialiased"`` mode the opacity is multiplied by
   ``sqrt(det Σ₂ / det(Σ₂ + eps2d I))``), the 3-sigma radius ``ceil(3·sqrt(λ_max))`` and gsplat's
   culling (depth outside ``[near, far]``, non-positive determinant, radius ``<= radius_clip``,
   footprint entirely off the image).
3. **Colour** (:func:`sh_to_color`): real spherical harmonics of degree ≤ 4 in the 3DGS/gsplat
   convention, evaluated along the normalised direction camera → mean, then ``max(c + 0.5, 0)``.
4. **Compositing** (:func:`composite`): Gaussians are binned into 16×16-pixel tiles with gsplat's
   tile rule (the 3-sigma square rounded outwards to whole tiles), sorted by camera depth inside
   each tile, and alpha-composited front to back at pixel centres ``(j + 0.5, i + 0.5)``:
   ``α = min(0.999, o·exp(-½ dᵀ Σ₂⁻¹ d))``, contributions with ``α < 1/255`` skipped, and a pixel
   stops before the Gaussian that would bring its transmittance to ``≤ 1e-4``.

Everything is ordinary autograd (no custom backward), so ``torch.autograd.gradcheck`` applies in
float64. With ``absgrad=True`` the 2-D means get gsplat's ``absgrad`` attribute (the sum over pixels
of ``|∂L/∂mean2d|`` per pixel), which splatfacto's densification uses.

Cost: memory and time grow with the number of (pixel, Gaussian) pairs inside each tile, padded to
the busiest tile; a few thousand Gaussians at 64–128 px take a fraction of a second per view on
one core (see ``benchmarks/splat_raster.py``).
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

#: Real spherical-harmonic constants (degree 0–4), the 3DGS / gsplat convention.
_C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
       1.445305721320277, -0.5900435899266435)
_C4 = (2.5033429417967046, -1.7701307697799304, 0.9461746957575601, -0.6690465435572892, 0.10578554691520431,
       -0.6690465435572892, 0.47308734787878004, -1.7701307697799304, 0.6258357354491761)

#: Compositing constants of gsplat's kernels.
ALPHA_MAX = 0.999
ALPHA_MIN = 1.0 / 255.0
T_MIN = 1e-4


def quat_scale_to_covar(quats: Tensor, scales: Tensor) -> Tensor:
    """World-space covariances ``Σ = R S Sᵀ Rᵀ``.

    Args:
        quats: ``(N, 4)`` quaternions ``(w, x, y, z)``, any non-zero norm (normalised here).
        scales: ``(N, 3)`` standard deviations along the Gaussian's axes (positive; not log).

    Returns:
        ``(N, 3, 3)`` symmetric positive semi-definite matrices.
    """
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    rot = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], -1).reshape(*quats.shape[:-1], 3, 3)
    m = rot * scales[..., None, :]
    return m @ m.transpose(-1, -2)


def project_gaussians(means: Tensor, covars: Tensor, viewmat: Tensor, K: Tensor, width: int, height: int,
                      eps2d: float = 0.3, near_plane: float = 0.01, far_plane: float = 1e10,
                      radius_clip: float = 0.0, antialiased: bool = False) -> Dict[str, Tensor]:
    """Project 3-D Gaussians into one pinhole camera, as gsplat's ``fully_fused_projection``.

    Args:
        means: ``(N, 3)`` world positions.
        covars: ``(N, 3, 3)`` world covariances (:func:`quat_scale_to_covar`).
        viewmat: ``(4, 4)`` world-to-camera matrix, OpenCV axes (z forward, y down).
        K: ``(3, 3)`` intrinsics ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels.
        width, height: image size in pixels.
        eps2d: the low-pass dilation added to the 2-D covariance's diagonal (px², default 0.3).
        near_plane, far_plane: camera-depth range kept (defaults 0.01 and 1e10).
        radius_clip: Gaussians whose radius is ``<=`` this (px) are culled (default 0).
        antialiased: also return gsplat's opacity compensation ``sqrt(det Σ₂ / det(Σ₂ + eps2d I))``.

    Returns:
        ``means2d`` ``(N, 2)`` pixels, ``depths`` ``(N,)`` camera z, ``conics`` ``(N, 3)`` the upper
        triangle ``(a, b, c)`` of ``(Σ₂ + eps2d I)⁻¹``, ``radii`` ``(N,)`` int32 (0: culled),
        ``compensations`` ``(N,)`` or absent. Culled Gaussians have zero means, conics and depths
        (and zero gradients: every division is made safe first, so no NaN leaks through ``where``).
    """
    rot, trans = viewmat[:3, :3], viewmat[:3, 3]
    mean_c = means @ rot.T + trans
    cov_c = rot @ covars @ rot.T
    x, y, z = mean_c.unbind(-1)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    in_depth = (z >= near_plane) & (z <= far_plane)
    zs = torch.where(in_depth, z, torch.ones_like(z))
    # gsplat evaluates the Jacobian at the mean clamped to 1.3x the field of view.
    lim_x = 0.3 * 0.5 * width / fx
    lim_y = 0.3 * 0.5 * height / fy
    tx = zs * torch.minimum(torch.maximum(x / zs, -(cx / fx + lim_x)), (width - cx) / fx + lim_x)
    ty = zs * torch.minimum(torch.maximum(y / zs, -(cy / fy + lim_y)), (height - cy) / fy + lim_y)
    zero = torch.zeros_like(zs)
    jac = torch.stack([fx / zs, zero, -fx * tx / zs ** 2, zero, fy / zs, -fy * ty / zs ** 2], -1).reshape(-1, 2, 3)
    cov2d = jac @ cov_c @ jac.transpose(-1, -2)
    a, b, c = cov2d[:, 0, 0], cov2d[:, 0, 1], cov2d[:, 1, 1]
    det_orig = a * c - b * b
    a, c = a + eps2d, c + eps2d
    det = a * c - b * b
    valid = in_depth & (det > 0)
    dets = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([c / dets, -b / dets, a / dets], -1)
    means2d = torch.stack([fx * x / zs + cx, fy * y / zs + cy], -1)
    with torch.no_grad():
        half = 0.5 * (a + c)
        radius = torch.ceil(3.0 * torch.sqrt(half + torch.sqrt((half * half - dets).clamp_min(0.01))))
        mx, my = means2d[:, 0], means2d[:, 1]
        # a new tensor, not in place: ``valid`` of the safe division above is saved for backward
        valid = valid & (radius > radius_clip) & (mx + radius > 0) & (mx - radius < width) \
            & (my + radius > 0) & (my - radius < height)
        radii = torch.where(valid, radius, torch.zeros_like(radius)).to(torch.int32)
    keep = valid[:, None]
    out = {"means2d": torch.where(keep, means2d, torch.zeros_like(means2d)),
           "depths": torch.where(valid, z, torch.zeros_like(z)),
           "conics": torch.where(keep, conics, torch.zeros_like(conics)), "radii": radii}
    if antialiased:
        comp = torch.sqrt((torch.where(valid, det_orig, torch.zeros_like(det_orig)) / dets).clamp_min(1e-12))
        out["compensations"] = torch.where(valid, comp, torch.zeros_like(comp))
    return out


def sh_bases(degree: int, dirs: Tensor) -> Tensor:
    """Real spherical-harmonic basis along unit ``dirs`` ``(..., 3)``: ``(..., (degree + 1)²)``, degree 0–4."""
    if not 0 <= degree <= 4:
        raise ValueError(f"sh degree must be in 0..4, got {degree}")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, _C0)]
    if degree >= 1:
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [_C2[0] * xy, _C2[1] * yz, _C2[2] * (2 * zz - xx - yy), _C2[3] * xz, _C2[4] * (xx - yy)]
    if degree >= 3:
        out += [_C3[0] * y * (3 * xx - yy), _C3[1] * xy * z, _C3[2] * y * (4 * zz - xx - yy),
                _C3[3] * z * (2 * zz - 3 * xx - 3 * yy), _C3[4] * x * (4 * zz - xx - yy),
                _C3[5] * z * (xx - yy), _C3[6] * x * (xx - 3 * yy)]
    if degree >= 4:
        out += [_C4[0] * xy * (xx - yy), _C4[1] * yz * (3 * xx - yy), _C4[2] * xy * (7 * zz - 1),
                _C4[3] * yz * (7 * zz - 3), _C4[4] * (zz * (35 * zz - 30) + 3), _C4[5] * xz * (7 * zz - 3),
                _C4[6] * (xx - yy) * (7 * zz - 1), _C4[7] * xz * (xx - 3 * yy),
                _C4[8] * (xx * (xx - 3 * yy) - yy * (3 * xx - yy))]
    return torch.stack(out, -1)


def sh_to_color(degree: int, dirs: Tensor, coeffs: Tensor) -> Tensor:
    """Colour of SH coefficients seen along ``dirs``, as gsplat's rasterization uses it.

    Args:
        degree: SH degree in use (0–4); coefficients beyond ``(degree + 1)²`` are ignored.
        dirs: ``(..., 3)`` viewing directions (camera → mean), any non-zero length.
        coeffs: ``(..., K, 3)`` with ``K >= (degree + 1)²`` (splatfacto: ``features_dc`` then ``features_rest``).

    Returns:
        ``(..., 3)`` colour ``max(Σ_k Y_k(d) c_k + 0.5, 0)``.
    """
    n = (degree + 1) ** 2
    bases = sh_bases(degree, torch.nn.functional.normalize(dirs, dim=-1))
    return ((bases[..., None] * coeffs[..., :n, :]).sum(-2) + 0.5).clamp_min(0.0)


def _tile_lists(means2d: Tensor, radii: Tensor, depths: Tensor, tile_size: int, tiles_x: int,
                tiles_y: int) -> Tuple[Tensor, Tensor]:
    """Per-tile Gaussian lists sorted by depth: ``(T, K)`` indices (``-1`` pads) and ``(T,)`` counts."""
    ids = torch.nonzero(radii > 0).flatten()
    n_tiles = tiles_x * tiles_y
    if len(ids) == 0:
        return torch.full((n_tiles, 0), -1, dtype=torch.long, device=means2d.device), \
            torch.zeros(n_tiles, dtype=torch.long, device=means2d.device)
    centre = means2d[ids].detach() / tile_size
    reach = radii[ids].to(centre.dtype)[:, None] / tile_size
    lo = torch.floor(centre - reach).long()
    hi = torch.ceil(centre + reach).long()
    lo[:, 0].clamp_(0, tiles_x), hi[:, 0].clamp_(0, tiles_x)
    lo[:, 1].clamp_(0, tiles_y), hi[:, 1].clamp_(0, tiles_y)
    span = hi - lo
    counts = span[:, 0] * span[:, 1]
    owner = torch.repeat_interleave(torch.arange(len(ids), device=ids.device), counts)
    first = torch.cumsum(counts, 0) - counts
    k = torch.arange(len(owner), device=ids.device) - first[owner]
    tx = lo[owner, 0] + k % span[owner, 0]
    ty = lo[owner, 1] + k // span[owner, 0]
    tile = ty * tiles_x + tx
    # Sort by (tile, depth): depth rank of each Gaussian, then one integer key.
    rank = torch.empty_like(ids)
    rank[torch.argsort(depths[ids].detach(), stable=True)] = torch.arange(len(ids), device=ids.device)
    order = torch.argsort(tile * len(ids) + rank[owner])
    tile, gauss = tile[order], ids[owner[order]]
    per_tile = torch.bincount(tile, minlength=n_tiles)
    start = torch.cumsum(per_tile, 0) - per_tile
    slot = torch.arange(len(tile), device=ids.device) - start[tile]
    table = torch.full((n_tiles, int(per_tile.max())), -1, dtype=torch.long, device=ids.device)
    table[tile, slot] = gauss
    return table, per_tile


def composite(means2d: Tensor, conics: Tensor, colors: Tensor, opacities: Tensor, radii: Tensor, depths: Tensor,
              width: int, height: int, tile_size: int = 16, backgrounds: Optional[Tensor] = None,
              absgrad_target: Optional[Tensor] = None, max_pairs: int = 1 << 22) -> Tuple[Tensor, Tensor]:
    """Front-to-back alpha compositing of projected Gaussians into one image (gsplat's rule).

    Args:
        means2d: ``(N, 2)`` pixel positions; conics: ``(N, 3)`` inverse 2-D covariance ``(a, b, c)``.
        colors: ``(N, D)`` per-Gaussian values (RGB, optionally + depth); opacities: ``(N,)`` in ``[0, 1]``.
        radii: ``(N,)`` int, 0 for culled Gaussians; depths: ``(N,)`` sort keys (camera z).
        width, height: image size; tile_size: tile side in pixels (gsplat: 16).
        backgrounds: ``(D,)`` added behind, weighted by the final transmittance (default none).
        absgrad_target: a tensor whose ``absgrad`` attribute ``(N, 2)`` receives, during backward, the
            per-pixel ``|∂L/∂means2d|`` summed over pixels (gsplat's ``absgrad``).
        max_pairs: the most (pixel, Gaussian) pairs evaluated in one batch of tiles.

    Returns:
        ``(H, W, D)`` composited values and ``(H, W, 1)`` alpha ``1 - T_final``.
    """
    dev, dtype = means2d.device, means2d.dtype
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    table, _ = _tile_lists(means2d, radii, depths, tile_size, tiles_x, tiles_y)
    n_tiles, kmax = table.shape
    dim = colors.shape[-1]
    pad = len(means2d)  # index of an extra, fully transparent Gaussian used for padding
    table = torch.where(table < 0, torch.full_like(table, pad), table)
    m_all = torch.cat([means2d, means2d.new_zeros(1, 2)])
    q_all = torch.cat([conics, conics.new_zeros(1, 3)])
    o_all = torch.cat([opacities, opacities.new_zeros(1)])
    c_all = torch.cat([colors, colors.new_zeros(1, dim)])
    # Pixel centres of every tile, (T, P, 2).
    iy, ix = torch.meshgrid(torch.arange(tile_size, device=dev), torch.arange(tile_size, device=dev), indexing="ij")
    local = torch.stack([ix.flatten(), iy.flatten()], -1).to(dtype) + 0.5
    ty, tx = torch.meshgrid(torch.arange(tiles_y, device=dev), torch.arange(tiles_x, device=dev), indexing="ij")
    origin = torch.stack([tx.flatten(), ty.flatten()], -1).to(dtype) * tile_size
    pixels = origin[:, None, :] + local[None]
    n_pix = tile_size * tile_size
    step = max(1, max_pairs // max(1, n_pix * kmax))
    rgb_tiles, t_tiles = [], []
    for s in range(0, n_tiles, step):
        idx = table[s:s + step]
        if kmax == 0:
            rgb_tiles.append(means2d.new_zeros(len(idx), n_pix, dim))
            t_tiles.append(means2d.new_ones(len(idx), n_pix))
            continue
        delta = m_all[idx][:, None, :, :] - pixels[s:s + step, :, None, :]  # (t, P, K, 2)
        if absgrad_target is not None and delta.requires_grad:
            delta.register_hook(_absgrad_hook(absgrad_target, idx, pad))
        q = q_all[idx][:, None]
        sigma = 0.5 * (q[..., 0] * delta[..., 0] ** 2 + q[..., 2] * delta[..., 1] ** 2) \
            + q[..., 1] * delta[..., 0] * delta[..., 1]
        alpha = (o_all[idx][:, None] * torch.exp(-sigma)).clamp(max=ALPHA_MAX)
        alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
        with torch.no_grad():  # stop before the Gaussian that would bring T to <= 1e-4 (exclusive)
            alive = torch.cumprod(1.0 - alpha, -1) > T_MIN
        alpha = torch.where(alive, alpha, torch.zeros_like(alpha))
        trans = torch.cumprod(1.0 - alpha, -1)
        before = torch.cat([torch.ones_like(trans[..., :1]), trans[..., :-1]], -1)
        weights = alpha * before
        rgb_tiles.append(torch.einsum("tpk,tkd->tpd", weights, c_all[idx]))
        t_tiles.append(trans[..., -1])
    rgb = torch.cat(rgb_tiles)  # (T, P, D)
    final_t = torch.cat(t_tiles)  # (T, P)
    if backgrounds is not None:
        rgb = rgb + final_t[..., None] * backgrounds
    alpha_img = (1.0 - final_t)[..., None]

    def untile(x: Tensor) -> Tensor:
        x = x.reshape(tiles_y, tiles_x, tile_size, tile_size, x.shape[-1]).permute(0, 2, 1, 3, 4)
        return x.reshape(tiles_y * tile_size, tiles_x * tile_size, -1)[:height, :width]

    return untile(rgb), untile(alpha_img)


def _absgrad_hook(target: Tensor, idx: Tensor, pad: int):
    def hook(grad: Tensor) -> None:
        per_pair = grad.abs().sum(1).reshape(-1, 2)  # sum over the tile's pixels of |per-pixel grad|
        flat = idx.reshape(-1)
        keep = flat != pad
        target.absgrad.index_add_(0, flat[keep], per_pair[keep].to(target.absgrad.dtype))
    return hook


def rasterization(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor, viewmats: Tensor,
                  Ks: Tensor, width: int, height: int, near_plane: float = 0.01, far_plane: float = 1e10,
                  radius_clip: float = 0.0, eps2d: float = 0.3, sh_degree: Optional[int] = None, packed: bool = True,
                  tile_size: int = 16, backgrounds: Optional[Tensor] = None, render_mode: str = "RGB",
                  sparse_grad: bool = False, absgrad: bool = False, rasterize_mode: str = "classic",
                  camera_model: str = "pinhole", **unused) -> Tuple[Tensor, Tensor, Dict]:
    """Render Gaussians into ``C`` pinhole cameras: gsplat 1.4's ``rasterization`` in plain PyTorch.

    Args:
        means: ``(N, 3)``; quats: ``(N, 4)`` ``(w, x, y, z)``; scales: ``(N, 3)`` (not log);
            opacities: ``(N,)`` in ``[0, 1]``.
        colors: ``(N, D)`` values, or ``(N, K, 3)`` SH coefficients when ``sh_degree`` is given.
        viewmats: ``(C, 4, 4)`` world-to-camera (OpenCV axes); Ks: ``(C, 3, 3)`` intrinsics.
        width, height: image size in pixels.
        near_plane, far_plane, radius_clip, eps2d: as :func:`project_gaussians`.
        sh_degree: SH degree to evaluate (``None``: ``colors`` are final values).
        packed, sparse_grad: accepted for gsplat compatibility; results are always unpacked, grads dense.
        tile_size: tile side (16, gsplat's default; it decides which pixels see a Gaussian).
        backgrounds: ``(C, D)`` colour behind the Gaussians (default none: black).
        render_mode: ``"RGB"``, ``"D"`` or ``"ED"`` (accumulated or expected camera depth), ``"RGB+D"``,
            ``"RGB+ED"`` (depth appended as the last channel).
        absgrad: give ``info["means2d"]`` an ``absgrad`` attribute in backward (densification).
        rasterize_mode: ``"classic"`` or ``"antialiased"`` (opacity compensation).
        camera_model: only ``"pinhole"``.

    Returns:
        ``render`` ``(C, H, W, D')``, ``alphas`` ``(C, H, W, 1)`` and ``info`` with gsplat's keys that
        consumers read: ``means2d`` ``(C, N, 2)`` (requires grad when the inputs do; call
        ``retain_grad`` on it to read its gradient), ``radii`` ``(C, N)`` int32, ``depths``,
        ``conics``, ``opacities``, ``width``, ``height``, ``n_cameras``, ``tile_size``,
        ``gaussian_ids``/``camera_ids`` (``None``: unpacked).
    """
    if camera_model != "pinhole":
        raise NotImplementedError(f"the PyTorch rasterizer supports pinhole cameras only, got {camera_model!r}")
    if rasterize_mode not in ("classic", "antialiased"):
        raise ValueError(f"unknown rasterize_mode {rasterize_mode!r}")
    if render_mode not in ("RGB", "D", "ED", "RGB+D", "RGB+ED"):
        raise ValueError(f"unknown render_mode {render_mode!r}")
    n, cams = means.shape[0], viewmats.shape[0]
    if means.shape != (n, 3) or quats.shape != (n, 4) or scales.shape != (n, 3) or opacities.shape != (n,):
        raise ValueError(f"means (N,3), quats (N,4), scales (N,3), opacities (N,) expected; got {tuple(means.shape)}, "
                         f"{tuple(quats.shape)}, {tuple(scales.shape)}, {tuple(opacities.shape)}")
    covars = quat_scale_to_covar(quats, scales)
    projected = [project_gaussians(means, covars, viewmats[c], Ks[c], width, height, eps2d, near_plane, far_plane,
                                   radius_clip, rasterize_mode == "antialiased") for c in range(cams)]
    means2d = torch.stack([p["means2d"] for p in projected])
    if absgrad and means2d.requires_grad:
        means2d.absgrad = torch.zeros_like(means2d.detach())
    renders, alphas, opac_all = [], [], []
    for c, p in enumerate(projected):
        opac = opacities * p["compensations"] if "compensations" in p else opacities
        opac_all.append(opac)
        if sh_degree is None:
            values = colors if colors.dim() == 2 else colors[c]
        else:
            campos = torch.linalg.inv(viewmats[c])[:3, 3]
            shs = colors if colors.dim() == 3 else colors[c]
            values = sh_to_color(sh_degree, means - campos, shs)
            values = torch.where((p["radii"] > 0)[:, None], values, torch.zeros_like(values))
        if render_mode in ("RGB+D", "RGB+ED"):
            values = torch.cat([values, p["depths"][:, None]], -1)
        elif render_mode in ("D", "ED"):
            values = p["depths"][:, None]
        bg = None
        if backgrounds is not None:
            bg = backgrounds[c]
            if render_mode in ("RGB+D", "RGB+ED"):
                bg = torch.cat([bg, bg.new_zeros(1)])
            elif render_mode in ("D", "ED"):
                bg = bg.new_zeros(1)
        target = None
        if absgrad and means2d.requires_grad:
            target = _AbsgradView(means2d, c)
        img, alpha = composite(means2d[c], p["conics"], values, opac, p["radii"], p["depths"], width, height,
                               tile_size, bg, target)
        if render_mode in ("ED", "RGB+ED"):
            img = torch.cat([img[..., :-1], img[..., -1:] / alpha.clamp_min(1e-10)], -1)
        renders.append(img)
        alphas.append(alpha)
    info = {"camera_ids": None, "gaussian_ids": None, "radii": torch.stack([p["radii"] for p in projected]),
            "means2d": means2d, "depths": torch.stack([p["depths"] for p in projected]),
            "conics": torch.stack([p["conics"] for p in projected]), "opacities": torch.stack(opac_all),
            "width": width, "height": height, "n_cameras": cams, "tile_size": tile_size,
            "tile_width": math.ceil(width / tile_size), "tile_height": math.ceil(height / tile_size)}
    return torch.stack(renders), torch.stack(alphas), info


class _AbsgradView:
    """``absgrad`` of camera ``c``: the hook adds into ``means2d.absgrad[c]``."""

    def __init__(self, means2d: Tensor, c: int):
        self.absgrad = means2d.absgrad[c]
