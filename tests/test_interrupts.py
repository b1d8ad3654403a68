"""Ctrl-C at any time (issue 13): every command exits with status 130, at most one stderr line
and never a traceback, from its first line on: during the seconds of ``import torch`` (and
nerfstudio) before the error boundary exists, while the command runs, and after it.

The console scripts start in :mod:`pds.entry`, which installs the SIGINT handling before
importing anything heavy (``import pds`` itself is light: its names load on first use). The
processes get SIGINT at fixed delays after the interpreter has started; the interpreter's own
start-up (``site`` and the ``.pth`` files of the installed packages, before any line of ours) is
measured first and excluded, as no package can answer there (see :mod:`pds.entry`): a run whose
signal still landed there (Python's "init_import_site" failure, or for ``python -m`` a traceback
of runpy's frozen frames alone, on a machine busier than when it was measured) is repeated 50 ms
later. ``python -m pds.X`` is guarded from the package's first line (:func:`pds.entry.guard_module`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

BIN = Path(sys.executable).parent
NS = 'xmlns="http://www.w3.org/2000/svg"'
RECT = f'<svg {NS} viewBox="0 0 10 10"><rect x="2" y="2" width="6" height="6" fill="red"/></svg>'
#: Seconds after the interpreter's own start-up: the first lines of the console script (``import
#: pds``, pds.entry), then inside ``import torch`` / click / nerfstudio.
DELAYS = (0.0, 0.3, 1.0)


def _env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("PDS_DEBUG", None)
    return env


@pytest.fixture(scope="module")
def interpreter_start_up() -> float:
    """The longest of three runs of ``python -c pass`` (plus half of it, for a loaded machine): the
    part of a process's life before the first line of any console script."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=_env())
        times.append(time.perf_counter() - start)
    return 1.5 * max(times)


