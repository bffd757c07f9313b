"""Choir's values: users, threads, specs, accounts, effects and the spec state machine.

Rule: frozen, slotted, keyword-only values and the transition table of a spec; no I/O. The
rules (:mod:`becomingone.choir.rules`) return :data:`Effect` values; a ledger adapter applies
them in one database transaction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from becomingone.errors import InputError

__all__ = [
    "TRANSITIONS",
    "TREASURY",
    "Account",
    "AccountKind",
    "AddCoauthor",
    "Effect",
    "Message",
    "Mint",
    "Move",
    "PutMessage",
    "PutSpec",
    "PutThread",
    "PutUser",
    "PutVote",
    "RemoveCoauthor",
    "SetSpecStatus",
    "Spec",
    "SpecStatus",
    "Thread",
    "Totals",
    "User",
    "account_kind",
    "escrow",
    "thread_account",
    "wallet",
]

#: The treasury's account name.
TREASURY = "treasury"


class AccountKind(enum.Enum):
    """The four places CHOIR can be: their sum is always the total supply."""

    TREASURY = "treasury"
    WALLET = "wallet"
    THREAD = "thread"
    ESCROW = "escrow"


def wallet(user_id: str) -> str:
    """Account name of a user's wallet."""
    return f"wallet:{user_id}"


def thread_account(thread_id: str) -> str:
    """Account name of a thread's balance."""
    return f"thread:{thread_id}"


def escrow(spec_id: str) -> str:
    """Account name of a spec's escrowed stake."""
    return f"escrow:{spec_id}"


def account_kind(name: str) -> AccountKind:
    """The kind of an account from its name (``"wallet:ab12"`` → ``WALLET``)."""
    try:
        return AccountKind(name.partition(":")[0])
    except ValueError:
        raise InputError("account", f"unknown account {name!r}") from None


class SpecStatus(enum.Enum):
    """A spec's state: pending until one of the four outcomes."""

    PENDING = "pending"
    APPROVED = "approved"  # unanimous approval: published, author joins
    DENIED = "denied"  # votes, none approving: stake to the thread
    MIXED = "mixed"  # some approvals: stake × approvers/voters to the treasury
    EXPIRED = "expired"  # window over without votes: refunded


#: Allowed transitions: a decided spec never changes again.
TRANSITIONS: dict[SpecStatus, frozenset[SpecStatus]] = {
    SpecStatus.PENDING: frozenset(SpecStatus) - {SpecStatus.PENDING},
    SpecStatus.APPROVED: frozenset(),
    SpecStatus.DENIED: frozenset(),
    SpecStatus.MIXED: frozenset(),
    SpecStatus.EXPIRED: frozenset(),
}


def outcome(approvals: int, voters: int) -> SpecStatus:
    """The outcome of a closed vote: ``voters`` cast, ``approvals`` of them approving.

    >>> [outcome(a, v).value for a, v in ((0, 0), (2, 2), (0, 3), (1, 3))]
    ['expired', 'approved', 'denied', 'mixed']
    """
    if not 0 <= approvals <= voters:
        raise InputError("approvals", f"must be in 0..{voters}, got {approvals}")
    if voters == 0:
        return SpecStatus.EXPIRED
    if approvals == voters:
        return SpecStatus.APPROVED
    return SpecStatus.DENIED if approvals == 0 else SpecStatus.MIXED


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """A user: an Ed25519 key (``id`` is its key id) with a unique name."""

    id: str
    name: str
    public_key: bytes
    joined_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Thread:
    """A thread and its co-authors (ids, sorted)."""

    id: str
    title: str
    creator: str
    created_at: float
    coauthors: tuple[str, ...]
    balance: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Spec:
    """A spec: a message proposed to a thread with a stake, and its votes so far."""

    id: str
    thread: str
    author: str
    content_hash: str
    stake: int
    created_at: float
    deadline: float
    status: SpecStatus
    votes: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A published message as the ledger keeps it: a post, or a spec once approved (its id)."""

    id: str
    thread: str
    author: str
    content_hash: str
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """One balance."""

    name: str
    balance: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    """The invariant's terms: ``ok`` iff they sum to ``supply`` and none is negative."""

    treasury: int
    wallets: int
    threads: int
    escrow: int
    supply: int
    min_balance: int

    @property
    def total(self) -> int:
        """treasury + Σ wallets + Σ threads + Σ escrow."""
        return self.treasury + self.wallets + self.threads + self.escrow

    @property
    def ok(self) -> bool:
        """The invariant holds."""
        return self.total == self.supply and self.min_balance >= 0


# --- effects: what one transaction changes --------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Mint:
    """Genesis only: ``amount`` new CHOIR into ``account``."""

    account: str
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Move:
    """``amount`` CHOIR from ``source`` to ``target`` (the rules checked the funds)."""

    source: str
    target: str
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PutUser:
    """A new user."""

    user: User


@dataclass(frozen=True, slots=True, kw_only=True)
class PutThread:
    """A new thread (its creator is added by an :class:`AddCoauthor`)."""

    id: str
    title: str
    creator: str
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AddCoauthor:
    """``user`` becomes a co-author of ``thread``."""

    thread: str
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveCoauthor:
    """``user`` leaves ``thread``."""

    thread: str
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PutMessage:
    """A published message (a post, or an approved spec under the spec's id)."""

    id: str
    thread: str
    author: str
    content_hash: str
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PutSpec:
    """A new pending spec."""

    spec: Spec


@dataclass(frozen=True, slots=True, kw_only=True)
class PutVote:
    """A co-author's vote."""

    spec: str
    voter: str
    approve: bool
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SetSpecStatus:
    """A spec is decided."""

    spec: str
    status: SpecStatus


Effect = (
    Mint
    | Move
    | PutUser
    | PutThread
    | AddCoauthor
    | RemoveCoauthor
    | PutMessage
    | PutSpec
    | PutVote
    | SetSpecStatus
)
