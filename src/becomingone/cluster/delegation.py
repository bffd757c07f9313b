"""Delegation (WSP 28 §5.3): a passed intent goes from the Genesis to an Executor (future →
present), the Executor's result to a Validator (present → future), the Validator's verdict to
an Integrator, who records it.

Rule: sans-IO and table-driven. :class:`Delegation` tracks each task through
:data:`TASK_TRANSITIONS`; every hand-over is a :class:`~becomingone.cluster.roles.Signal`
routed by the :class:`~becomingone.cluster.roles.SignalRouter` (so the §5.2 authority holds);
a move not in the table, or by a cell the task was not given to, raises
:class:`~becomingone.errors.ProtocolError`. What the Executor runs (a glyph on a full cell) is
the driver's business.
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, replace

from becomingone.cluster.consensus import Decision
from becomingone.cluster.roles import Role, Signal, SignalKind, SignalRouter
from becomingone.errors import ProtocolError

__all__ = ["TASK_TRANSITIONS", "Delegation", "Task", "TaskEvent", "TaskState"]


class TaskState(enum.StrEnum):
    """Where a delegated intent is."""

    ASSIGNED = "assigned"  #: the Executor has the intent
    REPORTED = "reported"  #: the Validator has the result
    VALIDATED = "validated"  #: the Integrator has an accepted result
    REJECTED = "rejected"  #: the Validator refused the result (final)
    RECORDED = "recorded"  #: merged into shared memory (final)
    EXPIRED = "expired"  #: not finished within the driver's bound (final)


class TaskEvent(enum.StrEnum):
    """What moves a task."""

    REPORT = "report"
    ACCEPT = "accept"
    REJECT = "reject"
    RECORD = "record"
    EXPIRE = "expire"


_T, _E = TaskState, TaskEvent
#: (state, event) → next state; every other pair is illegal.
TASK_TRANSITIONS: dict[tuple[TaskState, TaskEvent], TaskState] = {
    (_T.ASSIGNED, _E.REPORT): _T.REPORTED,
    (_T.REPORTED, _E.ACCEPT): _T.VALIDATED,
    (_T.REPORTED, _E.REJECT): _T.REJECTED,
    (_T.VALIDATED, _E.RECORD): _T.RECORDED,
    (_T.ASSIGNED, _E.EXPIRE): _T.EXPIRED,
    (_T.REPORTED, _E.EXPIRE): _T.EXPIRED,
    (_T.VALIDATED, _E.EXPIRE): _T.EXPIRED,
}
_FINAL = frozenset({_T.RECORDED, _T.REJECTED, _T.EXPIRED})

#: (event, the Task field naming who may cause it, the signal it sends, to whom).
_STEPS: dict[TaskEvent, tuple[str, SignalKind, str]] = {
    _E.REPORT: ("executor", SignalKind.RESULT, "validator"),
    _E.ACCEPT: ("validator", SignalKind.VERDICT, "integrator"),
    _E.REJECT: ("validator", SignalKind.VERDICT, "integrator"),
    _E.RECORD: ("integrator", SignalKind.RECORD, "genesis"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """One delegated intent: who has it at each step, and the result once reported."""

    id: str
    what: str
    genesis: str
    executor: str
    validator: str
    integrator: str
    assigned_at: float = 0.0
    state: TaskState = TaskState.ASSIGNED
    ok: bool | None = None
    result: str = ""


class Delegation:
    """The delegated intents of one cluster view.

    Examples
    --------
    >>> from becomingone.cluster import ConsensusBook, PartifactState
    >>> roles = {"g": Role.GENESIS, "e": Role.EXECUTOR, "v": Role.VALIDATOR, "i": Role.INTEGRATOR}
    >>> states = dict.fromkeys(roles, PartifactState.OPERATIONAL)
    >>> d = Delegation(SignalRouter(lambda: roles, lambda: states, ConsensusBook({})))
    >>> t = d.start(task_id="t1", what="probe", genesis="g", roles=roles)
    >>> t.executor, d.report("t1", by="e", ok=True, result="ab").state.value
    ('e', 'reported')
    >>> d.verdict("t1", by="v", accept=True).state.value, d.record("t1", by="i").state.value
    ('validated', 'recorded')
    """

    def __init__(self, router: SignalRouter, *, keep: int = 1000) -> None:
        self.router = router
        self.tasks: dict[str, Task] = {}
        self.done: deque[Task] = deque(maxlen=keep)
        self.counts: Counter[str] = Counter()

    def assign(self, decision: Decision, roles: Mapping[str, Role]) -> Task | None:
        """Delegate a passed intent: ``None`` (counted) if it is not one or a role is empty."""
        p = decision.proposal
        if not decision.passed or p.kind != "intent":
            return None
        what = str(p.payload.get("what"))
        return self.start(
            task_id=p.id, what=what, genesis=p.proposer, roles=roles, now=decision.decided_at
        )

    def start(
        self,
        *,
        task_id: str,
        what: str,
        genesis: str,
        roles: Mapping[str, Role],
        now: float = 0.0,
    ) -> Task | None:
        """Send the intent ``task_id`` from ``genesis`` to an Executor, spread by the id."""
        if task_id in self.tasks:
            raise ProtocolError("double", f"task {task_id} is already delegated")
        holders = {r: sorted(c for c, x in roles.items() if x is r) for r in Role}
        if not all(holders[r] for r in (Role.EXECUTOR, Role.VALIDATOR, Role.INTEGRATOR)):
            self.counts["unassigned"] += 1
            return None
        k = int.from_bytes(task_id.encode(), "big")
        pick = {r: holders[r][k % len(holders[r])] for r in holders if holders[r]}
        task = Task(
            id=task_id,
            what=what,
            genesis=genesis,
            executor=pick[Role.EXECUTOR],
            validator=pick[Role.VALIDATOR],
            integrator=pick[Role.INTEGRATOR],
            assigned_at=now,
        )
        sig = Signal(kind=SignalKind.INTENT, source=genesis, target=task.executor)
        if self.router.emit_signal(sig) is None:
            self.counts["refused"] += 1
            return None
        self.tasks[task_id] = task
        self.counts["assigned"] += 1
        return task

    def _move(self, task_id: str, event: TaskEvent, by: str, **change: object) -> Task:
        task = self.tasks.get(task_id)
        if task is None:
            raise ProtocolError("unknown_task", f"no task {task_id!r}")
        who, kind, to = _STEPS[event]
        if by != getattr(task, who):
            raise ProtocolError("not_assigned", f"{by} is not the {who} of task {task_id}")
        nxt = TASK_TRANSITIONS.get((task.state, event))
        if nxt is None:
            raise ProtocolError("illegal_transition", f"task {task_id}: {event} from {task.state}")
        if self.router.emit_signal(Signal(kind=kind, source=by, target=getattr(task, to))) is None:
            self.counts["refused"] += 1
            raise ProtocolError("not_authorized", f"{by} may not send {kind} for task {task_id}")
        moved = replace(task, state=nxt, **change)  # type: ignore[arg-type]
        self._settle(moved)
        return moved

    def _settle(self, moved: Task) -> None:
        if moved.state in _FINAL:
            del self.tasks[moved.id]
            self.done.append(moved)
        else:
            self.tasks[moved.id] = moved
        self.counts[moved.state.value] += 1

    def expire(self, now: float, after: float) -> list[Task]:
        """End every task assigned more than ``after`` seconds before ``now`` (its Executor
        went silent, or its run never came): EXPIRED, so the open table stays bounded."""
        old = [t for t in self.tasks.values() if now - t.assigned_at > after]
        out = []
        for task in old:
            moved = replace(task, state=TASK_TRANSITIONS[(task.state, TaskEvent.EXPIRE)])
            self._settle(moved)
            out.append(moved)
        return out

    def report(self, task_id: str, *, by: str, ok: bool, result: str) -> Task:
        """The Executor ``by`` hands its result (``ok``, a digest) to the Validator."""
        return self._move(task_id, TaskEvent.REPORT, by, ok=ok, result=result)

    def verdict(self, task_id: str, *, by: str, accept: bool) -> Task:
        """The Validator ``by`` accepts or rejects the result, telling the Integrator."""
        return self._move(task_id, TaskEvent.ACCEPT if accept else TaskEvent.REJECT, by)

    def record(self, task_id: str, *, by: str) -> Task:
        """The Integrator ``by`` merges an accepted result into shared memory."""
        return self._move(task_id, TaskEvent.RECORD, by)
