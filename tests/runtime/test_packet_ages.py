"""Packet age measurement for benchmarks: :class:`PacketAges` verifies every packet of a
cluster on arrival and keeps now − timestamp; a node given ``start_at`` waits for it before its
first tick (so processes started one by one tick together)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from becomingone.errors import InputError
from becomingone.keys import NodeKey, verify_signature
from becomingone.runtime import observer
from becomingone.runtime.node import NodeSettings, NodeStatus, RosterFile, SupervisedNode
from becomingone.runtime.observer import PacketAges
from becomingone.sync.ssep import Packet, decode_packet, encode_packet
from becomingone.sync.topology import Topology
from becomingone.transport import MemoryBus, NatsServers, connect_nats


class Clock:
    """A settable clock."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def packet(key: NodeKey, *, node: str = "a", cluster: str = "t", ts: float = 99.98) -> bytes:
    return encode_packet(Packet(node_id=node, cluster=cluster, seq=1, timestamp=ts), key)


def test_ages_of_verified_packets_and_rejections_by_reason(tmp_path: Path) -> None:
    """A member's packet is kept with age now − timestamp (and its timestamp in ``stamps``);
    a flipped signature byte, a signer not in the roster (until it joins), another cluster
    and garbage are counted, not kept."""
    roster = RosterFile(tmp_path / "r.json")
    ka, kb = NodeKey.generate(), NodeKey.generate()
    roster.join("a", ka.public_bytes)
    ages = PacketAges(MemoryBus().connect("p"), cluster="t", roster=roster, clock=Clock(100.0))
    good = packet(ka)
    assert ages.record(good) is not None and abs(ages.ages[0] - 0.02) < 1e-9
    forged = good[:-1] + bytes([good[-1] ^ 1])
    for data in (forged, packet(kb, node="b"), packet(ka, cluster="u"), b"\x00garbage"):
        assert ages.record(data) is None
    assert ages.ages == [ages.ages[0]]
    assert ages.stats["bad_signature"] == ages.stats["unknown_signer"] == 1
    assert ages.stats["wrong_cluster"] == 1 and ages.stats["verified"] == 1
    assert sum(ages.stats.values()) == 5
    roster.join("b", kb.public_bytes)  # a member that joined later is read from the file
    assert ages.record(packet(kb, node="b", ts=99.5)) is not None and len(ages.ages) == 2
    assert ages.stamps == [99.98, 99.5]  # each kept age's packet timestamp, in the same order


