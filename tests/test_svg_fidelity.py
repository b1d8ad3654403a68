"""Our renderer against cairosvg on the vendored corpus, and written SVGs against our renders.

Thresholds (256 px, PSNR over RGB in [0, 1] composited on white):
* every corpus file renders within 25 dB of cairosvg and the corpus mean is at least 35 dB;
* an edited (perturbed) scene written with ``save`` renders in cairosvg within 40 dB of our
  render of the scene.

Known places where cairosvg itself departs from the SVG spec are kept out of the corpus (they are
unit-tested instead): ``paint-order``, element ``opacity`` over fill+stroke (cairosvg fades each
paint separately), percentage lengths when the viewBox aspect differs from the viewport's, and
``hsl()`` colours. cairosvg's rounded-rect corners use a wrong control point and its arcs get a
spike at some scales (openmoji/1F6B5); those files stay in the corpus and score lower.

Our own known gap: nested viewports (``symbol``, inner ``svg``) do not clip their content, so a
perturbation that pushes content out of a symbol's viewport shows there and not in cairosvg.
"""

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

cairosvg = pytest.importorskip("cairosvg")
iio = pytest.importorskip("imageio.v3")

from pds.svg import SVGScene  # noqa: E402

DATA = Path(__file__).parent / "data" / "svg"
CORPUS = sorted(DATA.glob("*/*.svg"))
SIZE = 256


def cairo_render(svg_bytes: bytes, width: int, height: int) -> np.ndarray:
    png = cairosvg.svg2png(bytestring=svg_bytes, output_width=width, output_height=height, background_color="white")
    img = iio.imread(io.BytesIO(png)).astype(np.float64) / 255.0
    if img.shape[-1] == 4:
        img = img[..., :3] * img[..., 3:] + (1.0 - img[..., 3:])
    return img


def our_render(scene: SVGScene) -> np.ndarray:
    with torch.no_grad():
        return scene.render(SIZE).permute(1, 2, 0).double().numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return 100.0 if mse == 0 else 10.0 * np.log10(1.0 / mse)


def load(path) -> SVGScene:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SVGScene.load(path)


_PSNR: dict = {}


def corpus_psnr(path: Path) -> float:
    if path not in _PSNR:
        scene = load(path)
        w, h = scene.canvas_size(SIZE)
        _PSNR[path] = psnr(our_render(scene), cairo_render(path.read_bytes(), w, h))
    return _PSNR[path]


def test_corpus_is_vendored_with_licences():
    sets = {p.parent.name for p in CORPUS}
    assert {"twemoji", "openmoji", "mdi", "tabler", "features"} <= sets
    for s in ("twemoji", "openmoji", "mdi", "tabler"):
        assert (DATA / s / "LICENSE").is_file()
        assert len(list((DATA / s).glob("*.svg"))) >= 10
    assert (DATA / "NOTICE.md").is_file()


@pytest.mark.parametrize("path", CORPUS, ids=[f"{p.parent.name}/{p.name}" for p in CORPUS])
def test_each_file_matches_cairosvg(path):
    value = corpus_psnr(path)
    assert value >= 25.0, f"{path.name}: {value:.2f} dB against cairosvg"


def test_corpus_mean_psnr():
    values = {p: corpus_psnr(p) for p in CORPUS}
    per_set = {}
    for p, v in values.items():
        per_set.setdefault(p.parent.name, []).append(v)
    report = ", ".join(f"{k}: mean {np.mean(v):.1f} min {np.min(v):.1f}" for k, v in sorted(per_set.items()))
    mean = float(np.mean(list(values.values())))
    assert mean >= 35.0, f"mean {mean:.2f} dB ({report})"


ROUNDTRIP = sorted(DATA.glob("features/*.svg")) + [
    DATA / "twemoji" / "1f37f.svg", DATA / "twemoji" / "1f435.svg",
    DATA / "openmoji" / "1F6C5.svg", DATA / "openmoji" / "2328.svg",
    DATA / "mdi" / "weather-snowy.svg", DATA / "mdi" / "koala.svg",
    DATA / "tabler" / "outline-brand-ubuntu.svg", DATA / "tabler" / "outline-transform-point-bottom-right.svg",
]


def perturb(scene: SVGScene, seed: int) -> None:
    """Move points by ~1 % of the drawing, randomise colours, scale widths and opacities."""
    g = torch.Generator().manual_seed(seed)
    unit = scene.document.user_size
    with torch.no_grad():
        p = scene.parameters()
        for t in p.get("points", []):
            t.add_(torch.randn(t.shape, generator=g) * unit * 0.01)
        for kind in ("fill", "stroke"):
            for t in p.get(kind, []):
                t.copy_(torch.rand(t.shape, generator=g) * 0.8 + 0.2)
        for t in p.get("stroke_width", []):
            t.mul_(1.3)
        for t in p.get("opacity", []):
            t.mul_(0.9)
    scene.project()


@pytest.mark.parametrize("path", ROUNDTRIP, ids=[f"{p.parent.name}/{p.name}" for p in ROUNDTRIP])
def test_written_svg_renders_like_the_scene(path, tmp_path):
    scene = load(path)
    perturb(scene, seed=len(path.name))
    out = tmp_path / "edited.svg"
    scene.save(out)
    w, h = scene.canvas_size(SIZE)
    ours = our_render(scene)
    theirs = cairo_render(out.read_bytes(), w, h)
    assert psnr(ours, theirs) >= 40.0
    # and reading our own output back gives the same picture
    assert psnr(ours, our_render(load(out))) >= 50.0
