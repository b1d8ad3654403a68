"""Feature coverage: PSNR of every case of the SVG feature corpus against resvg.

The corpus is the one ``tests/test_svg_corpus.py`` asserts: one small hand-written SVG per feature
variant, ``tests/data/svg/features/<feature>/<variant>.svg``.  Each is rendered by us and by resvg
(``resvg-py``) at 256 px (or the ``@size`` its file gives) through the same comparison the test
uses, :func:`pds.testing.resvg_psnr` (PSNR of RGB over white).  Writes two Markdown tables (per
feature, then per case) as the section "Feature coverage against resvg" of
``benchmarks/results/svg_coverage.md``, keeping the rest of that file.  Not a test.

Usage::

    python benchmarks/svg_coverage.py             # rewrite the section of benchmarks/results/svg_coverage.md
    python benchmarks/svg_coverage.py --stdout    # print the section instead
"""

from __future__ import annotations

import argparse
import statistics
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pds.testing import MIN_FEATURE_PSNR, feature_cases, resvg_psnr  # noqa: E402

FEATURES = ROOT / "tests" / "data" / "svg" / "features"
RESULTS = ROOT / "benchmarks" / "results" / "svg_coverage.md"
HEADING = "## Feature coverage against resvg"

#: Folder → what the table calls it (folders not listed are shown by name).
LABELS = {
    "blend": "mix-blend-mode",
    "clip": "clipPath",
    "context_paint": "context-fill / context-stroke",
    "dash": "dashes (stroke-dasharray, pathLength)",
    "filter": "filters (primitives and CSS functions)",
    "gradient": "gradients (radial fr, currentColor stops)",
    "group_opacity": "group opacity (layers)",
    "image": "image (data: PNG/JPEG/SVG)",
    "marker": "markers, paint-order",
    "mask": "mask",
    "pattern": "pattern",
    "stroke": "invalid stroke-width",
    "switch": "switch (systemLanguage, requiredExtensions)",
    "text": "text (glyph outlines)",
    "transform": "transform-origin, CSS transform, skewed strokes",
    "units": "font-relative units",
    "viewport": "nested svg / symbol viewports",
}


def rows():
    """``(case, psnr or None, error or None)`` for every case of the corpus."""
    for case in feature_cases(FEATURES):
        try:
            yield case, resvg_psnr(case), None
        except Exception as exc:  # a case that fails to render or warns unexpectedly: reported, not fatal
            yield case, None, f"{type(exc).__name__}: {exc}"


def _db(p: float) -> str:
    return f"{min(p, 99.9):.1f}"


def section() -> str:
    import resvg_py
    import torch

    results = list(rows())
    by_feature: dict = {}
    for case, p, _err in results:
        by_feature.setdefault(case.feature, []).append(p)
    intro = textwrap.fill(
        "Every case is one small hand-written SVG of the feature corpus, "
        "`tests/data/svg/features/<feature>/<variant>.svg` (the comment at the top of each file says what it "
        "exercises), the same files `tests/test_svg_corpus.py` asserts at >= 30 dB. Each is rendered by us and "
        "by resvg (`resvg-py`) at 256 px (patterns at 200 px, as their files say) and compared as PSNR of RGB "
        "over white; identical renders count as 100 dB (shown as 99.9; they lift the mean, so the median is given too). "
        "Regenerate this section with "
        "`python benchmarks/svg_coverage.py`. Every feature listed has the status **supported**. What is not "
        "supported is listed in `docs/svg.md`.", width=100)
    lines = [
        HEADING,
        "",
        intro,
        "",
        f"resvg-py {getattr(resvg_py, '__version__', '?')}, torch {torch.__version__}.",
        "",
        "| feature | folder | variants | >= 30 dB | min PSNR (dB) | mean PSNR (dB) | median PSNR (dB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for feature, ps in by_feature.items():
        ok = [p for p in ps if p is not None]
        passed = sum(p >= MIN_FEATURE_PSNR for p in ok)
        lo = _db(min(ok)) if ok else "-"
        mean = _db(statistics.fmean(ok)) if ok else "-"
        median = _db(statistics.median(ok)) if ok else "-"
        lines.append(f"| {LABELS.get(feature, feature)} | `{feature}/` | {len(ps)} | {passed}/{len(ps)} | {lo} | "
                     f"{mean} | {median} |")
    lines += ["", "| case | size (px) | PSNR vs resvg (dB) |", "|---|---:|---:|"]
    for case, p, err in results:
        value = f"error ({err})" if p is None else _db(p) + ("" if p >= MIN_FEATURE_PSNR else " (below 30)")
        lines.append(f"| `{case.name}` | {case.size} | {value} |")
    n = len(results)
    ok = sum(p is not None and p >= MIN_FEATURE_PSNR for _c, p, _e in results)
    lines += ["", f"{ok}/{n} cases in {len(by_feature)} features at >= 30 dB.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stdout", action="store_true", help="print the section instead of writing it")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"Markdown file to update (default {RESULTS})")
    args = ap.parse_args()
    text = section()
    if args.stdout:
        print(text, end="")
        return
    old = args.out.read_text() if args.out.is_file() else ""
    head = old[: old.index(HEADING)] if HEADING in old else (old.rstrip("\n") + "\n\n" if old else "")
    args.out.write_text(head + text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
