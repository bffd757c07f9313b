"""Keeping the content store equal to the ledger: the outbox, the drift between them, repair.

Rule: the ledger is the truth. A writer puts the message text in the :class:`Outbox` (a file
per message id, fsynced) *before* the ledger transaction, and the store gets the message
*after* it commits, through :func:`reconcile`, the same code that ``choir check --repair``
runs. A crash between the two leaves the ledger with a message the store lacks and its text in
the outbox; :func:`drift` finds it and :func:`repair` writes it. :func:`drift` is pure;
:func:`repair` touches only the store and the outbox.
"""

from __future__ import annotations

import enum
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from becomingone.choir.ledger import Ledger
from becomingone.choir.store import PUBLISHED, ContentStore, StoredMessage, StoredThread
from becomingone.choir.tx import content_hash
from becomingone.errors import InputError, StorageError

__all__ = [
    "STALE_OUTBOX_S",
    "Drift",
    "DriftKind",
    "Embed",
    "Expected",
    "Outbox",
    "RepairReport",
    "drift",
    "expected",
    "expected_messages",
    "reconcile",
    "reconcile_messages",
    "repair",
]

_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: An outbox text older than this (seconds) whose message the ledger never got is removed.
STALE_OUTBOX_S = 600.0
#: A function from texts to their vectors, shape (N, dim).
Embed = Callable[[Sequence[str]], NDArray[Any]]


class DriftKind(enum.Enum):
    """How the store differs from the ledger."""

    MISSING = "missing"  # a ledger message the store lacks
    EXTRA = "extra"  # a store message the ledger does not have
    CONTENT = "content"  # content_hash differs
    STATUS = "status"  # only the status differs
    PAYLOAD = "payload"  # thread, author or created_at differs
    COAUTHORS = "coauthors"  # a thread's co-authors differ (or the store lacks the thread)
    EXTRA_THREAD = "extra-thread"  # a thread the ledger does not have


@dataclass(frozen=True, slots=True, kw_only=True)
class Drift:
    """One difference: its kind, the thread and message, and what each side says."""

    kind: DriftKind
    thread_id: str
    message_id: str | None
    ledger: str
    store: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Expected:
    """The store's content as the ledger implies it (texts aside)."""

    messages: dict[str, StoredMessage]
    threads: dict[str, StoredThread]


@dataclass(frozen=True, slots=True, kw_only=True)
class RepairReport:
    """What :func:`repair` did: drifts fixed, and those it could not fix (text lost)."""

    fixed: tuple[Drift, ...]
    unfixable: tuple[Drift, ...]


