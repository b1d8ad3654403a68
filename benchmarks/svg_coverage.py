"""Feature coverage: PSNR of every feature case of the SVG test corpus against resvg.

The cases are the ones the tests assert (``tests/test_svg_resvg.py``, ``test_svg_image.py``,
``test_svg_filters.py``, ``test_svg_text.py``): one small hand-written SVG per feature variant,
rendered by us and by resvg (``resvg-py``) at 256 px (patterns at 200 px), PSNR of RGB over
white.  Prints two Markdown tables (per feature, then per case).  Not a test.

Usage::

    python benchmarks/svg_coverage.py > table.md
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
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


#: Case-name prefix → feature, first match wins (cases of ``tests/test_svg_resvg.py``).
FEATURES = [
    (("group_opacity", "nested_group_opacity", "use_opacity", "paint_order_opacity"), "group opacity (layers)"),
    (("clip_",), "clipPath"),
    (("mask_",), "mask"),
    (("dash", "pathlength"), "dashes"),
    (("nested_svg", "symbol"), "nested svg / symbol viewports"),
    (("transform_origin", "css_transform", "skew"), "transform-origin, CSS transform, skewed strokes"),
    (("blend_",), "mix-blend-mode"),
    (("markers", "marker_", "paint_order_markers"), "markers, paint-order"),
    (("pattern",), "pattern"),
    (("switch",), "switch / systemLanguage"),
    (("font_relative", "negative_stroke", "stop_current"), "font units, negative stroke-width, currentColor stops"),
    (("png", "jpeg", "svg_"), "image (data: PNG/JPEG/SVG)"),
    (("fr",), "radial gradient fr"),
    (("context",), "context-fill / context-stroke"),
]


def feature_of(name: str, default: str) -> str:
    for prefixes, feature in FEATURES:
        if name.startswith(prefixes):
            return feature
    return default


def rows():
    """``(feature, case, psnr)`` for every case."""
    import test_svg_filters as fl
    import test_svg_image as im
    import test_svg_resvg as rv
    import test_svg_text as tx

    for name in list(rv.CASES) + list(rv.PATTERN_CASES):
        yield feature_of(name, "other"), name, rv.feature_psnr(name)
    for module, default, ref in ((im, "image", rv.resvg_render), (fl, "filters", rv.resvg_render),
                                 (tx, "text (glyph outlines)", tx.resvg_render)):
        for name, text in module.CASES.items():
            img = _ours(text, rv.SIZE)
            feature = feature_of(name, default) if module is im else default
            yield feature, name, rv.psnr(img, ref(text, img.shape[1], img.shape[0]))


def main() -> None:
    results = list(rows())
    by_feature: dict = {}
    for feature, name, p in results:
        by_feature.setdefault(feature, []).append(p)
    print("| feature | cases >= 30 dB | min PSNR (dB) | median PSNR (dB) |")
    print("|---|---:|---:|---:|")
    for feature, ps in by_feature.items():
        ok = sum(p >= 30 for p in ps)
        print(f"| {feature} | {ok}/{len(ps)} | {min(min(ps), 99.9):.1f} | {min(float(np.median(ps)), 99.9):.1f} |")
    print("\n| feature | case | PSNR vs resvg (dB) |")
    print("|---|---|---:|")
    for feature, name, p in results:
        print(f"| {feature} | `{name}` | {min(p, 99.9):.1f}{'' if p >= 30 else ' (below 30)'} |")
    n, ok = len(results), sum(p >= 30 for _f, _n, p in results)
    print(f"\n{ok}/{n} cases at >= 30 dB.")


if __name__ == "__main__":
    main()
