"""The pure-PyTorch Gaussian rasterizer (pds.nerf.splat.raster): footprint, ordering, compositing
rule, gradients, culling, and agreement with gsplat where gsplat runs (its PyTorch projection and SH
functions on any device; its CUDA rasterizer on a GPU)."""

from __future__ import annotations

import math

import pytest
import torch

from pds.nerf.splat import raster


def camera(size: int = 32, focal: float = 40.0, distance: float = 3.0, dtype=torch.float64):
    """A camera at ``(0, 0, -distance)`` looking at the origin along +z (OpenCV axes)."""
    view = torch.eye(4, dtype=dtype)
    view[2, 3] = distance
    K = torch.tensor([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]], dtype=dtype)
    return view, K


def scene(n: int, seed: int = 0, dtype=torch.float64, sh: int = 4):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * 1.2
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = 0.04 + 0.12 * torch.rand(n, 3, generator=g, dtype=dtype)
    opac = 0.2 + 0.6 * torch.rand(n, generator=g, dtype=dtype)
    coeffs = 0.3 * torch.randn(n, sh, 3, generator=g, dtype=dtype)
    return means, quats, scales, opac, coeffs


def sequential_reference(means2d, conics, colors, opac, radii, depths, width, height, tile_size):
    """Pixel-by-pixel loop over depth-sorted Gaussians with gsplat's compositing rule (the oracle)."""
    image = torch.zeros(height, width, colors.shape[-1], dtype=colors.dtype)
    alpha_img = torch.zeros(height, width, 1, dtype=colors.dtype)
    order = [int(i) for i in torch.argsort(depths, stable=True) if radii[i] > 0]
    for py in range(height):
        for px in range(width):
            tx, ty = px // tile_size, py // tile_size
            t = 1.0
            for g in order:
                cx, cy = means2d[g].tolist()
                r = float(radii[g]) / tile_size
                # the tile rectangle of gsplat's isect_tiles
                if not (math.floor(cx / tile_size - r) <= tx < math.ceil(cx / tile_size + r)
                        and math.floor(cy / tile_size - r) <= ty < math.ceil(cy / tile_size + r)):
                    continue
                dx, dy = cx - (px + 0.5), cy - (py + 0.5)
                a, b, c = conics[g].tolist()
                sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                alpha = min(0.999, float(opac[g]) * math.exp(-sigma))
                if sigma < 0 or alpha < 1 / 255:
                    continue
                if t * (1 - alpha) <= 1e-4:
                    break
                image[py, px] += colors[g] * alpha * t
                t *= 1 - alpha
            alpha_img[py, px] = 1 - t
    return image, alpha_img


def test_single_gaussian_footprint_is_the_analytic_one():
    """An isotropic Gaussian of std s at depth z projects to N(principal point, (f s / z)² + 0.3)."""
    view, K = camera(size=32, focal=40.0, distance=3.0)
    s, o = 0.1, 0.8
    means = torch.zeros(1, 3, dtype=torch.float64)
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64)
    scales = torch.full((1, 3), s, dtype=torch.float64)
    colors = torch.ones(1, 3, dtype=torch.float64)
    img, alpha, info = raster.rasterization(means, quats, scales, torch.tensor([o], dtype=torch.float64), colors,
                                            view[None], K[None], 32, 32)
    var = (40.0 * s / 3.0) ** 2 + 0.3
    assert int(info["radii"][0, 0]) == math.ceil(3 * math.sqrt(var))
    torch.testing.assert_close(info["means2d"][0, 0], torch.tensor([16.0, 16.0], dtype=torch.float64))
    ys, xs = torch.meshgrid(torch.arange(32, dtype=torch.float64) + 0.5, torch.arange(32, dtype=torch.float64) + 0.5,
                            indexing="ij")
    expected = o * torch.exp(-0.5 * ((xs - 16) ** 2 + (ys - 16) ** 2) / var)
    expected = torch.where(expected >= 1 / 255, expected, torch.zeros_like(expected))
    torch.testing.assert_close(alpha[0, ..., 0], expected)
    torch.testing.assert_close(img[0, ..., 0], expected)  # white Gaussian on black: colour == alpha


