"""The prior protocol, the method registry, the metadata schema and the multi-view editor, used
from their documentation alone (no diffusers model involved)."""

from __future__ import annotations

import json

import pytest
import torch

import pds
from pds import methods
from pds.priors import Conditioning, MetadataError, PriorMetadata, read_metadata
from pds.views import MultiViewEditor


class _Schedule:
    """The scheduler attributes the protocol asks for: a linear-beta DDPM schedule."""

    def __init__(self, T: int = 1000):
        self.betas = torch.linspace(1e-4, 2e-2, T)
        self.alphas = 1 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)
        self.config = type("Config", (), {"num_train_timesteps": T})()


class ThirdPartyPrior:
    """A prior written from ``pds.priors.Prior``'s docstring: pixel space at 16 px, a
    "denoiser" that predicts the noise needed to reach a per-prompt colour, and SDXL-style
    conditioning with two tensors (``Conditioning``)."""

    resolution = 16
    latent_channels = 3
    vae_scale_factor = 1
    device = torch.device("cpu")

    def __init__(self):
        self.scheduler = _Schedule()
        self.colors = {"": torch.zeros(3), "red": torch.tensor([1.0, -1, -1]), "blue": torch.tensor([-1.0, -1, 1])}
        self.calls = 0

    def encode_prompt(self, prompts):
        hidden = torch.stack([self.colors[p] for p in prompts])[:, None, :]
        pooled = torch.tensor([[float(bool(p))] for p in prompts])
        return Conditioning({"hidden": hidden, "pooled": pooled})

    def encode_images(self, images, generator=None):
        x = torch.nn.functional.interpolate(images, size=(16, 16), mode="bilinear", align_corners=False)
        return x * 2 - 1

    def decode_latents(self, latents):
        return (latents / 2 + 0.5).clamp(0, 1)

    def predict_noise(self, x_t, t, conditioning):
        self.calls += 1
        assert isinstance(conditioning, Conditioning) and len(conditioning) == x_t.shape[0]
        a = self.scheduler.alphas_cumprod[t].reshape(-1, 1, 1, 1)
        target = conditioning.tensors["hidden"][:, 0, :, None, None] * conditioning.tensors["pooled"][:, :, None, None]
        return ((x_t - a.sqrt() * target) / (1 - a).sqrt()).float()


class Blob:
    """A renderer: one flat colour."""

    def __init__(self, rgb):
        self.color = torch.tensor(rgb).requires_grad_(True)

    def parameters(self):
        return {"fill": [self.color]}

    def render(self):
        return self.color.clamp(0, 1)[:, None, None].expand(3, 16, 16)


def test_third_party_prior_runs_gradient_loss_and_optimize():
    prior = ThirdPartyPrior()
    assert isinstance(prior, pds.Prior)
    d = pds.Distiller(prior, method="pds", guidance_scale=5.0, generator=torch.Generator().manual_seed(0))
    src = Blob([1.0, 0.0, 0.0]).render()[None].detach()
    z = prior.encode_images(src)
    g = d.gradient(z, z, "blue", "red")
    assert g.shape == z.shape and torch.isfinite(g).all() and g.abs().sum() > 0
    img = src.clone().requires_grad_(True)
    d.loss(img, src, "blue", "red").backward()
    assert img.grad is not None and torch.isfinite(img.grad).all()
    blob = Blob([0.9, 0.1, 0.1])  # inside (0, 1): render() clamps
    res = d.optimize(blob, None, "red", "blue", steps=40, lr=0.05, progress=False)
    assert res.steps == 40 and prior.calls >= 40
    assert blob.color[2] > 0.3 and blob.color[0] < 0.8  # moved from red towards blue


def test_method_registry_drives_the_distiller_and_the_clis():
    assert methods.names()[:3] == ("pds", "sds", "dds")
    from pds.cli.svg import edit

    choices = next(p for p in edit.params if p.name == "method").type.choices
    assert tuple(choices) == methods.names()
    with pytest.raises(ValueError, match="choose one of pds, sds, dds"):
        pds.Distiller(ThirdPartyPrior(), method="nope")


def test_a_new_method_is_one_registry_entry():
    name = "half_sds"
    methods.register(methods.Method(name, "SDS at half strength", uses_source=False, draws_prev_noise=False,
                                    gradient=lambda s: 0.5 * (1 - s.terms.a_t) * (s.eps_tgt - s.noise_t)))
    try:
        prior = ThirdPartyPrior()
        z = torch.zeros(1, 3, 16, 16)
        full = pds.Distiller(prior, method="sds", t=500).gradient(z, z, "blue", "red",
                                                                 generator=torch.Generator().manual_seed(1))
        half = pds.Distiller(prior, method=name, t=500).gradient(z, z, "blue", "red",
                                                                generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(half, 0.5 * full)
    finally:
        del methods.METHODS[name]


def test_metadata_schema_reads_validates_and_round_trips(tmp_path):
    raw = {"name": "x", "version": 2, "resolution": 64, "vocabulary": ["A", "red"], "identifier_tokens": ["sks"],
           "edit_steps": 300, "dreambooth": {"learning_rate": 5e-5, "train_text_encoder": True},
           "sampling": {"guidance_scale": 5.0}, "training": {"steps": 3}}
    (tmp_path / "pds_prior.json").write_text(json.dumps(raw))
    meta = read_metadata(tmp_path)
    assert meta.vocabulary == ("a", "red") and meta.edit.steps == 300 and meta.dreambooth.learning_rate == 5e-5
    assert meta.sampling.guidance_scale == 5.0 and meta.extra["training"] == {"steps": 3}
    again = PriorMetadata.from_json(meta.to_json())
    assert again == meta
    for bad, key in (({"resolution": "big"}, "resolution"), ({"edit": {"t_min": 0.9, "t_max": 0.5}}, "t_min"),
                     ({"dreambooth": {"train_text_encoder": "yes"}}, "train_text_encoder"), ([], "object")):
        with pytest.raises(MetadataError, match=key):
            PriorMetadata.from_json(bad)
    (tmp_path / "pds_prior.json").write_text("{not json")
    with pytest.raises(MetadataError, match="not valid JSON"):
        read_metadata(tmp_path)


def test_multi_view_editor_schedule_cache_and_step():
    prior = ThirdPartyPrior()
    d = pds.Distiller(prior, guidance_scale=5.0)
    encoded = []

    def source(i):
        encoded.append(i)
        return torch.full((3, 32, 32), i / 4.0)

    ed = MultiViewEditor(d, source, 4, "blue", "red", view_update_every=3, render_size=lambda i: (16, 16),
                         generator=torch.Generator().manual_seed(0))
    views = []
    for _ in range(9):
        st = ed.step(lambda i: torch.full((3, 16, 16), i / 4.0, requires_grad=True))
        views.append(st.index)
        assert torch.isfinite(st.loss) and st.metrics["view"] == st.index and "psnr_to_source" in st.metrics
    assert views[0] == views[1] == views[2] and views[3] == views[4] == views[5]
    # each view's source is read once for its latent and once for the metric image, never again
    assert set(encoded) == set(views) and all(encoded.count(v) == 2 for v in set(views))
    with pytest.raises(ValueError):
        MultiViewEditor(d, source, 0, "a", "b")
