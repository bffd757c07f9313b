"""The driver's batch delivery (one ``receive_many`` per cell and tick) changes nothing: a
cluster run with it equals, tick by tick and bit for bit, the run delivering one packet at a
time, over random topologies, sizes, seeds, bus loss and injected bad packets."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.runtime import LocalCluster, build_supervisors, subject_for
from becomingone.sync import CpsState, Outgoing, PhaseSupervisor
from becomingone.transport import MemoryBus


class OneByOne:
    """A cell that exposes only the per-packet ``receive`` (no ``receive_many``)."""

    def __init__(self, sup: PhaseSupervisor) -> None:
        self.sup = sup

    @property
    def node_id(self) -> str:
        return self.sup.node_id

    @property
    def theta(self) -> float:
        return self.sup.theta

    def tick(self, now: float) -> list[Outgoing]:
        return self.sup.tick(now)

    def receive(self, data: bytes, now: float) -> list[Outgoing]:
        return self.sup.receive(data, now)

    def snapshot(self) -> CpsState:
        return self.sup.snapshot()


def _corrupt(data: bytes, pos: int) -> bytes:
    out = bytearray(data)
    out[pos % len(out)] ^= 0x10
    return bytes(out)


async def _run(
    batch: bool, topology: str, n: int, seed: int, loss: float, faults: int, ticks: int
) -> tuple[list[tuple[float, ...]], list[bytes], dict[str, int], list[complex]]:
    """Phases after every tick, final supervisor states and rejections of one run."""
    sups = build_supervisors(n, topology, seed=seed, drift_ppm=200, branching=2)
    members = sups if batch else [OneByOne(s) for s in sups]
    bus = MemoryBus(loss=loss, seed=seed)
    thetas, t_global = [], []
    async with LocalCluster(members, bus) as cluster:
        target = subject_for("local", sups[-1].node_id)
        spy = await bus.connect("spy").subscribe(target)
        attacker = bus.connect("attacker")
        for i in range(ticks):
            report = await cluster.step(i * 0.05)
            thetas.append(report.thetas)
            t_global.append(report.t_global)
            seen = spy.drain()[:faults]  # replayed as is and with one byte changed
            bad = [_corrupt(d, i * 7 + k) for k, d in enumerate(seen)]
            await attacker.publish_many([(target, d) for d in seen + bad])
    return thetas, [s.to_bytes() for s in sups], dict(cluster.rejected()), t_global


@given(
    st.sampled_from(["mesh", "ring", "hub", "fractal"]),
    st.integers(1, 9),
    st.integers(0, 1000),
    st.sampled_from([0.0, 0.2]),
    st.integers(0, 3),
)
@settings(max_examples=25, deadline=None)
def test_batch_delivery_equals_one_packet_at_a_time(
    topology: str, n: int, seed: int, loss: float, faults: int
) -> None:
    """Same phases every tick, same T_global, same final states (inbox, replay tables,
    counters) and the same rejections by reason, with and without batch delivery."""
    ticks = 12
    batched = asyncio.run(_run(True, topology, n, seed, loss, faults, ticks))
    single = asyncio.run(_run(False, topology, n, seed, loss, faults, ticks))
    assert batched == single
    if faults and n > 1 and loss == 0.0:
        assert batched[2].get("replay", 0) > 0  # the injected faults were really delivered
