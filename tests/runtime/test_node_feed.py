"""The engines of node processes, in process: a light node's Emissary-only field, a full node
fed from a file source, real-time pacing, bad rows, and what ends a pump."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from becomingone.config import CellConfig
from becomingone.errors import InputError, StorageError
from becomingone.runtime.cell import Cell
from becomingone.runtime.cell_member import CellMember
from becomingone.runtime.node_feed import FullFeed, LightFeed, node_member
from becomingone.runtime.sources import open_source
from becomingone.sync.topology import Topology


def ramp_csv(path: Path, rows: int, *, bad: int | None = None) -> Path:
    """A steady 2 Hz phase ramp, one sample per row (``bad``: an unreadable row there)."""
    values = [f"{2 * math.pi * 2.0 * 0.01 * i:.9f}" for i in range(rows)]
    if bad is not None:
        values[bad] = "oops"
    path.write_text("\n".join(values) + "\n")
    return path


async def run_until(member: Any, done: Any, seconds: float = 10.0) -> None:
    """Advance ``member`` every 20 ms until ``done()`` (bounded)."""
    for i in range(int(seconds / 0.02)):
        await member.advance(i * 0.02)
        if done():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not done in time")


async def test_light_node_reports_its_emissary_only(tmp_path: Path) -> None:
    """A light node on a CSV source: its Emissary reads every finite row (the bad one dropped
    and counted), the cell's own engines read nothing, and the packet field is Emissary-only:
    T_sync = T_emissary, coherence = |T_emissary|² (high on a steady ramp), Δφ = 0."""
    source = open_source(
        f"csv:{ramp_csv(tmp_path / 'r.csv', 150, bad=7)}", dt=0.01, flush_interval=0.1
    )
    cell = Cell(CellConfig(name="l"), tmp_path / "l")
    try:
        member = node_member("light", cell, topology=Topology.MESH, cluster="c", source=source)
        assert isinstance(member, LightFeed)
        await run_until(member, lambda: member.ended)
        await member.advance(99.0)
        last = member.emissary.engine.last
        assert (
            member.samples == 150 and member.dropped == 1 and member.emissary.engine.samples == 149
        )
        field = member.supervisor.field
        assert field.t_sync == last.value and field.coherence == pytest.approx(abs(last.value) ** 2)
        assert field.delta_phi == 0.0 and field.coherence > 0.9 and cell.samples == 0
        await member.aclose()
    finally:
        cell.close()


async def test_light_node_without_source_reads_its_rhythm(tmp_path: Path) -> None:
    """Without --source a light node's Emissary reads the node's synthetic rhythm in real
    time (no longer a field at rest: T_sync moves off 0)."""
    cell = Cell(CellConfig(name="l"), tmp_path / "l")
    try:
        member = node_member("light", cell, topology=Topology.MESH, cluster="c", seed=3)
        assert isinstance(member, LightFeed)
        await run_until(member, lambda: member.samples >= 30)
        await member.advance(1.0)
        assert member.supervisor.field.t_sync != 0
        await member.aclose()
    finally:
        cell.close()


async def test_full_node_on_a_file_source_resumes(tmp_path: Path) -> None:
    """A full node on a CSV source feeds its cell (witnessed, the read position stored), its
    field is the cell's Sync decision, the file plays in real time (0.5 s in, at most about
    half of a 1 s file), and a second start on the same data dir reads only rows added since.
    Without a source a full node is today's CellMember on its own rhythm."""
    path = ramp_csv(tmp_path / "r.csv", 100)
    cell = Cell(CellConfig(name="f"), tmp_path / "f")
    try:
        assert isinstance(
            node_member("full", cell, topology=Topology.MESH, cluster="c"), CellMember
        )
        source = open_source(f"csv:{path}", dt=0.01, flush_interval=0.1)
        member = node_member("full", cell, topology=Topology.MESH, cluster="c", source=source)
        assert isinstance(member, FullFeed)
        await member.advance(0.0)
        await asyncio.sleep(0.5)
        assert member.samples <= 70
        await run_until(member, lambda: member.ended)
        await member.advance(1.0)
        decision = cell.sync.evaluate(cell.master.engine.last, cell.emissary.engine.last, now=0)
        assert member.supervisor.field.t_sync == decision.t_sync and cell.samples == 100
        await member.aclose()
    finally:
        cell.close()
    with path.open("a") as fh:
        fh.write("".join(f"{2 * math.pi * 2.0 * 0.01 * i:.9f}\n" for i in range(100, 120)))
    cell = Cell(CellConfig(name="f"), tmp_path / "f")
    try:
        source = open_source(f"csv:{path}", dt=0.01, flush_interval=0.1)
        member = node_member("full", cell, topology=Topology.MESH, cluster="c", source=source)
        await run_until(member, lambda: member.ended)
        assert member.samples == 20 and cell.samples == 120 and cell.verify_chain().ok
        await member.aclose()
    finally:
        cell.close()


