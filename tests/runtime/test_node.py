"""The node loop, roster file and observer in one process (memory bus, fake clocks): fast
checks of what the process tests exercise over NATS."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from becomingone.core.phase import CoherenceBand, cluster_coherence
from becomingone.errors import InputError
from becomingone.keys import NodeKey
from becomingone.runtime.node import (
    STATUS_PERIOD,
    NodeSettings,
    NodeStatus,
    RosterFile,
    SupervisedNode,
    _c_seen,
    _coherence,
)
from becomingone.runtime.observer import ClusterObserver
from becomingone.sync.cps import PhaseSupervisor
from becomingone.sync.stability import read_cluster
from becomingone.sync.topology import Topology
from becomingone.transport import MemoryBus
from becomingone.transport.base import Subscription
from becomingone.transport.memory import MemoryConnection


def settings(name: str) -> NodeSettings:
    return NodeSettings(
        name=name,
        cluster="t",
        topology=Topology.MESH,
        tick=0.05,
        alpha=0.3,
        beta=0.0,
        branching=4,
        max_skew=5.0,
        peer_timeout=1.0,
        stable_ticks=3,
    )


class Clock:
    """A settable clock."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def two_nodes(
    roster_path: Path, bus: MemoryBus, clock: Clock, topology: Topology = Topology.MESH
) -> tuple[dict[str, SupervisedNode], dict[str, MemoryConnection], dict[str, Subscription]]:
    """Light nodes a (θ 0) and b (θ 0.4) of ``topology`` joined to one roster file on
    ``bus``, each subscribed to its SSEP subject and its roster read: (nodes, connections,
    inboxes)."""
    keys = {n: NodeKey.generate() for n in ("a", "b")}
    for n in keys:
        RosterFile(roster_path).join(n, keys[n].public_bytes)
    nodes = {
        n: SupervisedNode(
            dataclasses.replace(settings(n), topology=topology),
            member=None,
            key=keys[n],
            epoch=1,
            roster=RosterFile(roster_path),
            kind="light",
            theta=theta,
            clock=clock,
        )
        for n, theta in (("a", 0.0), ("b", 0.4))
    }
    conns = {n: bus.connect(n) for n in nodes}
    inbox = {n: await conns[n].subscribe(f"ssep.t.{n}") for n in nodes}
    for node in nodes.values():
        node.reload_roster()
    return nodes, conns, inbox


def test_roster_join_is_idempotent_and_refuses_another_key(tmp_path: Path) -> None:
    """Joining twice with the same key changes nothing; the same name with another key is an
    InputError naming --name; the file round-trips through read()."""
    roster = RosterFile(tmp_path / "r.json")
    k1, k2 = NodeKey.generate(), NodeKey.generate()
    assert dict(roster.join("a", k1.public_bytes)) == {"a": k1.public_bytes}
    assert roster.join("a", k1.public_bytes) == roster.read()
    with pytest.raises(InputError, match="--name"):
        roster.join("a", k2.public_bytes)
    roster.join("b", k2.public_bytes)
    assert list(roster.read()) == ["a", "b"]


def test_roster_bad_file_and_changed(tmp_path: Path) -> None:
    """A file that is not a roster is an InputError naming --roster; changed() is True once
    per change of the file."""
    path = tmp_path / "r.json"
    roster = RosterFile(path)
    assert roster.changed() and not roster.changed()
    path.write_text(json.dumps({"members": {"a": "zz"}}))
    assert roster.changed()
    with pytest.raises(InputError, match="--roster"):
        roster.read()


