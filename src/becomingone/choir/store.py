"""Choir's content store: message text, embeddings and payloads, and each thread's co-authors.

Rule: the ledger is the truth and the store follows it (written after the ledger commits;
:mod:`becomingone.choir.reconcile` repairs it). :class:`ContentStore` is the protocol;
:class:`QdrantStore` is its adapter over ``qdrant-client``, in local mode under a directory
(one process at a time) or against a Qdrant server by URL. Embedding is the caller's
function; this module stores and searches vectors, it does not make them.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from becomingone.errors import InputError, StorageError

__all__ = [
    "PUBLISHED",
    "STORE_HELD",
    "ContentStore",
    "Hit",
    "QdrantStore",
    "StoredMessage",
    "StoredThread",
    "copy_store",
    "point_id",
]

#: The status of a co-author's post (a spec's status is its :class:`SpecStatus` value).
PUBLISHED = "published"
#: In the ``StorageError`` of a store another process holds (either embedded engine allows one).
STORE_HELD = "is open in another process"
_MESSAGES = "choir_messages"
_THREADS = "choir_threads"
_NAMESPACE = uuid.UUID("6f1c1e4a-3f0b-5d7e-9a51-0c401a6e0b12")


def point_id(kind: str, key: str) -> str:
    """The store's point id of a message or thread id (a UUID; Qdrant takes no free strings).

    >>> point_id("message", "m1") == point_id("message", "m1") != point_id("thread", "m1")
    True
    """
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{key}"))


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredMessage:
    """One message as the store keeps it: the payload and the text (the vector is separate).

    ``status`` is ``"published"`` for a co-author's post, else the spec's status.
    """

    thread_id: str
    message_id: str
    author: str
    content_hash: str
    status: str
    created_at: float
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredThread:
    """A thread as the store sees it: its co-authors (user ids, sorted)."""

    thread_id: str
    coauthors: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """A search result: the message and its cosine similarity to the query."""

    message: StoredMessage
    score: float


class ContentStore(Protocol):
    """Where Choir keeps message text and embeddings, and its view of each thread."""

    @property
    def dim(self) -> int:
        """The vector size."""
        ...

    def put_messages(self, items: Sequence[tuple[StoredMessage, NDArray[Any]]]) -> None:
        """Insert or replace messages with their vectors (one batch)."""
        ...

    def set_status(self, message_id: str, status: str) -> None:
        """Change one message's status in its payload (``InputError`` for an unknown id)."""
        ...

    def delete_messages(self, message_ids: Iterable[str]) -> None:
        """Remove messages (unknown ids are ignored)."""
        ...

    def messages(self, *, thread: str | None = None) -> list[StoredMessage]:
        """Every message (of one thread), oldest first."""
        ...

    def get_messages(self, message_ids: Sequence[str]) -> list[StoredMessage]:
        """The messages with these ids that the store has (unknown ids are left out)."""
        ...

    def vectors(self, message_ids: Sequence[str]) -> NDArray[np.float64]:
        """The vectors of these messages (unit length), in this order, shape (N, dim)."""
        ...

    def put_thread(self, thread: StoredThread) -> None:
        """Insert or replace a thread's co-author view."""
        ...

    def threads(self) -> list[StoredThread]:
        """Every thread the store knows."""
        ...

    def thread(self, thread_id: str) -> StoredThread | None:
        """One thread's co-author view (None if the store lacks it)."""
        ...

    def delete_threads(self, thread_ids: Iterable[str]) -> None:
        """Remove threads (unknown ids are ignored)."""
        ...

    def search(
        self,
        vector: NDArray[Any],
        *,
        k: int,
        statuses: Sequence[str],
        thread: str | None = None,
    ) -> list[Hit]:
        """The ``k`` messages nearest ``vector`` among those with one of ``statuses``."""
        ...

    def close(self) -> None:
        """Release the store (local mode: its directory lock)."""
        ...


def payload(message: StoredMessage) -> dict[str, Any]:
    """A message's payload in the store (every field of :class:`StoredMessage`)."""
    return {
        "thread_id": message.thread_id,
        "message_id": message.message_id,
        "author": message.author,
        "content_hash": message.content_hash,
        "status": message.status,
        "created_at": message.created_at,
        "text": message.text,
    }


def checked_vector(vector: NDArray[Any], dim: int) -> list[float]:
    """``vector`` scaled to unit length, as a list of ``dim`` floats, or ``InputError``.

    The store is cosine, so the length carries nothing; normalising here makes
    :meth:`ContentStore.vectors` answer the same in every engine (local mode normalised in
    memory but gave the raw vector back after a reopen).
    """
    vec = np.asarray(vector, dtype=np.float64).reshape(-1)
    if vec.shape != (dim,) or not np.all(np.isfinite(vec)):
        raise InputError("vector", f"must be {dim} finite numbers")
    norm = float(np.linalg.norm(vec))
    return [float(x) for x in (vec / norm if norm > 0 else vec)]