def test_copies_are_timed_each_and_verified_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bytes arriving for three receivers give three ages and one Ed25519 check; a
    copy with one changed byte is checked again (and fails)."""
    roster = RosterFile(tmp_path / "r.json")
    key = NodeKey.generate()
    roster.join("a", key.public_bytes)
    clock = Clock(100.0)
    ages = PacketAges(MemoryBus().connect("p"), cluster="t", roster=roster, clock=clock)
    calls: list[bytes] = []

    def counting(public_key: bytes, message: bytes, signature: bytes) -> bool:
        calls.append(signature)
        return verify_signature(public_key, message, signature)

    monkeypatch.setattr(observer, "verify_signature", counting)
    data = packet(key)
    for _ in range(3):
        clock.t += 0.01
        assert ages.record(data) is not None
    assert len(calls) == 1 and [round(a, 6) for a in ages.ages] == [0.03, 0.04, 0.05]
    assert ages.record(data[:-1] + bytes([data[-1] ^ 1])) is None and len(calls) == 2


@pytest.mark.timeout(60)
async def test_run_records_every_copy_until_stopped(tmp_path: Path) -> None:
    """On a real nats-server, every packet published to any node's subject of the cluster is
    recorded as it arrives (``ssep.<cluster>.*``); ``limit`` caps what is kept, the rest is
    counted; ``run`` returns once stopped. Given receivers, only their copies are heard, from
    the first publish after ``run`` set its ``ready`` event."""
    roster = RosterFile(tmp_path / "r.json")
    key = NodeKey.generate()
    roster.join("a", key.public_bytes)
    with NatsServers(tmp_path / "srv", servers=1) as servers:
        probe = await connect_nats(servers.urls, name="probe")
        sender = await connect_nats(servers.urls, name="a")
        try:
            ages = PacketAges(probe, cluster="t", roster=roster, limit=3)
            stop = asyncio.Event()
            task = asyncio.create_task(ages.run(stop))
            for _ in range(100):  # until the probe's interest is registered
                await sender.publish("ssep.t.x", b"warm-up")
                if ages.stats["malformed"]:
                    break
                await asyncio.sleep(0.02)
            data = packet(key, ts=time.time())
            await sender.publish_many([(f"ssep.t.n{i}", data) for i in range(5)])
            for _ in range(200):
                if ages.stats["verified"] == 5:
                    break
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.wait_for(task, 2.0)
            sample = PacketAges(probe, cluster="t", roster=roster, receivers=["n1", "n3"])
            subscribed = asyncio.Event()
            task = asyncio.create_task(sample.run(stop := asyncio.Event(), subscribed))
            await asyncio.wait_for(subscribed.wait(), 5.0)
            await sender.publish_many([(f"ssep.t.n{i}", data) for i in range(5)])
            for _ in range(200):  # once ``ready`` is set, the very first publish is heard
                if sample.stats["verified"] == 2:
                    break
                await asyncio.sleep(0.01)
            first = sample.stats["verified"]
            sent = 1
            while sent < 200:  # only the copies to the two receivers are heard
                await sender.publish_many([(f"ssep.t.n{i}", data) for i in range(5)])
                sent += 1
                await asyncio.sleep(0.01)
                if sample.stats["verified"] >= 20:
                    break
            stop.set()
            await asyncio.wait_for(task, 2.0)
            with pytest.raises(InputError, match="receivers"):
                PacketAges(probe, cluster="t", roster=roster, receivers=[])
        finally:
            await probe.aclose()
            await sender.aclose()
    assert ages.stats["verified"] == 5 and ages.stats["not_kept"] == 2
    assert len(ages.ages) == 3 and all(0 <= a < 1.0 for a in ages.ages)
    assert first == 2 and 20 <= sample.stats["verified"] <= 2 * sent


async def test_node_waits_for_start_at_before_its_first_tick(tmp_path: Path) -> None:
    """With ``start_at`` 0.3 s ahead, the node's first status is stamped at or after it, and
    its ``duration`` counts from there."""
    key = NodeKey.generate()
    roster = RosterFile(tmp_path / "r.json")
    roster.join("a", key.public_bytes)
    settings = NodeSettings(
        name="a", cluster="t", topology=Topology.MESH, tick=0.05, alpha=0.1, beta=0.0,
        branching=4, max_skew=5.0, peer_timeout=1.0, stable_ticks=3,
    )  # fmt: skip
    node = SupervisedNode(settings, member=None, key=key, epoch=1, roster=roster, kind="light")
    seen: list[NodeStatus] = []
    start_at = time.time() + 0.3
    last = await node.run(
        MemoryBus().connect("a"),
        duration=0.2,
        stop=asyncio.Event(),
        on_second=seen.append,
        start_at=start_at,
    )
    assert seen and seen[0].time >= start_at
    assert last.time >= start_at + 0.1 and node.ticks >= 2


class SlowMember:
    """A cell whose ``advance`` takes 0.03 s of the (fake) clock."""

    supervisor: object = None

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    cluster_collapses = 0
    samples = 0

    async def advance(self, now: float) -> None:
        self.clock.t += 0.03

    async def after_tick(self, now: float) -> None:
        return None


async def test_packets_are_stamped_after_the_work_of_the_tick(tmp_path: Path) -> None:
    """A node's packets and status carry the clock after its cell advanced and its inbox was
    taken, not the time the tick began (so a packet's age never includes the sender's own
    work before it)."""
    keys = {n: NodeKey.generate() for n in ("a", "b")}
    roster = RosterFile(tmp_path / "r.json")
    for n, k in keys.items():
        roster.join(n, k.public_bytes)
    clock = Clock(1000.0)
    settings = NodeSettings(
        name="a", cluster="t", topology=Topology.MESH, tick=0.05, alpha=0.1, beta=0.0,
        branching=4, max_skew=5.0, peer_timeout=1.0, stable_ticks=3,
    )  # fmt: skip
    node = SupervisedNode(
        settings,
        member=SlowMember(clock),  # type: ignore[arg-type]
        key=keys["a"],
        epoch=1,
        roster=roster,
        clock=clock,
    )
    bus = MemoryBus()
    conn, peer = bus.connect("a"), bus.connect("b")
    inbox, heard = await conn.subscribe("ssep.t.a"), await peer.subscribe("ssep.t.b")
    node.reload_roster()
    status = await node.step(conn, inbox, 1000.0)
    (packet_bytes,) = heard.drain()
    assert decode_packet(packet_bytes)[0].timestamp == status.time == 1000.03