def test_status_round_trip_and_bad_bytes() -> None:
    """A status survives JSON; garbage, missing fields and bad ids are InputError('status')."""
    s = NodeStatus(
        node="a", kind="full", time=1.5, theta=0.25, frequency=1.0, stable=True, epoch=3,
        seq=4, members=2, heard=1, c_seen=0.5, accepted=9, rejected={"replay": 1},
    )  # fmt: skip
    assert NodeStatus.from_bytes(json.dumps(s.to_json()).encode()) == s
    for bad in (b"{", b"[]", b'{"node": "a"}', json.dumps({**s.to_json(), "node": "a b"})):
        with pytest.raises(InputError, match="status"):
            NodeStatus.from_bytes(bad if isinstance(bad, bytes) else bad.encode())
    assert "glyphs" not in s.to_json()  # only a node running glyphs sends the row
    row = {"glyphs": 2, "fires": 7, "failed": 1, "ended": 0, "energy": 12.5, "value": None}
    row |= {"kairos": 0.75, "rejected": 2}  # the probes' self-observation
    g = dataclasses.replace(s, glyphs=row)
    assert NodeStatus.from_bytes(json.dumps(g.to_json()).encode()) == g
    older = {k: v for k, v in row.items() if k not in ("kairos", "rejected")}
    heard = NodeStatus.from_bytes(json.dumps({**s.to_json(), "glyphs": older}).encode())
    assert heard.glyphs == {**older, "kairos": None, "rejected": 0}
    for bad_row in (
        {**row, "fires": -1},
        {**row, "energy": "nan"},
        {**row, "value": "x"},
        {**row, "kairos": 1.5},
        {**row, "rejected": -1},
        {},
    ):
        with pytest.raises(InputError, match="status"):
            NodeStatus.from_bytes(json.dumps({**s.to_json(), "glyphs": bad_row}).encode())


async def test_two_nodes_lock_on_a_memory_bus(tmp_path: Path) -> None:
    """Two light nodes on one roster file, stepped on a memory bus with a fake clock: they
    hear each other, lock (|Δθ| small), become stable, and a third member added to the file
    is routed to at the next step."""
    roster_path = tmp_path / "r.json"
    clock = Clock()
    bus = MemoryBus()
    nodes, conns, inbox = await two_nodes(roster_path, bus, clock)
    key_c = NodeKey.generate()
    for _ in range(60):
        clock.t += 0.05
        statuses = {n: await node.step(conns[n], inbox[n], 1000.0) for n, node in nodes.items()}
    a, b = statuses["a"], statuses["b"]
    assert a.heard == b.heard == 1 and a.stable and b.stable and a.rejected == {}
    assert a.c_seen > 0.99 and b.c_seen > 0.99
    assert abs((a.theta - b.theta + 0.5) % 1.0 - 0.5) < 1e-3
    RosterFile(roster_path).join("c", key_c.public_bytes)
    assert nodes["a"].reload_roster()
    assert nodes["a"].supervisor is not None
    assert nodes["a"].supervisor.plan.members == ("a", "b", "c")


async def test_a_node_steps_every_tick_when_packets_arrive_unevenly(tmp_path: Path) -> None:
    """A hub's member whose DOWN packets arrive 1, 0, 2, 0, 2 … per tick (the hub ticks after
    it in every other tick, as node processes' clocks fall) steps at every tick toward the
    newest DOWN carried to its tick: 61 steps in 61 ticks (coupling only to new packets took
    31) and the pair locks."""
    clock, bus = Clock(), MemoryBus()
    nodes, conns, inbox = await two_nodes(tmp_path / "r.json", bus, clock, Topology.HUB)
    for i in range(61):
        clock.t += 0.05
        for n in ("a", "b") if i % 2 == 0 else ("b", "a"):
            await nodes[n].step(conns[n], inbox[n], 1000.0)
    member = nodes["b"].supervisor
    assert member is not None and nodes["a"].supervisor is not None
    assert member.steps == 61
    assert abs((member.theta - nodes["a"].supervisor.theta + 0.5) % 1.0 - 0.5) < 1e-3


class FakeSub:
    """A subscription whose messages the test sets."""

    subject = "status.t.*"

    def __init__(self) -> None:
        self.queue: list[bytes] = []

    def drain(self) -> list[bytes]:
        out, self.queue = self.queue, []
        return out


