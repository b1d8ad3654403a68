"""``python -m pds.nerf.ns_train METHOD ...``: ``ns-train``, able to build nerfacto offline.

nerfacto (and other nerfstudio models) construct torchmetrics' LPIPS metric, which downloads
AlexNet weights, so ``ns-train nerfacto`` fails on a machine without network access and without
those weights in the torch hub cache. This wrapper makes LPIPS lazy
(:class:`pds.nerf.compat.LazyLPIPS`: built on first use, NaN when unavailable) and then runs
nerfstudio's own ``ns-train`` with the same arguments::

    python -m pds.nerf.ns_train nerfacto --data examples/nerf_ball/data \\
        --pipeline.model.use_appearance_embedding False

With ``--machine.device-type cpu`` the wrapper also points nerfstudio's ``splatfacto`` methods at
:class:`pds.nerf.splat.model.PDSSplatfactoModel` (same options and checkpoints; gsplat on CUDA, a
pure-PyTorch rasterizer on the CPU), so the splat workflow's first stage trains without a GPU::

    python -m pds.nerf.ns_train splatfacto --data examples/nerf_ball/red_ball --machine.device-type cpu

Checkpoints are identical to those of ``ns-train`` (LPIPS has no trainable state). Plain
``ns-train`` needs no wrapper when pds is installed: nerfstudio imports ``pds.nerf.config`` to
discover the ``pds`` methods on every run, and that import installs the same lazy metric. This
module remains for environments where the entry points are not registered (e.g. a source
checkout on ``PYTHONPATH`` without ``pip install``).

Errors go through the package's error boundary (:func:`pds.cli.run`), as in ``pds-svg``: bad
input (a ``--data`` that is not a dataset, a missing prompt, an unknown prior, an empty
``--load-dir``) is ONE line ``ns-train METHOD: error: ...`` with exit status 2, checked before
nerfstudio writes its ``config.yml`` or builds anything; a failure of our code or nerfstudio's is
one line naming the file its traceback was written to (exit 1); Ctrl-C exits with status 130 at
any time, from the first import on (nerfstudio alone would print the traceback and exit 0).
Command-line syntax errors (an unknown option, a bad value) are tyro's message on one line, exit
status 2.
"""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Iterator, Optional, Sequence

#: The program name in messages (``ns-train METHOD: error: ...``).
PROG = "ns-train"


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run ``ns-train`` with ``argv`` (default: the command line) and a lazy LPIPS metric, behind
    the error boundary; exits with the boundary's status (0, 1, 2 or 130)."""
    from ..cli import run

    if not sys.warnoptions:  # torch's and nerfstudio's deprecation notices are for their callers, not a user
        import warnings

        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category)
    args = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    method = args[0] if args and not args[0].startswith("-") else ""
    _preload()
    sys.exit(run(f"{PROG} {method}".strip(), lambda: train(args)))


def _preload() -> None:
    """Import nerfstudio's trainer (and with it torch and the method configs) before the error
    boundary hands Ctrl-C back to Python: while :func:`pds.entry.guard` holds it, Ctrl-C exits 130
    at once, whereas a ``KeyboardInterrupt`` raised inside a C++ extension's import aborts the
    process (pybind11's ``terminate``, status -6). A failing import is left for :func:`train` to
    raise again inside the boundary, where it becomes one line."""
    try:
        from nerfstudio.configs import method_configs  # noqa: F401
        from nerfstudio.scripts import train  # noqa: F401
    except Exception:  # noqa: BLE001 - reported by train() behind the boundary
        pass


