"""Glyphs on the in-process cluster: each full cell fires its glyphs on its own Θ_local,
witnesses every run and every end on its chain, and reports its glyph load and digest in SSEP."""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from becomingone.cluster import Glyph, glyph_digest
from becomingone.config.schema import BecomingOneConfig, CellConfig
from becomingone.errors import InputError
from becomingone.runtime import LocalCluster, build_supervisors, glyph_totals
from becomingone.runtime.cell_member import CellMember, build_cell_members
from becomingone.transport import MemoryBus

SMALL: dict[str, Any] = {"master": {"tau_max": 10.0, "witness_interval": 5.0}}


def _config(**glyphs: Any) -> CellConfig:
    data = {**SMALL, "glyphs": glyphs} if glyphs else SMALL
    return BecomingOneConfig.model_validate({"becomingone": data}).becomingone


def _records(member: CellMember, kind: str) -> list[dict[str, Any]]:
    """The payloads of the witness records of ``kind`` stored in the member's data dir."""
    return [json.loads(r.payload) for r in member.cell.memory.witnesses() if r.kind == kind]


def _probe(i: int, **fields: Any) -> Glyph:
    values: dict[str, Any] = {
        "id": f"g{i}",
        "kind": "probe",
        "payload": {"probe": "loadavg"},
        "theta": (i + 0.5) / 8,
        "energy": 1000.0,
        "lifetime": 1000,
    }
    return Glyph(**(values | fields))


async def _run(members: list[CellMember], ticks: int) -> None:
    async with LocalCluster(members, MemoryBus()) as cluster:
        await cluster.run(ticks, 0.05)
    for m in members:
        await m.drain(ticks * 0.05)


@pytest.fixture
def members(tmp_path: Path) -> Any:
    sups = build_supervisors(3, "mesh", seed=5)
    built = build_cell_members(sups, tmp_path, _config(), seed=5, wait_runs=True)
    yield built
    for m in built:
        m.close()


async def test_every_glyph_fires_once_per_cycle_from_the_witness_records(
    members: list[CellMember],
) -> None:
    """Eight probes on two cells, 6 s at 1 Hz: each glyph's ``glyph.fired`` records on its
    cell's chain name each cycle whose fire point k + θ its phase passed exactly once (counted
    from the stored records, not from the cell's counters), and no (glyph, cycle) twice."""
    for i in range(8):
        members[i % 2].glyphs.submit(_probe(i))
    start = {m.node_id: m.glyphs.scheduler.position for m in members}
    await _run(members, 120)
    for m in members[:2]:
        fired = _records(m, "glyph.fired")
        assert fired and all(r["ok"] and r["kind"] == "probe" for r in fired)
        keys = Counter((r["glyph"], r["cycle"]) for r in fired)
        assert max(keys.values()) == 1  # no double fires in the witnessed log
        end = m.glyphs.scheduler.position
        for g in m.glyphs.scheduler.glyphs():
            cycles = sorted(c for (gid, c) in keys if gid == g.id)
            expected = math.floor(end - g.theta) - math.floor(start[m.node_id] - g.theta)
            assert len(cycles) == expected >= 5
            assert cycles == list(range(cycles[0], cycles[0] + len(cycles)))  # no gaps
            assert all(0.0 <= r["lateness"] < 0.1 for r in fired if r["glyph"] == g.id)
            assert m.glyphs.values[g.id] >= 0.0  # the probe's latest value, kept per glyph
    totals = glyph_totals([m.glyphs for m in members])
    assert totals.double_fires == 0 and totals.lost == 0 and totals.errors == 0
    assert totals.fires == sum(len(_records(m, "glyph.fired")) for m in members)
    assert _records(members[2], "glyph.fired") == []
    assert all(m.cell.verify_chain().ok for m in members)  # chains verify with glyph records


async def test_glyph_ending_by_lifetime_and_energy_is_witnessed(members: list[CellMember]) -> None:
    """A glyph with 2 cycles of lifetime ends with a witnessed ``glyph.ended`` (lifetime); one
    with 3 units of energy ends after 3 runs (energy); neither is lost and neither fires after."""
    cell = members[0]
    cell.glyphs.submit(_probe(0, lifetime=2))
    cell.glyphs.submit(_probe(1, energy=3.0))
    await _run(members, 120)
    ended = {r["glyph"]: r for r in _records(cell, "glyph.ended")}
    assert ended["g0"]["reason"] == "lifetime" and ended["g0"]["lifetime"] == 0
    assert ended["g1"]["reason"] == "energy" and ended["g1"]["energy"] == 0.0
    fired = Counter(r["glyph"] for r in _records(cell, "glyph.fired"))
    assert fired["g1"] == 3
    assert fired["g0"] <= 2
    totals = cell.glyphs.totals()
    assert (totals.submitted, totals.owned, totals.ended, totals.lost) == (2, 0, 2, 0)
    assert cell.glyphs.digest() == b"" and cell.glyphs.node_energy() == 0.0


