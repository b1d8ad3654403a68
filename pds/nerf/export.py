"""``eval_outputs``: every training view of the edited NeRF, written as a nerfstudio dataset.

The folder holds ``images/frame_XXXXX.png`` (renders at the training cameras' resolution),
``transforms.json`` and ``animation.gif`` (the views in order). ``transforms.json`` stores each
camera in the coordinates of the ORIGINAL dataset (the dataparser's orientation, centring and
scaling undone, ``applied_transform`` kept), with per-frame intrinsics of the rendered images. The
refinement stage parses it with the same dataparser options and therefore lands in exactly the
coordinate frame of the loaded checkpoint; any other nerfstudio tool can read it as a dataset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch
from PIL import Image
from torch import Tensor

from ..util.images import to_uint8

from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs, transform_poses_to_original_space

_CAMERA_MODEL = {
    CameraType.PERSPECTIVE.value: "OPENCV",
    CameraType.FISHEYE.value: "OPENCV_FISHEYE",
    CameraType.EQUIRECTANGULAR.value: "EQUIRECTANGULAR",
}
#: Keys of the source ``transforms.json`` that describe its coordinate frame; copied unchanged.
_FRAME_KEYS = ("applied_transform", "applied_scale", "orientation_override")


def source_meta(data: Optional[Path]) -> Dict[str, Any]:
    """The source dataset's ``transforms.json`` (``{}`` when it has none)."""
    if data is None:
        return {}
    path = Path(data) if Path(data).suffix == ".json" else Path(data) / "transforms.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def original_poses(outputs: DataparserOutputs, cameras: Cameras, meta: Dict[str, Any]) -> Tensor:
    """Camera-to-world ``(N, 4, 4)`` of ``cameras`` in the source ``transforms.json`` frame (OpenGL).

    The nerfstudio dataparser maps a stored pose ``P`` to ``T·P`` with its translation scaled by
    ``s``; its ``dataparser_transform`` is ``T·A`` (``A``: the stored ``applied_transform``) and
    its ``dataparser_scale`` is ``s·applied_scale``. Undo ``T`` and ``s`` only.
    """
    transform = outputs.dataparser_transform.to(torch.float64)
    scale = float(outputs.dataparser_scale)
    if "applied_transform" in meta:
        applied = torch.eye(4, dtype=torch.float64)
        applied[:3] = torch.tensor(meta["applied_transform"], dtype=torch.float64)
        full = torch.eye(4, dtype=torch.float64)
        full[:3] = transform
        transform = (full @ torch.linalg.inv(applied))[:3]
    scale /= float(meta.get("applied_scale", 1.0))
    c2w = cameras.camera_to_worlds.detach().cpu().to(torch.float64)
    poses = transform_poses_to_original_space(c2w, transform, scale, camera_convention="opengl")
    bottom = torch.tensor([[[0, 0, 0, 1]]], dtype=poses.dtype).expand(len(poses), 1, 4)
    return torch.cat([poses, bottom], 1)


def _frame_intrinsics(cameras: Cameras, i: int) -> Dict[str, Any]:
    k = cameras.distortion_params[i].tolist() if cameras.distortion_params is not None else [0.0] * 6
    k = (k + [0.0] * 6)[:6]
    return {
        "fl_x": float(cameras.fx[i]), "fl_y": float(cameras.fy[i]), "cx": float(cameras.cx[i]),
        "cy": float(cameras.cy[i]), "w": int(cameras.width[i]), "h": int(cameras.height[i]),
        "k1": k[0], "k2": k[1], "k3": k[2], "k4": k[3], "p1": k[4], "p2": k[5],
    }


def write_eval_outputs(out_dir: Path, render: Callable[[int], Tensor], cameras: Cameras,
                       outputs: DataparserOutputs, source_data: Optional[Path], extra: Optional[dict] = None,
                       fps: int = 10) -> Path:
    """Render every camera and write the dataset folder.

    Args:
        out_dir: the ``eval_outputs`` folder (created; existing renders are overwritten).
        render: ``render(i) -> (3, H, W)`` image in ``[0, 1]`` of camera ``i``.
        cameras: the training cameras (dataparser coordinates), in dataset order.
        outputs: the dataparser outputs those cameras came from (for the inverse transform).
        source_data: the ``--data`` folder (for ``applied_transform`` and friends).
        extra: metadata stored under ``"pds"`` in ``transforms.json`` (prompts, prior, method...).
        fps: frame rate of ``animation.gif``.

    Returns:
        ``out_dir``.
    """
    import imageio.v2 as imageio

    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    meta_in = source_meta(source_data)
    types = {int(t) for t in cameras.camera_type.flatten().tolist()}
    if len(types) != 1 or next(iter(types)) not in _CAMERA_MODEL:
        raise ValueError(f"eval_outputs supports one camera model among perspective/fisheye/equirectangular, got {types}")
    poses = original_poses(outputs, cameras, meta_in)
    frames, pictures = [], []
    for i in range(len(cameras)):
        image = render(i)
        pixels = to_uint8(image)
        name = f"images/frame_{i:05d}.png"
        Image.fromarray(pixels).save(out_dir / name)
        pictures.append(pixels)
        frames.append({"file_path": name, "transform_matrix": poses[i].tolist(), **_frame_intrinsics(cameras, i)})
    meta: Dict[str, Any] = {"camera_model": _CAMERA_MODEL[next(iter(types))]}
    meta.update({k: meta_in[k] for k in _FRAME_KEYS if k in meta_in})
    if extra:
        meta["pds"] = extra
    meta["frames"] = frames
    (out_dir / "transforms.json").write_text(json.dumps(meta, indent=2))
    if pictures and len({p.shape for p in pictures}) == 1:
        imageio.mimsave(out_dir / "animation.gif", pictures, duration=1000.0 / fps, loop=0)
    return out_dir
