"""Choir behind the API: one ledger, one content store, users' tokens and the per-thread events.

Rule: :class:`ChoirService` owns the Choir home of one process — its ledger (one per process;
every call blocks, so the routes run them in a worker thread), its content store and the
users' bearer tokens (``<data dir>/choir/tokens/``, hashed by
:class:`~becomingone.api.tokens.TokenStore`; a token's name is ``<user id>.<8 hex>``). A user
acts over HTTP with a token and the service signs with the user's custodial key
(``<data dir>/choir/users/NAME.key``); a pre-signed transaction is submitted as it is.

Events come from the ledger's transaction chain only: every record is folded, in order, into
an in-memory shadow ledger (same key, same rules, the record's own time) whose receipt names
the effects, and those effects become the thread's events (:func:`thread_events`). So a
client resuming with ``after=SEQ`` gets exactly what a live client got. Writes made in this
process are folded (and published) right after they commit. Records another process wrote
(``becomingone choir post`` on the same data dir while ``choir up`` holds the content store,
or another server on a shared PostgreSQL ledger) are folded by :meth:`ChoirService.poll`,
which ``choir up`` runs on a short interval, or before the next local write, whichever comes
first; the store then follows them from the outbox like any write of this process.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from becomingone.analysis import AnalysisSettings, analyze_phase
from becomingone.api.tokens import TokenStore
from becomingone.choir import (
    PUBLISHED,
    TREASURY,
    ChoirHome,
    ContentStore,
    Drift,
    Embed,
    Ledger,
    Receipt,
    RepairReport,
    Spec,
    SpecStatus,
    SqliteLedger,
    Transaction,
    TxKind,
    User,
    content_hash,
    embedder,
    new_id,
    reconcile,
    reconcile_messages,
    wallet,
)
from becomingone.choir.model import Move, PutMessage, PutSpec, PutVote, SetSpecStatus
from becomingone.core.encoders import phase_from_embeddings
from becomingone.errors import InputError, IntegrityError
from becomingone.keys import NodeKey

__all__ = [
    "EVENT",
    "EVENT_TYPES",
    "OUTCOME",
    "ChoirEvent",
    "ChoirService",
    "ChoirSubscriber",
    "issue_token",
    "thread_events",
    "user_tokens",
]

#: The event types of a thread's WebSocket.
EVENT_TYPES = ("pending", "approved", "denied", "expired", "vote", "message", "balance")
#: A spec's status as the API shows it (a mixed vote is denied, its stake split; see docs):
#: an approved spec is a ``published`` message, like a co-author's post.
OUTCOME: dict[SpecStatus, str] = {
    SpecStatus.PENDING: "pending",
    SpecStatus.APPROVED: "published",
    SpecStatus.DENIED: "denied",
    SpecStatus.MIXED: "denied",
    SpecStatus.EXPIRED: "expired",
}
#: The event a spec's new status makes on its thread's WebSocket (the decision, not the
#: message's status: ``approved`` carries a message whose ``status`` is ``published``).
EVENT: dict[SpecStatus, str] = {
    SpecStatus.PENDING: "pending",
    SpecStatus.APPROVED: "approved",
    SpecStatus.DENIED: "denied",
    SpecStatus.MIXED: "denied",
    SpecStatus.EXPIRED: "expired",
}
_COHERENCE_SETTINGS = AnalysisSettings(lag=1.0, window=8.0, hop=1.0)
_COHERENCE_MIN = 10


def user_tokens(home: ChoirHome) -> TokenStore:
    """The users' bearer tokens of ``home`` (``<data dir>/choir/tokens/``)."""
    return TokenStore(home.root / "tokens")