async def test_failing_and_hanging_handlers_are_counted_witnessed_and_the_cell_goes_on(
    tmp_path: Path,
) -> None:
    """A handler that raises and one that outlives its deadline become failed runs: counted
    (errors, timeouts), witnessed with their one-line error, charged the failure cost; the
    cell keeps ingesting, its probe keeps firing and its chain verifies."""
    config = _config(
        timeout=0.2,
        kinds={
            "fails": "tests.runtime.hookfns:glyph_fails",
            "hangs": "tests.runtime.hookfns:glyph_hangs",
        },
    )
    sups = build_supervisors(2, "mesh", seed=6)
    members = build_cell_members(sups, tmp_path, config, seed=6, wait_runs=True)
    cell = members[0]
    try:
        cell.glyphs.submit(Glyph(id="bad", kind="fails", theta=0.2, energy=100.0, lifetime=100))
        cell.glyphs.submit(Glyph(id="slow", kind="hangs", theta=0.4, energy=100.0, lifetime=100))
        cell.glyphs.submit(_probe(7))
        samples = cell.cell.samples
        await _run(members, 100)
        fired = _records(cell, "glyph.fired")
        bad = [r for r in fired if r["glyph"] == "bad"]
        slow = [r for r in fired if r["glyph"] == "slow"]
        assert len(bad) >= 4 and not any(r["ok"] for r in bad)
        assert all("RuntimeError: bad failed in cycle" in r["error"] for r in bad)
        assert len(slow) >= 4 and all(r["timed_out"] and not r["ok"] for r in slow)
        assert sum(r["ok"] for r in fired if r["glyph"] == "g7") >= 4
        counts = cell.glyphs.counts
        assert counts["errors"] == len(bad) and counts["timeouts"] == len(slow)
        assert cell.glyphs.scheduler.glyph("bad").energy == 100.0 - len(bad)  # failure cost 1
        assert cell.cell.samples > samples
        assert cell.cell.verify_chain().ok
    finally:
        for m in members:
            m.close()


async def test_glyph_fired_hooks_hear_every_run(members: list[CellMember]) -> None:
    """``glyph.fired`` hooks run once per witnessed run, with the record's payload; a
    ``before_glyph.fired`` veto is recorded in the record and does not undo the run."""
    heard: list[dict[str, Any]] = []
    cell = members[0]
    cell.cell.hooks.on("glyph.fired", lambda event: heard.append(dict(event.payload)))
    cell.cell.hooks.on("before_glyph.fired", lambda event: event.payload["cycle"] % 2 == 1)
    cell.glyphs.submit(_probe(3))
    await _run(members, 80)
    fired = _records(cell, "glyph.fired")
    vetoed = [r for r in fired if r["vetoed"]]
    assert vetoed and len(vetoed) < len(fired)
    assert [h["cycle"] for h in heard] == [r["cycle"] for r in fired if not r["vetoed"]]


async def test_a_receiver_sees_the_senders_glyph_load_and_digest(
    members: list[CellMember],
) -> None:
    """The SSEP packets of a cell with glyphs carry Σ energy and the digest of its set; the
    receiving supervisor keeps both per peer (they were fixed at 0 and empty before)."""
    sender, receiver = members[0], members[1]
    sender.glyphs.submit(_probe(1, energy=7.5))
    sender.glyphs.submit(_probe(2, energy=2.5))
    await sender.advance(0.05)
    for out in sender.tick(0.05):
        if receiver.node_id in out.to:
            receiver.receive(out.data, 0.05)
    load = receiver.supervisor.peer_loads[sender.node_id]
    owned = sender.glyphs.scheduler.glyphs()
    assert load.node_energy == 10.0
    assert load.glyph_digest == glyph_digest(owned) == sender.glyphs.digest()
    assert len(load.glyph_digest) == 32
    assert {g.owner for g in owned} == {sender.node_id}


def test_a_cell_refuses_another_cells_glyph(members: list[CellMember]) -> None:
    """Submitting a glyph owned by another cell is an ``InputError`` naming ``owner``."""
    with pytest.raises(InputError, match="owner"):
        members[0].glyphs.submit(_probe(1, owner=members[1].node_id))


