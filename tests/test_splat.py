"""Gaussian-splat backend: the three splat stages on a CPU, tiny and fast.

Stage 0 runs ``python -m pds.nerf.ns_train splatfacto ... --machine.device-type cpu`` in a fresh
process (what the docs tell a user without a GPU); stages 1 and 2 are parsed by nerfstudio's own
``ns-train`` parser from the documented flags and run in this process on the example scene (10
views of 32×32, 500 Gaussians) with the embedded prior ``pds-tiny``, for a few steps each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("nerfstudio", reason="the splat backend needs nerfstudio (pip install 'pds[nerf]')")
pytest.importorskip("gsplat", reason="splatfacto needs gsplat (installed with nerfstudio)")

from test_nerf import CPU as NERF_CPU, SMALL as NERF_SMALL, checkpoint, parse, prepare, run  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::RuntimeWarning")

CPU = ["--machine.device-type", "cpu", "--vis", "tensorboard", "--logging.local-writer.enable", "False"]
SRC, TGT = "a red ball", "a blue ball"
PRIOR = ["--pipeline.pds.sd_pretrained_model_or_path", "pds-tiny"]
N_GAUSSIANS = 500


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("splat")


@pytest.fixture(scope="module")
def scene(workdir) -> Path:
    from make_scene import make_scene

    return make_scene(workdir / "ball", views=10, size=32)


@pytest.fixture(scope="module")
def splatfacto_dir(scene, workdir) -> Path:
    """Stage 0 through the documented CPU command, 5 steps from 500 random Gaussians."""
    out = workdir / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TORCH_HOME": str(workdir / "torch_home")}
    done = subprocess.run([sys.executable, "-m", "pds.nerf.ns_train", "splatfacto", "--data", str(scene), *CPU,
                           "--pipeline.model.num-random", str(N_GAUSSIANS), "--pipeline.model.random-scale", "1.0",
                           "--pipeline.model.background-color", "white", "--max-num-iterations", "5",
                           "--output-dir", str(out), "--experiment-name", "ball", "--timestamp", "s0"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (workdir / "torch_home").exists()  # nothing downloaded (LPIPS is lazy)
    return out / "ball" / "splatfacto" / "s0" / "nerfstudio_models"


@pytest.fixture(scope="module")
def pds_splat_run(scene, splatfacto_dir, workdir):
    """Stage 1 as documented, 4 steps, a new view every 2."""
    config = parse(["pds_splat", "--data", scene, "--load-dir", splatfacto_dir, "--pipeline.pds.src_prompt", SRC,
                    "--pipeline.pds.tgt_prompt", TGT, *PRIOR, *CPU, "--max-num-iterations", "4",
                    "--pipeline.pds.view_update_every", "2"])
    return run(config, workdir / "out", "pds_splat")


@pytest.fixture(scope="module")
def refinement_run(pds_splat_run, workdir):
    """Stage 2 as documented, 3 steps with an SDEdit dataset update every step."""
    config = parse(["pds_splat_refinement", "--data", pds_splat_run.base_dir / "eval_outputs",
                    "--load-dir", pds_splat_run.checkpoint_dir, "--pipeline.pds.tgt_prompt", TGT, *PRIOR, *CPU,
                    "--max-num-iterations", "3", "--pipeline.pds.update_every", "1"])
    return run(config, workdir / "out", "refine")


def gaussians(state: dict) -> dict:
    return {k.split(".")[-1]: v for k, v in state["pipeline"].items() if k.startswith("_model.gauss_params.")}


# ----------------------------------------------------------------------------------- registration
def test_splat_methods_are_registered_with_nerfstudio():
    from nerfstudio.plugins.registry import discover_methods

    from pds.nerf.splat.config import SplatTrainerConfig
    from pds.nerf.splat.model import PDSSplatfactoModelConfig

    methods, descriptions = discover_methods()
    assert {"pds", "pds_refinement", "pds_splat", "pds_splat_refinement"} <= set(methods), \
        "reinstall pds (pip install -e .) to register the entry points"
    for name in ("pds_splat", "pds_splat_refinement"):
        config = methods[name]
        assert isinstance(config, SplatTrainerConfig) and config.max_num_iterations == 30000
        assert isinstance(config.pipeline.model, PDSSplatfactoModelConfig)
        assert config.pipeline.model.refine_gaussians is False and config.mixed_precision is False
        # the reference's splat optimiser: splatfacto's rates, no warm-up, and a camera_opt entry that
        # has nothing to act on while splatfacto's camera optimiser is off (its default, and the reference's)
        assert config.pipeline.model.camera_optimizer.mode == "off"
        assert {"means", "features_dc", "features_rest", "opacities", "scales", "quats", "camera_opt"} == \
            set(config.optimizers)
        assert config.optimizers["means"]["scheduler"].warmup_steps == 0
    assert "stage 1" in descriptions["pds_splat"] and "stage 2" in descriptions["pds_splat_refinement"]


def test_import_pds_nerf_splat_imports_neither_nerfstudio_nor_gsplat():
    code = ("import sys, pds.nerf.splat, pds.nerf.splat.raster; "
            "assert not {'nerfstudio', 'gsplat'} & set(sys.modules), 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_wrapper_swaps_splatfacto_only_for_cpu_runs():
    from pds.nerf.ns_train import _wants_cpu

    assert _wants_cpu(["splatfacto", "--machine.device-type", "cpu"])
    assert _wants_cpu(["splatfacto", "--machine.device_type=cpu"])
    assert not _wants_cpu(["splatfacto", "--machine.device-type", "cuda"]) and not _wants_cpu(["splatfacto"])


# ----------------------------------------------------------------------------------- stage 0
def test_stage0_splatfacto_trains_on_the_cpu(splatfacto_dir):
    (path,) = sorted(splatfacto_dir.glob("step-*.ckpt"))
    from pds.nerf.compat import load_checkpoint_file

    state = load_checkpoint_file(path)
    params = gaussians(state)
    assert params["means"].shape == (N_GAUSSIANS, 3) and params["features_rest"].shape == (N_GAUSSIANS, 15, 3)
    assert all(torch.isfinite(v).all() for v in params.values())
    # the run is recorded as nerfstudio's splatfacto, with our CPU-capable model class
    text = (splatfacto_dir.parent / "config.yml").read_text()
    assert "method_name: splatfacto" in text and "PDSSplatfactoModel" in text


def test_world_to_camera_turns_nerfstudio_poses_into_gsplat_viewmats():
    """An OpenGL camera-to-world pose (looking along -z) becomes an OpenCV world-to-camera matrix
    (looking along +z), as splatfacto's get_viewmat does on the GPU path."""
    from pds.nerf.splat.model import world_to_camera

    c2w = torch.tensor([[1.0, 0, 0, 0.2], [0, 1, 0, -0.1], [0, 0, 1, 3.0]])[None]
    view = world_to_camera(c2w)
    point = torch.tensor([0.2, -0.1, 0.0, 1.0])  # straight ahead of the camera (OpenGL looks along -z)
    cam = view[0] @ point
    torch.testing.assert_close(cam[:3], torch.tensor([0.0, 0.0, 3.0]))  # OpenCV: ahead is +z
    torch.testing.assert_close(view[0, :3, :3] @ c2w[0, :3, :3] * torch.tensor([1.0, -1, -1]), torch.eye(3))