def issue_token(tokens: TokenStore, home: ChoirHome, ledger: Ledger, name: str) -> str:
    """A new bearer token for the user ``name`` (whose key is in ``home``); shown once."""
    home.key(name, "name")  # the server can only sign for users whose key it keeps
    user = ledger.user_named(name)
    if user is None:
        raise InputError("name", f"unknown user {name!r} (choir users add)")
    return tokens.create(f"{user.id}.{secrets.token_hex(4)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChoirEvent:
    """One frame of a thread's WebSocket: its ``type``, the chain ``seq`` it comes from, data."""

    type: str
    seq: int
    thread: str
    data: dict[str, Any]

    def frame(self) -> dict[str, Any]:
        """What is sent: ``{type, seq, data}``."""
        return {"type": self.type, "seq": self.seq, "data": self.data}


@dataclass(slots=True, eq=False)
class ChoirSubscriber:
    """One socket's queue of a thread's events (unbounded: a thread's events are few)."""

    thread: str
    queue: asyncio.Queue[ChoirEvent] = field(default_factory=asyncio.Queue)


def _votes(spec: Spec) -> dict[str, list[str]]:
    return {
        "approve": sorted(v for v, ok in spec.votes if ok),
        "deny": sorted(v for v, ok in spec.votes if not ok),
    }


def spec_view(spec: Spec, names: dict[str, str], text: str) -> dict[str, Any]:
    """A spec as the API shows a message."""
    return {
        "id": spec.id,
        "thread_id": spec.thread,
        "author": spec.author,
        "author_name": names.get(spec.author, spec.author),
        "text": text,
        "status": OUTCOME[spec.status],
        "outcome": spec.status.value,
        "stake": spec.stake,
        "created_at": spec.created_at,
        "votes": _votes(spec),
        "closes_at": spec.deadline,
    }


def post_view(
    *, id: str, thread: str, author: str, created_at: float, names: dict[str, str], text: str
) -> dict[str, Any]:
    """A co-author's post as the API shows a message."""
    return {
        "id": id,
        "thread_id": thread,
        "author": author,
        "author_name": names.get(author, author),
        "text": text,
        "status": "published",
        "outcome": "posted",
        "stake": 0,
        "created_at": created_at,
        "votes": {"approve": [], "deny": []},
        "closes_at": None,
    }


def _thread_of(ledger: Ledger, tx: Transaction) -> str | None:
    body = tx.body
    if "thread" in body:
        return str(body["thread"])
    if "spec" in body:
        spec = ledger.spec(str(body["spec"]))
        return spec.thread if spec is not None else None
    return None


def thread_events(
    ledger: Ledger,
    tx: Transaction,
    receipt: Receipt,
    *,
    at: float,
    text: Callable[[str, str], str],
    extra: dict[str, Any] | None = None,
) -> list[ChoirEvent]:
    """The events of one applied transaction: ``ledger`` is the state just after it,
    ``text(thread, message id)`` the message text; ``extra`` (a ``client_id``) joins each."""
    thread_id = _thread_of(ledger, tx)
    if thread_id is None:
        return []
    names = {u.id: u.name for u in ledger.users()}
    out: list[tuple[str, dict[str, Any]]] = []
    moved: set[str] = set()
    for effect in receipt.effects:
        if isinstance(effect, PutSpec):
            spec = ledger.spec(effect.spec.id)
            assert spec is not None
            out.append(("pending", spec_view(spec, names, text(thread_id, spec.id))))
        elif isinstance(effect, PutMessage) and tx.kind is TxKind.POST:
            view = post_view(
                id=effect.id,
                thread=thread_id,
                author=effect.author,
                created_at=effect.created_at,
                names=names,
                text=text(thread_id, effect.id),
            )
            out.append(("message", view))
        elif isinstance(effect, PutVote):
            spec = ledger.spec(effect.spec)
            assert spec is not None
            choice = "approve" if effect.approve else "deny"
            vote = {"spec_id": spec.id, "voter": effect.voter, "choice": choice}
            out.append(("vote", {**vote, "voter_name": names.get(effect.voter, effect.voter)}))
        elif isinstance(effect, SetSpecStatus):
            spec = ledger.spec(effect.spec)
            assert spec is not None
            out.append((EVENT[spec.status], spec_view(spec, names, text(thread_id, spec.id))))
        elif isinstance(effect, Move):
            moved |= {effect.source, effect.target}
    if moved or tx.kind in (TxKind.THREAD, TxKind.DIVEST) or any(t == "approved" for t, _ in out):
        out.append(("balance", _balance(ledger, thread_id, moved, at)))
    seq = receipt.seq
    return [
        ChoirEvent(type=t, seq=seq, thread=thread_id, data={**d, **(extra or {})}) for t, d in out
    ]


def _balance(ledger: Ledger, thread_id: str, moved: set[str], at: float) -> dict[str, Any]:
    thread = ledger.thread(thread_id)
    assert thread is not None
    wallets = {a.partition(":")[2]: ledger.balance(a) for a in moved if a.startswith("wallet:")}
    return {
        "thread_id": thread_id,
        "balance": thread.balance,
        "price": ledger.price(thread_id, now=at),
        "coauthors": list(thread.coauthors),
        "wallets": dict(sorted(wallets.items())),
        "treasury": ledger.balance(TREASURY),
    }


class ChoirService:
    """The Choir of one process: ledger, store, tokens, and the events of every thread.

    ``clock`` gives the ledger's time (seconds); ``embed`` is the embedding function and its
    name (default: the model when the ``text`` extra is installed, else the lexical one).
    """

    def __init__(
        self,
        home: ChoirHome,
        *,
        store_url: str | None = None,
        embed: tuple[Embed, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.home, self.clock = home, clock
        self.ledger = home.open(now=clock())
        self.store: ContentStore | None = None
        self.tokens: TokenStore | None = None
        self._shadow: SqliteLedger | None = None
        try:
            checked = self.ledger.verify()  # the whole chain, before anything is folded
            if not checked.ok:
                raise IntegrityError(
                    checked.first_bad,
                    f"the Choir ledger does not verify ({checked.reason}; checked"
                    f" {checked.checked} records): not served; restore the data dir from a backup",
                )
            self.store = home.open_store(store_url)
            self.tokens = user_tokens(home)
            key = NodeKey.load(home.root / "ledger.key")
            self._shadow = SqliteLedger(":memory:", key, rules=self.ledger.rules, now=0.0)
        except BaseException:
            self.close()
            raise
        self._embed = embed
        self._lock = threading.Lock()
        self._texts: dict[str, str] = {m.message_id: m.text for m in self.store.messages()}
        self._seen = 0  # the shadow ran genesis (seq 0) itself
        self.events: dict[str, list[ChoirEvent]] = {}
        self.subscribers: set[ChoirSubscriber] = set()
        self.transactions: dict[str, int] = {TxKind.GENESIS.value: 1}  # the shadow ran it
        self.applied = 0
        self._versions: dict[str, int] = {}  # per thread: bumped when its stored messages change
        self._coherence: dict[str, tuple[int, float | None]] = {}  # thread: (version, value)
        self._foreign: list[Transaction] = []  # folded, written by another process, not followed
        self._catch_up(self.ledger.records())
        self._foreign.clear()  # the start's full repair follows the whole ledger

    # --- lifecycle and parts -----------------------------------------------------------------

    def close(self) -> None:
        """Close the ledger, the store, the tokens and the shadow."""
        for part in (self._shadow, self.tokens, self.store, self.ledger):
            if part is not None:
                part.close()

    @property
    def embed(self) -> Embed:
        """The embedding function (chosen on first use)."""
        if self._embed is None:
            self._embed = embedder()
        return self._embed[0]

    @property
    def embedding(self) -> str:
        """``"model"`` or ``"lexical"``."""
        self.embed  # noqa: B018 - chooses it
        assert self._embed is not None
        return self._embed[1]

    def names(self) -> dict[str, str]:
        """User id → name."""
        return {u.id: u.name for u in self.ledger.users()}

    def user_of_token(self, token: str) -> User | None:
        """The user an active token belongs to (None: unknown, revoked, or no such user)."""
        assert self.tokens is not None
        info = self.tokens.check(token)
        if info is None or not info.active:
            return None
        return self.ledger.user(info.name.partition(".")[0])

    # --- folding the chain into events ---------------------------------------------------------

    def _text(self, thread: str, message_id: str) -> str:
        if message_id not in self._texts and self.store is not None:
            self._texts.update({m.message_id: m.text for m in self.store.messages(thread=thread)})
        if message_id not in self._texts:  # another process's write: its text waits there
            waiting = self.home.outbox.get(message_id)
            if waiting is not None:
                self._texts[message_id] = waiting
        return self._texts.setdefault(message_id, "")  # a text never stored: asked once

    def _catch_up(self, records: Iterable[Any]) -> list[ChoirEvent]:
        """Fold every record after the last one seen; the events they make. The records'
        transactions are another process's: they wait in ``_foreign`` for :meth:`follow`."""
        made: list[ChoirEvent] = []
        for record in records:
            if record.seq <= self._seen:
                continue
            tx = Transaction.from_json(record.data())
            made += self._fold(tx, record.time, None)
            self._foreign.append(tx)
        return made

    def poll(self) -> list[ChoirEvent]:
        """Fold the records another process appended since the last one seen (one indexed
        read when there are none); their events, to :meth:`publish`, then :meth:`follow`."""
        with self._lock:
            return self._catch_up(self.ledger.records(after=self._seen))

    def _fold(self, tx: Transaction, at: float, client_id: str | None) -> list[ChoirEvent]:
        assert self._shadow is not None
        receipt = self._shadow.submit(tx, now=at)
        self._seen = receipt.seq
        self.transactions[tx.kind.value] = self.transactions.get(tx.kind.value, 0) + 1
        extra = {"client_id": client_id} if client_id is not None else None
        made = thread_events(self._shadow, tx, receipt, at=at, text=self._text, extra=extra)
        if made:  # one record's events are one thread's; added in one step (read by the loop)
            self.events.setdefault(made[0].thread, []).extend(made)
        return made

    def submit(
        self,
        tx: Transaction,
        *,
        text: str | None = None,
        client_id: str | None = None,
        follow: bool = True,
    ) -> tuple[Receipt, list[ChoirEvent]]:
        """Apply ``tx`` now (its text first to the outbox, then the ledger, then — unless
        ``follow`` is false, when the caller runs :meth:`follow` after publishing — the
        store); the receipt and the events it made (publish them with :meth:`publish`)."""
        message_id = tx.body.get("message", tx.body.get("spec")) if text is not None else None
        with self._lock:
            if message_id is not None:
                self.home.outbox.put(str(message_id), text or "")
                self._texts[str(message_id)] = text or ""
            now = self.clock()
            try:
                receipt = self.ledger.submit(tx, now=now)
            except BaseException:
                if message_id is not None:
                    self.home.outbox.remove(str(message_id))
                    self._texts.pop(str(message_id), None)
                raise
            made: list[ChoirEvent] = []
            if receipt.seq > self._seen + 1:  # another process wrote in between
                foreign = self.ledger.records(after=self._seen)
                made += self._catch_up(r for r in foreign if r.seq < receipt.seq)
            if not receipt.replayed:
                made += self._fold(tx, now, client_id)
                self.applied += 1
        if follow:
            self.follow(tx)
        return receipt, made

    def follow(self, tx: Transaction | None = None) -> None:
        """Bring the store up to the ledger for what ``tx`` changed — its message or spec and
        its thread's co-authors (a constant number of reads, whatever the thread's size) — and
        for every transaction of another process folded since the last follow."""
        with self._lock:
            pending, self._foreign = self._foreign, []
        for other in pending:
            self._follow_one(other)
        if tx is not None:
            self._follow_one(tx)

    def _follow_one(self, tx: Transaction) -> None:
        with self._lock:
            thread = _thread_of(self.ledger, tx)
            if thread is None or self.store is None:
                return
            ids = [str(tx.body[k]) for k in ("message", "spec") if k in tx.body]
            found, _ = reconcile_messages(
                self.ledger,
                self.store,
                self.home.outbox,
                self.embed,
                thread=thread,
                message_ids=ids,
            )
            if found:
                self._changed(thread)

    def repair(self) -> tuple[list[Drift], RepairReport]:
        """Bring the whole content store up to the ledger (``choir check --repair``)."""
        assert self.store is not None
        with self._lock:
            found, report = reconcile(self.ledger, self.store, self.home.outbox, self.embed)
            for thread in {d.thread_id for d in found}:
                self._changed(thread)
            return found, report

    def _changed(self, thread: str) -> None:
        """The store's messages of ``thread`` changed: its cached coherence is stale."""
        self._versions[thread] = self._versions.get(thread, 0) + 1

    def add_user(self, name: str) -> tuple[User, str]:
        """Create user ``name`` (a custodial key here) and a bearer token for them."""
        assert self.tokens is not None
        with self._lock:
            user = self.home.add_user(self.ledger, name, now=self.clock())
            self._catch_up(self.ledger.records(after=self._seen))  # a join: nothing to follow
            return user, issue_token(self.tokens, self.home, self.ledger, name)

    def act(
        self,
        user: User,
        kind: TxKind,
        body: dict[str, Any],
        *,
        text: str | None = None,
        client_id: str | None = None,
        follow: bool = True,
    ) -> tuple[Receipt, list[ChoirEvent]]:
        """Sign ``kind`` with ``body`` as ``user`` (their custodial key) and submit it."""
        tx = self.sign(user, kind, body)
        return self.submit(tx, text=text, client_id=client_id, follow=follow)

    def sign(self, user: User, kind: TxKind, body: dict[str, Any]) -> Transaction:
        """``kind`` with ``body`` signed with ``user``'s custodial key."""
        return Transaction.sign(self.home.key(user.name, "Authorization"), kind, body)

    # --- subscribers (event loop only) -----------------------------------------------------------

    def subscribe(self, thread: str, after: int) -> tuple[ChoirSubscriber, list[ChoirEvent]]:
        """A live subscriber of ``thread`` and the stored events after ``after`` (in one step
        on the event loop, so nothing falls between the replay and the live events)."""
        sub = ChoirSubscriber(thread=thread)
        self.subscribers.add(sub)
        return sub, [e for e in self.events.get(thread, []) if e.seq > after]

    def unsubscribe(self, sub: ChoirSubscriber) -> None:
        """Stop delivering to ``sub``."""
        self.subscribers.discard(sub)

    def publish(self, events: Iterable[ChoirEvent]) -> None:
        """Deliver ``events`` to the subscribers of their threads (on the event loop)."""
        for event in events:
            for sub in self.subscribers:
                if sub.thread == event.thread:
                    sub.queue.put_nowait(event)

    # --- reads ---------------------------------------------------------------------------------

    def messages(self, thread_id: str) -> list[dict[str, Any]]:
        """A thread's posts and specs, oldest first (an approved spec once, as a spec)."""
        names = self.names()
        specs = {s.id: s for s in self.ledger.specs(thread=thread_id)}
        out = [spec_view(s, names, self._text(thread_id, s.id)) for s in specs.values()]
        for m in self.ledger.messages(thread=thread_id):
            if m.id not in specs:
                text = self._text(thread_id, m.id)
                out.append(
                    post_view(
                        id=m.id,
                        thread=thread_id,
                        author=m.author,
                        created_at=m.created_at,
                        names=names,
                        text=text,
                    )
                )
        return sorted(out, key=lambda m: (m["created_at"], m["id"]))

    def coherence(self, thread_id: str) -> float | None:
        """KAIROS coherence of the thread's published messages (None below 10 of them),
        cached until the store's messages of the thread change."""
        version = self._versions.get(thread_id, 0)  # read before the store: a write after
        cached = self._coherence.get(thread_id)  # it makes the value computed here stale
        if cached is not None and cached[0] == version:
            return cached[1]
        value = self.compute_coherence(thread_id)
        self._coherence[thread_id] = (version, value)
        return value

    def compute_coherence(self, thread_id: str) -> float | None:
        """:meth:`coherence` computed afresh from the store (no cache)."""
        assert self.store is not None
        statuses = {PUBLISHED, SpecStatus.APPROVED.value}
        ids = [m.message_id for m in self.store.messages(thread=thread_id) if m.status in statuses]
        if len(ids) < _COHERENCE_MIN:
            return None
        vectors = self.store.vectors(ids)
        result = analyze_phase(
            phase_from_embeddings(vectors), 1.0, _COHERENCE_SETTINGS, kind="text", with_map=False
        )
        return round(float(result.coherence[-1]), 4)

    def search(self, text: str, *, thread: str | None, k: int) -> list[dict[str, Any]]:
        """The ``k`` published messages nearest ``text`` in meaning (priors)."""
        assert self.store is not None
        query = self.embed([text])[0]
        statuses = [PUBLISHED, SpecStatus.APPROVED.value]
        hits = self.store.search(query, k=k, statuses=statuses, thread=thread)
        return [
            {
                "message_id": h.message.message_id,
                "thread_id": h.message.thread_id,
                "text": h.message.text,
                "score": round(h.score, 4),
            }
            for h in hits
        ]

    def new_thread_body(self, title: str) -> dict[str, Any]:
        """The body of a new thread titled ``title`` (a fresh id)."""
        return {"thread": new_id()[:12], "title": title}

    def message_body(self, thread_id: str, text: str, stake: int | None) -> dict[str, Any]:
        """The body of a post (``stake`` None) or a spec (``stake``: CHOIR in escrow)."""
        digest = content_hash(text)
        if stake is None:
            return {"thread": thread_id, "message": new_id()[:12], "content_hash": digest}
        return {"thread": thread_id, "spec": new_id()[:12], "content_hash": digest, "stake": stake}

    def wallets(self) -> dict[str, int]:
        """User id → wallet balance."""
        return {u.id: self.ledger.balance(wallet(u.id)) for u in self.ledger.users()}