def train(args: Sequence[str]) -> None:
    """Parse ``args`` as ``ns-train`` does, check the inputs, then run nerfstudio's training.

    Raises:
        pds.nerf.PDSNerfError, pds.priors.PriorError: bad input (before anything is written).
        click.exceptions.Abort: Ctrl-C during training (nerfstudio swallows ``KeyboardInterrupt``).
        pds.cli.CLIError: a command line tyro cannot parse (its message on one line).
        SystemExit: ``-h`` (status 0).
    """
    from .compat import install_lazy_lpips

    install_lazy_lpips()
    import tyro
    from nerfstudio.scripts import train as ns_train

    args = [str(a) for a in args]
    sys.argv = [PROG, *args]  # as ns-train would see it
    if _wants_cpu(args):
        from nerfstudio.configs.method_configs import all_methods

        from .splat.model import use_torch_splatfacto

        use_torch_splatfacto(all_methods)  # gsplat's kernels need CUDA
    tyro.extras.set_accent_color("bright_yellow")  # what ns_train.entrypoint() does, with our checks between
    messages = io.StringIO()
    try:
        with contextlib.redirect_stderr(messages):  # tyro's errors: a box of many lines
            config = tyro.cli(ns_train.AnnotatedBaseConfigUnion, prog=PROG, args=args,
                              description=ns_train.convert_markup_to_ansi(ns_train.__doc__))
    except SystemExit as exc:
        if exc.code not in (0, None) and messages.getvalue().strip():
            from ..cli import CLIError

            raise CLIError(unbox(messages.getvalue())) from None
        sys.stderr.write(messages.getvalue())
        raise
    sys.stderr.write(messages.getvalue())
    check_before_training(config)
    with _interrupts_reach_the_boundary(ns_train):
        ns_train.main(config)


def unbox(text: str) -> str:
    """tyro's error panel as one line: the text inside the frame (rich draws it in Unicode, in
    ASCII or without sides, depending on the stream), its sections joined by ``;``; the title,
    which the first line repeats, is dropped."""
    rules, sides = set("╭╮╰╯─┌┐└┘├┤━+-=_ "), "│┃|"
    lines = [line for line in text.splitlines() if line.strip()]

    def is_rule(line: str) -> bool:
        return set(line.strip().strip(sides).strip()) <= rules

    if lines and lines[0].strip()[:1] in ("╭", "┌", "+"):  # top border with the title
        lines = lines[1:]
    elif len(lines) > 1 and is_rule(lines[1]):  # a frameless panel: the title, then a rule
        lines = lines[2:]
    sections, current = [], []
    for line in lines:
        inner = line.strip().strip(sides).strip()
        if is_rule(line):  # a rule between sections, or the bottom border
            if current:
                sections.append(" ".join(current))
            current = []
        else:
            current.append(inner)
    if current:
        sections.append(" ".join(current))
    return "; ".join(sections) or " ".join(text.split())


def check_before_training(config) -> None:
    """The checks the trainer of our methods runs when it is built (:func:`pds.nerf.trainer.check_inputs`),
    run before nerfstudio writes the run's folder; for other methods (``nerfacto``, ``splatfacto``)
    the ``--data`` folder is checked when one is given.

    Raises:
        pds.nerf.PDSNerfError: with a message that names the flag to fix.
    """
    from .trainer import PDSTrainer, PDSTrainerConfig, check_data, check_inputs, data_path

    if getattr(config, "load_config", None):  # replaced by a saved config: the trainer checks that one
        return
    target = getattr(config, "_target", None)
    if isinstance(config, PDSTrainerConfig) and isinstance(target, type) and issubclass(target, PDSTrainer):
        check_inputs(config, target.kind)
    elif data_path(config) is not None:
        check_data(config)


@contextlib.contextmanager
def _interrupts_reach_the_boundary(ns_train) -> Iterator[None]:
    """nerfstudio's ``launch`` catches ``KeyboardInterrupt``, prints its traceback and returns (exit
    status 0); within the block, Ctrl-C in training leaves it as ``click.exceptions.Abort``, which
    the boundary reports as one line with exit status 130."""
    import click

    original = ns_train.train_loop

    def train_loop(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        except KeyboardInterrupt as exc:
            raise click.exceptions.Abort() from exc

    ns_train.train_loop = train_loop
    try:
        yield
    finally:
        ns_train.train_loop = original


def _wants_cpu(args: Sequence[str]) -> bool:
    """Whether the command line asks for ``--machine.device-type cpu`` (either spelling, ``=`` or not)."""
    args = list(args)
    for i, arg in enumerate(args):
        name, _, value = arg.partition("=")
        if name in ("--machine.device-type", "--machine.device_type"):
            value = value or (args[i + 1] if i + 1 < len(args) else "")
            return value == "cpu"
    return False


if __name__ == "__main__":
    from pds.entry import guard

    guard(PROG)  # Ctrl-C exits 130 from here on, through the imports of torch and nerfstudio
    main()