# ----------------------------------------------------------------------------------- stage 1
def test_stage1_pds_splat_edits_the_loaded_gaussians(splatfacto_dir, pds_splat_run):
    pipeline = pds_splat_run.pipeline
    before_state = checkpoint_file(splatfacto_dir)
    assert pds_splat_run._start_step == before_state["step"] + 1  # the splatfacto checkpoint was loaded
    assert len(pipeline.losses) == 4 and all(torch.isfinite(torch.tensor(pipeline.losses)))
    before, after = gaussians(before_state), gaussians(checkpoint(pds_splat_run, weights_only=True))
    assert after["means"].shape == before["means"].shape  # densification off: the same Gaussians
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert {"means", "features_dc", "opacities", "scales"} <= set(moved), moved
    # the editor's schedule: views changed every 2 steps, renders at the dataset's full size
    assert pipeline.editor.count == 4 and pipeline.render_cameras.height[0].item() == 32
    assert pipeline.model.device.type == "cpu" and "means2d" in pipeline.model.info
    assert "camera_opt" not in pds_splat_run.optimizers.optimizers  # no camera parameters, no group


def checkpoint_file(folder: Path) -> dict:
    from pds.nerf.compat import load_checkpoint_file

    (path,) = sorted(folder.glob("step-*.ckpt"))
    return load_checkpoint_file(path)


