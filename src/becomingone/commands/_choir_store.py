"""The content-store side of ``becomingone choir``: writing texts, ``check``, ``search``, coherence.

Rule: the ledger first, then the store. A message's text goes to the outbox, then its signed
transaction to the ledger, then :func:`~becomingone.choir.reconcile` writes the store for that
thread (the same code ``choir check --repair`` runs over every thread). Opens the store lazily
(either embedded engine allows one process) and says once on stderr when the embeddings are the
lexical fallback. A write while ``choir up`` serves the data dir (and so holds its store) stops
after the ledger: the text waits in the outbox and that server follows the ledger, writes the
store and pushes the events. Printing is the caller's (:mod:`becomingone.commands.choir`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from becomingone.analysis import AnalysisSettings, analyze_phase
from becomingone.choir import (
    PUBLISHED,
    STORE_HELD,
    ChoirHome,
    ContentStore,
    Drift,
    Embed,
    Ledger,
    SpecStatus,
    TxKind,
    drift,
    embedder,
    expected,
    reconcile,
)
from becomingone.core.encoders import phase_from_embeddings
from becomingone.errors import InputError, StorageError

__all__ = [
    "COHERENCE_MIN",
    "StoreSession",
    "check",
    "search",
    "thread_coherence",
    "write_message",
]

#: The text path's engine over one thread: one message per step, lag 1, window 8, hop 1.
_SETTINGS = AnalysisSettings(lag=1.0, window=8.0, hop=1.0)
#: Published messages a thread needs before it has a coherence (lag + window + 1).
COHERENCE_MIN = 10
_LEXICAL_NOTE = (
    "becomingone choir: note: the sentence-embedding model is not installed (extra 'text'):"
    " lexical embeddings (shared words, not meaning)"
)


class StoreSession:
    """The store and the embedder of one command, opened on first use and closed at the end."""

    def __init__(self, home: ChoirHome, url: str | None) -> None:
        self.home, self.url = home, url
        self._store: ContentStore | None = None
        self._embed: tuple[Embed, str] | None = None
        #: The pid and URL of the ``choir up`` that holds the store and follows this write.
        self.served_by: tuple[int, str] | None = None

    def open_for(self, *, write: bool) -> None:
        """Open the store; if ``choir up`` holds it and this is a write, leave it to that
        server (:attr:`served_by`, said once on stderr); otherwise a held store refuses."""
        try:
            self.open()
        except StorageError as exc:
            server = self.home.server() if write and self.url is None else None
            if server is None or STORE_HELD not in str(exc):
                raise
            self.served_by = server
            print(
                f"becomingone choir: note: `choir up` (pid {server[0]}, {server[1]}) holds the"
                " content store: this write goes to the ledger and the outbox, and that server"
                " brings its store and its WebSockets up to it",
                file=sys.stderr,
            )

    def open(self) -> ContentStore:
        """The content store (local under the data dir, or the server at ``url``), opened once."""
        if self._store is None:
            self._store = self.home.open_store(self.url)
        return self._store

    @property
    def store(self) -> ContentStore:
        """The content store, opened on first use."""
        return self.open()

    @property
    def embed(self) -> Embed:
        """The embedding function; the first use says so on stderr if it is the lexical one."""
        return self._embedder()[0]

    @property
    def embedding(self) -> str:
        """``"model"`` or ``"lexical"``."""
        return self._embedder()[1]

    def _embedder(self) -> tuple[Embed, str]:
        if self._embed is None:
            self._embed = embedder()
            if self._embed[1] == "lexical":
                print(_LEXICAL_NOTE, file=sys.stderr)
        return self._embed

    def follow(self, ledger: Ledger, thread: str) -> list[Drift]:
        """Bring the store's view of ``thread`` up to the ledger; what could not be fixed
        (nothing when the server in :attr:`served_by` does it)."""
        if self.served_by is not None:
            return []
        _, report = reconcile(ledger, self.store, self.home.outbox, self.embed, thread=thread)
        return list(report.unfixable)

    def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            self._store.close()
            self._store = None


def write_message(
    session: StoreSession,
    ledger: Ledger,
    actor: str,
    kind: TxKind,
    body: dict[str, Any],
    text: str,
    *,
    now: float,
    after_ledger: Callable[[], None] | None = None,
) -> None:
    """Post or submit ``text``: outbox, ledger, then the store (``after_ledger`` runs between).

    A refused transaction leaves nothing behind (its outbox text is removed).
    """
    message_id = str(body["message"] if kind is TxKind.POST else body["spec"])
    if session.served_by is None:  # first: a held store refuses before the ledger changes
        session.open()
    outbox = session.home.outbox
    outbox.put(message_id, text)
    try:
        session.home.act(ledger, actor, kind, body, now=now)
    except BaseException:
        outbox.remove(message_id)
        raise
    if after_ledger is not None:
        after_ledger()
    session.follow(ledger, str(body["thread"]))


def _drift_row(d: Drift) -> dict[str, Any]:
    return {
        "kind": d.kind.value,
        "thread": d.thread_id,
        "message": d.message_id,
        "ledger": d.ledger,
        "store": d.store,
    }


def check(session: StoreSession, ledger: Ledger, *, repair: bool) -> dict[str, Any]:
    """Compare every thread and message of the ledger with the store; repair if asked."""
    want = expected(ledger)
    if repair:
        found, report = reconcile(ledger, session.store, session.home.outbox, session.embed)
        left = list(report.unfixable)
    else:
        found = drift(want, session.store.messages(), session.store.threads())
        left = found
    return {
        "threads": len(want.threads),
        "messages": len(want.messages),
        "drift": [_drift_row(d) for d in found],
        "repaired": len(found) - len(left) if repair else 0,
        "remaining": [_drift_row(d) for d in left],
        "embedding": session.embedding if repair and found else None,
        "ok": not left,
    }


def search(
    session: StoreSession, ledger: Ledger, text: str, *, thread: str | None, k: int
) -> dict[str, Any]:
    """The ``k`` published messages (posts and approved specs) nearest ``text`` in meaning."""
    if not text.strip():
        raise InputError("text", "must not be empty")
    if thread is not None and ledger.thread(thread) is None:
        raise InputError("thread", f"unknown thread {thread}")
    query = session.embed([text])[0]
    statuses = [PUBLISHED, SpecStatus.APPROVED.value]
    hits = session.store.search(query, k=k, statuses=statuses, thread=thread)
    names = {u.id: u.name for u in ledger.users()}
    return {
        "query": text,
        "embedding": session.embedding,
        "hits": [
            {
                "score": round(h.score, 4),
                "thread": h.message.thread_id,
                "message": h.message.message_id,
                "author": names.get(h.message.author, h.message.author),
                "text": h.message.text,
            }
            for h in hits
        ],
    }


def thread_coherence(session: StoreSession, thread: str) -> float | None:
    """The KAIROS coherence of a thread's published messages (the ``analyze`` text path: one
    message per step), the last window's; ``None`` below :data:`COHERENCE_MIN` messages."""
    statuses = {PUBLISHED, SpecStatus.APPROVED.value}
    ids = [m.message_id for m in session.store.messages(thread=thread) if m.status in statuses]
    if len(ids) < COHERENCE_MIN:
        return None
    vectors = session.store.vectors(ids)
    result = analyze_phase(
        phase_from_embeddings(vectors), 1.0, _SETTINGS, kind="text", with_map=False
    )
    return round(float(result.coherence[-1]), 4)
