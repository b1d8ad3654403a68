"""The command-line programs (``pds-svg``, ``pds-sample``, ``pds-dreambooth``) and what they share:
ONE error boundary, device parsing, and quieting the libraries' own chatter.

The boundary (:func:`run`) is the promise of every CLI here: a user error prints one line on
stderr naming the problem and the fix and exits with status 2; Ctrl-C exits 130; a failure of
our own code prints one line too (exit 1) naming the file its traceback was written to, never a
traceback on the terminal (``PDS_DEBUG=1`` prints it there as well).
"""

from __future__ import annotations

import math
import os
import sys
import traceback
from typing import Callable, Optional, Sequence

import click

#: Exit status for every user error (bad input, bad option, unreadable model...).
EXIT_USAGE = 2
#: Exit status for a failure that is not the user's (a bug, an exhausted machine).
EXIT_INTERNAL = 1
#: Exit status after Ctrl-C.
EXIT_INTERRUPTED = 130


class CLIError(click.ClickException):
    """A user error: printed as one line, exit status 2."""

    exit_code = EXIT_USAGE


class FiniteFloat(click.FloatRange):
    """A :class:`click.FloatRange` that also refuses ``nan`` and ``inf`` (``float()`` accepts
    both, and neither is a meaningful learning rate, guidance scale or frame rate)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        """Parse ``value``, refuse non-finite numbers, then check the range."""
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


#: Seeds that ``torch.Generator.manual_seed`` accepts on every platform.
SEED = click.IntRange(0, 2**63 - 1)


def one_line(message) -> str:
    """``message`` with all whitespace runs (newlines included) collapsed to single spaces."""
    return " ".join(str(message).split())


def user_error_types() -> tuple[type, ...]:
    """Exception types that mean bad input anywhere in the package (imported lazily, so that
    ``--help`` stays fast; a part that cannot be imported contributes none, so the boundary
    still reports)."""
    import importlib

    types: list[type] = []
    for module, names in (("priors", ("PriorError",)), ("svg.parse", ("SVGError",)),
                          ("util.files", ("InputError", "OutputError")), ("nerf", ("PDSNerfError",)),
                          ("dreambooth.train", ("DreamBoothError",))):
        try:
            found = importlib.import_module(f"..{module}", __name__)
        except ImportError:  # pragma: no cover - an optional part missing or broken
            continue
        types += [getattr(found, name) for name in names if isinstance(getattr(found, name, None), type)]
    return tuple(types)


#: How many :func:`run` calls are active (see :func:`inside_boundary`).
_active = [0]


def inside_boundary() -> bool:
    """Whether a :func:`run` boundary is active: code that must also work without one (the
    trainer of ``ns-train pds``, called by nerfstudio's own ``ns-train`` too) then raises its user
    errors for the boundary to report instead of reporting them itself."""
    return _active[0] > 0


def run(prog: str, invoke: Callable[[], Optional[int]], interrupted: str = "interrupted",
        release: bool = True) -> int:
    """Run ``invoke()`` (a click command in ``standalone_mode=False``) behind the error boundary.

    Returns the exit status: ``invoke``'s integer result (0 when it returns ``None``), 2 for
    user errors, 130 for Ctrl-C (``interrupted`` is the message), 1 for anything else.

    In a console entry point (:mod:`pds.entry`) Ctrl-C exits with status 130 at once before and
    after ``invoke``; inside it, it is a ``KeyboardInterrupt`` for the command to handle, from the
    start (``release=True``) or, with ``release=False``, from the moment the command calls
    :func:`pds.entry.release` (our CLIs: before their long work that must end cleanly, and in
    every atomic write).
    """
    from .. import entry

    _active[0] += 1
    released = False
    try:
        released = entry.release() if release else entry.guarded()
        return _outcome(prog, invoke, interrupted)
    except KeyboardInterrupt:  # a second Ctrl-C while the first one was being reported
        return EXIT_INTERRUPTED
    finally:
        _active[0] -= 1
        if released:
            entry.rearm()


def _outcome(prog: str, invoke: Callable[[], Optional[int]], interrupted: str) -> int:
    def say(message: str) -> None:
        click.echo(f"{prog}: {one_line(message)}", err=True)

    try:
        rv = invoke()
        return rv if isinstance(rv, int) else 0
    except (click.exceptions.Abort, KeyboardInterrupt):
        say(interrupted)
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except click.ClickException as e:
        say(f"error: {e.format_message()}")
        return EXIT_USAGE
    except MemoryError:
        say("error: out of memory; use a smaller --size, fewer elements or a machine with more memory")
        return EXIT_INTERNAL
    except RecursionError:
        say("error: the input is nested too deeply to process; simplify it")
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - the boundary: everything becomes one line
        if _is_allocation_failure(e):
            say("error: out of memory; use a smaller --size, fewer elements or a machine with more memory")
            return EXIT_INTERNAL
        distiller = sys.modules.get(f"{__package__.rpartition('.')[0]}.distiller")  # raised only once imported
        if distiller is not None and isinstance(e, distiller.NonFiniteError):
            say(f"error: {e}")
            return EXIT_INTERNAL
        if isinstance(e, user_error_types()):
            say(f"error: {e}")
            return EXIT_USAGE
        if os.environ.get("PDS_DEBUG"):
            traceback.print_exc()
        where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
        at = f" at {os.path.basename(where.filename)}:{where.lineno}" if where else ""
        trace = _write_trace(prog)
        say(f"internal error: {type(e).__name__}: {str(e)[:300] or 'no message'}{at} "
            f"(please report it{'; full trace in ' + trace if trace else ''})")
        return EXIT_INTERNAL


def _write_trace(prog: str) -> Optional[str]:
    """Write the current exception's traceback to a fresh file in the temporary folder; its
    path, or ``None`` when even that fails (the one-line message must still come out)."""
    import tempfile

    try:
        name = "".join(c if c.isalnum() or c in "-_." else "-" for c in prog)  # "ns-train pds" -> ns-train-pds
        fd, path = tempfile.mkstemp(prefix=f"{name}-trace-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            traceback.print_exc(file=f)
        return path
    except Exception:  # noqa: BLE001 - best effort
        return None


def _is_allocation_failure(e: BaseException) -> bool:
    """Whether ``e`` is torch's way of saying an allocation failed (a ``RuntimeError``, or
    ``torch.OutOfMemoryError`` on a GPU), which is not a ``MemoryError``."""
    if type(e).__name__ == "OutOfMemoryError":
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())


def main_of(prog: str, command: click.Command, argv: Optional[Sequence[str]], interrupted: str = "interrupted") -> None:
    """Console entry point body: run ``command`` on ``argv`` (default ``sys.argv[1:]``) behind
    :func:`run` (``release=False``: Ctrl-C exits at once until the command releases it) and exit
    with its status."""
    args = list(argv) if argv is not None else None
    sys.exit(run(prog, lambda: command.main(args=args, prog_name=prog, standalone_mode=False), interrupted,
                 release=False))


def parse_device(name: Optional[str]):
    """``"auto"``/``None`` -> :func:`pds.priors.default_device`; else a ``torch.device`` that exists here.

    Raises:
        CLIError: an unknown device name, or CUDA/MPS asked for where there is none.
    """
    import torch

    if name is None or name == "auto":
        from ..priors import default_device

        return default_device()
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise CLIError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:1 or mps") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise CLIError(f"device {name!r} cannot run the prior; use auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CLIError(f"--device {name} was asked for but no CUDA GPU is available; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CLIError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CLIError(f"--device {name} was asked for but MPS is not available; use --device cpu")
    return dev


def quiet_libraries() -> None:
    """Silence diffusers'/transformers' loading bars and advice (``accelerate`` not installed...):
    our own progress reports the work, and a one-line error must stay one line."""
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # deprecation notices of the hub client and the model libraries are for their callers (us)
    for module in ("huggingface_hub", "diffusers", "transformers"):
        warnings.filterwarnings("ignore", category=UserWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
    for module in ("transformers.utils.logging", "diffusers.utils.logging", "huggingface_hub.utils.logging"):
        try:
            mod = __import__(module, fromlist=["set_verbosity_error"])
        except ImportError:
            continue
        for name in ("disable_progress_bar", "set_verbosity_error"):  # the hub client has no bar switch here
            if hasattr(mod, name):
                getattr(mod, name)()
