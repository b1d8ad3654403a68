"""Write a tiny DreamBooth instance set for the embedded prior: one subject seen a few ways.

The subject is a purple ball on a yellow background, rendered from several viewpoints with
``tools.prior.data.render_ball_view`` (the light stays fixed in the world, so the highlight
moves). Then teach it to pds-tiny under the reserved token ``sks``::

    python examples/dreambooth/make_instance_images.py my_ball
    pds-dreambooth --instance_prompt "a sks ball" --instance_dir my_ball --class_prompt "a ball" \\
        --save_dir sks_ball --num_class_images 32 --class_sample_steps 20 --max_train_steps 400
    pds-sample --model sks_ball -p "a sks ball" -p "a ball" -n 8 -o sks_ball.png

Options: ``--color``, ``--background`` (palette names of pds-tiny), ``--views``.
"""

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[2]))  # the repository root: tools/ is not installed

import argparse
from pathlib import Path



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output folder (created)")
    parser.add_argument("--color", default="purple")
    parser.add_argument("--background", default="yellow")
    parser.add_argument("--views", type=int, default=5)
    args = parser.parse_args()

    from pds.util.images import save_png
    from tools.prior.data import orbit_camera, render_ball_view

    args.out.mkdir(parents=True, exist_ok=True)
    for i in range(args.views):
        image = render_ball_view(orbit_camera(360.0 * i / args.views, 5.0 + 10.0 * (i % 3)), args.color, args.background)
        save_png(image, args.out / f"view{i:02d}.png")
    print(f"wrote {args.views} images of a {args.color} ball on {args.background} to {args.out}")


if __name__ == "__main__":
    main()
