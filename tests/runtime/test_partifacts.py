"""The partifact driver on an in-process cluster: 16 cells reach AUTONOMOUS; a silenced
Genesis is replaced by consensus within a bounded time; decisions survive a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from becomingone.cluster import Decision, LifecycleStage, Role, verify_decision
from becomingone.config.schema import BecomingOneConfig
from becomingone.errors import InputError
from becomingone.memory import SqliteAppendLog
from becomingone.runtime import LocalCluster, PartifactDriver, build_supervisors
from becomingone.runtime.cell_member import build_cell_members
from becomingone.transport import MemoryBus

TICK = 0.01


async def _run(driver: PartifactDriver, cells: list, ticks: int, start: int = 0, until=None) -> int:
    """Step the cluster and the driver; returns the tick index reached (stops at ``until``)."""
    async with LocalCluster(cells, MemoryBus(maxsize=4096)) as cluster:
        cluster.history = [None] * start  # type: ignore[list-item]  # tick numbers go on
        for i in range(start, start + ticks):
            tick = driver.step(await cluster.step(i * TICK))
            if until is not None and until(tick):
                return i
    return start + ticks


def _driver(n: int, **kw: object) -> tuple[PartifactDriver, list]:
    cells = build_supervisors(n, "mesh", alpha=0.3, seed=3)
    return PartifactDriver(cells, {c.node_id: c.key for c in cells}, **kw), cells  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_sixteen_cells_reach_autonomous() -> None:
    """16 cells climb PRE_CLUSTER → ... → AUTONOMOUS one stage at a time with every condition
    met, Ø1Ø2 : Ø2Ø1 = 10 : 6, every decision in the log and verifiable."""
    driver, cells = _driver(16)
    reached = await _run(
        driver, cells, 800, until=lambda t: t.lifecycle.stage is LifecycleStage.AUTONOMOUS
    )
    assert reached < 800
    stages = []
    for t in driver.history:
        if not stages or stages[-1] is not t.lifecycle.stage:
            stages.append(t.lifecycle.stage)
    assert stages == list(LifecycleStage)
    last = driver.history[-1]
    assert all(c.met for c in last.lifecycle.conditions)
    roles = [r for _s, r in last.cells.values()]
    assert roles.count(Role.GENESIS) == 1
    high = roles.count(Role.GENESIS) + roles.count(Role.VALIDATOR)
    assert (high, len(roles) - high) == (6, 10)
    keys = {c.node_id: c.key.public_bytes for c in cells}
    entries = driver.log.read()
    assert len(entries) == driver.cluster.head >= 8
    for i, e in enumerate(entries, 1):
        verify_decision(Decision.from_entry(e), keys, index=i)


@pytest.mark.asyncio
async def test_silent_genesis_is_replaced_within_a_bounded_time() -> None:
    """After AUTONOMOUS the Genesis goes silent: within genesis_timeout + one vote a proposal
    (proposed by an Integrator) names a new Genesis, a ROLE_TRANSFER says so, and the
    cluster is AUTONOMOUS again once the silent cell has no role."""
    driver, cells = _driver(16, genesis_timeout=0.3, vote_seconds=0.2)
    t0 = await _run(
        driver, cells, 800, until=lambda t: t.lifecycle.stage is LifecycleStage.AUTONOMOUS
    )
    old = driver.cluster.genesis
    assert old is not None
    before = dict(driver.cluster.roles)
    driver.crash(old)
    t1 = await _run(
        driver, cells, 200, start=t0 + 1,
        until=lambda t: driver.cluster.genesis not in (None, old),
    )  # fmt: skip
    assert (t1 - t0) * TICK <= 0.3 + 0.2 + 0.05
    new = driver.cluster.genesis
    move = next(t for t in reversed(driver.cluster.transfers) if t.role is Role.GENESIS)
    assert move.source == old and move.target == new and old not in driver.cluster.roles
    failover = [
        d
        for d in driver.cluster.book.decided.values()
        if d.proposal.payload.get("why") == "failover"
    ]
    assert len(failover) == 1 and failover[0].passed
    assert before[failover[0].proposal.proposer] is Role.INTEGRATOR
    t2 = await _run(
        driver,
        cells,
        300,
        start=t1 + 1,
        until=lambda t: t.lifecycle.stage is LifecycleStage.AUTONOMOUS,
    )
    assert t2 < t1 + 300


@pytest.mark.asyncio
async def test_decisions_survive_a_restart(tmp_path: Path) -> None:
    """Decisions go to an SQLite log; a new driver on the same file replays them (same log
    digest) and appends after them."""
    log = SqliteAppendLog(tmp_path / "consensus.db", "consensus")
    driver, cells = _driver(5, log=log)
    await _run(driver, cells, 300)
    n = log.last_index()
    assert n > 0 and driver.restored == 0
    head = driver.cluster.memory
    log.close()
    log = SqliteAppendLog(tmp_path / "consensus.db", "consensus")
    again, cells2 = _driver(5, log=log)
    assert again.restored == n and again.cluster.memory == head
    await _run(again, cells2, 300)
    assert log.last_index() > n
    log.close()


def test_driver_validates() -> None:
    """A member without a key and a non-positive vote window are refused, naming them."""
    cells = build_supervisors(3, "mesh", seed=1)
    with pytest.raises(InputError, match="keys"):
        PartifactDriver(cells, {})
    with pytest.raises(InputError, match="vote_seconds"):
        PartifactDriver(cells, {c.node_id: c.key for c in cells}, vote_seconds=0)
    with pytest.raises(InputError, match="cell"):
        PartifactDriver(cells, {c.node_id: c.key for c in cells}).crash("nobody")


async def test_full_cells_fire_and_witness_partifact_hooks(tmp_path: Path) -> None:
    """With full cells, role.changed / role.transfer fire on the cell they concern and
    proposal.opened / proposal.decided on the proposer; each is witnessed on that cell's chain
    with ``vetoed`` (a before_ veto is recorded, the role stays); passed intents are
    delegated to Executors as glyphs and their results recorded; every chain verifies."""
    config = BecomingOneConfig.model_validate({}).becomingone
    sups = build_supervisors(5, "mesh", seed=2, spread=0.05, alpha=0.3)
    members = build_cell_members(sups, tmp_path, config, seed=2, wait_runs=True)
    heard: dict[str, list[str]] = {m.node_id: [] for m in members}
    for m in members:
        for name in ("role.changed", "role.transfer", "proposal.opened", "proposal.decided"):
            m.cell.hooks.on(name, lambda call, c=m.node_id: heard[c].append(call.name))
        m.cell.hooks.on("before_role.changed", lambda call: False)
    driver = PartifactDriver(members, {m.node_id: m.supervisor.key for m in members})
    try:
        async with LocalCluster(members, MemoryBus()) as cluster:
            for i in range(120):
                await driver.fire_hooks(driver.step(await cluster.step(i * 0.05)))
        genesis = driver.cluster.genesis
        assert genesis is not None
        records = {
            m.node_id: [(r.kind, json.loads(r.payload)) for r in m.cell.memory.witnesses()]
            for m in members
        }
    finally:
        verified = [m.close() for m in members]
    assert all(verified)
    assert "proposal.opened" in heard[genesis] and "proposal.decided" in heard[genesis]
    assert all("role.transfer" in h and "role.changed" not in h for h in heard.values())  # vetoed
    for cell, recs in records.items():
        changed = [p for k, p in recs if k == "role.changed"]
        assert len(changed) == 1 and changed[0]["cell"] == cell
        assert changed[0]["vetoed"] and driver.cluster.roles[cell].value == changed[0]["role"]
    decided = [p for k, p in records[genesis] if k == "proposal.decided"]
    assert decided and all(p["proposer"] == genesis and p["vetoed"] is None for p in decided)
    # delegation (§5.3): passed intents ran as one-shot probe glyphs on Executors, and each
    # run went to a Validator and an Integrator and was recorded
    counts = driver.delegation.counts
    assert counts["recorded"] >= 5 and counts["assigned"] - counts["recorded"] <= 3
    for task in driver.delegation.done:
        assert driver.cluster.roles[task.executor] is Role.EXECUTOR and task.ok and task.result
        ran = [p for k, p in records[task.executor] if k == "glyph.fired"]
        assert any(p["glyph"] == "task-" + task.id for p in ran)
