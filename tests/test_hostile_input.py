"""Hostile input (issue 13, findings R1-R8): whatever a user passes, the CLIs answer with exit
status 0 or 2 and at most one error line, never a traceback; nothing is written on failure and
the input is never touched.

Most cases run the click commands in-process (fast); the ones about the process as a whole
(stderr noise of the model libraries, the hub) run in a subprocess. Nothing here uses the network.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from pds.cli import FiniteFloat
from pds.cli.sample import command as sample_command
from pds.cli.svg import cli
from pds.priors import EMBEDDED_DIR, PriorError
from pds.svg.parse import limits as svg_parse

NS = 'xmlns="http://www.w3.org/2000/svg"'
RECT = f'<svg {NS} viewBox="0 0 10 10"><rect x="2" y="2" width="6" height="6" fill="red"/></svg>'
EDIT = ["--src", "a red square", "--tgt", "a blue square", "--steps", "1", "-q", "--device", "cpu"]


def svg_file(folder: Path, body: str, name: str = "in.svg", attrs: str = 'viewBox="0 0 10 10"') -> Path:
    path = folder / name
    path.write_text(f"<svg {NS} {attrs}>{body}</svg>")
    return path


def invoke(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args])


def assert_refused(result, match=None, prog="pds-svg", code=2):
    """The contract: exit ``code``, exactly one stderr line, the program's prefix, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: "), lines[0]
    assert "Traceback" not in result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if match:
        assert match in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict:
    """Every regular file under ``folder`` with its bytes (to prove nothing was written or changed)."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def rect(tmp_path):
    return svg_file(tmp_path, '<rect x="2" y="2" width="6" height="6" fill="red"/>')


# ---------------------------------------------------------------------------------------------
# R1 unbounded memory
# ---------------------------------------------------------------------------------------------

def test_r1_path_with_too_many_segments_is_refused_before_parsing(tmp_path):
    segments = " ".join(f"L{i % 10} {i % 7}" for i in range(svg_parse.MAX_PATH_SEGMENTS * 4))
    path = svg_file(tmp_path, f'<path id="big" d="M0 0 {segments}"/>')
    before = snapshot(tmp_path)
    line = assert_refused(invoke(cli, "render", path, "-o", tmp_path / "out.png"), "segments")
    assert str(svg_parse.MAX_PATH_SEGMENTS) in line and 'id="big"' in line and "simplify" in line
    assert snapshot(tmp_path) == before


def test_r1_exact_segment_count_just_over_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(svg_parse, "MAX_PATH_SEGMENTS", 50)
    ok = svg_file(tmp_path, '<path d="M0 0 ' + "L1 1 " * 49 + '"/>', "ok.svg")
    over = svg_file(tmp_path, '<path d="M0 0 ' + "L1 1 " * 51 + '"/>', "over.svg")
    assert invoke(cli, "info", ok).exit_code == 0
    assert_refused(invoke(cli, "info", over), "51 segments, more than the 50 limit")


def test_r1_document_segment_budget_counts_use_copies(tmp_path, monkeypatch):
    monkeypatch.setattr(svg_parse, "MAX_SEGMENTS", 100)
    body = '<path id="p" d="M0 0 ' + "L1 1 " * 30 + '"/>' + '<use href="#p"/>' * 3
    assert_refused(invoke(cli, "info", svg_file(tmp_path, body)), "more than 100 path segments in all")


def test_r1_gradient_with_too_many_stops(tmp_path):
    stops = '<stop offset="0.5" stop-color="red"/>' * (svg_parse.MAX_GRADIENT_STOPS + 1)
    body = f'<linearGradient id="g">{stops}</linearGradient><rect width="5" height="5" fill="url(#g)"/>'
    assert_refused(invoke(cli, "info", svg_file(tmp_path, body)), "stops")


def test_r1_edit_size_beyond_free_memory_is_refused_before_loading(rect, tmp_path, monkeypatch):
    from pds.util import memory

    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 2**30)
    monkeypatch.setattr("pds.load_prior", lambda *a, **k: pytest.fail("the model must not load"))
    out = tmp_path / "out.svg"
    line = assert_refused(invoke(cli, "edit", rect, "-o", out, "--size", 8192, *EDIT), "--size 8192 needs about")
    assert "smaller --size" in line and not out.exists()


def test_r1_torch_allocation_failure_is_named_as_such(capsys):
    """torch reports a failed allocation as a RuntimeError, not a MemoryError."""
    from pds.cli import EXIT_INTERNAL, run

    def fail():
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")

    assert run("pds-test", fail) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pds-test: error: out of memory; use a smaller --size"), err


# ---------------------------------------------------------------------------------------------
# R2 extreme geometry
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("attrs", ['viewBox="0 0 1e-300 1e-300"', 'width="1e-300" height="10"',
                                   'viewBox="0 0 1e300 1e300"'])
def test_r2_extreme_viewports_render(tmp_path, attrs):
    path = svg_file(tmp_path, '<rect width="5" height="5"/><circle cx="3" cy="3" r="2"/>', attrs=attrs)
    r = invoke(cli, "render", path, "-o", tmp_path / "out.png", "--size", 16)
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "out.png").is_file()


def test_r2_overflowing_shapes_are_skipped_not_fatal(tmp_path):
    body = ('<circle cx="1e308" cy="1e308" r="1e308"/><path d="M0 0 A1e308 1e308 0 0 1 5 5"/>'
            '<path d="M1e308 1e308 L-1e308 1e308 L0 -1e308Z"/><rect width="2" height="2"/>')
    r = invoke(cli, "render", svg_file(tmp_path, body), "-o", tmp_path / "out.png", "--size", 16)
    assert r.exit_code == 0, r.stderr
    assert "numbers too large to draw" in r.stderr and "Traceback" not in r.stderr


def test_r2_only_overflowing_shapes_is_one_line(tmp_path):
    path = svg_file(tmp_path, '<circle cx="1e308" cy="1e308" r="1e308"/>')
    assert_refused(invoke(cli, "render", path, "-o", tmp_path / "out.png"), "no drawable element")


def test_r2_overflowing_shape_beside_a_normal_one_still_edits(tmp_path):
    """A 1e300 circle overflows in the curve maths and is skipped; the rest of the file edits."""
    path = svg_file(tmp_path, '<circle cx="1e300" cy="1e300" r="1e300" fill="blue"/>'
                              '<rect x="2" y="2" width="6" height="6" fill="red"/>')
    r = invoke(cli, "edit", path, "-o", tmp_path / "out.svg", *EDIT)
    assert r.exit_code == 0, r.stderr
    assert "numbers too large to draw in <circle>" in r.stderr
    assert (tmp_path / "out.svg").is_file() and (tmp_path / "out.png").is_file()


@pytest.mark.parametrize("body, attrs, match", [
    ('<rect x="1e6" y="1e6" width="2" height="2" fill="red"/>', 'viewBox="0 0 10 10"', "draw nothing on the canvas"),
    ('<path d="M0 0 L1e300 0 L0 1e300Z" fill="red"/>', 'viewBox="0 0 10 10"', "numbers too large to draw"),
    ('<path d="M0 0 L5 0 L0 5Z" fill="red"/>', 'viewBox="0 0 1e-300 1e-300"', "gradients overflow"),
])
def test_r2_geometry_that_cannot_be_optimised_is_refused(tmp_path, body, attrs, match):
    """Before the fix: 'does not require grad' tracebacks, or an edit that silently collapsed
    every coordinate to 0 through NaN gradients."""
    path = svg_file(tmp_path, body, attrs=attrs)
    before = snapshot(tmp_path)
    assert_refused(invoke(cli, "edit", path, "-o", tmp_path / "out.svg", *EDIT), match)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("option", ["--lr-points", "--lr-color", "--lr-width", "--lr-opacity", "--guidance"])
@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_r2_r3_non_finite_numbers_are_refused(rect, tmp_path, option, value):
    r = invoke(cli, "edit", rect, "-o", tmp_path / "out.svg", *EDIT, option, value)
    assert_refused(r, f"'{option}'")
    assert "not a finite number" in r.stderr or "range" in r.stderr
    assert not (tmp_path / "out.svg").exists()


def test_finite_float_keeps_its_range():
    t = FiniteFloat(min=0.1, max=10)
    assert t.convert("2.5", None, None) == 2.5
    for bad in ("nan", "inf", "0.01", "11"):
        with pytest.raises(Exception):
            t.convert(bad, None, None)


# ---------------------------------------------------------------------------------------------
# R3 everything else is one line
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", ["18446744073709551616", "-1"])
def test_r3_seed_out_of_range(rect, tmp_path, seed):
    assert_refused(invoke(cli, "edit", rect, "-o", tmp_path / "out.svg", *EDIT, "--seed", seed), "--seed")


@pytest.mark.parametrize("device", ["meta", "bogus", "cuda:99"])
def test_r3_devices_that_cannot_run(rect, tmp_path, device):
    args = [a for a in EDIT if a not in ("--device", "cpu")]
    assert_refused(invoke(cli, "edit", rect, "-o", tmp_path / "out.svg", *args, "--device", device), "device")


def test_r3_unknown_encoding(tmp_path):
    path = tmp_path / "k.svg"
    path.write_text('<?xml version="1.0" encoding="x-klingon"?>' + RECT)
    assert_refused(invoke(cli, "info", path), "unknown character encoding")


@pytest.mark.parametrize("body", ["<style>" + ":not(" * 500 + "rect" + ")" * 500 + "{fill:red}</style><rect width='5' height='5'/>",
                                  "<rect width='5' height='5' style='fill:" + "(" * 5000 + "'/>"])
def test_r3_deeply_nested_css(tmp_path, body):
    r = invoke(cli, "info", svg_file(tmp_path, body))
    if r.exit_code == 0:  # the nesting was ignored as invalid CSS: fine, as long as it is quiet
        assert "Traceback" not in r.stderr
    else:
        assert_refused(r, "nested")


def test_r3_symlink_loop_as_input(tmp_path):
    loop = tmp_path / "loop.svg"
    os.symlink(loop, loop)
    assert_refused(invoke(cli, "info", loop), "symbolic links")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_r3_endless_devices_are_read_with_a_cap(device, monkeypatch):
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    monkeypatch.setattr(svg_parse, "MAX_FILE_BYTES", 1 << 16)  # the cap, not the bytes, is tested
    assert_refused(invoke(cli, "info", device), "byte limit")


def test_r3_fifo_without_writer_does_not_hang(tmp_path):
    fifo = tmp_path / "in.svg"
    os.mkfifo(fifo)
    assert_refused(invoke(cli, "info", fifo), "empty")


def _prior_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "prior"
    shutil.copytree(EMBEDDED_DIR / "pds-tiny", folder)
    return folder


def test_r3_invalid_metadata_reaches_the_cli_as_one_line(rect, tmp_path):
    prior = _prior_copy(tmp_path)
    meta = json.loads((prior / "pds_prior.json").read_text())
    (prior / "pds_prior.json").write_text(json.dumps({**meta, "resolution": "big"}))
    line = assert_refused(invoke(cli, "edit", rect, "-o", tmp_path / "out.svg", *EDIT, "--model", prior))
    assert "resolution must be an integer" in line
    (prior / "pds_prior.json").write_text('{"resolution": ')
    assert_refused(invoke(cli, "edit", rect, "-o", tmp_path / "out.svg", *EDIT, "--model", prior), "not valid JSON")
    assert not (tmp_path / "out.svg").exists()


def run_sample(capsys, *args):
    """``pds-sample`` behind its error boundary, in-process: ``(exit status, the one stderr line)``."""
    from pds.cli import run

    capsys.readouterr()
    code = run("pds-sample", lambda: sample_command.main([str(a) for a in args], standalone_mode=False))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) <= 1 and "Traceback" not in err, err
    return code, (lines[0] if lines else "")


def test_r3_unet_config_with_negative_channels(tmp_path, capsys):
    prior = _prior_copy(tmp_path)
    config_path = prior / "unet" / "config.json"
    config = json.loads(config_path.read_text())
    config["block_out_channels"] = [-c for c in config["block_out_channels"]]
    config_path.write_text(json.dumps(config))
    code, line = run_sample(capsys, "-m", prior, "-p", "a red circle", "-n", 1, "--steps", 1, "--device", "cpu",
                            "-o", tmp_path / "s.png")
    assert code == 2 and "could not load prior" in line and "incomplete or corrupt" in line
    assert not (tmp_path / "s.png").exists()


def test_r3_nan_weights_are_one_line_not_a_black_image(tmp_path):
    import torch

    from pds.cli import run
    from pds.cli.sample import sample_grid

    from safetensors.torch import load_file, save_file

    prior = _prior_copy(tmp_path)
    weights = prior / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(weights)
    save_file({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in tensors.items()},
              weights)
    with pytest.raises(PriorError, match="NaN or infinite"):
        sample_grid(str(prior), ["a red circle"], n=1, steps=1, device="cpu")
    assert run("pds-sample", lambda: sample_grid(str(prior), ["a red circle"], n=1, steps=1, device="cpu")) == 2


def test_r3_ctrl_c_during_start_up(rect, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("pds.load_prior", interrupted)
    out = tmp_path / "out.svg"
    assert_refused(invoke(cli, "edit", rect, "-o", out, *EDIT), "interrupted", code=130)
    assert not out.exists() and not out.with_suffix(".png").exists()


# ---------------------------------------------------------------------------------------------
# R4 no partial output, R5 the input is never overwritten, R6 special files are never replaced
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fps", ["nan", "inf", "0"])
def test_r4_bad_fps_writes_nothing(rect, tmp_path, fps):
    before = snapshot(tmp_path)
    r = invoke(cli, "edit", rect, "-o", tmp_path / "out.svg", *EDIT, "--video", tmp_path / "e.gif", "--fps", fps)
    assert_refused(r, "--fps")
    assert snapshot(tmp_path) == before


def test_r5_frames_folder_holding_the_input(tmp_path):
    frames = tmp_path / "fr"
    frames.mkdir()
    source = frames / "frame_00000.png"  # an SVG under a frame's name
    source.write_text(RECT)
    before = snapshot(tmp_path)
    r = invoke(cli, "edit", source, "-o", tmp_path / "out.svg", *EDIT, "--frames", frames)
    assert_refused(r, "would overwrite")
    assert snapshot(tmp_path) == before


def test_r5_frames_folder_reached_through_a_symlinked_input(tmp_path):
    frames = tmp_path / "fr"
    frames.mkdir()
    (frames / "frame_00001.png").write_text(RECT)
    link = tmp_path / "link.svg"
    os.symlink(frames / "frame_00001.png", link)
    before = snapshot(tmp_path)
    assert_refused(invoke(cli, "edit", link, "-o", tmp_path / "out.svg", *EDIT, "--frames", frames), "would overwrite")
    assert snapshot(tmp_path) == before


def test_r6_fifo_as_output_is_refused_before_any_work(rect, tmp_path, monkeypatch):
    fifo = tmp_path / "nul.svg"
    os.mkfifo(fifo)
    monkeypatch.setattr("pds.load_prior", lambda *a, **k: pytest.fail("the model must not load"))
    assert_refused(invoke(cli, "edit", rect, "-o", fifo, *EDIT), "special file")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    fifo_png = tmp_path / "nul.png"
    os.mkfifo(fifo_png)
    assert_refused(invoke(cli, "render", rect, "-o", fifo_png), "special file")
    assert stat.S_ISFIFO(os.stat(fifo_png).st_mode)


def test_r6_dev_null_is_refused_and_left_intact(rect):
    before = os.stat("/dev/null")
    assert_refused(invoke(cli, "render", rect, "-o", "/dev/null"), "special file")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_r6_sample_refuses_a_fifo_before_loading(tmp_path, monkeypatch, capsys):
    fifo = tmp_path / "grid.png"
    os.mkfifo(fifo)
    monkeypatch.setattr("pds.load_prior", lambda *a, **k: pytest.fail("the model must not load"))
    code, line = run_sample(capsys, "-o", fifo, "-p", "a red circle")
    assert code == 2 and "special file" in line and stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.parametrize("guidance", ["nan", "inf"])
def test_r3_sample_non_finite_guidance(tmp_path, capsys, guidance):
    code, line = run_sample(capsys, "-o", tmp_path / "g.png", "-p", "a red circle", "--guidance", guidance)
    assert code == 2 and "not a finite number" in line and not (tmp_path / "g.png").exists()


# ---------------------------------------------------------------------------------------------
# R7 prompts the vocabulary cannot represent
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prompt, word", [("a 😀 square", "'😀'"), ("a 圆 square", "'圆'"), ("!!!", "'!'"),
                                          ("a red circlé", "'circlé'")])
def test_r7_unknown_tokens_are_refused_with_the_known_words(rect, tmp_path, prompt, word):
    line = assert_refused(invoke(cli, "edit", rect, "-o", tmp_path / "out.svg", *EDIT[:1], prompt, *EDIT[2:]))
    assert f"word(s) {word} that this prior does not know" in line
    assert "known words: a, " in line and "square" in line
    assert not (tmp_path / "out.svg").exists()


def test_r7_long_word_lists_are_shortened():
    from pds.priors.diffusers_prior import DiffusersPrior, UnknownWordError
    from pds.priors.metadata import PriorMetadata

    prior = DiffusersPrior.__new__(DiffusersPrior)  # check_prompt needs only the tokenizer and vocabulary
    prior.metadata = PriorMetadata(vocabulary=tuple(f"w{i}" for i in range(10_000)))
    prior.tokenizer = None
    with pytest.raises(UnknownWordError) as info:
        prior.check_prompt(" ".join(f"x{i}" for i in range(500)))
    message = str(info.value)
    assert len(message) < 1500 and "and 9960 more" in message and "and 490 more" in message


# ---------------------------------------------------------------------------------------------
# R8 nothing but the one line on stderr (subprocesses: the libraries' own output counts)
# ---------------------------------------------------------------------------------------------

def _limit_memory() -> None:
    """Cap the child's address space (8 GiB: torch reserves a lot of it, and the refusals these
    tests check must come long before any real allocation)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def _cli_process(module: str, *args, env=None, cwd=None):
    """A CLI in a fresh process (offline, one thread, memory-capped): stderr as users see it."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
    environment.pop("PDS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=environment, cwd=cwd,
                          preexec_fn=_limit_memory if sys.platform.startswith("linux") else None)


def test_r8_error_after_loading_the_prior_is_exactly_one_line(rect, tmp_path):
    p = _cli_process("pds.cli.svg", "edit", rect, "-o", tmp_path / "out.svg", *EDIT[:1], "a 😀 square", *EDIT[2:])
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("pds-svg: error: prompt"), p.stderr
    assert "accelerate" not in p.stderr and not (tmp_path / "out.svg").exists()


def test_r1_issue_file_is_refused_in_a_memory_capped_process(tmp_path):
    """The fuzzing pass's 1.2 MB path of 100,000 random segments (an allocation failure after 6 GB)."""
    import random

    rng = random.Random(0)
    segments = " ".join(f"L{rng.random() * 10:.3f} {rng.random() * 10:.3f}" for _ in range(100_000))
    source = svg_file(tmp_path, f'<path d="M0 0 {segments}"/>')
    p = _cli_process("pds.cli.svg", "render", source, "-o", tmp_path / "out.png")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "segments" in p.stderr, p.stderr
    assert not (tmp_path / "out.png").exists()


