"""The Distiller's contract: PDS/SDS/DDS maths, batching, validation, and optimisation."""

import importlib.util
import math
from pathlib import Path


import pytest
import torch
from diffusers import DDPMScheduler

import pds
from pds import maths


class FakePrior:
    """A prior whose noise prediction ignores ``x_t``: ε̂ depends only on the prompt.

    Each prompt maps to a fixed random tensor, so the PDS gradient must reduce to
    ψ Δx0 + χ Δε̂ whatever noises the step draws.
    """

    resolution = 8

    def __init__(self, shape=(3, 8, 8), nan=False):
        self.scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
        self.shape = shape
        self.nan = nan
        self.calls = []
        self.table = {}

    def encode_prompt(self, prompts):
        out = []
        for p in prompts:
            if p not in self.table:
                g = torch.Generator().manual_seed(abs(hash(p)) % (2**31))
                self.table[p] = torch.randn(self.shape, generator=g)
            out.append(self.table[p])
        return torch.stack(out)

    def encode_images(self, images, generator=None):
        return images * 2 - 1

    def decode_latents(self, latents):
        return (latents / 2 + 0.5).clamp(0, 1)

    def predict_noise(self, x_t, t, embeddings):
        self.calls.append(x_t.shape[0])
        eps = embeddings.clone()
        if self.nan:
            eps[0, 0, 0, 0] = float("nan")
        return eps


def test_pds_and_dds_are_zero_when_source_equals_target(tiny_prior):
    g = torch.Generator().manual_seed(1)
    z = tiny_prior.encode_images(torch.rand(2, 3, 32, 32, generator=g))
    for method in ("pds", "dds"):
        d = pds.Distiller(tiny_prior, method=method)
        grad = d.gradient(z, z.clone(), "a red circle", "a red circle", generator=torch.Generator().manual_seed(3))
        assert grad.shape == z.shape
        assert torch.count_nonzero(grad) == 0, method


def test_pds_is_not_zero_when_prompts_differ(tiny_prior):
    z = tiny_prior.encode_images(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    d = pds.Distiller(tiny_prior)
    grad = d.gradient(z, z.clone(), "a blue circle", "a red circle", generator=torch.Generator().manual_seed(3))
    assert grad.abs().max() > 0


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("t", [21, 101, 501, 979])
def test_pds_reduces_to_psi_chi_identity(seed, t):
    prior = FakePrior()
    d = pds.Distiller(prior, guidance_scale=7.0)
    gen = torch.Generator().manual_seed(100 + seed)
    x_tgt, x_src = torch.randn(2, 3, 8, 8, generator=gen), torch.randn(2, 3, 8, 8, generator=gen)
    grad = d.gradient(x_tgt, x_src, "blue", "red", t=t, generator=torch.Generator().manual_seed(seed))
    tt = torch.tensor([t, t])
    terms = maths.step_terms(d.alphas_cumprod, d.betas, tt, tt - d.stride)
    psi, chi = maths.pds_coefficients(terms)
    emb = prior.encode_prompt(["blue", "blue", "red", "red", ""])
    eps_u = emb[4]
    eps_tgt = maths.guided(eps_u, emb[0], 7.0)
    eps_src = maths.guided(eps_u, emb[2], 7.0)
    expected = psi * (x_tgt - x_src) + chi * (eps_tgt - eps_src)
    torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-4)


def test_reference_discretization_matches_published_psi_values():
    sched = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    t = torch.tensor([21, 101, 501, 979])
    psi, chi = maths.pds_coefficients(maths.step_terms(sched.alphas_cumprod, sched.betas, t, t - 2))
    torch.testing.assert_close(psi.flatten(), torch.tensor([1.61, 0.31, 0.032, 0.004]), rtol=0.06, atol=6e-4)
    assert ((chi > 0.07) & (chi < 0.25)).all()
    psi_exact, _ = maths.pds_coefficients(maths.step_terms(sched.alphas_cumprod.double(), sched.betas, t, t - 2, "exact"))
    assert psi_exact.abs().max() < 1e-9


def test_sds_matches_its_formula():
    prior = FakePrior()
    d = pds.Distiller(prior, method="sds", guidance_scale=5.0)
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    grad = d.gradient(x, x, "blue", "red", t=301, generator=torch.Generator().manual_seed(42))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(42))
    emb = prior.encode_prompt(["", "blue"])
    eps = maths.guided(emb[0], emb[1], 5.0)
    a = prior.scheduler.alphas_cumprod[301]
    torch.testing.assert_close(grad, (1 - a) * (eps - noise))
    assert prior.calls == [2]  # uncond + cond of the target only


