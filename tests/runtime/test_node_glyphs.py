"""Glyphs of node processes, in one process: the wall-anchored cycle count, the SQLite fire
log, the target's half of the state machine, and :class:`NodeGlyphs` migrating, refusing and
recovering over an in-memory bus and an in-memory compare-and-set store (the processes and
``kill -9`` are in tests/faults/test_glyph_faults.py)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.cluster import (
    Glyph,
    Migration,
    MigrationVerifier,
    OwnerRecord,
    OwnerState,
    WriteRecord,
    record_key,
)
from becomingone.errors import ProtocolError, StorageError
from becomingone.keys import NodeKey
from becomingone.memory.inmemory import MemoryCasRecord
from becomingone.runtime import FireLog, NodeGlyphs, Veto, anchored_position, build_supervisors
from becomingone.runtime.cell_member import CellMember, build_cell_members
from becomingone.runtime.fire_log import read_fires
from becomingone.runtime.glyph_desk import GlyphExists
from becomingone.runtime.node_glyphs import ANCHOR_KEY
from becomingone.transport import MemoryBus
from tests.runtime.test_glyph_migrate import _config, _probe


@given(
    theta=st.floats(0.0, 1.0, exclude_max=True),
    now=st.floats(1e6, 2e9),
    dt=st.floats(0.0, 0.4),
)
def test_anchored_position_is_the_phase_nearest_the_wall_clock(
    theta: float, now: float, dt: float
) -> None:
    """The position is congruent to θ mod 1 and within half a cycle of now·f₀; a phase that
    advances with the clock keeps its numbering (the same position plus the elapsed time)
    while it stays inside that half cycle."""
    p = anchored_position(theta, now)
    assert abs((p - theta + 0.5) % 1.0 - 0.5) < 1e-6
    assert -0.5 - 1e-6 <= p - now <= 0.5 + 1e-6
    q = anchored_position((theta + dt) % 1.0, now + dt)
    assert math.isclose(q, p + dt, abs_tol=1e-5)


def test_the_fire_log_refuses_a_key_twice_and_survives_a_reopen(tmp_path: Path) -> None:
    """A (glyph, cycle) enters once; the second claim is refused; another connection (a
    restarted process) sees the key and the latest cycle; read_fires lists every row."""
    path = tmp_path / "fires.sqlite3"
    log = FireLog(path, "n1")
    assert log.claim("g", 7, 1.0) and log.claim("g", 8, 2.0) and log.claim("h", 7, 2.0)
    assert not log.claim("g", 8, 3.0)
    log.close()
    again = FireLog(path, "n1")
    assert not again.claim("g", 7, 4.0)
    assert again.last("g") == 8 and again.last("nope") is None
    again.close()
    assert sorted(read_fires(path)) == [("g", 7, "n1"), ("g", 8, "n1"), ("h", 7, "n1")]


def test_the_target_rebuilds_an_offered_migration_from_the_record() -> None:
    """Migration.offered takes the record the source's offer wrote: it accepts the source's
    signed packet and its commit writes at that record's revision; an owned record (no offer)
    is refused."""
    key = NodeKey.from_seed(bytes([3]) * 32)
    glyph = Glyph(id="g", kind="probe", energy=5.0, lifetime=9, owner="a", epoch=2)
    source = Migration(record=OwnerRecord(glyph=glyph, fired_cycle=4), revision=1, target="b")
    effects = source.offer(key)
    offered = OwnerRecord.from_bytes(next(e for e in effects if isinstance(e, WriteRecord)).value)
    data = next(e.data for e in effects if type(e).__name__ == "Deliver")
    target = Migration.offered(offered, 2)
    verifier = MigrationVerifier(receiver="b", keys={"a": key.public_bytes})
    target.accept(data, verifier, offered)
    write = next(e for e in target.commit() if isinstance(e, WriteRecord))
    assert write.expected_revision == 2
    after = OwnerRecord.from_bytes(write.value)
    assert (after.owner, after.epoch, after.fired_cycle) == ("b", 3, 4)
    with pytest.raises(ProtocolError, match="not offered"):
        Migration.offered(OwnerRecord(glyph=glyph), 1)


class ListedRecords(MemoryCasRecord):
    """The in-memory store with the key listing a node uses when it starts."""

    def keys(self) -> list[str]:
        return sorted(self._records)


@pytest.fixture
def pair(tmp_path: Path) -> Any:
    sups = build_supervisors(2, "mesh", seed=5, spread=0.0)
    built = build_cell_members(sups, tmp_path, _config(), seed=5, wait_runs=True)
    yield built
    for m in built:
        m.close()


def _nodes(members: list[CellMember], records: ListedRecords, tmp_path: Path) -> list[NodeGlyphs]:
    return [
        NodeGlyphs(
            m,
            records=records,
            fire_log=FireLog(tmp_path / f"{m.node_id}.fires", m.node_id),
            cluster="t",
            offer_timeout=0.5,
        )
        for m in members
    ]


async def _start(nodes: list[NodeGlyphs], bus: MemoryBus) -> None:
    for n in nodes:
        await n.start(bus.connect(n.node_id), 0.0)


async def _steps(nodes: list[NodeGlyphs], rounds: int = 3) -> None:
    for _ in range(rounds):
        for n in nodes:
            await asyncio.sleep(0)
            await n.step(0.0, c_cluster=0.0, stable=False)  # the policy never moves anything


def test_a_node_migration_moves_the_glyph_and_its_record(
    pair: list[CellMember], tmp_path: Path
) -> None:
    """Submitted on a, the glyph has a record owned by a (a second submit of its id on b is
    refused: the key exists); a's offer travels as a message, b commits (owner b, epoch 1)
    and runs it, a drops it on the answer; both chains carry their steps."""
    records = ListedRecords()
    a, b = _nodes(pair, records, tmp_path)

    async def go() -> None:
        await _start([a, b], MemoryBus())
        a.glyphs.submit(_probe(0))
        with pytest.raises(GlyphExists):
            b.glyphs.submit(_probe(0))
        assert "g0" not in b.glyphs.scheduler
        assert await a.offer("g0", b.node_id, 0.0)
        await _steps([b, a])

    asyncio.run(go())
    got = records.get(record_key("g0"))
    assert got is not None
    rec = OwnerRecord.from_bytes(got.value)
    assert (rec.owner, rec.epoch, rec.state) == (b.node_id, 1, OwnerState.OWNED)
    assert "g0" in b.glyphs.scheduler and not a.glyphs.holds("g0")
    assert a.counts["migrations"] == 1 and b.counts["accepted"] == 1
    kinds = [r.kind for r in pair[1].cell.memory.witnesses() if r.kind.startswith("glyph.")]
    assert kinds == ["glyph.migrate.accept", "glyph.migrate.commit", "glyph.migrate.run"]


def test_a_refused_offer_is_aborted_and_an_unanswered_one_withdrawn(
    pair: list[CellMember], tmp_path: Path
) -> None:
    """A ``before_glyph.migrate`` veto on b answers N: a writes the record back (owned by a,
    epoch 0) and runs the glyph again. An offer nobody answers (b's messages lost) is
    withdrawn from the record after the offer timeout."""
    records = ListedRecords()
    a, b = _nodes(pair, records, tmp_path)
    pair[1].cell.hooks.on("before_glyph.migrate", lambda call: Veto(reason="busy"))

    async def go() -> None:
        await _start([a, b], MemoryBus())
        a.glyphs.submit(_probe(0))
        assert await a.offer("g0", b.node_id, 0.0)
        await _steps([b, a])
        assert a.counts["aborted"] == 1 and b.counts["rejected_vetoed"] == 1
        assert "g0" in a.glyphs.scheduler
        assert await a.offer("g0", "nobody", 0.0)  # an offer to a node that never answers
        assert a.glyphs.held
        await asyncio.sleep(0.6)
        await _steps([a], 1)

    asyncio.run(go())
    got = records.get(record_key("g0"))
    assert got is not None
    rec = OwnerRecord.from_bytes(got.value)
    assert (rec.owner, rec.epoch, rec.state) == (a.node_id, 0, OwnerState.OWNED)
    assert "g0" in a.glyphs.scheduler and not a.glyphs.held and a.counts["timeouts"] == 1


def test_a_restarted_node_takes_up_what_it_owns_and_withdraws_its_open_offer(
    pair: list[CellMember], tmp_path: Path
) -> None:
    """A node that starts reads every record: a glyph it owns is scheduled again, an offer of
    its own left open (its process died after the offer) is withdrawn first, and a glyph owned
    by another node is left alone. An owned record is rewritten (claimed anew), so a takeover
    that watched its old revision would lose its compare-and-set."""
    records = ListedRecords()
    a, b = pair
    mine = OwnerRecord(glyph=Glyph(id="m", kind="probe", energy=9.0, lifetime=99, owner=a.node_id))
    open_offer = OwnerRecord(
        glyph=Glyph(id="o", kind="probe", energy=9.0, lifetime=99, owner=a.node_id),
        state=OwnerState.OFFERED,
        target=b.node_id,
        fired_cycle=5,
    )
    theirs = OwnerRecord(
        glyph=Glyph(id="t", kind="probe", energy=9.0, lifetime=99, owner=b.node_id)
    )
    revs = {rec.glyph.id: records.create(record_key(rec.glyph.id), rec.to_bytes())
            for rec in (mine, open_offer, theirs)}  # fmt: skip
    (node,) = _nodes([a], records, tmp_path)
    asyncio.run(node.start(MemoryBus().connect(a.node_id), 0.0))
    assert sorted(g.id for g in a.glyphs.scheduler.glyphs()) == ["m", "o"]
    got_m, got_t = records.get(record_key("m")), records.get(record_key("t"))
    assert got_m is not None and got_t is not None
    assert got_m.revision > revs["m"] and got_t.revision == revs["t"]  # its own claimed anew
    assert got_m.value == mine.to_bytes()  # (a takeover watching revs["m"] would lose)
    got = records.get(record_key("o"))
    assert got is not None and OwnerRecord.from_bytes(got.value).state is OwnerState.OWNED


def test_the_owner_writes_its_glyphs_state_back_into_the_records(
    pair: list[CellMember], tmp_path: Path
) -> None:
    """After a few cycles of firing (a clock of its own, the phase moving at f₀) the owner's
    write-back puts the spent energy, the lifetime and the last fired cycle into the record,
    so a restart would resume from there; a second write-back with nothing new writes the
    same value again (it renews the owner's lease: a takeover watches the revision). Every
    firing is in the fire log once."""
    a = pair[0]
    records = ListedRecords()
    t = [1000.0]
    node = NodeGlyphs(
        a,
        records=records,
        fire_log=FireLog(tmp_path / "a.fires", a.node_id),
        cluster="t",
        clock=lambda: t[0],
    )
    theta0 = a.supervisor.theta

    async def go() -> None:
        await node.start(MemoryBus().connect(a.node_id), 0.0)
        a.glyphs.submit(_probe(0))
        for _ in range(80):  # 4 s at 20 ticks per cycle
            t[0] += 0.05
            await a.glyphs.step((theta0 + t[0] - 1000.0) % 1.0, 0.0)

    asyncio.run(go())
    assert node.write_back() == 1
    first = records.get(record_key("g0"))
    assert node.write_back() == 1
    got = records.get(record_key("g0"))
    assert got is not None and first is not None
    assert got.value == first.value and got.revision > first.revision
    rec = OwnerRecord.from_bytes(got.value)
    fires = read_fires(tmp_path / "a.fires")
    assert len(fires) >= 3 and rec.glyph.energy == 1000.0 - len(fires)
    assert rec.fired_cycle == max(c for _, c, _ in fires)


def test_the_cycle_anchor_is_written_once_when_locked_and_read_by_all(
    pair: list[CellMember], tmp_path: Path
) -> None:
    """No node writes the anchor while the cluster is not locked; the first that sees it
    locked writes its phase offset, the other reads that same value (its own offset differs),
    and a node started later takes it up at start; a bad anchor value is a StorageError."""
    records = ListedRecords()
    t = [1000.3]
    a, b = (
        NodeGlyphs(
            m,
            records=records,
            fire_log=FireLog(tmp_path / f"{m.node_id}.f", m.node_id),
            cluster="t",
            clock=lambda: t[0],
        )
        for m in pair
    )

    async def go() -> None:
        bus = MemoryBus()
        await a.start(bus.connect("a"), 0.0)
        await b.start(bus.connect("b"), 0.0)
        await a.step(0.0, c_cluster=0.5, stable=True)
        assert records.get(ANCHOR_KEY) is None and a.cycle_anchor is None
        t[0] += 6.0  # the anchor is looked at with the write-back, every 5 s
        await a.step(0.0, c_cluster=0.99, stable=True)
        t[0] += 10.0
        await b.step(0.0, c_cluster=0.99, stable=True)

    asyncio.run(go())
    expected = (1006.3 - pair[0].supervisor.theta) % 1.0
    assert a.cycle_anchor == b.cycle_anchor == pytest.approx(expected)
    late = NodeGlyphs(
        pair[1], records=records, fire_log=FireLog(tmp_path / "l.f", "l"), cluster="t"
    )
    asyncio.run(late.start(MemoryBus().connect("l"), 0.0))
    assert late.cycle_anchor == a.cycle_anchor
    got = records.get(ANCHOR_KEY)
    assert got is not None
    records.update(ANCHOR_KEY, b'{"anchor": 1.5}', got.revision)
    with pytest.raises(StorageError, match=r"cycle\.anchor"):
        asyncio.run(late.start(MemoryBus().connect("m"), 0.0))


def test_a_silent_owners_glyph_is_taken_over_and_the_stalled_owner_drops_it(
    pair: list[CellMember], tmp_path: Path
) -> None:
    """a owns g0 and then goes silent (never heard by b, its record not written). b takes
    nothing before the takeover timeout of silence and of an unchanged record; after it, b
    compares-and-sets the record to itself at epoch 1 with the glyph's state (energy,
    lifetime, θ, last fired cycle), schedules it and witnesses ``glyph.takeover``. a, a
    stalled process that wakes with its copy, fires nothing (fenced: its last write-back
    round is older than half the timeout) and its next write-back round finds the newer epoch
    and drops its copy."""
    records = ListedRecords()
    t = [1000.0]
    a, b = (
        NodeGlyphs(
            m,
            records=records,
            fire_log=FireLog(tmp_path / f"{m.node_id}.f", m.node_id),
            cluster="t",
            takeover=4.0,
            clock=lambda: t[0],
        )
        for m in pair
    )
    glyph = Glyph(
        id="g0", kind="probe", payload={"probe": "loadavg"}, theta=0.3, energy=42.0, lifetime=77
    )

    scans: list[float] = []
    theta0 = pair[0].supervisor.theta

    async def go() -> None:
        bus = MemoryBus()
        await a.start(bus.connect("a"), 0.0)
        await b.start(bus.connect("b"), 0.0)
        a.glyphs.submit(glyph)
        got = records.get(record_key("g0"))
        assert got is not None
        old = OwnerRecord.from_bytes(got.value)
        records.update(
            record_key("g0"), OwnerRecord(glyph=old.glyph, fired_cycle=999).to_bytes(), 1
        )
        records.create("glyph.junk", b"not a record")  # skipped and counted, never a crash
        while t[0] < 1010.0 and not b.counts["takeovers"]:
            t[0] += 0.5
            scans.append(t[0])
            await b.take_over(0.0)
        assert await b.take_over(0.0) == 0  # once
        await b.step(0.0, c_cluster=0.0, stable=False)  # its write-back renews its lease
        assert a._fenced() and not b._fenced()
        for _ in range(20):  # a wakes: its phase jumps, then one cycle: g0 due
            t[0] += 0.05
            await a.glyphs.step((theta0 + t[0] - 1000.0) % 1.0, 0.0)
        await a.step(0.0, c_cluster=0.0, stable=False)

    asyncio.run(go())
    got = records.get(record_key("g0"))
    assert got is not None
    rec = OwnerRecord.from_bytes(got.value)
    # the peer silent past the peer timeout (1 s) from 1001.5: watched from then, taken 4 s on
    assert scans[-1] == 1005.5
    assert (rec.owner, rec.epoch, rec.state) == (b.node_id, 1, OwnerState.OWNED)
    assert rec.fired_cycle == 999
    assert (rec.glyph.energy, rec.glyph.lifetime, rec.glyph.theta) == (42.0, 77, 0.3)
    assert "g0" in b.glyphs.scheduler and b.counts["takeovers"] == 1
    assert b.counts["bad_records"] >= 1
    assert a.glyphs.counts["fenced"] >= 1 and not read_fires(tmp_path / f"{a.node_id}.f")
    assert not a.glyphs.holds("g0") and a.counts["lost"] == 1
    taken = [r for r in pair[1].cell.memory.witnesses() if r.kind == "glyph.takeover"]
    assert len(taken) == 1
