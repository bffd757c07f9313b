"""Full cells in the cluster: living cells (transducers, sync, witness chain, SQLite) phase-lock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from becomingone.config.schema import BecomingOneConfig
from becomingone.core.phase import CoherenceBand
from becomingone.errors import InputError
from becomingone.keys import NodeKey, key_id, verify_signature
from becomingone.runtime import LocalCluster, build_supervisors
from becomingone.runtime.cell import Cell
from becomingone.runtime.cell_member import (
    CellMember,
    build_cell_members,
    cell_totals,
    open_cells,
)
from becomingone.sync import PhaseSupervisor, Reject, VerifyCache, decode_packet, next_epoch
from becomingone.transport import MemoryBus
from tests.helpers import small_config

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
    """A full cell's packets carry the complex T_sync, Δ_phase and |T_sync|² of its last Sync
    decision (DESIGN §6), not placeholders."""
    sups = build_supervisors(2, "mesh", seed=9)
    members = build_cell_members(sups, tmp_path, _config(), seed=9)
    try:
        member: CellMember = members[0]
        for i in range(1, 41):  # 2 s of stream: the Emissary window is full
            await member.advance(i * 0.05)
        out = member.tick(2.0)
        packet, _body, _sig = decode_packet(out[0].data)
        assert member.status.samples > 150
        assert member.status.outcome != "none"  # the last batch was evaluated
        assert packet.coherence == pytest.approx(member.status.sync)
        assert packet.delta_phi == pytest.approx(member.status.delta_phase)
        assert packet.coherence > 0.0
        assert packet.t_sync != 0j
        assert abs(packet.t_sync) ** 2 == pytest.approx(packet.coherence)
        assert packet.t_sync == member.last_decision().t_sync
    finally:
        for m in members:
            m.close()


async def test_every_packet_is_signed_by_the_cells_own_key(tmp_path: Path):
    """One identity per cell: every packet a full cell sends verifies against the public key of
    the Ed25519 key in its data dir, whose id is the signer of its witness records; the
    roster is made of the cells' keys, not the seeded ones build_supervisors made."""
    sups = build_supervisors(3, "mesh", seed=6)
    members = build_cell_members(sups, tmp_path, _config(), seed=6)
    try:
        async with LocalCluster(members, MemoryBus()) as cluster:
            sent: list[tuple[CellMember, bytes]] = []
            for k in range(40):
                for m in members:
                    await m.advance(k * 0.05)
                for m in members:
                    sent += [(m, o.data) for o in m.tick(k * 0.05)]
            await cluster.step(2.0)
        assert cluster.rejected() == {}
        signers = [{r.signer for r in m.cell.memory.witnesses()} for m in members]
    finally:
        for m in members:
            m.close()
    assert {m for m, _ in sent} == set(members)
    for member, data in sent:
        _packet, body, signature = decode_packet(data)
        on_disk = NodeKey.load(tmp_path / member.node_id / "node.key")
        assert on_disk.public_bytes == member.cell.key.public_bytes
        assert verify_signature(on_disk.public_bytes, body, signature)
        assert member.supervisor.roster[member.node_id] == on_disk.public_bytes
    for member, sup, signed in zip(members, sups, signers, strict=True):
        assert signed == {key_id(member.cell.key.public_bytes)}
        assert sup.key.public_bytes != member.cell.key.public_bytes  # the seeded key is gone
        assert member.supervisor.epoch > 0


async def test_restarted_cell_is_accepted_and_old_packets_stay_rejected():
    """A cell restarted in a running cluster (new supervisor, same key, higher epoch, seq back
    to 0) is accepted by its peers at the first tick after it speaks again, and replays of its
    previous life's packets are rejected as old_epoch while the cluster stays locked."""
    sups = build_supervisors(4, "mesh", alpha=0.2, seed=8, epoch=100)
    captured: list[bytes] = []
    async with LocalCluster(sups, MemoryBus()) as cluster:
        for k in range(30):
            await cluster.step(k * 0.1)
            captured += cluster._subs["cell-0001"].drain() if k == 29 else []
        old = sups[0]
        assert old.seq == 30
        state = old.state().rebooted(next_epoch(old.epoch, 0))
        reborn = PhaseSupervisor.restore(state, **old.settings())
        assert (reborn.seq, reborn.epoch) == (0, 101)
        cluster.members[0] = reborn
        peers = sups[1:]
        before = [p.validator.accepted for p in peers]
        await cluster.step(3.0)  # the reborn cell speaks (seq 1 of epoch 101)
        await cluster.step(3.1)  # its peers receive it
        assert [p.validator.state().last[0] for p in peers] == [("cell-0000", 101, 1)] * 3
        assert all(p.validator.accepted > b for p, b in zip(peers, before, strict=True))
        assert cluster.rejected() == {}
        from_old = [d for d in captured if decode_packet(d)[0].node_id == "cell-0000"]
        assert from_old
        for data in from_old:
            peers[0].receive(data, 3.1)
        assert cluster.rejected() == {Reject.OLD_EPOCH: len(from_old)}
        for k in range(32, 60):
            await cluster.step(k * 0.1)
    assert cluster.history[-1].band is CoherenceBand.SHARED
    assert reborn.steps > 20


