"""In-memory adapters of every storage protocol: real implementations, not mocks.

Rule: each adapter validates its whole input before it changes anything, so a failed call
leaves no trace, and holds one lock per instance, so it is linearizable in one process. Nothing
survives the process: use them in tests, simulations and the in-process cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence

from becomingone.errors import CasConflict, InputError
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
from becomingone.memory.history import compact_points, interpolate
from becomingone.memory.protocols import Signature, Versioned
from becomingone.memory.retention import Retention
from becomingone.memory.store import CoherencePoint
from becomingone.witnessing.record import ChainHead, WitnessRecord

__all__ = [
    "MemoryAppendLog",
    "MemoryCasRecord",
    "MemoryCoherenceHistory",
    "MemoryProtocolState",
    "MemorySignatureStore",
    "MemoryWitnessLog",
]


class MemoryWitnessLog:
    """A :class:`~becomingone.memory.protocols.WitnessLog` in a list."""

    def __init__(self) -> None:
        self._records: list[WitnessRecord] = []
        self._head: ChainHead | None = None
        self._lock = threading.Lock()

    def append(self, records: Sequence[WitnessRecord], head: ChainHead) -> None:
        """Store ``records`` and ``head`` together."""
        with self._lock:
            self._records += check_append(records, head, len(self._records))
            self._head = head

    def read(self, start: int = 0, limit: int | None = None) -> Iterator[WitnessRecord]:
        """Records from position ``start``."""
        start, limit = check_index(start, "start", 0), check_limit(limit)
        with self._lock:
            end = len(self._records) if limit is None else start + limit
            return iter(self._records[start:end])

    def count(self) -> int:
        """Number of records."""
        return len(self._records)

    def head(self) -> ChainHead | None:
        """The stored head."""
        return self._head


class MemorySignatureStore:
    """A :class:`~becomingone.memory.protocols.SignatureStore` in a dict of lists."""

    def __init__(self, retention: Retention | None = None) -> None:
        self.retention = retention or Retention()
        self._kept: dict[str, list[Signature]] = {}
        self._lock = threading.Lock()

    def put(self, t: float, signatures: Mapping[str, tuple[int, bytes]]) -> None:
        """Store signatures at ``t``; keep the newest ``retention.signatures`` per role."""
        values = check_signatures(t, signatures)
        with self._lock:
            for sig in values:
                kept = self._kept.setdefault(sig.transducer, [])
                kept.append(sig)
                del kept[: -self.retention.signatures]

    def latest(self) -> dict[str, tuple[int, bytes]]:
        """Newest (samples, state) per role."""
        with self._lock:
            return {role: (s[-1].samples, s[-1].state) for role, s in self._kept.items()}

    def kept(self, transducer: str) -> list[Signature]:
        """Stored signatures of one role, oldest first."""
        with self._lock:
            return list(self._kept.get(transducer, ()))


class MemoryCoherenceHistory:
    """A :class:`~becomingone.memory.protocols.CoherenceHistory` in a list."""

    def __init__(self, retention: Retention | None = None) -> None:
        self.retention = retention or Retention()
        self._points: list[CoherencePoint] = []
        self._lock = threading.Lock()

    def add(self, point: CoherencePoint) -> None:
        """Store one raw point."""
        if not isinstance(point, CoherencePoint):
            raise InputError("point", f"must be a CoherencePoint, got {type(point).__name__}")
        check_finite(point.t, "t")
        check_finite(point.phase, "phase")
        with self._lock:
            self._points.append(point)

    def compact(self, now: float) -> None:
        """Apply retention at stream time ``now``."""
        now = check_finite(now, "now")
        with self._lock:
            self._points = compact_points(self._points, now, self.retention)

    def retrieve(self, start: float, end: float) -> list[CoherencePoint]:
        """Points with ``start <= t <= end`` by (t, step)."""
        with self._lock:
            out = [p for p in self._points if start <= p.t <= end]
        return sorted(out, key=lambda p: (p.t, p.step))

    def reconstruct(self, t: float) -> CoherencePoint:
        """Interpolated coherence at ``t``."""
        t = check_finite(t, "t")
        ordered = self.retrieve(float("-inf"), float("inf"))
        before = [p for p in ordered if p.t <= t]
        after = [p for p in ordered if p.t >= t]
        if not before or not after:
            raise InputError("t", f"{t} is outside the stored coherence history")
        newest = max(p.t for p in before)
        return interpolate(next(p for p in before if p.t == newest), after[0], t)


class MemoryProtocolState:
    """A :class:`~becomingone.memory.protocols.ProtocolStateStore` in a dict."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> bytes | None:
        """The blob under ``name``."""
        return self._blobs.get(check_key(name, "name"))

    def put(self, name: str, value: bytes) -> None:
        """Store one blob."""
        self.put_many({name: value})

    def put_many(self, blobs: Mapping[str, bytes]) -> None:
        """Store every blob, or none if one is invalid."""
        checked = {check_key(k, "name"): check_bytes(v, "value") for k, v in dict(blobs).items()}
        with self._lock:
            self._blobs.update(checked)

    def names(self) -> list[str]:
        """Stored names, sorted."""
        with self._lock:
            return sorted(self._blobs)


