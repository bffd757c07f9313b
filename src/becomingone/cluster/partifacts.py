"""A partifact cluster (WSP 28 §3, §8.1): states, roles by consensus, state sync, lifecycle.

Rule: sans-IO. :class:`PartifactCluster` is one view of the whole cluster: it takes sync
evaluations, signed proposals and votes, each with a ``now``, and returns values (role plans,
decisions, log entries, PHASE_SYNC messages, lifecycle reports); the driver signs, sends and
appends them. It holds no keys but the public ones and reads no clock.

- ``distribute_roles`` plans roles from the live cells' states (§3.2 formation rules, §5.3
  redundancy); the first plan, made while there are no Validators yet, applies at once (the
  Genesis emerges first); every later change is a proposal that must pass.
- A Genesis (or any cell) not heard for ``genesis_timeout`` seconds is not live: the next plan
  leaves it out, a new Genesis is named and the change is proposed (failover).
- ``sync_state`` brings every live cell's memory (the applied decisions) to the log head and
  returns a PHASE_SYNC for each cell whose state, role or memory digest changed.
- ``check_threshold`` measures every lifecycle condition and moves the lifecycle.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from becomingone.cluster.consensus import ConsensusBook, Decision, Proposal, Vote, verify_decision
from becomingone.cluster.delegation import TaskEntry
from becomingone.cluster.lifecycle import Lifecycle, LifecycleReport, Measurements
from becomingone.cluster.partifact import PHI, IgnitionPolicy, Partifact, PartifactState
from becomingone.cluster.roles import (
    AUTHORITY,
    HIGH_ROLES,
    LOW_ROLES,
    ROLE_STATE,
    Role,
    Signal,
    SignalKind,
    SignalRouter,
)
from becomingone.errors import InputError, ProtocolError
from becomingone.keys import PUBLIC_KEY_BYTES

__all__ = [
    "GENESIS_DIGEST",
    "PartifactCluster",
    "PhaseSync",
    "RolePlan",
    "RoleTransfer",
    "plan_roles",
]

#: Memory digest of a cell that has applied no decision.
GENESIS_DIGEST = hashlib.sha256(b"becomingone.partifacts").hexdigest()[:16]


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleTransfer:
    """ROLE_TRANSFER (WSP 28 §2.2): ``role`` moves from ``source`` (``None``: a new holder) to
    ``target``, with the cluster ``context``, the shared ``memory`` digest and the active
    ``signals`` the role carries."""

    role: Role
    source: str | None
    target: str
    context: Mapping[str, Any]
    memory: str
    signals: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "role": self.role.value,
            "source": self.source,
            "target": self.target,
            "context": dict(self.context),
            "memory": self.memory,
            "signals": list(self.signals),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseSync:
    """PHASE_SYNC (WSP 28 §3.3): a cell's phase context, state, role and memory digest."""

    cell: str
    phase_context: int | None
    state: PartifactState
    role: Role | None
    memory: str
    log_index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RolePlan:
    """Who holds which role from ``term`` on (cells without a role are left out)."""

    roles: Mapping[str, Role]
    term: int

    def to_payload(self) -> dict[str, Any]:
        """The proposal payload of this plan."""
        return {"term": self.term, "roles": {c: r.value for c, r in sorted(self.roles.items())}}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> RolePlan:
        """The inverse of :meth:`to_payload` (``InputError`` when malformed)."""
        try:
            roles = {str(c): Role(r) for c, r in payload["roles"].items()}
            return cls(roles=roles, term=int(payload["term"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError("payload", f"not a role plan: {exc}") from None


def plan_roles(
    states: Mapping[str, PartifactState],
    *,
    current: Mapping[str, Role],
    live: Iterable[str],
) -> dict[str, Role]:
    """Roles for the live cells (§3.2, §5.3): deterministic, keeping current holders first.

    The Genesis is the current one if it is live and Ø2Ø1, else the first Ø2Ø1 cell. About
    N/(1+φ) cells (at least 2) take Ø2Ø1 roles (Genesis + Validators), the rest Ø1Ø2 roles:
    one Integrator per 4 (at least 1; Ø2Ø1 cells first), the others Executors. Dormant cells
    get no role. ``{}`` while no cell is Ø2Ø1.

    Examples
    --------
    >>> S = PartifactState
    >>> states = {f"c{i}": S.OPERATIONAL if i < 3 else S.AWAKENED for i in range(5)}
    >>> sorted((c, r.value) for c, r in plan_roles(states, current={}, live=states).items())
    ... # doctest: +NORMALIZE_WHITESPACE
    [('c0', 'genesis'), ('c1', 'validator'), ('c2', 'integrator'), ('c3', 'executor'),
     ('c4', 'executor')]
    """
    alive = set(live)
    hi = [c for c in states if c in alive and states[c] is PartifactState.OPERATIONAL]
    lo = [c for c in states if c in alive and states[c] is PartifactState.AWAKENED]
    if not hi:
        return {}
    keep = sorted(hi, key=lambda c: (current.get(c) is not Role.GENESIS, c))
    genesis, rest = keep[0], keep[1:]
    rest.sort(key=lambda c: (current.get(c) is not Role.VALIDATOR, c))
    n_high = min(len(hi), max(2, round((len(hi) + len(lo)) / (1 + PHI))))
    validators = rest[: n_high - 1]
    low = rest[n_high - 1 :] + sorted(lo)
    n_int = max(1, len(low) // 4) if low else 0
    low.sort(key=lambda c: (current.get(c) is not Role.INTEGRATOR, states[c].rank * -1, c))
    plan = {genesis: Role.GENESIS}
    plan |= {c: Role.VALIDATOR for c in validators}
    plan |= {c: Role.INTEGRATOR for c in low[:n_int]}
    plan |= {c: Role.EXECUTOR for c in low[n_int:]}
    return plan


class PartifactCluster:
    """The partifact view of one cluster (WSP 28 §8.1).

    ``keys`` maps each member to its Ed25519 public key; ``threshold`` is I_c;
    ``genesis_timeout`` (seconds) bounds how long a silent cell keeps its role; ``window``
    is K, the number of recent decisions the consensus conditions look at.

    Examples
    --------
    >>> from becomingone.keys import NodeKey
    >>> keys = {f"c{i}": NodeKey.from_seed(bytes([i]) * 32).public_bytes for i in range(5)}
    >>> pc = PartifactCluster(keys)
    >>> for i in range(3):
    ...     for c in keys:
    ...         _ = pc.observe(c, collapsed=True, c_cluster=0.9, now=i * 0.1)
    >>> pc.distribute_roles(now=0.3).term, pc.roles["c0"].value
    (1, 'genesis')
    """

    def __init__(
        self,
        keys: Mapping[str, bytes],
        *,
        policy: IgnitionPolicy | None = None,
        threshold: float = 0.95,
        genesis_timeout: float = 2.0,
        window: int = 8,
        keep_decided: float = 60.0,
        keep_transfers: int = 1000,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise InputError("threshold", f"must be in (0, 1], got {threshold!r}")
        if not genesis_timeout > 0:
            raise InputError("genesis_timeout", f"must be > 0 seconds, got {genesis_timeout!r}")
        if window < 1:
            raise InputError("window", f"must be >= 1, got {window!r}")
        self.policy = policy if policy is not None else IgnitionPolicy()
        self.threshold = threshold
        self.genesis_timeout = genesis_timeout
        self.window = window
        self.partifacts: dict[str, Partifact] = {}
        self.roles: dict[str, Role] = {}
        self.term = 0
        self.book = ConsensusBook({}, keep_decided=keep_decided)
        self.router = SignalRouter(lambda: self.roles, self.states, self.book)
        self.lifecycle = Lifecycle()
        self.head = 0  # decisions recorded (the log's last index)
        self.memory = GENESIS_DIGEST  # the memory digest at the head
        self._chain = {0: GENESIS_DIGEST}  # digest at each index some cell still holds
        self.applied: dict[str, int] = {}
        self.heard: dict[str, float] = {}
        self.outcomes: deque[bool] = deque(maxlen=2 * window)
        self.c_history: deque[float] = deque(maxlen=20)
        self.transfers: deque[RoleTransfer] = deque(maxlen=keep_transfers)
        self.transfer_count = 0
        self.counts: Counter[str] = Counter()
        self._synced: dict[str, tuple[object, ...]] = {}
        for cell, key in keys.items():
            self.join(cell, key)

    # membership -------------------------------------------------------------------------

    def join(self, cell: str, public_key: bytes, now: float | None = None) -> None:
        """Add ``cell`` (dormant, no role) with its public key."""
        if len(public_key) != PUBLIC_KEY_BYTES:
            raise InputError("public_key", f"must be {PUBLIC_KEY_BYTES} bytes")
        if cell in self.partifacts:
            raise InputError("cell", f"{cell!r} is already a member")
        self.partifacts[cell] = Partifact(cell, self.policy)
        self.book.keys[cell] = public_key
        self.applied[cell] = 0
        if now is not None:
            self.heard[cell] = now

    def leave(self, cell: str, now: float) -> RoleTransfer | None:
        """Remove ``cell``; a Genesis hands its role to the next cell first (graceful)."""
        if cell not in self.partifacts:
            raise InputError("cell", f"{cell!r} is not a member")
        handoff = None
        if self.roles.get(cell) is Role.GENESIS:
            plan = plan_roles(self.states(), current=self.roles, live=self.live(now) - {cell})
            target = next((c for c, r in plan.items() if r is Role.GENESIS), None)
            if target is not None:
                handoff = self.transfer(Role.GENESIS, cell, target)
        self.roles.pop(cell, None)
        for table in (self.partifacts, self.applied, self.heard, self._synced):
            table.pop(cell, None)
        return handoff

    def states(self) -> dict[str, PartifactState]:
        """Every member's state."""
        return {c: p.state for c, p in self.partifacts.items()}

    def live(self, now: float) -> set[str]:
        """Members heard within ``genesis_timeout`` of ``now``."""
        limit = now - self.genesis_timeout
        return {c for c, t in self.heard.items() if t >= limit and c in self.partifacts}

    @property
    def genesis(self) -> str | None:
        """The cell holding the Genesis role, if any."""
        return next((c for c, r in self.roles.items() if r is Role.GENESIS), None)

    def validators(self) -> tuple[str, ...]:
        """The Validators still in Ø2Ø1, sorted: the eligible voters of a new proposal.

        A silent Validator stays eligible until a plan replaces it (so the two sides of a
        partition never both reach quorum); a demoted one is not (it may not vote).
        """
        ok = PartifactState.OPERATIONAL
        return tuple(
            sorted(
                c
                for c, r in self.roles.items()
                if r is Role.VALIDATOR and self.partifacts[c].state is ok
            )
        )

    def observe(
        self, cell: str, *, collapsed: bool, c_cluster: float, now: float
    ) -> PartifactState | None:
        """One sync evaluation of ``cell`` (it is heard at ``now``); its new state, if any."""
        p = self.partifacts.get(cell)
        if p is None:
            raise InputError("cell", f"{cell!r} is not a member")
        self.heard[cell] = now
        moved = p.observe(collapsed=collapsed, c_cluster=c_cluster)
        role = self.roles.get(cell)
        if role is not None and p.state.rank < ROLE_STATE[role].rank:
            self.counts["role_lost_state"] += 1  # kept until the next plan passes
        return moved

    # roles ------------------------------------------------------------------------------

    def distribute_roles(self, now: float) -> RolePlan | None:
        """The role plan for the live cells if it differs from the current roles.

        While no Validator exists (formation) the plan applies at once; otherwise it is
        returned unapplied, for the driver to propose (:meth:`propose`). ``None``: no change.
        """
        plan = plan_roles(self.states(), current=self.roles, live=self.live(now))
        if plan == self.roles:
            return None
        proposal = RolePlan(roles=plan, term=self.term + 1)
        if not self.validators():
            self._apply_plan(proposal)
        return proposal

    def _apply_plan(self, plan: RolePlan) -> list[RoleTransfer]:
        old = dict(self.roles)
        self.roles = {c: r for c, r in plan.roles.items() if c in self.partifacts}
        self.term = max(self.term, plan.term)
        moves = []
        for cell, role in sorted(self.roles.items()):
            if old.get(cell) is role:
                continue
            source = next((c for c, r in old.items() if r is role and c not in self.roles), None)
            moves.append(self._note(role, source, cell))
        self.counts["plans_applied"] += 1
        return moves

    def transfer(self, role: Role, source: str | None, target: str) -> RoleTransfer:
        """Hand ``role`` from ``source`` to ``target`` now (a graceful ROLE_TRANSFER, §2.2).

        The target must be a member in the state the role needs, else
        :class:`~becomingone.errors.ProtocolError` (``state_below_role``, counted).
        """
        state = self.partifacts[target].state if target in self.partifacts else None
        if state is None or state.rank < ROLE_STATE[role].rank:
            self.router.refused["state_below_role"] += 1
            raise ProtocolError("state_below_role", f"{target} cannot hold {role.value}")
        if source is not None and self.roles.get(source) is role:
            del self.roles[source]
        self.roles[target] = role
        return self._note(role, source, target)

    def _note(self, role: Role, source: str | None, target: str) -> RoleTransfer:
        """Record the transfer of ``role`` (what a passed plan or a handoff did)."""
        move = RoleTransfer(
            role=role,
            source=source,
            target=target,
            context={"term": self.term, "stage": self.lifecycle.stage.value},
            memory=self.memory,
            signals=tuple(sorted(k.value for (r, k) in AUTHORITY if r is role)),
        )
        self.transfers.append(move)
        self.transfer_count += 1
        self.counts["role_transfers"] += 1
        return move

    # consensus --------------------------------------------------------------------------

    def proposer(self, now: float) -> str | None:
        """Who proposes now: the live Genesis, else the first live Integrator (each in the
        state its role needs)."""
        live = self.live(now)
        for role in (Role.GENESIS, Role.INTEGRATOR):
            least = ROLE_STATE[role].rank
            holders = sorted(
                c
                for c, r in self.roles.items()
                if r is role and c in live and self.partifacts[c].state.rank >= least
            )
            if holders:
                return holders[0]
        return None

    def propose(self, proposal: Proposal, now: float) -> None:
        """Validate a signed proposal (its proposer may send PROPOSAL to every eligible
        Validator, the eligible set is the current Validators) and open it for votes."""
        for v in proposal.eligible:
            sig = Signal(kind=SignalKind.PROPOSAL, source=proposal.proposer, target=v)
            if self.router.emit_signal(sig) is None:
                self.book.rejected["not_authorized"] += 1
                raise ProtocolError("not_authorized", f"{proposal.proposer} may not propose")
        if proposal.eligible != self.validators():
            self.book.rejected["bad_proposal"] += 1
            raise ProtocolError("bad_proposal", "eligible voters are not the current Validators")
        self.book.open(proposal, now)

    def judge(self, cell: str, proposal: Proposal) -> bool:
        """Validator ``cell``'s verdict: a role plan must be the plan this view computes for
        the cells it has heard; intents and commands must name what they do."""
        if proposal.kind == "roles":
            try:
                plan = RolePlan.from_payload(proposal.payload)
            except InputError:
                return False
            live = self.live(proposal.created)
            want = plan_roles(self.states(), current=self.roles, live=live)
            return plan.term == self.term + 1 and dict(plan.roles) == want
        return isinstance(proposal.payload.get("what"), str)

    def vote(self, vote: Vote, now: float) -> Decision | None:
        """A validator's vote, routed to the proposer (refusals raise ``ProtocolError``)."""
        entry = self.book.open_proposals.get(vote.proposal_id)
        target = entry.proposal.proposer if entry is not None else vote.voter
        return self.router.validate_consensus(vote, now, target=target)

    def expire(self, now: float) -> list[Decision]:
        """Proposals whose deadline has come, expired."""
        return self.book.tick(now)

    def settle(self, decision: Decision) -> tuple[bytes, list[RoleTransfer]]:
        """Execute and record ``decision``: a passed role plan is applied; returns the log
        entry (for the append-only log) and the role transfers it made."""
        moves: list[RoleTransfer] = []
        if decision.passed and decision.proposal.kind == "roles":
            plan = RolePlan.from_payload(decision.proposal.payload)
            if plan.term > self.term:
                moves = self._apply_plan(plan)
        entry = decision.to_entry()
        self._record(entry)
        self.outcomes.append(decision.passed)
        self.counts[f"proposals_{decision.outcome.value}"] += 1
        return entry, moves

    def _record(self, entry: bytes) -> None:
        self.memory = hashlib.sha256(self.memory.encode() + entry).hexdigest()[:16]
        self.head += 1
        self._chain[self.head] = self.memory

    def restore(self, entries: Iterable[bytes]) -> int:
        """Replay the decisions of a log (after a restart); every signature is re-checked.
        A task hand-over (:class:`~becomingone.cluster.delegation.TaskEntry`) is recorded
        in the memory chain as it stands (:meth:`Delegation.apply` checks and applies it).

        Returns how many were replayed; every member's memory is then the whole log.
        """
        n = 0
        for index, entry in enumerate(entries, start=self.head + 1):
            if TaskEntry.from_entry(entry) is not None:  # a hand-over: the Delegation checks it
                self._record(entry)
                n += 1
                continue
            decision = Decision.from_entry(entry)
            verify_decision(decision, self.book.keys, index=index)
            self.book.restore(decision)
            if decision.passed and decision.proposal.kind == "roles":
                plan = RolePlan.from_payload(decision.proposal.payload)
                self.roles = {c: r for c, r in plan.roles.items() if c in self.partifacts}
                self.term = max(self.term, plan.term)
            self._record(entry)
            self.outcomes.append(decision.passed)
            n += 1
        for cell in self.applied:
            self.applied[cell] = self.head
        return n

    # sync and lifecycle -----------------------------------------------------------------

    def digest(self, cell: str) -> str:
        """The memory digest of ``cell``: a hash chain over the decisions it has applied."""
        return self._chain[self.applied[cell]]

    def sync_state(self, now: float) -> list[PhaseSync]:
        """PHASE_SYNC: every live cell takes the log head (the majority's memory, the log
        being the one record); a message for each cell whose state, role or digest changed."""
        out = []
        head = self.head
        for cell in sorted(self.live(now)):
            self.applied[cell] = head
            role = self.roles.get(cell)
            state = self.partifacts[cell].state
            key = (state, role, self.memory)
            if self._synced.get(cell) == key:
                continue
            self._synced[cell] = key
            out.append(
                PhaseSync(
                    cell=cell,
                    phase_context=None if role is None else role.wsp,
                    state=state,
                    role=role,
                    memory=self.memory,
                    log_index=head,
                )
            )
        self.counts["phase_syncs"] += len(out)
        held = set(self.applied.values()) | {0, self.head}
        for index in [i for i in self._chain if i not in held]:
            del self._chain[index]
        return out

    def measurements(self, now: float, c_cluster: float) -> Measurements:
        """The lifecycle measurements at ``now`` (C_cluster from the driver)."""
        held = Counter(self.roles.values())
        k = self.window
        recent = list(self.outcomes)
        last, before = recent[-k:], recent[-2 * k : -k]
        return Measurements(
            genesis=self.genesis is not None,
            roles_filled=all(held[r] for r in Role),
            high=sum(held[r] for r in HIGH_ROLES),
            low=sum(held[r] for r in LOW_ROLES),
            c_cluster=c_cluster,
            threshold=self.threshold,
            pass_rate=sum(last) / k if len(last) == k else None,
            previous_pass_rate=sum(before) / k if len(before) == k else None,
            digests=tuple(self.digest(c) for c in sorted(self.roles)),
            c_history=tuple(self.c_history),
        )

    def check_threshold(self, now: float, c_cluster: float) -> LifecycleReport:
        """Measure every lifecycle condition and move the lifecycle (§4.1, §7)."""
        self.c_history.append(c_cluster)
        return self.lifecycle.evaluate(self.measurements(now, c_cluster))