async def test_observer_reads_live_nodes_only() -> None:
    """The observer carries phases to its clock, drops nodes silent for longer than the peer
    timeout from the measurement (their rejections stay counted) and counts bad messages."""
    clock = Clock(100.0)
    obs = ClusterObserver(MemoryBus().connect("o"), cluster="t", peer_timeout=1.0, clock=clock)
    sub = FakeSub()
    obs._sub = sub  # type: ignore[assignment]

    def status(node: str, t: float, theta: float, rejected: dict[str, int]) -> bytes:
        return json.dumps(
            NodeStatus(
                node=node, kind="full", time=t, theta=theta, frequency=1.0, stable=True,
                epoch=1, seq=int(t * 20), members=3, heard=2, c_seen=1.0, accepted=0,
                rejected=rejected,
            ).to_json()
        ).encode()  # fmt: skip

    sub.queue = [
        status("a", 99.9, 0.2, {}),
        status("b", 100.0, 0.3, {}),  # a carried to 100.0 is at 0.3 too
        status("c", 98.0, 0.8, {"replay": 2}),  # silent for 2 s
        b"garbage",
    ]
    report = obs.step()
    assert len(report.thetas) == 2 and report.band is CoherenceBand.SHARED
    assert report.rejected == 2 and obs.stats["bad_status"] == 1
    assert obs.summary().rejected == {"replay": 2}


def test_status_carries_t_sync_and_t_global() -> None:
    """T_sync, T_global and the cluster collapse count survive JSON ([re, im] pairs with
    |T_global|²); a pair that is not finite or has modulus > 1 is InputError('status')."""
    s = NodeStatus(
        node="a", kind="full", time=1.5, theta=0.25, frequency=1.0, stable=True, epoch=3,
        seq=4, members=2, heard=1, c_seen=0.5, accepted=9, t_sync=0.6 + 0.8j,
        t_global=0.5 - 0.5j, cluster_collapses=2,
    )  # fmt: skip
    doc = s.to_json()
    assert doc["t_global"] == [0.5, -0.5] and doc["t_global_sq"] == pytest.approx(0.5)
    assert NodeStatus.from_bytes(json.dumps(doc).encode()) == s
    for bad in ([2.0, 0.0], ["nan", 0.0], [1.0], "ab"):
        with pytest.raises(InputError, match="status"):
            NodeStatus.from_bytes(json.dumps({**doc, "t_sync": bad}).encode())


async def test_observer_t_global_over_live_nodes_and_its_crossings() -> None:
    """The observer's T_global is the equal-weight mean of the T_sync of the nodes heard within
    the peer timeout (a silent node's value leaves it); a crossing of I_c is one cluster
    collapse in the rows and the summary, not one per tick above."""
    clock = Clock(100.0)
    obs = ClusterObserver(
        MemoryBus().connect("o"), cluster="t", peer_timeout=1.0, clock=clock, threshold=0.9
    )
    sub = FakeSub()
    obs._sub = sub  # type: ignore[assignment]

    def status(node: str, t: float, t_sync: complex) -> bytes:
        return json.dumps(
            NodeStatus(
                node=node, kind="full", time=t, theta=0.1, frequency=0.0, stable=True,
                epoch=1, seq=int(t * 20), members=3, heard=2, c_seen=1.0, accepted=0,
                t_sync=t_sync,
            ).to_json()
        ).encode()  # fmt: skip

    sub.queue = [status("a", 100.0, 0.9), status("b", 99.5, 0.5j), status("c", 98.0, -1.0)]
    first = obs.step()
    assert first.t_global == pytest.approx((0.9 + 0.5j) / 2) and not first.cluster_collapse
    for k in range(3):
        clock.t = 100.1 + k * 0.1
        sub.queue = [status(n, clock.t, 0.99) for n in "abc"]
        obs.step()
    assert [r.cluster_collapse for r in obs.history] == [False, True, False, False]
    assert obs.history[-1].to_json()["t_global"] == pytest.approx([0.99, 0.0])
    assert obs.summary().cluster_collapses == 1


def test_coherence_in_plain_python_matches_cluster_coherence() -> None:
    """The node's plain-Python C (its status's ``c_seen``) equals core.phase's NumPy
    cluster_coherence on random phases (1–12 of them, tight and spread, huge and negative
    cycles) and on the edge cases: one phase, two opposite phases, all equal."""
    rng = np.random.default_rng(8)
    cases: list[list[float]] = [[0.3], [0.0, 0.5], [0.25] * 6, [1e9 + 0.1, -3.9, 0.1]]
    for _ in range(500):
        n = int(rng.integers(1, 13))
        spread = float(rng.choice([1e-3, 0.05, 0.3, 1.0]))
        cases.append(list(rng.random() + spread * rng.standard_normal(n) + rng.integers(-5, 5, n)))
    for phases in cases:
        assert _coherence(phases) == pytest.approx(cluster_coherence(phases), abs=1e-12)


