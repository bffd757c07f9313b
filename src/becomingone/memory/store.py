"""Temporal memory of a cell: one SQLite file (WAL) per data dir.

Rule: this is the only module that speaks SQL. Each ingest batch is one transaction (witness
records, chain head, coherence point, counters, the source's read position, and either the raw
batch in the replay log or fresh engine signatures), so a crash (even ``kill -9``) loses at
most the batch being written and never leaves the chain or the history half-written. Engine
states are stored as ``KairosState.to_bytes`` (npz, no pickle); batches as ``.npy`` bytes (no
pickle). Coherence history is kept raw for ``retention.raw_seconds``, then as ``coarse_step``
means for ``coarse_seconds``; only the latest ``retention.signatures`` engine signatures are
kept, so the file stays bounded however long the Master window runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from becomingone.errors import InputError, StorageError
from becomingone.memory.retention import Retention
from becomingone.witnessing.record import ChainHead, WitnessRecord

__all__ = ["DB_NAME", "Coherence", "CoherencePoint", "TemporalMemory"]

DB_NAME = "memory.sqlite3"
SCHEMA_VERSION = "1"
_NPY_MAGIC = b"\x93NUMPY\x01\x00"  # .npy format version 1.0
_SOURCE_PREFIX = "source:"  # meta key of a source's read position

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS witness (
    pos INTEGER PRIMARY KEY, seq INTEGER NOT NULL, level TEXT NOT NULL, time REAL NOT NULL,
    kind TEXT NOT NULL, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
    signer TEXT NOT NULL, signature BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL, hash TEXT NOT NULL,
    signature BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS coherence (
    t REAL NOT NULL, step REAL NOT NULL, master REAL NOT NULL, emissary REAL NOT NULL,
    sync REAL NOT NULL, delta_phase REAL NOT NULL, phase REAL NOT NULL, n INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS coherence_t ON coherence (t);
CREATE TABLE IF NOT EXISTS signature (
    id INTEGER PRIMARY KEY, transducer TEXT NOT NULL, t REAL NOT NULL, samples INTEGER NOT NULL,
    state BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sample_log (id INTEGER PRIMARY KEY, t REAL NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS mesh_snapshot (id INTEGER PRIMARY KEY, t REAL NOT NULL,
    payload TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS mesh_snapshot_t ON mesh_snapshot (t);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Coherence:
    """The three |T|² values and Δ_phase of one evaluation."""

    master: float
    emissary: float
    sync: float
    delta_phase: float

    def __post_init__(self) -> None:
        for name in ("master", "emissary", "sync", "delta_phase"):
            if not math.isfinite(getattr(self, name)):
                raise InputError(name, f"must be finite, got {getattr(self, name)!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CoherencePoint:
    """One stored point of coherence history at stream time ``t`` (seconds).

    ``step`` is 0 for a raw point, else the width of the bucket it averages (``n`` points).
    """

    t: float
    coherence: Coherence
    phase: float
    step: float = 0.0
    n: int = 1


def _npy(array: NDArray[Any]) -> bytes:
    """``.npy`` bytes (format 1.0, read back by ``np.load``) of a replay batch.

    float64 and complex128 batches (all the cell logs) get the header written directly, which
    is ~10x cheaper than ``np.save`` for a batch of a few thousand samples; other dtypes go
    through ``np.save``.
    """
    a = np.ascontiguousarray(array)
    if a.dtype.str not in ("<f8", "<c16") or len(a.shape) > 8:
        buf = io.BytesIO()
        np.save(buf, a, allow_pickle=False)
        return buf.getvalue()
    text = f"{{'descr': '{a.dtype.str}', 'fortran_order': False, 'shape': {a.shape!r}, }}"
    text += " " * (-(len(_NPY_MAGIC) + 2 + len(text) + 1) % 64) + "\n"
    head = text.encode("latin1")
    return _NPY_MAGIC + len(head).to_bytes(2, "little") + head + a.tobytes()


class _Checkpointer:
    """Runs WAL checkpoints on its own connection and thread, off the ingest path.

    The writer turns SQLite's automatic checkpoints off (they run inside a commit and stall
    ingest for tens of ms); this thread copies the WAL back into the database with PASSIVE
    checkpoints, which never block the writer, every ``interval`` seconds or when poked. The
    sqlite3 module releases the GIL while SQLite works, so this uses the second core.
    """

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self.runs = 0
        self.errors = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"wal-checkpoint:{path.name}", daemon=True
        )
        self._thread.start()

    def poke(self) -> None:
        """Ask for a checkpoint soon (after a large write)."""
        self._wake.set()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout=1000")
            while not self._stop.is_set():
                self._wake.wait(self.interval)
                self._wake.clear()
                if self._stop.is_set():
                    break
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except sqlite3.DatabaseError:
                    self.errors += 1  # busy or locked: the next round tries again
        finally:
            db.close()

    def close(self) -> None:
        """Stop the thread (the caller checkpoints the rest with TRUNCATE)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)


