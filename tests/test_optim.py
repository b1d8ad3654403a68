"""pds.optim.VectorAdam: Adam where groups ask for it elementwise, a shared second moment per vector."""

import pytest
import torch

from pds.optim import VectorAdam


def _quadratic(x: torch.Tensor, target: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (scale * (x - target) ** 2).sum()


def test_without_vector_groups_it_is_torch_adam():
    g = torch.Generator().manual_seed(0)
    target, scale = torch.randn(5, 3, generator=g), torch.rand(5, 3, generator=g) * 10
    a = torch.randn(5, 3, generator=g).requires_grad_()
    b = a.detach().clone().requires_grad_()
    ours = VectorAdam([{"params": [a], "lr": 0.05, "name": "fill"}], betas=(0.8, 0.99))
    theirs = torch.optim.Adam([b], lr=0.05, betas=(0.8, 0.99), foreach=False)
    for _ in range(50):
        for opt, x in ((ours, a), (theirs, b)):
            opt.zero_grad()
            _quadratic(x, target, scale).backward()
            opt.step()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_vector_steps_along_its_gradient_not_its_sign_pattern():
    """One step from rest: Adam moves every channel by lr (the sign pattern); VectorAdam moves
    parallel to the gradient, with the gradient's RMS normalised to lr."""
    grad = torch.tensor([[1.0, 0.01, -0.5]])
    steps = {}
    for name, groups in (("adam", ()), ("vector", ("fill",))):
        x = torch.zeros(1, 3, requires_grad=True)
        opt = VectorAdam([{"params": [x], "lr": 0.1, "name": "fill"}], vector_groups=groups)
        x.grad = grad.clone()
        opt.step()
        steps[name] = -x.detach()
    torch.testing.assert_close(steps["adam"], 0.1 * grad.sign(), rtol=1e-4, atol=1e-6)
    rms = grad.pow(2).mean().sqrt()
    torch.testing.assert_close(steps["vector"], 0.1 * grad / rms, rtol=1e-4, atol=1e-6)
    cos = torch.nn.functional.cosine_similarity(steps["vector"], grad)
    assert cos.item() == pytest.approx(1.0, abs=1e-6)


def test_vector_groups_converge_and_other_groups_stay_elementwise():
    g = torch.Generator().manual_seed(1)
    colour = torch.rand(4, 4, generator=g).requires_grad_()
    points = torch.randn(6, 2, generator=g).requires_grad_()
    c_target, p_target = torch.rand(4, 4, generator=g), torch.randn(6, 2, generator=g)
    opt = VectorAdam([{"params": [colour], "lr": 0.02, "name": "fill"}, {"params": [points], "lr": 0.02, "name": "points"}],
                     vector_groups=("fill", "stroke"))
    for _ in range(600):
        opt.zero_grad()
        (((colour - c_target) ** 2).sum() + ((points - p_target) ** 2).sum()).backward()
        opt.step()
    assert (colour - c_target).abs().max() < 0.02 and (points - p_target).abs().max() < 0.02
    assert opt.state[colour]["v"].shape == (4, 1) and opt.state[points]["v"].shape == (6, 2)


def test_bad_hyperparameters_are_refused():
    x = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="learning rate"):
        VectorAdam([x], lr=float("nan"))
    with pytest.raises(ValueError, match="betas"):
        VectorAdam([x], betas=(1.0, 0.999))
