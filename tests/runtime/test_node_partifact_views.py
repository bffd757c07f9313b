"""NodePartifacts views on an in-process bus and one shared append log (the protocol of the
node processes, stepped on a simulated clock): roles form through the log, every view applies
the same decided sequence, a silenced Genesis is replaced within the bound, bad messages are
counted, and a partition never passes two proposals of one subject."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable

import pytest

from becomingone.cluster import GENESIS_DIGEST, Decision, Outcome, Proposal, RolePlan, Vote
from becomingone.errors import InputError, ProtocolError
from becomingone.keys import NodeKey
from becomingone.memory import MemoryAppendLog
from becomingone.runtime.glyph_desk import UnknownCell
from becomingone.runtime.node_partifacts import (
    MAX_MESSAGE,
    NodePartifacts,
    Observation,
    partifact_subject,
)
from becomingone.runtime.proposal_desk import ProposalDesk, ProposalRefused
from becomingone.transport.memory import MemoryBus

TICK = 0.05
NAMES = [f"cell-{i:04d}" for i in range(5)]
KEYS = {n: NodeKey.from_seed(bytes([i + 1]) * 32) for i, n in enumerate(NAMES)}
ROSTER = {n: k.public_bytes for n, k in KEYS.items()}


class Fleet:
    """Five views, each on its own connection of one :class:`MemoryBus`, one shared log."""

    def __init__(self) -> None:
        self.bus = MemoryBus()
        self.log = MemoryAppendLog("consensus")
        self.views = {
            n: NodePartifacts(KEYS[n], n, cluster="t", log=self.log, genesis_timeout=1.0)
            for n in NAMES
        }
        self.now = 1000.0
        self.silent: set[str] = set()

    async def start(self) -> None:
        for name, view in self.views.items():
            await view.start(self.bus.connect(name))

    async def run(self, seconds: float, names: Iterable[str] | None = None) -> None:
        """Step every live view once per tick for ``seconds``; each view's log task is
        awaited after its step (on the simulated clock it would otherwise never finish)."""
        for _ in range(round(seconds / TICK)):
            self.now += TICK
            for name in names or NAMES:
                if name not in self.silent:
                    view = self.views[name]
                    await view.step(self.now, collapsed=True, c_cluster=0.9, roster=ROSTER)
                    await view.sync_log()

    def rows(self) -> dict[str, dict[str, object]]:
        return {n: v.row() for n, v in self.views.items() if n not in self.silent}


def chain(entries: list[bytes]) -> list[str]:
    out = [GENESIS_DIGEST]
    for entry in entries:
        out.append(hashlib.sha256(out[-1].encode() + entry).hexdigest()[:16])
    return out


def genesis_of(decision: Decision) -> str | None:
    plan = RolePlan.from_payload(decision.proposal.payload)
    return next((c for c, r in plan.roles.items() if r.value == "genesis"), None)


async def test_views_form_roles_and_apply_one_sequence() -> None:
    """Roles form (one formation entry won), Validators vote the Genesis' intents through,
    the lifecycle leaves FORMING, and every view's head and memory digest are the log's."""
    f = Fleet()
    await f.start()
    await f.run(6.0)
    rows = f.rows()
    assert len({r["genesis"] for r in rows.values()}) == 1
    assert {r["role"] for r in rows.values()} >= {"genesis", "validator"}
    assert {r["lifecycle"] for r in rows.values()} - {"pre_cluster", "forming"}
    entries = f.log.read()
    digests = chain(entries)
    for row in rows.values():
        assert row["head"] == len(entries)
        assert row["memory"] == digests[-1]
    decisions = [Decision.from_entry(e) for e in entries]
    assert sum(d.proposal.payload.get("why") == "formation" for d in decisions) >= 1
    assert any(d.passed and d.proposal.kind == "intent" for d in decisions)


async def test_a_silenced_genesis_is_replaced_within_the_bound() -> None:
    """The Genesis stops (as after kill -9): within genesis_timeout + vote + 1 s of cluster
    time a passed failover plan names another Genesis, and every live view follows it."""
    f = Fleet()
    await f.start()
    await f.run(6.0)
    old = f.views[NAMES[0]].cluster.genesis
    assert old is not None
    f.silent.add(old)
    killed, start = f.now, f.log.last_index()
    await f.run(4.0)
    plans = [
        d
        for d in map(Decision.from_entry, f.log.read(start + 1))
        if d.passed and d.proposal.kind == "roles"
    ]
    assert plans, "no failover plan passed"
    assert genesis_of(plans[0]) not in (None, old)
    assert plans[0].decided_at - killed <= 1.0 + 2.0 + 1.0
    assert {r["genesis"] for r in f.rows().values()} == {genesis_of(plans[-1])}


async def test_bad_messages_are_refused_and_counted() -> None:
    """Unknown signer, forged (another key in a member's name), stale (a replayed
    observation), malformed, oversize: each counted by reason on a receiving view."""
    f = Fleet()
    await f.start()
    await f.run(0.5)
    stranger = NodeKey.from_seed(b"\x09" * 32)
    own = Observation.create(
        KEYS[NAMES[1]], cluster="t", cell=NAMES[1], collapsed=True, c_cluster=0.5, at=1.0
    )
    messages = [
        Observation.create(stranger, cluster="t", cell="x", collapsed=True, c_cluster=1, at=2e3),
        Observation.create(
            stranger, cluster="t", cell=NAMES[1], collapsed=True, c_cluster=1, at=2e3
        ),
        own,  # signed right, older than what view 0 heard: a replay
    ]
    conn = f.bus.connect("attacker")
    for m in messages:
        await conn.publish(partifact_subject("t"), json.dumps({"t": "obs", **m.to_json()}).encode())
    await conn.publish(partifact_subject("t"), b"[1, 2")
    await conn.publish(partifact_subject("t"), b"x" * (MAX_MESSAGE + 1))
    await f.run(TICK)
    rejected = f.views[NAMES[0]].row()["rejected"]
    assert isinstance(rejected, dict)
    for reason in ("unknown_signer", "forged", "stale", "malformed", "oversize"):
        assert rejected.get(reason) == 1, (reason, rejected)


def test_observation_from_json_refuses_bad_fields() -> None:
    """A C_cluster outside [0, 1], a non-bool collapsed or a missing field: InputError."""
    good = Observation.create(
        KEYS[NAMES[0]], cluster="t", cell="a", collapsed=True, c_cluster=0.5, at=1.0
    )
    doc = good.to_json()
    assert Observation.from_json(doc) == good
    for bad in (
        {**doc, "c": 1.5},
        {**doc, "collapsed": 1},
        {k: v for k, v in doc.items() if k != "at"},
    ):
        with pytest.raises(InputError):
            Observation.from_json(bad)


async def test_a_partition_never_passes_two_proposals_of_one_subject() -> None:
    """Cut the five views into 2 | 3 for a while (each side keeps appending to the one log,
    as both sides of a JetStream cut could reach a stream leader): no subject is passed twice
    and no term gets two passed role plans, because 1/φ of one eligible set cannot be reached
    by two disjoint parts of it. The side without the Validator proposes a failover plan
    that does not pass; the other side keeps deciding."""
    f = Fleet()
    await f.start()
    await f.run(6.0)
    start = f.log.last_index()
    f.bus.partition(NAMES[:2], NAMES[2:])  # the Genesis and the one Validator | the rest
    await f.run(5.0)
    cut = [Decision.from_entry(e) for e in f.log.read(start + 1)]
    assert any(d.proposal.proposer in NAMES[2:] and not d.passed for d in cut), cut
    assert any(d.proposal.proposer in NAMES[:2] and d.passed for d in cut), cut
    f.bus.heal()
    await f.run(3.0)
    passed = [d for d in map(Decision.from_entry, f.log.read()) if d.passed]
    subjects = [d.proposal.subject for d in passed if d.proposal.payload.get("why") != "formation"]
    assert len(subjects) == len(set(subjects)), subjects
    terms = [
        RolePlan.from_payload(d.proposal.payload).term for d in passed if d.proposal.kind == "roles"
    ]
    assert len(terms) == len(set(terms)), terms


async def test_a_bad_log_entry_stops_the_view_at_the_entry_before() -> None:
    """An entry that is not a signed decision (written by anyone with access to the stream):
    every view stops applying at the entry before it (counted ``bad_log_entry``), so no index
    is skipped and no view disagrees about what is at an index."""
    f = Fleet()
    await f.start()
    await f.run(2.0)
    head = f.log.last_index()
    f.log.append(b'{"not": "a decision"}', expected_last=head)
    await f.run(2.0)
    for row in f.rows().values():
        assert row["head"] == head
        assert row["rejected"] == {**row["rejected"], "bad_log_entry": 1}


async def test_the_desk_takes_proposals_only_on_the_proposers_node() -> None:
    """Through a ProposalDesk over a node's view: a text proposed on a node that is not the
    proposer is refused (``not_proposer``, naming it); on the proposer's node it opens, the
    Validator node votes it through and every view applies it from the log."""
    f = Fleet()
    await f.start()
    await f.run(6.0)
    genesis = f.views[NAMES[0]].cluster.genesis
    assert genesis is not None
    other = next(n for n in NAMES if n != genesis)
    with pytest.raises(ProposalRefused) as refused:
        ProposalDesk(f.views[other], clock=lambda: f.now).propose_text("hello", 0.0)
    assert refused.value.reason == "not_proposer" and genesis in str(refused.value)
    row = ProposalDesk(f.views[genesis], clock=lambda: f.now).propose_text("hello", 0.0)
    assert row["created"] == f.now  # the desk's clock, not the caller's time
    await f.run(1.0)
    for view in f.views.values():
        assert view.cluster.book.decided[row["id"]].passed


class _BrokenLog(MemoryAppendLog):
    """A log whose reads fail with something that is not a storage error."""

    def read(self, start: int = 1, limit: int | None = None) -> list[bytes]:
        raise RuntimeError("disk on fire")


async def test_a_failing_log_task_stops_the_log_not_the_node() -> None:
    """The log task raising something unexpected: the next step counts it (``log_errors``),
    stops using the log and keeps ticking (observations still go out)."""
    bus = MemoryBus()
    view = NodePartifacts(KEYS[NAMES[0]], NAMES[0], cluster="t", log=_BrokenLog("x"))
    await view.start(bus.connect(NAMES[0]))
    for i in range(20):
        await view.step(1000.0 + i * TICK, collapsed=True, c_cluster=0.9, roster=ROSTER)
        await asyncio.sleep(0.01)
    assert view.counts["log_errors"] == 1
    assert view.cluster.head == 0
    await view.aclose()


class _CountingLog(MemoryAppendLog):
    """A shared log that counts the appends each caller made (by its view's name)."""

    def __init__(self) -> None:
        super().__init__("consensus")
        self.appends = 0

    def append(self, entry: bytes, *, expected_last: int | None = None) -> int:
        self.appends += 1
        return super().append(entry, expected_last=expected_last)


async def test_an_observer_keeps_the_members_view_and_never_writes() -> None:
    """An observer (no key: a witness node's view) beside five member views on the same
    subject and log: it ends with the Genesis, the roles, the term, the head and the memory
    digest of the members and the same decided proposals, while it published nothing,
    appended nothing and is no member of its view; its desk refuses a proposal
    (``not_proposer``) and a vote (an unknown cell), and its view refuses both (``observer``)."""
    f = Fleet()
    f.log = _CountingLog()
    for view in f.views.values():
        view.log = f.log
    observer = NodePartifacts(None, "witness-0", cluster="t", log=f.log, genesis_timeout=1.0)
    conn = f.bus.connect("witness-0")
    spy = await f.bus.connect("spy").subscribe(partifact_subject("t"))
    await f.start()
    await observer.start(conn)
    members_appends, heard = 0, []
    for _ in range(round(6.0 / TICK)):
        await f.run(TICK)
        before = f.log.appends
        await observer.step(f.now, collapsed=True, c_cluster=0.9, roster=ROSTER)
        await observer.sync_log()
        assert f.log.appends == before  # the observer's step appended nothing
        members_appends = f.log.appends
        heard += spy.drain()
    assert heard and not any(b"witness-0" in m for m in heard)  # it signed nothing
    assert members_appends > 0
    await f.run(TICK)  # every member applies what is on the log
    await observer.step(f.now, collapsed=True, c_cluster=0.9, roster=ROSTER)
    await observer.sync_log()
    member = f.views[NAMES[0]]
    pc, mine = member.cluster, observer.cluster
    assert mine.genesis == pc.genesis is not None
    assert (mine.roles, mine.term, mine.head, mine.memory) == (
        pc.roles,
        pc.term,
        pc.head,
        pc.memory,
    )
    assert "witness-0" not in mine.partifacts and observer.keys == {}
    assert {i: d.outcome for i, d in mine.book.decided.items()} == {
        i: d.outcome for i, d in pc.book.decided.items() if i in mine.book.decided
    }
    assert len(mine.book.decided) >= 3
    row = observer.row()
    assert row["state"] is None and row["role"] is None and row["head"] == pc.head
    desk = ProposalDesk(observer, clock=lambda: f.now)
    with pytest.raises(ProposalRefused) as refused:
        desk.propose_text("from a witness", 0.0)
    assert refused.value.reason == "not_proposer"
    pid = next(iter(mine.book.decided))
    with pytest.raises(UnknownCell):
        await desk.vote(pid, NAMES[0], True, 0.0)
    vote = Vote.create(KEYS[NAMES[0]], proposal_id=pid, voter=NAMES[0], yes=True, at=f.now)
    with pytest.raises(ProtocolError) as error:
        observer.cast(vote, f.now)
    assert error.value.reason == "observer"
    await observer.aclose()


async def test_a_queued_plan_of_a_decided_term_is_dropped_not_appended() -> None:
    """A passed role plan waiting in a view's queue whose term the log has already decided
    (as when two views both formed at one head, or a side of a healed partition passed a
    plan the other side's log moved past) is dropped and counted ``stale``: the log never
    holds two passed plans of one term (found by tests/faults/test_partition_consensus.py)."""
    f = Fleet()
    await f.start()
    await f.run(6.0)
    name = NAMES[1]
    view = f.views[name]
    term = view.cluster.term
    assert term >= 1
    roles = {c: r.value for c, r in view.cluster.roles.items()}
    payload = {**RolePlan.from_payload({"roles": roles, "term": term}).to_payload(), "why": "x"}
    p = Proposal.create(
        KEYS[name],
        kind="roles",
        subject=f"roles-{term}",
        payload=payload,
        proposer=name,
        created=f.now,
        deadline=f.now + 2.0,
        eligible=(name,),
    )
    vote = Vote.create(KEYS[name], proposal_id=p.id, voter=name, yes=True, at=f.now)
    stale = Decision(proposal=p, outcome=Outcome.PASSED, votes=(vote,), decided_at=f.now)
    view._to_append.append(stale.to_entry())
    await view.sync_log()
    assert p.id not in {Decision.from_entry(e).proposal.id for e in f.log.read()}
    assert view.row()["log"]["stale"] == 1
    await f.run(1.0)  # the view goes on appending its own decisions
    terms = [
        RolePlan.from_payload(d.proposal.payload).term
        for d in map(Decision.from_entry, f.log.read())
        if d.passed and d.proposal.kind == "roles"
    ]
    assert len(terms) == len(set(terms)), terms