class TemporalMemory:
    """The SQLite store of one cell (``DATA_DIR/memory.sqlite3``)."""

    #: Ask the checkpointer to run after this many commits, or after a signature write.
    POKE_EVERY = 64
    #: True for a store from :meth:`open_read_only`.
    _read_only = False

    def __init__(self, path: Path, retention: Retention | None = None) -> None:
        self.path = Path(path)
        self.retention = retention or Retention()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA journal_size_limit=67108864")
            self._db.execute("PRAGMA wal_autocheckpoint=0")  # see _Checkpointer
            self._db.executescript(_SCHEMA)
            self._init_meta()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot open temporal memory {self.path}: {exc}") from exc
        self._commits = 0
        self._checkpointer = _Checkpointer(self.path)

    def _init_meta(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise StorageError(f"{self.path}: schema {row[0]}, this version reads {SCHEMA_VERSION}")

    @classmethod
    def open_read_only(cls, path: Path) -> TemporalMemory:
        """An existing store opened for reading only (SQLite URI ``mode=ro``).

        Writes nothing and starts no checkpointer: it works beside a running writer (SQLite's
        usual ``-wal``/``-shm`` side files may appear) and on a read-only copy of a data dir
        (then opened ``immutable``, creating nothing). Raises ``StorageError`` if ``path`` is
        missing or not a cell database.
        """
        self = cls.__new__(cls)
        self.path = Path(path)
        self.retention = Retention()
        self._read_only = True
        self._commits = 0
        if not self.path.is_file():
            raise StorageError(f"no cell database at {self.path}")
        try:
            uri = self.path.resolve().as_uri() + "?mode=ro"
            wal = self.path.with_name(self.path.name + "-wal")
            if not wal.exists() and not os.access(self.path.parent, os.W_OK):
                # SQLite cannot create -wal/-shm here, and no writer can be active without
                # them: read the file as it is (a read-only copy, read-only media).
                uri += "&immutable=1"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot read temporal memory {self.path}: {exc}") from exc
        if row is None or row[0] != SCHEMA_VERSION:
            self._db.close()
            raise StorageError(f"{self.path}: schema {row and row[0]}, this version reads "
                               f"{SCHEMA_VERSION}")  # fmt: skip
        return self

    def close(self) -> None:
        """Stop the checkpointer, checkpoint the whole WAL and close the file."""
        if self._read_only:
            self._db.close()
            return
        self._checkpointer.close()
        with contextlib.suppress(sqlite3.DatabaseError):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()

    def __enter__(self) -> TemporalMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------------

    def snapshot(
        self,
        t: float,
        coherence: Coherence,
        phase: float,
        witnesses: Sequence[WitnessRecord],
        *,
        head: ChainHead | None = None,
        samples: NDArray[Any] | None = None,
        signatures: Mapping[str, tuple[int, bytes]] | None = None,
        counters: Mapping[str, int] | None = None,
        wall: float | None = None,
        source: tuple[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Store one batch atomically: a coherence point at stream time ``t`` with its witnesses.

        ``samples`` go to the replay log; ``signatures`` (role → (samples, state bytes)) replace
        it (the log is cleared: the states already contain those samples). ``counters`` are the
        cell's running counts. ``source`` is (source key, position): how far the cell has read
        that source, stored with the batch so the two never disagree. Raises ``StorageError``
        (nothing stored) on failure.
        """
        if not (math.isfinite(t) and math.isfinite(phase)):
            raise InputError("t", f"time and phase must be finite, got {t!r}, {phase!r}")
        position = None if source is None else _source_json(source[1])
        with self._transaction():
            self._write_batch(t, coherence, phase, witnesses, head, samples, signatures)
            if source is not None and position is not None:
                self._put_meta(_SOURCE_PREFIX + source[0], position)
            if counters is not None or wall is not None:
                state = {"counters": dict(counters or {}), "wall": wall}
                self._put_meta("state", json.dumps(state, sort_keys=True))
        self._commits += 1
        if signatures or self._commits % self.POKE_EVERY == 0:
            self._checkpointer.poke()

    def _write_batch(
        self,
        t: float,
        c: Coherence,
        phase: float,
        witnesses: Sequence[WitnessRecord],
        head: ChainHead | None,
        samples: NDArray[Any] | None,
        signatures: Mapping[str, tuple[int, bytes]] | None,
    ) -> None:
        db = self._db
        db.executemany(
            "INSERT INTO witness (seq, level, time, kind, payload, prev_hash, hash, signer,"
            " signature) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (r.seq, r.level, r.time, r.kind, r.payload, r.prev_hash, r.hash, r.signer,
                 r.signature)
                for r in witnesses
            ],
        )  # fmt: skip
        if head is not None:
            db.execute(
                "INSERT OR REPLACE INTO chain_head VALUES (1, ?, ?, ?)",
                (head.count, head.hash, head.signature),
            )
        db.execute(
            "INSERT INTO coherence VALUES (?, 0, ?, ?, ?, ?, ?, 1)",
            (t, c.master, c.emissary, c.sync, c.delta_phase, phase),
        )
        if signatures:
            self._write_signatures(t, signatures)
        elif samples is not None and samples.size:
            db.execute("INSERT INTO sample_log (t, data) VALUES (?, ?)", (t, _npy(samples)))

    def checkpoint(self, t: float, signatures: Mapping[str, tuple[int, bytes]]) -> None:
        """Store engine signatures alone (at shutdown), clearing the replay log atomically."""
        with self._transaction():
            self._write_signatures(t, signatures)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction: committed whole or rolled back; SQLite errors → StorageError."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot write temporal memory {self.path}: {exc}") from exc

    def _write_signatures(self, t: float, signatures: Mapping[str, tuple[int, bytes]]) -> None:
        db = self._db
        for role, (count, state) in signatures.items():
            db.execute(
                "INSERT INTO signature (transducer, t, samples, state) VALUES (?, ?, ?, ?)",
                (role, t, count, state),
            )
            db.execute(
                "DELETE FROM signature WHERE transducer = ? AND id NOT IN (SELECT id FROM"
                " signature WHERE transducer = ? ORDER BY id DESC LIMIT ?)",
                (role, role, self.retention.signatures),
            )
        db.execute("DELETE FROM sample_log")
        self._compact(t)

    def _compact(self, now_t: float) -> None:
        """Fold raw points older than ``raw_seconds`` into buckets; drop very old history."""
        r = self.retention
        cut = math.floor((now_t - r.raw_seconds) / r.coarse_step) * r.coarse_step
        self._db.execute(
            "INSERT INTO coherence SELECT (CAST(t / :s AS INTEGER) + 0.5) * :s, :s, AVG(master),"
            " AVG(emissary), AVG(sync), AVG(delta_phase), AVG(phase), SUM(n) FROM coherence"
            " WHERE step = 0 AND t < :cut GROUP BY CAST(t / :s AS INTEGER)",
            {"s": r.coarse_step, "cut": cut},
        )
        self._db.execute("DELETE FROM coherence WHERE step = 0 AND t < ?", (cut,))
        self._db.execute(
            "DELETE FROM coherence WHERE step > 0 AND t < ?", (now_t - r.coarse_seconds,)
        )
        self._db.execute("DELETE FROM mesh_snapshot WHERE t < ?", (now_t - r.coarse_seconds,))

    def _put_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def mesh_snapshot(self, t: float, payload: Mapping[str, Any]) -> None:
        """Store a mesh-sync snapshot (JSON object) at stream time ``t``."""
        try:
            text = json.dumps(dict(payload), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError("payload", f"not a JSON object: {exc}") from exc
        self._exec("INSERT INTO mesh_snapshot (t, payload) VALUES (?, ?)", (t, text))

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"temporal memory {self.path}: {exc}") from exc

    # -- reading ---------------------------------------------------------------------------------

    def retrieve(self, start: float, end: float) -> list[CoherencePoint]:
        """Coherence history with ``start <= t <= end`` (stream seconds), oldest first."""
        rows = self._exec(
            "SELECT t, step, master, emissary, sync, delta_phase, phase, n FROM coherence"
            " WHERE t BETWEEN ? AND ? ORDER BY t, step",
            (start, end),
        )
        return [_point(row) for row in rows]

    def reconstruct_coherence(self, t: float) -> CoherencePoint:
        """Coherence at stream time ``t``, linearly interpolated between the stored neighbours.

        Raises ``InputError`` when ``t`` is outside the stored history.
        """
        before = self._exec(
            "SELECT t, step, master, emissary, sync, delta_phase, phase, n FROM coherence"
            " WHERE t <= ? ORDER BY t DESC, step LIMIT 1",
            (t,),
        )
        after = self._exec(
            "SELECT t, step, master, emissary, sync, delta_phase, phase, n FROM coherence"
            " WHERE t >= ? ORDER BY t, step LIMIT 1",
            (t,),
        )
        if not before or not after:
            raise InputError("t", f"{t} is outside the stored coherence history")
        a, b = _point(before[0]), _point(after[0])
        if b.t == a.t:
            return a
        w = (t - a.t) / (b.t - a.t)
        mix = {
            k: (1 - w) * getattr(a.coherence, k) + w * getattr(b.coherence, k)
            for k in ("master", "emissary", "sync", "delta_phase")
        }
        return CoherencePoint(
            t=t, coherence=Coherence(**mix), phase=(1 - w) * a.phase + w * b.phase, step=-1.0, n=0
        )

    def latest_signatures(self) -> dict[str, tuple[int, bytes]]:
        """Role → (samples, state bytes) of the newest signature of each transducer."""
        rows = self._exec(
            "SELECT transducer, samples, state FROM signature WHERE id IN"
            " (SELECT MAX(id) FROM signature GROUP BY transducer)"
        )
        return {role: (int(n), bytes(state)) for role, n, state in rows}

    def replay_log(self) -> Iterator[NDArray[Any]]:
        """Batches ingested since the newest signatures, oldest first."""
        for (data,) in self._exec("SELECT data FROM sample_log ORDER BY id"):
            try:
                yield np.load(io.BytesIO(data), allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise StorageError(f"{self.path}: damaged replay batch: {exc}") from exc

    def counters(self) -> dict[str, int]:
        """The running counts stored with the newest batch ({} for a new cell)."""
        row = self._exec("SELECT value FROM meta WHERE key = 'state'")
        if not row:
            return {}
        return {str(k): int(v) for k, v in json.loads(row[0][0])["counters"].items()}

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the store (one read transaction), even while another
        process commits batches: the head and the records it signs agree."""
        self._exec("BEGIN")
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.DatabaseError):
                self._db.execute("COMMIT")

    def source_position(self, key: str) -> dict[str, Any] | None:
        """The position stored for source ``key`` with the newest batch that read it."""
        row = self._exec("SELECT value FROM meta WHERE key = ?", (_SOURCE_PREFIX + key,))
        if not row:
            return None
        value = json.loads(row[0][0])
        return value if isinstance(value, dict) else None

    def chain_head(self) -> ChainHead | None:
        """The signed head stored with the newest batch."""
        row = self._exec("SELECT count, hash, signature FROM chain_head WHERE id = 1")
        if not row:
            return None
        return ChainHead(count=int(row[0][0]), hash=str(row[0][1]), signature=bytes(row[0][2]))

    def witness_count(self) -> int:
        """Number of stored witness records."""
        return int(self._exec("SELECT COUNT(*) FROM witness")[0][0])

    def witnesses(self, *, start: int = 0, limit: int | None = None) -> Iterator[WitnessRecord]:
        """Stored witness records in stored order, from position ``start`` (0-based)."""
        sql = (
            "SELECT seq, level, time, kind, payload, prev_hash, hash, signer, signature"
            " FROM witness ORDER BY pos LIMIT ? OFFSET ?"
        )
        try:
            cursor = self._db.execute(sql, (-1 if limit is None else limit, start))
            for row in cursor:
                yield _record(row)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"temporal memory {self.path}: {exc}") from exc

    def mesh_snapshots(self, start: float, end: float) -> list[tuple[float, dict[str, Any]]]:
        """Mesh-sync snapshots with ``start <= t <= end``."""
        rows = self._exec(
            "SELECT t, payload FROM mesh_snapshot WHERE t BETWEEN ? AND ? ORDER BY t", (start, end)
        )
        return [(float(t), json.loads(p)) for t, p in rows]

    def integrity_check(self) -> str:
        """SQLite's own ``PRAGMA integrity_check`` result (``"ok"`` when sound; else its first
        ten findings joined by ``"; "``)."""
        return "; ".join(str(row[0]) for row in self._exec("PRAGMA integrity_check(10)"))


def _source_json(position: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(position), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError("source", f"position is not JSON: {exc}") from exc


def _point(row: Sequence[Any]) -> CoherencePoint:
    t, step, master, emissary, sync, delta, phase, n = row
    c = Coherence(master=master, emissary=emissary, sync=sync, delta_phase=delta)
    return CoherencePoint(t=float(t), coherence=c, phase=float(phase), step=float(step), n=int(n))


def _record(row: Sequence[Any]) -> WitnessRecord:
    seq, level, time, kind, payload, prev, digest, signer, sig = row
    try:
        return WitnessRecord(
            seq=int(seq),
            level=str(level),
            time=float(time),
            kind=str(kind),
            payload=str(payload),
            prev_hash=str(prev),
            hash=str(digest),
            signer=str(signer),
            signature=bytes(sig) if isinstance(sig, bytes | memoryview) else str(sig).encode(),
        )
    except (TypeError, ValueError) as exc:
        raise StorageError(f"unreadable witness record at seq {seq}: {exc}") from exc