def test_r8_unreachable_hub_fails_fast_with_one_line(tmp_path):
    p = _cli_process("pds.cli.sample", "-m", "nobody/not-a-model", "-p", "a red circle", "-o", tmp_path / "s.png",
                     "--device", "cpu", env={"HF_HOME": str(tmp_path / "hf")})
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "HF_HUB_OFFLINE is set" in lines[0] and "pass its folder" in lines[0], p.stderr


def test_r8_hub_check_without_network(monkeypatch):
    """No hub answering: one PriorError naming the hub, without the client's half-minute of retries."""
    from pds.priors import diffusers_prior, load_prior

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(diffusers_prior, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(PriorError, match="the model hub is unreachable from this machine and it is not in the local"):
        load_prior("nobody/not-a-model-at-all", device="cpu")


# ---------------------------------------------------------------------------------------------
# generated hostile documents: numbers, path data, transforms and colours at the edges
# ---------------------------------------------------------------------------------------------

_NUMBERS = ["0", "-0", "1", "-7.5", "1e308", "-1e308", "1e-320", "1e99999", "nan", "inf", "-inf", ".", "1.2.3",
            "--1", "+", "", "5e", "0x10", "3%", "1e-300"]
_TRANSFORMS = ["rotate(nan)", "scale(1e308)", "matrix(0 0 0 0 0 0)", "skewX(90)", "translate(inf)", "scale(0)",
               "rotate(45 1e308 1e308)", "matrix(1 2 3)", "scale(-1e-300)", "translate(1,2) rotate("]
_COLOURS = ["#ggg", "rgb(1e308,nan,-1)", "hsl(nan,0%,0%)", "currentColor", "url(#missing)", "rgba(0,0,0,1e308)",
            "red", "#12345", "rgb(", "none", "inherit", "transparent", "url(#g) red"]


def _hostile_document(rng) -> str:
    """One random SVG whose every number, transform and colour may be out of range or malformed."""
    def num():
        return rng.choice(_NUMBERS)

    def path_data():
        parts = ["M", num(), num()]
        for _ in range(rng.randrange(1, 8)):
            cmd = rng.choice("MLHVCSQTAZmlhvcsqtaz")
            count = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7, "Z": 0}[cmd.upper()]
            parts += [cmd] + [num() for _ in range(count + rng.choice([0, 0, 0, 1, -1]))]
        return " ".join(p for p in parts if p)

    elements = []
    for _ in range(rng.randrange(1, 4)):
        style = (f'fill="{rng.choice(_COLOURS)}" stroke="{rng.choice(_COLOURS)}" stroke-width="{num()}" '
                 f'opacity="{num()}" transform="{rng.choice(_TRANSFORMS)}"')
        kind = rng.choice(["path", "rect", "circle", "ellipse", "polyline", "line"])
        geometry = {"path": f'd="{path_data()}"',
                    "rect": f'x="{num()}" y="{num()}" width="{num()}" height="{num()}" rx="{num()}"',
                    "circle": f'cx="{num()}" cy="{num()}" r="{num()}"',
                    "ellipse": f'cx="{num()}" cy="{num()}" rx="{num()}" ry="{num()}"',
                    "polyline": f'points="{" ".join(num() for _ in range(rng.randrange(0, 9)))}"',
                    "line": f'x1="{num()}" y1="{num()}" x2="{num()}" y2="{num()}"'}[kind]
        elements.append(f"<{kind} {geometry} {style}/>")
    gradient = (f'<linearGradient id="g" x1="{num()}" x2="{num()}" gradientTransform="{rng.choice(_TRANSFORMS)}">'
                f'<stop offset="{num()}" stop-color="{rng.choice(_COLOURS)}"/><stop offset="{num()}"/></linearGradient>')
    view_box = rng.choice(["0 0 10 10", "0 0 1e-300 1e-300", "0 0 1e300 1e300", "0 0 0 0", "nan 0 10 10", ""])
    return f'<svg {NS} viewBox="{view_box}" width="{num()}">{gradient}{"".join(elements)}</svg>'


