"""Delegation (§5.3): intent → Executor → result → Validator → verdict → Integrator → record,
each hand-over routed by the signal authority, moves only by the table and the right cell."""

from __future__ import annotations

import pytest

from becomingone.cluster import (
    ConsensusBook,
    Decision,
    Delegation,
    Outcome,
    PartifactState,
    Proposal,
    Role,
    SignalRouter,
    TaskEntry,
    TaskEvent,
    TaskState,
)
from becomingone.errors import InputError, ProtocolError
from becomingone.runtime.partifacts import task_glyph
from tests.cluster.partifact_helpers import make_keys

KEYS = make_keys(6)

S = PartifactState
ROLES = {
    "c00": Role.GENESIS,
    "c01": Role.VALIDATOR,
    "c02": Role.VALIDATOR,
    "c03": Role.INTEGRATOR,
    "c04": Role.EXECUTOR,
    "c05": Role.EXECUTOR,
}


def _delegation(
    roles: dict[str, Role] | None = None,
) -> tuple[Delegation, dict[str, PartifactState]]:
    roles = dict(ROLES) if roles is None else roles
    states = dict.fromkeys(KEYS, S.OPERATIONAL)
    return Delegation(SignalRouter(lambda: roles, lambda: states, ConsensusBook({}))), states


def _proposal(kind: str = "intent", what: str = "probe") -> Proposal:
    return Proposal.create(
        KEYS["c00"], kind=kind, subject="s", payload={"what": what}, proposer="c00",
        created=0.0, deadline=1.0, eligible=("c01", "c02"),
    )  # fmt: skip


def _passed(kind: str = "intent", what: str = "probe") -> Decision:
    return Decision(
        proposal=_proposal(kind, what), outcome=Outcome.PASSED, votes=(), decided_at=0.5
    )


def test_a_passed_intent_goes_round_and_is_recorded() -> None:
    """A passed intent is assigned to an Executor, its result validated and recorded; each
    step is one routed signal of the right kind; the task then leaves the open table."""
    d, _ = _delegation()
    t = d.assign(_passed(), ROLES)
    assert t is not None and t.state is TaskState.ASSIGNED and ROLES[t.executor] is Role.EXECUTOR
    assert d.report(t.id, by=t.executor, ok=True, result="ab12").state is TaskState.REPORTED
    assert d.verdict(t.id, by=t.validator, accept=True).state is TaskState.VALIDATED
    done = d.record(t.id, by=t.integrator)
    assert done.state is TaskState.RECORDED and done.ok and done.result == "ab12"
    assert d.tasks == {} and list(d.done) == [done]
    assert dict(d.router.routed) == {"intent": 1, "result": 1, "verdict": 1, "record": 1}


def test_a_rejected_result_is_not_recorded() -> None:
    """A Validator's reject ends the task as REJECTED; recording it is illegal."""
    d, _ = _delegation()
    t = d.assign(_passed(), ROLES)
    assert t is not None
    d.report(t.id, by=t.executor, ok=False, result="")
    assert d.verdict(t.id, by=t.validator, accept=False).state is TaskState.REJECTED
    with pytest.raises(ProtocolError, match="illegal_transition"):
        d.record(t.id, by=t.integrator)


def test_only_the_assigned_cell_moves_a_task_and_only_by_the_table() -> None:
    """Another Executor cannot report; a Validator cannot record; a second report and a
    verdict before the report are illegal; every refusal leaves the task where it was."""
    d, _ = _delegation()
    t = d.assign(_passed(), ROLES)
    assert t is not None
    other = next(c for c, r in ROLES.items() if r is Role.EXECUTOR and c != t.executor)
    with pytest.raises(ProtocolError, match="not_assigned"):
        d.report(t.id, by=other, ok=True, result="x")
    with pytest.raises(ProtocolError, match="illegal_transition"):
        d.verdict(t.id, by=t.validator, accept=True)
    d.report(t.id, by=t.executor, ok=True, result="x")
    with pytest.raises(ProtocolError, match="illegal_transition"):
        d.report(t.id, by=t.executor, ok=True, result="y")
    with pytest.raises(ProtocolError, match="not_assigned"):
        d.record(t.id, by=t.validator)
    assert d.tasks[t.id].state is TaskState.REPORTED and d.tasks[t.id].result == "x"


def test_the_router_can_refuse_a_hand_over() -> None:
    """An Executor demoted below its role's state cannot send its result (state_below_role)."""
    d, states = _delegation()
    t = d.assign(_passed(), ROLES)
    assert t is not None
    states[t.executor] = S.DORMANT
    with pytest.raises(ProtocolError, match="not_authorized"):
        d.report(t.id, by=t.executor, ok=True, result="x")
    assert d.router.refused["state_below_role"] == 1 and d.counts["refused"] == 1


