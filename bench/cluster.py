"""In-process cluster: packet delivery throughput (with vs without the shared verification
cache, measured in the same run) and wall time for large clusters to reach SHARED.

(a) Delivery: one set of senders makes T ticks of a mesh's SSEP packets (signing is outside
the timed part); every packet is then delivered to every other cell's supervisor through
``receive`` (parse, cluster/roster checks, Ed25519 verification, skew and replay checks, storing
the phase). Run once with one fresh :class:`~becomingone.sync.VerifyCache` shared by all
receivers and once without, then once more with a fresh cache and each receiver taking a
tick's packets in one ``receive_many`` (the driver's path); packets/s per core = deliveries /
process CPU seconds. Target: ≥ 50 000 packets/s per core with the cache.
(b) Lock: ``LocalCluster.run(..., until=SHARED)`` in virtual time (the CLI's ``--fast``) for a
mesh of 256 and a fractal of 1024 cells (b = 4), drift 0, seed 0. Target: ≤ 60 s wall each.
The per-tick CPU cost is printed next to the driver's up-front estimate
(:func:`~becomingone.runtime.estimate_tick_seconds`).
(c) Batch delivery: CPU per tick of a mesh (256 cells; --quick 32) whose cells take each
tick's packets in one ``receive_many`` (the driver's path) against the same cells fed one
``receive`` per packet (the path before it), in the same run, with the ratio new/old; the
phases of both runs must be equal tick by tick.

Timing on a shared machine is noisy: a missed target prints MISS and is not an error.
Run: ``.venv/bin/python bench/cluster.py [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import time

from becomingone.core.phase import CoherenceBand
from becomingone.runtime import (
    ClusterMember,
    LocalCluster,
    build_supervisors,
    estimate_tick_seconds,
)
from becomingone.sync import CpsState, Outgoing, PhaseSupervisor, VerifyCache
from becomingone.transport import MemoryBus

TICK = 0.05


def tick_packets(n: int, ticks: int) -> list[list[tuple[int, bytes]]]:
    """T ticks of a mesh's wire packets as (sender index, bytes), made by cache-less senders."""
    senders = build_supervisors(n, "mesh", seed=0, cache=False)
    out = []
    for t in range(ticks):
        out.append([(i, msg.data) for i, s in enumerate(senders) for msg in s.tick(t * TICK)])
    return out


def deliver(
    n: int, packets: list[list[tuple[int, bytes]]], cache: VerifyCache | None, batch: bool = False
) -> float:
    """Deliveries per CPU second through fresh receivers' ``receive`` (all packets to all),
    or, with ``batch``, one ``receive_many`` per receiver and tick."""
    receivers: list[PhaseSupervisor] = build_supervisors(
        n, "mesh", seed=0, cache=cache if cache is not None else False
    )
    count = 0
    start = time.process_time()
    for t, tick in enumerate(packets):
        now = t * TICK
        if batch:
            for j, rx in enumerate(receivers):
                inbox = [data for sender, data in tick if sender != j]
                rx.receive_many(inbox, now)
                count += len(inbox)
            continue
        for sender, data in tick:
            for j, rx in enumerate(receivers):
                if j != sender:
                    rx.receive(data, now)
                    count += 1
    cpu = time.process_time() - start
    rejected = sum(sum(r.rejected.values()) for r in receivers)
    if rejected:
        raise RuntimeError(f"{rejected} genuine packets were rejected")
    return count / cpu


