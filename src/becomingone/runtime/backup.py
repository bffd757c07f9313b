"""Back up a cell's data dir consistently, while the cell runs or not.

Every SQLite database (``*.sqlite3``, ``*.db``) is copied with SQLite's online backup API
(:meth:`sqlite3.Connection.backup`, all pages in one step, so under one read transaction: a
snapshot as of one commit, with what is still in the WAL included); every other file (the
node key, its public key, ...) is copied with its permission bits. The lock file and the
``-wal``/``-shm``/``-journal`` side files are skipped: the copy is a stopped cell's data dir,
which ``becomingone up --data-dir COPY`` resumes after ``witness verify`` passes.

Rule: reads the source only through read-only SQLite connections and plain reads, never takes
the cell's lock and never writes into the source; the destination is a new directory (mode
0700: the copy holds the cell's private key) or a ``.tar.gz`` archive of one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from becomingone.errors import InputError, StorageError
from becomingone.runtime.datadir import LOCK_NAME

__all__ = ["BackupReport", "back_up"]

#: Suffixes of the SQLite databases a data dir may hold.
DB_SUFFIXES = (".sqlite3", ".sqlite", ".db")
#: SQLite side files (their content is in the online backup) and the lock: never copied.
SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupReport:
    """What a backup wrote: the destination, the databases and the other files it copied."""

    destination: Path
    databases: tuple[str, ...]
    files: tuple[str, ...]
    bytes: int


def back_up(data_dir: Path, to: Path) -> BackupReport:
    """Copy ``data_dir`` to the new directory ``to`` or, if ``to`` ends in ``.tar.gz``, to a
    new archive whose single member is a directory named like ``data_dir``.

    Raises
    ------
    InputError
        ``data_dir`` is not a cell's data dir, or ``to`` already exists or is inside it.
    StorageError
        A database could not be read or the destination not written.
    """
    data_dir, to = Path(data_dir), Path(to)
    if not data_dir.is_dir() or not any(data_dir.glob("*.sqlite3")):
        raise InputError("--data-dir", f"{data_dir} is not a cell's data dir (no *.sqlite3)")
    if to.exists():
        raise InputError("--to", f"{to} exists; back up into a new directory or archive")
    if to.resolve().is_relative_to(data_dir.resolve()):
        raise InputError("--to", f"{to} is inside the data dir {data_dir}")
    if to.name.endswith(".tar.gz"):
        return _to_archive(data_dir, to)
    return _to_directory(data_dir, to)


def _to_archive(data_dir: Path, to: Path) -> BackupReport:
    with tempfile.TemporaryDirectory(prefix="becomingone-backup-", dir=to.parent) as tmp:
        inner = Path(tmp) / data_dir.resolve().name
        report = _to_directory(data_dir, inner)
        partial = Path(tmp) / "partial.tar.gz"
        try:
            with tarfile.open(partial, "w:gz") as tar:
                tar.add(inner, arcname=inner.name)
            os.chmod(partial, 0o600)
            os.replace(partial, to)
        except OSError as exc:
            raise StorageError(f"cannot write {to}: {exc}") from exc
    return BackupReport(
        destination=to, databases=report.databases, files=report.files, bytes=to.stat().st_size
    )


def _to_directory(data_dir: Path, to: Path) -> BackupReport:
    try:
        to.mkdir(mode=0o700, parents=False)
    except OSError as exc:
        raise StorageError(f"cannot create {to}: {exc}") from exc
    databases: list[str] = []
    files: list[str] = []
    for path in sorted(data_dir.rglob("*")):
        rel = path.relative_to(data_dir)
        target = to / rel
        if path.is_dir():
            target.mkdir(mode=0o700, exist_ok=True)
        elif path.name == LOCK_NAME or path.name.endswith(SKIPPED_SUFFIXES):
            continue
        elif path.suffix in DB_SUFFIXES:
            _copy_database(path, target)
            databases.append(rel.as_posix())
        elif path.is_file():
            _copy_file(path, target)
            files.append(rel.as_posix())
    size = sum(p.stat().st_size for p in to.rglob("*") if p.is_file())
    return BackupReport(destination=to, databases=tuple(databases), files=tuple(files), bytes=size)


def _copy_database(source: Path, target: Path) -> None:
    """SQLite's online backup of ``source`` into the new file ``target``, in one step."""
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
        with contextlib.closing(src), contextlib.closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
            check = dst.execute("PRAGMA quick_check").fetchone()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot back up {source}: {exc}") from exc
    if check is None or check[0] != "ok":
        raise StorageError(f"the copy of {source} fails SQLite's quick_check: {check}")
    os.chmod(target, source.stat().st_mode & 0o777)


def _copy_file(source: Path, target: Path) -> None:
    try:
        shutil.copy2(source, target)
    except OSError as exc:
        raise StorageError(f"cannot copy {source}: {exc}") from exc