def test_only_passed_intents_with_every_role_are_delegated() -> None:
    """Role plans, failed intents and clusters without an Executor delegate nothing; a task
    id is delegated once."""
    d, _ = _delegation()
    assert d.assign(_passed(kind="roles"), ROLES) is None
    failed = Decision(proposal=_proposal(), outcome=Outcome.EXPIRED, votes=(), decided_at=1.0)
    assert d.assign(failed, ROLES) is None
    no_exec = {c: r for c, r in ROLES.items() if r is not Role.EXECUTOR}
    assert d.assign(_passed(), no_exec) is None and d.counts["unassigned"] == 1
    decision = _passed(what="other")
    assert d.assign(decision, ROLES) is not None
    with pytest.raises(ProtocolError, match="double"):
        d.assign(decision, ROLES)


def test_unfinished_tasks_expire() -> None:
    """A task not finished within the bound ends EXPIRED (from any open state) and leaves the
    open table; a younger one stays; a report on an expired task is unknown."""
    d, _ = _delegation()
    old = d.start(task_id="t-old", what="x", genesis="c00", roles=ROLES, now=0.0)
    new = d.start(task_id="t-new", what="x", genesis="c00", roles=ROLES, now=9.0)
    assert old is not None and new is not None
    d.report("t-old", by=old.executor, ok=True, result="r")
    [gone] = d.expire(now=10.5, after=10.0)
    assert gone.id == "t-old" and gone.state is TaskState.EXPIRED and list(d.tasks) == ["t-new"]
    with pytest.raises(ProtocolError, match="illegal_transition"):
        d.report("t-old", by=old.executor, ok=True, result="r")
    with pytest.raises(ProtocolError, match="unknown_task"):
        d.report("t-never", by=old.executor, ok=True, result="r")
    assert d.counts["expired"] == 1


def test_hand_overs_from_the_log_move_a_task_and_refuse_forged_or_out_of_role_ones() -> None:
    """:meth:`Delegation.apply` of signed hand-overs: the chain report → accept → record
    moves the task to RECORDED; a stranger's signature (``forged``), a cell signing a step
    of another role (``not_assigned``), a replay (``illegal_transition``) and a task nobody
    was given (``unknown_task``) are refused and counted, the task untouched; an entry out
    of shape is an ``InputError``, a decision's entry not a hand-over."""
    d, _ = _delegation()
    t = d.assign(_passed(), ROLES)
    assert t is not None
    public = {c: k.public_bytes for c, k in KEYS.items()}

    def entry(by: str, event: TaskEvent, *, key: str | None = None, **run: object) -> TaskEntry:
        return TaskEntry.create(KEYS[key or by], task=t.id, event=event, by=by, at=1.0, **run)

    report = entry(t.executor, TaskEvent.REPORT, ok=True, result="ab")
    assert TaskEntry.from_entry(report.to_entry()) == report
    assert d.apply(entry(t.executor, TaskEvent.REPORT, key=t.validator), public) is None
    assert d.apply(entry(t.validator, TaskEvent.REPORT, ok=True, result="x"), public) is None
    assert d.tasks[t.id].state is TaskState.ASSIGNED
    moved = d.apply(report, public)
    assert moved is not None and moved.state is TaskState.REPORTED and moved.result == "ab"
    assert d.apply(report, public) is None  # a replay
    assert d.apply(entry(t.validator, TaskEvent.ACCEPT), public) is not None
    done = d.apply(entry(t.integrator, TaskEvent.RECORD), public)
    assert done is not None and done.state is TaskState.RECORDED
    stray = TaskEntry.create(KEYS["c00"], task="nope", event=TaskEvent.RECORD, by="c00", at=1.0)
    assert d.apply(stray, public) is None
    assert {k: v for k, v in d.counts.items() if k.startswith("refused_")} == {
        "refused_forged": 1,
        "refused_not_assigned": 1,
        "refused_illegal_transition": 1,
        "refused_unknown_task": 1,
    }
    assert TaskEntry.from_entry(_passed().to_entry()) is None
    with pytest.raises(InputError, match="hand-over"):
        TaskEntry.from_entry(b'{"handover": {"task": "t"}}')


def test_a_passed_command_is_delegated_as_a_command_glyph() -> None:
    """A passed ``command`` is a task like an intent; its glyph is a ``command`` of the text
    split as a shell would (unbalanced quotes: one word, which no allowlist holds); an
    intent's glyph is the load probe."""
    d, _ = _delegation()
    t = d.assign(_passed("command", "df -k '/tmp dir'"), ROLES)
    assert t is not None and t.kind == "command" and t.what == "df -k '/tmp dir'"
    glyph = task_glyph(t)
    assert glyph.kind == "command" and list(glyph.payload["argv"]) == ["df", "-k", "/tmp dir"]
    odd = d.start(task_id="t-odd", what="echo 'x", genesis="c00", roles=ROLES, kind="command")
    assert odd is not None and list(task_glyph(odd).payload["argv"]) == ["echo 'x"]
    probe = d.start(task_id="t-probe", what="probe", genesis="c00", roles=ROLES)
    assert probe is not None and task_glyph(probe).kind == "probe"
