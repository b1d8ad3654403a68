"""Shared fixtures: tiny random priors written once per test session (no network, no weights)."""

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_prior_dir(tmp_path_factory):
    """A pixel-space 32×32 prior folder (BERT word tokenizer, closed vocabulary)."""
    from pds.testing import save_tiny_prior

    return save_tiny_prior(tmp_path_factory.mktemp("tiny_pixel_prior"), latent=False)


@pytest.fixture(scope="session")
def tiny_latent_prior_dir(tmp_path_factory):
    """A Stable-Diffusion-like latent prior folder (tiny VAE, CLIP tokenizer), 32×32 images."""
    from pds.testing import save_tiny_prior

    return save_tiny_prior(tmp_path_factory.mktemp("tiny_latent_prior"), latent=True)


@pytest.fixture(scope="session")
def tiny_prior(tiny_prior_dir):
    import pds

    return pds.load_prior(tiny_prior_dir, device="cpu")


@pytest.fixture(scope="session")
def tiny_latent_prior(tiny_latent_prior_dir):
    import pds

    return pds.load_prior(tiny_latent_prior_dir, device="cpu")
