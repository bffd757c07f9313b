"""Choir's rules: what a signed transaction may do, as a list of effects.

Rule: sans-IO. :func:`apply` reads the ledger through a :class:`LedgerView` (the adapter's
open database transaction), takes the time as ``now`` (seconds) and returns the effects; it
raises ``InputError`` naming the parameter for any rejected transaction and changes nothing
itself. One function per transaction kind, chosen from a table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from becomingone.choir.model import (
    TRANSITIONS,
    TREASURY,
    AddCoauthor,
    Effect,
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
    User,
    escrow,
    outcome,
    thread_account,
    wallet,
)
from becomingone.choir.price import RATE_WINDOW, TOTAL_SUPPLY, price
from becomingone.choir.tx import Transaction, TxKind
from becomingone.errors import InputError

__all__ = ["VOTE_WINDOW", "LedgerView", "Rules", "apply", "settle", "thread_price"]

#: Default voting window: 7 days, in seconds.
VOTE_WINDOW = 7 * 86_400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """The ledger's parameters: supply and grant in CHOIR, windows in seconds."""

    total_supply: int = TOTAL_SUPPLY
    join_grant: int = 1_000
    vote_window: float = VOTE_WINDOW
    rate_window: float = RATE_WINDOW

    def __post_init__(self) -> None:
        if type(self.total_supply) is not int or self.total_supply <= 0:
            raise InputError("total_supply", f"must be a positive integer, got {self.total_supply}")
        if type(self.join_grant) is not int or not 0 <= self.join_grant <= self.total_supply:
            raise InputError("join_grant", f"must be an integer in 0..{self.total_supply}")
        for name in ("vote_window", "rate_window"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InputError(name, f"must be a positive number of seconds, got {value!r}")


class LedgerView(Protocol):
    """What the rules read: the ledger as it is inside the current transaction."""

    def balance(self, account: str) -> int:
        """An account's balance (0 if it does not exist)."""
        ...

    def minted(self) -> bool:
        """True once genesis has run."""
        ...

    def user(self, user_id: str) -> User | None:
        """The user with this key id."""
        ...

    def user_named(self, name: str) -> User | None:
        """The user with this name."""
        ...

    def thread(self, thread_id: str) -> Thread | None:
        """The thread with its co-authors and balance."""
        ...

    def spec(self, spec_id: str) -> Spec | None:
        """The spec with its votes."""
        ...

    def message_exists(self, message_id: str) -> bool:
        """True if a message or a spec has this id."""
        ...

    def messages_since(self, thread_id: str, since: float) -> int:
        """Published messages of the thread created at or after ``since``."""
        ...


def thread_price(view: LedgerView, thread: Thread, now: float, rules: Rules) -> int:
    """The thread's price P0 now (CHOIR)."""
    recent = view.messages_since(thread.id, now - rules.rate_window)
    return price(
        balance=thread.balance,
        coauthors=len(thread.coauthors),
        messages=recent,
        window=rules.rate_window,
    )


def _user(view: LedgerView, tx: Transaction) -> User:
    user = view.user(tx.actor_id)
    if user is None:
        raise InputError("actor", f"unknown user {tx.actor_id}: join first")
    return user


def _thread(view: LedgerView, thread_id: str) -> Thread:
    thread = view.thread(thread_id)
    if thread is None:
        raise InputError("thread", f"unknown thread {thread_id}")
    return thread


def _funds(view: LedgerView, account: str, amount: int, parameter: str) -> None:
    have = view.balance(account)
    if have < amount:
        raise InputError(parameter, f"insufficient funds: {account} has {have}, needs {amount}")


def _genesis(view: LedgerView, tx: Transaction, now: float, rules: Rules) -> list[Effect]:
    if view.minted():
        raise InputError("kind", "genesis already ran")
    if tx.body["supply"] != rules.total_supply:
        raise InputError("supply", f"must be the total supply {rules.total_supply}")
    return [Mint(account=TREASURY, amount=rules.total_supply)]


def _join(view: LedgerView, tx: Transaction, now: float, rules: Rules) -> list[Effect]:
    if view.user(tx.actor_id) is not None:
        raise InputError("actor", f"user {tx.actor_id} already joined")
    if view.user_named(tx.body["name"]) is not None:
        raise InputError("name", f"{tx.body['name']!r} is taken")
    _funds(view, TREASURY, rules.join_grant, "join_grant")
    user = User(id=tx.actor_id, name=tx.body["name"], public_key=tx.actor, joined_at=now)
    effects: list[Effect] = [PutUser(user=user)]
    if rules.join_grant:
        effects.append(Move(source=TREASURY, target=wallet(user.id), amount=rules.join_grant))
    return effects


def _new_thread(view: LedgerView, tx: Transaction, now: float, rules: Rules) -> list[Effect]:
    user = _user(view, tx)
    thread_id = tx.body["thread"]
    if view.thread(thread_id) is not None:
        raise InputError("thread", f"thread {thread_id} exists")
    return [
        PutThread(id=thread_id, title=tx.body["title"], creator=user.id, created_at=now),
        AddCoauthor(thread=thread_id, user=user.id),
    ]


def _post(view: LedgerView, tx: Transaction, now: float, rules: Rules) -> list[Effect]:
    user = _user(view, tx)
    thread = _thread(view, tx.body["thread"])
    if user.id not in thread.coauthors:
        raise InputError("actor", f"{user.name} is not a co-author of {thread.id}: submit a spec")
    if view.message_exists(tx.body["message"]):
        raise InputError("message", f"message {tx.body['message']} exists")
    message = PutMessage(
        id=tx.body["message"],
        thread=thread.id,
        author=user.id,
        content_hash=tx.body["content_hash"],
        created_at=now,
    )
    return [message]


def _submit(view: LedgerView, tx: Transaction, now: float, rules: Rules) -> list[Effect]:
    user = _user(view, tx)
    thread = _thread(view, tx.body["thread"])
    spec_id, stake = tx.body["spec"], tx.body["stake"]
    if user.id in thread.coauthors:
        raise InputError("actor", f"{user.name} is a co-author of {thread.id}: post instead")
    if view.message_exists(spec_id):
        raise InputError("spec", f"spec {spec_id} exists")
    cost = thread_price(view, thread, now, rules)
    if stake < cost:
        raise InputError("stake", f"{stake} is below the thread's price {cost}")
    _funds(view, wallet(user.id), stake, "stake")
    spec = Spec(
        id=spec_id,
        thread=thread.id,
        author=user.id,
        content_hash=tx.body["content_hash"],
        stake=stake,
        created_at=now,
        deadline=now + rules.vote_window,
        status=SpecStatus.PENDING,
    )
    return [PutSpec(spec=spec), Move(source=wallet(user.id), target=escrow(spec_id), amount=stake)]


def _pending(view: LedgerView, spec_id: str) -> Spec:
    spec = view.spec(spec_id)
    if spec is None:
        raise InputError("spec", f"unknown spec {spec_id}")
    if not TRANSITIONS[spec.status]:
        raise InputError("spec", f"spec {spec_id} is already {spec.status.value}")
    return spec


def _vote(view: LedgerView, tx: Transaction, now: float, rules: Rules) -> list[Effect]:
    user = _user(view, tx)
    spec = _pending(view, tx.body["spec"])
    thread = _thread(view, spec.thread)
    if user.id not in thread.coauthors:
        raise InputError("actor", f"{user.name} is not a co-author of {thread.id}: cannot vote")
    if now >= spec.deadline:
        raise InputError("spec", f"vote after the window: spec {spec.id} closed at {spec.deadline}")
    if user.id == spec.author:
        raise InputError("actor", f"{user.name} cannot vote on their own spec {spec.id}")
    if any(voter == user.id for voter, _ in spec.votes):
        raise InputError("actor", f"{user.name} already voted on spec {spec.id}")
    vote = PutVote(spec=spec.id, voter=user.id, approve=tx.body["approve"], at=now)
    voted = replace(spec, votes=(*spec.votes, (user.id, vote.approve)))
    effects: list[Effect] = [vote]
    if _all_voted(voted, thread):
        effects += settle(voted, thread, now)
    return effects


def _all_voted(spec: Spec, thread: Thread) -> bool:
    """Every co-author who may vote on ``spec`` (all but its author) has voted."""
    return set(thread.coauthors) - {spec.author} <= {voter for voter, _ in spec.votes}


def _close(view: LedgerView, tx: Transaction, now: float, rules: Rules) -> list[Effect]:
    _user(view, tx)
    spec = _pending(view, tx.body["spec"])
    thread = _thread(view, spec.thread)
    if now < spec.deadline and not _all_voted(spec, thread):
        raise InputError("spec", f"spec {spec.id} is open for votes until {spec.deadline}")
    return settle(spec, thread, now)


def _divest(view: LedgerView, tx: Transaction, now: float, rules: Rules) -> list[Effect]:
    user = _user(view, tx)
    thread = _thread(view, tx.body["thread"])
    if user.id not in thread.coauthors:
        raise InputError("actor", f"{user.name} is not a co-author of {thread.id}")
    share = thread.balance // len(thread.coauthors)
    effects: list[Effect] = [RemoveCoauthor(thread=thread.id, user=user.id)]
    if share:
        effects.append(Move(source=thread_account(thread.id), target=wallet(user.id), amount=share))
    return effects


def settle(spec: Spec, thread: Thread, now: float) -> list[Effect]:
    """The effects of deciding ``spec`` on the votes it has (DESIGN.md §7's four outcomes)."""
    approvers = sorted(voter for voter, approve in spec.votes if approve)
    status = outcome(len(approvers), len(spec.votes))
    if status not in TRANSITIONS[spec.status]:
        raise InputError(
            "spec", f"spec {spec.id} cannot go from {spec.status.value} to {status.value}"
        )
    source, stake = escrow(spec.id), spec.stake
    effects: list[Effect] = [SetSpecStatus(spec=spec.id, status=status)]
    pot = thread_account(thread.id)
    if status is SpecStatus.EXPIRED:
        effects.append(Move(source=source, target=wallet(spec.author), amount=stake))
    elif status is SpecStatus.DENIED:
        effects.append(Move(source=source, target=pot, amount=stake))
    elif status is SpecStatus.MIXED:
        to_treasury = stake * len(approvers) // len(spec.votes)
        effects.append(Move(source=source, target=TREASURY, amount=to_treasury))
        effects.append(Move(source=source, target=pot, amount=stake - to_treasury))
    else:
        share = stake // len(approvers)
        effects += [Move(source=source, target=wallet(a), amount=share) for a in approvers]
        effects.append(Move(source=source, target=pot, amount=stake - share * len(approvers)))
        message = PutMessage(
            id=spec.id,
            thread=thread.id,
            author=spec.author,
            content_hash=spec.content_hash,
            created_at=now,
        )
        effects += [message, AddCoauthor(thread=thread.id, user=spec.author)]
    return [e for e in effects if not isinstance(e, Move) or e.amount > 0]


_RULES: dict[TxKind, Callable[[LedgerView, Transaction, float, Rules], list[Effect]]] = {
    TxKind.GENESIS: _genesis,
    TxKind.JOIN: _join,
    TxKind.THREAD: _new_thread,
    TxKind.POST: _post,
    TxKind.SUBMIT: _submit,
    TxKind.VOTE: _vote,
    TxKind.CLOSE: _close,
    TxKind.DIVEST: _divest,
}


def apply(view: LedgerView, tx: Transaction, now: float, rules: Rules) -> list[Effect]:
    """The effects of ``tx`` at time ``now`` (seconds), or ``InputError`` if it is refused."""
    if not math.isfinite(now):
        raise InputError("now", f"must be finite, got {now!r}")
    if tx.kind is not TxKind.GENESIS and not view.minted():
        raise InputError("kind", "the ledger has no genesis yet")
    return _RULES[tx.kind](view, tx, now, rules)