def test_nearer_gaussian_covers_the_farther_whatever_the_input_order():
    view, K = camera()
    means = torch.tensor([[0.0, 0, 0.5], [0.0, 0, -0.5]], dtype=torch.float64)  # second is nearer (z = 2.5)
    quats = torch.tensor([[1.0, 0, 0, 0]] * 2, dtype=torch.float64)
    scales = torch.full((2, 3), 0.3, dtype=torch.float64)
    opac = torch.tensor([0.99, 0.99], dtype=torch.float64)
    colors = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]], dtype=torch.float64)
    img, _, _ = raster.rasterization(means, quats, scales, opac, colors, view[None], K[None], 32, 32)
    flipped, _, _ = raster.rasterization(means.flip(0), quats, scales, opac, colors.flip(0), view[None], K[None], 32, 32)
    centre = img[0, 16, 16]
    assert centre[2] > 0.95 and centre[0] < 0.05  # blue (near) in front of red
    torch.testing.assert_close(img, flipped)


@pytest.mark.parametrize("tile_size", [16, 8])
def test_compositing_matches_a_sequential_per_pixel_loop(tile_size):
    view, K = camera(size=24)
    means, quats, scales, opac, coeffs = scene(12, seed=1, sh=1)
    covars = raster.quat_scale_to_covar(quats, scales)
    p = raster.project_gaussians(means, covars, view, K, 24, 20)
    colors = coeffs[:, 0] + 0.5
    img, alpha = raster.composite(p["means2d"], p["conics"], colors, opac, p["radii"], p["depths"], 24, 20, tile_size)
    ref_img, ref_alpha = sequential_reference(p["means2d"], p["conics"], colors, opac, p["radii"], p["depths"], 24, 20,
                                              tile_size)
    assert alpha.max() > 0.5  # the scene is visible
    torch.testing.assert_close(img, ref_img)
    torch.testing.assert_close(alpha, ref_alpha)


def test_transmittance_stops_before_it_falls_below_the_floor():
    """Two opaque layers leave T = 0.001² = 1e-6 < 1e-4: gsplat composites only the first (exclusive stop)."""
    view, K = camera()
    K[0, 2] = K[1, 2] = 16.5  # the means project onto the centre of pixel (16, 16): α = min(0.999, 1)
    means = torch.tensor([[0.0, 0, 0], [0.0, 0, 0.5]], dtype=torch.float64)
    quats = torch.tensor([[1.0, 0, 0, 0]] * 2, dtype=torch.float64)
    scales = torch.full((2, 3), 1.0, dtype=torch.float64)
    colors = torch.tensor([[0.2, 0.2, 0.2], [1.0, 1.0, 1.0]], dtype=torch.float64)
    img, alpha, _ = raster.rasterization(means, quats, scales, torch.ones(2, dtype=torch.float64), colors,
                                         view[None], K[None], 32, 32)
    torch.testing.assert_close(img[0, 16, 16], torch.full((3,), 0.2 * 0.999, dtype=torch.float64))
    torch.testing.assert_close(alpha[0, 16, 16], torch.tensor([0.999], dtype=torch.float64))


def test_projection_and_sh_match_gsplats_pytorch_functions():
    torch_impl = pytest.importorskip("gsplat.cuda._torch_impl")
    view, K = camera(size=64, focal=80.0)
    means, quats, scales, _, _ = scene(300, seed=2)
    means = means * 3  # some Gaussians off-screen or behind the camera
    covars = raster.quat_scale_to_covar(quats, scales)
    ref_cov, _ = torch_impl._quat_scale_to_covar_preci(quats, scales, compute_preci=False, triu=False)
    torch.testing.assert_close(covars, ref_cov)
    radii, means2d, depths, conics, comp = torch_impl._fully_fused_projection(
        means, ref_cov, view[None], K[None], 64, 60, eps2d=0.3, calc_compensations=True)
    p = raster.project_gaussians(means, covars, view, K, 64, 60, antialiased=True)
    assert torch.equal(p["radii"], radii[0].to(torch.int32))
    seen = p["radii"] > 0
    assert 50 < int(seen.sum()) < 300
    for ours, theirs in [(p["means2d"], means2d[0]), (p["conics"], conics[0]), (p["depths"], depths[0]),
                         (p["compensations"], comp[0])]:
        torch.testing.assert_close(ours[seen], theirs[seen])
    dirs = torch.nn.functional.normalize(torch.randn(40, 3, dtype=torch.float64), dim=-1)
    for degree in range(5):
        torch.testing.assert_close(raster.sh_bases(degree, dirs), torch_impl._eval_sh_bases_fast((degree + 1) ** 2, dirs))


