"""The SQL core both ledger adapters share: schema, reads, effect writes, the invariant.

Rule: one Choir transaction = one database transaction that (1) takes the chain-head row's
lock, (2) claims the id (a replayed id claims nothing: a no-op), (3) runs the sans-IO rules
against a view of the open transaction, (4) writes their effects, the signed chain record and
the new head, and (5) checks treasury + Σ wallets + Σ threads + Σ escrow = supply with no
balance negative. Any failure rolls everything back. SQL is written once with ``?``
placeholders; an adapter supplies the connection, the transaction and the translation of its
driver's errors.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from becomingone.choir.ledger import Receipt
from becomingone.choir.model import (
    Account,
    AccountKind,
    AddCoauthor,
    Effect,
    Message,
    Mint,
    Move,
    PutMessage,
    PutSpec,
    PutThread,
    PutUser,
    PutVote,
    RemoveCoauthor,
    SetSpecStatus,
    Spec,
    SpecStatus,
    Thread,
    Totals,
    User,
    account_kind,
    thread_account,
)
from becomingone.choir.rules import Rules, apply, thread_price
from becomingone.choir.tx import Transaction, TxKind
from becomingone.errors import InputError, IntegrityError
from becomingone.keys import NodeKey
from becomingone.witnessing import (
    ChainHead,
    Level,
    VerifyReport,
    WitnessChain,
    WitnessRecord,
    verify,
)

__all__ = ["SCHEMA", "Db", "SqlLedger"]

#: Tables, with ``{INT}``, ``{REAL}``, ``{BLOB}``, ``{BOOL}`` for the adapter's type names and
#: ``{NOROWID}`` after each table keyed by text (SQLite: `` WITHOUT ROWID``, one B-tree per
#: table instead of a table and its key's index, so a transaction writes fewer pages).
SCHEMA = """
CREATE TABLE IF NOT EXISTS choir_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL){NOROWID};
CREATE TABLE IF NOT EXISTS choir_head (
    id {INT} PRIMARY KEY, n_records {INT} NOT NULL, hash TEXT NOT NULL, signature {BLOB});
CREATE TABLE IF NOT EXISTS choir_chain (
    seq {INT} PRIMARY KEY, level TEXT NOT NULL, at {REAL} NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, signer TEXT NOT NULL,
    signature {BLOB} NOT NULL);
CREATE TABLE IF NOT EXISTS choir_txids (
    id TEXT PRIMARY KEY, digest TEXT NOT NULL, seq {INT} NOT NULL){NOROWID};
CREATE TABLE IF NOT EXISTS choir_accounts (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL,
    balance {INT} NOT NULL CHECK (balance >= 0)){NOROWID};
CREATE TABLE IF NOT EXISTS choir_users (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, public_key {BLOB} NOT NULL,
    joined_at {REAL} NOT NULL){NOROWID};
CREATE TABLE IF NOT EXISTS choir_threads (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, creator TEXT NOT NULL,
    created_at {REAL} NOT NULL){NOROWID};
CREATE TABLE IF NOT EXISTS choir_coauthors (
    thread TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (thread, user_id)){NOROWID};
CREATE TABLE IF NOT EXISTS choir_messages (
    id TEXT PRIMARY KEY, thread TEXT NOT NULL, author TEXT NOT NULL,
    content_hash TEXT NOT NULL, created_at {REAL} NOT NULL){NOROWID};
CREATE INDEX IF NOT EXISTS choir_messages_thread ON choir_messages (thread, created_at);
CREATE TABLE IF NOT EXISTS choir_specs (
    id TEXT PRIMARY KEY, thread TEXT NOT NULL, author TEXT NOT NULL,
    content_hash TEXT NOT NULL, stake {INT} NOT NULL, created_at {REAL} NOT NULL,
    deadline {REAL} NOT NULL, status TEXT NOT NULL){NOROWID};
CREATE INDEX IF NOT EXISTS choir_specs_thread ON choir_specs (thread, created_at);
CREATE TABLE IF NOT EXISTS choir_votes (
    spec TEXT NOT NULL, voter TEXT NOT NULL, approve {BOOL} NOT NULL, at {REAL} NOT NULL,
    PRIMARY KEY (spec, voter)){NOROWID};
