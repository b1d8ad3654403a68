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
