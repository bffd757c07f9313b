"""Storage as one small protocol per aggregate, and the value types they exchange.

Rule: these are the only storage shapes the layers above may depend on. Every adapter
(in-memory, SQLite; JetStream and PostgreSQL later) passes the one conformance suite in
``tests/memory/conformance.py``; an adapter translates its backend's errors into
:class:`~becomingone.errors.StorageError` (a lost compare-and-set into
:class:`~becomingone.errors.CasConflict`) and rejects bad arguments with
:class:`~becomingone.errors.InputError` naming the parameter, before writing anything.
The protocols are synchronous: a network adapter runs its client on its own thread and
blocks with a timeout, so the same suite runs against every backend.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from becomingone.memory.store import CoherencePoint
from becomingone.witnessing.record import ChainHead, WitnessRecord

__all__ = [
    "AppendLog",
    "CasRecord",
    "CoherenceHistory",
    "ProtocolStateStore",
    "Signature",
    "SignatureStore",
    "Versioned",
    "WitnessLog",
]


class Versioned(NamedTuple):
    """A compare-and-set record as read: its ``value`` and the ``revision`` that wrote it."""

    value: bytes
    revision: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    """One stored engine signature: the ``transducer`` role, stream time ``t`` (s), the number
    of ``samples`` it has absorbed and its ``state`` bytes (``KairosState.to_bytes``)."""

    transducer: str
    t: float
    samples: int
    state: bytes


@runtime_checkable
class WitnessLog(Protocol):
    """The signed hash chain as stored: records by position (0-based) and the signed head.

    ``append`` stores records and the head that covers them in one atomic step: after a
    crash either both are there or neither. ``head.count`` must equal the new count.
    """

    def append(self, records: Sequence[WitnessRecord], head: ChainHead) -> None:
        """Store ``records`` after the existing ones and replace the head, atomically."""
        ...

    def read(self, start: int = 0, limit: int | None = None) -> Iterator[WitnessRecord]:
        """Records from position ``start`` (at most ``limit``), in stored order."""
        ...

    def count(self) -> int:
        """Number of stored records."""
        ...

    def head(self) -> ChainHead | None:
        """The stored signed head (``None`` before the first append)."""
        ...


@runtime_checkable
class SignatureStore(Protocol):
    """Engine signatures per transducer; only the newest ``retention.signatures`` are kept."""

    def put(self, t: float, signatures: Mapping[str, tuple[int, bytes]]) -> None:
        """Store role → (samples, state) at stream time ``t`` atomically, then apply retention."""
        ...

    def latest(self) -> dict[str, tuple[int, bytes]]:
        """Role → (samples, state) of the newest signature of each transducer."""
        ...

    def kept(self, transducer: str) -> list[Signature]:
        """Every stored signature of ``transducer``, oldest first."""
        ...


@runtime_checkable
class CoherenceHistory(Protocol):
    """Coherence points by stream time: raw for ``retention.raw_seconds``, then bucket means."""

    def add(self, point: CoherencePoint) -> None:
        """Store one raw point."""
        ...

    def compact(self, now: float) -> None:
        """Apply retention as of stream time ``now``: fold old raw points into bucket means,
        drop buckets older than ``retention.coarse_seconds``."""
        ...

    def retrieve(self, start: float, end: float) -> list[CoherencePoint]:
        """Points with ``start <= t <= end``, by time (raw before buckets at the same time)."""
        ...

    def reconstruct(self, t: float) -> CoherencePoint:
        """Coherence at ``t``, interpolated between stored neighbours; ``InputError`` outside."""
        ...


@runtime_checkable
class ProtocolStateStore(Protocol):
    """Named blobs of protocol state (``"cps"``, ``"epoch"``, ``"source"``), last write wins."""

    def get(self, name: str) -> bytes | None:
        """The blob stored under ``name`` (``None`` if never stored)."""
        ...

    def put(self, name: str, value: bytes) -> None:
        """Store one blob."""
        ...

    def put_many(self, blobs: Mapping[str, bytes]) -> None:
        """Store several blobs atomically: all of them or (on any error) none."""
        ...

    def names(self) -> list[str]:
        """Every stored name, sorted."""
        ...


@runtime_checkable
class CasRecord(Protocol):
    """Keyed records with optimistic concurrency, like a JetStream KV bucket.

    Every write gets a new revision, larger than any revision this store has handed out
    (also across keys and deletes), so a deleted and re-created key never repeats one.
    A write whose precondition fails raises :class:`~becomingone.errors.CasConflict` and
    changes nothing; of writers racing on the same revision exactly one wins.
    """

    def get(self, key: str) -> Versioned | None:
        """(value, revision) of ``key``, or ``None`` if absent."""
        ...

    def create(self, key: str, value: bytes) -> int:
        """Store ``key`` if absent; returns its revision. ``CasConflict`` if it exists."""
        ...

    def update(self, key: str, value: bytes, expected_revision: int) -> int:
        """Replace ``key`` iff its revision is ``expected_revision``; returns the new one."""
        ...

    def delete(self, key: str, expected_revision: int) -> None:
        """Remove ``key`` iff its revision is ``expected_revision``."""
        ...


@runtime_checkable
class AppendLog(Protocol):
    """An append-only log of byte entries with 1-based, gapless indexes (for consensus).

    ``append(entry, expected_last=n)`` succeeds only if the last index is ``n`` (like
    JetStream's expected-last-sequence), else :class:`~becomingone.errors.CasConflict`.
    """

    def append(self, entry: bytes, *, expected_last: int | None = None) -> int:
        """Append ``entry``; returns its index (the previous last index + 1)."""
        ...

    def read(self, start: int = 1, limit: int | None = None) -> list[bytes]:
        """Entries from index ``start`` on (at most ``limit``); [] past the end."""
        ...

    def last_index(self) -> int:
        """Index of the newest entry (0 when empty)."""
        ...
