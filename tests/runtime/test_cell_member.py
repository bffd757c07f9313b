"""Full cells in the cluster: living cells (transducers, sync, witness chain, SQLite) phase-lock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from becomingone.config.schema import BecomingOneConfig
from becomingone.core.phase import CoherenceBand
from becomingone.runtime import LocalCluster, build_supervisors
from becomingone.runtime.cell_member import CellMember, build_cell_members, cell_totals
from becomingone.sync import decode_packet
from becomingone.transport import MemoryBus

SMALL = {"becomingone": {"master": {"tau_max": 10.0, "witness_interval": 5.0}}}


def _config():
    return BecomingOneConfig.model_validate(SMALL).becomingone


@pytest.mark.parametrize("topology", ["mesh", "ring"])
async def test_full_cells_reach_shared_and_keep_verified_chains(tmp_path: Path, topology: str):
    """Eight full cells (ring: winding-0 start) reach SHARED while each ingests its own stream,
    collapses and dissipates, and keeps a verifiable witness chain in its own data dir."""
    ring = topology == "ring"
    sups = build_supervisors(8, topology, spread=0.5 if ring else 1.0, seed=4)
    members = build_cell_members(sups, tmp_path, _config(), seed=4)
    try:
        async with LocalCluster(members, MemoryBus(), ring=ring) as cluster:
            summary = await cluster.run(6000, 0.05, until=CoherenceBand.SHARED)
    finally:
        verified = [m.close() for m in members]
    assert summary.band is CoherenceBand.SHARED
    assert all(verified)
    totals = cell_totals(members, verified)
    assert totals.collapses > 0 and totals.dissipations > 0
    assert totals.samples == sum(m.cell.samples for m in members) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(s.node_id for s in sups)


async def test_ssep_packets_carry_the_cells_state(tmp_path: Path):
    """A full cell's packets carry its Δ_phase and |T_sync|² (DESIGN §6), not placeholders."""
    sups = build_supervisors(2, "mesh", seed=9)
    members = build_cell_members(sups, tmp_path, _config(), seed=9)
    try:
        member: CellMember = members[0]
        for i in range(1, 41):  # 2 s of stream: the Emissary window is full
            await member.advance(i * 0.05)
        out = member.tick(2.0)
        packet, _body, _sig = decode_packet(out[0].data)
        assert member.status.samples > 150
        assert packet.coherence == pytest.approx(member.status.sync)
        assert packet.delta_phi == pytest.approx(member.status.delta_phase)
        assert packet.coherence > 0.0
    finally:
        for m in members:
            m.close()


async def test_cells_have_their_own_streams(tmp_path: Path):
    """Cells read different streams (own offset and jitter), so their coherence differs."""
    sups = build_supervisors(3, "mesh", seed=2)
    members = build_cell_members(sups, tmp_path, _config(), seed=2)
    try:
        for i in range(1, 161):
            for m in members:
                await m.advance(i * 0.05)
        values = {round(m.status.master, 9) for m in members}
        assert len(values) == 3
    finally:
        for m in members:
            m.close()


def test_cli_full_cells_json_summary(tmp_path: Path):
    """`becomingone cluster --cells full --json` reports per-tick lines and a summary with the
    cells' totals; the data dir keeps one folder per cell, each chain verifiable by the CLI."""
    data = tmp_path / "cells"
    cfg = tmp_path / "cell.yaml"
    cfg.write_text("becomingone:\n  master:\n    tau_max: 10\n    witness_interval: 5\n")
    cmd = [sys.executable, "-m", "becomingone.cli", "cluster", "--nodes", "4", "--fast"]
    cmd += ["--duration", "12", "--cells", "full", "--data-dir", str(data), "--json"]
    cmd += ["--config", str(cfg)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    summary = lines[-1]
    assert summary["summary"] is True and summary["band"] == "SHARED"
    assert summary["cells"]["cells"] == 4 and summary["cells"]["chains_verified"] == 4
    assert {"tick", "c_cluster", "r", "band", "rejected"} <= set(lines[0])
    cell_dir = next(data.iterdir())
    verify = [sys.executable, "-m", "becomingone.cli", "witness", "verify", "--data-dir"]
    check = subprocess.run([*verify, str(cell_dir)], capture_output=True, text=True, check=False)
    assert check.returncode == 0 and "chain verified" in check.stdout