INSERT INTO choir_head (id, n_records, hash) VALUES (1, 0, '{GENESIS}')
    ON CONFLICT (id) DO NOTHING;
"""

_SPEC = (
    "SELECT id, thread, author, content_hash, stake, created_at, deadline, status FROM choir_specs"
)
#: A thread with its balance (one statement: the rules read both for every thread transaction).
_THREAD = (
    "SELECT id, title, creator, created_at, (SELECT balance FROM choir_accounts"
    f" WHERE name = '{thread_account('')}' || choir_threads.id) FROM choir_threads"
)
_USER = "SELECT id, name, public_key, joined_at FROM choir_users"
_MESSAGE = "SELECT id, thread, author, content_hash, created_at FROM choir_messages"


def _message(row: tuple[Any, ...]) -> Message:
    return Message(
        id=row[0], thread=row[1], author=row[2], content_hash=row[3], created_at=float(row[4])
    )


class Db(Protocol):
    """The open database transaction an adapter hands to the core (``?`` placeholders)."""

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row, or ``None``."""
        ...

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row."""
        ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; the number of rows changed."""
        ...


class _View:
    """The rules' :class:`~becomingone.choir.rules.LedgerView` over an open transaction."""

    def __init__(self, db: Db, records: int) -> None:
        self.db, self.records = db, records

    def balance(self, account: str) -> int:
        row = self.db.one("SELECT balance FROM choir_accounts WHERE name = ?", (account,))
        return int(row[0]) if row else 0

    def minted(self) -> bool:
        return self.records > 0

    def user(self, user_id: str) -> User | None:
        row = self.db.one(f"{_USER} WHERE id = ?", (user_id,))
        return _user(row) if row else None

    def user_named(self, name: str) -> User | None:
        row = self.db.one(f"{_USER} WHERE name = ?", (name,))
        return _user(row) if row else None

    def thread(self, thread_id: str) -> Thread | None:
        row = self.db.one(f"{_THREAD} WHERE id = ?", (thread_id,))
        return self._thread(row) if row else None

    def _thread(self, row: tuple[Any, ...]) -> Thread:
        who = self.db.all(
            "SELECT user_id FROM choir_coauthors WHERE thread = ? ORDER BY user_id", (row[0],)
        )
        return Thread(
            id=row[0],
            title=row[1],
            creator=row[2],
            created_at=float(row[3]),
            coauthors=tuple(r[0] for r in who),
            balance=int(row[4] or 0),
        )

    def spec(self, spec_id: str) -> Spec | None:
        row = self.db.one(f"{_SPEC} WHERE id = ?", (spec_id,))
        return self._spec(row) if row else None

    def _spec(self, row: tuple[Any, ...]) -> Spec:
        votes = self.db.all(
            "SELECT voter, approve FROM choir_votes WHERE spec = ? ORDER BY at, voter", (row[0],)
        )
        return Spec(
            id=row[0],
            thread=row[1],
            author=row[2],
            content_hash=row[3],
            stake=int(row[4]),
            created_at=float(row[5]),
            deadline=float(row[6]),
            status=SpecStatus(row[7]),
            votes=tuple((v, bool(a)) for v, a in votes),
        )

    def message_exists(self, message_id: str) -> bool:
        sql = (
            "SELECT 1 FROM choir_messages WHERE id = ?"
            " UNION ALL SELECT 1 FROM choir_specs WHERE id = ?"
        )
        return self.db.one(sql, (message_id, message_id)) is not None

    def messages_since(self, thread_id: str, since: float) -> int:
        sql = "SELECT COUNT(*) FROM choir_messages WHERE thread = ? AND created_at >= ?"
        row = self.db.one(sql, (thread_id, since))
        return int(row[0]) if row else 0


def _user(row: tuple[Any, ...]) -> User:
    return User(id=row[0], name=row[1], public_key=bytes(row[2]), joined_at=float(row[3]))


