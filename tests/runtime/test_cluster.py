"""The in-process cluster: 16 cells reach SHARED on every topology and reject bad packets."""

from __future__ import annotations

import pytest

from becomingone.core.phase import CoherenceBand
from becomingone.keys import NodeKey
from becomingone.runtime import LocalCluster, build_supervisors, subject_for
from becomingone.sync import Packet, Reject, encode_packet, winding_number
from becomingone.transport import MemoryBus


@pytest.mark.parametrize("topology", ["mesh", "hub", "ring", "fractal"])
async def test_sixteen_cells_reach_shared(topology: str) -> None:
    """16 cells (ring: from a winding-0 start) reach the SHARED band with drifting clocks."""
    ring = topology == "ring"
    cells = build_supervisors(16, topology, spread=0.5 if ring else 1.0, drift_ppm=100, seed=3)
    if ring:
        assert winding_number([c.theta for c in cells]) == 0
    async with LocalCluster(cells, MemoryBus(), ring=ring) as cluster:
        summary = await cluster.run(4000, 0.05, until=CoherenceBand.SHARED)
    assert summary.band is CoherenceBand.SHARED
    assert summary.c_cluster > 0.75
    first = summary.ticks_to_band
    assert first["FORMING"] is not None and first["SHARED"] is not None
    assert first["FORMING"] <= first["SYMBOLIC"] <= first["SHARED"]  # type: ignore[operator]
    assert summary.rejected == {}
    assert not summary.twisted


async def test_lossy_bus_still_locks_and_reports_per_tick() -> None:
    """With 20% loss a hub cluster still reaches SHARED; each tick reports C, R, band."""
    cells = build_supervisors(8, "hub", seed=1)
    reports = []
    async with LocalCluster(cells, MemoryBus(loss=0.2, seed=2)) as cluster:
        summary = await cluster.run(2000, 0.05, until=CoherenceBand.SHARED, on_tick=reports.append)
    assert summary.band is CoherenceBand.SHARED
    assert summary.bus["dropped_loss"] > 0
    assert [r.tick for r in reports] == list(range(len(reports)))
    assert set(reports[0].to_json()) >= {"tick", "c_cluster", "r", "band", "rejected"}


async def test_forged_and_replayed_packets_are_rejected_and_counted() -> None:
    """A cell fed forged and replayed packets over the bus rejects and counts them."""
    cells = build_supervisors(4, "mesh", seed=5)
    bus = MemoryBus()
    async with LocalCluster(cells, bus) as cluster:
        await cluster.step(0.0)
        target = cells[1].node_id
        spy = await bus.connect("spy").subscribe(subject_for("local", target))
        await cluster.step(0.05)
        captured = spy.drain()
        assert captured
        attacker = bus.connect("attacker")
        for data in captured:  # replays of genuine packets
            await attacker.publish(subject_for("local", target), data)
        forged = Packet(node_id=cells[0].node_id, cluster="local", seq=10**6, timestamp=0.1)
        await attacker.publish(
            subject_for("local", target), encode_packet(forged, NodeKey.from_seed(b"e" * 32))
        )
        theta_before = cells[1].theta
        report = await cluster.step(0.1)
    rejected = cells[1].snapshot().rejected
    assert rejected[Reject.REPLAY] == len(captured)
    assert rejected[Reject.BAD_SIGNATURE] == 1
    assert report.rejected == len(captured) + 1
    assert cells[1].theta != theta_before  # the cell kept running on genuine packets


async def _run_with(cache: bool, ticks: int) -> tuple[list[float], dict[str, int], object]:
    """A mesh of 6 with a spy replaying packets to one cell; thetas, rejections, cache."""
    cells = build_supervisors(6, "mesh", seed=9, drift_ppm=50, cache=cache)
    bus = MemoryBus()
    async with LocalCluster(cells, bus) as cluster:
        target = subject_for("local", cells[2].node_id)
        spy = await bus.connect("spy").subscribe(target)
        attacker = bus.connect("attacker")
        for i in range(ticks):
            await cluster.step(i * 0.05)
            await attacker.publish_many([(target, d) for d in spy.drain()[:2]])
    return [c.theta for c in cells], dict(cluster.rejected()), cells[0].validator.cache


@pytest.mark.parametrize("ticks", [1, 25])
async def test_shared_cache_changes_no_decision(ticks: int) -> None:
    """With the shared cache the cluster's phases and rejection counters equal the run
    without it; each packet is signed-and-recorded once and every delivery is a hit."""
    thetas, rejected, cache = await _run_with(True, ticks)
    plain_thetas, plain_rejected, none = await _run_with(False, ticks)
    assert none is None
    assert thetas == plain_thetas and rejected == plain_rejected
    if ticks > 1:
        assert rejected["replay"] > 0
    stats = cache.stats()  # type: ignore[attr-defined]
    assert stats.misses == 0 and stats.parse_misses == 0 and stats.signed == 6 * ticks
    assert stats.hits == 5 * 6 * (ticks - 1) + rejected.get("replay", 0)


@pytest.mark.parametrize("topology", ["mesh", "hub", "ring", "fractal"])
async def test_packets_per_tick_matches_what_the_bus_delivers(topology: str) -> None:
    """The up-front estimate of deliveries and sends per tick is within 25% of what a steady
    tick of 64 cells really puts through the bus."""
    from becomingone.runtime import packets_per_tick

    cells = build_supervisors(64, topology, seed=1)
    bus = MemoryBus()
    async with LocalCluster(cells, bus) as cluster:
        for i in range(12):
            await cluster.step(i * 0.05)
        delivered, published = bus.stats["delivered"], bus.stats["published"]
        await cluster.step(12 * 0.05)
        delivered = bus.stats["delivered"] - delivered
        signed = sum(c.seq for c in cells)
    deliveries, sends = packets_per_tick(64, topology, 4)
    assert abs(delivered - deliveries) <= 0.25 * deliveries
    assert abs(signed / 13 - sends) <= 0.25 * sends
    assert published > 0