# 20, 31, 104, 2470, 3034, 4922: the documents that found overflowing sizes, None points from
# svgelements, inf stroke widths, 1e308 transforms and gradient coordinates
@pytest.mark.parametrize("seed", [*range(200), 2470, 3034, 4922])
def test_generated_hostile_documents_render_or_fail_in_one_line(tmp_path, seed):
    import random

    source = svg_file(tmp_path, "")
    source.write_text(_hostile_document(random.Random(seed)))
    before = source.read_bytes()
    out = tmp_path / "out.png"
    r = invoke(cli, "render", source, "-o", out, "--size", 16)
    assert r.exit_code in (0, 2), (r.exit_code, r.stderr, before)
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) <= 1 and "Traceback" not in r.stderr, r.stderr
    assert out.is_file() == (r.exit_code == 0)
    assert source.read_bytes() == before
    if r.exit_code == 0:
        import imageio.v3 as iio
        import torch

        from pds.svg import SVGScene

        assert iio.imread(out).shape[:2] in {(16, w) for w in range(1, 17)} | {(h, 16) for h in range(1, 17)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the CLI run above already reported them
            image = SVGScene.load(source).render(16)
        assert bool(torch.isfinite(image).all()), "a NaN image would be written as black pixels"


def test_internal_failure_is_one_line_naming_the_trace_file(capsys):
    """A bug of ours (here: a RuntimeError inside the command) is one stderr line, exit 1, and the
    traceback goes to the file the line names, never to the terminal."""
    import re

    from pds.cli import EXIT_INTERNAL, run

    def broken():
        raise RuntimeError("boom")

    assert run("pds-x", broken) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "internal error: RuntimeError: boom" in err
    trace = re.search(r"full trace in (\S+)\)", err).group(1)
    text = open(trace, encoding="utf-8").read()
    assert "Traceback" in text and "RuntimeError: boom" in text
    os.unlink(trace)