def test_dds_matches_its_formula():
    prior = FakePrior()
    d = pds.Distiller(prior, method="dds", guidance_scale=3.0)
    x = torch.randn(1, 3, 8, 8)
    grad = d.gradient(x, x + 1, "blue", "red", t=301)
    emb = prior.encode_prompt(["", "blue", "red"])
    expected = maths.guided(emb[0], emb[1], 3.0) - maths.guided(emb[0], emb[2], 3.0)
    torch.testing.assert_close(grad[0], expected)


@pytest.mark.parametrize("method,batch", [("pds", 4), ("dds", 4), ("sds", 2)])
def test_one_batched_unet_forward_per_step(tiny_prior, method, batch):
    calls = []
    handle = tiny_prior.unet.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    try:
        d = pds.Distiller(tiny_prior, method=method)
        z = torch.zeros(1, 3, 32, 32)
        d.gradient(z, z, "a blue circle", "a red circle")
    finally:
        handle.remove()
    assert calls == [batch]


def test_loss_backward_reaches_images_with_expected_scale():
    prior = FakePrior()
    d = pds.Distiller(prior, t=201)
    tgt = torch.rand(2, 3, 8, 8, requires_grad=True)
    src = torch.rand(2, 3, 8, 8)
    loss = d.loss(tgt, src, "blue", "red", generator=torch.Generator().manual_seed(5))
    loss.backward()
    g = d.gradient(tgt.detach() * 2 - 1, src * 2 - 1, "blue", "red", generator=torch.Generator().manual_seed(5))
    # ∂L/∂z = g / (numel · B) and z = 2x − 1.
    torch.testing.assert_close(tgt.grad, 2 * g / (g.numel() * 2))


@pytest.mark.parametrize("which", ["tiny_prior", "tiny_latent_prior"])
def test_pixel_and_latent_priors_end_to_end(request, which):
    prior = request.getfixturevalue(which)
    spec = importlib.util.spec_from_file_location("blobs", Path(__file__).parents[1] / "examples" / "gaussian_blobs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    blobs = mod.GaussianBlobs(n=6, size=32)
    before = {k: v[0].detach().clone() for k, v in blobs.parameters().items()}
    seen = []
    d = pds.Distiller(prior, generator=torch.Generator().manual_seed(0))
    result = d.optimize(blobs, None, "a red circle", "a blue circle", steps=3, progress=False,
                        callback=lambda step, img, loss: seen.append((step, img.shape, loss)))
    assert result.steps == 3 and len(result.losses) == 3
    assert all(math.isfinite(v) for v in result.losses)
    assert [s for s, _, _ in seen] == [0, 1, 2] and seen[0][1] == (1, 3, 32, 32)
    moved = [k for k, v in blobs.parameters().items() if not torch.equal(v[0].detach(), before[k])]
    assert moved, "no parameter moved"


def test_optimize_is_reproducible_with_a_seed(tiny_prior):
    def run():
        spec = importlib.util.spec_from_file_location("blobs", Path(__file__).parents[1] / "examples" / "gaussian_blobs.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        blobs = mod.GaussianBlobs(n=4, size=32)
        pds.Distiller(tiny_prior).optimize(blobs, None, "a red circle", "a blue circle", steps=2, progress=False,
                                           generator=torch.Generator().manual_seed(9))
        return blobs.colors.detach().clone()

    torch.testing.assert_close(run(), run())


# ----------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors(tiny_prior):
    d = pds.Distiller(tiny_prior)
    ok = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        d.loss(ok * 3, ok, "a red circle", "a red circle")
    with pytest.raises(ValueError, match="B, 3, H, W"):
        d.loss(torch.rand(1, 4, 32, 32), ok, "a red circle", "a red circle")
    with pytest.raises(ValueError, match="same shape"):
        d.loss(ok, torch.rand(1, 3, 16, 16), "a red circle", "a red circle")
    with pytest.raises(ValueError, match="NaN"):
        d.loss(torch.full((1, 3, 32, 32), float("nan")), ok, "a red circle", "a red circle")
    with pytest.raises(ValueError, match="unknown method"):
        pds.Distiller(tiny_prior, method="xds")
    with pytest.raises(ValueError, match="outside the schedule"):
        pds.Distiller(tiny_prior, t=5000)
    with pytest.raises(ValueError, match="outside the schedule"):
        d.gradient(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32), "a", "a", t=0)
    with pytest.raises(ValueError, match="t_range"):
        pds.Distiller(tiny_prior, t_range=(0.9, 0.1))
    with pytest.raises(pds.UnknownWordError, match="known words"):
        d.loss(ok, ok, "a purple circle", "a red circle")


def test_non_finite_prediction_is_reported():
    d = pds.Distiller(FakePrior(nan=True))
    with pytest.raises(pds.NonFiniteError, match="non-finite"):
        d.gradient(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), "a", "b", t=101)


