"""NeRF backend (the nerfstudio plugin): the README's three stages on a CPU, tiny and fast.

The stages run in this process on the example scene (10 views of 32×32) with a small nerfacto
(the shape options are the same in every stage, as a user must keep them) and the tiny random
prior, for a few steps each. The commands are parsed by nerfstudio's own ``ns-train`` parser
from the README's flags, so what is tested is what a user types.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

nerfstudio = pytest.importorskip("nerfstudio", reason="the NeRF backend needs nerfstudio (pip install 'pds[nerf]')")
tyro = pytest.importorskip("tyro")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::RuntimeWarning")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples" / "nerf_ball"))

CPU = ["--machine.device-type", "cpu", "--pipeline.model.implementation", "torch", "--vis", "tensorboard",
       "--logging.local-writer.enable", "False"]
#: A small nerfacto. Options that change tensor shapes must be the same in every stage.
SMALL = ["--pipeline.model.num-levels", "4", "--pipeline.model.log2-hashmap-size", "12",
         "--pipeline.model.max-res", "64", "--pipeline.model.hidden-dim", "16",
         "--pipeline.model.hidden-dim-color", "16", "--pipeline.model.num-proposal-samples-per-ray", "16", "8",
         "--pipeline.model.num-nerf-samples-per-ray", "8"]
SRC, TGT = "a red ball", "a blue ball"


def parse(args):
    """The config ``ns-train ARGS`` would run."""
    from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion

    return tyro.cli(AnnotatedBaseConfigUnion, args=[str(a) for a in args])


def prepare(config, out: Path, name: str):
    """What ``ns-train`` does between parsing and training (``nerfstudio.scripts.train.main``)."""
    config.output_dir, config.timestamp = Path(out), name
    if config.data:
        config.pipeline.datamanager.data = config.data
    config.save_config()
    return config


def run(config, out: Path, name: str):
    """``ns-train`` after parsing, keeping the trainer for inspection."""
    prepare(config, out, name)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    trainer.train()
    return trainer


def checkpoint(trainer, weights_only: bool = False) -> dict:
    """The run's checkpoint. nerfstudio's own cannot be loaded with ``weights_only=True`` (numpy
    learning rates); ours can, so ns-viewer/ns-render load them under torch >= 2.6."""
    from pds.nerf.compat import load_checkpoint_file

    (path,) = sorted(trainer.checkpoint_dir.glob("step-*.ckpt"))
    return torch.load(path, map_location="cpu", weights_only=True) if weights_only else load_checkpoint_file(path)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nerf")


@pytest.fixture(scope="module")
def scene(workdir) -> Path:
    from make_scene import make_scene

    return make_scene(workdir / "ball", views=10, size=32)


@pytest.fixture(scope="module")
def nerfacto_run(scene, workdir):
    """Stage 0, ``ns-train nerfacto --data D --pipeline.model.use_appearance_embedding False``, 2 steps.

    The parallel data manager is swapped for the vanilla one (same data, no worker process to
    spawn) and LPIPS is made lazy (no AlexNet download); the checkpoint is a plain nerfacto one.
    """
    from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig

    from pds.nerf.compat import lazy_lpips

    config = parse(["nerfacto", "--data", scene, "--pipeline.model.use_appearance_embedding", "False", *CPU, *SMALL,
                    "--max-num-iterations", "2"])
    config.pipeline.datamanager = VanillaDataManagerConfig(dataparser=config.pipeline.datamanager.dataparser,
                                                           train_num_rays_per_batch=256)
    with lazy_lpips():
        return run(config, workdir / "out", "nerfacto")


@pytest.fixture(scope="module")
def pds_run(scene, nerfacto_run, tiny_prior_dir, workdir):
    """Stage 1 as in the README (underscored flags), 3 steps on half-size views in 2 chunks each."""
    config = parse(["pds", "--data", scene, "--load-dir", nerfacto_run.checkpoint_dir,
                    "--pipeline.pds.src_prompt", SRC, "--pipeline.pds.tgt_prompt", TGT,
                    "--pipeline.pds.sd_pretrained_model_or_path", tiny_prior_dir, *CPU, *SMALL,
                    "--max-num-iterations", "3", "--pipeline.pds.render_scale", "0.5",
                    "--pipeline.pds.chunk_rays", "128", "--pipeline.pds.view_update_every", "2"])
    return run(config, workdir / "out", "pds")


@pytest.fixture(scope="module")
def refinement_run(pds_run, tiny_prior_dir, workdir):
    """Stage 2 as in the README, 3 steps with a dataset update every step (its eval_outputs are
    written by the same code as stage 1's, tested there)."""
    config = parse(["pds_refinement", "--data", pds_run.base_dir / "eval_outputs",
                    "--load-dir", pds_run.checkpoint_dir, "--pipeline.pds.tgt_prompt", TGT,
                    "--pipeline.pds.sd_pretrained_model_or_path", tiny_prior_dir, *CPU, *SMALL,
                    "--max-num-iterations", "3", "--pipeline.pds.update_every", "1",
                    "--pipeline.datamanager.train-num-rays-per-batch", "128", "--save-eval-outputs", "False"])
    return run(config, workdir / "out", "refine")


# ----------------------------------------------------------------------------------- registration
def test_import_pds_nerf_does_not_import_nerfstudio():
    code = "import sys, pds, pds.nerf; assert 'nerfstudio' not in sys.modules, 'import pds.nerf imported nerfstudio'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_methods_are_registered_with_nerfstudio():
    from nerfstudio.plugins.registry import discover_methods

    from pds.nerf.trainer import PDSTrainerConfig

    methods, descriptions = discover_methods()
    assert {"pds", "pds_refinement"} <= set(methods), "reinstall pds (pip install -e .) to register the entry points"
    assert isinstance(methods["pds"], PDSTrainerConfig) and methods["pds"].max_num_iterations == 30000
    assert methods["pds_refinement"].max_num_iterations == 15000
    assert "stage 1" in descriptions["pds"] and "stage 2" in descriptions["pds_refinement"]


def test_plain_ns_train_nerfacto_runs_offline(scene, tmp_path):
    """The seed's first command through nerfstudio's own console script, in a fresh process.

    nerfacto's constructor would download AlexNet weights for its LPIPS metric; discovering our
    plugin makes the metric lazy, so the command works without network (see pds.nerf.config)."""
    ns_train = Path(sys.executable).with_name("ns-train")
    if not ns_train.exists():
        pytest.skip("no ns-train console script beside this interpreter")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1", "TORCH_HOME": str(tmp_path / "torch_home")}
    done = subprocess.run([str(ns_train), "nerfacto", "--data", str(scene),
                           "--pipeline.model.use_appearance_embedding", "False", *CPU, *SMALL,
                           "--pipeline.datamanager.train-num-rays-per-batch", "128", "--max-num-iterations", "1",
                           "--output-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list((tmp_path / "out").rglob("nerfstudio_models/step-*.ckpt")), done.stdout[-2000:]
    assert not (tmp_path / "torch_home").exists()  # nothing was downloaded into the (empty) hub cache


def test_readme_flags_with_underscores_or_hyphens(tmp_path):
    common = ["--data", tmp_path, "--load-dir", tmp_path]
    a = parse(["pds", *common, "--pipeline.pds.src_prompt", SRC, "--pipeline.pds.tgt_prompt", TGT,
               "--pipeline.pds.sd_pretrained_model_or_path", "some/model"])
    b = parse(["pds", *common, "--pipeline.pds.src-prompt", SRC, "--pipeline.pds.tgt-prompt", TGT,
               "--pipeline.pds.sd-pretrained-model-or-path", "some/model"])
    assert a.pipeline.pds == b.pipeline.pds
    s = a.pipeline.pds
    assert (s.src_prompt, s.tgt_prompt, s.sd_pretrained_model_or_path) == (SRC, TGT, "some/model")
    assert (s.guidance_scale, s.view_update_every, s.method) == (100.0, 10, "pds")
    assert a.pipeline.model.use_appearance_embedding is False
    assert a.pipeline.datamanager.dataparser.eval_mode == "all"  # every view is edited; < 10 frames work
    r = parse(["pds_refinement", *common, "--pipeline.pds.tgt_prompt", TGT])
    assert r.pipeline.pds.skip_ratio == (0.8, 0.9) and r.pipeline.pds.guidance_scale == 15.0
    assert r.pipeline.pds.sd_pretrained_model_or_path == "pds-tiny"


def test_stage1_optimiser_is_the_references(tmp_path):
    """pds: full precision, Adam 1e-2 warmed up over 1000 steps then decaying towards 1e-3 over
    nerfstudio's default 100000 steps (the reference names no max_steps), and a frozen SO3xR3
    camera_opt group. pds_refinement keeps the camera optimiser off."""
    from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig

    config = parse(["pds", "--data", tmp_path, "--load-dir", tmp_path])
    assert config.mixed_precision is False
    assert set(config.optimizers) == {"proposal_networks", "fields", "camera_opt"}
    for group in ("proposal_networks", "fields"):
        optimizer, scheduler = config.optimizers[group]["optimizer"], config.optimizers[group]["scheduler"]
        assert isinstance(scheduler, ExponentialDecaySchedulerConfig)
        assert (optimizer.lr, scheduler.lr_final, scheduler.warmup_steps, scheduler.max_steps) == (1e-2, 1e-3, 1000,
                                                                                                   100000)
    assert config.pipeline.model.camera_optimizer.mode == "SO3xR3"
    assert config.optimizers["camera_opt"]["optimizer"].lr <= 1e-20  # frozen: the edit cannot move a camera
    # the learning rate the fields see, step by step
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=1e-2)
    schedule = config.optimizers["fields"]["scheduler"].setup().get_scheduler(optimizer, lr_init=1e-2)
    lrs = []
    for _ in range(30000):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] < 1e-7 and 1e-3 < lrs[500] < 1e-2 and lrs[1000] == pytest.approx(1e-2)
    assert all(a <= b for a, b in zip(lrs[:1000], lrs[1:1001]))  # a ramp up ...
    assert all(a >= b for a, b in zip(lrs[1000:-1], lrs[1001:]))  # ... then a decay
    assert 4e-3 < lrs[-1] < 6e-3  # 1e-2 * 0.1 ** (29000 / 99000)
    refinement = parse(["pds_refinement", "--data", tmp_path, "--load-dir", tmp_path, "--pipeline.pds.tgt_prompt", TGT])
    assert refinement.pipeline.model.camera_optimizer.mode == "off"


def test_fewer_than_10_frames_train_on_every_frame(tmp_path):
    """nerfstudio's default 90/10 split leaves no evaluation frame below 10 views; the pds methods
    use every frame for training (every view must be edited) and evaluation."""
    from make_scene import make_scene

    data = make_scene(tmp_path / "six", views=6, size=8)
    parser = parse(["pds", "--data", data]).pipeline.datamanager.dataparser
    parser.data = data
    parsed = parser.setup()
    assert len(parsed.get_dataparser_outputs("train").image_filenames) == 6
    assert len(parsed.get_dataparser_outputs("val").image_filenames) == 6


# ----------------------------------------------------------------------------------- bad input
def _setup_error(args) -> str:
    """The one stderr line of ``ns-train ARGS`` behind the error boundary of ``python -m
    pds.nerf.ns_train`` (:func:`pds.cli.run`), exit status 2; errors found only when the trainer is
    built (so after nerfstudio wrote the run's config) take this path too."""
    import contextlib
    import io

    from pds.cli import run

    config = parse(args)
    prepare(config, config.output_dir, "error")

    def setup() -> None:
        trainer = config.setup(local_rank=0, world_size=1)
        trainer.setup()

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert run(f"ns-train {config.method_name}", setup) == 2, err.getvalue()
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ns-train {config.method_name}: error: "), lines
    return lines[0]


@pytest.mark.parametrize("case, expected", [
    ("empty_load_dir", "contains no checkpoint"),
    ("no_load_dir", "pass --load-dir"),
    ("not_a_dataset", "is not a nerfstudio dataset"),
    ("missing_src_prompt", "missing source prompt"),
    ("unknown_prior", "sd_pretrained_model_or_path"),
])
def test_bad_input_is_one_clear_error_before_training(case, expected, scene, tmp_path, tiny_prior_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    ckpt = tmp_path / "nerfstudio_models"
    ckpt.mkdir()
    (ckpt / "step-000000001.ckpt").write_bytes(b"")
    args = {"data": scene, "load": ckpt, "src": SRC, "prior": tiny_prior_dir}
    if case == "empty_load_dir":
        args["load"] = empty
    elif case == "not_a_dataset":
        args["data"] = empty
    elif case == "missing_src_prompt":
        args["src"] = ""
    elif case == "unknown_prior":
        args["prior"] = tmp_path / "no" / "such" / "prior"
    cli = ["pds", "--data", args["data"], "--pipeline.pds.tgt_prompt", TGT, "--pipeline.pds.src_prompt", args["src"],
           "--pipeline.pds.sd_pretrained_model_or_path", args["prior"], "--output-dir", tmp_path, *CPU]
    if case != "no_load_dir":
        cli += ["--load-dir", args["load"]]
    assert expected in _setup_error(cli)


def test_prompt_words_and_patch_size_fail_before_the_first_step(scene, nerfacto_run, tiny_prior_dir, tmp_path):
    base = ["pds", "--data", scene, "--load-dir", nerfacto_run.checkpoint_dir, "--pipeline.pds.src_prompt", SRC,
            "--pipeline.pds.sd_pretrained_model_or_path", tiny_prior_dir, "--output-dir", tmp_path, *CPU, *SMALL]
    assert "'purple'" in _setup_error([*base, "--pipeline.pds.tgt_prompt", "a purple ball"])
    assert "patch-size 64 is larger" in _setup_error([*base, "--pipeline.pds.tgt_prompt", TGT,
                                                       "--pipeline.datamanager.patch-size", "64"])
    # A checkpoint of a different model (appearance embedding on) names the option to fix.
    message = _setup_error([*base, "--pipeline.pds.tgt_prompt", TGT, "--pipeline.model.use_appearance_embedding",
                            "True"])
    assert "use_appearance_embedding False" in message
    # A checkpoint file that is not one.
    broken = tmp_path / "broken" / "nerfstudio_models"
    broken.mkdir(parents=True)
    (broken / "step-000000007.ckpt").write_bytes(b"not a checkpoint")
    base[base.index("--load-dir") + 1] = broken
    assert "could not read the checkpoint" in _setup_error([*base, "--pipeline.pds.tgt_prompt", TGT])


# ------------------------------------------------------------- python -m pds.nerf.ns_train: the error boundary
def _ns_train_process(*args, cwd):
    """``python -m pds.nerf.ns_train ARGS`` in a fresh process (offline, one thread): what a user sees."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("PDS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "pds.nerf.ns_train", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=env, cwd=cwd)


@pytest.mark.parametrize("case, expected", [
    ("not_a_dataset", "--data empty is not a nerfstudio dataset: it has no transforms.json"),
    ("missing_tgt_prompt", "missing target prompt: pass --pipeline.pds.tgt_prompt"),
])
def test_ns_train_wrapper_bad_input_is_one_line_and_exit_2(case, expected, scene, tmp_path, tiny_prior_dir):
    """Through the package's boundary: one stderr line naming the flag, status 2, no traceback,
    and nothing written (the checks run before nerfstudio creates the run's folder)."""
    (tmp_path / "empty").mkdir()
    ckpt = tmp_path / "nerfstudio_models"
    ckpt.mkdir()
    (ckpt / "step-000000001.ckpt").write_bytes(b"")
    args = ["pds", "--data", "empty" if case == "not_a_dataset" else scene, "--load-dir", ckpt,
            "--pipeline.pds.src_prompt", SRC, "--pipeline.pds.sd_pretrained_model_or_path", tiny_prior_dir,
            "--output-dir", tmp_path / "out", *CPU]
    if case != "missing_tgt_prompt":
        args += ["--pipeline.pds.tgt_prompt", TGT]
    p = _ns_train_process(*args, cwd=tmp_path)
    assert p.returncode == 2, p.stderr[-3000:]
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ns-train pds: error: ") and expected in lines[0], p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    assert not (tmp_path / "out").exists()


def test_ns_train_wrapper_ctrl_c_and_failures_in_training(scene, tmp_path, monkeypatch, capsys):
    """nerfstudio's ``launch`` catches Ctrl-C in training, prints the traceback and exits 0; behind
    the wrapper it is one line and status 130. A failure in training is one line naming the trace
    file (status 1). (Ctrl-C during the imports: tests/test_interrupts.py.)"""
    import re

    from nerfstudio.scripts import train as ns

    from pds.cli import run
    from pds.nerf.ns_train import train

    monkeypatch.setattr(sys, "argv", list(sys.argv))  # train() sets it as ns-train would see it
    args = ["nerfacto", "--data", scene, *CPU, "--output-dir", tmp_path / "out", "--max-num-iterations", "1"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ns, "train_loop", interrupted)
    capsys.readouterr()
    assert run("ns-train nerfacto", lambda: train(args)) == 130
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["ns-train nerfacto: interrupted"], captured.err
    assert "Traceback" not in captured.out and ns.train_loop is interrupted  # put back after the run

    monkeypatch.setattr(ns, "train_loop", broken)
    monkeypatch.delenv("PDS_DEBUG", raising=False)
    assert run("ns-train nerfacto", lambda: train(args)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: RuntimeError: boom" in err and "Traceback" not in err, err
    trace = re.search(r"full trace in (\S+)\)", err).group(1)
    assert "RuntimeError: boom" in Path(trace).read_text()
    os.unlink(trace)


def test_ns_train_wrapper_command_line_errors_are_one_line(monkeypatch, capsys):
    """tyro's error panel (ten framed lines) comes out as the boundary's one line, status 2."""
    from pds.cli import run
    from pds.nerf.ns_train import train

    monkeypatch.setattr(sys, "argv", list(sys.argv))
    capsys.readouterr()
    assert run("ns-train pds", lambda: train(["pds", "--pipeline.pds.guidance_scale", "abc"])) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ns-train pds: error: Error parsing --pipeline.pds.guidance"), lines
    assert "'abc'" in lines[0] and "│" not in lines[0] and "Traceback" not in captured.out


# ----------------------------------------------------------------------------------- the stages
def test_stage1_pds_edits_the_loaded_nerf(nerfacto_run, pds_run):
    pipeline = pds_run.pipeline
    # the nerfacto checkpoint was loaded: training continued from its step
    assert pds_run._start_step == checkpoint(nerfacto_run)["step"] + 1
    # the PDS loss was the loss, finite at every step, and the fields moved
    assert len(pipeline.losses) == 3 and all(torch.isfinite(torch.tensor(pipeline.losses)))
    before, after = checkpoint(nerfacto_run)["pipeline"], checkpoint(pds_run, weights_only=True)["pipeline"]
    moved = [k for k in after if k.startswith("_model.field.") and not torch.equal(before[k], after[k])]
    assert moved, "no field parameter changed"
    # views: a new one every 2 steps, rendered at half size in 2 chunks of 128 rays
    assert pipeline.render_cameras.height[0].item() == 16 and pipeline.config.pds.chunk_rays == 128
    # building the model downloaded nothing: LPIPS (AlexNet weights) is only built when evaluated
    from pds.nerf.compat import LazyLPIPS

    assert isinstance(pipeline.model.lpips, LazyLPIPS) and pipeline.model.lpips._metric is None
    assert not any(k.startswith("lpips.") for k in pipeline.model.state_dict())


def test_stage1_trains_fields_in_warm_up_with_the_cameras_frozen(nerfacto_run, pds_run):
    optimizers = pds_run.optimizers.optimizers
    assert set(optimizers) == {"proposal_networks", "fields", "camera_opt"}
    assert optimizers["fields"].param_groups[0]["lr"] < 1e-4  # 3 steps into the 1000-step warm-up
    assert pds_run.mixed_precision is False
    # nerfacto trained on 9 of the 10 views, pds on all 10: its 9 pose corrections do not fit and
    # are not loaded; the 10 of this run stay at zero, their learning rate being 1e-30
    model = pds_run.pipeline.model
    assert checkpoint(nerfacto_run)["pipeline"]["_model.camera_optimizer.pose_adjustment"].shape == (9, 6)
    assert model.camera_optimizer.pose_adjustment.shape == (10, 6)
    after = checkpoint(pds_run, weights_only=True)["pipeline"]["_model.camera_optimizer.pose_adjustment"]
    assert float(after.abs().max()) < 1e-20


def test_pose_corrections_load_when_they_fit_and_are_skipped_otherwise(pds_run, nerfacto_run):
    """Checkpoints with the camera optimiser on or off load into models with it on or off; pose
    corrections of the same number of views are loaded and applied to the rays."""
    from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
    from nerfstudio.engine.optimizers import Optimizers

    from pds.nerf.config import stage1_optimizers

    model = pds_run.pipeline.model
    key = "camera_optimizer.pose_adjustment"
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        corrections = 1e-3 * torch.randn(10, 6, generator=torch.Generator().manual_seed(0))
        model.load_state_dict({**saved, key: corrections})
        torch.testing.assert_close(model.camera_optimizer.pose_adjustment.detach(), corrections)
        # the render uses them: rays of view 3 move
        from pds.nerf.render import view_rays

        rays, _, _ = view_rays(pds_run.pipeline.render_cameras, 3, torch.device("cpu"))
        before = rays.origins.clone()
        model.camera_optimizer.apply_to_raybundle(rays)
        assert not torch.allclose(rays.origins, before)
        # corrections of another number of views are skipped, everything else loads
        model.load_state_dict({**saved, key: torch.ones(9, 6)})
        torch.testing.assert_close(model.camera_optimizer.pose_adjustment.detach(), corrections)
        # a checkpoint trained with the camera optimiser off
        model.load_state_dict({k: v for k, v in saved.items() if k != key})
    finally:
        model.load_state_dict(saved)
    # a model with the camera optimiser off takes checkpoints with it on, and has no camera_opt group
    config = pds_run.config.pipeline.model
    off = dataclasses.replace(config, camera_optimizer=CameraOptimizerConfig(mode="off"))
    off_model = off.setup(scene_box=pds_run.pipeline.datamanager.train_dataset.scene_box, num_train_data=10,
                          metadata={}, device="cpu")
    off_model.load_state_dict(saved)
    nerfacto = {k[len("_model."):]: v for k, v in checkpoint(nerfacto_run)["pipeline"].items()
                if k.startswith("_model.")}
    off_model.load_state_dict(nerfacto)
    groups = off_model.get_param_groups()
    assert "camera_opt" not in groups
    assert set(Optimizers(stage1_optimizers(), groups).optimizers) == {"proposal_networks", "fields"}


def test_stage1_eval_outputs_are_a_dataset_in_the_same_frame(scene, pds_run):
    from nerfstudio.data.datasets.base_dataset import InputDataset

    from pds.nerf.datamanager import PDSDataManagerConfig

    out = pds_run.base_dir / "eval_outputs"
    meta = json.loads((out / "transforms.json").read_text())
    assert len(meta["frames"]) == 10 and (out / "animation.gif").is_file()
    assert meta["pds"]["tgt_prompt"] == TGT and meta["pds"]["src_prompt"] == SRC
    assert all((out / f["file_path"]).is_file() for f in meta["frames"])
    # Parsed as the refinement stage parses it, the cameras are those the edited NeRF was trained with.
    parser = PDSDataManagerConfig().dataparser
    parser.data = out
    parsed = parser.setup().get_dataparser_outputs("train")
    trained = pds_run.pipeline.datamanager.train_dataset.cameras
    torch.testing.assert_close(parsed.cameras.camera_to_worlds, trained.camera_to_worlds.cpu(), atol=1e-4, rtol=0)
    torch.testing.assert_close(parsed.cameras.fx, trained.fx.cpu())
    image = InputDataset(parsed)[0]["image"]
    assert image.shape == (32, 32, 3) and 0 <= float(image.min()) and float(image.max()) <= 1


def test_chunked_render_replays_the_forward_in_backward(pds_run):
    """The chunked render (activations dropped, chunks re-rendered in backward) must give exactly
    the gradient of keeping every chunk's graph: same random ray samples, same values."""
    from pds.nerf.render import render_view, view_rays

    pipeline = pds_run.pipeline
    model, cameras = pipeline.model, pipeline.render_cameras
    params = [p for p in model.field.parameters() if p.requires_grad]
    weight = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    chunk = 100  # 256 rays: chunks of 100, 100, 56

    def grads(render):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(123)
        image = render()
        (image * weight).sum().backward()
        return image.detach(), [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in params]

    def kept_graph():
        rays, h, w = view_rays(cameras, 3, torch.device("cpu"))
        rgb = torch.cat([model(rays[s:s + chunk])["rgb"] for s in range(0, len(rays), chunk)])
        return rgb.reshape(h, w, 3).permute(2, 0, 1).clamp(0, 1)

    model.train()
    image_ref, grads_ref = grads(kept_graph)
    image, grads_chunked = grads(lambda: render_view(model, cameras, 3, chunk_rays=chunk))
    torch.testing.assert_close(image, image_ref)
    assert any(g.abs().sum() > 0 for g in grads_ref)
    for a, b in zip(grads_chunked, grads_ref):
        torch.testing.assert_close(a, b)


def test_stage2_refinement_updates_the_dataset_and_trains(pds_run, refinement_run):
    pipeline = refinement_run.pipeline
    assert refinement_run._start_step == checkpoint(pds_run)["step"] + 1
    assert pipeline.updates == 3  # one SDEdit per step here; views 0, 1, 2 replaced
    dm = pipeline.datamanager
    changed = [not torch.equal(dm.current_image(i), dm.original_image(i)) for i in range(dm.num_views)]
    assert changed[:3] == [True, True, True] and not any(changed[3:])
    # the run is named after the scene, not "eval_outputs"; --save-eval-outputs False skips the renders
    assert refinement_run.config.experiment_name == pds_run.config.experiment_name
    assert not (refinement_run.base_dir / "eval_outputs").exists()
    after = checkpoint(refinement_run, weights_only=True)["pipeline"]
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
