"""Write the NeRF example scene: a shaded ball seen from a ring of cameras, as a nerfstudio dataset.

The pictures come from :func:`tools.prior.data.render_ball_view`, the renderer that made the
training data of the embedded prior ``pds-tiny``, so ``"a red ball"`` describes the scene in the
prior's own words and ``"a blue ball"`` is an edit the prior can make. The dataset is a plain
nerfstudio folder (``transforms.json`` + ``images/``), in the OpenGL camera convention that
nerfstudio expects (camera looks along −z, y up).

Run::

    python examples/nerf_ball/make_scene.py                    # writes examples/nerf_ball/red_ball
    python examples/nerf_ball/make_scene.py -o /tmp/ball --views 12 --size 32 --color green
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[2]))  # the repository root: tools/ is not installed

import argparse
import json
import math
from pathlib import Path
from typing import Union

from PIL import Image

HERE = Path(__file__).resolve().parent
FIELD_OF_VIEW_DEG = 40.0  # render_ball_view's default field of view


def make_scene(out: Union[str, Path], views: int = 24, size: int = 64, color: str = "red",
               background: str = "white", distance: float = 4.0,
               elevations: tuple[float, ...] = (15.0, 35.0)) -> Path:
    """Render ``views`` cameras orbiting the ball and write a nerfstudio dataset to ``out``.

    Args:
        out: output folder (created); gets ``transforms.json`` and ``images/frame_XXXXX.png``.
        views: number of cameras (>= 10 so nerfstudio's default 90/10 split keeps eval frames).
        size: image side length in pixels.
        color, background: palette colour names of :mod:`tools.prior.data`.
        distance: camera distance from the ball centre (the ball has radius 1).
        elevations: camera elevations in degrees, cycled over the views.

    Returns:
        The folder.
    """
    import torch

    from pds.util.images import to_uint8
    from tools.prior.data import orbit_camera, render_ball_view

    if views < 1:
        raise ValueError(f"views must be >= 1, got {views}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    focal = 0.5 * size / math.tan(math.radians(FIELD_OF_VIEW_DEG / 2))
    frames = []
    for i in range(views):
        azimuth = 360.0 * i / views
        elevation = elevations[i % len(elevations)]
        c2w = orbit_camera(azimuth, elevation, distance)
        with torch.no_grad():
            image = render_ball_view(c2w, color, background, resolution=size, focal=focal)
        pixels = to_uint8(image)
        name = f"images/frame_{i:05d}.png"
        Image.fromarray(pixels).save(out / name)
        frames.append({"file_path": name, "transform_matrix": c2w.tolist()})
    meta = {
        "camera_model": "OPENCV",
        "fl_x": focal, "fl_y": focal, "cx": size / 2, "cy": size / 2, "w": size, "h": size,
        "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0,
        "pds_scene": {"object": "ball", "color": color, "background": background,
                      "prompt": f"a {color} ball" + ("" if background == "white" else f" on a {background} background")},
        "frames": frames,
    }
    (out / "transforms.json").write_text(json.dumps(meta, indent=2))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--out", default=str(HERE / "red_ball"), help="output folder (default: %(default)s)")
    parser.add_argument("--views", type=int, default=24, help="number of cameras (default: %(default)s)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default: %(default)s)")
    parser.add_argument("--color", default="red", help="ball colour (default: %(default)s)")
    parser.add_argument("--background", default="white", help="background colour (default: %(default)s)")
    args = parser.parse_args(argv)
    out = make_scene(args.out, views=args.views, size=args.size, color=args.color, background=args.background)
    print(f"wrote {args.views} views of a {args.color} ball to {out}")


if __name__ == "__main__":
    main()
