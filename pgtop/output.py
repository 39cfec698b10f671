"""Writing ``--once`` output: a full disk or a closed pipe is one line, not a crash."""

from __future__ import annotations

import os
import sys


class OutputError(Exception):
    """Standard output cannot be written (a full disk, a closed pipe); ``str()`` says why."""

    def __init__(self, message: str, *, broken_pipe: bool) -> None:
        super().__init__(message)
        self.broken_pipe = broken_pipe


def write_output(text: str) -> None:
    """Write ``text`` to standard output and flush it.

    Raises:
        OutputError: it could not be written. Standard output is then pointed at
            /dev/null, so that Python's own flush at exit cannot fail a second time.
    """
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise OutputError(
            f"cannot write the output: {exc.strerror or exc}",
            broken_pipe=isinstance(exc, BrokenPipeError),
        ) from None