def test_load_prior_errors(tmp_path):
    with pytest.raises(pds.PriorError, match="neither an embedded prior"):
        pds.load_prior(str(tmp_path / "missing" / "model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(pds.PriorError, match="no unet/"):
        pds.load_prior(tmp_path / "empty")


def test_timesteps_follow_the_ddim_grid(tiny_prior):
    d = pds.Distiller(tiny_prior, t_range=(0.02, 0.98), num_inference_steps=500)
    t = d.sample_timesteps(10000, torch.Generator().manual_seed(0))
    assert t.min() == 21 and t.max() == 979
    assert ((t - 1) % 2 == 0).all()


class _Canvas:
    """A renderer whose parameter is the image itself ``(1, 3, 32, 32)``."""

    def __init__(self, seed: int = 0):
        self.x = (0.25 + 0.5 * torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed))).requires_grad_()

    def parameters(self):
        return {"image": [self.x]}

    def render(self):
        return self.x


def _one_sgd_step(prior, space: str, seed: int = 5) -> torch.Tensor:
    import functools

    canvas = _Canvas()
    d = pds.Distiller(prior, guidance_scale=7.5, gradient_space=space)
    d.optimize(canvas, None, "a red circle", "a blue circle", steps=1, lr=1.0, progress=False,
               generator=torch.Generator().manual_seed(seed), optimizer_cls=functools.partial(torch.optim.SGD))
    return canvas.x.detach().clone()


def test_image_gradient_space_applies_the_decoded_latent_step(tiny_latent_prior):
    """``gradient_space="image"``: one SGD step moves the render by the decoder's image of the
    latent gradient, ``−J_D g`` (a difference of two decodes), scaled by the loss normalisation."""
    x0 = _Canvas().x.detach()
    d = pds.Distiller(tiny_latent_prior, guidance_scale=7.5, gradient_space="image")
    gen = torch.Generator().manual_seed(5)  # the draws optimize makes: source, render, then the step
    z_src = d.encode(x0, gen)
    z = d.encode(x0, gen)
    g = d.gradient(z, z_src, "a blue circle", "a red circle", generator=gen)
    delta = d.image_gradient(z, g, (32, 32))
    torch.testing.assert_close(_one_sgd_step(tiny_latent_prior, "image"), x0 - delta / x0.numel(), rtol=1e-4, atol=1e-6)
    assert not torch.allclose(_one_sgd_step(tiny_latent_prior, "latent"), x0 - delta / x0.numel())


def test_image_gradient_space_is_the_latent_one_on_pixel_priors(tiny_prior):
    torch.testing.assert_close(_one_sgd_step(tiny_prior, "image"), _one_sgd_step(tiny_prior, "latent"))
    with pytest.raises(ValueError, match="gradient_space"):
        pds.Distiller(tiny_prior, gradient_space="pixels")


@pytest.mark.parametrize("method", ["pds", "sds", "dds"])
def test_guidance_interval_guides_only_inside_it(tiny_prior, method):
    """Inside the interval the gradient is the plain guided one; outside, the one with w = 1;
    an interval covering the whole schedule changes nothing."""
    z = tiny_prior.encode_images(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    z_src = tiny_prior.encode_images(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)))

    def grad(t, **kw):
        d = pds.Distiller(tiny_prior, method=method, guidance_scale=7.5, **kw)
        return d.gradient(z, z_src, "a blue circle", "a red circle", t=t, generator=torch.Generator().manual_seed(3))

    for t in (201, 801):
        assert torch.equal(grad(t, guidance_interval=(0.0, 1.0)), grad(t))
    inside, outside = grad(801, guidance_interval=(0.7, 1.0)), grad(201, guidance_interval=(0.7, 1.0))
    assert torch.equal(inside, grad(801))
    unguided = pds.Distiller(tiny_prior, method=method, guidance_scale=1.0).gradient(
        z, z_src, "a blue circle", "a red circle", t=201, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(outside, unguided, rtol=1e-5, atol=1e-6) and not torch.allclose(outside, grad(201))


def test_guidance_interval_per_sample_in_a_batch():
    """Each sample of a batch gets the weight of its own timestep (one UNet call for all)."""
    prior = FakePrior()
    d = pds.Distiller(prior, method="dds", guidance_scale=5.0, guidance_interval=(0.5, 1.0))
    x = torch.zeros(2, 3, 8, 8)
    (eps,) = d._guided_noise([x], [["a", "a"]], torch.tensor([101, 901]))
    u, c = prior.encode_prompt([""])[0], prior.encode_prompt(["a"])[0]
    # u + 1·(c − u) is c only up to float32 rounding at u's magnitude (c near 0 loses digits)
    assert torch.allclose(eps[0], c, atol=1e-5) and torch.allclose(eps[1], u + 5.0 * (c - u), atol=1e-5)


def test_bad_guidance_interval_is_refused(tiny_prior):
    for bad in ((0.9, 0.5), (-0.1, 0.5), (0.5, 1.5)):
        with pytest.raises(ValueError, match="guidance_interval"):
            pds.Distiller(tiny_prior, guidance_interval=bad)