async def test_full_cell_restarts_on_its_data_dir_with_the_same_key(tmp_path: Path):
    """A full cell closed and reopened on its data dir signs with the same key under a higher
    epoch; its peers accept it within two ticks."""
    sups = build_supervisors(3, "mesh", alpha=0.2, seed=12)
    members = build_cell_members(sups, tmp_path, _config(), seed=12, epoch=5)
    try:
        async with LocalCluster(members, MemoryBus()) as cluster:
            for k in range(10):
                await cluster.step(k * 0.05)
            first = members[0]
            first.close()
            (cell,) = open_cells([first.node_id], tmp_path, _config())
            state = first.supervisor.state().rebooted(6)
            sup = PhaseSupervisor.restore(state, **{**first.supervisor.settings(), "key": cell.key})
            members[0] = CellMember(cell, sup, first.stream)
            cluster.members[0] = members[0]
            assert cell.key.public_bytes == first.cell.key.public_bytes
            for k in range(10, 12):
                await cluster.step(k * 0.05)
            for peer in members[1:]:
                assert peer.supervisor.validator.state().last[0][:2] == ("cell-0000", 6)
            assert cluster.rejected() == {}
    finally:
        for m in members:
            m.close()


async def test_rekeyed_supervisors_keep_sharing_one_verification_cache(tmp_path: Path):
    """The supervisors rebuilt with the cells' keys share the cache build_supervisors gave
    them: each packet is signed once, recorded under the cell's key, and found there by every
    receiver (no Ed25519 verification repeated), with nothing rejected."""
    cache = VerifyCache()
    sups = build_supervisors(4, "mesh", seed=3, cache=cache)
    members = build_cell_members(sups, tmp_path, _config(), seed=3)
    try:
        assert all(m.supervisor.validator.cache is cache for m in members)
        async with LocalCluster(members, MemoryBus()) as cluster:
            for k in range(5):
                await cluster.step(k * 0.05)
        assert cluster.rejected() == {}
    finally:
        for m in members:
            m.close()
    stats = cache.stats()  # 5 steps x 4 cells sent; the last step's 4 are still on the bus
    assert stats.signed == 20 and stats.misses == 0 and stats.hits == 3 * (20 - 4)


def test_member_refuses_a_supervisor_with_another_key(tmp_path: Path):
    """Pairing a cell with a supervisor that signs with another key is an InputError."""
    sups = build_supervisors(1, "mesh", seed=1)
    (cell,) = open_cells([sups[0].node_id], tmp_path, _config())
    try:
        with pytest.raises(InputError, match="cell's key"):
            CellMember(cell, sups[0], lambda start, count: np.zeros(count))
    finally:
        cell.close()


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


def test_boot_epochs_strictly_increase_across_restarts_even_if_the_clock_steps_back(
    tmp_path: Path,
) -> None:
    """The boot epoch is persisted in the data dir: a restart gets previous + 1 when the wall
    clock went backwards, the wall clock when it moved on; a fresh data dir starts at the
    clock."""
    cfg = small_config()
    cell = Cell(cfg, tmp_path / "a")
    assert cell.boot_epoch(now_ms=5_000) == 5_000
    cell.close()
    again = Cell(cfg, tmp_path / "a")
    assert again.boot_epoch(now_ms=10) == 5_001  # clock stepped back: still higher
    assert again.boot_epoch(now_ms=9_000) == 9_000
    again.close()
    other = Cell(cfg, tmp_path / "b")
    assert other.boot_epoch(now_ms=10) == 10
    other.close()