def test_stage1_eval_outputs_are_a_complete_dataset(pds_splat_run):
    from nerfstudio.data.datasets.base_dataset import InputDataset

    from pds.nerf.splat.datamanager import SplatDataManagerConfig

    out = pds_splat_run.base_dir / "eval_outputs"
    meta = json.loads((out / "transforms.json").read_text())
    assert len(meta["frames"]) == 10 and (out / "animation.gif").is_file()
    assert meta["pds"]["method"] == "pds_splat" and meta["pds"]["tgt_prompt"] == TGT
    assert all((out / f["file_path"]).is_file() for f in meta["frames"])
    parser = SplatDataManagerConfig().dataparser
    parser.data = out
    parsed = parser.setup().get_dataparser_outputs("train")
    trained = pds_splat_run.pipeline.datamanager.train_dataset.cameras
    torch.testing.assert_close(parsed.cameras.camera_to_worlds, trained.camera_to_worlds.cpu(), atol=1e-4, rtol=0)
    image = InputDataset(parsed)[0]["image"]
    assert image.shape == (32, 32, 3) and 0 <= float(image.min()) and float(image.max()) <= 1
    # the render of the edited Gaussians, not a copy of the source picture
    source = pds_splat_run.pipeline.datamanager.original_image(0)
    assert not torch.equal((source * 255 + 0.5).to(torch.uint8), (image * 255 + 0.5).to(torch.uint8))


# ----------------------------------------------------------------------------------- stage 2
def test_stage2_refinement_updates_the_images_and_fits_them(pds_splat_run, refinement_run):
    pipeline = refinement_run.pipeline
    assert refinement_run._start_step == checkpoint(pds_splat_run)["step"] + 1
    assert pipeline.updates == 3
    dm = pipeline.datamanager
    changed = [not torch.equal(dm.current_image(i), dm.original_image(i)) for i in range(dm.num_views)]
    assert changed[:3] == [True, True, True] and not any(changed[3:])
    before, after = gaussians(checkpoint(pds_splat_run)), gaussians(checkpoint(refinement_run, weights_only=True))
    assert after["means"].shape == before["means"].shape
    assert not torch.equal(before["features_dc"], after["features_dc"])
    assert all(torch.isfinite(v).all() for v in after.values())
    assert refinement_run.config.experiment_name == pds_splat_run.config.experiment_name
    assert len(list((refinement_run.base_dir / "eval_outputs" / "images").glob("*.png"))) == 10


# ----------------------------------------------------------------------------------- bad input
def _setup_error(args) -> str:
    """The one stderr line of plain ``ns-train ARGS`` (nerfstudio's script: no error boundary of
    ours, so the trainer itself exits with status 2)."""
    import contextlib
    import io

    config = parse(args)
    prepare(config, config.output_dir, "error")
    err = io.StringIO()
    with pytest.raises(SystemExit) as info, contextlib.redirect_stderr(err):
        trainer = config.setup(local_rank=0, world_size=1)
        trainer.setup()
    assert info.value.code == 2, info.value.code
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ns-train {config.method_name}: error: "), lines
    return lines[0]


def test_bad_input_is_one_clear_error_before_training(scene, splatfacto_dir, tmp_path):
    base = ["--data", scene, "--pipeline.pds.tgt_prompt", TGT, "--output-dir", tmp_path, *CPU]
    stage1 = ["pds_splat", *base, "--pipeline.pds.src_prompt", SRC]
    assert "`ns-train splatfacto`" in _setup_error(stage1)  # no --load-dir
    assert "contains no checkpoint" in _setup_error([*stage1, "--load-dir", scene])
    assert "missing source prompt" in _setup_error(["pds_splat", *base, "--load-dir", splatfacto_dir])
    assert "is not a nerfstudio dataset" in _setup_error(
        ["pds_splat_refinement", "--data", tmp_path, "--pipeline.pds.tgt_prompt", TGT, "--load-dir", splatfacto_dir, *CPU])
    assert "sd_pretrained_model_or_path" in _setup_error(
        [*stage1, "--load-dir", splatfacto_dir, "--pipeline.pds.sd_pretrained_model_or_path", tmp_path / "nope"])
    # A NeRF checkpoint given to a splat method: named as such.
    nerf = tmp_path / "nerf" / "nerfstudio_models"
    nerf.mkdir(parents=True)
    torch.save({"step": 3, "pipeline": {"_model.field.mlp_base.params": torch.zeros(4)}}, nerf / "step-000000003.ckpt")
    message = _setup_error([*stage1, "--load-dir", nerf])
    assert "is a NeRF checkpoint" in message and "ns-train splatfacto" in message


def test_a_splat_checkpoint_given_to_the_nerf_method_is_named(scene, splatfacto_dir, tmp_path):
    message = _setup_error(["pds", "--data", scene, "--load-dir", splatfacto_dir, "--pipeline.pds.src_prompt", SRC,
                            "--pipeline.pds.tgt_prompt", TGT, "--output-dir", tmp_path, *NERF_CPU, *NERF_SMALL])
    assert "is a Gaussian splat checkpoint" in message and "ns-train nerfacto" in message
