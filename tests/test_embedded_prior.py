"""The embedded prior ``pds-tiny``: procedural data, shipped model folder, probe, quality, CLI, training."""

import io
import json
from pathlib import Path

import pytest
import torch

from tools.prior import data, model, probe

PRIOR_DIR = Path(__file__).resolve().parent.parent / "pds" / "priors" / "pds-tiny"


# ------------------------------------------------------------------------------------- data
def test_vocabulary_covers_the_domain_and_identifiers():
    vocab = data.vocabulary()
    for word in ["circle", "square", "triangle", "star", "heart", "diamond", "ball", "red", "orange", "yellow",
                 "green", "blue", "purple", "pink", "brown", "black", "gray", "white", "background", "sks", "zwx"]:
        assert word in vocab
    assert len(vocab) == len(set(vocab))
    assert data.caption("blue", "star", "yellow") == "a blue star on a yellow background"
    assert data.caption("orange", "heart") == "an orange heart"
    assert data.caption(None, "ball", "white", explicit_white=True) == "a ball on a white background"


def test_batches_images_captions_and_held_out_pairs():
    g = torch.Generator().manual_seed(0)
    imgs, caps, scenes = data.sample_batch(512, g, cpu_generator=torch.Generator().manual_seed(1))
    assert imgs.shape == (512, 3, 64, 64) and imgs.min() >= 0 and imgs.max() <= 1
    words = set(data.vocabulary())
    for c in caps:
        assert set(c.split()) <= words
        assert not set(c.split()) & set(data.IDENTIFIER_TOKENS)
    assert (scenes.color != scenes.background).all()
    pairs = {(data.COLOR_NAMES[c], data.SHAPES[s]) for c, s in zip(scenes.color.tolist(), scenes.shape.tolist())}
    assert not pairs & set(data.HELD_OUT)
    assert len(pairs) > 40  # the rest of the grid is covered


def test_free_colours_cover_the_cube_and_leave_the_palette_stream_alone():
    """``free_color_fraction`` recolours the last share of a batch with any RGB colour; at 0 the
    draw (and so every training run that does not ask for it) is bit-identical."""
    base = data.random_scenes(64, torch.Generator().manual_seed(3))
    same = data.random_scenes(64, torch.Generator().manual_seed(3), free_color_fraction=0.0)
    assert torch.equal(base.fg_rgb, same.fg_rgb) and torch.equal(base.bg_rgb, same.bg_rgb)
    free = data.random_scenes(400, torch.Generator().manual_seed(3), free_color_fraction=0.5)
    pal = torch.tensor([data.COLORS[c] for c in data.COLOR_NAMES], dtype=torch.float32) / 255
    dist = (free.fg_rgb[:, None] - pal[None]).abs().amax(-1).amin(-1)  # to the nearest palette colour
    assert (dist[:200] <= 0.06 + 1e-6).all()  # palette plus jitter
    assert (dist[200:] > 0.1).float().mean() > 0.5  # mostly far from every palette colour
    assert free.fg_rgb[200:].std(0).min() > 0.2 and free.bg_rgb[200:].std(0).min() > 0.2
    assert (free.fg_rgb[200:].amin(1) > 0.8).float().mean() > 0.05  # pale tints, near a white page


def test_autoencoder_fine_tune_keeps_the_anchor_and_scaling(tmp_path):
    """Fine-tuning an autoencoder on free colours with the palette anchor keeps the starting
    scaling factor (a denoiser on its latents stays valid) and reports both PSNRs."""
    from tools.prior import autoencoder

    small = autoencoder.VAEConfig(block_out_channels=(8, 8, 8), norm_num_groups=4)
    start = autoencoder.train_vae(tmp_path / "a", steps=1, batch_size=2, cfg=small)
    with pytest.raises(ValueError, match="anchor_weight needs init_from"):
        autoencoder.train_vae(tmp_path / "b", steps=1, batch_size=2, cfg=small, anchor_weight=1.0)
    scale = json.loads((start / "config.json").read_text())["scaling_factor"]
    tuned = autoencoder.train_vae(tmp_path / "c", steps=2, batch_size=4, init_from=start,
                                  free_color_fraction=0.5, anchor_weight=1.0)
    summary = json.loads((tmp_path / "c" / "vae.json").read_text())
    assert json.loads((tuned / "config.json").read_text())["scaling_factor"] == scale == summary["scaling_factor"]
    assert summary["config"]["block_out_channels"] == [8, 8, 8]  # the starting architecture, not the default
    assert summary["anchor_weight"] == 1.0 and summary["psnr_db_any_colour"] > 0
    assert " anchor " in (tmp_path / "c" / "vae.log").read_text()


def test_flat_shapes_are_crisp_and_flat():
    img = data.render("square", "red", "white")
    red = torch.tensor(data.color_rgb("red"))[:, None, None]
    inside = (img - red).abs().amax(0) < 1e-6
    outside = (img - 1).abs().amax(0) < 1e-6
    # everything is either exact fill, exact background, or an edge pixel (anti-aliased)
    assert (inside | outside).float().mean() > 0.93
    assert inside.any() and outside.any()


