"""Output into a pipe that the reader closed early (``becomingone cluster --json | head -1``).

Rule: the command stops at once, prints nothing more and exits 0 — no traceback. As the Python
documentation recommends, stdout is pointed at devnull so the interpreter's final flush is quiet.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["reader_may_leave"]


@contextlib.contextmanager
def reader_may_leave() -> Iterator[None]:
    """Run the body; if stdout's reader has gone, stop quietly instead of raising."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
