"""The ``Ledger`` protocol: what every Choir ledger adapter offers, and its receipt.

Rule: a protocol and values only. Adapters (SQLite, PostgreSQL) apply each transaction, its
chain record and the invariant check in one database transaction; one conformance suite
(``tests/choir/conformance.py``) runs against all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from becomingone.choir.model import Account, Effect, Message, Spec, SpecStatus, Thread, Totals, User
from becomingone.choir.rules import Rules
from becomingone.choir.tx import Transaction, TxKind
from becomingone.witnessing import VerifyReport, WitnessRecord

__all__ = ["Ledger", "Receipt"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """What :meth:`Ledger.submit` did: the chain ``seq`` of the transaction and its effects.

    ``replayed`` is true when the id was applied before (then nothing changed and ``effects``
    is empty).
    """

    tx_id: str
    kind: TxKind
    seq: int
    replayed: bool
    effects: tuple[Effect, ...] = ()


class Ledger(Protocol):
    """A Choir ledger: signed transactions in, balances, threads and specs out."""

    @property
    def rules(self) -> Rules:
        """The parameters the ledger was created with."""
        ...

    @property
    def public_key(self) -> bytes:
        """The public key that signs the ledger's chain."""
        ...

    def submit(self, tx: Transaction, *, now: float) -> Receipt:
        """Apply ``tx`` at ``now`` (seconds) atomically, or raise and change nothing."""
        ...

    def balance(self, account: str) -> int:
        """An account's balance (0 if it does not exist)."""
        ...

    def user(self, user_id: str) -> User | None:
        """The user with this key id."""
        ...

    def user_named(self, name: str) -> User | None:
        """The user with this name."""
        ...

    def users(self) -> list[User]:
        """Every user, by name."""
        ...

    def thread(self, thread_id: str) -> Thread | None:
        """One thread."""
        ...

    def threads(self) -> list[Thread]:
        """Every thread, oldest first."""
        ...

    def spec(self, spec_id: str) -> Spec | None:
        """One spec with its votes."""
        ...

    def specs(self, *, thread: str | None = None, status: SpecStatus | None = None) -> list[Spec]:
        """Specs, oldest first, optionally of one thread and one status."""
        ...

    def messages(self, *, thread: str | None = None) -> list[Message]:
        """Published messages (posts and approved specs), oldest first, optionally of one thread."""
        ...

    def message(self, message_id: str) -> Message | None:
        """One published message by id (None if there is none)."""
        ...

    def price(self, thread_id: str, *, now: float) -> int:
        """The thread's price now (``InputError`` for an unknown thread)."""
        ...

    def accounts(self) -> list[Account]:
        """Every account with its balance, by name (emptied escrow accounts are removed)."""
        ...

    def totals(self) -> Totals:
        """The invariant's terms as stored."""
        ...

    def records(self, *, after: int = -1) -> list[WitnessRecord]:
        """The transaction chain, oldest first; only the records whose seq is above ``after``."""
        ...

    def verify(self) -> VerifyReport:
        """Check the chain, every actor's signature, and the invariant."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...
