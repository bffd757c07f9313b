"""What guards a data dir: one writer (an OS lock naming its holder), one identity, a sound tail.

Rule: a writer (a :class:`~becomingone.runtime.cell.Cell`) takes
``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``DATA_DIR/LOCK`` before it touches anything else in the
dir and keeps it until it closes. The lock belongs to the open file, so the OS drops it when the
process ends however it ends (``kill -9`` included), and a second open in the same process is
refused too. The file holds one JSON line — the holder's pid, host, command and start time — so
a refused writer can say who holds the dir. Readers (``witness verify``/``show``) never take it.
The identity is ``node.key`` checked against ``node.pub``, and a key is created only for a new
cell; :func:`verify_tail` is the check a cell runs on its stored chain before extending it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import stat
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from becomingone.config.schema import SecurityConfig
from becomingone.errors import InputError, IntegrityError, StorageError
from becomingone.keys import NodeKey, key_id, read_public_key, write_public_key
from becomingone.memory.store import TemporalMemory
from becomingone.witnessing import GENESIS_HASH, VerifyReport, verify

__all__ = [
    "LOCK_NAME",
    "PUBLIC_KEY_FILE",
    "DataDirLock",
    "LockHolder",
    "check_chain",
    "load_key",
    "open_identity",
    "public_key",
    "resume_point",
    "verify_tail",
]

log = logging.getLogger("becomingone.cell")

LOCK_NAME = "LOCK"
#: The cell's public key beside its chain (64 hex digits): all ``witness verify`` needs.
PUBLIC_KEY_FILE = "node.pub"


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


def load_key(path: Path, *, strict: bool = True) -> NodeKey:
    """The cell's Ed25519 key at ``path``, created (mode 0600) on first start."""
    if path.exists() and strict:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise InputError(
                "security.key_file", f"{path} has mode {mode:o}; run: chmod 600 {path}"
            )
    return NodeKey.load_or_create(path)


def open_identity(data_dir: Path, memory: TemporalMemory, security: SecurityConfig) -> NodeKey:
    """The data dir's key, checked against ``node.pub``; created only for a new cell.

    A dir that holds a witness chain (or a public key) but no private key is refused: a new
    key would silently fork the identity. A private key that does not match ``node.pub`` is
    refused too. ``node.pub`` (hex) is written beside a key that has none.
    """
    key_path = data_dir / security.key_file
    pub_path = data_dir / PUBLIC_KEY_FILE
    if not key_path.exists():
        records = memory.witness_count()
        if records or memory.chain_head() is not None or pub_path.exists():
            raise StorageError(
                f"{key_path} is missing but {data_dir} already holds a cell ({records} witness "
                f"records); restore {key_path.name} from a backup, or start a new data dir — "
                f"the old chain stays verifiable with {pub_path.name}"
            )
    key = load_key(key_path, strict=security.strict_key_permissions)
    if not pub_path.exists():
        write_public_key(pub_path, key.public_bytes)
    elif read_public_key(pub_path) != key.public_bytes:
        stored = key_id(read_public_key(pub_path))
        raise IntegrityError(
            None,
            f"{key_path} (key id {key.id}) does not match {pub_path} (key id {stored}); "
            f"restore the original {key_path.name}, or start a new data dir",
        )
    return key


def public_key(data_dir: Path, key_file: str) -> bytes:
    """The cell's public key without opening it for writing: ``node.pub``, or for a data dir
    from before node.pub existed, derived from the private key ``key_file``."""
    pub = data_dir / PUBLIC_KEY_FILE
    if pub.exists():
        return read_public_key(pub)
    if (data_dir / key_file).exists():
        return NodeKey.load(data_dir / key_file).public_bytes
    raise StorageError(f"{data_dir} has no public key ({PUBLIC_KEY_FILE}): cannot check signatures")


def verify_tail(memory: TemporalMemory, public_key: bytes, window: int) -> VerifyReport:
    """Verify the newest ``window`` stored records, linked to the record before them, and the
    signed head (its signature, its count, its hash)."""
    count = memory.witness_count()
    start = max(0, count - window)
    prev = GENESIS_HASH
    if start > 0:
        before = next(memory.witnesses(start=start - 1, limit=1))
        prev = before.hash
    records = memory.witnesses(start=start)
    return verify(records, public_key, start=start, prev_hash=prev, head=memory.chain_head())


def check_chain(
    memory: TemporalMemory, public_key: bytes, *, window: int, accept_broken: bool = False
) -> VerifyReport | None:
    """Check a stored chain before a writer extends it: the signed head and the newest
    ``window`` records. None when sound (or empty).

    A broken chain raises ``IntegrityError`` naming the first bad record and how to go on,
    unless ``accept_broken``: then its report is returned, for the caller to witness.
    """
    count, head = memory.witness_count(), memory.chain_head()
    if count == 0 and head is None:
        return None
    if head is None:
        reason = "the signed chain head is missing"
        report = VerifyReport(ok=False, checked=0, first_bad=count - 1, reason=reason)
    else:
        report = verify_tail(memory, public_key, window)
    if report.ok:
        return None
    if accept_broken:
        log.warning("starting on a broken witness chain (accepted): %s", report)
        return report
    raise IntegrityError(
        report.first_bad,
        f"{report.reason} — the witness chain in {memory.path} does not verify, so the cell "
        "will not extend it; inspect it with `becomingone witness verify --data-dir "
        f"{memory.path.parent}`, then start with --accept-broken-chain (the break is "
        "witnessed) or use a new data dir",
    )


def resume_point(memory: TemporalMemory, broken: VerifyReport | None) -> tuple[int, str]:
    """(record count, last hash) a writer continues the chain from: the signed head, or —
    after an accepted break — the last stored record, whatever the head says."""
    if broken is not None:
        count = memory.witness_count()
        last = next(memory.witnesses(start=count - 1, limit=1), None) if count else None
        return count, last.hash if last else GENESIS_HASH
    head = memory.chain_head()
    return (head.count, head.hash) if head else (0, GENESIS_HASH)
