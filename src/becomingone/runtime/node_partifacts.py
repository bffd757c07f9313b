"""Partifacts on node processes: the sans-IO partifact core on each node, its signed messages
on one NATS subject per cluster, its decisions on the consensus log (a JetStream stream).

Rule: glue only, like :mod:`becomingone.runtime.partifacts` (the in-process driver of the same
protocol). States, roles, quorum, verification and the lifecycle are
:class:`~becomingone.cluster.PartifactCluster`'s; this module performs their effects on one
node: its key signs, its bus carries, its :class:`~becomingone.memory.AppendLog` records.

Every node holds a full view of the cluster (a :class:`PartifactCluster` over the roster's
public keys) and keeps it in step from three kinds of signed message on
``partifacts.<cluster>`` (JSON, at most :data:`MAX_MESSAGE` bytes):

- ``obs``: a node's sync evaluation each tick (collapsed: its supervisor is locked, or its
  |T_sync|² ≥ I_c; and the C_cluster it sees), signed with its key, stamped with its clock
  (the heard-time of the sender in every view, so the views agree on who is live). Refused and
  counted: ``oversize``, ``malformed``, ``unknown_signer``, ``forged``, ``stale`` (not newer
  than the last one of that cell: a replay).
- ``proposal``: a signed :class:`~becomingone.cluster.Proposal` (opened in each view; the
  consensus counts its refusals: forged, not authorized, bad eligible set, late).
- ``vote``: a signed :class:`~becomingone.cluster.Vote` (the consensus counts forged, double,
  conflicting, late and non-validator votes).

**One record.** A view never settles a decision itself: it applies decisions only from the
log, in the log's order (:meth:`PartifactCluster.restore`, which re-checks every signature),
so every node reads the same decided sequence. The proposer (the Genesis, else the first live
Integrator) appends the decisions of its own proposals with ``expected_last`` = its head (a
conflict: read, retry next tick). Formation too goes through the log: while there is no
Validator, the cell a view's plan names Genesis appends that plan as a decision it alone was
eligible for (the first such append wins; the others conflict). Every live Validator node votes
on each open proposal once, with the verdict of :meth:`PartifactCluster.judge` (an operator's
proposal too). A lost Genesis (not heard for ``genesis_timeout`` seconds) is replaced by a
failover plan the next proposer puts to the Validators: within ``genesis_timeout`` plus a
vote's round trip and a log append.

**Delegation** (WSP 28 §5.3) goes through the log too: every view assigns each passed intent
or command it reads there (:meth:`~becomingone.cluster.Delegation.assign`, from the log's
roles), and moves its task by the signed hand-overs (:class:`~becomingone.cluster.TaskEntry`)
it reads there, refusing and counting a forged or out-of-role one alike in every view. The
node holding the step makes it: the Executor's node runs the task as a one-shot glyph on its
cell (:meth:`NodePartifacts.run_tasks`, ``node --roles --glyphs``) and appends its report, the
Validator's node its verdict, the Integrator's node the record.

**What a tick reports.** Each :class:`~becomingone.runtime.PartifactTick` in
:attr:`NodePartifacts.history` carries, besides the states, roles and lifecycle, the
``proposal.opened`` events of the proposals this view opened or heard, the votes it counted
(its own and heard ones, with the tally after each) and ``proposal.decided`` for the
decisions it applied from the log, in the in-process driver's shapes: what
``node --roles --serve`` turns into its cluster event stream.

**An observer** (``key=None``: a witness node, ``node --kind witness --roles --serve``) keeps
the same view from the same messages and the same log, and does nothing else: it holds no key
and is no member of its view, so it never observes itself, proposes, votes, appends or signs,
and publishes nothing; it only reads the log (decisions are still applied only from there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from becomingone.cluster import (
    ROLE_STATE,
    Decision,
    Delegation,
    LifecycleReport,
    Outcome,
    PartifactCluster,
    Proposal,
    Role,
    RolePlan,
    SignalRouter,
    TaskEntry,
    TaskEvent,
    TaskState,
    Vote,
    plan_roles,
)
from becomingone.errors import (
    CasConflict,
    InputError,
    IntegrityError,
    ProtocolError,
    StorageError,
)
from becomingone.events import HookEvent
from becomingone.keys import NodeKey, verify_signature
from becomingone.memory import AppendLog
from becomingone.runtime.hooks import HookCall
from becomingone.runtime.partifacts import (
    ConsensusCounts,
    PartifactTick,
    decided_event,
    opened_event,
    task_glyph,
    task_result,
    vote_row,
)
from becomingone.transport.base import Bus, Subscription

if TYPE_CHECKING:
    from becomingone.runtime.cell_member import CellMember

__all__ = [
    "MAX_MESSAGE",
    "NodePartifacts",
    "Observation",
    "consensus_log_name",
    "partifact_subject",
]

log = logging.getLogger(__name__)

#: Largest partifact message accepted (bytes): a proposal of the largest body and its frame.
MAX_MESSAGE = 70_000
#: Ticks of partifact view kept in :attr:`NodePartifacts.history`.
HISTORY = 64


def partifact_subject(cluster: str) -> str:
    """The one subject a cluster's partifact messages travel on."""
    return f"partifacts.{cluster}"


