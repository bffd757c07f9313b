"""One writer per data dir: an OS lock on ``DATA_DIR/LOCK`` that names its holder.

Rule: a writer (a :class:`~becomingone.runtime.cell.Cell`) takes
``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``DATA_DIR/LOCK`` before it touches anything else in the
dir and keeps it until it closes. The lock belongs to the open file, so the OS drops it when the
process ends however it ends (``kill -9`` included), and a second open in the same process is
refused too. The file holds one JSON line — the holder's pid, host, command and start time — so
a refused writer can say who holds the dir. Readers (``witness verify``/``show``) never take it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from becomingone.errors import StorageError

__all__ = ["LOCK_NAME", "DataDirLock", "LockHolder"]

LOCK_NAME = "LOCK"


@dataclass(frozen=True, slots=True, kw_only=True)
class LockHolder:
    """Who holds a data dir: process id, host name, command line and start time (epoch s)."""

    pid: int
    host: str
    command: str
    started_at: float

    def describe(self) -> str:
        """``pid 123 on host h since 2026-12-02T05:40:01Z (becomingone up …)``."""
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at))
        return f"pid {self.pid} on host {self.host} since {started} ({self.command})"

    @classmethod
    def current(cls) -> LockHolder:
        """This process, now."""
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "python"
        return cls(pid=os.getpid(), host=socket.gethostname(), command=command[:200],
                   started_at=time.time())  # fmt: skip

    @classmethod
    def parse(cls, text: str) -> LockHolder | None:
        """The holder written in a lock file (None if it is empty or unreadable)."""
        try:
            data = json.loads(text)
            return cls(
                pid=int(data["pid"]),
                host=str(data["host"]),
                command=str(data["command"]),
                started_at=float(data["started_at"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


class DataDirLock:
    """The exclusive writer lock of one data dir; :meth:`acquire` it, :meth:`release` it."""

    __slots__ = ("_fd", "holder", "path")

    def __init__(self, path: Path, fd: int, holder: LockHolder) -> None:
        self.path = path
        self.holder = holder
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, data_dir: Path) -> DataDirLock:
        """Lock ``data_dir`` (created if missing) for this process, or raise ``StorageError``
        naming the current holder at once (never waits)."""
        path = Path(data_dir) / LOCK_NAME
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot open lock file {path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StorageError(_in_use(path)) from None
        holder = LockHolder.current()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(asdict(holder)) + "\n").encode(), 0)
        except OSError as exc:
            os.close(fd)  # also releases the lock
            raise StorageError(f"cannot write lock file {path}: {exc.strerror or exc}") from exc
        return cls(path, fd, holder)

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock (idempotent). The file stays: its content is only advisory."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _in_use(path: Path) -> str:
    try:
        holder = LockHolder.parse(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        holder = None
    who = holder.describe() if holder else "another process (holder not yet recorded)"
    return f"data dir {path.parent} is in use by {who}; stop it first or use another --data-dir"