def throughput(n: int, ticks: int) -> None:
    """Print (a): packets/s per core with and without the cache, and their ratio."""
    packets = tick_packets(n, ticks)
    cache = VerifyCache()
    cached = deliver(n, packets, cache)
    plain = deliver(n, packets, None)
    stats = cache.stats()
    batched = deliver(n, packets, VerifyCache(), batch=True)
    verdict = "ok" if cached >= 50_000 else "MISS"
    print(f"(a) delivery, mesh of {n}, {ticks} ticks ({n * (n - 1) * ticks} deliveries)")
    print(f"    with cache    {cached:>10,.0f} packets/s per core  ({1e6 / cached:.1f} µs each)")
    print(f"    without cache {plain:>10,.0f} packets/s per core  ({1e6 / plain:.1f} µs each)")
    print(f"    batched       {batched:>10,.0f} packets/s per core  ({1e6 / batched:.1f} µs each)")
    print(f"    ratio {cached / plain:.1f}x; target >= 50,000/s with cache: {verdict}")
    print(
        f"    cache: {stats.hits} hits, {stats.misses} misses (one per distinct packet), "
        f"{stats.parse_hits} parse hits"
    )


class OneByOne:
    """A cell delivered one packet at a time (``receive``; the driver's path before batch
    delivery): the baseline for (c)."""

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


async def tick_cpu(n: int, ticks: int, batch: bool) -> tuple[float, list[tuple[float, ...]]]:
    """CPU seconds per tick of a mesh of ``n`` (after one warm-up tick) and its phases."""
    sups = build_supervisors(n, "mesh", seed=0)
    members: list[ClusterMember] = list(sups) if batch else [OneByOne(s) for s in sups]
    async with LocalCluster(members, MemoryBus(maxsize=max(1024, 2 * n))) as cluster:
        await cluster.step(0.0)
        cpu = time.process_time()
        for t in range(1, ticks + 1):
            await cluster.step(t * TICK)
        cpu = (time.process_time() - cpu) / ticks
    return cpu, [r.thetas for r in cluster.history]


async def batch_vs_single(n: int, ticks: int) -> None:
    """Print (c): CPU per tick with batch delivery against one ``receive`` per packet."""
    single, single_thetas = await tick_cpu(n, ticks, batch=False)
    batch, batch_thetas = await tick_cpu(n, ticks, batch=True)
    if batch_thetas != single_thetas:
        raise RuntimeError("batch delivery changed the phases")
    print(
        f"(c) mesh {n:>5} cells, {ticks} ticks: one receive per packet {single * 1e3:.0f} "
        f"ms/tick, batch delivery {batch * 1e3:.0f} ms/tick; new/old {batch / single:.2f} "
        "(same phases every tick)"
    )


async def to_shared(n: int, topology: str, max_ticks: int) -> None:
    """Print (b): wall and CPU time for ``n`` cells to reach SHARED in virtual time."""
    cells = build_supervisors(n, topology, seed=0, branching=4)
    bus = MemoryBus(maxsize=max(1024, 2 * n))
    wall, cpu = time.perf_counter(), time.process_time()
    async with LocalCluster(cells, bus) as cluster:
        summary = await cluster.run(max_ticks, TICK, until=CoherenceBand.SHARED)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    reached = summary.band is CoherenceBand.SHARED
    verdict = "ok" if reached and wall <= 60.0 else "MISS"
    estimate = estimate_tick_seconds(n, topology, 4)
    print(
        f"(b) {topology} {n:>5} cells: {'SHARED' if reached else 'not SHARED'} after "
        f"{summary.ticks} ticks in {wall:.1f} s wall, {cpu:.1f} s CPU "
        f"({cpu / summary.ticks * 1e3:.0f} ms/tick, estimate {estimate * 1e3:.0f}); "
        f"target <= 60 s: {verdict}"
    )


def main() -> None:
    """Run (a) and (b) at full or --quick sizes."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes for CI (seconds)")
    args = ap.parse_args()
    if args.quick:
        throughput(16, 2)
        asyncio.run(to_shared(32, "mesh", 2000))
        asyncio.run(to_shared(64, "fractal", 2000))
        asyncio.run(batch_vs_single(32, 10))
    else:
        throughput(64, 3)
        asyncio.run(to_shared(256, "mesh", 2000))
        asyncio.run(to_shared(1024, "fractal", 2000))
        asyncio.run(batch_vs_single(256, 10))


if __name__ == "__main__":
    main()