def test_gradcheck_float64():
    view, K = camera(size=16, focal=20.0)
    means, quats, scales, opac, coeffs = scene(4, seed=3, sh=4)

    def render(m, q, s, o, c):
        img, alpha, _ = raster.rasterization(m, q, s, o, c, view[None], K[None], 16, 12, sh_degree=1,
                                             render_mode="RGB+ED", tile_size=8)
        return img, alpha

    inputs = [t.clone().requires_grad_(True) for t in (means, quats, scales, opac, coeffs)]
    assert render(*inputs)[1].max() > 0.3
    assert torch.autograd.gradcheck(render, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_culled_gaussians_get_zero_finite_gradients():
    view, K = camera()
    means = torch.tensor([[0.0, 0, 0], [0.0, 0, -3.0], [0, 0, -5.0], [40.0, 0, 0]], dtype=torch.float64,
                         requires_grad=True)  # visible, at the camera, behind it, far off-screen
    quats = torch.tensor([[1.0, 0, 0, 0]] * 4, dtype=torch.float64)
    scales = torch.full((4, 3), 0.2, dtype=torch.float64, requires_grad=True)
    img, _, info = raster.rasterization(means, quats, scales, torch.full((4,), 0.5, dtype=torch.float64),
                                        torch.ones(4, 3, dtype=torch.float64), view[None], K[None], 32, 32)
    assert info["radii"][0].tolist()[1:] == [0, 0, 0] and info["radii"][0, 0] > 0
    img.sum().backward()
    assert torch.isfinite(means.grad).all() and torch.isfinite(scales.grad).all()
    assert means.grad[1:].abs().sum() == 0 and means.grad[0].abs().sum() > 0


def test_absgrad_is_the_sum_over_pixels_of_absolute_per_pixel_gradients():
    """gsplat's densification statistic: Σ_pixels |∂L/∂mean2d| taken pixel by pixel."""
    view, K = camera(size=16, focal=20.0)
    means, quats, scales, opac, coeffs = scene(5, seed=4, sh=1)
    covars = raster.quat_scale_to_covar(quats, scales)
    p = raster.project_gaussians(means, covars, view, K, 16, 16)
    m2d = p["means2d"].detach().clone().requires_grad_(True)
    colors = coeffs[:, 0] + 0.5
    weight = torch.randn(16, 16, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    class Holder:
        absgrad = torch.zeros_like(m2d)

    img, _ = raster.composite(m2d, p["conics"], colors, opac, p["radii"], p["depths"], 16, 16, 8,
                              absgrad_target=Holder)
    (img * weight).sum().backward()
    jac = torch.autograd.functional.jacobian(
        lambda m: raster.composite(m, p["conics"], colors, opac, p["radii"], p["depths"], 16, 16, 8)[0], m2d.detach())
    per_pixel = (jac * weight[..., None, None]).sum(2)  # (H, W, N, 2): gradient of each pixel's loss
    torch.testing.assert_close(Holder.absgrad, per_pixel.abs().sum((0, 1)))
    torch.testing.assert_close(m2d.grad, per_pixel.sum((0, 1)))
    assert (Holder.absgrad >= m2d.grad.abs() - 1e-12).all() and (Holder.absgrad > m2d.grad.abs() + 1e-9).any()


@pytest.mark.gpu
def test_matches_gsplat_on_cuda():
    """Same Gaussians through gsplat's CUDA rasterizer and ours (float32 on the GPU): PSNR >= 60 dB."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from gsplat.rendering import rasterization as gsplat_rasterization

    view, K = camera(size=128, focal=160.0, dtype=torch.float32)
    means, quats, scales, opac, coeffs = (t.float().cuda() for t in scene(3000, seed=5, dtype=torch.float32, sh=16))
    scales = scales * 0.3
    args = (means, quats, scales, opac, coeffs, view[None].cuda(), K[None].cuda(), 128, 128)
    ref, ref_alpha, _ = gsplat_rasterization(*args, sh_degree=3, packed=False)
    ours, ours_alpha, _ = raster.rasterization(*args, sh_degree=3)
    mse = torch.mean((ref.clamp(0, 1) - ours.clamp(0, 1)) ** 2)
    psnr = float(-10 * torch.log10(mse.clamp_min(1e-20)))
    print(f"PSNR(ours, gsplat) = {psnr:.1f} dB at 128 px, 3000 Gaussians")
    assert psnr >= 60.0
    torch.testing.assert_close(ours_alpha, ref_alpha, atol=1e-4, rtol=0)
