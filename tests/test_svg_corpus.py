"""Feature fidelity against resvg (the reference renderer, PyPI ``resvg-py``): the feature corpus.

Every file ``tests/data/svg/features/<feature>/<variant>.svg`` is one small SVG written for this
project, exercising one variant of one feature (the XML comment at its top says which). Each is
rendered by us and by resvg at 256 px (longer side; a file may say ``@size N`` with the reason)
and must reach >= 30 dB PSNR, RGB over white. Loading it must give no
:class:`~pds.svg.SVGFeatureWarning` (every case claims full support) unless the file says
``@warns TEXT``, in which case exactly that warning is expected.

Where resvg departs from the specification (``pathLength`` for dashes, the CSS ``transform``
property) resvg renders the sibling ``<variant>.resvg.svg`` instead: the same picture spelled the
way it supports.  resvg is given ``languages=["en"]`` (its command-line default) and DejaVu for
the generic font families (what :mod:`pds.svg.text` maps them to).  Text cases are skipped where
DejaVu is not installed (``apt-get install fonts-dejavu-core``).

The comparison is :func:`pds.testing.resvg_psnr`, shared with ``benchmarks/svg_coverage.py``,
which writes the per-feature table ``benchmarks/results/svg_coverage.md``.
"""

from pathlib import Path

import pytest

from pds.testing import MIN_FEATURE_PSNR, dejavu_installed, feature_cases, resvg_psnr

pytest.importorskip("resvg_py")
pytest.importorskip("imageio.v3")

FEATURES = Path(__file__).parent / "data" / "svg" / "features"
CASES = feature_cases(FEATURES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_feature_matches_resvg(case):
    if case.has_text and not dejavu_installed():  # pragma: no cover - machine without DejaVu
        pytest.skip("DejaVu fonts are not installed")
    assert resvg_psnr(case) >= MIN_FEATURE_PSNR


def test_every_case_says_what_it_exercises_and_references_have_a_case():
    assert len(CASES) >= 116 and len({c.feature for c in CASES}) >= 15
    for case in CASES:
        assert case.text.startswith("<!--") and case.description, case.name
        assert case.reference.lstrip().startswith("<!--"), case.name
    for ref in FEATURES.glob("*/*.resvg.svg"):
        assert ref.with_name(ref.name.replace(".resvg.svg", ".svg")).is_file(), ref
