"""DDIM sampling and SDEdit over the prior protocol."""

import pytest
import torch

from pds.sampling import ddim_timesteps, sample, sdedit


def test_ddim_grid():
    ts = ddim_timesteps(1000, 20, offset=1)
    assert ts[0] == 951 and ts[-1] == 1 and len(ts) == 20
    assert (ts[:-1] - ts[1:] == 50).all()
    trailing = ddim_timesteps(1000, 20, spacing="trailing")
    assert trailing[0] == 999 and len(trailing) == 20 and trailing[-1] == 49
    with pytest.raises(ValueError):
        ddim_timesteps(1000, 0)


@pytest.mark.parametrize("which", ["tiny_prior", "tiny_latent_prior"])
def test_sample_shapes_range_and_seed(request, which):
    prior = request.getfixturevalue(which)
    a = sample(prior, ["a red circle", "a blue star"], steps=4, generator=torch.Generator().manual_seed(0))
    b = sample(prior, ["a red circle", "a blue star"], steps=4, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 3, 32, 32)
    assert a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a, b)


def test_sdedit_small_strength_stays_close_to_input(tiny_prior):
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    low = sdedit(tiny_prior, images, "a blue circle", strength=0.05, steps=20, generator=torch.Generator().manual_seed(0))
    high = sdedit(tiny_prior, images, "a blue circle", strength=1.0, steps=20, generator=torch.Generator().manual_seed(0))
    assert low.shape == images.shape
    # One DDIM step from t=1 barely changes the image; the full schedule replaces it.
    assert (low - images).abs().mean() < 0.05 < (high - images).abs().mean()
    with pytest.raises(ValueError, match="strength"):
        sdedit(tiny_prior, images, "a blue circle", strength=0.0)
