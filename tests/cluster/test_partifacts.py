"""PartifactCluster: formation, roles by consensus with redundancy and a φ ratio, Genesis
failover and handoff, state sync to equal memory digests, restart from the log."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.cluster import (
    HIGH_ROLES,
    LOW_ROLES,
    PHI,
    ROLE_STATE,
    PartifactCluster,
    PartifactState,
    Role,
    RolePlan,
    plan_roles,
)
from becomingone.errors import InputError, IntegrityError, ProtocolError
from becomingone.memory import SqliteAppendLog
from tests.cluster.partifact_helpers import (
    awaken,
    decide,
    ignite,
    make_keys,
    proposal,
    public,
    vote,
)

S = PartifactState


def _formed(n: int, operational: int) -> tuple[PartifactCluster, dict, float]:
    keys = make_keys(n)
    pc = PartifactCluster(public(keys), genesis_timeout=1.0)
    cells = sorted(keys)
    now = ignite(pc, cells[:operational], 0.0)
    now = awaken(pc, cells[operational:], now)
    return pc, keys, now


def test_formation_applies_the_first_plan_then_requires_consensus() -> None:
    """The first plan (no Validators yet) applies at once with a Genesis; a later change is
    only returned, and applies when its proposal passes."""
    pc, keys, now = _formed(8, 1)
    plan = pc.distribute_roles(now)
    assert plan is not None and pc.roles == dict(plan.roles)
    assert pc.genesis == "c00" and pc.validators() == ()
    assert pc.distribute_roles(now) is None
    now = ignite(pc, sorted(keys)[1:], now)
    plan = pc.distribute_roles(now)  # still no Validators: formation, applied at once
    assert plan is not None and pc.roles == dict(plan.roles) and len(pc.validators()) == 2
    pc.partifacts[pc.validators()[0]].state = S.AWAKENED  # a change → a proposal
    before = dict(pc.roles)
    plan = pc.distribute_roles(now)
    assert plan is not None and dict(plan.roles) != before and pc.roles == before
    p = proposal(pc, keys, now, kind="roles", payload=plan.to_payload())
    d = decide(pc, keys, p, now)
    assert d is not None and d.passed and pc.roles == dict(plan.roles) and pc.term == plan.term


@given(st.integers(0, 40), st.integers(0, 40))
def test_plans_meet_the_role_rules(hi: int, lo: int) -> None:
    """Every plan: one Genesis iff any cell is Ø2Ø1; each role held by a cell in its state;
    dormant cells get none; with ≥ 5 cells of which ≥ 2 are Ø2Ø1: ≥ 2 on each side and
    every role held; the ratio is near φ when enough cells are Ø2Ø1."""
    states = {f"h{i}": S.OPERATIONAL for i in range(hi)}
    states |= {f"l{i}": S.AWAKENED for i in range(lo)}
    states |= {"d0": S.DORMANT}
    plan = plan_roles(states, current={}, live=states)
    held = Counter(plan.values())
    assert held[Role.GENESIS] == (1 if hi else 0)
    assert "d0" not in plan
    assert all(states[c].rank >= ROLE_STATE[r].rank for c, r in plan.items())
    high = sum(held[r] for r in HIGH_ROLES)
    low = sum(held[r] for r in LOW_ROLES)
    if hi >= 2 and hi + lo >= 5:
        assert high >= 2 and low >= 2 and all(held[r] for r in Role)
    if hi + lo >= 5 and hi >= (hi + lo) / (1 + PHI) + 1:
        assert abs(low / high - PHI) <= 0.6


def test_plan_keeps_current_holders() -> None:
    """A live Ø2Ø1 Genesis and Validators keep their roles in the next plan."""
    states = {f"c{i:02d}": S.OPERATIONAL for i in range(8)}
    current = {"c05": Role.GENESIS, "c06": Role.VALIDATOR, "c07": Role.VALIDATOR}
    plan = plan_roles(states, current=current, live=states)
    assert plan["c05"] is Role.GENESIS and plan["c06"] is plan["c07"] is Role.VALIDATOR


def _active(n: int = 16) -> tuple[PartifactCluster, dict, float]:
    pc, keys, now = _formed(n, n)
    pc.distribute_roles(now)
    return pc, keys, now


def test_genesis_failover_through_a_proposal() -> None:
    """A Genesis silent past genesis_timeout is left out of the next plan; an Integrator
    proposes it, it passes, a new Genesis holds the role (a ROLE_TRANSFER is recorded)."""
    pc, keys, now = _active()
    old = pc.genesis
    assert old is not None
    others = [c for c in keys if c != old]
    for _ in range(15):  # 1.5 s: everybody but the Genesis is heard
        now += 0.1
        for c in others:
            pc.observe(c, collapsed=True, c_cluster=0.9, now=now)
    plan = pc.distribute_roles(now)
    assert plan is not None and old not in plan.roles
    proposer = pc.proposer(now)
    assert proposer is not None and pc.roles[proposer] is Role.INTEGRATOR
    d = decide(pc, keys, proposal(pc, keys, now, kind="roles", payload=plan.to_payload()), now)
    assert d is not None and d.passed
    assert pc.genesis not in (None, old)
    move = (
        pc.transfers[-1]
        if pc.transfers[-1].role is Role.GENESIS
        else next(t for t in reversed(pc.transfers) if t.role is Role.GENESIS)
    )
    assert move.source == old and move.target == pc.genesis and move.memory == pc.digest(pc.genesis)


def test_graceful_leave_hands_genesis_over() -> None:
    """A leaving Genesis hands its role to the cell the plan names (ROLE_TRANSFER)."""
    pc, _keys, now = _active(8)
    old = pc.genesis
    assert old is not None
    move = pc.leave(old, now)
    assert move is not None and move.source == old and pc.roles[move.target] is Role.GENESIS
    assert move.context["term"] == pc.term and "intent" in move.signals
    assert old not in pc.partifacts


def test_transfer_refuses_a_cell_below_the_role_state() -> None:
    """Handing the Genesis role to an Ø1Ø2 cell is refused and counted."""
    pc, _keys, now = _formed(6, 3)
    pc.distribute_roles(now)
    with pytest.raises(ProtocolError, match="state_below_role"):
        pc.transfer(Role.GENESIS, pc.genesis, "c05")
    assert pc.router.refused["state_below_role"] == 1


def test_proposals_are_validated() -> None:
    """An Executor may not propose; a proposal must name the current Validators."""
    pc, keys, now = _active(8)
    executor = next(c for c, r in pc.roles.items() if r is Role.EXECUTOR)
    with pytest.raises(ProtocolError, match="not_authorized"):
        pc.propose(proposal(pc, keys, now, proposer=executor), now)
    bad = proposal(pc, keys, now)
    bad = type(bad).create(keys[bad.proposer], **{**_fields(bad), "eligible": pc.validators()[:1]})
    with pytest.raises(ProtocolError, match="bad_proposal"):
        pc.propose(bad, now)


def _fields(p: object) -> dict[str, object]:
    names = ("kind", "subject", "payload", "proposer", "created", "deadline", "eligible")
    return {n: getattr(p, n) for n in names}


def test_validators_reject_a_plan_they_would_not_make() -> None:
    """judge says no to a role plan other than the one the view computes, so it fails."""
    pc, keys, now = _active(8)
    wrong = RolePlan(roles={c: Role.EXECUTOR for c in keys}, term=pc.term + 1)
    d = decide(pc, keys, proposal(pc, keys, now, kind="roles", payload=wrong.to_payload()), now)
    assert d is not None and not d.passed
    assert pc.roles != dict(wrong.roles)


def test_sync_state_converges_digests_and_is_change_driven() -> None:
    """After a decision, sync_state gives every live cell the same digest and a PHASE_SYNC;
    a second call with nothing changed sends nothing; a silent cell stays behind; only the
    digests some cell still holds are kept."""
    pc, keys, now = _active(8)
    first = pc.sync_state(now)
    assert {m.cell for m in first} == set(keys) and pc.sync_state(now) == []
    silent = "c07"
    for _ in range(12):
        now += 0.1
        for c in keys:
            if c != silent:
                pc.observe(c, collapsed=True, c_cluster=0.9, now=now)
    decide(pc, keys, proposal(pc, keys, now), now)
    msgs = pc.sync_state(now)
    assert silent not in {m.cell for m in msgs} and len(msgs) == 7
    digests = {pc.digest(c) for c in keys if c != silent}
    assert len(digests) == 1 and pc.digest(silent) not in digests
    assert all(m.memory == pc.digest(m.cell) and m.log_index == 1 for m in msgs)
    for i in range(2, 12):  # more decisions: only the digests some cell holds are kept
        decide(pc, keys, proposal(pc, keys, now + i * 0.01), now + i * 0.01)
        pc.sync_state(now + i * 0.01)
    assert set(pc._chain) == {0, pc.head} and pc.digest(silent) == pc._chain[0]


def test_restart_restores_roles_and_decisions(tmp_path: Path) -> None:
    """Decisions on an SQLite log are replayed by a fresh cluster: same roles, term, digest;
    a tampered entry is refused with IntegrityError."""
    pc, keys, now = _active(8)
    pc.partifacts[pc.validators()[0]].state = S.AWAKENED
    plan = pc.distribute_roles(now)
    assert plan is not None
    log = SqliteAppendLog(tmp_path / "consensus.db", "consensus")
    for kind, payload in (("roles", plan.to_payload()), ("intent", None)):
        d = decide(pc, keys, proposal(pc, keys, now, kind=kind, payload=payload), now)
        assert d is not None and d.passed
        log.append(d.to_entry())
    fresh = PartifactCluster(public(keys))
    assert fresh.restore(log.read()) == 2
    assert fresh.roles == pc.roles and fresh.term == pc.term
    assert fresh.digest("c00") == pc.memory
    bad = log.read()[0].replace(b'"yes":true', b'"yes":false', 1)
    with pytest.raises(IntegrityError):
        PartifactCluster(public(keys)).restore([bad])
    log.close()


def test_join_and_observe_validate() -> None:
    """A duplicate member, a short key and an unknown cell are refused, naming the parameter."""
    pc, keys, now = _formed(3, 0)
    with pytest.raises(InputError, match="cell"):
        pc.join("c00", public(keys)["c00"])
    with pytest.raises(InputError, match="public_key"):
        pc.join("x", b"short")
    with pytest.raises(InputError, match="cell"):
        pc.observe("nobody", collapsed=True, c_cluster=0.5, now=now)


def _cut(side: list[bool]) -> list[int]:
    """Form 16 cells in two identical views, cut them by ``side`` and let each view plan
    roles without the other side and vote with its own Validators; for each side that
    passed its plan, how many of the 5 Validators it had."""
    keys = make_keys(16)
    views = []
    for _ in range(2):
        pc = PartifactCluster(public(keys), genesis_timeout=1.0)
        now = ignite(pc, sorted(keys), 0.0)
        pc.distribute_roles(now)
        views.append(pc)
    validators = views[0].validators()
    assert views[1].validators() == validators and len(validators) == 5
    cells = sorted(keys)
    passed = []
    for pc, mine in ((views[0], True), (views[1], False)):
        here = [c for c, s in zip(cells, side, strict=True) if s is mine]
        t = now
        for _ in range(15):  # 1.5 s: the other side is no longer live
            t += 0.1
            for c in here:
                pc.observe(c, collapsed=True, c_cluster=0.9, now=t)
        plan = pc.distribute_roles(t)
        who = pc.proposer(t)
        if plan is None or who is None:
            continue
        p = proposal(pc, keys, t, kind="roles", payload=plan.to_payload(), proposer=who)
        pc.propose(p, t)
        d = None
        for v in (v for v in p.eligible if v in here):
            if p.id in pc.book.open_proposals:
                d = pc.vote(vote(keys, p, v, pc.judge(v, p), t), t) or d
        if d is not None and d.passed:
            passed.append(sum(v in here for v in validators))
    return passed


@settings(max_examples=25, deadline=None)
@given(st.lists(st.booleans(), min_size=16, max_size=16))
def test_a_cut_cluster_changes_roles_on_one_side_at_most(side: list[bool]) -> None:
    """Cut a formed 16-cell cluster in two at random; each side's view stops hearing the
    other, plans roles without it and votes with its own Validators. The eligible set still
    holds every Validator (the silent ones too), so at most one side passes a new plan, and
    only a side with at least 1/φ of the Validators (4 of 5)."""
    passed = _cut(side)
    assert len(passed) <= 1 and all(n >= 4 for n in passed)


def test_a_cut_with_four_validators_on_one_side_moves_that_side_only() -> None:
    """Genesis and all five Validators (c00..c05) on one side, six others on it too: that side
    replaces the silent cells in a plan that passes; a 3 : 2 split of the Validators (with
    the Genesis on the 3 side) passes on neither side."""
    assert _cut([True] * 12 + [False] * 4) == [5]
    assert _cut([True] * 4 + [False] * 12) == []


def test_a_passed_plan_applies_even_if_a_state_moved_since() -> None:
    """Consensus decides: a plan that passed is applied even if a cell it names was demoted
    between the vote and the settle (the next plan corrects it); nothing raises."""
    pc, keys, now = _active(8)
    pc.partifacts[pc.validators()[0]].state = S.AWAKENED
    plan = pc.distribute_roles(now)
    assert plan is not None
    p = proposal(pc, keys, now, kind="roles", payload=plan.to_payload())
    pc.propose(p, now)
    d = None
    for v in p.eligible:
        if p.id in pc.book.open_proposals:
            d = pc.vote(vote(keys, p, v, True, now), now) or d
    assert d is not None and d.passed
    genesis = next(c for c, r in plan.roles.items() if r is Role.GENESIS)
    pc.partifacts[genesis].state = S.AWAKENED  # demoted after the vote
    pc.settle(d)
    assert pc.roles == dict(plan.roles) and pc.term == plan.term
