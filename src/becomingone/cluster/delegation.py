"""Delegation (WSP 28 §5.3): a passed intent goes from the Genesis to an Executor (future →
present), the Executor's result to a Validator (present → future), the Validator's verdict to
an Integrator, who records it.

Rule: sans-IO and table-driven. :class:`Delegation` tracks each task through
:data:`TASK_TRANSITIONS`; every hand-over is a :class:`~becomingone.cluster.roles.Signal`
routed by the :class:`~becomingone.cluster.roles.SignalRouter` (so the §5.2 authority holds);
a move not in the table, or by a cell the task was not given to, raises
:class:`~becomingone.errors.ProtocolError`. What the Executor runs (a glyph on a full cell) is
the driver's business.

Across processes every hand-over is a :class:`TaskEntry` on the consensus log, signed by the
cell that makes it: every view applies the log in order (:meth:`Delegation.apply`), so every
node moves every task the same way; a forged entry or one by a cell the task was not given to
is refused there and counted (the same refusal on every node: it depends on the log only).
"""

from __future__ import annotations

import enum
import json
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from becomingone.cluster.consensus import Decision
from becomingone.cluster.roles import Role, Signal, SignalKind, SignalRouter
from becomingone.errors import InputError, ProtocolError
from becomingone.keys import NodeKey, verify_signature

__all__ = [
    "DELEGATED",
    "TASK_TRANSITIONS",
    "Delegation",
    "Task",
    "TaskEntry",
    "TaskEvent",
    "TaskState",
]

#: Longest result digest a hand-over carries.
MAX_RESULT = 200
#: The kinds of passed proposal that are delegated: an ``intent`` (a probe) and an operator's
#: ``command`` (run as a ``command`` glyph under the Executor's own allowlist).
DELEGATED = frozenset({"intent", "command"})


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
    kind: str = "intent"
    genesis: str
    executor: str
    validator: str
    integrator: str
    assigned_at: float = 0.0
    state: TaskState = TaskState.ASSIGNED
    ok: bool | None = None
    result: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskEntry:
    """One hand-over of task ``task`` on the consensus log: ``event`` by the cell ``by``
    (with the run's ``ok`` and ``result`` on a report), at ``at``, signed by ``by``'s key.

    Examples
    --------
    >>> from becomingone.keys import NodeKey
    >>> key = NodeKey.generate()
    >>> e = TaskEntry.create(key, task="t1", event=TaskEvent.REPORT, by="e", ok=True, at=1.0)
    >>> TaskEntry.from_entry(e.to_entry()) == e, e.verify({"e": key.public_bytes})
    (True, True)
    """

    task: str
    event: TaskEvent
    by: str
    ok: bool | None = None
    result: str = ""
    at: float = 0.0
    signature: bytes = b""

    def body(self) -> bytes:
        """The canonical bytes ``by`` signs."""
        return _canonical(self._fields())

    def _fields(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "event": self.event.value,
            "by": self.by,
            "ok": self.ok,
            "result": self.result,
            "at": self.at,
        }

    @classmethod
    def create(cls, key: NodeKey, **fields: Any) -> TaskEntry:
        """A hand-over of ``fields`` signed by ``key``."""
        unsigned = cls(**fields)
        return replace(unsigned, signature=key.sign(unsigned.body()))

    def verify(self, keys: Mapping[str, bytes]) -> bool:
        """True iff ``by`` is a known cell and signed this entry."""
        public = keys.get(self.by)
        return public is not None and verify_signature(public, self.body(), self.signature)

    def to_entry(self) -> bytes:
        """Canonical bytes for the consensus log."""
        return _canonical({"handover": {**self._fields(), "sig": self.signature.hex()}})

    @classmethod
    def from_entry(cls, entry: bytes) -> TaskEntry | None:
        """The hand-over in a log entry; ``None`` if the entry is not one (a decision);
        ``InputError`` if it is one out of shape."""
        try:
            doc = json.loads(entry)
        except ValueError:
            return None
        if not isinstance(doc, dict) or "handover" not in doc:
            return None
        try:
            h = doc["handover"]
            ok, result, at = h["ok"], str(h["result"]), float(h["at"])
            if (ok is not None and not isinstance(ok, bool)) or len(result) > MAX_RESULT:
                raise ValueError(f"ok {ok!r}, result of {len(result)} characters")
            return cls(
                task=str(h["task"]),
                event=TaskEvent(h["event"]),
                by=str(h["by"]),
                ok=ok,
                result=result,
                at=at,
                signature=bytes.fromhex(h["sig"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError("entry", f"not a task hand-over: {exc}") from None


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class Delegation:
    """The delegated intents and commands of one cluster view.

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
        """Delegate a passed intent or command (:data:`DELEGATED`): ``None`` (counted) if
        it is not one or a role is empty."""
        p = decision.proposal
        if not decision.passed or p.kind not in DELEGATED:
            return None
        what = str(p.payload.get("what"))
        return self.start(
            task_id=p.id,
            what=what,
            kind=p.kind,
            genesis=p.proposer,
            roles=roles,
            now=decision.decided_at,
        )

    def start(
        self,
        *,
        task_id: str,
        what: str,
        genesis: str,
        roles: Mapping[str, Role],
        now: float = 0.0,
        kind: str = "intent",
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
            kind=kind,
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
        task = self.tasks.get(task_id) or next((t for t in self.done if t.id == task_id), None)
        if task is None:  # a finished one is still known: who may move it, and that none may
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

    def apply(self, entry: TaskEntry, keys: Mapping[str, bytes]) -> Task | None:
        """Move a task by a hand-over read from the log: the moved task, or ``None`` when the
        entry is refused (counted: ``forged``, a signature not ``by``'s, or the reason of the
        :class:`~becomingone.errors.ProtocolError`: ``unknown_task``, ``not_assigned``,
        ``illegal_transition``, ``not_authorized``)."""
        if not entry.verify(keys):
            self.counts["refused_forged"] += 1
            return None
        try:
            if entry.event is TaskEvent.REPORT:
                return self.report(entry.task, by=entry.by, ok=bool(entry.ok), result=entry.result)
            if entry.event in (TaskEvent.ACCEPT, TaskEvent.REJECT):
                return self.verdict(entry.task, by=entry.by, accept=entry.event is TaskEvent.ACCEPT)
            if entry.event is TaskEvent.RECORD:
                return self.record(entry.task, by=entry.by)
            raise ProtocolError("illegal_transition", f"{entry.event} is not a hand-over")
        except ProtocolError as err:
            self.counts[f"refused_{err.reason}"] += 1
            return None

    def report(self, task_id: str, *, by: str, ok: bool, result: str) -> Task:
        """The Executor ``by`` hands its result (``ok``, a digest) to the Validator."""
        return self._move(task_id, TaskEvent.REPORT, by, ok=ok, result=result)

    def verdict(self, task_id: str, *, by: str, accept: bool) -> Task:
        """The Validator ``by`` accepts or rejects the result, telling the Integrator."""
        return self._move(task_id, TaskEvent.ACCEPT if accept else TaskEvent.REJECT, by)

    def record(self, task_id: str, *, by: str) -> Task:
        """The Integrator ``by`` merges an accepted result into shared memory."""
        return self._move(task_id, TaskEvent.RECORD, by)