def _sigint_default() -> None:
    """In the child: SIGINT's default action, even when this test runs in a background job (whose
    SIGINT is ignored, and an ignored SIGINT is inherited and respected by pds.entry)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _commands(tmp: Path) -> dict:
    """Each program with arguments that keep it busy for far longer than the delays."""
    rect = tmp / "in.svg"
    rect.write_text(RECT)
    instances = tmp / "instances"
    instances.mkdir()
    from PIL import Image

    for i in range(2):
        Image.new("RGB", (32, 32), (200, 30 * i, 30)).save(instances / f"{i}.png")
    commands = {
        "pds-svg": [str(BIN / "pds-svg"), "edit", str(rect), "-o", str(tmp / "out.svg"), "--src", "a red square",
                    "--tgt", "a blue square", "--steps", "100000", "--device", "cpu"],
        "pds-sample": [str(BIN / "pds-sample"), "-p", "a red circle", "--steps", "1000", "-n", "64",
                       "-o", str(tmp / "grid.png"), "--device", "cpu"],
        "pds-dreambooth": [str(BIN / "pds-dreambooth"), "--instance_prompt", "a photo of a sks circle",
                           "--instance_dir", str(instances), "--save_dir", str(tmp / "tuned"),
                           "--no-with_prior_preservation", "--max_train_steps", "100000", "--device", "cpu"],
        "ns-train": [sys.executable, "-m", "pds.nerf.ns_train", "nerfacto", "-h"],
    }
    commands["python -m pds.dreambooth"] = [sys.executable, "-m", "pds.dreambooth", *commands["pds-dreambooth"][1:]]
    return commands


def _before_our_first_line(err: str) -> bool:
    """Whether a KeyboardInterrupt traceback landed before this package's handler existed: Python's
    own start-up (``init_import_site``), runpy locating a ``-m`` module, pip's console script
    before its ``import pds`` began (frozen frames and the script's own file only), or
    ``pds/__init__.py`` while its first statement loads :mod:`pds.entry`."""
    if "init_import_site" in err:
        return True
    frames = [line.strip() for line in err.splitlines() if line.strip().startswith("File ")]
    ours = [f for f in frames if "<frozen " not in f and not f.startswith(f'File "{BIN}{os.sep}')]
    # ``import pds`` guards in its first statement (importing pds.entry): a traceback whose only
    # frame of ours is that file was raised before the handler existed (after it, Ctrl-C exits
    # silently), i.e. while Python loaded pds.entry itself
    package_init = str(Path(__import__("pds").__file__))
    return "KeyboardInterrupt" in err and bool(frames) and all(f'File "{package_init}"' in f for f in ours)


def _interrupt(command, delay: float, tmp: Path):
    before = sorted(p.name for p in tmp.iterdir())
    p = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp,
                         preexec_fn=_sigint_default)
    time.sleep(delay)
    alive = p.poll() is None
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert alive, f"finished before the signal (status {p.returncode}): {err[-2000:]}"
    assert sorted(p.name for p in tmp.iterdir()) == before, "an interrupted start-up wrote something"
    return p.returncode, out, err


@pytest.mark.parametrize("program", ["pds-svg", "pds-sample", "pds-dreambooth", "python -m pds.dreambooth",
                                     "ns-train"])
def test_ctrl_c_during_start_up_exits_130_in_one_line(program, tmp_path, interpreter_start_up):
    if program == "ns-train":
        pytest.importorskip("nerfstudio")
    elif program.startswith("pds-") and not (BIN / program).exists():
        pytest.skip(f"no {program} console script beside this interpreter (pip install -e .)")
    command = _commands(tmp_path)[program]
    start = interpreter_start_up
    for delay in DELAYS:
        code, out, err = _interrupt(command, start + delay, tmp_path)
        for _ in range(40):  # the interpreter was slower to start this time (a loaded machine): later
            if not _before_our_first_line(err):
                break
            start += 0.05
            code, out, err = _interrupt(command, start + delay, tmp_path)
        # -SIGINT: killed before Python installed any handler (a shell reports that as 130 too)
        assert code in (130, -signal.SIGINT), (delay, code, err[-3000:])
        assert "Traceback" not in err + out, (delay, err[-3000:])
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) <= 1, (delay, err)
        assert all(line.startswith(f"{program}") and "interrupted" in line for line in lines), (delay, err)


def test_ctrl_c_while_the_edit_runs_keeps_the_commands_own_handling(tmp_path):
    """Once the command runs, Ctrl-C is the command's again: ``pds-svg edit`` writes the current
    result and says so (status 130), as without the start-up handler."""
    script = BIN / "pds-svg"
    if not script.exists():
        pytest.skip("no pds-svg console script beside this interpreter (pip install -e .)")
    command = _commands(tmp_path)["pds-svg"]
    p = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=tmp_path,
                         preexec_fn=_sigint_default)
    err = b""
    while b"PDS:" not in err:  # the progress bar: the optimisation has started
        chunk = p.stderr.read1(4096)
        assert chunk, f"ended before the optimisation started: {err.decode(errors='replace')[-2000:]}"
        err += chunk
    p.send_signal(signal.SIGINT)
    out, rest = p.communicate(timeout=120)
    err = (err + rest).decode(errors="replace")
    assert p.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "wrote the current result" in err.splitlines()[-1], err[-3000:]
    assert (tmp_path / "out.svg").is_file() and (tmp_path / "out.png").is_file()


@pytest.mark.parametrize("failure", ["ImportError", "MemoryError"])
def test_a_command_that_cannot_start_is_one_line(failure, tmp_path):
    """A broken installation (the command's module does not import) or ``import torch`` running
    out of address space: one stderr line, exit status 1, the traceback in a file, not on stderr."""
    code = ("import sys, pds.entry\n"
            "class Refuse:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'pds.cli.svg':\n"
            f"            raise {failure}('simulated')\n"
            "sys.meta_path.insert(0, Refuse())\n"
            "pds.entry.svg()\n")
    p = subprocess.run([sys.executable, "-c", code, "render", "x.svg"], capture_output=True, text=True, env=_env(),
                       cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pds-svg: ") and "Traceback" not in p.stderr, p.stderr
    if failure == "MemoryError":
        assert "out of memory while starting" in lines[0]
    else:
        assert "internal error: cannot start: ImportError: simulated" in lines[0]
        trace = lines[0].split("full trace in ")[1].rstrip(")")
        assert "ImportError: simulated" in Path(trace).read_text()
        os.unlink(trace)


# ----------------------------------------------------------------------------------- in process
def test_import_pds_is_light_and_its_names_still_resolve():
    code = ("import sys, pds, pds.entry\n"
            "heavy = [m for m in ('torch', 'click', 'numpy', 'diffusers') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "from pds import Distiller, load_prior, PriorError\n"
            "assert pds.Distiller is Distiller and pds.load_prior is load_prior\n"
            "assert pds.priors.PriorError is PriorError\n"
            "assert set(pds.__all__) <= set(dir(pds)) and pds.__version__\n"
            "import pds.distiller; assert pds.NonFiniteError is pds.distiller.NonFiniteError\n"
            "try:\n    pds.no_such_name\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit('no error')\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=_env())


def test_the_boundary_hands_ctrl_c_to_the_command_and_takes_it_back():
    """Inside :func:`pds.cli.run` SIGINT is Python's ``KeyboardInterrupt`` (the command's to
    handle); before and after it, the entry handler (exit 130 at once)."""
    from pds import entry
    from pds.cli import EXIT_INTERRUPTED, run

    saved = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert entry.guard("pds-x") and entry.guarded()
        seen = []

        def command():
            seen.append(signal.getsignal(signal.SIGINT))
            raise KeyboardInterrupt

        assert run("pds-x", command) == EXIT_INTERRUPTED
        assert seen == [signal.default_int_handler] and entry.guarded()  # re-armed after the command
        # an application's own handler is left alone
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        assert not entry.guard("pds-x") and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert run("pds-x", lambda: 0) == 0 and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, saved)


def test_console_scripts_start_in_the_light_entry_module():
    tomllib = pytest.importorskip("tomllib")
    scripts = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"pds-svg": "pds.entry:svg", "pds-sample": "pds.entry:sample",
                       "pds-dreambooth": "pds.entry:dreambooth"}


def test_python_m_guards_from_the_package_s_first_line():
    """``import pds`` under ``python -m pds.nerf.ns_train`` (argv[0] still ``-m``) installs the
    handler before the module's own imports; ``python -m`` of anything else does not."""
    code = ("import signal, sys; sys.argv[0] = '-m'; sys.orig_argv = [sys.executable, '-m', {!r}]; "
            "import pds, pds.entry; print(signal.getsignal(signal.SIGINT) is pds.entry._interrupted, "
            "pds.entry._state['prog'])")
    for module, expected in (("pds.nerf.ns_train", "True ns-train"), ("pds.cli.svg", "True pds-svg"),
                             ("tools.prior.train", "False")):
        out = subprocess.run([sys.executable, "-c", code.format(module)], capture_output=True, text=True,
                             env=_env(), check=True, preexec_fn=_sigint_default).stdout.split()
        assert " ".join(out[: len(expected.split())]) == expected, (module, out)


def test_ctrl_c_while_sampling_exits_at_once_and_writes_nothing(tmp_path):
    """``pds-sample`` keeps the start-up guard until it writes: a Ctrl-C while the prior loads or
    samples exits 130 at once with one line (a ``KeyboardInterrupt`` raised inside the model
    libraries could be swallowed by their ``except`` clauses: a run kept sampling for minutes)."""
    script = BIN / "pds-sample"
    if not script.exists():
        pytest.skip("no pds-sample console script beside this interpreter (pip install -e .)")
    command = _commands(tmp_path)["pds-sample"]
    before = sorted(p.name for p in tmp_path.iterdir())
    p = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path,
                         preexec_fn=_sigint_default)
    time.sleep(8.0)  # past start-up: loading the prior or sampling 64 pictures x 1000 steps
    assert p.poll() is None, p.communicate()[1][-2000:]
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err[-3000:]
    assert [line for line in err.splitlines() if line.strip()] == ["pds-sample: interrupted"], err[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no grid, no temporary file