def test_example_svg_renders_like_the_training_data(tmp_path):
    cairosvg = pytest.importorskip("cairosvg")
    import numpy as np
    from PIL import Image

    for shape in data.FLAT_SHAPES:
        path = data.write_example_svg(shape, "blue", "yellow", tmp_path / f"{shape}.svg", rotation_deg=15.0)
        text = path.read_text()
        assert 'viewBox="0 0 64 64"' in text and text.count("<path") + text.count("<circle") == 1
        png = cairosvg.svg2png(url=str(path))
        ref = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32) / 255
        ours = data.render(shape, "blue", "yellow", rotation=[np.radians(15.0)])
        assert np.abs(ref - ours.permute(1, 2, 0).numpy()).mean() < 0.005, shape


def test_render_ball_view():
    c2w = data.orbit_camera(30.0, 20.0, distance=4.0)
    img, alpha = data.render_ball_view(c2w, "green", "white", resolution=32, return_alpha=True)
    assert img.shape == (3, 32, 32) and alpha.shape == (1, 32, 32)
    assert alpha[0, 16, 16] == 1 and alpha[0, 0, 0] == 0
    assert img[1, 16, 16] > img[0, 16, 16]  # green
    assert torch.allclose(img[:, 0, 0], torch.ones(3))


# ------------------------------------------------------------------------------- shipped model
def test_shipped_folder_layout_metadata_and_size():
    assert PRIOR_DIR.is_dir(), "pds/priors/pds-tiny is missing: run python -m tools.prior.train"
    for rel in ["model_index.json", "pds_prior.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                "text_encoder/config.json", "tokenizer/tokenizer_config.json", "scheduler/scheduler_config.json"]:
        assert (PRIOR_DIR / rel).is_file(), rel
    size = sum(p.stat().st_size for p in PRIOR_DIR.rglob("*") if p.is_file())
    assert size <= 40 * 1024 * 1024
    meta = json.loads((PRIOR_DIR / "pds_prior.json").read_text())
    assert meta["name"] == "pds-tiny" and meta["resolution"] == 64
    assert set(meta["identifier_tokens"]) <= set(meta["vocabulary"])
    assert [tuple(p) for p in meta["held_out"]] == list(data.HELD_OUT)
    assert {"command", "seed", "steps", "wall_time_s", "device"} <= set(meta["training"])
    assert probe.DEFAULT_PATH.stat().st_size < 4 * 1024 * 1024


@pytest.fixture(scope="module")
def pds_tiny():
    import pds

    return pds.load_prior("pds-tiny", device="cpu")


def test_loads_by_name_and_knows_its_words(pds_tiny):
    import pds

    assert pds_tiny.resolution == 64
    emb = pds_tiny.encode_prompt(["a red circle", ""])
    assert emb.shape[0] == 2 and emb.shape[1] == model.TOKENIZER_MAX_LENGTH
    # identifier tokens are real tokens, not [UNK]
    tok = pds_tiny.tokenizer
    for w in data.IDENTIFIER_TOKENS:
        assert tok.unk_token_id not in tok(w, add_special_tokens=False)["input_ids"]
    pds_tiny.check_prompt("a sks ball")
    with pytest.raises(pds.UnknownWordError) as err:
        pds_tiny.check_prompt("a turquoise circle")
    assert "turquoise" in str(err.value) and "circle" in str(err.value)


def test_probe_reads_the_procedural_data():
    acc = probe.accuracy_on_data(probe.load_probe(), n=256, seed=7)
    assert acc["color"] > 0.97 and acc["shape"] > 0.97 and acc["background"] > 0.97


def test_autoencoder_gives_back_every_colour_step(pds_tiny):
    """The shipped autoencoder represents colours between the palette's (v4): a 0.1 step in any
    channel of any palette colour comes back through encode + decode as at least 0.07 in that
    channel and at most 0.04 in the others (v3, trained on palette colours only, gave back 0.007
    of a green step on blue), so a distillation gradient reaches every colour direction."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from vae_colour import colour_round_trip

    palette = {name: data.color_hex(name) for name in data.COLOR_NAMES}
    for name, _, moved, _ in colour_round_trip(pds_tiny, palette, 0.1, gains=False):
        diag = torch.diagonal(moved)
        off = moved - torch.diag(diag)
        assert diag.min() >= 0.07, (name, moved)
        assert off.abs().max() <= 0.04, (name, moved)


def test_held_out_combinations_small_scale(pds_tiny):
    """Small version of the quality figures in benchmarks/results/prior_training/README.md: the
    held-out (colour, shape) pairs, 3 samples each for seeds 0 and 1, 20 DDIM steps, read back by
    the probe.

    The issue's targets (colour, shape and a white background when the prompt names none, each
    >= 0.9) are asserted as they are. v3 measured 1.00 / 0.92 (33 of 36) / 1.00 at this scale;
    v2 held shape 0.67. Chance is 1/11 for colour and 1/7 for shape."""
    pr = probe.load_probe()
    res = probe.held_out_quality(probe.prior_sample_fn(pds_tiny, steps=20), pr, n_per_combo=3, seeds=(0, 1))
    assert res["n"] == 2 * 3 * len(data.HELD_OUT)
    assert res["color"] >= TARGET_COLOR and res["background"] >= TARGET_WHITE_BACKGROUND, res
    assert res["shape"] >= TARGET_SHAPE, res


# the targets for held-out combinations (see the README for the full-scale figures)
TARGET_COLOR = 0.9
TARGET_WHITE_BACKGROUND = 0.9
TARGET_SHAPE = 0.9


# ----------------------------------------------------------------------------------------- CLI
def test_cli_sample_writes_a_grid(tmp_path, tiny_prior_dir, capsys):
    from PIL import Image

    from pds.cli.sample import main

    out = tmp_path / "grid.png"
    with pytest.raises(SystemExit) as done:
        main(["--model", str(tiny_prior_dir), "--prompt", "a red circle", "--prompt", "a blue star", "-n", "3",
              "--steps", "2", "-o", str(out)])
    assert done.value.code == 0, capsys.readouterr().err
    w, h = Image.open(out).size
    assert w > h > 0  # 3 columns, 2 rows
    capsys.readouterr()
    with pytest.raises(SystemExit) as bad:
        main(["--model", str(tiny_prior_dir), "--prompt", "a mauve circle", "-o", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert bad.value.code == 2 and "mauve" in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------------------------ training
def test_training_script_smoke_and_resume(tmp_path):
    import pds
    from tools.prior import train

    tiny = model.ModelConfig(
        unet=model.UNetConfig(block_out_channels=(8, 16), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                              up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_heads=2, norm_num_groups=4),
        text=model.TextEncoderConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    cfg = train.TrainConfig(out=str(tmp_path / "run"), batch_size=4, steps=2, warmup_steps=1, checkpoint_every=1,
                            log_every=1, data_chunk=1, sample_steps=2, eval_n=0, model=tiny)
    folder = train.train(cfg, argv=["--out", "run"])
    first = json.loads((folder / "pds_prior.json").read_text())["training"]
    assert first["steps"] == 2
    folder = train.train(train.TrainConfig(**{**cfg.__dict__, "steps": 3, "resume": True}), argv=["--resume"])
    assert json.loads((folder / "pds_prior.json").read_text())["training"]["steps"] == 3
    for f in ["loss.csv", "loss.png", "samples.png", "train.log", "checkpoint.pt"]:
        assert (tmp_path / "run" / f).is_file(), f
    prior = pds.load_prior(folder, device="cpu")
    assert prior.predict_noise(torch.zeros(1, 3, 64, 64), torch.tensor([10]),
                               prior.encode_prompt(["a red circle"])).shape == (1, 3, 64, 64)


def test_latent_training_chain_autoencoder_train_resume_export(tmp_path):
    """The shipped design end to end at toy size: an f = 4 autoencoder, a v-prediction latent
    UNet trained in its space, a resumed link of the chain, and the checkpoint exported as a
    folder that ``pds.load_prior`` loads with a real ``vae/`` (gradients reach the pixels)."""
    import pds
    from tools.prior import autoencoder, train

    vae_dir = autoencoder.train_vae(tmp_path / "vae", steps=2, batch_size=2,
                                    cfg=autoencoder.VAEConfig(block_out_channels=(8, 8, 8), norm_num_groups=4))
    assert json.loads((tmp_path / "vae" / "vae.json").read_text())["steps"] == 2
    tiny = model.ModelConfig(
        unet=model.UNetConfig(block_out_channels=(16, 16), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                              up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_heads=2, norm_num_groups=4),
        text=model.TextEncoderConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    cfg = train.TrainConfig(out=str(tmp_path / "run"), batch_size=2, steps=2, warmup_steps=1, checkpoint_every=1,
                            log_every=1, data_chunk=1, sample_steps=2, eval_n=0, vae=str(vae_dir),
                            prediction_type="v_prediction", min_snr_gamma=5.0, model=tiny)
    train.train(cfg, argv=["--out", "run"])
    folder = train.train(train.TrainConfig(**{**cfg.__dict__, "steps": 3, "resume": True}), argv=["--resume"])
    assert "resumed from" in (tmp_path / "run" / "train.log").read_text()
    exported = train.export_checkpoint(tmp_path / "run", tmp_path / "exported")
    for f in (folder, exported):
        meta = json.loads((f / "pds_prior.json").read_text())
        assert meta["training"]["steps"] == 3 and meta["version"] == model.PRIOR_VERSION
        assert (f / "vae" / "config.json").is_file()
    prior = pds.load_prior(exported, device="cpu")
    assert prior.vae is not None and prior.vae_scale_factor == 4 and prior.prediction_type == "v_prediction"
    img = torch.full((1, 3, 64, 64), 0.5, requires_grad=True)
    z = prior.encode_images(img, generator=torch.Generator().manual_seed(0))
    assert z.shape == (1, 4, 16, 16)
    z.square().mean().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
