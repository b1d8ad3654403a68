"""Files and folders that appear whole or not at all.

Every result the package writes (SVGs, PNGs, videos, checkpoints, model folders) goes through
here: written under a temporary name in the destination's folder, then renamed over it, so an
interrupted run never leaves a partial file, and an existing special file (a device, a FIFO) is
refused rather than replaced.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Union


class OutputError(OSError):
    """An output path cannot be written (the message names the path and the reason)."""


class InputError(OSError):
    """An input cannot be read within the limits (the message names the path, the limit and the fix)."""


def read_capped(path: Union[str, os.PathLike], limit: int, what: str = "input") -> bytes:
    """The bytes of ``path``, refusing more than ``limit`` of them.

    The size a ``stat`` reports is 0 for devices (``/dev/zero``, ``/dev/urandom``) and FIFOs,
    so the cap is applied to what is read: at most ``limit + 1`` bytes are ever held. A FIFO
    is opened without blocking, so one that has no writer reads as empty instead of hanging.

    Raises:
        InputError: more than ``limit`` bytes.
        OSError: the file cannot be opened or read (missing, a folder, a symlink loop...).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "it is a directory", str(path))
        if stat.S_ISREG(st.st_mode) and st.st_size > limit:
            raise InputError(f"cannot read {what} {path}: {st.st_size} bytes is more than the {limit} byte limit")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # a FIFO with a writer: wait for its data as usual
        data = f.read(limit + 1)
    if len(data) > limit:
        kind = "" if stat.S_ISREG(st.st_mode) else " (a device or pipe that does not end)"
        raise InputError(f"cannot read {what} {path}: more than the {limit} byte limit{kind}; pass a regular file")
    return data


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_replaceable(path: Union[str, os.PathLike]) -> None:
    """Raise :class:`OutputError` when ``path`` exists and is not a regular file (a folder, a
    device such as ``/dev/null``, a FIFO, a socket): renaming over it would replace it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"cannot write {path}: it is a folder")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"cannot write {path}: it is a special file (device, FIFO or socket), not a regular file; "
                          f"choose a file name")


def atomic_write_with(path: Union[str, os.PathLike], write: Callable[[str], None], suffix: str = ".tmp") -> None:
    """Call ``write(tmp_path)`` to produce the file, then rename it to ``path`` (mode 0644 less umask).

    ``suffix`` keeps an extension writers look at (``.gif``). On any failure the temporary file is
    removed and ``path`` is untouched.
    """
    from .. import entry

    entry.release()  # a Ctrl-C from here on is a KeyboardInterrupt, so the temporary file is removed
    path = Path(path)
    check_replaceable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=str(path.parent if str(path.parent) else "."))
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write(path: Union[str, os.PathLike], data: Union[str, bytes]) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically (see :func:`atomic_write_with`)."""

    def write(tmp: str) -> None:
        if isinstance(data, bytes):
            with open(tmp, "wb") as f:
                f.write(data)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(data)

    atomic_write_with(path, write)


def replace_folder(work: Path, dest: Path) -> None:
    """Rename the finished folder ``work`` to ``dest``, replacing an existing folder (moved aside
    first and deleted last, so a failure leaves the old one in place)."""
    old = None
    if dest.is_dir():
        if any(dest.iterdir()):
            old = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(dest, old)
        else:
            dest.rmdir()
    try:
        os.replace(work, dest)
    except BaseException:
        if old is not None and not dest.exists():
            os.replace(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
