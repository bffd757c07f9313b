"""The SQLite ledger adapter (the embedded default): one file in WAL mode.

Rule: every write is one ``BEGIN IMMEDIATE`` transaction, so the write lock is held from the
first read of the chain head to the commit: transactions from threads and processes on the same
file are applied one at a time, in chain order. Reads run in a deferred transaction (one WAL
snapshot). ``sqlite3`` errors become ``StorageError``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from becomingone.choir.rules import Rules
from becomingone.choir.sql import SCHEMA, Db, SqlLedger
from becomingone.errors import StorageError
from becomingone.keys import NodeKey
from becomingone.witnessing import GENESIS_HASH

__all__ = ["SqliteLedger"]

#: How long a writer waits for another connection's write lock, in ms.
BUSY_TIMEOUT_MS = 30_000


class _SqliteDb:
    """:class:`~becomingone.choir.sql.Db` over one ``sqlite3`` connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, params).fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, params).rowcount


class SqliteLedger(SqlLedger):
    """A Choir ledger in the SQLite file ``path`` (created with its parent directory).

    ``before_commit`` is a fault-injection point for tests: called inside each write
    transaction after everything is written and checked, just before ``COMMIT``.

    Examples
    --------
    >>> from becomingone.choir import TOTAL_SUPPLY
    >>> ledger = SqliteLedger(":memory:", NodeKey.from_seed(bytes(32)), now=0.0)
    >>> ledger.balance("treasury") == TOTAL_SUPPLY, ledger.verify().ok
    (True, True)
    """

    def __init__(
        self,
        path: Path | str,
        key: NodeKey,
        *,
        rules: Rules | None = None,
        now: float,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(key, rules or Rules())
        self.path = path if path == ":memory:" else Path(path)
        self._before_commit = before_commit
        try:
            if isinstance(self.path, Path):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            schema = SCHEMA.format(
                INT="INTEGER",
                REAL="REAL",
                BLOB="BLOB",
                BOOL="INTEGER",
                NOROWID=" WITHOUT ROWID",
                GENESIS=GENESIS_HASH,
            )
            with self._guard():
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in schema.split(";"):
                        if statement.strip():
                            self._conn.execute(statement)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open ledger {self.path}: {exc}") from exc
        self._open(now)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StorageError(f"ledger {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Db]:
        with self._guard():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteDb(self._conn)
                if self._before_commit is not None:
                    self._before_commit()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[Db]:
        with self._guard():
            self._conn.execute("BEGIN")
            try:
                yield _SqliteDb(self._conn)
            finally:
                self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
