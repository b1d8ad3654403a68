"""benchmarks/page_tint.py: the page colour of each prediction, on a prior whose predictions are known."""

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from diffusers import DDPMScheduler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
page_tint = pytest.importorskip("page_tint")

GREY = torch.tensor([0.50, 0.50, 0.50])
OFF = torch.tensor([0.52, 0.48, 0.50])  # what the unconditional branch believes the page is


class KnownPrior:
    """A pixel prior whose ε-prediction makes the clean-image estimate exactly ``GREY`` with any
    caption and exactly ``OFF`` unconditionally, so guidance's effect on the page is known."""

    resolution = 16
    device = torch.device("cpu")

    def __init__(self):
        self.scheduler = DDPMScheduler(beta_schedule="squaredcos_cap_v2")
        self.metadata = SimpleNamespace(edit=SimpleNamespace(guidance_scale=25))

    def encode_images(self, images, generator=None):
        return images

    def decode_latents(self, latents, clamp=True):
        return latents.clamp(0, 1)

    def encode_prompt(self, prompts):
        return list(prompts)

    def predict_noise(self, x_t, t, prompts):
        a = self.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
        x0 = torch.stack([(GREY if p else OFF).view(3, 1, 1).expand(3, 16, 16) for p in prompts])
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()


def test_guidance_multiplies_the_disagreement_of_the_two_branches():
    image = GREY.view(1, 3, 1, 1).expand(1, 3, 16, 16).clone()
    rows = page_tint.page_colours(KnownPrior(), image, "a grey page", (0.2, 0.7), guidance=25.0, n=2)
    assert [frac for frac, _ in rows] == [0.2, 0.7]
    for _, out in rows:
        assert torch.allclose(out[0.0], OFF, atol=1e-4)  # unconditional
        assert torch.allclose(out[1.0], GREY, atol=1e-4)  # conditional
        assert torch.allclose(out[25.0], OFF + 25 * (GREY - OFF), atol=1e-3)  # (0.02, 0.98, 0.50)
