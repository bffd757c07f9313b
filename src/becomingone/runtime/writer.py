"""The cell's batch writer: signs each batch's witness records and chain head, then commits the
batch in one SQLite transaction, strictly in ingest order, on one worker thread.

Rule: the ingest path computes everything deterministic (engines, Sync decision, linked witness
records, head count and hash, replay rows or engine signatures) and hands over one finished,
immutable :class:`BatchWrite`; the writer only signs and stores it. At most ``depth`` batches
are handed over and not yet committed: :meth:`BatchWriter.submit` waits for the oldest when the
queue is full (backpressure). ``depth == 0`` writes on the caller's thread (no worker). The first
failure stops the writer for good: later batches are not written (they would leave a gap in the
chain) and the error is raised once to the caller of :meth:`~BatchWriter.submit`,
:meth:`~BatchWriter.flush` or :meth:`~BatchWriter.close`; after that every submit raises
``StorageError``.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from numpy.typing import NDArray

from becomingone.errors import StorageError
from becomingone.keys import NodeKey
from becomingone.memory.store import Coherence, TemporalMemory
from becomingone.witnessing import WitnessRecord, sign_head, sign_record

__all__ = ["BatchWrite", "BatchWriter"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchWrite:
    """One batch for the store: what :meth:`TemporalMemory.snapshot` takes, records unsigned.

    ``count`` and ``last_hash`` are the chain after ``records`` (the head to sign). ``samples``
    must not be written to after submission (the cell hands over its own copy).
    """

    t: float
    coherence: Coherence
    phase: float
    records: tuple[WitnessRecord, ...]
    count: int
    last_hash: str
    samples: NDArray[Any] | None
    signatures: Mapping[str, tuple[int, bytes]] | None
    counters: Mapping[str, int]
    wall: float


def write_batch(memory: TemporalMemory, key: NodeKey, job: BatchWrite) -> list[WitnessRecord]:
    """Sign ``job``'s records and head with ``key`` and store the batch (one transaction)."""
    signed = [r if r.signature else sign_record(key, r) for r in job.records]
    memory.snapshot(
        job.t,
        job.coherence,
        job.phase,
        signed,
        head=sign_head(key, job.count, job.last_hash),
        samples=job.samples,
        signatures=job.signatures,
        counters=job.counters,
        wall=job.wall,
    )
    return signed


class BatchWriter:
    """Writes :class:`BatchWrite` jobs to ``memory`` in order, ``depth`` of them in flight."""

    def __init__(self, memory: TemporalMemory, key: NodeKey, depth: int) -> None:
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        self.memory = memory
        self.key = key
        self.depth = depth
        self._pending: collections.deque[cf.Future[list[WitnessRecord]]] = collections.deque()
        self._pool = (
            cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="cell-writer")
            if depth
            else None
        )
        self._error: BaseException | None = None
        self._raised = False
        self.waits = 0  # submits that had to wait for the writer (queue full)

    @property
    def failed(self) -> bool:
        """True once a write failed (the store then holds only the batches before it)."""
        return self._error is not None

    @property
    def pending(self) -> int:
        """Batches handed over and not yet committed (or failed)."""
        while self._pending and self._pending[0].done():
            self._pending.popleft()
        return len(self._pending)

    def submit(self, job: BatchWrite) -> cf.Future[list[WitnessRecord]]:
        """Queue ``job`` (waiting while ``depth`` batches are in flight); its future gives the
        signed records once committed. Raises the writer's failure, if any."""
        self._check()
        if self._pool is None:
            done: cf.Future[list[WitnessRecord]] = cf.Future()
            try:
                done.set_result(self._run(job))
            except BaseException:
                self._raised = True  # raised right here, to the caller
                raise
            return done
        while self.pending >= self.depth:
            self.waits += 1
            cf.wait([self._pending[0]])
        self._check()
        future = self._pool.submit(self._run, job)
        self._pending.append(future)
        return future

    def result(self, future: cf.Future[list[WitnessRecord]]) -> list[WitnessRecord]:
        """Wait for one submitted batch; its signed records (raises the writer's failure)."""
        cf.wait([future])
        self._check()
        return future.result()

    def _run(self, job: BatchWrite) -> list[WitnessRecord]:
        if self._error is not None:
            raise StorageError("batch not written: an earlier batch failed") from self._error
        try:
            return write_batch(self.memory, self.key, job)
        except BaseException as exc:
            self._error = exc
            raise

    def _check(self) -> None:
        if self._error is None:
            return
        if not self._raised:
            self._raised = True
            raise self._error
        raise StorageError(
            f"{self.memory.path}: the cell stopped accepting batches after a failed write"
            f" ({self._error})"
        ) from self._error

    def wait_idle(self) -> None:
        """Wait until every submitted batch is committed or failed (raises nothing)."""
        cf.wait(list(self._pending))
        self._pending.clear()

    def flush(self) -> None:
        """Wait until every submitted batch is committed; raise the writer's failure, if any."""
        self.wait_idle()
        self._check()

    def close(self) -> None:
        """Flush, then stop the worker thread. Raises a failure not raised before."""
        try:
            self.wait_idle()
            if not self._raised:
                self._check()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