class Outbox:
    """Message texts waiting for the store: ``<dir>/<message id>.txt``, written before the ledger.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     box = Outbox(Path(d))
    ...     box.put("m1", "hello")
    ...     print(box.get("m1"), box.ids())
    ...     box.remove("m1")
    ...     print(box.get("m1"))
    hello ['m1']
    None
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, message_id: str) -> Path:
        if not _ID.fullmatch(message_id):
            raise InputError(
                "message", f"must be an id of 1-64 of A-Z a-z 0-9 . _ -, got {message_id!r}"
            )
        return self.root / f"{message_id}.txt"

    def put(self, message_id: str, text: str) -> None:
        """Write the text durably (temporary file, fsync, rename)."""
        path = self._path(message_id)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(path)
        except OSError as exc:
            raise StorageError(f"outbox {self.root}: {exc}") from None

    def get(self, message_id: str) -> str | None:
        """The text waiting for ``message_id``, if any."""
        path = self._path(message_id)
        return path.read_text(encoding="utf-8") if path.exists() else None

    def remove(self, message_id: str) -> None:
        """Forget the text (it is in the store, or its transaction was refused)."""
        self._path(message_id).unlink(missing_ok=True)

    def age(self, message_id: str) -> float:
        """Seconds since the text was written."""
        return time.time() - self._path(message_id).stat().st_mtime

    def ids(self) -> list[str]:
        """Message ids waiting, sorted."""
        return sorted(p.stem for p in self.root.glob("*.txt")) if self.root.exists() else []


def expected(ledger: Ledger, *, thread: str | None = None) -> Expected:
    """What the store should hold: every post (``published``) and every spec (its status)."""
    messages: dict[str, StoredMessage] = {}
    for m in ledger.messages(thread=thread):
        messages[m.id] = StoredMessage(
            thread_id=m.thread,
            message_id=m.id,
            author=m.author,
            content_hash=m.content_hash,
            status=PUBLISHED,
            created_at=m.created_at,
            text="",
        )
    for s in ledger.specs(thread=thread):  # an approved spec is also a message: the spec wins
        messages[s.id] = StoredMessage(
            thread_id=s.thread,
            message_id=s.id,
            author=s.author,
            content_hash=s.content_hash,
            status=s.status.value,
            created_at=s.created_at,
            text="",
        )
    threads = ledger.threads() if thread is None else [t for t in [ledger.thread(thread)] if t]
    views = {
        t.id: StoredThread(thread_id=t.id, coauthors=tuple(sorted(t.coauthors))) for t in threads
    }
    return Expected(messages=messages, threads=views)


def _expected_message(ledger: Ledger, message_id: str) -> StoredMessage | None:
    spec = ledger.spec(message_id)  # an approved spec is also a message: the spec wins
    if spec is not None:
        return StoredMessage(
            thread_id=spec.thread,
            message_id=spec.id,
            author=spec.author,
            content_hash=spec.content_hash,
            status=spec.status.value,
            created_at=spec.created_at,
            text="",
        )
    m = ledger.message(message_id)
    if m is None:
        return None
    return StoredMessage(
        thread_id=m.thread,
        message_id=m.id,
        author=m.author,
        content_hash=m.content_hash,
        status=PUBLISHED,
        created_at=m.created_at,
        text="",
    )


def expected_messages(ledger: Ledger, *, thread: str, message_ids: Sequence[str]) -> Expected:
    """The part of :func:`expected` about ``message_ids`` and ``thread``'s co-authors only
    (a lookup per id: its cost does not grow with the thread)."""
    found = [_expected_message(ledger, mid) for mid in dict.fromkeys(message_ids)]
    views = {
        t.id: StoredThread(thread_id=t.id, coauthors=tuple(sorted(t.coauthors)))
        for t in [ledger.thread(thread)]
        if t is not None
    }
    return Expected(messages={m.message_id: m for m in found if m is not None}, threads=views)


def _message_drift(want: StoredMessage, have: StoredMessage) -> Drift | None:
    def d(kind: DriftKind, ledger: str, store: str) -> Drift:
        return Drift(
            kind=kind,
            thread_id=want.thread_id,
            message_id=want.message_id,
            ledger=ledger,
            store=store,
        )

    if want.content_hash != have.content_hash:
        return d(DriftKind.CONTENT, want.content_hash, have.content_hash)
    mine = (want.thread_id, want.author, want.created_at)
    theirs = (have.thread_id, have.author, have.created_at)
    if mine != theirs:
        return d(DriftKind.PAYLOAD, repr(mine), repr(theirs))
    if want.status != have.status:
        return d(DriftKind.STATUS, want.status, have.status)
    return None


def drift(
    want: Expected, messages: Sequence[StoredMessage], threads: Sequence[StoredThread]
) -> list[Drift]:
    """Every difference between the ledger's view ``want`` and the store's, in a stable order."""
    out: list[Drift] = []
    have = {m.message_id: m for m in messages}
    for mid, w in want.messages.items():
        h = have.get(mid)
        if h is None:
            out.append(
                Drift(
                    kind=DriftKind.MISSING,
                    thread_id=w.thread_id,
                    message_id=mid,
                    ledger=w.content_hash,
                    store="",
                )
            )
        elif (found := _message_drift(w, h)) is not None:
            out.append(found)
    for mid, h in have.items():
        if mid not in want.messages:
            out.append(
                Drift(
                    kind=DriftKind.EXTRA,
                    thread_id=h.thread_id,
                    message_id=mid,
                    ledger="",
                    store=h.content_hash,
                )
            )
    seen = {t.thread_id: t for t in threads}
    for tid, w_thread in want.threads.items():
        h_thread = seen.get(tid)
        if h_thread is None or h_thread.coauthors != w_thread.coauthors:
            store = "absent" if h_thread is None else ",".join(h_thread.coauthors)
            out.append(
                Drift(
                    kind=DriftKind.COAUTHORS,
                    thread_id=tid,
                    message_id=None,
                    ledger=",".join(w_thread.coauthors),
                    store=store,
                )
            )
    for tid in seen:
        if tid not in want.threads:
            out.append(
                Drift(
                    kind=DriftKind.EXTRA_THREAD, thread_id=tid, message_id=None, ledger="", store=""
                )
            )
    return sorted(out, key=lambda d: (d.thread_id, d.message_id or "", d.kind.value))


def _text_for(
    drift_: Drift, want: StoredMessage, have: StoredMessage | None, box: Outbox
) -> str | None:
    assert drift_.message_id is not None
    for text in (box.get(drift_.message_id), have.text if have else None):
        if text is not None and content_hash(text) == want.content_hash:
            return text
    return None


def repair(
    drifts: Sequence[Drift],
    want: Expected,
    stored: Sequence[StoredMessage],
    store: ContentStore,
    outbox: Outbox,
    embed: Embed,
) -> RepairReport:
    """Make the store follow the ledger; texts come from the outbox (or the store, if right).

    ``stored`` is the store's messages that ``drifts`` was computed from.
    """
    fixed: list[Drift] = []
    unfixable: list[Drift] = []
    have = {m.message_id: m for m in stored}
    writes: list[tuple[Drift, StoredMessage]] = []
    for d in drifts:
        if d.kind is DriftKind.EXTRA:
            store.delete_messages([d.message_id or ""])
        elif d.kind is DriftKind.STATUS:
            store.set_status(d.message_id or "", d.ledger)
        elif d.kind is DriftKind.COAUTHORS:
            store.put_thread(want.threads[d.thread_id])
        elif d.kind is DriftKind.EXTRA_THREAD:
            store.delete_threads([d.thread_id])
        else:
            w = want.messages[d.message_id or ""]
            text = _text_for(d, w, have.get(w.message_id), outbox)
            if text is None:
                unfixable.append(d)
                continue
            writes.append((d, StoredMessage(**{**_fields(w), "text": text})))
            continue
        fixed.append(d)
    if writes:
        vectors = embed([m.text for _, m in writes])
        store.put_messages([(m, vectors[i]) for i, (_, m) in enumerate(writes)])
        fixed.extend(d for d, _ in writes)
    for _, m in writes:
        outbox.remove(m.message_id)
    return RepairReport(fixed=tuple(fixed), unfixable=tuple(unfixable))


def _fields(m: StoredMessage) -> dict[str, Any]:
    return {name: getattr(m, name) for name in StoredMessage.__slots__}


def reconcile(
    ledger: Ledger, store: ContentStore, outbox: Outbox, embed: Embed, *, thread: str | None = None
) -> tuple[list[Drift], RepairReport]:
    """Compare (one thread, or all) and repair: the drift found and what was done about it."""
    want = expected(ledger, thread=thread)
    stored = store.messages(thread=thread)
    views = [t for t in store.threads() if thread is None or t.thread_id == thread]
    found = drift(want, stored, views)
    report = repair(found, want, stored, store, outbox, embed)
    if thread is None:  # texts whose transaction was refused or never committed
        for mid in outbox.ids():
            if mid not in want.messages and outbox.age(mid) > STALE_OUTBOX_S:
                outbox.remove(mid)
    return found, report


def reconcile_messages(
    ledger: Ledger,
    store: ContentStore,
    outbox: Outbox,
    embed: Embed,
    *,
    thread: str,
    message_ids: Sequence[str],
) -> tuple[list[Drift], RepairReport]:
    """What one write changed, compared and repaired: ``message_ids`` and ``thread``'s
    co-authors (a write's follow-up; :func:`reconcile` stays the full check).

    Reads a constant number of rows per id from the ledger and the store, whatever the
    thread's size; finds the same drift as :func:`reconcile` restricted to these ids.
    """
    want = expected_messages(ledger, thread=thread, message_ids=message_ids)
    stored = store.get_messages(list(dict.fromkeys(message_ids)))
    views = [t for t in [store.thread(thread)] if t is not None]
    found = drift(want, stored, views)
    return found, repair(found, want, stored, store, outbox, embed)
