"""Partifact roles (WSP 28 §3.1, §5.2) and the signal authority between them.

Rule: sans-IO tables. :data:`ROLE_STATE` is the least state each role needs,
:data:`AUTHORITY` is who may emit which signal to whom; :class:`SignalRouter` routes a
:class:`Signal` iff the table allows it and both ends hold the state their roles need, and
counts every refusal by reason. No clock, no I/O: the router returns the signal to deliver.

=========== ====== ======= =============================================================
role        WSP    state   signal authority (§5.2)
=========== ====== ======= =============================================================
Genesis     2      Ø2Ø1    full emission, temporal bridge: intents to Executors (future →
                           present), proposals, phase sync and role transfer to anyone
Executor    1      Ø1Ø2    local relay and state sync: results to Validators (present →
                           future), intents relayed and phase sync to Executors/Integrators
Validator   0      Ø2Ø1    cross-temporal validation: votes and verdicts
Integrator  −1     Ø1Ø2    recursive coordination: records, phase sync and proposals
=========== ====== ======= =============================================================
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from becomingone.cluster.consensus import ConsensusBook, Decision, Vote
from becomingone.cluster.partifact import PartifactState
from becomingone.errors import InputError, ProtocolError

__all__ = [
    "AUTHORITY",
    "HIGH_ROLES",
    "LOW_ROLES",
    "ROLE_STATE",
    "Role",
    "Signal",
    "SignalKind",
    "SignalRefusal",
    "SignalRouter",
]


class Role(enum.StrEnum):
    """The four partifact roles."""

    GENESIS = "genesis"
    EXECUTOR = "executor"
    VALIDATOR = "validator"
    INTEGRATOR = "integrator"

    @property
    def wsp(self) -> int:
        """The WSP phase the role works in (2, 1, 0, −1)."""
        return _WSP[self]


_WSP = {Role.GENESIS: 2, Role.EXECUTOR: 1, Role.VALIDATOR: 0, Role.INTEGRATOR: -1}

_S = PartifactState
#: The least state a cell needs to hold each role (Integrator: Ø1Ø2 → Ø2Ø1, from Ø1Ø2 on).
ROLE_STATE: dict[Role, PartifactState] = {
    Role.GENESIS: _S.OPERATIONAL,
    Role.EXECUTOR: _S.AWAKENED,
    Role.VALIDATOR: _S.OPERATIONAL,
    Role.INTEGRATOR: _S.AWAKENED,
}
#: Ø2Ø1 roles and Ø1Ø2 roles (the redundancy rule counts each side: at least 2, ratio ≈ φ).
HIGH_ROLES = frozenset({Role.GENESIS, Role.VALIDATOR})
LOW_ROLES = frozenset({Role.EXECUTOR, Role.INTEGRATOR})


class SignalKind(enum.StrEnum):
    """What a signal carries."""

    INTENT = "intent"  #: a Genesis intent, to become a glyph on an Executor
    RESULT = "result"  #: an Executor's result, to be validated
    VOTE = "vote"  #: a Validator's signed vote
    VERDICT = "verdict"  #: a validated result, to be recorded
    PROPOSAL = "proposal"  #: an action intent put to the Validators
    PHASE_SYNC = "phase_sync"  #: state, role and memory digest (§3.3)
    RECORD = "record"  #: a decision merged into shared memory
    ROLE_TRANSFER = "role_transfer"  #: a role handed to another cell (§2.2)


_R, _K = Role, SignalKind
_ALL = frozenset(Role)
#: (sender role, kind) → roles that may receive it; every other pair is refused.
AUTHORITY: dict[tuple[Role, SignalKind], frozenset[Role]] = {
    (_R.GENESIS, _K.INTENT): frozenset({_R.EXECUTOR}),
    (_R.GENESIS, _K.PROPOSAL): frozenset({_R.VALIDATOR}),
    (_R.GENESIS, _K.PHASE_SYNC): _ALL,
    (_R.GENESIS, _K.ROLE_TRANSFER): _ALL,
    (_R.EXECUTOR, _K.RESULT): frozenset({_R.VALIDATOR}),
    (_R.EXECUTOR, _K.INTENT): frozenset({_R.EXECUTOR}),
    (_R.EXECUTOR, _K.PHASE_SYNC): frozenset({_R.EXECUTOR, _R.INTEGRATOR}),
    (_R.EXECUTOR, _K.ROLE_TRANSFER): _ALL,
    (_R.VALIDATOR, _K.VOTE): frozenset({_R.GENESIS, _R.VALIDATOR, _R.INTEGRATOR}),
    (_R.VALIDATOR, _K.VERDICT): frozenset({_R.INTEGRATOR}),
    (_R.VALIDATOR, _K.PHASE_SYNC): frozenset({_R.VALIDATOR, _R.INTEGRATOR, _R.GENESIS}),
    (_R.VALIDATOR, _K.ROLE_TRANSFER): _ALL,
    (_R.INTEGRATOR, _K.RECORD): _ALL,
    (_R.INTEGRATOR, _K.PHASE_SYNC): _ALL,
    (_R.INTEGRATOR, _K.PROPOSAL): frozenset({_R.VALIDATOR}),
    (_R.INTEGRATOR, _K.ROLE_TRANSFER): _ALL,
}


class SignalRefusal(enum.StrEnum):
    """Why the router refused a signal (the counted reasons)."""

    UNKNOWN_SOURCE = "unknown_source"
    UNKNOWN_TARGET = "unknown_target"
    NO_ROLE = "no_role"
    STATE = "state_below_role"
    NOT_AUTHORIZED = "not_authorized"
    BAD_VOTE = "bad_vote"


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """One signal from ``source`` to ``target`` (cell ids) of ``kind`` with ``payload``."""

    kind: SignalKind
    source: str
    target: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", SignalKind(self.kind))
        except ValueError:
            raise InputError("kind", f"unknown signal kind {self.kind!r}") from None
        for name in ("source", "target"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise InputError(name, "must be a non-empty cell id")


class SignalRouter:
    """Routes signals by :data:`AUTHORITY` and checks consensus (WSP 28 §8.2).

    ``roles`` and ``states`` are read at each call (the cluster's live mappings), so the
    router always sees the current roster. ``book`` receives the votes it routes.

    Examples
    --------
    >>> roles = {"g": Role.GENESIS, "e": Role.EXECUTOR}
    >>> states = {"g": PartifactState.OPERATIONAL, "e": PartifactState.AWAKENED}
    >>> r = SignalRouter(lambda: roles, lambda: states, ConsensusBook({}))
    >>> r.emit_signal(Signal(kind="intent", source="g", target="e")) is not None
    True
    >>> r.emit_signal(Signal(kind="intent", source="e", target="g")), dict(r.refused)
    (None, {'not_authorized': 1})
    """

    def __init__(
        self,
        roles: Callable[[], Mapping[str, Role | None]],
        states: Callable[[], Mapping[str, PartifactState]],
        book: ConsensusBook,
    ) -> None:
        self._roles = roles
        self._states = states
        self.book = book
        self.refused: Counter[str] = Counter()
        self.routed: Counter[str] = Counter()

    def check(self, signal: Signal) -> SignalRefusal | None:
        """Why ``signal`` would be refused, or ``None`` if it may go."""
        roles, states = self._roles(), self._states()
        if signal.source not in states:
            return SignalRefusal.UNKNOWN_SOURCE
        if signal.target not in states:
            return SignalRefusal.UNKNOWN_TARGET
        sender, receiver = roles.get(signal.source), roles.get(signal.target)
        if sender is None or receiver is None:
            return SignalRefusal.NO_ROLE
        for cell, role in ((signal.source, sender), (signal.target, receiver)):
            if states[cell].rank < ROLE_STATE[role].rank:
                return SignalRefusal.STATE
        if receiver not in AUTHORITY.get((sender, signal.kind), frozenset()):
            return SignalRefusal.NOT_AUTHORIZED
        return None

    def emit_signal(self, signal: Signal) -> Signal | None:
        """The signal to deliver, or ``None`` when refused (counted by reason)."""
        reason = self.check(signal)
        if reason is not None:
            self.refused[reason.value] += 1
            return None
        self.routed[signal.kind.value] += 1
        return signal

    def validate_consensus(self, vote: Vote, now: float, *, target: str) -> Decision | None:
        """Route a validator's vote to ``target`` and count it in the book.

        Returns the decision if this vote decided its proposal. A refused route counts in
        :attr:`refused`; a refused vote raises :class:`~becomingone.errors.ProtocolError`
        (counted in ``book.rejected``, and here as ``bad_vote``).
        """
        routed = self.emit_signal(
            Signal(kind=SignalKind.VOTE, source=vote.voter, target=target, payload={})
        )
        if routed is None:
            self.book.rejected["not_validator"] += 1
            raise ProtocolError("not_validator", f"{vote.voter} may not send votes")
        try:
            return self.book.cast(vote, now)
        except ProtocolError:
            self.refused[SignalRefusal.BAD_VOTE.value] += 1
            raise