async def test_a_storage_error_ends_the_node(tmp_path: Path) -> None:
    """A pump that fails with a storage error raises it from the next advance (the node
    ends); a kind without an engine has no member."""

    async def batches() -> AsyncIterator[np.ndarray]:
        yield np.zeros(3)
        raise StorageError("disk gone")

    cell = Cell(CellConfig(name="s"), tmp_path / "s")
    try:
        alone = node_member("full", cell, topology=Topology.MESH, cluster="c")
        member = FullFeed(cell, alone.supervisor, batches(), pace=False)
        await member.advance(0.0)
        await asyncio.sleep(0.1)
        with pytest.raises(StorageError, match="disk gone"):
            await member.advance(0.1)
        with pytest.raises(InputError, match="kind"):
            node_member("witness", cell, topology=Topology.MESH, cluster="c")
    finally:
        cell.close()


async def test_stopping_never_cuts_a_batch_in_half(tmp_path: Path) -> None:
    """aclose() while a batch is being ingested waits for that batch to finish, then stops
    the pump (no further batch is read)."""
    done: list[int] = []

    class Slow(LightFeed):
        async def ingest(self, batch: np.ndarray, now: float) -> None:
            await asyncio.sleep(0.2)
            done.append(len(batch))

    async def batches() -> AsyncIterator[np.ndarray]:
        for _ in range(5):
            yield np.zeros(4)

    cell = Cell(CellConfig(name="s"), tmp_path / "s")
    try:
        light = node_member("light", cell, topology=Topology.MESH, cluster="c")
        assert isinstance(light, LightFeed)
        await light.aclose()
        member = Slow(light.emissary, light.supervisor, batches(), pace=False)
        await member.advance(0.0)
        await asyncio.sleep(0.05)  # inside the first batch
        await member.aclose()
        assert done == [4]
    finally:
        cell.close()


async def test_full_feed_witnesses_a_cluster_collapse_light_feed_none(tmp_path: Path) -> None:
    """A full node on a steady file source witnesses the crossing of I_c by its T_global as a
    MACRO ``cluster.collapse`` record on its own chain (once: an edge, not every tick); a light
    node on the same source has no chain and witnesses nothing."""
    path = ramp_csv(tmp_path / "r.csv", 600)
    config = CellConfig(name="f", master={"tau_max": 1.0, "witness_interval": 1.0})
    cell = Cell(config, tmp_path / "f")
    try:
        source = open_source(f"csv:{path}", dt=0.01, flush_interval=0.1)
        member = node_member("full", cell, topology=Topology.MESH, cluster="c", source=source)
        assert isinstance(member, FullFeed)
        await run_until(member, lambda: member.ended)
        for tick in range(3):
            await member.advance(7.0 + tick)
            member.supervisor.tick(7.0 + tick)
            await member.after_tick(7.0 + tick)
        assert abs(member.supervisor.mesh.value) ** 2 >= cell.sync.threshold
        records = [r for r in cell.memory.witnesses() if r.kind == "cluster.collapse"]
        assert member.cluster_collapses == 1 and len(records) == 1
        assert records[0].level == "macro" and cell.verify_chain().ok
        await member.aclose()
    finally:
        cell.close()
    light_cell = Cell(CellConfig(name="l"), tmp_path / "l")
    try:
        source = open_source(f"csv:{path}", dt=0.01, flush_interval=0.1)
        light = node_member("light", light_cell, topology=Topology.MESH, cluster="c", source=source)
        await run_until(light, lambda: light.ended)
        light.supervisor.tick(7.0)
        await light.after_tick(7.0)
        kinds = [r.kind for r in light_cell.memory.witnesses()]
        assert light.cluster_collapses == 0 and "cluster.collapse" not in kinds
        await light.aclose()
    finally:
        light_cell.close()
