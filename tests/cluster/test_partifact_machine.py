"""A hypothesis state machine drives a PartifactCluster with random joins, leaves, crashes,
recoveries, sync evaluations, proposals, votes (good, forged, double, late, by non-validators)
and deadlines, against a plain model of the golden-ratio vote: every vote is accepted or
refused for the reason the model gives, every proposal ends as the model says, and the log
holds exactly the decisions, each verifiable."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from becomingone.cluster import (
    PHI,
    Decision,
    PartifactCluster,
    PartifactState,
    Proposal,
    Role,
    Vote,
    verify_decision,
)
from becomingone.errors import ProtocolError
from becomingone.keys import NodeKey

POOL = {f"c{i:02d}": NodeKey.from_seed(bytes([i + 1]) * 32) for i in range(9)}
ROGUE = NodeKey.from_seed(bytes([200]) * 32)


def need(n: int) -> int:
    """Least yes count that reaches 1/φ of n, the obvious way."""
    return math.ceil(n / PHI - 1e-9)


@dataclass
class Ballot:
    """The model of one open proposal."""

    eligible: frozenset[str]
    deadline: float
    subject: str
    proposer: str
    yes: set[str] = field(default_factory=set)
    no: set[str] = field(default_factory=set)


class PartifactMachine(RuleBasedStateMachine):
    """The cluster under random events, checked against :class:`Ballot` bookkeeping."""

    @initialize(n=st.integers(4, 7))
    def start(self, n: int) -> None:
        """A cluster of n cells, all heard at time 0."""
        self.now = 0.0
        self.members = set(list(POOL)[:n])
        self.crashed: set[str] = set()
        self.pc = PartifactCluster(
            {c: POOL[c].public_bytes for c in sorted(self.members)},
            genesis_timeout=1.0,
            keep_decided=1e9,  # the model remembers every decision
        )
        for c in self.members:
            self.pc.heard[c] = 0.0
        self.open: dict[str, Ballot] = {}
        self.decided: dict[str, str] = {}
        self.backing: dict[tuple[str, str], str] = {}
        self.rejected: Counter[str] = Counter()
        self.entries: list[bytes] = []
        self.serial = 0

    # -- the model ------------------------------------------------------------------------

    def _model_close(self, pid: str, outcome: str) -> None:
        b = self.open.pop(pid)
        self.decided[pid] = outcome
        if outcome != "passed":
            for v in b.yes:
                if self.backing.get((v, b.subject)) == pid:
                    del self.backing[(v, b.subject)]

    def _routable(self, voter: str, proposer: str) -> bool:
        roles, states = self.pc.roles, self.pc.states()
        if voter not in states or proposer not in states:
            return False
        if (
            roles.get(voter) is not Role.VALIDATOR
            or states[voter] is not PartifactState.OPERATIONAL
        ):
            return False
        target = roles.get(proposer)
        if target is None or target is Role.EXECUTOR:
            return False
        least = PartifactState.OPERATIONAL if target is Role.GENESIS else PartifactState.AWAKENED
        return states[proposer].rank >= least.rank

    def _expect(self, pid: str, voter: str, yes: bool, forged: bool) -> str | None:
        b = self.open.get(pid)
        if b is None:
            return "unknown_proposal"  # only open proposals are voted on in this machine
        if not self._routable(voter, b.proposer):
            return "not_validator"
        if self.now >= b.deadline:
            return "late"
        if voter not in b.eligible:
            return "not_validator"
        if forged:
            return "forged"
        if voter in b.yes or voter in b.no:
            return "double"
        if yes and self.backing.get((voter, b.subject), pid) != pid:
            return "conflicting"
        return None

    # -- rules ----------------------------------------------------------------------------

    @rule()
    def calm(self) -> None:
        """A calm stretch: five quick ticks where every live cell collapses at C = 0.9."""
        for _ in range(5):
            self.tick(0.05, 0.9, 511)

    @rule(
        dt=st.sampled_from([0.05, 0.2, 0.6, 1.5]),
        c=st.floats(0.6, 1) | st.floats(0, 1),
        bits=st.just(511) | st.integers(0, 511),
    )
    def tick(self, dt: float, c: float, bits: int) -> None:
        """Time passes; live cells report a sync evaluation; deadlines expire; roles are
        planned (a change proposed when Validators exist); state is synced."""
        self.now += dt
        for i, cell in enumerate(sorted(self.members - self.crashed)):
            self.pc.observe(cell, collapsed=bool(bits >> i & 1), c_cluster=c, now=self.now)
        due = sorted((b.deadline, pid) for pid, b in self.open.items() if self.now >= b.deadline)
        got = self.pc.expire(self.now)
        assert [d.proposal.id for d in got] == [pid for _, pid in due]
        for d in got:
            self._model_close(d.proposal.id, "expired")
            self._settle(d)
        plan = self.pc.distribute_roles(self.now)
        if (
            plan is not None
            and self.pc.validators()
            and not any(b.subject.startswith("roles") for b in self.open.values())
        ):
            self._propose("roles", plan.to_payload(), f"roles@{plan.term}")
        self.pc.sync_state(self.now)
        self.pc.check_threshold(self.now, c)

    def _propose(self, kind: str, payload: dict[str, object], subject: str) -> None:
        who = self.pc.proposer(self.now)
        eligible = self.pc.validators()
        if who is None or not eligible:
            return
        p = Proposal.create(
            POOL[who],
            kind=kind,
            subject=subject,
            payload=payload,
            proposer=who,
            created=self.now,
            deadline=self.now + 1.0,
            eligible=eligible,
        )
        self.pc.propose(p, self.now)
        self.open[p.id] = Ballot(frozenset(eligible), p.deadline, subject, who)

    @rule(shared=st.booleans(), data=st.data())
    def propose_intent(self, shared: bool, data: st.DataObject) -> None:
        """The Genesis (or an Integrator) proposes an intent; ``shared`` ones conflict."""
        self.serial += 1
        subject = "slot" if shared else f"intent-{self.serial}"
        self._propose("intent", {"what": f"probe-{self.serial}"}, subject)
        if self.open and data.draw(st.booleans()):  # often every validator votes at once
            pid = sorted(self.open)[-1]
            for voter in sorted(self.open[pid].eligible):
                if pid in self.open:
                    self._cast(pid, voter, data.draw(st.booleans()), forged=False)

    @precondition(lambda self: self.open)
    @rule(data=st.data(), yes=st.booleans(), forged=st.booleans())
    def vote(self, data: st.DataObject, yes: bool, forged: bool) -> None:
        """Any pool cell votes on an open proposal, sometimes with a forged signature."""
        pid = data.draw(st.sampled_from(sorted(self.open)))
        voter = data.draw(st.sampled_from(sorted(POOL)))
        self._cast(pid, voter, yes, forged)

    @precondition(lambda self: self.open)
    @rule(data=st.data(), yes=st.booleans())
    def late_vote(self, data: st.DataObject, yes: bool) -> None:
        """The clock reaches a proposal's deadline before the driver expires it; an eligible
        validator votes then (late)."""
        pid = data.draw(st.sampled_from(sorted(self.open)))
        self.now = max(self.now, self.open[pid].deadline)
        self._cast(pid, data.draw(st.sampled_from(sorted(self.open[pid].eligible))), yes, False)

    def _cast(self, pid: str, voter: str, yes: bool, forged: bool) -> None:
        key = ROGUE if forged else POOL[voter]
        v = Vote.create(key, proposal_id=pid, voter=voter, yes=yes, at=self.now)
        expected = self._expect(pid, voter, yes, forged)
        try:
            d = self.pc.vote(v, self.now)
        except ProtocolError as err:
            assert err.reason == expected, (err.reason, expected)
            event(f"vote refused: {err.reason}")
            self.rejected[err.reason] += 1
            return
        assert expected is None, expected
        b = self.open[pid]
        (b.yes if yes else b.no).add(voter)
        if yes:
            self.backing[(voter, b.subject)] = pid
        n = len(b.eligible)
        outcome = (
            "passed" if len(b.yes) >= need(n) else "rejected" if n - len(b.no) < need(n) else None
        )
        assert (d.outcome.value if d is not None else None) == outcome
        event("vote counted")
        if d is not None:
            event(f"proposal {outcome}")
            self._model_close(pid, outcome or "")
            self._settle(d)

    def _settle(self, d: Decision) -> None:
        entry, _moves = self.pc.settle(d)
        self.entries.append(entry)

    @precondition(lambda self: len(self.members) < len(POOL))
    @rule(data=st.data())
    def join(self, data: st.DataObject) -> None:
        """A new cell joins."""
        cell = data.draw(st.sampled_from(sorted(set(POOL) - self.members)))
        if cell in self.pc.book.keys and cell not in self.pc.partifacts:
            return  # a cell that left does not come back under the same id here
        self.pc.join(cell, POOL[cell].public_bytes, self.now)
        self.members.add(cell)

    @precondition(lambda self: len(self.members) > 3)
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        """A cell leaves; a leaving Genesis hands its role over if anyone can take it."""
        cell = data.draw(st.sampled_from(sorted(self.members)))
        was_genesis = self.pc.roles.get(cell) is Role.GENESIS
        move = self.pc.leave(cell, self.now)
        self.members.discard(cell)
        self.crashed.discard(cell)
        if move is not None:
            assert (
                was_genesis and move.source == cell and self.pc.roles[move.target] is Role.GENESIS
            )

    @precondition(lambda self: self.members - self.crashed)
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        """A cell stops reporting (kill -9)."""
        self.crashed.add(data.draw(st.sampled_from(sorted(self.members - self.crashed))))

    @precondition(lambda self: self.crashed)
    @rule(data=st.data())
    def recover(self, data: st.DataObject) -> None:
        """A crashed cell comes back."""
        self.crashed.discard(data.draw(st.sampled_from(sorted(self.crashed))))

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def books_agree(self) -> None:
        """Open and decided proposals and rejection counts are the model's."""
        if not hasattr(self, "pc"):
            return
        assert set(self.pc.book.open_proposals) == set(self.open)
        assert {k: d.outcome.value for k, d in self.pc.book.decided.items()} == self.decided
        assert +self.pc.book.rejected == +self.rejected

    @invariant()
    def log_holds_every_decision(self) -> None:
        """The log has one verifiable entry per decision; a pass always had quorum."""
        if not hasattr(self, "pc"):
            return
        assert self.pc.head == len(self.entries) == len(self.decided)
        keys = {c: k.public_bytes for c, k in POOL.items()}
        for i, entry in enumerate(self.entries[-3:]):
            decision = Decision.from_entry(entry)
            verify_decision(decision, keys, index=i)
            assert decision.outcome.value == self.decided[decision.proposal.id]

    @invariant()
    def roles_are_sane(self) -> None:
        """At most one Genesis; only members hold roles; live synced cells share a digest."""
        if not hasattr(self, "pc"):
            return
        roles = self.pc.roles
        assert sum(r is Role.GENESIS for r in roles.values()) <= 1
        assert set(roles) <= self.members
        live = self.pc.live(self.now) & set(self.pc._synced)
        assert len({self.pc.digest(c) for c in live if self.pc.applied[c] == self.pc.head}) <= 1


TestPartifactMachine = PartifactMachine.TestCase
TestPartifactMachine.settings = settings(max_examples=80, stateful_step_count=50, deadline=None)
