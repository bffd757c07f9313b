"""The PostgreSQL ledger adapter (scale-out): ``psycopg`` 3, one connection.

Rule: every write is one transaction that first locks the chain-head row (``SELECT ... FOR
UPDATE``), so writers from any number of processes are applied one at a time, in chain order,
and each sees everything committed before it; it ends with ``NOTIFY`` on
:data:`NOTIFY_CHANNEL` (PostgreSQL delivers it at the commit, and never for a rollback), so a
follower holding a :class:`AppendListener` (``LISTEN``, its own connection) wakes at once.
Reads run in a ``REPEATABLE READ READ ONLY`` transaction (one snapshot). The schema is created
under an advisory lock. ``psycopg`` errors become ``StorageError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from becomingone.choir.rules import Rules
from becomingone.choir.sql import SCHEMA, Db, SqlLedger
from becomingone.errors import InputError, StorageError
from becomingone.keys import NodeKey
from becomingone.witnessing import GENESIS_HASH

__all__ = ["NOTIFY_CHANNEL", "AppendListener", "PostgresLedger"]

#: The channel every write transaction notifies (no payload: a follower reads what is new).
NOTIFY_CHANNEL = "becomingone_choir_ledger"

# Any constant: serialises schema creation between processes opening the same database.
_SCHEMA_LOCK = 0x63686F6972


def _first_line(exc: Exception) -> str:
    """A driver error in one line (libpq's messages run over several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _PgDb:
    """:class:`~becomingone.choir.sql.Db` over a ``psycopg`` connection (``?`` → ``%s``)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.conn.execute(sql.replace("?", "%s"), params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql.replace("?", "%s"), params).fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.conn.execute(sql.replace("?", "%s"), params).rowcount)


class PostgresLedger(SqlLedger):
    """A Choir ledger in the PostgreSQL database at ``url`` (``postgresql://...``).

    ``before_commit`` is the same fault-injection point as the SQLite adapter's.
    """

    def __init__(
        self,
        url: str,
        key: NodeKey,
        *,
        rules: Rules | None = None,
        now: float,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(key, rules or Rules())
        if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
            raise InputError("url", f"must be a postgresql:// URL, got {url!r}")
        try:
            import psycopg
        except ImportError as exc:
            raise StorageError(f"a PostgreSQL ledger needs psycopg ({exc})") from exc

        self._psycopg = psycopg
        self.url = url
        self._before_commit = before_commit
        schema = SCHEMA.format(
            INT="BIGINT",
            REAL="DOUBLE PRECISION",
            BLOB="BYTEA",
            BOOL="BOOLEAN",
            NOROWID="",
            GENESIS=GENESIS_HASH,
        )
        with self._guard():
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in schema.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
        self._open(now)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except self._psycopg.Error as exc:
            raise StorageError(f"ledger {self._where()}: {_first_line(exc)}") from exc

    def _where(self) -> str:
        return self.url.split("@")[-1]  # never print a password

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Db]:
        with self._guard(), self._conn.transaction():
            self._conn.execute("SELECT 1 FROM choir_head WHERE id = 1 FOR UPDATE")
            yield _PgDb(self._conn)
            self._conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
            if self._before_commit is not None:
                self._before_commit()

    @contextlib.contextmanager
    def _read(self) -> Iterator[Db]:
        with self._guard(), self._conn.transaction():
            self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield _PgDb(self._conn)

    async def listen(self) -> AppendListener:
        """A new :class:`AppendListener` on this ledger's database (its own connection)."""
        return await AppendListener.connect(self.url)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PostgresLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AppendListener:
    """``LISTEN`` on a PostgreSQL ledger's appends, on an asyncio connection of its own.

    :meth:`wait` returns as soon as any connection (any process) commits a write transaction
    on the ledger; a follower then reads what is new. Notifications carry no data and may
    be lost with the connection, so a follower still looks on a slow interval.
    """

    def __init__(self, conn: Any, where: str) -> None:
        self._conn, self._where = conn, where

    @classmethod
    async def connect(cls, url: str) -> AppendListener:
        """Connect to ``url`` and ``LISTEN`` (``StorageError`` if that fails)."""
        import psycopg

        where = url.split("@")[-1]  # never print a password
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
            await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except psycopg.Error as exc:
            raise StorageError(f"ledger {where}: cannot listen: {_first_line(exc)}") from exc
        return cls(conn, where)

    async def wait(self, timeout: float) -> bool:
        """True once an append is notified within ``timeout`` seconds, False if none was
        (the notifications already queued are taken with it); ``StorageError`` if the
        connection is lost."""
        import psycopg

        got = False
        try:
            async for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                got = True
            if got:
                async for _ in self._conn.notifies(timeout=0.0):
                    pass
        except psycopg.Error as exc:
            raise StorageError(f"ledger {self._where}: listening: {_first_line(exc)}") from exc
        return got

    async def close(self) -> None:
        """Close the connection."""
        await self._conn.close()
