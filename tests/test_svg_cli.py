"""The ``pds-svg`` command: render, info, edit, and one-line errors (exit 2) on bad input."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pds.svg import SVGScene
from pds.cli.svg import STYLE_PRESETS, cli, resolve_style

DATA = Path(__file__).parent / "data" / "svg"
ICON = DATA / "twemoji" / "1f600.svg"
NS = 'xmlns="http://www.w3.org/2000/svg"'


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, match=None):
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pds-svg: error: "), lines[0]
    assert "Traceback" not in result.output
    if match:
        assert match in lines[0], lines[0]


@pytest.fixture
def icon(tmp_path):
    p = tmp_path / "icon.svg"
    p.write_bytes(ICON.read_bytes())
    return p


# ---------------------------------------------------------------------------------------------
# render / info
# ---------------------------------------------------------------------------------------------

def test_render_writes_png(icon, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "out.png"
    r = run("render", icon, "-o", out, "--size", 64)
    assert r.exit_code == 0, r.stderr
    assert iio.imread(out).shape[:2] == (64, 64)
    r = run("render", icon)  # default output next to the input
    assert r.exit_code == 0 and (tmp_path / "icon.png").is_file()


def test_info_lists_ids(tmp_path):
    p = tmp_path / "a.svg"
    p.write_text(f'<svg {NS} viewBox="0 0 10 10"><g id="grp"><rect id="r" width="2" height="2"/></g></svg>')
    r = run("info", p)
    assert r.exit_code == 0 and "ids: grp r" in r.output and "1 painted shape" in r.output


def test_help_works():
    r = run("--help")
    assert r.exit_code == 0 and "edit" in r.output and "render" in r.output
    r = run("edit", "--help")
    assert r.exit_code == 0 and "--optimize" in r.output


# ---------------------------------------------------------------------------------------------
# bad input: one line on stderr, exit 2, no output file
# ---------------------------------------------------------------------------------------------

BAD_FILES = {
    "not-xml.svg": "this is not xml at all",
    "bomb.svg": ('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
                 f']><svg {NS}><text>&b;</text></svg>'),
    "xxe.svg": ('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                f'<svg {NS}><text>&x;</text></svg>'),
    "empty.svg": f'<svg {NS} viewBox="0 0 10 10"><foreignObject width="5" height="5"/><rect width="0" '
                 'height="1"/></svg>',
    "html.svg": "<html><body/></html>",
}


@pytest.mark.parametrize("name, match", [("not-xml.svg", "not well-formed"), ("bomb.svg", "entities"),
                                         ("xxe.svg", "entit"), ("empty.svg", "no drawable element"),
                                         ("html.svg", "not SVG")])
@pytest.mark.parametrize("command", ["render", "edit"])
def test_bad_svg_files(tmp_path, name, match, command):
    p = tmp_path / name
    p.write_text(BAD_FILES[name])
    out = tmp_path / ("out.png" if command == "render" else "out.svg")
    args = [command, p, "-o", out]
    if command == "edit":
        args += ["--src", "a red circle", "--tgt", "a blue circle", "--model", tmp_path / "no-model"]
    assert_one_line_error(run(*args), match)
    assert sorted(x.name for x in tmp_path.iterdir()) == [name]


def test_missing_and_unreadable_input(tmp_path):
    assert_one_line_error(run("render", tmp_path / "nope.svg", "-o", tmp_path / "o.png"), "no such file")
    assert_one_line_error(run("render", tmp_path, "-o", tmp_path / "o.png"), "directory")
    p = tmp_path / "locked.svg"
    p.write_bytes(ICON.read_bytes())
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running as root: permissions are not enforced")
        assert_one_line_error(run("render", p, "-o", tmp_path / "o.png"), "permission denied")
    finally:
        p.chmod(0o644)
    assert not (tmp_path / "o.png").exists()


def test_unwritable_output(icon, tmp_path):
    assert_one_line_error(run("render", icon, "-o", tmp_path / "missing" / "o.png"), "does not exist")
    assert_one_line_error(run("render", icon, "-o", tmp_path), "directory")
    assert_one_line_error(run("edit", icon, "--src", "a", "--tgt", "b", "-o", tmp_path / "missing" / "o.svg"),
                          "does not exist")


def test_output_equal_to_input_is_refused(icon, tmp_path):
    before = icon.read_bytes()
    assert_one_line_error(run("edit", icon, "--src", "a red circle", "--tgt", "a blue circle", "-o", icon),
                          "input file")
    assert_one_line_error(run("render", icon.with_suffix(".svg"), "-o", tmp_path / "." / "icon.svg"), "input file")
    assert icon.read_bytes() == before


@pytest.mark.parametrize("args, match", [
    (["--src", "", "--tgt", "a blue circle"], "--src is empty"),
    (["--src", "a red circle", "--tgt", "   "], "--tgt is empty"),
    (["--src", "a", "--tgt", "b", "--size", "0"], "--size"),
    (["--src", "a", "--tgt", "b", "--t-min", "0.9", "--t-max", "0.5"], "--t-min"),
    (["--src", "a", "--tgt", "b", "--optimize", "points,colour"], "unknown parameter kind"),
    (["--src", "a", "--tgt", "b", "--only", "nope"], "no painted element has id 'nope'"),
    (["--src", "a", "--tgt", "b", "--method", "xyz"], "xyz"),
    (["--src", "a", "--tgt", "b", "--position-weight", "-1"], "--position-weight"),
    (["--src", "a red circle", "--tgt", "a blue circle", "--guidance-interval", "0.9", "0.5"], "guidance interval"),
    (["--src", "a", "--tgt", "b", "--guidance-interval", "0.5", "2"], "--guidance-interval"),
    (["--src", "a", "--tgt", "b", "--position-weight", "nan"], "--position-weight"),
    (["--src", "a", "--tgt", "b", "--video", "v.avi2"], "unsupported video format"),
])
def test_bad_options(icon, tmp_path, args, match):
    out = tmp_path / "out.svg"
    assert_one_line_error(run("edit", icon, "-o", out, *args), match)
    assert not out.exists() and not out.with_suffix(".png").exists()


def test_render_size_zero(icon, tmp_path):
    assert_one_line_error(run("render", icon, "-o", tmp_path / "o.png", "--size", "0"), "--size")


def test_bad_model_and_unknown_words(icon, tmp_path, tiny_prior_dir):
    out = tmp_path / "out.svg"
    assert_one_line_error(run("edit", icon, "-o", out, "--src", "a red circle", "--tgt", "a blue circle",
                              "--model", tmp_path / "nowhere"), "prior")
    assert_one_line_error(run("edit", icon, "-o", out, "--src", "a red circle", "--tgt", "a purple giraffe",
                              "--model", tiny_prior_dir), "giraffe")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# edit
# ---------------------------------------------------------------------------------------------

def test_edit_writes_svg_png_frames_and_video(icon, tmp_path, tiny_prior_dir):
    out = tmp_path / "edited.svg"
    frames = tmp_path / "frames"
    video = tmp_path / "edit.gif"
    r = run("edit", icon, "--src", "a yellow circle", "--tgt", "a blue circle", "-o", out, "--model", tiny_prior_dir,
            "--steps", 2, "--guidance", 7.5, "--seed", 3, "--frames", frames, "--video", video, "--png-size", 64,
            "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.stderr
    assert "wrote" in r.stderr
    edited = SVGScene.load(out)
    original = SVGScene.load(icon)
    assert [i.element.tag for i in edited.items] == [i.element.tag for i in original.items]
    assert out.with_suffix(".png").is_file()
    assert sorted(p.name for p in frames.iterdir()) == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    import imageio.v3 as iio

    assert iio.imread(video, index=None).shape[0] == 3
    assert icon.read_bytes() == ICON.read_bytes()


def test_edit_only_selected_elements_change(tmp_path, tiny_prior_dir):
    src = tmp_path / "two.svg"
    src.write_text(f'<svg {NS} viewBox="0 0 32 32"><circle id="a" cx="10" cy="16" r="6" fill="#d03030"/>'
                   '<rect id="b" x="18" y="10" width="10" height="12" fill="#3030d0"/></svg>')
    out = tmp_path / "out.svg"
    r = run("edit", src, "--src", "a red circle", "--tgt", "a blue circle", "-o", out, "--model", tiny_prior_dir,
            "--steps", 2, "--only", "a", "--optimize", "fill,width", "--lr-color", 0.2, "--device", "cpu", "-q")
    assert r.exit_code == 0, r.stderr
    text = out.read_text()
    assert '<rect id="b" x="18" y="10" width="10" height="12" fill="#3030d0" />' in text
    assert 'cx="10" cy="16" r="6"' in text and 'fill="#d03030"' not in text


@pytest.mark.parametrize("mode, tgt, kept, circle_kept", [
    ("auto", "a blue circle", True, False), ("free", "a blue circle", False, False),
    ("auto", "a red circle on a yellow background", False, True),  # only the background changes
    ("keep", "a red circle on a yellow background", True, False)])
def test_edit_keeps_the_background_unless_the_prompts_change_it(tmp_path, tiny_prior_dir, mode, tgt, kept,
                                                                circle_kept):
    src = tmp_path / "page.svg"
    src.write_text(f'<svg {NS} viewBox="0 0 32 32"><rect id="page" width="32" height="32" fill="#ffffff"/>'
                   '<circle id="a" cx="16" cy="16" r="8" fill="#d03030"/></svg>')
    out = tmp_path / "out.svg"
    r = run("edit", src, "--src", "a red circle", "--tgt", tgt, "-o", out, "--model", tiny_prior_dir, "--steps", 2,
            "--optimize", "fill", "--lr-color", 0.2, "--background", mode, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    page = '<rect id="page" width="32" height="32" fill="#ffffff" />'
    assert (page in out.read_text()) == kept
    assert ("keeping the background ('page')" in r.stderr) == kept, r.stderr
    assert ("editing only the background ('page')" in r.stderr) == circle_kept, r.stderr
    assert ('fill="#d03030"' in out.read_text()) == circle_kept


def test_ctrl_c_writes_the_current_result(icon, tmp_path, tiny_prior_dir, monkeypatch):
    calls = {"n": 0}
    real = SVGScene.render

    def render(self, size=None):
        calls["n"] += 1
        if calls["n"] == 3:  # source render, step 0, then Ctrl-C during step 1
            raise KeyboardInterrupt
        return real(self, size)

    monkeypatch.setattr(SVGScene, "render", render)
    out = tmp_path / "out.svg"
    r = run("edit", icon, "--src", "a yellow circle", "--tgt", "a blue circle", "-o", out, "--model", tiny_prior_dir,
            "--steps", 50, "--device", "cpu", "-q", "--png-size", 32)
    assert r.exit_code == 130
    assert "interrupted after 1 step" in r.stderr
    assert out.is_file() and out.with_suffix(".png").is_file()
    SVGScene.load(out)


def test_style_presets(tiny_prior):
    assert resolve_style("iconography", tiny_prior) == STYLE_PRESETS["iconography"]
    assert resolve_style("none", tiny_prior) == ""
    assert resolve_style("auto", tiny_prior) == ""  # closed-vocabulary prior: no suffix
    assert resolve_style(", pixel art", tiny_prior) == ", pixel art"

    class OpenPrior:
        metadata, vocabulary = {}, None

    assert resolve_style("auto", OpenPrior()) == STYLE_PRESETS["iconography"]


def test_console_script_module_entry_point(tmp_path):
    """Running the entry point in a fresh interpreter: one line, exit 2, no traceback."""
    bad = tmp_path / "bad.svg"
    bad.write_text("nope")
    proc = subprocess.run([sys.executable, "-c", "from pds.cli.svg import main; main()", "render", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("pds-svg: error:")
    assert "Traceback" not in proc.stderr


def test_readme_first_command_turns_the_red_circle_blue_and_keeps_it(tmp_path):
    """The README's main job, verbatim but for the output folder, on the shipped embedded prior:
    the circle comes out blue with its centre and radius within 5 % of the source's."""
    from xml.etree import ElementTree as ET

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "out.svg"
    proc = subprocess.run([sys.executable, "-m", "pds.cli.svg", "edit", str(root / "examples/svg/red_circle.svg"),
                           "--src", "a red circle", "--tgt", "a blue circle", "-o", str(out), "-q"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and out.with_suffix(".png").is_file()
    circle = next(el for el in ET.parse(out).getroot().iter() if el.tag.endswith("circle"))
    cx, cy, r = (float(circle.get(k)) for k in ("cx", "cy", "r"))
    assert abs(cx - 32) <= 0.05 * 32 and abs(cy - 32) <= 0.05 * 32 and abs(r - 18) <= 0.05 * 18, (cx, cy, r)
    fill = circle.get("fill") or circle.get("style", "")
    hexcol = fill[fill.index("#") + 1:][:6]
    red, green, blue = (int(hexcol[i:i + 2], 16) for i in (0, 2, 4))
    assert blue > 1.5 * red and blue > green, fill
