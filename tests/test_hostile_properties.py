"""Property-based hostile input (issue 13): generated SVG documents, as malformed as hypothesis
can make them from path data, transform lists, colours, numbers (NaN, inf, huge, negative,
malformed) and soups of attributes and ``style`` declarations, on every kind of element.

* Library: :meth:`SVGScene.load` + :meth:`~SVGScene.render` (16 px, in process) either give a
  finite image of the document's aspect ratio or raise :class:`pds.svg.SVGError` (the documented
  user error); never another exception.
* CLI: ``pds-svg render`` under a 4 GiB address-space limit exits 0 with the PNG or 2 with one
  stderr line and nothing written; never a traceback, and the input is unchanged. Hypothesis runs
  in a memory-limited child process, each document through the command's entry point
  (``pds.cli.svg.main``, everything written to stderr captured); the two largest documents are
  then run through the ``pds-svg`` console script, each in its own process (torch's import is
  what costs the seconds). ``PDS_HYPOTHESIS_EXAMPLES`` / ``PDS_HYPOTHESIS_CLI_EXAMPLES`` ask for
  more examples.

Reproducible: ``derandomize=True`` and no example database, so CI runs the same examples.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="pip install 'pds[test]' (hypothesis)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
SIZE = 16
BIN = Path(sys.executable).parent

COMMON = dict(derandomize=True, database=None, deadline=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])

# ------------------------------------------------------------------------------------ the values
_EDGE_NUMBERS = ["0", "-0", "1e308", "-1e308", "1.8e308", "1e-320", "4.9e-324", "1e99999", "-1e99999", "nan", "NaN",
                 "inf", "-inf", "Infinity", ".", "-", "+", "", "1.2.3", "--1", "5e", "e5", "0x10", "1_000", ".5.5",
                 "1e-7", "9" * 400, "-" + "9" * 40, "1e+308", "+.5e-3", "١٢"]


@st.composite
def _float_text(draw) -> str:
    x = draw(st.floats(allow_nan=True, allow_infinity=True, width=64))
    style = draw(st.sampled_from(["repr", "g", "e", "int"]))
    if style == "int" and math.isfinite(x):
        return str(int(x))
    if style == "g":
        return f"{x:g}"
    if style == "e":
        return f"{x:e}"
    return repr(x)


#: Numbers a drawing would hold (two thirds of all draws, so that many documents draw something).
sane_numbers = st.one_of(st.integers(min_value=-5, max_value=20).map(str),
                         st.floats(min_value=-30, max_value=30, allow_nan=False).map(lambda x: f"{x:.3g}"))
#: Any number an attribute could hold: floats of every magnitude (NaN and inf included, spelled
#: several ways), huge integers, negative values, units, and the malformed spellings above.
hostile_numbers = st.one_of(
    st.sampled_from(_EDGE_NUMBERS),
    _float_text(),
    st.integers(min_value=-(10 ** 320), max_value=10 ** 320).map(str),
    st.tuples(st.integers(-100, 100), st.sampled_from(["%", "px", "em", "ex", "pt", "mm", "in", "vw", "deg", "x"])
              ).map(lambda t: f"{t[0]}{t[1]}"),
    st.text(alphabet="0123456789.-+eE ,%", max_size=12),
)
numbers = st.one_of(sane_numbers, sane_numbers, hostile_numbers)  # two thirds sane
#: Text of XML-legal characters (control characters and the like make a document unreadable:
#: :func:`documents` breaks a few documents on purpose instead).
text = st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc", "Co")), max_size=12)
separators = st.sampled_from([" ", ",", ", ", "", "  ", "\n", "\t"])


@st.composite
def path_data(draw) -> str:
    """Path data: any command letters with too few, enough or too many numbers (arc flags included)."""
    parts = []
    if draw(st.integers(0, 4)):  # mostly a proper start
        parts += [draw(st.sampled_from(["M", "m", ""])), draw(numbers), draw(numbers)]
    for _ in range(draw(st.integers(1, 8))):
        cmd = draw(st.sampled_from("MLHVCSQTAZmlhvcsqtazXb"))
        count = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7, "Z": 0}.get(cmd.upper(), 1)
        count = max(0, count * draw(st.sampled_from([1, 1, 1, 2])) + draw(st.sampled_from([0, 0, 0, 1, -1])))
        args = [draw(st.sampled_from(["0", "1", "2", "-1"])) if cmd.upper() == "A" and i % 7 in (3, 4)
                else draw(numbers) for i in range(count)]
        sep = draw(separators)
        parts.append(cmd + sep.join(args))
    return draw(separators).join(parts)


@st.composite
def transforms(draw) -> str:
    """Transform lists: known and unknown functions with any number of arguments, unbalanced parentheses."""
    out = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["matrix", "translate", "scale", "rotate", "skewX", "skewY", "perspective",
                                     "translateX", "rotate3d", ""]))
        args = draw(st.lists(numbers, max_size=7))
        close = draw(st.sampled_from([")", ")", ")", "", "))"]))
        out.append(f"{name}({draw(separators).join(args)}{close}")
    return draw(st.sampled_from([" ", ",", ""])).join(out)


@st.composite
def colours(draw) -> str:
    """Colours: hex of any length and digit, functional notations with any numbers, names, references."""
    kind = draw(st.sampled_from([0, 1, 2, 2, 2, 3, 4, 5]))
    if kind == 0:
        return "#" + draw(st.text(alphabet="0123456789abcdefABCDEFgxyz", max_size=9))
    if kind == 1:
        fn = draw(st.sampled_from(["rgb", "rgba", "hsl", "hsla", "hwb", "lab", "color", "RGB"]))
        args = draw(st.lists(numbers, max_size=5))
        close = draw(st.sampled_from([")", ")", ""]))
        return f"{fn}({draw(st.sampled_from([',', ' ', ', ', ' / '])).join(args)}{close}"
    if kind == 2:
        return draw(st.sampled_from(["red", "none", "transparent", "currentColor", "inherit", "initial", "unset",
                                     "context-fill", "context-stroke", "RED", "reds", "", "black", "#fff"]))
    if kind == 3:
        ref = draw(st.sampled_from(["#g", "#r", "#p", "#missing", "#", "g", "'#g'", "#c"]))
        fallback = draw(st.sampled_from(["", " red", " none", " nan", " url(#g)"]))
        return f"url({ref}){fallback}"
    if kind == 4:
        return draw(text)
    return draw(numbers)


def _any_value():
    return st.one_of(numbers, colours(), transforms(), text,
                     st.lists(numbers, max_size=6).map(" ".join))


#: Presentation attributes and geometry, with the values each kind of attribute expects and any other.
_TYPED = {
    "fill": colours, "stroke": colours, "stop-color": colours, "color": colours, "flood-color": colours,
    "transform": transforms, "gradientTransform": transforms, "patternTransform": transforms, "d": path_data,
}
_ATTRS = ["fill", "stroke", "stroke-width", "opacity", "fill-opacity", "stroke-opacity", "stroke-dasharray",
          "stroke-dashoffset", "stroke-linejoin", "stroke-linecap", "stroke-miterlimit", "fill-rule", "clip-rule",
          "transform", "display", "visibility", "clip-path", "mask", "filter", "marker-start", "marker-mid",
          "marker-end", "x", "y", "width", "height", "r", "rx", "ry", "cx", "cy", "fx", "fy", "fr", "x1", "y1",
          "x2", "y2", "points", "d", "pathLength", "font-size", "font-family", "mix-blend-mode", "isolation",
          "paint-order", "transform-origin", "overflow", "preserveAspectRatio", "viewBox", "offset", "stop-color",
          "stop-opacity", "gradientUnits", "spreadMethod", "href", "xlink:href", "id", "class", "stdDeviation",
          "color", "vector-effect", "dx", "dy", "letter-spacing", "mask-type", "patternUnits", "refX", "refY",
          "markerWidth", "orient"]


@st.composite
def attribute_soup(draw, names=tuple(_ATTRS), taken: str = "") -> str:
    """Up to 6 attributes of any name (but those in ``taken``, already written) with any value,
    plus maybe a ``style`` of CSS declarations."""
    attrs = {}
    used = set(re.findall(r"(?:^|\s)([\w:-]+)=", taken))
    free = [n for n in names if n not in used]
    for name in draw(st.lists(st.sampled_from(free), max_size=6, unique=True)):
        value = draw(_TYPED[name]() if name in _TYPED and draw(st.booleans()) else _any_value())
        attrs[name] = value
    if draw(st.booleans()):
        decls = []
        for name in draw(st.lists(st.sampled_from(names), max_size=4)):
            value = draw(_TYPED[name]() if name in _TYPED else _any_value())
            decls.append(f"{name}:{value}{draw(st.sampled_from(['', ' !important']))}")
        attrs["style"] = draw(st.sampled_from([";", "; ", ""])).join(decls)
    return " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items())


_SHAPES = {
    "path": lambda d: f'd={quoteattr(d(path_data()))}',
    "rect": lambda d: " ".join(f"{a}={quoteattr(d(numbers))}" for a in ("x", "y", "width", "height", "rx")),
    "circle": lambda d: " ".join(f"{a}={quoteattr(d(numbers))}" for a in ("cx", "cy", "r")),
    "ellipse": lambda d: " ".join(f"{a}={quoteattr(d(numbers))}" for a in ("cx", "cy", "rx", "ry")),
    "line": lambda d: " ".join(f"{a}={quoteattr(d(numbers))}" for a in ("x1", "y1", "x2", "y2")),
    "polyline": lambda d: f'points={quoteattr(" ".join(d(st.lists(numbers, max_size=9))))}',
    "polygon": lambda d: f'points={quoteattr(d(separators).join(d(st.lists(numbers, max_size=9))))}',
}


@st.composite
def element(draw, depth: int = 0) -> str:
    """A shape, or a container / definition holding more elements (nesting at most 3 deep)."""
    kinds = list(_SHAPES) + ["text", "use", "image"] + (["g", "svg", "a", "switch", "symbol"] if depth < 3 else [])
    kind = draw(st.sampled_from(kinds))
    if kind in _SHAPES:
        geometry = _SHAPES[kind](draw)
        return f"<{kind} {geometry} {draw(attribute_soup(taken=geometry))}/>"
    if kind == "text":
        where = f"x={quoteattr(draw(numbers))} y={quoteattr(draw(numbers))}"
        return f"<text {where} {draw(attribute_soup(taken=where))}>{escape(draw(text))}</text>"
    if kind == "use":
        ref = draw(st.sampled_from(["#s", "#r", "#g", "#self", "#missing", ""]))
        return f'<use href="{ref}" {draw(attribute_soup(taken="href= xlink:href="))}/>'
    if kind == "image":
        uri = draw(st.sampled_from(["data:image/png;base64,iVBORw0KGgo=", "data:image/svg+xml,<svg/>", "x.png",
                                    "data:,", "data:image/png;base64,!!!"]))
        return f"<image href={quoteattr(uri)} {draw(attribute_soup(taken='href= xlink:href='))}/>"
    children = "".join(draw(st.lists(element(depth + 1), max_size=3)))
    return f"<{kind} {draw(attribute_soup())}>{children}</{kind}>"


@st.composite
def definitions(draw) -> str:
    """Paint servers, clips, masks, markers and filters the elements may reference."""
    def stops():
        soup = attribute_soup(("stop-color", "stop-opacity", "offset", "style", "color"), taken="offset=")
        count = draw(st.integers(0, 3))
        return "".join(f"<stop offset={quoteattr(draw(numbers))} {draw(soup)}/>" for _ in range(count))

    parts = [f'<linearGradient id="g" {draw(attribute_soup(taken="id="))}>{stops()}</linearGradient>',
             f'<radialGradient id="r" {draw(attribute_soup(taken="id="))}>{stops()}</radialGradient>']
    if draw(st.booleans()):
        parts.append(f'<pattern id="p" {draw(attribute_soup(taken="id="))}>{draw(element(2))}</pattern>')
    if draw(st.booleans()):
        parts.append(f'<clipPath id="c" {draw(attribute_soup(taken="id="))}>{draw(element(2))}</clipPath>')
    if draw(st.booleans()):
        parts.append(f'<mask id="m" {draw(attribute_soup(taken="id="))}>{draw(element(2))}</mask>')
    if draw(st.booleans()):
        parts.append(f'<marker id="k" {draw(attribute_soup(taken="id="))}>{draw(element(2))}</marker>')
    if draw(st.booleans()):
        primitive = draw(st.sampled_from(["feGaussianBlur", "feOffset", "feFlood", "feColorMatrix", "feMorphology",
                                          "feComponentTransfer", "feBlend", "feComposite", "feTurbulence"]))
        inputs = attribute_soup(("stdDeviation", "dx", "dy", "in", "in2", "result", "values", "type", "radius",
                                 "operator", "mode", "baseFrequency", "numOctaves", "x", "width", "flood-color"))
        parts.append(f'<filter id="f" {draw(attribute_soup(taken="id="))}><{primitive} {draw(inputs)}/></filter>')
    parts.append(f'<symbol id="s" {draw(attribute_soup(taken="id="))}>{draw(element(2))}</symbol>')
    return f"<defs>{''.join(parts)}</defs>"


@st.composite
def documents(draw) -> str:
    """A whole hostile SVG: root size and viewBox from the numbers, definitions and 1-4 elements."""
    root = {"viewBox": draw(st.one_of(st.sampled_from(["0 0 10 10", "0 0 1e-300 1e-300", "0 0 1e300 1e300",
                                                         "0 0 0 0", "nan 0 10 10", "", "0 0 -10 10"]),
                                        st.lists(numbers, min_size=0, max_size=5).map(" ".join))),
            "width": draw(numbers), "height": draw(numbers)}
    if draw(st.booleans()):
        root["preserveAspectRatio"] = draw(st.sampled_from(["none", "xMidYMid slice", "xMaxYMax meet", "bogus"]))
    attrs = " ".join(f"{k}={quoteattr(v)}" for k, v in root.items() if draw(st.booleans()) or k == "viewBox")
    body = "".join(draw(st.lists(element(), min_size=1, max_size=4)))
    defs = draw(definitions()) if draw(st.booleans()) else ""
    document = f"<svg {NS} {attrs}>{defs}{body}</svg>"
    broken = draw(st.sampled_from(["", "", "", "", "", "", "", "", "truncated", "control", "entity"]))
    if broken == "truncated":  # cut anywhere
        document = document[:draw(st.integers(0, len(document) - 1))]
    elif broken == "control":  # a character XML 1.0 forbids
        at = draw(st.integers(0, len(document)))
        document = document[:at] + draw(st.sampled_from(["\x00", "\x01", "\x1b", "\ufffe"])) + document[at:]
    elif broken == "entity":  # an entity declaration (refused: no expansion, no external entities)
        document = '<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">]>' + document.replace("<svg ", "<svg data-x='&a;' ", 1)
    return document


# ------------------------------------------------------------------------------------ library
@settings(max_examples=int(os.environ.get("PDS_HYPOTHESIS_EXAMPLES", "150")), **COMMON)
@given(documents())
def test_library_renders_a_finite_image_or_raises_svg_error(document):
    import torch

    from pds.svg import SVGError, SVGScene

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unsupported features warn by design
        try:
            scene = SVGScene.load(document)
            with torch.no_grad():
                image = scene.render(SIZE)
        except SVGError as e:
            message = str(e)
            assert message and "\n" not in message.strip(), message  # one line meant for users
            return
    w, h = scene.canvas_size(SIZE)
    assert image.shape == (3, h, w) and max(h, w) == SIZE and min(h, w) >= 1, (image.shape, w, h)
    assert bool(torch.isfinite(image).all()), "a NaN image would be written as black pixels"
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


# ------------------------------------------------------------------------------------ CLI
#: 4 GiB of address space: torch's import alone reserves about 3 (under 3 GiB it fails, which
#: tests/test_interrupts.py checks is one line too).
MEMORY_LIMIT = 4 << 30
#: Documents through the CLI (each is a ``pds-svg render`` in the memory-limited child).
CLI_EXAMPLES = int(os.environ.get("PDS_HYPOTHESIS_CLI_EXAMPLES", "15"))


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("PDS_DEBUG", None)
    return env


def check_cli_run(code, stderr: str, source: Path, before: bytes, out: Path) -> None:
    """The CLI contract for one ``pds-svg render SOURCE -o OUT`` (``code``: its exit status)."""
    document = before.decode("utf-8", "replace")
    assert code in (0, 2), (code, stderr[-3000:], document)
    assert "Traceback" not in stderr, (stderr[-3000:], document)
    assert source.read_bytes() == before, "the input was changed"
    if code == 0:
        assert out.is_file() and out.stat().st_size > 0, (stderr, document)
    else:
        errors = [line for line in stderr.splitlines() if line.strip() and "warning:" not in line]
        assert len(errors) == 1 and errors[0].startswith("pds-svg: error: "), (stderr, document)
        assert not out.exists(), "a failed render wrote output"
    leftovers = [p.name for p in out.parent.iterdir() if p.name not in (source.name, out.name, "err.txt")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def render_in_process(folder: Path, document: str):
    """``pds-svg render`` through its entry point (:func:`pds.cli.svg.main`, exit status and all)
    in this process, with everything written to file descriptor 2 captured: ``(code, stderr,
    source, input bytes, output)``."""
    from pds.cli.svg import main

    folder.mkdir(parents=True)
    source, out, err = folder / "in.svg", folder / "out.png", folder / "err.txt"
    source.write_text(document, encoding="utf-8")
    before = source.read_bytes()
    fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    saved = os.dup(2)
    sys.stderr.flush()
    os.dup2(fd, 2)
    code = None
    try:
        main(["render", str(source), "-o", str(out), "--size", str(SIZE)])
    except SystemExit as e:
        code = e.code
    except BaseException:  # escaped the boundary: the contract is broken, show how
        import traceback

        traceback.print_exc()
        code = "escaped"
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(fd)
        os.close(saved)
    return code, err.read_text(encoding="utf-8", errors="replace"), source, before, out


#: The child process: hypothesis drives ``pds-svg render`` there, under the memory limit, and
#: records what it ran for the parent to replay through the console script.
_CHILD = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from hypothesis import given, settings
import test_hostile_properties as t

base, seen = Path({base!r}), []

@settings(max_examples={examples}, **t.COMMON)
@given(t.documents())
def check(document):
    run = t.render_in_process(base / str(len(seen)), document)
    seen.append({{"document": document, "code": run[0]}})
    t.check_cli_run(*run)

check()
Path({record!r}).write_text(json.dumps(seen))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS")
def test_cli_render_exits_0_or_2_in_one_line_under_a_memory_limit(tmp_path):
    """Generated documents through ``pds-svg render`` in a memory-limited process: exit 0 with
    the PNG, or 2 with one line and nothing written; never a traceback; the input unchanged. Then
    the most involved documents once more through the console script, each in its own process:
    same status, same contract."""
    record = tmp_path / "seen.json"
    child = _CHILD.format(tests=str(Path(__file__).parent), base=str(tmp_path / "runs"), examples=CLI_EXAMPLES,
                          record=str(record))
    p = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=900, env=_env(),
                       preexec_fn=_limit_memory)
    assert p.returncode == 0, (p.stdout[-4000:], p.stderr[-6000:])
    seen = json.loads(record.read_text())
    assert len(seen) >= CLI_EXAMPLES and {0, 2} <= {run["code"] for run in seen}, [r["code"] for r in seen]

    script = BIN / "pds-svg"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pds.cli.svg"]
    for i, run in enumerate(sorted(seen, key=lambda r: -len(r["document"]))[:2]):
        folder = tmp_path / "console" / str(i)
        folder.mkdir(parents=True)
        source, out = folder / "in.svg", folder / "out.png"
        source.write_text(run["document"], encoding="utf-8")
        before = source.read_bytes()
        done = subprocess.run([*command, "render", str(source), "-o", str(out), "--size", str(SIZE)],
                              capture_output=True, text=True, timeout=300, env=_env(), preexec_fn=_limit_memory)
        check_cli_run(done.returncode, done.stderr, source, before, out)
        assert "Traceback" not in done.stdout and done.returncode == run["code"], (done.stderr, run)
