"""Partifacts on the in-process cluster: drives a :class:`~becomingone.cluster.PartifactCluster`
from each tick of a :class:`~becomingone.runtime.cluster.LocalCluster`.

Rule: a thin loop. Each tick it feeds every cell's sync evaluation (collapsed: the cell's
phase supervisor is locked, or its |T_sync|² ≥ I_c for a full cell) and C_cluster to the
sans-IO cluster, expires proposals, proposes role plans (and, every ``propose_every`` seconds,
an intent from the Genesis), lets every eligible Validator sign its verdict, settles the
decisions onto the append-only log (in-memory or SQLite: they survive a restart), syncs state
and checks the lifecycle. With full cells a passed intent is delegated (§5.3): a one-shot
probe glyph on an Executor, whose run (its ``glyph.fired`` hook) goes to a Validator and an
Integrator. The cells' private keys sign; the protocol decisions are the cluster's. A cell
can be silenced (:meth:`PartifactDriver.crash`) to exercise failover.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from becomingone.cluster import (
    Decision,
    Delegation,
    Glyph,
    IgnitionPolicy,
    LifecycleReport,
    LifecycleStage,
    PartifactCluster,
    PartifactState,
    Proposal,
    Role,
    RoleTransfer,
    Task,
    TaskState,
    Vote,
)
from becomingone.errors import InputError, ProtocolError
from becomingone.events import HookEvent
from becomingone.keys import NodeKey
from becomingone.memory import AppendLog, MemoryAppendLog
from becomingone.runtime.cell import Cell
from becomingone.runtime.cell_member import CellMember
from becomingone.runtime.cluster import ClusterMember, TickReport
from becomingone.runtime.glyph_handlers import RUN_COST
from becomingone.runtime.hooks import HookCall
from becomingone.witnessing import Level

__all__ = [
    "DECISION_BUCKETS",
    "ConsensusCounts",
    "DecisionLatency",
    "PartifactDriver",
    "PartifactTick",
    "decided_event",
    "event_subject",
    "fire_event",
    "opened_event",
    "task_glyph",
    "task_result",
    "vote_row",
]

log = logging.getLogger(__name__)

#: Glyph id prefix of a delegated intent (the rest is the intent's proposal id).
TASK_PREFIX = "task-"

#: Which cell an event concerns: the key of its payload naming it.
_SUBJECT_KEY = {
    HookEvent.ROLE_CHANGED: "cell",
    HookEvent.ROLE_TRANSFER: "target",
    HookEvent.PROPOSAL_OPENED: "proposer",
    HookEvent.PROPOSAL_DECIDED: "proposer",
}


def task_glyph(task: Task) -> Glyph:
    """The one-shot glyph an Executor runs for ``task``: a load probe for an intent; for a
    ``command`` a ``command`` glyph of the text split as a shell would (no shell runs it: the
    Executor's own ``glyphs.command.allowlist`` decides). One run spends its energy; two
    cycle boundaries at most."""
    payload: dict[str, Any] = {"probe": "loadavg"}
    kind = "probe"
    if task.kind == "command":
        try:
            argv = shlex.split(task.what)
        except ValueError:  # unbalanced quotes: the text as one word, which no list holds
            argv = [task.what]
        kind, payload = "command", {"argv": argv}
    return Glyph(
        id=TASK_PREFIX + task.id,
        kind=kind,
        payload=payload,
        theta=0.5,
        energy=RUN_COST,
        lifetime=2,
    )


def task_result(call: HookCall) -> tuple[str, bool, str] | None:
    """(task id, ok, result) of a ``glyph.fired`` hook call of a task glyph (the result: the
    value's digest, or the error of a failed run); None for any other glyph."""
    glyph = str(call.payload.get("glyph", ""))
    if not glyph.startswith(TASK_PREFIX):
        return None
    ok = bool(call.payload.get("ok"))
    result = str(call.payload.get("result" if ok else "error") or "")
    return glyph.removeprefix(TASK_PREFIX), ok, result


def event_subject(name: str, payload: Mapping[str, Any]) -> str:
    """The cell a partifact event (``role.*``, ``proposal.*``) concerns: its hooks fire it."""
    return str(payload.get(_SUBJECT_KEY[HookEvent(name)], ""))


async def fire_event(cell: Cell, name: str, payload: Mapping[str, Any], time: float) -> None:
    """Fire partifact event ``name`` on ``cell``'s hooks and witness it there: a MICRO record
    of the payload and ``vetoed`` (a ``before_`` veto is recorded, as feedback; it cannot undo
    what the cluster decided); a failing hook is logged and witnessed, never raised."""
    event = HookEvent(name)
    result = await cell.hooks.fire(event, time, payload)
    record = {**payload, "vetoed": None if result.veto is None else result.veto.reason}
    await cell.witness(Level.MICRO, event.value, record, time)
    for failure in result.failures:
        log.warning("hook %s on %s failed: %s", failure.hook, failure.event, failure.error)
        await cell.witness(Level.MICRO, "hook.failed", asdict(failure), time)


def opened_event(proposal: Proposal) -> tuple[str, Mapping[str, Any]]:
    """The ``proposal.opened`` event of ``proposal`` (a driver's and a node's view alike)."""
    body = {"id": proposal.id, "kind": proposal.kind, "proposer": proposal.proposer}
    return HookEvent.PROPOSAL_OPENED.value, body


def decided_event(decision: Decision) -> tuple[str, Mapping[str, Any]]:
    """The ``proposal.decided`` event of ``decision``."""
    p = decision.proposal
    body = {
        "proposer": p.proposer,
        "id": p.id,
        "kind": p.kind,
        "outcome": decision.outcome.value,
        "yes": decision.yes,
        "eligible": len(p.eligible),
    }
    return HookEvent.PROPOSAL_DECIDED.value, body


def vote_row(
    vote: Vote, cluster: PartifactCluster, decision: Decision | None
) -> dict[str, Any] | None:
    """A vote ``cluster`` counted, as a row of :attr:`PartifactTick.votes`: with its
    proposal's tally after it (from ``decision`` when the vote decided it, else the open
    proposal; None when the proposal is no longer known)."""
    if decision is not None:
        proposal, votes = decision.proposal, list(decision.votes)
    else:
        entry = cluster.book.open_proposals.get(vote.proposal_id)
        if entry is None:
            return None
        proposal, votes = entry.proposal, list(entry.votes.values())
    yes = sum(v.yes for v in votes)
    return {
        "id": proposal.id,
        "kind": proposal.kind,
        "voter": vote.voter,
        "yes": vote.yes,
        "tally_yes": yes,
        "tally_no": len(votes) - yes,
        "eligible": len(proposal.eligible),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class PartifactTick:
    """The partifact view after one tick: lifecycle, each cell's state and role, what was
    decided and handed over, and the events (``role.changed``, ``role.transfer``,
    ``proposal.opened``, ``proposal.decided``) with their payloads."""

    tick: int
    time: float
    lifecycle: LifecycleReport
    cells: Mapping[str, tuple[PartifactState, Role | None]]
    decisions: tuple[Decision, ...] = ()
    transfers: tuple[RoleTransfer, ...] = ()
    events: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    latencies: tuple[float, ...] = ()
    #: Each vote counted since the last tick: ``id``, ``kind``, ``voter``, ``yes`` and the
    #: proposal's tally after it (``tally_yes``, ``tally_no``, ``eligible``).
    votes: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ``lifecycle`` (the stage), ``conditions``, ``cells`` (each
        cell's ``state`` and ``role``) and ``events``."""
        life = self.lifecycle.to_json()
        return {
            "lifecycle": life["stage"],
            "conditions": life["conditions"],
            "cells": {
                c: {"state": s.value, "role": None if r is None else r.value}
                for c, (s, r) in sorted(self.cells.items())
            },
            "events": [{"event": e, **p} for e, p in self.events],
        }


@dataclass(slots=True)
class _Pending:
    proposal: Proposal
    opened_wall: float


#: Upper bounds (cluster seconds) of the decision-latency histogram's buckets; +Inf follows.
DECISION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass(slots=True)
class DecisionLatency:
    """Seconds from open to decision (cluster time) of one proposal kind, bucketed by
    :data:`DECISION_BUCKETS`: ``buckets[i]`` counts the latencies in (bound i-1, bound i], the
    last one those above every bound; ``total`` is their sum."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(DECISION_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        """Count one latency (negative is taken as 0)."""
        seconds = max(0.0, seconds)
        index = next(
            (i for i, bound in enumerate(DECISION_BUCKETS) if seconds <= bound),
            len(DECISION_BUCKETS),
        )
        self.buckets[index] += 1
        self.total += seconds


@dataclass(slots=True)
class ConsensusCounts:
    """What a view of the consensus counted (the in-process driver's, or one node's):
    proposals opened by kind, decisions by outcome, votes counted by the consensus (``yes`` /
    ``no``) and the decision latency by kind."""

    proposed: Counter[str] = field(default_factory=Counter)
    decided: Counter[str] = field(default_factory=Counter)
    votes: Counter[str] = field(default_factory=Counter)
    latency: dict[str, DecisionLatency] = field(default_factory=dict)

    def decision(self, d: Decision) -> None:
        """Count ``d``: its outcome and its latency (decided_at - created)."""
        self.decided[d.outcome.value] += 1
        kind = d.proposal.kind
        if kind not in self.latency:
            self.latency[kind] = DecisionLatency()
        self.latency[kind].observe(d.decided_at - d.proposal.created)


class PartifactDriver:
    """Runs the partifact protocol over the cells of an in-process cluster.

    ``keys`` are the cells' private keys (by node id); ``log`` the append-only log the
    decisions go to (replayed first, so roles and decisions survive a restart).
    ``vote_seconds`` is each proposal's deadline after it is made; a delegated intent not
    recorded within ``task_seconds`` expires. The last ``history``
    ticks are kept in :attr:`history`; :attr:`first_tick` is when each stage was first reached.

    Examples
    --------
    >>> from becomingone.runtime.cluster import build_supervisors
    >>> cells = build_supervisors(5, "mesh", seed=1)
    >>> d = PartifactDriver(cells, {c.node_id: c.key for c in cells})
    >>> d.cluster.lifecycle.stage.value
    'pre_cluster'
    """

    def __init__(
        self,
        members: Sequence[ClusterMember],
        keys: Mapping[str, NodeKey],
        *,
        log: AppendLog | None = None,
        threshold: float = 0.95,
        genesis_timeout: float = 1.0,
        vote_seconds: float = 0.5,
        propose_every: float = 0.2,
        policy: IgnitionPolicy | None = None,
        window: int = 8,
        history: int = 1000,
        task_seconds: float = 10.0,
    ) -> None:
        missing = [m.node_id for m in members if m.node_id not in keys]
        if missing:
            raise InputError("keys", f"no key for {', '.join(missing[:3])}")
        if not vote_seconds > 0:
            raise InputError("vote_seconds", f"must be > 0, got {vote_seconds!r}")
        if not propose_every > 0:
            raise InputError("propose_every", f"must be > 0, got {propose_every!r}")
        self.members = list(members)
        self._by_id = {m.node_id: m for m in self.members}
        self.keys = dict(keys)
        self.log: AppendLog = log if log is not None else MemoryAppendLog("consensus")
        self.threshold = threshold
        self.vote_seconds = vote_seconds
        self.propose_every = propose_every
        self.cluster = PartifactCluster(
            {m.node_id: self.keys[m.node_id].public_bytes for m in self.members},
            policy=policy,
            threshold=threshold,
            genesis_timeout=genesis_timeout,
            window=window,
        )
        self.restored = self.cluster.restore(self.log.read())
        self.delegation = Delegation(self.cluster.router)
        self.task_seconds = task_seconds
        self._results: dict[str, tuple[bool, str]] = {}
        self._full = all(isinstance(m, CellMember) for m in self.members)
        for m in self.members:
            if isinstance(m, CellMember):
                m.cell.hooks.on(HookEvent.GLYPH_FIRED.value, self._on_fired, name="partifacts")
        self.silent: dict[str, float | None] = {}
        self.failovers: list[dict[str, Any]] = []
        self.history: deque[PartifactTick] = deque(maxlen=history)
        self.first_tick: dict[LifecycleStage, int] = {}
        self.counts = ConsensusCounts()
        self._pending: dict[str, _Pending] = {}
        self._next_intent = 0.0
        self._serial = self.restored  # intents after a restart get fresh ids
        self._queued: list[tuple[str, Mapping[str, Any]]] = []  # events between ticks
        self._votes: list[Mapping[str, Any]] = []  # votes counted since the last tick

    def crash(self, cell: str, now: float | None = None) -> None:
        """From ``now`` on ``cell`` is not heard (as after ``kill -9``); if it is the Genesis,
        its replacement is recorded in :attr:`failovers` (with the seconds it took)."""
        if cell not in self.cluster.partifacts:
            raise InputError("cell", f"{cell!r} is not a member")
        self.silent[cell] = now

    def _collapsed(self, member: ClusterMember) -> bool:
        snap = member.snapshot()
        t_sq = snap.t_sync.real**2 + snap.t_sync.imag**2
        return snap.stable or t_sq >= self.threshold

    def step(self, report: TickReport) -> PartifactTick:
        """One tick of the partifact protocol after the cluster's tick ``report``."""
        now, pc = report.time, self.cluster
        events, self._queued = self._queued, []  # what operators did since the last tick
        before, moved = dict(pc.roles), pc.transfer_count
        for m in self.members:
            if m.node_id not in self.silent:
                pc.observe(
                    m.node_id, collapsed=self._collapsed(m), c_cluster=report.c_cluster, now=now
                )
        decided = pc.expire(now)
        self._propose_roles(now, events)
        if now >= self._next_intent:
            self._next_intent = now + self.propose_every
            self._serial += 1
            self._open(
                "intent",
                {"what": "probe", "n": self._serial},
                f"intent-{self._serial}",
                now,
                events,
            )
        decided += self._vote(now)
        latencies = self._settle(decided, events)
        for d in decided:
            self._delegate(d)
        self._collect_results()
        self.delegation.expire(now, after=self.task_seconds)
        fresh = pc.transfer_count - moved
        transfers = list(pc.transfers)[-fresh:] if fresh else []
        events += [(HookEvent.ROLE_TRANSFER.value, t.to_json()) for t in transfers]
        for cell, role in sorted(pc.roles.items()):
            if before.get(cell) is not role:
                events.append((HookEvent.ROLE_CHANGED.value, {"cell": cell, "role": role.value}))
        self._note_failover(before, now)
        pc.sync_state(now)
        life = pc.check_threshold(now, report.c_cluster)
        tick = PartifactTick(
            tick=report.tick,
            time=now,
            lifecycle=life,
            cells={c: (p.state, pc.roles.get(c)) for c, p in pc.partifacts.items()},
            decisions=tuple(decided),
            transfers=tuple(transfers),
            events=tuple(events),
            latencies=tuple(latencies),
            votes=tuple(self._votes),
        )
        self._votes = []
        self.history.append(tick)
        for stage in list(LifecycleStage)[: life.stage.level + 1]:
            self.first_tick.setdefault(stage, report.tick)
        return tick

    def open_operator(self, proposal: Proposal, now: float) -> None:
        """Open an operator's proposal (signed in this process by the proposer's key) for
        the Validators to vote on through :meth:`cast`: the driver does not vote on it.
        Refusals raise :class:`~becomingone.errors.ProtocolError` (counted by the book)."""
        self.cluster.propose(proposal, now)
        self.counts.proposed[proposal.kind] += 1
        self._queued.append(opened_event(proposal))

    def cast(self, vote: Vote, now: float) -> Decision | None:
        """Count one signed vote from outside the tick (an operator voting as a cell); a
        decision it makes is settled and logged at once, its events go out with the next
        tick. Refusals raise :class:`~becomingone.errors.ProtocolError` (counted)."""
        decision = self.cluster.vote(vote, now)
        self._note_vote(vote, decision)
        self.counts.votes["yes" if vote.yes else "no"] += 1
        if decision is not None:
            self._settle([decision], self._queued)
        return decision

    def _note_vote(self, vote: Vote, decision: Decision | None) -> None:
        """Keep a counted vote with its proposal's tally after it (for the next tick)."""
        row = vote_row(vote, self.cluster, decision)
        if row is not None:
            self._votes.append(row)

    def _on_fired(self, call: HookCall) -> None:
        """A full cell ran a glyph: keep the result if it was a delegated task's."""
        got = task_result(call)
        if got is not None:
            self._results[got[0]] = got[1:]

    def _delegate(self, decision: Decision) -> None:
        """Full cells: a passed intent becomes a one-shot probe glyph on an Executor."""
        if not self._full:
            return
        task = self.delegation.assign(decision, self.cluster.roles)
        if task is None:
            return
        member = self._by_id[task.executor]
        assert isinstance(member, CellMember)
        member.glyphs.submit(task_glyph(task))

    def _collect_results(self) -> None:
        """Each reported result goes Executor → Validator → Integrator → recorded (or the
        Validator rejects a failed run); a hand-over the router refuses is counted."""
        d = self.delegation
        for task_id, (ok, result) in list(self._results.items()):
            del self._results[task_id]
            task = d.tasks.get(task_id)
            if task is None:
                continue
            try:
                d.report(task_id, by=task.executor, ok=ok, result=result)
                if d.verdict(task_id, by=task.validator, accept=ok and bool(result)).state is (
                    TaskState.VALIDATED
                ):
                    d.record(task_id, by=task.integrator)
            except ProtocolError as err:
                d.counts[f"failed_{err.reason}"] += 1

    async def fire_hooks(self, tick: PartifactTick) -> None:
        """Fire each event of ``tick`` on the full cell it concerns and witness it there
        (:func:`fire_event`). CPS-only cells have no hooks."""
        for name, payload in tick.events:
            member = self._by_id.get(event_subject(name, payload))
            if isinstance(member, CellMember):
                await fire_event(member.cell, name, payload, tick.time)

    def _note_failover(self, before: Mapping[str, Role], now: float) -> None:
        old = next((c for c, r in before.items() if r is Role.GENESIS), None)
        new = self.cluster.genesis
        if old is None or new is None or old == new or old not in self.silent:
            return
        since = self.silent[old]
        self.failovers.append(
            {
                "from": old,
                "to": new,
                "silenced_at": since,
                "replaced_at": now,
                "seconds": None if since is None else round(now - since, 6),
            }
        )

    def _propose_roles(self, now: float, events: list[tuple[str, Mapping[str, Any]]]) -> None:
        pc = self.cluster
        plan = pc.distribute_roles(now)
        if plan is None or dict(plan.roles) == pc.roles:
            return
        if any(p.proposal.kind == "roles" for p in self._pending.values()):
            return
        kind = "failover" if pc.genesis is not None and pc.genesis not in plan.roles else "roles"
        self._open("roles", {**plan.to_payload(), "why": kind}, f"roles-{plan.term}", now, events)

    def _open(
        self,
        kind: str,
        payload: dict[str, Any],
        subject: str,
        now: float,
        events: list[tuple[str, Mapping[str, Any]]],
    ) -> None:
        pc = self.cluster
        proposer, eligible = pc.proposer(now), pc.validators()
        if proposer is None or not eligible or proposer in self.silent:
            return
        p = Proposal.create(
            self.keys[proposer],
            kind=kind,
            subject=subject,
            payload=payload,
            proposer=proposer,
            created=now,
            deadline=now + self.vote_seconds,
            eligible=eligible,
        )
        try:
            pc.propose(p, now)
        except ProtocolError:
            return  # refused and counted by the book
        self._pending[p.id] = _Pending(p, time.perf_counter())
        self.counts.proposed[kind] += 1
        events.append(opened_event(p))

    def _vote(self, now: float) -> list[Decision]:
        """Every live eligible Validator signs its verdict on each open proposal once."""
        pc, out = self.cluster, []
        for pid, pending in list(self._pending.items()):
            entry = pc.book.open_proposals.get(pid)
            if entry is None:
                continue
            for voter in pending.proposal.eligible:
                if (
                    voter in self.silent
                    or voter in entry.votes
                    or pid not in pc.book.open_proposals
                ):
                    continue
                yes = pc.judge(voter, pending.proposal)
                vote = Vote.create(self.keys[voter], proposal_id=pid, voter=voter, yes=yes, at=now)
                try:
                    d = pc.vote(vote, now)
                except ProtocolError:
                    continue  # counted by the book and the router
                self._note_vote(vote, d)
                self.counts.votes["yes" if yes else "no"] += 1
                if d is not None:
                    out.append(d)
        return out

    def _settle(
        self, decided: list[Decision], events: list[tuple[str, Mapping[str, Any]]]
    ) -> list[float]:
        latencies = []
        for d in decided:
            entry, _moves = self.cluster.settle(d)
            self.log.append(entry, expected_last=self.cluster.head - 1)
            pending = self._pending.pop(d.proposal.id, None)
            if pending is not None:
                latencies.append(time.perf_counter() - pending.opened_wall)
            self.counts.decision(d)
            events.append(decided_event(d))
        return latencies