def consensus_log_name(cluster: str) -> str:
    """The name of a cluster's consensus log (its JetStream stream is ``LOG_<name>``)."""
    return f"consensus_{cluster}"


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """One node's signed sync evaluation: ``collapsed`` and the ``c_cluster`` it sees, at its
    clock's ``at``, in ``cluster``."""

    cluster: str
    cell: str
    collapsed: bool
    c_cluster: float
    at: float
    signature: bytes = b""

    def body(self) -> bytes:
        """The canonical bytes the cell signs."""
        return _canonical(
            {
                "cluster": self.cluster,
                "cell": self.cell,
                "collapsed": self.collapsed,
                "c": self.c_cluster,
                "at": self.at,
            }
        )

    @classmethod
    def create(cls, key: NodeKey, **fields: Any) -> Observation:
        """An observation of ``fields`` signed by ``key``."""
        unsigned = cls(**fields)
        return cls(**fields, signature=key.sign(unsigned.body()))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (signature as hex)."""
        return {**json.loads(self.body()), "sig": self.signature.hex()}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Observation:
        """The inverse of :meth:`to_json` (``InputError`` when malformed)."""
        try:
            collapsed, c, at = doc["collapsed"], float(doc["c"]), float(doc["at"])
            if not isinstance(collapsed, bool) or not 0.0 <= c <= 1.0 or not at >= 0.0:
                raise ValueError(f"collapsed {collapsed!r}, c {c!r}, at {at!r}")
            return cls(
                cluster=str(doc["cluster"]),
                cell=str(doc["cell"]),
                collapsed=collapsed,
                c_cluster=c,
                at=at,
                signature=bytes.fromhex(doc["sig"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError("observation", f"malformed: {exc}") from None


class NodePartifacts:
    """The partifact protocol on one node: ``key`` signs for ``node_id``; ``log`` is the
    cluster's consensus log (shared by every node: a JetStream stream across processes).
    Without a ``key`` the view is an observer's (``node_id`` names the witness in logs only):
    it hears and reads, never writes.

    ``threshold`` is I_c; ``genesis_timeout`` how long a silent cell keeps its role;
    ``vote_seconds`` each proposal's deadline after it is made; ``propose_every`` the period
    of the Genesis' intents. The attributes ``cluster``, ``history``, ``keys``, ``silent``,
    :meth:`open_operator` and :meth:`cast` are what a
    :class:`~becomingone.runtime.ProposalDesk` uses, so ``node --serve`` serves the proposal
    routes of the node's own view (proposing only on the proposer's node, voting only as
    itself).
    """

    def __init__(
        self,
        key: NodeKey | None,
        node_id: str,
        *,
        cluster: str,
        log: AppendLog,
        threshold: float = 0.95,
        genesis_timeout: float = 1.0,
        vote_seconds: float = 2.0,
        propose_every: float = 1.0,
        window: int = 8,
        task_seconds: float = 30.0,
    ) -> None:
        for name, value in (
            ("vote_seconds", vote_seconds),
            ("propose_every", propose_every),
            ("task_seconds", task_seconds),
        ):
            if not value > 0:
                raise InputError(name, f"must be > 0 seconds, got {value!r}")
        self.node_id = node_id
        self.subject = partifact_subject(cluster)
        self.cluster_name = cluster
        self.key = key
        self.keys = {} if key is None else {node_id: key}
        self.silent: dict[str, float | None] = {}
        self.log = log
        self.threshold = threshold
        self.vote_seconds = vote_seconds
        self.propose_every = propose_every
        self.cluster = PartifactCluster(
            {} if key is None else {node_id: key.public_bytes},
            threshold=threshold,
            genesis_timeout=genesis_timeout,
            window=window,
        )
        self.history: deque[PartifactTick] = deque(maxlen=HISTORY)
        # delegation moves by the log only: roles from its plans, each holder at the state
        # its role requires (the plan that gave the role checked it), so every view agrees
        self.delegation = Delegation(
            SignalRouter(lambda: self.cluster.roles, self._role_states, self.cluster.book)
        )
        self.task_seconds = task_seconds
        self._member: CellMember | None = None  # runs this node's tasks (node --glyphs)
        self._results: dict[str, tuple[bool, str]] = {}  # task id -> run, not yet reported
        self._reported: set[str] = set()
        self.rejected: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.tally = ConsensusCounts()  # what this view counted, as the driver does (metrics)
        self._roles_seen: dict[str, Role] = {}  # roles at the last tick (role events)
        self._transfers_seen = 0
        self._last_at: dict[str, float] = {}
        self._voted: set[str] = set()
        self._to_append: deque[bytes] = deque()
        self._outbox: list[bytes] = []
        self._events: list[tuple[str, Mapping[str, Any]]] = []  # since the last tick
        self._votes: list[Mapping[str, Any]] = []  # votes counted since the last tick
        self._formed_at: int | None = None
        self._next_intent = 0.0
        self._ticks = 0
        self._log_stuck = False
        self._bus: Bus | None = None
        self._sub: Subscription | None = None
        self._sync: asyncio.Task[list[Decision]] | None = None

    # lifecycle of the node ----------------------------------------------------------------

    async def start(self, bus: Bus) -> None:
        """Subscribe to the cluster's partifact subject on ``bus``."""
        self._bus = bus
        self._sub = await bus.subscribe(self.subject)

    async def aclose(self) -> None:
        """Stop the log task and unsubscribe; the log is closed by whoever opened it."""
        if self._sync is not None:
            self._sync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync
            self._sync = None
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:  # the bus may already be gone on the way out
                log.debug("partifacts: unsubscribe failed", exc_info=True)
            self._sub = None

    def run_tasks(self, member: CellMember) -> None:
        """Run the tasks delegated to this node as glyphs on ``member`` (its full cell, whose
        glyphs a ``node --glyphs`` runs); without it this node reports no task."""
        self._member = member
        member.cell.hooks.on(HookEvent.GLYPH_FIRED.value, self._on_fired, name="partifacts")

    def _on_fired(self, call: HookCall) -> None:
        got = task_result(call)
        if got is not None:
            self._results[got[0]] = got[1:]

    def _role_states(self) -> dict[str, Any]:
        return {cell: ROLE_STATE[role] for cell, role in self.cluster.roles.items()}

    async def step(
        self, now: float, *, collapsed: bool, c_cluster: float, roster: Mapping[str, bytes]
    ) -> PartifactTick:
        """One tick: take the messages, observe this cell, read and write the log, propose,
        vote, sync and check the lifecycle; publish what this node says. An observer only
        takes the messages, reads the log, syncs and checks the lifecycle (``collapsed`` is
        not used; ``c_cluster`` is the C it measured)."""
        assert self._sub is not None and self._bus is not None, "start() first"
        pc = self.cluster
        self._join(roster, now)
        for data in self._sub.drain():
            self._receive(data, now)
        if self.key is not None:
            obs = Observation.create(
                self.key,
                cluster=self.cluster_name,
                cell=self.node_id,
                collapsed=collapsed,
                c_cluster=min(1.0, max(0.0, c_cluster)),
                at=now,
            )
            pc.observe(self.node_id, collapsed=collapsed, c_cluster=obs.c_cluster, now=now)
            self._send("obs", obs.to_json())
        for decision in pc.expire(now):
            self._decided(decision)
        decided = self._log_results()
        self.delegation.expire(now, after=self.task_seconds)
        if self.key is not None:
            self._report(self.key, now)
            self._form(self.key, now)
            self._propose_roles(self.key, now)
            self._propose_intent(self.key, now)
            self._vote(self.key, now)
        if self._sync is None:  # the log's round trips run beside the ticks, never in them
            self._sync = asyncio.create_task(self._sync_log())
        pc.sync_state(now)
        life = pc.check_threshold(now, c_cluster)
        out, self._outbox = self._outbox, []
        await self._bus.publish_many((self.subject, m) for m in out)
        tick = self._tick(now, life, decided)
        self.history.append(tick)
        return tick

    def _tick(self, now: float, life: LifecycleReport, decided: list[Decision]) -> PartifactTick:
        """This tick's view and its events: proposals opened, decisions applied, roles handed
        over (``role.transfer``) and roles that changed (``role.changed``) since the last tick
        (the log task applies decisions between ticks) — as the in-process driver reports
        them, so a node fires the same hooks for its own cell."""
        pc = self.cluster
        self._ticks += 1
        events = [*self._events, *(decided_event(d) for d in decided)]
        before, moved = self._roles_seen, self._transfers_seen
        self._roles_seen, self._transfers_seen = dict(pc.roles), pc.transfer_count
        fresh = min(pc.transfer_count - moved, len(pc.transfers))
        transfers = list(pc.transfers)[-fresh:] if fresh else []
        events += [(HookEvent.ROLE_TRANSFER.value, t.to_json()) for t in transfers]
        for cell, role in sorted(pc.roles.items()):
            if before.get(cell) is not role:
                events.append((HookEvent.ROLE_CHANGED.value, {"cell": cell, "role": role.value}))
        tick = PartifactTick(
            tick=self._ticks,
            time=now,
            lifecycle=life,
            cells={c: (p.state, pc.roles.get(c)) for c, p in pc.partifacts.items()},
            decisions=tuple(decided),
            transfers=tuple(transfers),
            events=tuple(events),
            votes=tuple(self._votes),
        )
        self._events, self._votes = [], []
        return tick

    def _join(self, roster: Mapping[str, bytes], now: float) -> None:
        """Members of the roster this view does not have yet join it (dormant)."""
        for cell, public in roster.items():
            if cell not in self.cluster.partifacts:
                self.cluster.join(cell, public)

    # messages -----------------------------------------------------------------------------

    def _send(self, kind: str, doc: Mapping[str, Any]) -> None:
        self._outbox.append(_canonical({"t": kind, **doc}))

    def _receive(self, data: bytes, now: float) -> None:
        """One message from the subject; what is refused is counted."""
        if len(data) > MAX_MESSAGE:
            self.rejected["oversize"] += 1
            return
        try:
            doc = json.loads(data)
            kind = doc["t"]
            if kind == "obs":
                self._on_observation(Observation.from_json(doc))
            elif kind == "proposal":
                self._on_proposal(Proposal.from_json(doc["proposal"]), now)
            elif kind == "vote":
                self._on_vote(_vote(doc), now)
            else:
                raise InputError("t", f"unknown message kind {kind!r}")
        except (InputError, KeyError, TypeError, ValueError, AttributeError):
            self.rejected["malformed"] += 1
        except ProtocolError:
            pass  # counted by the consensus book or the router

    def _on_observation(self, obs: Observation) -> None:
        if self.key is not None and obs.cell == self.node_id:  # ours, back, unless forged
            if not verify_signature(self.key.public_bytes, obs.body(), obs.signature):
                self.rejected["forged"] += 1
            return
        public = self.cluster.book.keys.get(obs.cell)
        if public is None or obs.cell not in self.cluster.partifacts:
            self.rejected["unknown_signer"] += 1
            return
        if obs.cluster != self.cluster_name or not verify_signature(
            public, obs.body(), obs.signature
        ):
            self.rejected["forged"] += 1
            return
        if obs.at <= self._last_at.get(obs.cell, -1.0):
            self.rejected["stale"] += 1
            return
        self._last_at[obs.cell] = obs.at
        self.cluster.observe(obs.cell, collapsed=obs.collapsed, c_cluster=obs.c_cluster, now=obs.at)

    def _on_proposal(self, proposal: Proposal, now: float) -> None:
        if proposal.proposer == self.node_id:
            return
        self.cluster.propose(proposal, now)
        self.tally.proposed[proposal.kind] += 1
        self._events.append(opened_event(proposal))

    def _on_vote(self, vote: Vote, now: float) -> None:
        if self.key is not None and vote.voter == self.node_id:  # ours, unless forged
            if not verify_signature(self.key.public_bytes, vote.body(), vote.signature):
                self.rejected["forged"] += 1
            return
        decision = self.cluster.vote(vote, now)
        self._note_vote(vote, decision)
        self.counts["votes"] += 1
        self.tally.votes["yes" if vote.yes else "no"] += 1
        if decision is not None:
            self._decided(decision)

    def _note_vote(self, vote: Vote, decision: Decision | None) -> None:
        """Keep a counted vote with its proposal's tally after it (for the next tick)."""
        row = vote_row(vote, self.cluster, decision)
        if row is not None:
            self._votes.append(row)

    # the log ------------------------------------------------------------------------------

    def _decided(self, decision: Decision) -> None:
        """A decision this view reached: the proposer records it; the others (and an
        observer) wait for it."""
        if self.key is not None and decision.proposal.proposer == self.node_id:
            self._to_append.append(decision.to_entry())

    def _log_results(self) -> list[Decision]:
        """The decisions the finished log task applied (none while it runs)."""
        task = self._sync
        if task is None or not task.done():
            return []
        self._sync = None
        error = task.exception()
        if error is not None:  # not a storage error: stop writing and reading, say why
            self._log_stuck = True
            self.counts["log_errors"] += 1
            log.error("partifacts: consensus log task failed: %r", error)
            return []
        return task.result()

    async def sync_log(self) -> list[Decision]:
        """Wait for the running log task, then run one more (tests and shutdown); the
        decisions both applied."""
        out = []
        if self._sync is not None:
            out += await self._sync
            self._sync = None
        return out + await self._sync_log()

    async def _sync_log(self) -> list[Decision]:
        """Apply what the log holds beyond this view's head, then append this node's queued
        decisions (each at the head it expects); the decisions applied. A queued passed role
        plan whose term the log has meanwhile decided (another formation got there first, or
        the other side of a healed partition moved on) is dropped, not appended: no view
        would apply it, and the log must not hold two passed plans of one term (counted as
        the log's ``stale``)."""
        if self._log_stuck:
            return []
        pc, out = self.cluster, []
        try:
            out += self._apply(await asyncio.to_thread(self.log.read, pc.head + 1))
            while self._to_append:
                entry = self._to_append[0]
                if _stale_plan(entry, pc.term):
                    self._to_append.popleft()
                    self.counts["log_stale"] += 1
                    continue
                index = await asyncio.to_thread(self.log.append, entry, expected_last=pc.head)
                self._to_append.popleft()
                if index != pc.head + 1:  # cannot happen on a gapless log; never skip one
                    raise IntegrityError(index, f"appended at {index}, head {pc.head}")
                out += self._apply([entry])
        except CasConflict:
            self.counts["log_conflicts"] += 1  # another writer got there first: retry next tick
        except StorageError as exc:
            self.counts["log_errors"] += 1
            log.warning("partifacts: consensus log: %s", exc)
        return out

    def _apply(self, entries: list[bytes]) -> list[Decision]:
        """Apply log entries in order (every signature re-checked); a bad one stops this view
        at the entry before it (counted, logged), so no index is ever skipped."""
        out = []
        for entry in entries:
            try:
                handover = TaskEntry.from_entry(entry)
                decision = None if handover is not None else Decision.from_entry(entry)
                self.cluster.restore([entry])
            except (InputError, IntegrityError) as exc:
                self._log_stuck = True
                self.rejected["bad_log_entry"] += 1
                log.error("partifacts: log entry %d refused: %s", self.cluster.head + 1, exc)
                break
            done = _entry_id(entry)
            self._to_append = deque(e for e in self._to_append if _entry_id(e) != done)
            if handover is not None:
                self._handed_over(handover)
                continue
            assert decision is not None
            self.counts[f"decided_{decision.outcome.value}"] += 1
            self.tally.decision(decision)
            self._assign(decision)
            out.append(decision)
        return out

    # delegation ---------------------------------------------------------------------------

    def _assign(self, decision: Decision) -> None:
        """A decision read from the log: a passed intent or command is delegated in every
        view alike (the Executor picked from the log's roles and the proposal's id); the
        Executor's node runs it as a one-shot glyph on its cell (a command under its own
        allowlist)."""
        task = self.delegation.assign(decision, self.cluster.roles)
        if task is None or task.executor != self.node_id or self.key is None:
            return
        if self._member is None:
            self.counts["task_no_runner"] += 1
            return
        try:
            self._member.glyphs.submit(task_glyph(task))
            self.counts["task_submitted"] += 1
        except (InputError, ProtocolError) as exc:
            self._results[task.id] = (False, f"submit refused: {exc}"[:200])

    def _handed_over(self, entry: TaskEntry) -> None:
        """A hand-over read from the log moves its task in this view (a forged or
        out-of-role one is refused and counted: the same in every view); this node makes the
        next hand-over when its cell holds the task's next role."""
        task = self.delegation.apply(entry, self.cluster.book.keys)
        if task is None:
            self.rejected["task_refused"] += 1
            return
        if self.key is None:
            return
        if task.state is TaskState.REPORTED and task.validator == self.node_id:
            accept = bool(task.ok) and bool(task.result)
            event = TaskEvent.ACCEPT if accept else TaskEvent.REJECT
            self._hand(self.key, task.id, event, at=entry.at)
        elif task.state is TaskState.VALIDATED and task.integrator == self.node_id:
            self._hand(self.key, task.id, TaskEvent.RECORD, at=entry.at)

    def _report(self, key: NodeKey, now: float) -> None:
        """As the Executor: the run of each task this node ran goes on the log, once."""
        for task_id, (ok, result) in list(self._results.items()):
            del self._results[task_id]
            task = self.delegation.tasks.get(task_id)
            if task is None or task.executor != self.node_id or task_id in self._reported:
                continue
            self._reported.add(task_id)
            self._hand(key, task_id, TaskEvent.REPORT, at=now, ok=ok, result=result[:200])
        self._reported &= set(self.delegation.tasks)

    def _hand(self, key: NodeKey, task_id: str, event: TaskEvent, *, at: float, **run: Any) -> None:
        entry = TaskEntry.create(key, task=task_id, event=event, by=self.node_id, at=at, **run)
        self._to_append.append(entry.to_entry())
        self.counts[f"task_{event.value}"] += 1

    # proposing and voting -----------------------------------------------------------------

    def _form(self, key: NodeKey, now: float) -> None:
        """While there is no Validator: if this view's plan names this cell Genesis, record
        the plan as a decision it alone was eligible for (one per head)."""
        pc = self.cluster
        if pc.validators() or self._formed_at == pc.head:
            return
        plan = plan_roles(pc.states(), current=pc.roles, live=pc.live(now))
        if not plan or plan == pc.roles or plan.get(self.node_id) is not Role.GENESIS:
            return
        payload = {**RolePlan(roles=plan, term=pc.term + 1).to_payload(), "why": "formation"}
        p = Proposal.create(
            key,
            kind="roles",
            subject=f"roles-{pc.term + 1}",
            payload=payload,
            proposer=self.node_id,
            created=now,
            deadline=now + self.vote_seconds,
            eligible=(self.node_id,),
        )
        vote = Vote.create(key, proposal_id=p.id, voter=self.node_id, yes=True, at=now)
        decision = Decision(proposal=p, outcome=Outcome.PASSED, votes=(vote,), decided_at=now)
        self._formed_at = pc.head
        self._to_append.append(decision.to_entry())

    def _propose_roles(self, key: NodeKey, now: float) -> None:
        """The proposer puts a changed role plan to the Validators (one open at a time)."""
        pc = self.cluster
        if not pc.validators() or pc.proposer(now) != self.node_id:
            return
        if any(e.proposal.kind == "roles" for e in pc.book.open_proposals.values()):
            return
        plan = pc.distribute_roles(now)  # with Validators it is returned, not applied
        if plan is None:
            return
        why = "failover" if pc.genesis is not None and pc.genesis not in plan.roles else "roles"
        self._open(key, "roles", {**plan.to_payload(), "why": why}, f"roles-{plan.term}", now)

    def _propose_intent(self, key: NodeKey, now: float) -> None:
        """The proposer puts an intent to the Validators every ``propose_every`` seconds."""
        pc = self.cluster
        if now < self._next_intent or not pc.validators() or pc.proposer(now) != self.node_id:
            return
        self._next_intent = now + self.propose_every
        serial = round(now * 1000)
        self._open(
            key, "intent", {"what": "probe", "n": serial}, f"intent-{self.node_id}-{serial}", now
        )

    def _open(
        self, key: NodeKey, kind: str, payload: dict[str, Any], subject: str, now: float
    ) -> None:
        p = Proposal.create(
            key,
            kind=kind,
            subject=subject,
            payload=payload,
            proposer=self.node_id,
            created=now,
            deadline=now + self.vote_seconds,
            eligible=self.cluster.validators(),
        )
        try:
            self.open_operator(p, now)
        except ProtocolError:
            return  # refused and counted by the book

    def open_operator(self, proposal: Proposal, now: float) -> None:
        """Open ``proposal`` (signed by this node, the proposer) here and send it to the
        Validators. Refusals raise :class:`~becomingone.errors.ProtocolError` (counted; an
        observer refuses every proposal: ``observer``)."""
        self._writable()
        self.cluster.propose(proposal, now)
        self.counts[f"proposed_{proposal.kind}"] += 1
        self.tally.proposed[proposal.kind] += 1
        self._events.append(opened_event(proposal))
        self._send("proposal", {"proposal": proposal.to_json()})

    def cast(self, vote: Vote, now: float) -> Decision | None:
        """Count this node's signed ``vote`` here and send it (refusals raise
        :class:`~becomingone.errors.ProtocolError`, counted; an observer: ``observer``); the
        decision it made, if any."""
        self._writable()
        decision = self.cluster.vote(vote, now)
        self._note_vote(vote, decision)
        self._voted.add(vote.proposal_id)
        self.counts["votes"] += 1
        self.tally.votes["yes" if vote.yes else "no"] += 1
        self._send("vote", {"proposal_id": vote.proposal_id, **vote.to_json()})
        if decision is not None:
            self._decided(decision)
        return decision

    def _writable(self) -> None:
        """An observer holds no key: it neither proposes nor votes."""
        if self.key is None:
            raise ProtocolError("observer", "an observer's view neither proposes nor votes")

    def _vote(self, key: NodeKey, now: float) -> None:
        """As a Validator, sign a verdict on each open proposal this node may vote on, once."""
        pc = self.cluster
        for pid, entry in list(pc.book.open_proposals.items()):
            if pid in self._voted or self.node_id not in entry.proposal.eligible:
                continue
            yes = pc.judge(self.node_id, entry.proposal)
            vote = Vote.create(key, proposal_id=pid, voter=self.node_id, yes=yes, at=now)
            self._voted.add(pid)
            try:
                self.cast(vote, now)
            except ProtocolError:
                continue  # counted by the book and the router
        self._voted &= set(pc.book.open_proposals)

    # reading ------------------------------------------------------------------------------

    def row(self) -> dict[str, Any]:
        """This node's partifact row for its status: its state and role, the lifecycle, the
        term, the Genesis, the log head and memory digest, what was refused, and the log's
        ``conflicts`` (another writer appended first), ``errors`` (the log did not answer:
        e.g. its JetStream stream has no Raft majority on this side of a partition) and
        ``stale`` (queued role plans of a term already decided, dropped)."""
        pc = self.cluster
        role = pc.roles.get(self.node_id)
        refused = Counter(self.rejected) + Counter(pc.book.rejected) + Counter(pc.router.refused)
        mine = pc.partifacts.get(self.node_id)  # None: an observer, no member of its view
        return {
            "state": None if mine is None else mine.state.value,
            "role": None if role is None else role.value,
            "lifecycle": pc.lifecycle.stage.value,
            "term": pc.term,
            "genesis": pc.genesis,
            "head": pc.head,
            "memory": pc.memory,
            "rejected": dict(sorted(refused.items())),
            "log": {
                "conflicts": self.counts["log_conflicts"],
                "errors": self.counts["log_errors"],
                "stale": self.counts["log_stale"],
            },
            "tasks": dict(sorted(self.delegation.counts.items())),
        }


def _stale_plan(entry: bytes, term: int) -> bool:
    """True iff ``entry`` is a passed role plan for a term at or below ``term``."""
    if TaskEntry.from_entry(entry) is not None:
        return False
    decision = Decision.from_entry(entry)
    if not decision.passed or decision.proposal.kind != "roles":
        return False
    return RolePlan.from_payload(decision.proposal.payload).term <= term


def _entry_id(entry: bytes) -> str:
    """What a log entry settles: a decision's proposal id, a hand-over's task and event."""
    handover = TaskEntry.from_entry(entry)
    if handover is not None:
        return f"{handover.task}:{handover.event.value}"
    return Decision.from_entry(entry).proposal.id


def _vote(doc: Mapping[str, Any]) -> Vote:
    """A vote from its message (``InputError`` / ``ValueError`` when malformed)."""
    return Vote(
        proposal_id=str(doc["proposal_id"]),
        voter=str(doc["voter"]),
        yes=doc["yes"],
        at=float(doc["at"]),
        signature=bytes.fromhex(doc["sig"]),
    )
