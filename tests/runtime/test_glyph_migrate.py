"""Glyph migration on the in-process cluster: the migrator moves glyphs between full cells,
witnesses every step on both chains, obeys a ``before_glyph.migrate`` veto, fires
``glyph.migrated``, recovers a lost compare-and-set, and spreads a loaded cluster once SHARED
with no glyph lost and no (glyph, cluster cycle) fired twice."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from becomingone.cluster import Glyph, OwnerRecord, record_key
from becomingone.config.schema import BecomingOneConfig, CellConfig
from becomingone.runtime import GlyphMigrator, LocalCluster, Veto, build_supervisors
from becomingone.runtime.cell_member import CellMember, build_cell_members
from becomingone.transport import MemoryBus

SMALL: dict[str, Any] = {"master": {"tau_max": 10.0, "witness_interval": 5.0}}


def _config() -> CellConfig:
    return BecomingOneConfig.model_validate({"becomingone": SMALL}).becomingone


def _kinds(member: CellMember) -> list[str]:
    return [r.kind for r in member.cell.memory.witnesses() if r.kind.startswith("glyph.migrate")]


def _probe(i: int, n: int = 8) -> Glyph:
    return Glyph(
        id=f"g{i}",
        kind="probe",
        payload={"probe": "loadavg"},
        theta=(i + 0.5) / n,
        energy=1000.0,
        lifetime=10_000,
    )


@pytest.fixture
def members(tmp_path: Path) -> Any:
    sups = build_supervisors(3, "mesh", seed=5, spread=0.0)
    built = build_cell_members(sups, tmp_path, _config(), seed=5, wait_runs=True)
    yield built
    for m in built:
        m.close()


def test_a_migration_moves_one_glyph_and_both_sides_witness(members: list[CellMember]) -> None:
    """g0 moves from cell 0 to cell 1: cell 1 owns it at epoch 1 (record too), cell 0 no
    longer holds it, both chains carry their steps, ``glyph.migrated`` fired on the target
    and every chain still verifies."""
    a, b, _ = members
    a.glyphs.submit(_probe(0))
    heard: list[Any] = []
    b.cell.hooks.on("glyph.migrated", heard.append)
    migrator = GlyphMigrator(members)
    assert asyncio.run(migrator.migrate(a.node_id, "g0", b.node_id, 0.0))
    assert "g0" not in a.glyphs.scheduler and not a.glyphs.held
    moved = b.glyphs.scheduler.glyph("g0")
    assert (moved.owner, moved.epoch) == (b.node_id, 1)
    got = migrator.records.get(record_key("g0"))
    assert got is not None and OwnerRecord.from_bytes(got.value).owner == b.node_id
    assert _kinds(a) == ["glyph.migrate.offer", "glyph.migrate.drop"]
    assert _kinds(b) == ["glyph.migrate.accept", "glyph.migrate.commit", "glyph.migrate.run"]
    assert len(heard) == 1 and heard[0].payload["glyph"] == "g0"
    run = next(r for r in b.cell.memory.witnesses() if r.kind == "glyph.migrate.run")
    assert json.loads(run.payload)["field"]["energy"] == 1000.0
    assert all(m.cell.verify_chain().ok for m in members)


def test_a_veto_keeps_the_glyph_at_its_source(members: list[CellMember]) -> None:
    """A ``before_glyph.migrate`` hook that vetoes aborts: the source still runs the glyph at
    epoch 0, the record is owned by it, and the rejection is counted."""
    a, b, _ = members
    a.glyphs.submit(_probe(0))
    b.cell.hooks.on("before_glyph.migrate", lambda call: Veto(reason="busy"))
    migrator = GlyphMigrator(members)
    assert not asyncio.run(migrator.migrate(a.node_id, "g0", b.node_id, 0.0))
    assert a.glyphs.scheduler.glyph("g0").epoch == 0 and "g0" not in b.glyphs.scheduler
    assert migrator.counts["rejected_vetoed"] == 1
    assert _kinds(a) == ["glyph.migrate.offer", "glyph.migrate.abort"]


def test_a_lost_compare_and_set_recovers_the_one_owner(members: list[CellMember]) -> None:
    """A record written behind the migrator's back makes its offer lose the CAS: nothing
    moves, the conflict is counted and the record's owner keeps the glyph."""
    a, b, _ = members
    a.glyphs.submit(_probe(0))
    migrator = GlyphMigrator(members)
    key = record_key("g0")
    owned = OwnerRecord(glyph=a.glyphs.scheduler.glyph("g0")).to_bytes()
    rev = migrator.records.create(key, owned)
    real_update = migrator.records.update

    def racing(k: str, v: bytes, expected: int) -> int:
        migrator.records.update = real_update  # type: ignore[method-assign]
        real_update(k, owned, rev)  # another writer got there first
        return real_update(k, v, expected)

    migrator.records.update = racing  # type: ignore[method-assign]
    assert not asyncio.run(migrator.migrate(a.node_id, "g0", b.node_id, 0.0))
    assert migrator.counts["conflicts"] == 1 and migrator.counts["recovered"] == 1
    assert "g0" in a.glyphs.scheduler and not a.glyphs.held and "g0" not in b.glyphs.scheduler
    assert _kinds(a) == ["glyph.migrate.recover"]


def test_a_loaded_cluster_spreads_once_shared(members: list[CellMember]) -> None:
    """Nine probes on cell 0 of three locked cells spread to the others after the cluster is
    SHARED, three each; none lost, and no glyph fires
    twice in one cluster cycle across the cells."""
    for i in range(9):
        members[0].glyphs.submit(_probe(i, 9))
    migrator = GlyphMigrator(members)

    async def go() -> None:
        async def after(report: Any) -> None:
            await migrator.step(report.c_cluster, report.band, report.time)

        async with LocalCluster(members, MemoryBus()) as cluster:
            await cluster.run(200, 0.05, after=after)
        for m in members:
            await m.drain(10.0)

    asyncio.run(go())
    counts = sorted(len(m.glyphs) for m in members)
    assert counts == [3, 3, 3] and migrator.counts["migrations"] == 6
    fires: list[tuple[str, float]] = []
    for m in members:
        for r in m.cell.memory.witnesses():
            if r.kind == "glyph.fired":
                p = json.loads(r.payload)
                fires.append((p["glyph"], r.time))
    # a cycle is 1 s: two fires of one glyph closer than half a cycle would be a double fire
    by_glyph: dict[str, list[float]] = {}
    for gid, t in fires:
        by_glyph.setdefault(gid, []).append(t)
    for times in by_glyph.values():
        times.sort()
        assert all(t2 - t1 > 0.5 for t1, t2 in itertools.pairwise(times))
    assert sum(m.glyphs.totals().double_fires for m in members) == 0
