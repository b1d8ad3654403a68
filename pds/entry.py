"""Console entry points that answer Ctrl-C from their first line on.

``pds-svg``, ``pds-sample`` and ``pds-dreambooth`` (``[project.scripts]``) start here, not in
:mod:`pds.cli` (``python -m pds.cli.svg`` and ``python -m pds.nerf.ns_train`` call :func:`guard`
first too): their modules import click, torch and the model libraries, which takes seconds,
and Python's own Ctrl-C handling would print a ``KeyboardInterrupt`` traceback from the middle of
those imports, before the error boundary (:func:`pds.cli.run`) exists. This module imports
nothing but the standard library's ``os``, ``sys`` and ``_signal`` (the C half of ``signal``), and its functions install a
SIGINT handler (:func:`guard`) before importing anything else:

* before the boundary runs (start-up) Ctrl-C prints ``PROG: interrupted`` and exits with
  status 130 at once (nothing has been written yet);
* while the command runs, the guard holds until the command begins what must end cleanly
  (:func:`release`: ``pds-svg edit``'s optimisation, DreamBooth's training, and every atomic
  write of an output, :func:`pds.util.files.atomic_write_with`); from then on Ctrl-C is a
  ``KeyboardInterrupt`` again, which the commands turn into their own handling (``pds-svg edit``
  writes the current result) and the boundary into exit status 130. Before that (loading the
  model libraries and the prior, sampling) it exits at once: a ``KeyboardInterrupt`` raised
  inside a library's import can be swallowed by its ``except`` clauses, and one raised inside a
  C++ extension aborts the process;
* once the command has returned (:func:`rearm`: output flushed, interpreter shutting down)
  Ctrl-C exits with status 130 at once and silently (the command has already reported).

A failure to import the command (a broken installation; ``MemoryError`` from ``import torch``
under a tight ``ulimit -v``) is one line too, exit status 1, with the traceback in a file.

Not covered: the first few tens of milliseconds, while the interpreter itself starts (its
``site`` module and the ``.pth`` files of the installed packages) and until ``import pds``
begins: the console script's own first lines (``import re``) or runpy locating a ``-m``
module; there Python prints its own traceback, or a SIGINT that arrives before Python installed
its handler kills the process (which a shell also reports as status 130).
"""

from __future__ import annotations

import _signal as signal  # the C module ``signal`` wraps: importing ``signal`` itself first builds its enums,
import os                  # milliseconds in which a Ctrl-C would still be Python's traceback
import sys

__all__ = ["CONSOLE_SCRIPTS", "MODULE_COMMANDS", "dreambooth", "guard", "guard_module", "guarded", "rearm", "release", "sample", "svg"]

#: Exit status after Ctrl-C (the shell's 128 + SIGINT); :data:`pds.cli.EXIT_INTERRUPTED` too.
EXIT_INTERRUPTED = 130

_state = {"prog": "pds", "quiet": False}


def _interrupted(signum, frame) -> None:  # noqa: ARG001 - the signal handler signature
    """Exit 130 now, with one line unless the command has already reported (see the module doc)."""
    if not _state["quiet"]:
        try:
            os.write(2, f"{_state['prog']}: interrupted\n".encode("utf-8", "replace"))
        except OSError:  # stderr closed: the status still says it
            pass
    os._exit(EXIT_INTERRUPTED)


def _install(handler) -> bool:
    """``signal.signal(SIGINT, handler)``; ``False`` outside the main thread, where it cannot be."""
    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:
        return False
    return True


def guard(prog: str) -> bool:
    """Make Ctrl-C exit with status 130 and one line ``PROG: interrupted`` from now on.

    Only replaces Python's default handler, from the main thread (an embedding program's own
    handler, or SIGINT ignored by ``nohup``, stay as they are). Returns whether it did.
    """
    _state.update(prog=prog, quiet=False)
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return guarded()
    return _install(_interrupted)


def guarded() -> bool:
    """Whether :func:`guard`'s handler is the SIGINT handler now."""
    return signal.getsignal(signal.SIGINT) is _interrupted