def check_k(k: int) -> None:
    """``InputError`` unless ``k`` (how many hits) is positive."""
    if k < 1:
        raise InputError("k", f"must be a positive integer, got {k}")


def not_stored(message_ids: Iterable[str]) -> InputError:
    """The error for messages the store does not have."""
    return InputError("message", f"not in the content store: {', '.join(message_ids)}")


def message_of(payload: dict[str, Any]) -> StoredMessage:
    return StoredMessage(
        thread_id=str(payload["thread_id"]),
        message_id=str(payload["message_id"]),
        author=str(payload["author"]),
        content_hash=str(payload["content_hash"]),
        status=str(payload["status"]),
        created_at=float(payload["created_at"]),
        text=str(payload.get("text", "")),
    )


def thread_payload(thread: StoredThread) -> dict[str, Any]:
    """A thread's payload in the store (its co-authors sorted)."""
    return {"thread_id": thread.thread_id, "coauthors": sorted(thread.coauthors)}


def thread_of(payload: dict[str, Any]) -> StoredThread:
    """The :class:`StoredThread` of a stored thread payload."""
    coauthors = tuple(sorted(str(c) for c in payload["coauthors"]))
    return StoredThread(thread_id=str(payload["thread_id"]), coauthors=coauthors)


class _OneCallAtATime:
    """A client whose calls run one at a time. Qdrant's local mode keeps its collections in
    plain Python/NumPy structures that are not safe across threads (the API serves the store
    from a thread pool): concurrent upserts and searches lost points and raised IndexError."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


class QdrantStore:
    """A :class:`ContentStore` in Qdrant: ``path`` (local mode) or ``url`` (a server).

    Local mode allows one process per directory; a second one gets a ``StorageError`` saying
    so. Writes in local mode commit per call, so batches go in one :meth:`put_messages`; its
    calls are serialized (it is not thread-safe), a server's are not.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = QdrantStore(path=Path(d), dim=2)
    ...     m = StoredMessage(thread_id="t", message_id="m", author="a", content_hash="0" * 64,
    ...                       status="published", created_at=0.0, text="hi")
    ...     store.put_messages([(m, np.array([1.0, 0.0]))])
    ...     [hit] = store.search(np.array([1.0, 0.1]), k=1, statuses=["published"])
    ...     store.close()
    >>> hit.message.text, round(hit.score, 3)
    ('hi', 0.995)
    """

    def __init__(self, *, path: Path | None = None, url: str | None = None, dim: int) -> None:
        if (path is None) == (url is None):
            raise InputError("store", "give exactly one of a path (local mode) or a URL")
        if dim < 1:
            raise InputError("dim", f"must be positive, got {dim}")
        from qdrant_client import QdrantClient

        self._dim = dim
        self.where = str(path) if path is not None else str(url)
        try:
            if path is not None:
                path.mkdir(parents=True, exist_ok=True)
                self._client: Any = _OneCallAtATime(QdrantClient(path=str(path)))
            else:
                self._client = QdrantClient(url=url, timeout=10)
            self._ensure()
        except RuntimeError as exc:
            if "already accessed" in str(exc):
                raise StorageError(
                    f"content store {self.where} {STORE_HELD}"
                    " (local mode allows one; stop it or use a Qdrant server with --store URL)"
                ) from None
            raise StorageError(f"content store {self.where}: {exc}") from None
        except (OSError, ValueError) as exc:
            raise StorageError(f"content store {self.where}: {exc}") from None
        except Exception as exc:  # qdrant's HTTP errors have no common public base
            raise StorageError(f"content store {self.where}: {type(exc).__name__}: {exc}") from None

    def _ensure(self) -> None:
        from qdrant_client import models

        if not self._client.collection_exists(_MESSAGES):
            params = models.VectorParams(size=self._dim, distance=models.Distance.COSINE)
            self._client.create_collection(_MESSAGES, vectors_config=params)
        else:
            info = self._client.get_collection(_MESSAGES).config.params.vectors
            size = getattr(info, "size", None)
            if size != self._dim:
                raise StorageError(
                    f"content store {self.where} holds vectors of size {size}, not {self._dim}"
                )
        if not self._client.collection_exists(_THREADS):
            self._client.create_collection(_THREADS, vectors_config={})

    @property
    def dim(self) -> int:
        """The vector size."""
        return self._dim

    def put_messages(self, items: Sequence[tuple[StoredMessage, NDArray[Any]]]) -> None:
        """Insert or replace messages with their vectors in one upsert."""
        from qdrant_client import models

        points = [
            models.PointStruct(
                id=point_id("message", m.message_id),
                vector=checked_vector(v, self._dim),
                payload=payload(m),
            )
            for m, v in items
        ]
        if points:
            self._client.upsert(_MESSAGES, points=points, wait=True)

    def set_status(self, message_id: str, status: str) -> None:
        """Change one message's status in its payload."""
        pid = point_id("message", message_id)
        try:
            self._client.set_payload(_MESSAGES, payload={"status": status}, points=[pid], wait=True)
        except KeyError:  # local mode's answer for an unknown point
            raise not_stored([message_id]) from None
        except Exception as exc:  # a server's: 404 (qdrant-client's UnexpectedResponse)
            if getattr(exc, "status_code", None) == 404:
                raise not_stored([message_id]) from None
            raise

    def delete_messages(self, message_ids: Iterable[str]) -> None:
        """Remove messages."""
        ids: list[Any] = [point_id("message", m) for m in message_ids]
        if ids:
            self._client.delete(_MESSAGES, points_selector=ids, wait=True)

    def _filter(self, thread: str | None, statuses: Sequence[str] = ()) -> Any:
        from qdrant_client import models

        must: list[Any] = []
        if thread is not None:
            must.append(
                models.FieldCondition(key="thread_id", match=models.MatchValue(value=thread))
            )
        if statuses:
            match = models.MatchAny(any=list(statuses))
            must.append(models.FieldCondition(key="status", match=match))
        return models.Filter(must=must) if must else None

    def _scroll(self, collection: str, flt: Any, vectors: bool = False) -> list[Any]:
        out: list[Any] = []
        offset = None
        while True:
            page, offset = self._client.scroll(
                collection,
                scroll_filter=flt,
                limit=1000,
                offset=offset,
                with_payload=True,
                with_vectors=vectors,
            )
            out.extend(page)
            if offset is None:
                return out

    def messages(self, *, thread: str | None = None) -> list[StoredMessage]:
        """Every message (of one thread), oldest first."""
        found = [message_of(p.payload or {}) for p in self._scroll(_MESSAGES, self._filter(thread))]
        return sorted(found, key=lambda m: (m.created_at, m.message_id))

    def get_messages(self, message_ids: Sequence[str]) -> list[StoredMessage]:
        """The messages with these ids that the store has, in no particular order."""
        ids: list[Any] = [point_id("message", m) for m in message_ids]
        if not ids:
            return []
        return [message_of(p.payload or {}) for p in self._client.retrieve(_MESSAGES, ids)]

    def vectors(self, message_ids: Sequence[str]) -> NDArray[np.float64]:
        """The vectors of these messages, in this order (``InputError`` for an unknown one)."""
        ids = [point_id("message", m) for m in message_ids]
        got = {
            str(p.id): p.vector for p in self._client.retrieve(_MESSAGES, ids, with_vectors=True)
        }
        missing = [m for m, i in zip(message_ids, ids, strict=True) if i not in got]
        if missing:
            raise not_stored(missing)
        rows = [np.asarray(got[i], dtype=np.float64) for i in ids]
        return np.vstack(rows) if rows else np.zeros((0, self._dim))

    def put_thread(self, thread: StoredThread) -> None:
        """Insert or replace a thread's co-author view."""
        from qdrant_client import models

        point = models.PointStruct(
            id=point_id("thread", thread.thread_id), vector={}, payload=thread_payload(thread)
        )
        self._client.upsert(_THREADS, points=[point], wait=True)

    def threads(self) -> list[StoredThread]:
        """Every thread the store knows, by id."""
        found = [thread_of(p.payload or {}) for p in self._scroll(_THREADS, None)]
        return sorted(found, key=lambda t: t.thread_id)

    def thread(self, thread_id: str) -> StoredThread | None:
        """One thread's co-author view (None if the store lacks it)."""
        found = self._client.retrieve(_THREADS, [point_id("thread", thread_id)])
        if not found:
            return None
        return thread_of(found[0].payload or {})

    def delete_threads(self, thread_ids: Iterable[str]) -> None:
        """Remove threads."""
        ids: list[Any] = [point_id("thread", t) for t in thread_ids]
        if ids:
            self._client.delete(_THREADS, points_selector=ids, wait=True)

    def search(
        self,
        vector: NDArray[Any],
        *,
        k: int,
        statuses: Sequence[str],
        thread: str | None = None,
    ) -> list[Hit]:
        """The ``k`` nearest messages (cosine) with one of ``statuses``, best first."""
        check_k(k)
        query = np.asarray(vector, dtype=np.float64).reshape(-1).tolist()
        result = self._client.query_points(
            _MESSAGES,
            query=query,
            query_filter=self._filter(thread, statuses),
            limit=k,
            with_payload=True,
        )
        points = result.points
        return [Hit(message=message_of(p.payload or {}), score=float(p.score)) for p in points]

    def close(self) -> None:
        """Release the client (and in local mode the directory)."""
        self._client.close()


def copy_store(source: ContentStore, target: ContentStore, *, batch: int = 1000) -> int:
    """Copy every message (with its vector) and thread view of ``source`` into ``target``, in
    batches of ``batch`` messages; the number of messages copied."""
    messages = source.messages()
    for start in range(0, len(messages), batch):
        chunk = messages[start : start + batch]
        vectors = source.vectors([m.message_id for m in chunk])
        target.put_messages(list(zip(chunk, vectors, strict=True)))
    for thread in source.threads():
        target.put_thread(thread)
    return len(messages)