def _credit(db: Db, account: str, amount: int) -> None:
    db.run(
        "INSERT INTO choir_accounts (name, kind, balance) VALUES (?, ?, ?) ON CONFLICT (name) "
        "DO UPDATE SET balance = choir_accounts.balance + excluded.balance",
        (account, account_kind(account).value, amount),
    )


def _move(db: Db, e: Move) -> None:
    changed = db.run(
        "UPDATE choir_accounts SET balance = balance - ? WHERE name = ? AND balance >= ?",
        (e.amount, e.source, e.amount),
    )
    if changed != 1:
        raise IntegrityError(None, f"{e.source} cannot pay {e.amount}: the rules missed it")
    if account_kind(e.source) is AccountKind.ESCROW:
        db.run("DELETE FROM choir_accounts WHERE name = ? AND balance = 0", (e.source,))
    _credit(db, e.target, e.amount)


def _put_spec(db: Db, e: PutSpec) -> None:
    s = e.spec
    db.run(
        "INSERT INTO choir_specs (id, thread, author, content_hash, stake, created_at, deadline,"
        " status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            s.id,
            s.thread,
            s.author,
            s.content_hash,
            s.stake,
            s.created_at,
            s.deadline,
            s.status.value,
        ),
    )


def _set_status(db: Db, e: SetSpecStatus) -> None:
    changed = db.run(
        "UPDATE choir_specs SET status = ? WHERE id = ? AND status = ?",
        (e.status.value, e.spec, SpecStatus.PENDING.value),
    )
    if changed != 1:
        raise IntegrityError(None, f"spec {e.spec} was not pending")


def _put_user(db: Db, e: PutUser) -> None:
    u = e.user
    sql = "INSERT INTO choir_users (id, name, public_key, joined_at) VALUES (?, ?, ?, ?)"
    db.run(sql, (u.id, u.name, u.public_key, u.joined_at))


def _put_thread(db: Db, e: PutThread) -> None:
    sql = "INSERT INTO choir_threads (id, title, creator, created_at) VALUES (?, ?, ?, ?)"
    db.run(sql, (e.id, e.title, e.creator, e.created_at))


def _add_coauthor(db: Db, e: AddCoauthor) -> None:
    sql = "INSERT INTO choir_coauthors (thread, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
    db.run(sql, (e.thread, e.user))


def _remove_coauthor(db: Db, e: RemoveCoauthor) -> None:
    db.run("DELETE FROM choir_coauthors WHERE thread = ? AND user_id = ?", (e.thread, e.user))


def _put_message(db: Db, e: PutMessage) -> None:
    sql = (
        "INSERT INTO choir_messages (id, thread, author, content_hash, created_at)"
        " VALUES (?, ?, ?, ?, ?)"
    )
    db.run(sql, (e.id, e.thread, e.author, e.content_hash, e.created_at))


def _put_vote(db: Db, e: PutVote) -> None:
    sql = "INSERT INTO choir_votes (spec, voter, approve, at) VALUES (?, ?, ?, ?)"
    db.run(sql, (e.spec, e.voter, e.approve, e.at))


#: How each effect is written: one function per effect type.
_WRITERS: dict[type, Callable[[Db, Any], None]] = {
    Mint: lambda db, e: _credit(db, e.account, e.amount),
    Move: _move,
    PutUser: _put_user,
    PutThread: _put_thread,
    AddCoauthor: _add_coauthor,
    RemoveCoauthor: _remove_coauthor,
    PutMessage: _put_message,
    PutSpec: _put_spec,
    PutVote: _put_vote,
    SetSpecStatus: _set_status,
}


def write(db: Db, e: Effect) -> None:
    """Apply one effect inside the open transaction."""
    _WRITERS[type(e)](db, e)


def totals(db: Db, supply: int) -> Totals:
    """The invariant's terms as stored now."""
    rows = db.all("SELECT kind, SUM(balance), MIN(balance) FROM choir_accounts GROUP BY kind")
    sums = {kind: int(total or 0) for kind, total, _ in rows}
    lowest = min((int(low) for _, _, low in rows), default=0)
    return Totals(
        treasury=sums.get(AccountKind.TREASURY.value, 0),
        wallets=sums.get(AccountKind.WALLET.value, 0),
        threads=sums.get(AccountKind.THREAD.value, 0),
        escrow=sums.get(AccountKind.ESCROW.value, 0),
        supply=supply,
        min_balance=lowest,
    )