def release() -> bool:
    """Hand Ctrl-C back to Python (``KeyboardInterrupt``) for the command to handle; returns
    whether :func:`guard`'s handler was installed (the boundary then calls :func:`rearm`)."""
    return guarded() and _install(signal.default_int_handler)


def rearm() -> None:
    """After the command: flush what it printed, then let Ctrl-C exit 130 silently and at once
    (instead of a traceback from the interpreter's shutdown)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError, RuntimeError):  # closed or broken pipe: nothing to keep
            pass
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        _install(_interrupted)
    if guarded():
        _state["quiet"] = True


def _launch(prog: str, module: str) -> None:
    guard(prog)
    import importlib

    try:
        main = importlib.import_module(module).main
    except MemoryError:  # e.g. torch's import under a tight address-space limit (ulimit -v)
        _fail(prog, "error: out of memory while starting (importing torch); run it with more memory")
    except Exception as e:  # noqa: BLE001 - a broken installation: one line, not an import traceback
        trace = _write_trace(prog)
        _fail(prog, f"internal error: cannot start: {type(e).__name__}: {' '.join(str(e).split())[:300]} "
                    f"(is the installation complete?{' full trace in ' + trace if trace else ''})")
    main()  # exits through the boundary (pds.cli.main_of)


def _fail(prog: str, message: str) -> None:
    """One line on stderr, exit status 1 (a failure that is not the user's input)."""
    sys.stderr.write(f"{prog}: {message}\n")
    sys.stderr.flush()
    sys.exit(1)


def _write_trace(prog: str):
    """The current exception's traceback in a fresh temporary file; its path, or ``None``."""
    try:
        import tempfile
        import traceback

        fd, path = tempfile.mkstemp(prefix=f"{prog}-trace-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            traceback.print_exc(file=f)
        return path
    except Exception:  # noqa: BLE001 - best effort: the line must still come out
        return None


def svg() -> None:
    """``pds-svg`` (:mod:`pds.cli.svg`)."""
    _launch("pds-svg", "pds.cli.svg")


def sample() -> None:
    """``pds-sample`` (:mod:`pds.cli.sample`)."""
    _launch("pds-sample", "pds.cli.sample")


def dreambooth() -> None:
    """``pds-dreambooth`` (:mod:`pds.cli.dreambooth`)."""
    _launch("pds-dreambooth", "pds.cli.dreambooth")


def _guard_console_script() -> None:
    """Guard at import when this process is one of our console scripts.

    pip's generated script imports this module and only then runs a line of its own
    (``sys.argv[0] = re.sub(...)``) before calling the entry function; a Ctrl-C landing on that
    line would print a traceback, so the handler is installed as soon as the script imports us,
    which ``import pds`` does first of all. Any other importer (a library user, the tests) keeps
    Python's default handler.
    """
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    for suffix in ("-script.pyw", "-script.py", ".exe"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name in CONSOLE_SCRIPTS:
        guard(name)
    elif name == "-m":  # ``python -m pds.X`` while runpy imports the package (see guard_module)
        guard_module()


#: Our console scripts (``[project.scripts]``): each guards from ``import pds`` on.
CONSOLE_SCRIPTS = ("pds-svg", "pds-sample", "pds-dreambooth")
#: ``python -m`` modules that are commands, and their names in messages.
MODULE_COMMANDS = {
    "pds.cli.svg": "pds-svg", "pds.cli.sample": "pds-sample", "pds.cli.dreambooth": "pds-dreambooth",
    "pds.dreambooth": "python -m pds.dreambooth", "pds.nerf.ns_train": "ns-train",
}


def guard_module() -> bool:
    """Guard when this process is ``python -m`` one of :data:`MODULE_COMMANDS`.

    ``import pds`` calls this while ``sys.argv[0]`` is still ``"-m"`` (runpy sets the module's
    path only once the package is imported), so Ctrl-C is answered from the package's first line
    on, before the module's own imports (``typing`` and the rest) run. Returns whether it guarded.
    """
    argv = getattr(sys, "orig_argv", [])
    module = next((argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-m"), None)
    prog = MODULE_COMMANDS.get(module)
    return guard(prog) if prog else False


_guard_console_script()
