"""The edit benchmark's colour naming (benchmarks/edit_quality.py): the second opinion on a
recolour's target, beside the probe."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
edit_quality = pytest.importorskip("edit_quality")


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])


def test_every_palette_colour_names_itself():
    from tools.prior import data

    for name in data.COLORS:
        assert edit_quality.nearest_palette_colour(data.color_rgb(name)) == name


@pytest.mark.parametrize("colour, name", [
    ("#2f98cb", "blue"),    # a light blue is blue, not gray
    ("#1b11ff", "blue"),    # pure blue stays blue (CIELAB would call it purple)
    ("#08dafc", "green"),   # cyan is not blue
    ("#26172d", "black"),   # a near-black purple reads as black
    ("#6acf86", "green"),   # a light green page is not gray
    ("#d1ad00", "yellow"),  # ochre is nearer yellow than orange
    ("#a08363", "brown"),   # a greyish orange
])
def test_off_palette_colours_get_the_name_a_person_would_give(colour, name):
    assert edit_quality.nearest_palette_colour(_rgb(colour)) == name


def _disc(page, ink, size=64, r=13.37):
    """An antialiased disc (7×7 supersampled: no pixel is exactly half covered) of colour ``ink`` on ``page``, ``(H, W, 3)``."""
    s = 7
    yy, xx = np.mgrid[0:size * s, 0:size * s] + 0.5
    inside = ((xx / s - 31.7) ** 2 + (yy / s - 30.6) ** 2 < r ** 2).astype(np.float64)
    cover = inside.reshape(size, s, size, s).mean(axis=(1, 3))[..., None]
    return cover * np.asarray(ink) + (1 - cover) * np.asarray(page)


def test_coverage_silhouette_does_not_depend_on_the_page_contrast():
    """The same purple disc on a white page, a saturated orange one and a paler orange one:
    the colour-difference threshold measures three sizes, the coverage rule one."""
    purple = np.array([130, 50, 180]) / 255
    pages = [np.ones(3), np.array([1.0, 0.50, 0.0]), np.array([0.945, 0.537, 0.149])]
    masks = [edit_quality.covered(_disc(p, purple)) for p in pages]
    assert all((m == masks[0]).all() for m in masks[1:])
    assert abs(int(masks[0].sum()) - round(np.pi * 13.37 ** 2)) <= 0.03 * np.pi * 13.37 ** 2
    thresholded = [int(edit_quality.foreground(_disc(p, purple)).sum()) for p in pages]
    assert len(set(thresholded)) > 1  # why the coverage rule exists
    assert not edit_quality.covered(np.ones((8, 8, 3))).any()