def _record_row(r: WitnessRecord) -> tuple[Any, ...]:
    return (r.seq, r.level, r.time, r.kind, r.payload, r.prev_hash, r.hash, r.signer, r.signature)


class SqlLedger(abc.ABC):
    """A :class:`~becomingone.choir.ledger.Ledger` over any :class:`Db`; adapters subclass it.

    Subclasses implement the abstract :meth:`_transaction` (a locked, atomic write
    transaction: the chain head row is locked first) and :meth:`_read` (a read-only
    snapshot); an adapter missing one cannot be instantiated.
    """

    def __init__(self, key: NodeKey, rules: Rules) -> None:
        self._key, self._rules = key, rules
        self._lock = threading.RLock()

    @property
    def rules(self) -> Rules:
        return self._rules

    @property
    def public_key(self) -> bytes:
        return self._key.public_bytes

    @abc.abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[Db]:
        """A locked, atomic write transaction (the chain head row locked first)."""

    @abc.abstractmethod
    def _read(self) -> contextlib.AbstractContextManager[Db]:
        """A read-only snapshot."""

    def _open(self, now: float) -> None:
        """Check the stored key and rules against ours (a ledger keeps the ones it was created
        with: two processes with different rules would disagree), then run genesis once."""
        with self._lock, self._transaction() as db:
            self._head(db)
            expected = {
                "public_key": self._key.public_bytes.hex(),
                "total_supply": str(self._rules.total_supply),
                "join_grant": str(self._rules.join_grant),
                "vote_window": repr(float(self._rules.vote_window)),
                "rate_window": repr(float(self._rules.rate_window)),
            }
            for name, value in expected.items():
                row = db.one("SELECT value FROM choir_meta WHERE key = ?", (name,))
                if row is None:
                    db.run("INSERT INTO choir_meta (key, value) VALUES (?, ?)", (name, value))
                elif row[0] != value:
                    raise InputError(name, f"the ledger was created with {row[0]}, not {value}")
        body = {"supply": self._rules.total_supply}
        self.submit(Transaction.sign(self._key, TxKind.GENESIS, body, tx_id="genesis"), now=now)

    @staticmethod
    def _head(db: Db) -> tuple[int, str]:
        row = db.one("SELECT n_records, hash FROM choir_head WHERE id = 1")
        if row is None:
            raise IntegrityError(None, "the ledger has no chain head row")
        return int(row[0]), str(row[1])

    def submit(self, tx: Transaction, *, now: float) -> Receipt:
        with self._lock, self._transaction() as db:
            count, last = self._head(db)
            # The id is claimed for the record this transaction appends (seq = count); a
            # replayed id claims nothing and is looked up (one statement for a new id).
            claim = "INSERT INTO choir_txids VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING"
            if db.run(claim, (tx.id, tx.digest(), count)) != 1:
                prior = db.one("SELECT digest, seq FROM choir_txids WHERE id = ?", (tx.id,))
                assert prior is not None
                if prior[0] != tx.digest():
                    raise InputError("id", f"{tx.id} was used by a different transaction")
                return Receipt(tx_id=tx.id, kind=tx.kind, seq=int(prior[1]), replayed=True)
            effects = apply(_View(db, count), tx, now, self._rules)
            for effect in effects:
                write(db, effect)
            chain = WitnessChain(self._key, count=count, last_hash=last)
            record = chain.append(Level.MESO, f"choir.{tx.kind.value}", tx.to_json(), now=now)
            db.run(
                "INSERT INTO choir_chain VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", _record_row(record)
            )
            head = chain.head()
            db.run(
                "UPDATE choir_head SET n_records = ?, hash = ?, signature = ? WHERE id = 1",
                (head.count, head.hash, head.signature),
            )
            state = totals(db, self._rules.total_supply)
            if not state.ok:
                raise IntegrityError(record.seq, f"invariant broken, rolled back: {state}")
        return Receipt(
            tx_id=tx.id, kind=tx.kind, seq=record.seq, replayed=False, effects=tuple(effects)
        )

    # --- reads ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _view(self) -> Iterator[_View]:
        with self._lock, self._read() as db:
            yield _View(db, self._head(db)[0])

    def balance(self, account: str) -> int:
        with self._view() as view:
            return view.balance(account)

    def user(self, user_id: str) -> User | None:
        with self._view() as view:
            return view.user(user_id)

    def user_named(self, name: str) -> User | None:
        with self._view() as view:
            return view.user_named(name)

    def users(self) -> list[User]:
        with self._view() as view:
            return [_user(r) for r in view.db.all(f"{_USER} ORDER BY name")]

    def thread(self, thread_id: str) -> Thread | None:
        with self._view() as view:
            return view.thread(thread_id)

    def threads(self) -> list[Thread]:
        with self._view() as view:
            rows = view.db.all(f"{_THREAD} ORDER BY created_at, id")
            return [view._thread(r) for r in rows]

    def spec(self, spec_id: str) -> Spec | None:
        with self._view() as view:
            return view.spec(spec_id)

    def specs(self, *, thread: str | None = None, status: SpecStatus | None = None) -> list[Spec]:
        where, params = [], []
        if thread is not None:
            where.append("thread = ?")
            params.append(thread)
        if status is not None:
            where.append("status = ?")
            params.append(status.value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._view() as view:
            rows = view.db.all(f"{_SPEC}{clause} ORDER BY created_at, id", params)
            return [view._spec(r) for r in rows]

    def messages(self, *, thread: str | None = None) -> list[Message]:
        clause, params = (" WHERE thread = ?", [thread]) if thread is not None else ("", [])
        with self._view() as view:
            rows = view.db.all(f"{_MESSAGE}{clause} ORDER BY created_at, id", params)
        return [_message(r) for r in rows]

    def message(self, message_id: str) -> Message | None:
        with self._view() as view:
            row = view.db.one(f"{_MESSAGE} WHERE id = ?", (message_id,))
        return _message(row) if row else None

    def price(self, thread_id: str, *, now: float) -> int:
        with self._view() as view:
            thread = view.thread(thread_id)
            if thread is None:
                raise InputError("thread", f"unknown thread {thread_id}")
            return thread_price(view, thread, now, self._rules)

    def accounts(self) -> list[Account]:
        with self._view() as view:
            rows = view.db.all("SELECT name, balance FROM choir_accounts ORDER BY name")
        return [Account(name=name, balance=int(balance)) for name, balance in rows]

    def totals(self) -> Totals:
        with self._view() as view:
            return totals(view.db, self._rules.total_supply)

    def records(self, *, after: int = -1) -> list[WitnessRecord]:
        with self._view() as view:
            rows = view.db.all("SELECT * FROM choir_chain WHERE seq > ? ORDER BY seq", (after,))
        return [
            WitnessRecord(
                seq=int(r[0]),
                level=r[1],
                time=float(r[2]),
                kind=r[3],
                payload=r[4],
                prev_hash=r[5],
                hash=r[6],
                signer=r[7],
                signature=bytes(r[8]),
            )
            for r in rows
        ]

    def verify(self) -> VerifyReport:
        with self._view() as view:
            row = view.db.one("SELECT n_records, hash, signature FROM choir_head WHERE id = 1")
        records = self.records()
        head = None
        if row is not None and row[2] is not None:
            head = ChainHead(count=int(row[0]), hash=row[1], signature=bytes(row[2]))
        report = verify(records, self._key.public_bytes, head=head)
        if not report.ok:
            return report
        for record in records:
            try:
                Transaction.from_json(record.data())
            except InputError as exc:
                return VerifyReport(
                    ok=False, checked=len(records), first_bad=record.seq, reason=str(exc)
                )
        state = self.totals()
        if not state.ok:
            reason = f"invariant broken: {state}"
            return VerifyReport(ok=False, checked=len(records), reason=reason)
        return report
