"""Test helpers for Choir: a community of named users driving a ledger, and chain replay.

Rule: only builds and signs transactions and reads ledgers; every rule lives in the library.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from becomingone.choir import (
    Ledger,
    Receipt,
    Rules,
    SqliteLedger,
    Transaction,
    TxKind,
    content_hash,
    new_id,
    wallet,
)
from becomingone.keys import NodeKey

__all__ = ["Community", "key_of", "replay"]


@functools.cache
def key_of(name: str) -> NodeKey:
    """A deterministic key per user name (cached: loading a key costs as much as a signature)."""
    return NodeKey.from_seed(hashlib.sha256(f"choir-user:{name}".encode()).digest())


class Community:
    """Named users acting on ``ledger`` at the settable time ``now`` (seconds)."""

    def __init__(self, ledger: Ledger, *, now: float = 1_000.0) -> None:
        self.ledger, self.now = ledger, now
        self._n = 0

    def id(self, name: str) -> str:
        """The user id (key id) of ``name``."""
        return key_of(name).id

    def tx(
        self, name: str, kind: TxKind, body: dict[str, Any], tx_id: str | None = None
    ) -> Transaction:
        """A transaction by ``name``."""
        return Transaction.sign(key_of(name), kind, body, tx_id=tx_id)

    def do(
        self, name: str, kind: TxKind, body: dict[str, Any], tx_id: str | None = None
    ) -> Receipt:
        """Sign and submit at ``now``."""
        return self.ledger.submit(self.tx(name, kind, body, tx_id), now=self.now)

    def _next(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def join(self, *names: str) -> None:
        """Each name joins (and gets the join grant)."""
        for name in names:
            self.do(name, TxKind.JOIN, {"name": name})

    def thread(self, name: str, thread: str = "t1", title: str = "a thread") -> Receipt:
        """``name`` opens ``thread``."""
        return self.do(name, TxKind.THREAD, {"thread": thread, "title": title})

    def post(self, name: str, thread: str = "t1", text: str = "hello") -> Receipt:
        """``name`` posts ``text`` to ``thread``."""
        body = {"thread": thread, "message": new_id(), "content_hash": content_hash(text)}
        return self.do(name, TxKind.POST, body)

    def submit(
        self, name: str, thread: str = "t1", *, stake: int | None = None, spec: str | None = None
    ) -> str:
        """``name`` submits a spec (stake: the thread's price unless given); its id."""
        spec = spec or self._next("s")
        stake = self.ledger.price(thread, now=self.now) if stake is None else stake
        body = {"thread": thread, "spec": spec, "content_hash": content_hash(spec), "stake": stake}
        self.do(name, TxKind.SUBMIT, body)
        return spec

    def vote(self, name: str, spec: str, approve: bool) -> Receipt:
        """``name`` votes on ``spec``."""
        return self.do(name, TxKind.VOTE, {"spec": spec, "approve": approve})

    def close(self, name: str, spec: str) -> Receipt:
        """``name`` closes ``spec``."""
        return self.do(name, TxKind.CLOSE, {"spec": spec})

    def divest(self, name: str, thread: str = "t1") -> Receipt:
        """``name`` divests from ``thread``."""
        return self.do(name, TxKind.DIVEST, {"thread": thread})

    def wallet(self, name: str) -> int:
        """``name``'s wallet balance."""
        return self.ledger.balance(wallet(self.id(name)))


def replay(ledger: Ledger, rules: Rules) -> SqliteLedger:
    """A fresh in-memory ledger fed every transaction of ``ledger``'s chain at its time."""
    fresh = SqliteLedger(":memory:", NodeKey.from_seed(bytes(32)), rules=rules, now=0.0)
    for record in ledger.records():
        tx = Transaction.from_json(record.data())
        if tx.kind is not TxKind.GENESIS:
            fresh.submit(tx, now=record.time)
    return fresh
