"""Feature coverage: PSNR of every feature case of the SVG test corpus against resvg.

The cases are the ones the tests assert (``tests/test_svg_resvg.py``, ``test_svg_image.py``,
``test_svg_filters.py``, ``test_svg_text.py``): one small hand-written SVG per feature variant,
rendered by us and by resvg (``resvg-py``) at 256 px (patterns at 200 px), PSNR of RGB over
white.  Prints a Markdown table (feature group, case, PSNR, pass at >= 30 dB).  Not a test.

Usage::

    python benchmarks/svg_coverage.py > table.md
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from pds.svg import SVGFeatureWarning, SVGScene  # noqa: E402


def _ours(text: str, size: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SVGFeatureWarning)
        scene = SVGScene.load(text)
    with torch.no_grad():
        return scene.render(size).permute(1, 2, 0).double().numpy()


def rows():
    """``(group, case, psnr)`` for every case."""
    import test_svg_filters as fl
    import test_svg_image as im
    import test_svg_resvg as rv
    import test_svg_text as tx

    for name in list(rv.CASES) + list(rv.PATTERN_CASES):
        group = name.split("_")[0]
        yield group, name, rv.feature_psnr(name)
    for module, group, ref in ((im, "image / fr / context paint", rv.resvg_render), (fl, "filter", rv.resvg_render),
                               (tx, "text", tx.resvg_render)):
        for name, text in module.CASES.items():
            img = _ours(text, rv.SIZE)
            g = group
            if module is im:
                g = "fr" if name.startswith("fr") else ("context" if name.startswith("context") else "image")
            yield g, name, rv.psnr(img, ref(text, img.shape[1], img.shape[0]))


def main() -> None:
    print("| group | case | PSNR vs resvg (dB) | >= 30 dB |")
    print("|---|---|---:|:---:|")
    n = ok = 0
    for group, name, p in rows():
        n += 1
        ok += p >= 30
        print(f"| {group} | `{name}` | {min(p, 99.9):.1f} | {'yes' if p >= 30 else 'NO'} |")
    print(f"\n{ok}/{n} cases at >= 30 dB.")


if __name__ == "__main__":
    main()
