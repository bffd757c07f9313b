"""SQLite adapters of every storage protocol: one file (WAL), one connection per adapter.

Rule: every write is one ``BEGIN IMMEDIATE`` transaction, so it is atomic and — because the
write lock is taken before the precondition is read — a compare-and-set is linearizable across
connections, threads and processes on the same file. SQLite errors become ``StorageError``.
The witness, chain-head, signature and coherence tables have the layout of
:class:`~becomingone.memory.store.TemporalMemory`, so these adapters read and write a cell's
``memory.sqlite3`` too.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

from becomingone.errors import CasConflict, InputError, StorageError
from becomingone.memory._checks import (
    check_append,
    check_bytes,
    check_finite,
    check_index,
    check_key,
    check_limit,
    check_revision,
    check_signatures,
)
from becomingone.memory.history import interpolate, raw_cut
from becomingone.memory.protocols import Signature, Versioned
from becomingone.memory.retention import Retention
from becomingone.memory.store import Coherence, CoherencePoint
from becomingone.witnessing.record import ChainHead, WitnessRecord

__all__ = [
    "SqliteAppendLog",
    "SqliteCasRecord",
    "SqliteCoherenceHistory",
    "SqliteProtocolState",
    "SqliteSignatureStore",
    "SqliteWitnessLog",
]

#: How long a writer waits for another connection's write lock before it fails, in ms.
BUSY_TIMEOUT_MS = 10_000


class _SqliteAdapter:
    """One connection to ``path`` (created with its parent dir) and the adapter's tables."""

    SCHEMA: ClassVar[str] = ""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(self.SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the file's write lock: committed whole or not at all."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StorageError(f"cannot write {self.path}: {exc}") from exc

    def _rows(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read {self.path}: {exc}") from exc


class SqliteWitnessLog(_SqliteAdapter):
    """A :class:`~becomingone.memory.protocols.WitnessLog` in the ``witness`` and
    ``chain_head`` tables."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS witness (
        pos INTEGER PRIMARY KEY, seq INTEGER NOT NULL, level TEXT NOT NULL, time REAL NOT NULL,
        kind TEXT NOT NULL, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
        signer TEXT NOT NULL, signature BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS chain_head (
        id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL, hash TEXT NOT NULL,
        signature BLOB NOT NULL);
    """
    _COLUMNS = "seq, level, time, kind, payload, prev_hash, hash, signer, signature"

    def append(self, records: Sequence[WitnessRecord], head: ChainHead) -> None:
        """Store ``records`` and ``head`` in one transaction."""
        with self._write() as db:
            rows = [
                (r.seq, r.level, r.time, r.kind, r.payload, r.prev_hash, r.hash, r.signer,
                 r.signature)
                for r in check_append(records, head, self._stored_count(db))
            ]  # fmt: skip
            db.executemany(
                f"INSERT INTO witness ({self._COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", rows
            )
            db.execute(
                "INSERT OR REPLACE INTO chain_head VALUES (1, ?, ?, ?)",
                (head.count, head.hash, head.signature),
            )

    @staticmethod
    def _stored_count(db: sqlite3.Connection) -> int:
        """The stored head's count (O(1)); a row count only while there is no head."""
        row = db.execute("SELECT count FROM chain_head WHERE id = 1").fetchone()
        if row is None:
            row = db.execute("SELECT COUNT(*) FROM witness").fetchone()
        return int(row[0])

    def read(self, start: int = 0, limit: int | None = None) -> Iterator[WitnessRecord]:
        """Records from position ``start`` in stored order, fetched ``PAGE`` rows at a time
        (arguments are checked at the call, not at the first ``next``)."""
        start, limit = check_index(start, "start", 0), check_limit(limit)
        return self._pages(start, limit)

    #: Rows per query while reading the chain.
    PAGE = 2000

    def _pages(self, start: int, limit: int | None) -> Iterator[WitnessRecord]:
        left = limit
        rows = self._rows(
            f"SELECT pos, {self._COLUMNS} FROM witness ORDER BY pos LIMIT ? OFFSET ?",
            (self.PAGE if left is None else min(self.PAGE, left), start),
        )
        while rows:
            for row in rows:
                yield _record(row[1:], self.path)
            if left is not None:
                left -= len(rows)
            if len(rows) < self.PAGE or left == 0:
                return
            rows = self._rows(
                f"SELECT pos, {self._COLUMNS} FROM witness WHERE pos > ? ORDER BY pos LIMIT ?",
                (rows[-1][0], self.PAGE if left is None else min(self.PAGE, left)),
            )

    def count(self) -> int:
        """Number of records."""
        return int(self._rows("SELECT COUNT(*) FROM witness")[0][0])

    def head(self) -> ChainHead | None:
        """The stored head."""
        row = self._rows("SELECT count, hash, signature FROM chain_head WHERE id = 1")
        if not row:
            return None
        return ChainHead(count=int(row[0][0]), hash=str(row[0][1]), signature=bytes(row[0][2]))


def _record(row: Sequence[Any], path: Path) -> WitnessRecord:
    seq, level, time, kind, payload, prev, digest, signer, sig = row
    try:
        return WitnessRecord(
            seq=int(seq), level=str(level), time=float(time), kind=str(kind),
            payload=str(payload), prev_hash=str(prev), hash=str(digest), signer=str(signer),
            signature=bytes(sig) if isinstance(sig, bytes | memoryview) else str(sig).encode(),
        )  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise StorageError(f"{path}: unreadable witness record at seq {seq}: {exc}") from exc


class SqliteSignatureStore(_SqliteAdapter):
    """A :class:`~becomingone.memory.protocols.SignatureStore` in the ``signature`` table."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS signature (
        id INTEGER PRIMARY KEY, transducer TEXT NOT NULL, t REAL NOT NULL,
        samples INTEGER NOT NULL, state BLOB NOT NULL);
    """

    def __init__(self, path: Path | str, retention: Retention | None = None) -> None:
        super().__init__(path)
        self.retention = retention or Retention()

    def put(self, t: float, signatures: Mapping[str, tuple[int, bytes]]) -> None:
        """Store signatures at ``t`` and drop all but the newest ``retention.signatures``."""
        values = check_signatures(t, signatures)
        with self._write() as db:
            for s in values:
                db.execute(
                    "INSERT INTO signature (transducer, t, samples, state) VALUES (?, ?, ?, ?)",
                    (s.transducer, s.t, s.samples, s.state),
                )
                db.execute(
                    "DELETE FROM signature WHERE transducer = ? AND id NOT IN (SELECT id FROM"
                    " signature WHERE transducer = ? ORDER BY id DESC LIMIT ?)",
                    (s.transducer, s.transducer, self.retention.signatures),
                )

    def latest(self) -> dict[str, tuple[int, bytes]]:
        """Newest (samples, state) per role."""
        rows = self._rows(
            "SELECT transducer, samples, state FROM signature WHERE id IN"
            " (SELECT MAX(id) FROM signature GROUP BY transducer)"
        )
        return {str(role): (int(n), bytes(state)) for role, n, state in rows}

    def kept(self, transducer: str) -> list[Signature]:
        """Stored signatures of one role, oldest first."""
        rows = self._rows(
            "SELECT t, samples, state FROM signature WHERE transducer = ? ORDER BY id",
            (transducer,),
        )
        return [
            Signature(transducer=transducer, t=float(t), samples=int(n), state=bytes(state))
            for t, n, state in rows
        ]


class SqliteCoherenceHistory(_SqliteAdapter):
    """A :class:`~becomingone.memory.protocols.CoherenceHistory` in the ``coherence`` table."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS coherence (
        t REAL NOT NULL, step REAL NOT NULL, master REAL NOT NULL, emissary REAL NOT NULL,
        sync REAL NOT NULL, delta_phase REAL NOT NULL, phase REAL NOT NULL, n INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS coherence_t ON coherence (t);
    """
    _COLUMNS = "t, step, master, emissary, sync, delta_phase, phase, n"

    def __init__(self, path: Path | str, retention: Retention | None = None) -> None:
        super().__init__(path)
        self.retention = retention or Retention()

    def add(self, point: CoherencePoint) -> None:
        """Store one raw point."""
        if not isinstance(point, CoherencePoint):
            raise InputError("point", f"must be a CoherencePoint, got {type(point).__name__}")
        t, phase = check_finite(point.t, "t"), check_finite(point.phase, "phase")
        c = point.coherence
        with self._write() as db:
            db.execute(
                f"INSERT INTO coherence ({self._COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (t, point.step, c.master, c.emissary, c.sync, c.delta_phase, phase, point.n),
            )

    def compact(self, now: float) -> None:
        """Apply retention at stream time ``now`` in one transaction."""
        now = check_finite(now, "now")
        args = {"s": self.retention.coarse_step, "cut": raw_cut(now, self.retention)}
        with self._write() as db:
            db.execute(
                "INSERT INTO coherence SELECT (CAST(t / :s AS INTEGER) + 0.5) * :s, :s,"
                " AVG(master), AVG(emissary), AVG(sync), AVG(delta_phase), AVG(phase), SUM(n)"
                " FROM coherence WHERE step = 0 AND t < :cut GROUP BY CAST(t / :s AS INTEGER)",
                args,
            )
            db.execute("DELETE FROM coherence WHERE step = 0 AND t < ?", (args["cut"],))
            db.execute(
                "DELETE FROM coherence WHERE step > 0 AND t < ?",
                (now - self.retention.coarse_seconds,),
            )

    def retrieve(self, start: float, end: float) -> list[CoherencePoint]:
        """Points with ``start <= t <= end`` by (t, step)."""
        rows = self._rows(
            f"SELECT {self._COLUMNS} FROM coherence WHERE t BETWEEN ? AND ? ORDER BY t, step",
            (start, end),
        )
        return [_point(row) for row in rows]

    def reconstruct(self, t: float) -> CoherencePoint:
        """Interpolated coherence at ``t``."""
        t = check_finite(t, "t")
        sql = f"SELECT {self._COLUMNS} FROM coherence WHERE t {{}} ? ORDER BY t {{}}, step LIMIT 1"
        before = self._rows(sql.format("<=", "DESC"), (t,))
        after = self._rows(sql.format(">=", "ASC"), (t,))
        if not before or not after:
            raise InputError("t", f"{t} is outside the stored coherence history")
        return interpolate(_point(before[0]), _point(after[0]), t)


def _point(row: Sequence[Any]) -> CoherencePoint:
    t, step, master, emissary, sync, delta, phase, n = row
    c = Coherence(master=master, emissary=emissary, sync=sync, delta_phase=delta)
    return CoherencePoint(t=float(t), coherence=c, phase=float(phase), step=float(step), n=int(n))


class SqliteProtocolState(_SqliteAdapter):
    """A :class:`~becomingone.memory.protocols.ProtocolStateStore` in ``protocol_state``."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS protocol_state (name TEXT PRIMARY KEY, value BLOB NOT NULL);
    """

    def get(self, name: str) -> bytes | None:
        """The blob under ``name``."""
        rows = self._rows(
            "SELECT value FROM protocol_state WHERE name = ?", (check_key(name, "name"),)
        )
        return bytes(rows[0][0]) if rows else None

    def put(self, name: str, value: bytes) -> None:
        """Store one blob."""
        self.put_many({name: value})

    def put_many(self, blobs: Mapping[str, bytes]) -> None:
        """Store every blob in one transaction (checked one by one inside it)."""
        with self._write() as db:
            for name, value in dict(blobs).items():
                db.execute(
                    "INSERT INTO protocol_state VALUES (?, ?) ON CONFLICT (name)"
                    " DO UPDATE SET value = excluded.value",
                    (check_key(name, "name"), check_bytes(value, "value")),
                )

    def names(self) -> list[str]:
        """Stored names, sorted."""
        return [str(n) for (n,) in self._rows("SELECT name FROM protocol_state ORDER BY name")]


class SqliteCasRecord(_SqliteAdapter):
    """A :class:`~becomingone.memory.protocols.CasRecord`: the keys of ``bucket`` in
    ``cas_record``, revisions from the bucket's counter in ``cas_bucket``."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS cas_bucket (bucket TEXT PRIMARY KEY, revision INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS cas_record (
        bucket TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, revision INTEGER NOT NULL,
        PRIMARY KEY (bucket, key)) WITHOUT ROWID;
    """

    def __init__(self, path: Path | str, bucket: str = "kv") -> None:
        self.bucket = check_key(bucket, "bucket")
        super().__init__(path)

    def get(self, key: str) -> Versioned | None:
        """(value, revision) or ``None``."""
        rows = self._rows(
            "SELECT value, revision FROM cas_record WHERE bucket = ? AND key = ?",
            (self.bucket, check_key(key)),
        )
        return Versioned(bytes(rows[0][0]), int(rows[0][1])) if rows else None

    def create(self, key: str, value: bytes) -> int:
        """Store a new key."""
        key, value = check_key(key), check_bytes(value, "value")
        with self._write() as db:
            current = self._current(db, key)
            if current is not None:
                raise CasConflict(key, None, current)
            return self._put(db, key, value)

    def update(self, key: str, value: bytes, expected_revision: int) -> int:
        """Replace a key at ``expected_revision``."""
        key, value = check_key(key), check_bytes(value, "value")
        expected = check_revision(expected_revision)
        with self._write() as db:
            self._expect(db, key, expected)
            return self._put(db, key, value)

    def delete(self, key: str, expected_revision: int) -> None:
        """Remove a key at ``expected_revision``."""
        key, expected = check_key(key), check_revision(expected_revision)
        with self._write() as db:
            self._expect(db, key, expected)
            self._next_revision(db)
            db.execute("DELETE FROM cas_record WHERE bucket = ? AND key = ?", (self.bucket, key))

    def _current(self, db: sqlite3.Connection, key: str) -> int | None:
        row = db.execute(
            "SELECT revision FROM cas_record WHERE bucket = ? AND key = ?", (self.bucket, key)
        ).fetchone()
        return None if row is None else int(row[0])

    def _expect(self, db: sqlite3.Connection, key: str, expected: int) -> None:
        current = self._current(db, key)
        if current != expected:
            raise CasConflict(key, expected, current)

    def _next_revision(self, db: sqlite3.Connection) -> int:
        db.execute(
            "INSERT INTO cas_bucket VALUES (?, 1) ON CONFLICT (bucket)"
            " DO UPDATE SET revision = revision + 1",
            (self.bucket,),
        )
        row = db.execute("SELECT revision FROM cas_bucket WHERE bucket = ?", (self.bucket,))
        return int(row.fetchone()[0])

    def _put(self, db: sqlite3.Connection, key: str, value: bytes) -> int:
        revision = self._next_revision(db)
        db.execute(
            "INSERT OR REPLACE INTO cas_record VALUES (?, ?, ?, ?)",
            (self.bucket, key, value, revision),
        )
        return revision


class SqliteAppendLog(_SqliteAdapter):
    """An :class:`~becomingone.memory.protocols.AppendLog`: the entries of log ``name`` in
    ``append_log``."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS append_log (
        log TEXT NOT NULL, idx INTEGER NOT NULL, entry BLOB NOT NULL,
        PRIMARY KEY (log, idx)) WITHOUT ROWID;
    """

    def __init__(self, path: Path | str, name: str = "log") -> None:
        self.name = check_key(name, "name")
        super().__init__(path)

    def append(self, entry: bytes, *, expected_last: int | None = None) -> int:
        """Append one entry (iff the last index is ``expected_last``, when given)."""
        entry = check_bytes(entry, "entry")
        if expected_last is not None:
            check_index(expected_last, "expected_last", 0)
        with self._write() as db:
            last = self._last(db)
            if expected_last is not None and expected_last != last:
                raise CasConflict(self.name, expected_last, last, what="last index")
            db.execute("INSERT INTO append_log VALUES (?, ?, ?)", (self.name, last + 1, entry))
            return last + 1

    def read(self, start: int = 1, limit: int | None = None) -> list[bytes]:
        """Entries from index ``start``."""
        start, limit = check_index(start, "start", 1), check_limit(limit)
        rows = self._rows(
            "SELECT entry FROM append_log WHERE log = ? AND idx >= ? ORDER BY idx LIMIT ?",
            (self.name, start, -1 if limit is None else limit),
        )
        return [bytes(e) for (e,) in rows]

    def last_index(self) -> int:
        """Newest index (0 when empty)."""
        with self._lock:
            return self._last(self._db)

    def _last(self, db: sqlite3.Connection) -> int:
        try:
            row = db.execute("SELECT MAX(idx) FROM append_log WHERE log = ?", (self.name,))
            return int(row.fetchone()[0] or 0)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read {self.path}: {exc}") from exc