async def test_c_seen_matches_the_old_numpy_reading(tmp_path: Path) -> None:
    """``_c_seen`` (the supervisor's held phases, read in plain Python) reports what the old
    reading did: ``read_cluster`` of the own phase and every held phase within the peer
    timeout, extrapolated to ``now`` — at random times, so some held phases are too old."""
    roster_path = tmp_path / "r.json"
    names = [f"n{i}" for i in range(5)]
    keys = {n: NodeKey.generate() for n in names}
    for n in names:
        RosterFile(roster_path).join(n, keys[n].public_bytes)
    clock, bus = Clock(), MemoryBus()
    nodes = {
        n: SupervisedNode(
            settings(n),
            member=None,
            key=keys[n],
            epoch=1,
            roster=RosterFile(roster_path),
            kind="light",
            theta=0.17 * i,
            clock=clock,
        )
        for i, n in enumerate(names)
    }
    conns = {n: bus.connect(n) for n in nodes}
    inbox = {n: await conns[n].subscribe(f"ssep.t.{n}") for n in nodes}
    for node in nodes.values():
        node.reload_roster()
    rng = np.random.default_rng(3)
    for _ in range(5):
        clock.t += 0.05
        for n, node in nodes.items():
            await node.step(conns[n], inbox[n], 1000.0)

    def old(sup: PhaseSupervisor, now: float) -> float:
        timeout, f = sup.stability.timeout, sup.frequency
        held = sup.state().inbox
        phases = [sup.theta] + [
            h.theta + f * (now - h.timestamp) for h in held if now - h.timestamp <= timeout
        ]
        return read_cluster(phases).c

    for node in nodes.values():
        sup = node.supervisor
        assert sup is not None and len(sup.heard()) == 4
        for now in clock.t + rng.uniform(0.0, 2.0, 50):
            assert _c_seen(sup, float(now)) == pytest.approx(old(sup, float(now)), abs=1e-12)


async def test_status_is_sent_on_a_discrete_change_else_every_status_period(
    tmp_path: Path,
) -> None:
    """At 20 Hz a node does not send a status every tick: it sends one at its first tick,
    at once when something discrete changes (a peer heard, stable, a packet rejected), and
    otherwise every STATUS_PERIOD seconds — each one the status of that tick."""
    clock = Clock()
    bus = MemoryBus()
    nodes, conns, inbox = await two_nodes(tmp_path / "r.json", bus, clock)
    watch = await bus.connect("observer").subscribe("status.t.a")
    sent: list[NodeStatus] = []
    stepped: list[NodeStatus] = []
    for _ in range(60):  # 3 s at 20 Hz
        clock.t += 0.05
        for n, node in nodes.items():
            status = await node.step(conns[n], inbox[n], 1000.0)
            if n == "a":  # as an observer reads it back (the time is rounded to 1 µs)
                stepped.append(NodeStatus.from_bytes(json.dumps(status.to_json()).encode()))
        sent += [NodeStatus.from_bytes(d) for d in watch.drain()]
    assert sent[0] == stepped[0] and all(s in stepped for s in sent)  # each one as stepped
    assert stepped[-1].stable and len(sent) < len(stepped) / 4
    gaps = [b.time - a.time for a, b in itertools.pairwise(sent)]
    assert max(gaps) <= STATUS_PERIOD + 0.05 + 1e-9
    assert any(s.heard == 1 for s in sent) and any(s.stable for s in sent)
    firsts = {}  # the first tick of each (heard, stable) pair was sent, not held back
    for s in stepped:
        firsts.setdefault((s.heard, s.stable), s)
    assert all(s in sent for s in firsts.values())
    await conns["b"].publish("ssep.t.a", b"garbage")  # a rejection: sent at the next tick
    clock.t += 0.05
    status = await nodes["a"].step(conns["a"], inbox["a"], 1000.0)
    again = NodeStatus.from_bytes(json.dumps(status.to_json()).encode())
    assert status.rejected and [NodeStatus.from_bytes(d) for d in watch.drain()] == [again]
