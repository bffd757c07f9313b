"""The cell's batch writer (signing + commit on a worker thread): same bytes as writing inside
ingest, bounded queue, failures raised and fatal, close drains, a crash loses whole batches."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from becomingone.errors import StorageError
from becomingone.runtime import Cell
from becomingone.runtime.sources import synthetic_phase
from tests.helpers import small_config

TABLES = ("witness", "chain_head", "coherence", "signature", "sample_log", "meta")


def cfg(depth: int, meta: float = 1.0, **memory: Any) -> Any:
    """A small config with ``memory.write_queue = depth`` and a meta witness every ``meta`` s."""
    return small_config(memory={"write_queue": depth, **memory}, witnessing={"meta_interval": meta})


async def feed(cell: Cell, start: int, stop: int, step: int = 50) -> None:
    """Feed synthetic samples start … stop−1 in batches, ``now`` = stream seconds."""
    for i in range(start, stop, step):
        await cell.ingest(synthetic_phase(i, min(step, stop - i), dt=0.01), now=i * 0.01)


def dump(db: Path) -> dict[str, list[Any]]:
    """Every row of every cell table, in a stable order."""
    con = sqlite3.connect(db)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}
    finally:
        con.close()


def gate(cell: Cell) -> tuple[threading.Event, list[bool]]:
    """Make the writer wait on an event before each store; set dead[0] to make it fail."""
    opened, dead = threading.Event(), [False]
    snapshot: Callable[..., None] = cell._memory.snapshot

    def gated(*args: Any, **kwargs: Any) -> None:
        opened.wait(30)
        if dead[0]:
            raise StorageError("simulated death of the process")
        snapshot(*args, **kwargs)

    cell._memory.snapshot = gated  # type: ignore[method-assign]
    return opened, dead


@pytest.mark.parametrize("signature_interval", [0.5, 1000.0])
async def test_pipelined_equals_synchronous_bytes(
    tmp_path: Path, signature_interval: float
) -> None:
    """With the same key, batches and times, a cell writing on a thread (queue 2) leaves a
    database row-for-row identical to one writing inside ingest (queue 0)."""
    (tmp_path / "key").mkdir()
    Cell(cfg(0), tmp_path / "key").close()  # creates node.key
    for name, depth in (("sync", 0), ("pipe", 2)):
        (tmp_path / name).mkdir()
        shutil.copy(tmp_path / "key" / "node.key", tmp_path / name / "node.key")
        cell = Cell(cfg(depth, signature_interval=signature_interval), tmp_path / name)
        await feed(cell, 0, 1200, step=37)
        cell.close()
    a, b = dump(tmp_path / "sync" / "memory.sqlite3"), dump(tmp_path / "pipe" / "memory.sqlite3")
    assert len(a["witness"]) > 50 and a == b


async def test_queue_is_bounded_and_ingest_waits(tmp_path: Path) -> None:
    """While the writer is stuck, at most `write_queue` batches wait; the next ingest blocks
    until the writer moves, then every batch is committed in order."""
    cell = Cell(cfg(2, meta=1e9), tmp_path)  # no meta witness (its self-check waits too)
    opened, _ = gate(cell)
    await feed(cell, 0, 100)  # two batches handed over, none committed
    assert cell.writer.pending == 2
    third = threading.Thread(target=lambda: asyncio.run(feed(cell, 100, 150)))
    third.start()
    third.join(0.3)
    assert third.is_alive() and cell.writer.pending == 2 and cell.writer.waits == 1
    opened.set()
    third.join(10)
    assert not third.is_alive()
    cell.close()
    again = Cell(cfg(2), tmp_path)
    assert again.samples == 150 and again.verify_chain().ok
    again.close()


async def test_write_failure_is_raised_and_stops_the_cell(tmp_path: Path) -> None:
    """A real SQLite write failure on the writer thread is raised by a following ingest (within
    queue + 1 batches); later ingests raise too; nothing after the failure is stored, and a
    reopened cell resumes at the last committed batch with a verified chain."""
    cell = Cell(cfg(2), tmp_path)
    await feed(cell, 0, 200)
    cell.flush()
    cell._memory._db.execute("PRAGMA query_only = ON")  # every later write fails
    with pytest.raises(StorageError, match="readonly"):
        await feed(cell, 200, 400)
    assert cell.samples <= 200 + 3 * 50
    with pytest.raises(StorageError, match="stopped accepting"):
        await feed(cell, 400, 450)
    cell._memory._db.execute("PRAGMA query_only = OFF")
    cell.close()  # already raised: close does not raise again, and stores no signatures
    again = Cell(cfg(2), tmp_path)
    assert again.samples == 200 and again.verify_chain().ok
    again.close()


async def test_failure_seen_first_by_close_is_raised(tmp_path: Path) -> None:
    """A failure no ingest saw is raised by close(), which then stores no engine signatures."""
    cell = Cell(cfg(2), tmp_path)
    await feed(cell, 0, 100)
    cell.flush()
    cell._memory._db.execute("PRAGMA query_only = ON")
    await feed(cell, 100, 150)  # handed over; fails on the writer thread
    with pytest.raises(StorageError, match="readonly"):
        cell.close()
    again = Cell(cfg(2), tmp_path)
    assert again.samples == 100 and again.verify_chain().ok
    again.close()


async def test_close_drains_the_queue(tmp_path: Path) -> None:
    """close() commits every queued batch before the final signatures."""
    cell = Cell(cfg(2), tmp_path)
    opened, _ = gate(cell)
    await feed(cell, 0, 100)
    assert cell.writer.pending == 2
    threading.Timer(0.2, opened.set).start()
    cell.close()
    again = Cell(cfg(2), tmp_path)
    assert again.samples == 100 and again.chain.count == again.memory.witness_count() > 0
    assert list(again.memory.replay_log()) == []  # resumed from the final signatures
    again.close()


async def test_crash_with_queued_batches_resumes_consistently(tmp_path: Path) -> None:
    """A cell dies with batches queued: a cell reopened on the same data dir resumes exactly at
    the committed sample count (engines, counts, chain); continuing the stream from there
    ends equal to a cell that never crashed."""
    ref = Cell(cfg(2, meta=1e9), tmp_path / "ref")  # meta cadence restarts with a cell
    await feed(ref, 0, 1000)
    cell = Cell(cfg(2, meta=1e9), tmp_path / "a")
    await feed(cell, 0, 500)
    cell.flush()
    opened, dead = gate(cell)
    await feed(cell, 500, 600)  # two batches queued, never committed
    assert cell.samples == 600 and cell.writer.pending == 2
    b = Cell(cfg(2, meta=1e9), tmp_path / "a")
    dead[0] = True  # the crashed cell's writer must not write after the restart
    opened.set()
    cell.writer.wait_idle()
    assert b.samples == 500 and b.verify_chain().ok
    await feed(b, 500, 1000)
    assert b.master.engine.last == ref.master.engine.last
    assert b.emissary.engine.last == ref.emissary.engine.last
    assert b.counts == ref.counts and b.chain.count == ref.chain.count
    b.close()
    ref.close()
