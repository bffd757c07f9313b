"""The proposal desk against a plain model (hypothesis RuleBasedStateMachine): operators
propose texts and vote as random cells while time moves; every answer (open, passed,
rejected, expired, or the refusal's reason) is the model's, a pass has yes / eligible ≥ 1/φ,
and every decision made by a vote is in the log."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from becomingone.cluster import Decision, passes
from becomingone.errors import InputError
from becomingone.runtime import PartifactDriver, ProposalDesk, build_supervisors
from becomingone.runtime.glyph_desk import UnknownCell
from becomingone.runtime.proposal_desk import ProposalRefused, UnknownProposal, needed

CELLS = 13


@dataclass
class Model:
    """What a proposal should be: its eligible voters, deadline and the votes counted."""

    eligible: tuple[str, ...]
    deadline: float
    votes: dict[str, bool] = field(default_factory=dict)
    status: str = "open"


def formed(cells: int = CELLS) -> tuple[PartifactDriver, list[str]]:
    """A driver whose cluster has formed (every cell operational, roles applied), no ticks."""
    sups = build_supervisors(cells, "mesh", seed=9)
    driver = PartifactDriver(sups, {s.node_id: s.key for s in sups})  # type: ignore[arg-type]
    for i in range(4):
        for s in sups:
            driver.cluster.observe(s.node_id, collapsed=True, c_cluster=0.9, now=i * 0.1)
    driver.cluster.distribute_roles(now=0.3)
    return driver, [s.node_id for s in sups]


class DeskMachine(RuleBasedStateMachine):
    """Random proposals, votes and time against :class:`Model`."""

    @initialize()
    def start(self) -> None:
        self.driver, self.cells = formed()
        self.desk = ProposalDesk(self.driver, vote_seconds=1.0)
        self.now = 0.4
        self.models: dict[str, Model] = {}
        self.voted_decisions = 0

    def _hear_everyone(self) -> None:
        for c in self.cells:
            self.driver.cluster.observe(c, collapsed=True, c_cluster=0.9, now=self.now)

    @rule(text=st.text(min_size=1, max_size=20).filter(str.strip))
    def propose(self, text: str) -> None:
        row = self.desk.propose_text(text, self.now)
        validators = self.driver.cluster.validators()
        assert row["status"] == "open" and row["operator"] and tuple(row["eligible"]) == validators
        assert row["needed"] == needed(len(validators)) and row["deadline"] == self.now + 1.0
        self.models[row["id"]] = Model(eligible=validators, deadline=self.now + 1.0)

    @precondition(lambda self: self.models)
    @rule(data=st.data(), yes=st.booleans())
    def vote(self, data: st.DataObject, yes: bool) -> None:
        pid = data.draw(st.sampled_from(sorted(self.models)))
        validators = list(self.driver.cluster.validators())
        cell = data.draw(
            st.one_of(st.sampled_from(validators), st.sampled_from([*self.cells, "stranger"]))
        )
        m = self.models[pid]
        expect = self._expect(m, cell)
        try:
            row = asyncio.run(self.desk.vote(pid, cell, yes, self.now))
        except UnknownCell:
            assert expect == "unknown_cell"
            return
        except ProposalRefused as exc:
            assert exc.reason == expect, (exc.reason, expect)
            event(f"refused: {exc.reason}")
            return
        assert expect == "ok", expect
        m.votes[cell] = yes
        n, ayes = len(m.eligible), sum(m.votes.values())
        if passes(ayes, n):
            m.status = "passed"
        elif not passes(n - (len(m.votes) - ayes), n):
            m.status = "rejected"
        if m.status != "open":
            self.voted_decisions += 1
            event(f"decided by a vote: {m.status}")
        assert row["status"] == m.status and row["yes"] == ayes

    def _expect(self, m: Model, cell: str) -> str:
        if cell == "stranger":
            return "unknown_cell"
        if cell not in self.driver.cluster.validators():  # the router: may not send votes
            return "not_validator"
        if self.now >= m.deadline:
            return "late"
        if m.status != "open":
            return "closed"
        if cell not in m.eligible:
            return "not_validator"
        if cell in m.votes:
            return "double"
        return "ok"

    @rule(dt=st.sampled_from([0.1, 0.3, 0.7]))
    def advance(self, dt: float) -> None:
        self.now = round(self.now + dt, 6)
        self._hear_everyone()
        for d in self.driver.cluster.expire(self.now):
            m = self.models[d.proposal.id]
            assert m.status == "open" and self.now >= m.deadline
            m.status = "expired"

    @invariant()
    def statuses_match(self) -> None:
        if not hasattr(self, "desk"):
            return
        for pid, m in self.models.items():
            row = self.desk.proposal(pid)
            assert row["status"] == m.status, (pid, row["status"], m.status)
            if m.status == "passed":
                assert passes(row["yes"], len(row["eligible"]))
        entries = [Decision.from_entry(e) for e in self.driver.log.read()]
        assert len(entries) == self.voted_decisions
        assert all(e.proposal.id in self.models for e in entries)


TestDesk = DeskMachine.TestCase
TestDesk.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)


def test_refusals_name_what_was_wrong() -> None:
    """A blank text, an unknown proposal, a glyph on a cluster without glyphs, no quorum
    before the roles, and a non-positive vote window: each refused with its own error."""
    driver, _cells = formed()
    desk = ProposalDesk(driver)
    with pytest.raises(InputError, match="text"):
        desk.propose_text("  ", 1.0)
    with pytest.raises(UnknownProposal):
        desk.proposal("0123456789abcdef")
    with pytest.raises(InputError, match="no glyphs"):
        desk.propose_glyph({"kind": "probe"}, 1.0)
    with pytest.raises(InputError, match="vote_seconds"):
        ProposalDesk(driver, vote_seconds=0)
    sups = build_supervisors(3, "mesh", seed=1)
    fresh = PartifactDriver(sups, {s.node_id: s.key for s in sups})  # type: ignore[arg-type]
    with pytest.raises(ProposalRefused) as refused:
        ProposalDesk(fresh).propose_text("too early", 0.0)
    assert refused.value.reason == "no_quorum"
