"""Benchmark: glyph placement at scale and the per-cell scheduler's cost.

1. Placement, N = 10⁴ cells and M = 10⁶ glyphs (energies uniform in [0.5, 1.5)): from the same
   start, the migration policy (gated by the simulator's phase-lock C per round), random
   placement and power-of-two-choices — load CV and glyph moves, in the same run. Target, from
   a skewed start (half the glyphs submitted on 1% of the cells) and from a uniform one: CV
   within 10% of power-of-two-choices with fewer migrations.
2. Scheduler: CPU cost per glyph per cycle (fire + complete) at 10³ and 10⁵ glyphs on one
   cell, 20 ticks per cycle. Target: flat (the larger costs at most 1.5× the smaller) with the
   cyclic GC paused while timing, as ``timeit`` does; the figures with the GC running are
   printed too (its full passes scan the whole heap, which grows with the glyphs).

3. Migrations/s in process: (a) the protocol alone — sign, verify, two compare-and-set writes
   on an in-memory record per migration, one glyph moved back and forth between two nodes;
   (b) the :class:`~becomingone.runtime.GlyphMigrator` between two full cells (witnessing
   every step on SQLite chains, hooks). No target; the figures go in docs/glyphs.md.

   (c) over NATS: three ``becomingone node --glyphs`` processes spreading glyphs from one of
   them (``bench/glyphs_nats.py``: ownership CAS on the JetStream KV, packets on NATS
   subjects, the policy's own pace); skipped with ``--no-nats``.

4. Fire-time jitter: a locked 4-cell in-process cluster of full cells (virtual time, 50 ms
   ticks, 1 Hz phase) runs probe glyphs; each ``glyph.fired`` witness record carries how late
   the firing was behind θ, in cycles. Jitter is shown in ticks (one tick = f·tick cycles): a
   scheduler that fires at the first tick after θ is crossed has lateness uniform in [0, 1)
   tick, so the reference is p50 0.5, p99 0.99 tick. No target; the figures go in
   docs/glyphs.md.

Run: ``.venv/bin/python bench/glyphs.py [--quick] [--no-nats]`` (quick: 10³ cells, 10⁵
glyphs, 10³/10⁴ glyphs on the cell). Exit status 1 if a target is missed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from becomingone.cluster import (
    Deliver,
    Fire,
    Glyph,
    GlyphScheduler,
    Migration,
    MigrationVerifier,
    OwnerRecord,
    WriteRecord,
    record_key,
)
from becomingone.config.schema import CellConfig
from becomingone.keys import NodeKey
from becomingone.memory.inmemory import MemoryCasRecord
from becomingone.runtime import GlyphMigrator, LocalCluster, build_supervisors
from becomingone.runtime.cell_member import build_cell_members
from becomingone.sim import compare_placements, simulate, skewed_placement
from becomingone.transport import MemoryBus

TICKS_PER_CYCLE = 20


def placement(n: int, m: int) -> bool:
    """Print the placement comparison for both starts; True iff the skewed target is met."""
    energy = np.random.default_rng(1).uniform(0.5, 1.5, m)
    lock = simulate(n, "mesh", 60, alpha=0.1, seed=1)
    print(f"placement: N = {n} cells, M = {m} glyphs; C > 0.65 from round {lock.rounds_to(0.65)}")
    print(f"{'start':<8} {'strategy':<22} {'CV':>8} {'migrations':>11} {'seconds':>8}")
    met = True
    for label, share in (("skewed", 0.5), ("uniform", 0.0)):
        start = skewed_placement(n, m, hot_share=share, seed=1)
        t0 = time.perf_counter()
        cmp = compare_placements(energy, start, n, coherence=lock.c[1:], seed=1)
        took = time.perf_counter() - t0
        print(f"{label:<8} {'(start)':<22} {cmp.start_cv:8.4f} {0:11d}")
        for res in (cmp.policy, cmp.random, cmp.two_choices):
            print(f"{label:<8} {res.name:<22} {res.cv:8.4f} {res.migrations:11d}")
        ratio = cmp.policy.cv / cmp.two_choices.cv
        moves = cmp.policy.migrations / cmp.two_choices.migrations
        verdict = "ok" if cmp.target_met else "MISSED"
        note = f"  target: {verdict}"
        print(
            f"{label:<8} policy/p2c: CV x{ratio:.2f}, migrations x{moves:.3f};"
            f" all three {took:.1f} s{note}"
        )
        met = met and cmp.target_met
    return met


def scheduler_cost(glyphs: int, cycles: int, *, collect: bool = False) -> float:
    """CPU seconds per glyph per cycle to tick, fire and complete ``glyphs`` glyphs (process
    time, so other processes on a shared machine do not count). ``collect``: leave CPython's
    cyclic GC running (its full passes scan every live object, so they grow with the heap)."""
    rng = np.random.default_rng(2)
    sched = GlyphScheduler(position=0.0)
    sched.add_many(
        Glyph(id=f"g{i}", kind="probe", theta=float(t), energy=1e6, lifetime=10**6)
        for i, t in enumerate(rng.random(glyphs))
    )
    steps = cycles * TICKS_PER_CYCLE
    gc.collect()
    if not collect:  # as timeit does: the cyclic GC paused while timing
        gc.disable()
    start = time.process_time()
    fired = 0
    for k in range(1, steps + 1):
        for effect in sched.tick((k / TICKS_PER_CYCLE) % 1.0):
            if isinstance(effect, Fire):
                sched.complete(effect.glyph.id, effect.cycle, cost=0.0)
                fired += 1
    took = time.process_time() - start
    gc.enable()
    assert fired == glyphs * cycles, (fired, glyphs, cycles)
    return took / (glyphs * cycles)


def _migrate_once(
    store: MemoryCasRecord,
    key: str,
    keys: dict[str, NodeKey],
    verifiers: dict[str, MigrationVerifier],
) -> None:
    """Move the glyph under ``key`` to the other node: offer, accept, commit, run, drop."""
    got = store.get(key)
    assert got is not None
    record = OwnerRecord.from_bytes(got.value)
    target = "b" if record.owner == "a" else "a"
    mig = Migration(record=record, revision=got.revision, target=target)
    data = b""
    for effect in mig.offer(keys[record.owner]):
        if isinstance(effect, WriteRecord):
            mig.recorded(store.update(effect.key, effect.value, effect.expected_revision))
        elif isinstance(effect, Deliver):
            data = effect.data
    now = store.get(key)  # the target reads the record and verifies the packet against it
    assert now is not None
    mig.accept(data, verifiers[target], OwnerRecord.from_bytes(now.value))
    for step in (mig.commit, mig.run, mig.drop):
        for effect in step():
            if isinstance(effect, WriteRecord):
                mig.recorded(store.update(effect.key, effect.value, effect.expected_revision))


def protocol_rate(count: int) -> float:
    """Migrations per second of the sans-IO protocol with signing, verifying and two CAS
    writes each (one glyph moved back and forth between two nodes)."""
    keys = {n: NodeKey.from_seed(bytes([i + 1]) * 32) for i, n in enumerate(("a", "b"))}
    roster = {n: k.public_bytes for n, k in keys.items()}
    verifiers = {n: MigrationVerifier(receiver=n, keys=roster) for n in keys}
    store, key = MemoryCasRecord(), record_key("g")
    glyph = Glyph(id="g", kind="probe", energy=10.0, lifetime=100, owner="a")
    store.create(key, OwnerRecord(glyph=glyph).to_bytes())
    start = time.perf_counter()
    for _ in range(count):
        _migrate_once(store, key, keys, verifiers)
    took = time.perf_counter() - start
    got = store.get(key)
    assert got is not None and OwnerRecord.from_bytes(got.value).epoch == count
    return count / took


def cells_rate(count: int) -> float:
    """Migrations per second between two full cells through the GlyphMigrator."""
    with tempfile.TemporaryDirectory(prefix="b1-bench-") as base:
        sups = build_supervisors(2, "mesh", seed=1, spread=0.0)
        members = build_cell_members(sups, Path(base), CellConfig(), seed=1)
        try:
            members[0].glyphs.submit(Glyph(id="g", kind="probe", energy=10.0, lifetime=100))
            migrator = GlyphMigrator(members)
            names = [m.node_id for m in members]

            async def go() -> float:
                start = time.perf_counter()
                for i in range(count):
                    source, target = names[i % 2], names[(i + 1) % 2]
                    assert await migrator.migrate(source, "g", target, 0.0)
                return time.perf_counter() - start

            took = asyncio.run(go())
        finally:
            for m in members:
                m.close()
    return count / took


def fire_jitter(glyphs: int, ticks: int, tick: float = 0.05) -> tuple[float, float, int]:
    """(p50, p99) lateness of glyph firings in ticks, and how many firings, on a locked
    4-cell cluster of full cells in virtual time (θ drawn uniformly, seeded)."""
    with tempfile.TemporaryDirectory(prefix="b1-bench-") as base:
        sups = build_supervisors(4, "mesh", seed=2, spread=0.0, alpha=0.3)
        members = build_cell_members(sups, Path(base), CellConfig(), seed=2, wait_runs=True)
        rng = np.random.default_rng(7)
        try:
            for i in range(glyphs):
                g = Glyph(
                    id=f"j{i}",
                    kind="probe",
                    payload={"probe": "loadavg"},
                    theta=float(rng.uniform(0.0, 1.0)),
                    energy=1e5,
                    lifetime=10**6,
                )
                members[i % len(members)].glyphs.submit(g)

            async def go() -> None:
                bus = MemoryBus(maxsize=1024)
                async with LocalCluster(members, bus) as cluster:
                    await cluster.run(ticks, tick)
                    for m in members:
                        await m.drain(ticks * tick)

            asyncio.run(go())
            late = [
                json.loads(r.payload)["lateness"]
                for m in members
                for r in m.cell.memory.witnesses()
                if r.kind == "glyph.fired"
            ]
        finally:
            for m in members:
                m.close()
    per_tick = np.asarray(late) / (sups[0].snapshot().frequency * tick)
    return float(np.percentile(per_tick, 50)), float(np.percentile(per_tick, 99)), len(late)


def main() -> int:
    """Run both parts; exit 1 if a target is missed."""
    quick = "--quick" in sys.argv[1:]
    n, m = (1_000, 100_000) if quick else (10_000, 1_000_000)
    ok = placement(n, m)
    small, large = (1_000, 10_000) if quick else (1_000, 100_000)
    print(f"\nscheduler: {TICKS_PER_CYCLE} ticks per cycle, fire + complete per glyph (CPU time)")
    costs: dict[tuple[int, bool], float] = {}
    for collect in (False, True):
        for count in (small, large):
            cycles = max(2, 200_000 // count)
            best = min(scheduler_cost(count, cycles, collect=collect) for _ in range(2))
            costs[count, collect] = best
            gc_state = "GC running" if collect else "GC paused "
            print(f"{count:>7} glyphs, {gc_state}: {best * 1e6:6.2f} µs per glyph per cycle")
    ratio = costs[large, False] / costs[small, False]
    with_gc = costs[large, True] / costs[small, True]
    flat = ratio <= 1.5
    print(
        f"ratio {large}/{small}: {ratio:.2f} (GC paused; target <= 1.5: "
        f"{'ok' if flat else 'MISSED'}), {with_gc:.2f} with the GC running"
    )
    moves = 500 if quick else 5_000
    print(f"\nmigrations in process ({moves} of one glyph, back and forth)")
    print(f"protocol (sign, verify, 2 CAS writes): {protocol_rate(moves):8.0f} migrations/s")
    print(f"GlyphMigrator, 2 full cells (witnessed): {cells_rate(moves // 5):8.0f} migrations/s")
    if "--no-nats" not in sys.argv[1:]:
        from glyphs_nats import report  # bench/ is on sys.path when run as a script

        report(quick)
    glyphs, ticks = (8, 200) if quick else (32, 1_000)
    p50, p99, fired = fire_jitter(glyphs, ticks)
    print(
        f"\nfire-time jitter, {glyphs} glyphs on 4 locked full cells, {ticks} ticks of 50 ms: "
        f"{fired} firings, lateness p50 {p50:.3f} tick, p99 {p99:.3f} tick "
        f"(first tick after θ: 0.5 / 0.99)"
    )
    return 0 if ok and flat else 1


if __name__ == "__main__":
    sys.exit(main())
