"""Cluster collapse end to end in one process: full cells share T_sync, compute T_global and
witness the crossing of I_c on their own chains (DESIGN §6, mesh synchronisation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from becomingone.config.schema import BecomingOneConfig
from becomingone.runtime import LocalCluster, build_supervisors
from becomingone.runtime.cell_member import CellMember, build_cell_members, cell_totals
from becomingone.runtime.hooks import HookCall
from becomingone.runtime.sources import synthetic_phase
from becomingone.transport import MemoryBus

SMALL = {"becomingone": {"master": {"tau_max": 10.0, "witness_interval": 5.0}}}


def _config():
    return BecomingOneConfig.model_validate(SMALL).becomingone


def _steady(dt: float):
    """A coherent stream: the synthetic rhythm that never stalls (no jitter)."""

    def stream(start: int, count: int) -> Any:
        return synthetic_phase(start, count, dt=dt, coherent_s=1e9, jitter=0.0)

    return stream


def _cluster_records(member: CellMember) -> list[tuple[str, dict[str, Any]]]:
    return [
        (r.level, json.loads(r.payload))
        for r in member.cell.memory.witnesses()
        if r.kind == "cluster.collapse"
    ]


@pytest.mark.parametrize("topology", ["mesh", "fractal"])
async def test_coherent_cluster_witnesses_one_cluster_collapse_on_every_cell(
    tmp_path: Path, topology: str
):
    """Five locked full cells on a coherent stream: T_global rises past I_c once, so every cell
    writes exactly one MACRO ``cluster.collapse`` record (|T_global|² ≥ I_c, the peers and the
    tick), its hook fires once, every chain verifies, and the driver's rows carry T_global and
    count the one crossing."""
    sups = build_supervisors(5, topology, seed=2, spread=0.05, alpha=0.3, branching=2)
    config = _config()
    members = build_cell_members(sups, tmp_path, config, seed=2)
    heard: list[HookCall] = []
    for m in members:
        m.stream = _steady(config.kairos.step)
    members[0].cell.hooks.on("cluster.collapse", heard.append)
    try:
        async with LocalCluster(members, MemoryBus(), threshold=0.95) as cluster:
            summary = await cluster.run(80, 0.05)
        records = [_cluster_records(m) for m in members]
    finally:
        verified = [m.close() for m in members]
    assert all(verified)
    expected_peers = {"mesh": 4, "fractal": 1}[topology]  # a fractal cell adopts the root's T
    for per_cell in records:
        assert len(per_cell) == 1, per_cell
        level, payload = per_cell[0]
        assert level == "macro"
        assert payload["t_global_sq"] >= 0.95 and payload["threshold"] == 0.95
        assert payload["peers"] == expected_peers and payload["cells"] == 5.0
        assert payload["vetoed"] is None and isinstance(payload["tick"], int)
    assert [h.name for h in heard] == ["cluster.collapse"]
    assert heard[0].payload["t_global_sq"] >= 0.95
    assert summary.cluster_collapses == 1 and summary.t_global_sq >= 0.95
    assert sum(h.cluster_collapse for h in cluster.history) == 1
    assert cluster.history[0].t_global_sq < 0.95  # warming up: the crossing is an edge
    assert cell_totals(members, verified).cluster_collapses == 5


async def test_a_veto_is_recorded_and_cps_cells_never_collapse(tmp_path: Path):
    """A ``before_cluster.collapse`` veto does not hide the reading: the record is written with
    the veto's reason and the ``cluster.collapse`` handlers are skipped; a failing
    ``before_`` handler does not veto and is witnessed as ``hook.failed``. Bare CPS cells carry
    no T_sync, so their T_global stays 0 and nothing collapses."""
    sups = build_supervisors(3, "mesh", seed=5, spread=0.05, alpha=0.3)
    config = _config()
    members = build_cell_members(sups, tmp_path, config, seed=5)
    after: list[HookCall] = []

    def broken(call: HookCall) -> None:
        raise RuntimeError("boom")

    for m in members:
        m.stream = _steady(config.kairos.step)
        m.cell.hooks.on("cluster.collapse", after.append)
    members[0].cell.hooks.on("before_cluster.collapse", broken)  # fails open: no veto
    for m in members[1:]:
        m.cell.hooks.on("before_cluster.collapse", lambda call: False)
    try:
        async with LocalCluster(members, MemoryBus()) as cluster:
            await cluster.run(60, 0.05)
        records = [_cluster_records(m) for m in members]
        failed = [r for r in members[0].cell.memory.witnesses() if r.kind == "hook.failed"]
    finally:
        assert all(m.close() for m in members)
    assert [c.name for c in after] == ["cluster.collapse"]  # only the cell without a veto
    assert len(records[0]) == 1 and records[0][0][1]["vetoed"] is None
    assert all(len(r) == 1 and "vetoed" in str(r[0][1]["vetoed"]) for r in records[1:])
    assert len(failed) == 1 and "boom" in failed[0].payload

    bare = build_supervisors(3, "mesh", seed=5, spread=0.05, alpha=0.3)
    async with LocalCluster(bare, MemoryBus()) as plain:
        summary = await plain.run(40, 0.05)
    assert summary.cluster_collapses == 0
    assert all(h.t_global == 0j for h in plain.history)
