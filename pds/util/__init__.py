"""Helpers shared across the package, one home each: images (:mod:`.images`), files written
atomically (:mod:`.files`). The command-line error boundary is :mod:`pds.cli`."""