class MemoryCasRecord:
    """A :class:`~becomingone.memory.protocols.CasRecord` in a dict with a revision counter."""

    def __init__(self) -> None:
        self._records: dict[str, Versioned] = {}
        self._revision = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Versioned | None:
        """(value, revision) or ``None``."""
        return self._records.get(check_key(key))

    def create(self, key: str, value: bytes) -> int:
        """Store a new key."""
        key, value = check_key(key), check_bytes(value, "value")
        with self._lock:
            if key in self._records:
                raise CasConflict(key, None, self._records[key].revision)
            return self._write(key, value)

    def update(self, key: str, value: bytes, expected_revision: int) -> int:
        """Replace a key at ``expected_revision``."""
        key, value = check_key(key), check_bytes(value, "value")
        expected = check_revision(expected_revision)
        with self._lock:
            self._check(key, expected)
            return self._write(key, value)

    def delete(self, key: str, expected_revision: int) -> None:
        """Remove a key at ``expected_revision``."""
        key, expected = check_key(key), check_revision(expected_revision)
        with self._lock:
            self._check(key, expected)
            self._revision += 1
            del self._records[key]

    def _check(self, key: str, expected: int) -> None:
        current = self._records.get(key)
        if current is None or current.revision != expected:
            raise CasConflict(key, expected, None if current is None else current.revision)

    def _write(self, key: str, value: bytes) -> int:
        self._revision += 1
        self._records[key] = Versioned(value, self._revision)
        return self._revision


class MemoryAppendLog:
    """A :class:`~becomingone.memory.protocols.AppendLog` in a list; ``name`` labels conflicts."""

    def __init__(self, name: str = "log") -> None:
        self.name = check_key(name, "name")
        self._entries: list[bytes] = []
        self._lock = threading.Lock()

    def append(self, entry: bytes, *, expected_last: int | None = None) -> int:
        """Append one entry (iff the last index is ``expected_last``, when given)."""
        entry = check_bytes(entry, "entry")
        if expected_last is not None:
            check_index(expected_last, "expected_last", 0)
        with self._lock:
            last = len(self._entries)
            if expected_last is not None and expected_last != last:
                raise CasConflict(self.name, expected_last, last, what="last index")
            self._entries.append(entry)
            return last + 1

    def read(self, start: int = 1, limit: int | None = None) -> list[bytes]:
        """Entries from index ``start``."""
        start, limit = check_index(start, "start", 1), check_limit(limit)
        with self._lock:
            end = len(self._entries) if limit is None else start - 1 + limit
            return self._entries[start - 1 : end]

    def last_index(self) -> int:
        """Newest index (0 when empty)."""
        return len(self._entries)