async def test_in_real_time_runs_go_on_in_the_background(tmp_path: Path) -> None:
    """In real time a run that hangs until its deadline does not hold the cluster's tick: 3 s
    of ticks take about 3 s although each run of ``slow`` takes 1.5 s, ``slow`` skips the
    firing that comes while its run is going (busy), and the probes still fire every cycle."""
    config = _config(timeout=1.5, kinds={"hangs": "tests.runtime.hookfns:glyph_hangs"})
    sups = build_supervisors(2, "mesh", seed=8)
    members = build_cell_members(sups, tmp_path, config, seed=8)  # wait_runs=False
    cell = members[0]
    try:
        cell.glyphs.submit(Glyph(id="slow", kind="hangs", theta=0.5, energy=100.0, lifetime=100))
        cell.glyphs.submit(_probe(2))
        cell.glyphs.submit(_probe(6))
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with LocalCluster(members, MemoryBus()) as cluster:
            await cluster.run(60, 0.05, realtime=True)
        took = loop.time() - started
        await cell.drain(3.0)
        assert took < 4.0
        fired = Counter(r["glyph"] for r in _records(cell, "glyph.fired"))
        assert fired["g2"] >= 2 and fired["g6"] >= 2 and fired["slow"] >= 1
        assert cell.glyphs.counts["timeouts"] == fired["slow"]
        assert cell.glyphs.counts["skipped_busy"] >= 1
        assert cell.glyphs.totals().double_fires == 0
    finally:
        for m in members:
            m.close()


async def test_the_fire_log_counts_a_repeated_glyph_cycle(members: list[CellMember]) -> None:
    """The scheduler never repeats a (glyph, cycle), so the fire log is checked by feeding it
    one run twice (what a migration that forgot the cycle fired at the source would do): the
    second is counted as a double fire and still witnessed; a later cycle is not counted."""
    from becomingone.runtime import RunOutcome

    cell = members[0]

    def run(cycle: int) -> RunOutcome:
        return RunOutcome(
            glyph_id="g", kind="probe", cycle=cycle, ok=True, value=1.0, cost=1.0, elapsed=0.0
        )

    for cycle in (4, 4, 5):
        await cell.glyphs._fired(run(cycle), 0.0)
    assert cell.glyphs.counts["double_fires"] == 1
    assert [r["cycle"] for r in _records(cell, "glyph.fired")] == [4, 4, 5]


async def test_command_and_python_glyphs_run_on_a_cell_and_are_witnessed(tmp_path: Path) -> None:
    """End to end on full cells of a running cluster: an allowlisted ``command`` glyph's
    exit code, output digest and size are in its ``glyph.fired`` records on the chain (the
    digest equals SHA-256 of what the argv prints); a non-allowlisted argv is a failed run,
    witnessed with its error; a ``python`` glyph runs its configured callable (digest only)."""
    import hashlib
    import sys

    argv = [sys.executable, "-c", "import sys; print('hi'); sys.exit(3)"]
    cfg = _config(command={"allowlist": [argv]}, callables={"add": "tests.cluster.glyphfns:add"})
    sups = build_supervisors(2, "mesh", seed=5)
    members = build_cell_members(sups, tmp_path, cfg, seed=5, wait_runs=True)
    try:
        cell = members[0]
        cell.glyphs.submit(_probe(0, kind="command", payload={"argv": argv}))
        cell.glyphs.submit(_probe(1, kind="command", payload={"argv": ["true"]}))
        cell.glyphs.submit(_probe(2, kind="python", payload={"callable": "add", "args": [2, 3]}))
        await _run(members, 60)
        fired = {}
        for r in _records(cell, "glyph.fired"):
            fired.setdefault(r["glyph"], []).append(r)
        ok = fired["g0"]
        assert ok and all(r["ok"] for r in ok)
        want = {
            "exit_code": 3,
            "output_sha256": hashlib.sha256(b"hi\n").hexdigest(),
            "output_bytes": 3,
        }
        assert all(r["value"] == want for r in ok), ok[0]
        refused = fired["g1"]
        assert refused and not any(r["ok"] for r in refused)
        assert "allowlist" in refused[0]["error"] and refused[0]["value"] is None
        called = fired["g2"]
        assert called and all(r["ok"] and r["value"] is None for r in called)
        assert called[0]["result"] == hashlib.sha256(b"5").hexdigest()  # add(2, 3) -> 5
    finally:
        for m in members:
            m.close()
