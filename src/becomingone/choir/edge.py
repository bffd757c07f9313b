"""Choir's content store on qdrant-edge, Qdrant's embedded engine (``qdrant-edge-py``).

Rule: an adapter of :class:`~becomingone.choir.store.ContentStore` and nothing else — the same
payloads, point ids, errors and answers as :class:`~becomingone.choir.store.QdrantStore`, kept
under one directory as two shards: ``messages/`` (the vectors, cosine, with keyword indexes on
``thread_id`` and ``status``) and ``threads/`` (each thread's co-authors; a one-float
vector no search reads, since a shard needs one). Search is exact (brute force in Rust over the
filtered points): it returns what local mode returns, ~90x faster at 100 000 messages
(docs/choir.md). The engine is thread-safe (Rust locks; no Python-side serialization) and holds
a lock on each shard's write-ahead log, so one process at a time opens a directory. Every update
is in the WAL when it returns (it survives ``kill -9`` of the process; it is not fsynced per
write); :meth:`EdgeStore.close` flushes the segments. One payload key more than local mode:
``created_at_exact`` (see :data:`_EXACT_TIME`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from becomingone.choir.store import (
    STORE_HELD,
    Hit,
    StoredMessage,
    StoredThread,
    check_k,
    checked_vector,
    message_of,
    not_stored,
    payload,
    point_id,
    thread_of,
    thread_payload,
)
from becomingone.errors import InputError, StorageError

__all__ = ["EdgeStore", "edge_available"]

_MISSING = (
    "the content-store engine 'edge' needs the qdrant-edge-py package"
    " (pip install qdrant-edge-py), or set choir.store_engine: local"
)
_PAGE = 1000
#: The payload key of ``created_at`` written exactly: qdrant-edge 0.9 gives payload floats
#: back with 16 significant digits (1796241789.8651633 -> 1796241789.865163), so a time.time()
#: would differ from the ledger's and ``choir check`` would report drift. ``created_at`` stays
#: a number (for filters); this one is its ``repr``.
_EXACT_TIME = "created_at_exact"


def _payload(message: StoredMessage) -> dict[str, Any]:
    return {**payload(message), _EXACT_TIME: repr(message.created_at)}


def _message(row: dict[str, Any]) -> StoredMessage:
    found = message_of(row)
    if _EXACT_TIME not in row:
        return found
    return replace(found, created_at=float(row[_EXACT_TIME]))


def edge_available() -> bool:
    """Whether ``qdrant-edge-py`` is installed."""
    try:
        import qdrant_edge  # noqa: F401
    except ImportError:
        return False
    return True


def _engine() -> Any:
    try:
        import qdrant_edge
    except ImportError:
        raise StorageError(_MISSING) from None
    return qdrant_edge


class EdgeStore:
    """A :class:`~becomingone.choir.store.ContentStore` in qdrant-edge shards under ``path``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = EdgeStore(path=Path(d), dim=2)
    ...     m = StoredMessage(thread_id="t", message_id="m", author="a", content_hash="0" * 64,
    ...                       status="published", created_at=0.0, text="hi")
    ...     store.put_messages([(m, np.array([1.0, 0.0]))])
    ...     [hit] = store.search(np.array([1.0, 0.1]), k=1, statuses=["published"])
    ...     store.close()
    >>> hit.message.text, round(hit.score, 3)
    ('hi', 0.995)
    """

    def __init__(self, *, path: Path, dim: int) -> None:
        if dim < 1:
            raise InputError("dim", f"must be positive, got {dim}")
        qe = self._qe = _engine()
        self._dim = dim
        self.where = str(path)
        self._closed = threading.Event()
        cosine = qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)
        unused = qe.EdgeVectorParams(size=1, distance=qe.Distance.Dot)  # a shard needs one
        self._messages = self._open(path / "messages", cosine, indexes=("thread_id", "status"))
        try:
            self._threads = self._open(path / "threads", unused, indexes=())
        except BaseException:
            self._messages.close()
            raise

    def _open(self, where: Path, vectors: Any, *, indexes: Sequence[str]) -> Any:
        qe = self._qe
        config = qe.EdgeConfig(vectors=vectors)
        try:
            if (where / "edge_config.json").exists():
                return qe.EdgeShard.load(str(where), config)
            where.mkdir(parents=True, exist_ok=True)
            shard = qe.EdgeShard.create(str(where), config)
            for field in indexes:
                kind = qe.PayloadSchemaType.Keyword
                shard.update(qe.UpdateOperation.create_field_index(field, kind))
            return shard
        except OSError as exc:
            raise StorageError(f"content store {self.where}: {exc}") from None
        except Exception as exc:  # qdrant-edge raises plain Exception
            text = str(exc)
            if "WouldBlock" in text:
                raise StorageError(
                    f"content store {self.where} {STORE_HELD}"
                    " (the edge engine allows one; stop it or use a Qdrant server with --store URL)"
                ) from None
            if "expected vector size" in text:
                size = text.rsplit("got ", 1)[-1].strip()
                raise StorageError(
                    f"content store {self.where} holds vectors of size {size}, not {self._dim}"
                ) from None
            raise StorageError(f"content store {self.where}: {text}") from None

    def _call(self, shard: Any, method: str, *args: Any) -> Any:
        """``shard.method(*args)``, with the engine's errors as one-line ``StorageError``s."""
        if self._closed.is_set():
            raise StorageError(f"content store {self.where} is closed")
        try:
            return getattr(shard, method)(*args)
        except Exception as exc:
            raise StorageError(f"content store {self.where}: {exc}") from None

    @property
    def dim(self) -> int:
        """The vector size."""
        return self._dim

    def put_messages(self, items: Sequence[tuple[StoredMessage, NDArray[Any]]]) -> None:
        """Insert or replace messages with their vectors in one upsert."""
        qe = self._qe
        points = [
            qe.Point(
                id=point_id("message", m.message_id),
                vector=checked_vector(v, self._dim),
                payload=_payload(m),
            )
            for m, v in items
        ]
        if points:
            self._call(self._messages, "update", qe.UpdateOperation.upsert_points(points))

    def set_status(self, message_id: str, status: str) -> None:
        """Change one message's status in its payload (``InputError`` for an unknown id)."""
        pid = point_id("message", message_id)
        op = self._qe.UpdateOperation.set_payload([pid], {"status": status})
        try:
            self._call(self._messages, "update", op)
        except StorageError as exc:
            if "No point with id" in str(exc):
                raise not_stored([message_id]) from None
            raise

    def delete_messages(self, message_ids: Iterable[str]) -> None:
        """Remove messages (unknown ids are ignored)."""
        ids = [point_id("message", m) for m in message_ids]
        if ids:
            self._call(self._messages, "update", self._qe.UpdateOperation.delete_points(ids))

    def _filter(self, thread: str | None, statuses: Sequence[str] = ()) -> Any:
        qe = self._qe
        must: list[Any] = []
        if thread is not None:
            must.append(qe.FieldCondition(key="thread_id", match=qe.MatchValue(thread)))
        if statuses:
            must.append(qe.FieldCondition(key="status", match=qe.MatchAny(any=list(statuses))))
        return qe.Filter(must=must) if must else None

    def _scroll(self, shard: Any, flt: Any) -> list[Any]:
        out: list[Any] = []
        offset = None
        for _ in range(1_000_000):  # bounded: each page moves the offset forward
            request = self._qe.ScrollRequest(
                offset=offset, limit=_PAGE, filter=flt, with_payload=True
            )
            page, offset = self._call(shard, "scroll", request)
            out.extend(page)
            if offset is None:
                break
        return out

    def messages(self, *, thread: str | None = None) -> list[StoredMessage]:
        """Every message (of one thread), oldest first."""
        rows = self._scroll(self._messages, self._filter(thread))
        found = [_message(p.payload or {}) for p in rows]
        return sorted(found, key=lambda m: (m.created_at, m.message_id))

    def get_messages(self, message_ids: Sequence[str]) -> list[StoredMessage]:
        """The messages with these ids that the store has, in no particular order."""
        ids = [point_id("message", m) for m in message_ids]
        if not ids:
            return []
        found = self._call(self._messages, "retrieve", ids, True, False)
        return [_message(p.payload or {}) for p in found]

    def vectors(self, message_ids: Sequence[str]) -> NDArray[np.float64]:
        """The vectors of these messages, in this order (``InputError`` for an unknown one)."""
        ids = [point_id("message", m) for m in message_ids]
        found = self._call(self._messages, "retrieve", ids, False, True) if ids else []
        got = {str(p.id): p.vector for p in found}
        missing = [m for m, i in zip(message_ids, ids, strict=True) if i not in got]
        if missing:
            raise not_stored(missing)
        rows = [np.asarray(got[i], dtype=np.float64) for i in ids]
        return np.vstack(rows) if rows else np.zeros((0, self._dim))

    def put_thread(self, thread: StoredThread) -> None:
        """Insert or replace a thread's co-author view."""
        qe = self._qe
        point = qe.Point(
            id=point_id("thread", thread.thread_id), vector=[1.0], payload=thread_payload(thread)
        )
        self._call(self._threads, "update", qe.UpdateOperation.upsert_points([point]))

    def threads(self) -> list[StoredThread]:
        """Every thread the store knows, by id."""
        found = [thread_of(p.payload or {}) for p in self._scroll(self._threads, None)]
        return sorted(found, key=lambda t: t.thread_id)

    def thread(self, thread_id: str) -> StoredThread | None:
        """One thread's co-author view (None if the store lacks it)."""
        found = self._call(self._threads, "retrieve", [point_id("thread", thread_id)], True, False)
        return thread_of(found[0].payload or {}) if found else None

    def delete_threads(self, thread_ids: Iterable[str]) -> None:
        """Remove threads (unknown ids are ignored)."""
        ids = [point_id("thread", t) for t in thread_ids]
        if ids:
            self._call(self._threads, "update", self._qe.UpdateOperation.delete_points(ids))

    def search(
        self,
        vector: NDArray[Any],
        *,
        k: int,
        statuses: Sequence[str],
        thread: str | None = None,
    ) -> list[Hit]:
        """The ``k`` nearest messages (cosine, exact) with one of ``statuses``, best first."""
        qe = self._qe
        check_k(k)
        query = np.asarray(vector, dtype=np.float64).reshape(-1).tolist()
        request = qe.QueryRequest(
            limit=k,
            query=qe.Query.Nearest(query),
            filter=self._filter(thread, statuses),
            params=qe.SearchParams(exact=True),
            with_payload=True,
        )
        found = self._call(self._messages, "query", request)
        return [Hit(message=_message(p.payload or {}), score=float(p.score)) for p in found]

    def close(self) -> None:
        """Flush both shards and release their directories (a second call does nothing)."""
        if self._closed.is_set():
            return
        self._closed.set()
        for shard in (self._messages, self._threads):
            try:
                shard.flush()
            finally:
                shard.close()
