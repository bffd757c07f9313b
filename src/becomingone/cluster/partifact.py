"""A partifact's state (WSP 28 §1, DESIGN.md §7): Ø1(Ø2) dormant → Ø1Ø2 awakened → Ø2Ø1
operational, from the cell's own sync evaluations and the cluster's coherence.

Rule: sans-IO and table-driven. :class:`Partifact` takes one sync evaluation at a time (did
the cell collapse, what was C_cluster) and returns the state it moved to, if any; the moves
are the table :data:`STATE_TRANSITIONS`, nothing else. No clock, no I/O.

- activation (WSP 38): the first collapse awakens a dormant cell (Ø1(Ø2) → Ø1Ø2);
- ignition (WSP 39): k of the last m evaluations collapsed and C_cluster ≥ 0.60
  (Ø1Ø2 → Ø2Ø1);
- demotion with hysteresis: an operational cell falls back to Ø1Ø2 only when fewer than
  ``k_off`` (< k) of the last m collapsed or C_cluster < ``c_off`` (< 0.60), so a cell at the
  edge does not flap. An awakened cell never goes back to sleep.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

from becomingone.errors import InputError, ProtocolError

__all__ = [
    "PHI",
    "QUORUM",
    "STATE_TRANSITIONS",
    "IgnitionPolicy",
    "Partifact",
    "PartifactState",
    "StateEvent",
]

#: The golden ratio φ = (1 + √5) / 2.
PHI = (1.0 + math.sqrt(5.0)) / 2.0
#: The consensus quorum 1/φ = φ − 1 ≈ 0.618: a proposal passes iff yes / eligible ≥ QUORUM.
QUORUM = 1.0 / PHI


class PartifactState(enum.StrEnum):
    """The three states of a partifact (the value is WSP's notation)."""

    DORMANT = "Ø1(Ø2)"
    AWAKENED = "Ø1Ø2"
    OPERATIONAL = "Ø2Ø1"

    @property
    def rank(self) -> int:
        """0 dormant, 1 awakened, 2 operational (for "at least this state")."""
        return _RANK[self]


_RANK = {PartifactState.DORMANT: 0, PartifactState.AWAKENED: 1, PartifactState.OPERATIONAL: 2}


class StateEvent(enum.StrEnum):
    """What moves a partifact."""

    ACTIVATE = "activate"  #: WSP 38: the first collapse
    IGNITE = "ignite"  #: WSP 39: k of the last m collapsed and C_cluster ≥ c_on
    DEMOTE = "demote"  #: the ignition condition is lost past the hysteresis band


_P, _V = PartifactState, StateEvent
#: (state, event) → next state; every other pair is illegal.
STATE_TRANSITIONS: dict[tuple[PartifactState, StateEvent], PartifactState] = {
    (_P.DORMANT, _V.ACTIVATE): _P.AWAKENED,
    (_P.AWAKENED, _V.IGNITE): _P.OPERATIONAL,
    (_P.OPERATIONAL, _V.DEMOTE): _P.AWAKENED,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class IgnitionPolicy:
    """When a partifact ignites and when it is demoted.

    Parameters
    ----------
    k, m : int
        Ignition needs at least ``k`` collapses among the last ``m`` sync evaluations.
    c_on : float
        ... and C_cluster ≥ ``c_on`` (DESIGN.md §7: 0.60).
    k_off : int
        Demotion when fewer than ``k_off`` of the last ``m`` collapsed (``k_off`` ≤ k).
    c_off : float
        ... or when C_cluster < ``c_off`` (``c_off`` ≤ ``c_on``).

    Examples
    --------
    >>> IgnitionPolicy(k=3, m=5).c_on
    0.6
    """

    k: int = 3
    m: int = 5
    c_on: float = 0.60
    k_off: int = 1
    c_off: float = 0.50

    def __post_init__(self) -> None:
        if isinstance(self.m, bool) or not isinstance(self.m, int) or self.m < 1:
            raise InputError("m", f"must be an integer >= 1, got {self.m!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or not 1 <= self.k <= self.m:
            raise InputError("k", f"must be an integer in [1, m={self.m}], got {self.k!r}")
        if isinstance(self.k_off, bool) or not isinstance(self.k_off, int):
            raise InputError("k_off", f"must be an integer, got {self.k_off!r}")
        if not 0 <= self.k_off <= self.k:
            raise InputError("k_off", f"must be in [0, k={self.k}], got {self.k_off}")
        if not 0.0 <= self.c_on <= 1.0:
            raise InputError("c_on", f"must be in [0, 1], got {self.c_on!r}")
        if not 0.0 <= self.c_off <= self.c_on:
            raise InputError("c_off", f"must be in [0, c_on={self.c_on}], got {self.c_off!r}")


class Partifact:
    """The state of one cell as a partifact, driven by its sync evaluations.

    Examples
    --------
    >>> p = Partifact("cell-0", IgnitionPolicy(k=2, m=3))
    >>> p.observe(collapsed=True, c_cluster=0.2)
    <PartifactState.AWAKENED: 'Ø1Ø2'>
    >>> p.observe(collapsed=True, c_cluster=0.7)
    <PartifactState.OPERATIONAL: 'Ø2Ø1'>
    >>> p.observe(collapsed=False, c_cluster=0.4) is PartifactState.AWAKENED  # C < c_off
    True
    """

    __slots__ = ("_window", "cell", "policy", "state", "transitions")

    def __init__(
        self,
        cell: str,
        policy: IgnitionPolicy | None = None,
        *,
        state: PartifactState = PartifactState.DORMANT,
    ) -> None:
        if not cell:
            raise InputError("cell", "must be a non-empty id")
        self.cell = cell
        self.policy = policy if policy is not None else IgnitionPolicy()
        self.state = PartifactState(state)
        self._window: deque[bool] = deque(maxlen=self.policy.m)
        self.transitions = 0

    @property
    def collapses(self) -> int:
        """Collapses among the last m evaluations."""
        return sum(self._window)

    def observe(self, *, collapsed: bool, c_cluster: float) -> PartifactState | None:
        """One sync evaluation; the new state if it changed, else ``None``."""
        if not math.isfinite(c_cluster) or not 0.0 <= c_cluster <= 1.0:
            raise InputError("c_cluster", f"must be in [0, 1], got {c_cluster!r}")
        self._window.append(bool(collapsed))
        event = self._event(c_cluster)
        return None if event is None else self.apply(event)

    def _event(self, c: float) -> StateEvent | None:
        p, n = self.policy, self.collapses
        if self.state is PartifactState.DORMANT:
            return StateEvent.ACTIVATE if n else None
        if self.state is PartifactState.AWAKENED:
            return StateEvent.IGNITE if n >= p.k and c >= p.c_on else None
        return StateEvent.DEMOTE if n < p.k_off or c < p.c_off else None

    def apply(self, event: StateEvent) -> PartifactState:
        """Move by ``event`` per :data:`STATE_TRANSITIONS` (``ProtocolError`` if illegal)."""
        try:
            nxt = STATE_TRANSITIONS[(self.state, StateEvent(event))]
        except KeyError:
            raise ProtocolError(
                "illegal_transition", f"{self.cell}: {event} from {self.state.value}"
            ) from None
        self.state = nxt
        self.transitions += 1
        return nxt
