"""A batch with a finite but huge sample (1e308) is rejected whole by the cell (issue 7 §1).

It is counted, witnessed as ``input.rejected`` with the reason and row count, kept out of the
replay log, and the engines keep their previous good state, so the cell goes on and a restart
replays only good batches.
"""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from becomingone.core import stream as stream_module
from becomingone.memory.store import DB_NAME
from becomingone.runtime import Cell
from becomingone.runtime.sources import synthetic_phase
from tests.helpers import small_config, sql

pytestmark = pytest.mark.timeout(120)


def bad_batch(start: int, value: float) -> np.ndarray:
    """40 good samples continuing the stream at ``start``, one of them replaced by ``value``
    and one by NaN."""
    x = synthetic_phase(start, 40, dt=0.01)
    x[17] = value
    x[30] = np.nan
    return x


async def feed_good(cell: Cell, now: float) -> None:
    """Samples 0 … 599 in batches of 50 (the same for every cell)."""
    for i in range(0, 600, 50):
        await cell.ingest(synthetic_phase(i, 50, dt=0.01), now=now + i * 0.01)


def engine_bytes(cell: Cell) -> tuple[bytes, bytes]:
    """The serialised Master and Emissary engine states."""
    return cell.master.engine.state_bytes(), cell.emissary.engine.state_bytes()


@pytest.mark.parametrize("value", [1e308, -1e308, 1e200])
@pytest.mark.parametrize("bound", [True, False])
async def test_huge_batch_is_rejected_whole_and_the_cell_goes_on(
    tmp_path: Path, value: float, bound: bool
) -> None:
    """good, a batch with one huge value, good: the engines equal (bit for bit) a cell that saw
    only the good batches; the batch's 40 rows are counted as rejected and witnessed with the
    reason; the replay log holds only good samples; reopening the data dir (after a crash)
    works and still equals the good-only cell. With ``bound`` off the engines' own post-check
    (not the up-front sample limit) must catch it, with the same outcome."""
    cfg = small_config(memory={"signature_interval": 1e6})
    limit = stream_module.sample_limit if bound else (lambda *a: math.inf)
    with (
        mock.patch.object(stream_module, "sample_limit", limit),
        np.errstate(over="ignore", invalid="ignore"),
    ):
        cell = Cell(cfg, tmp_path / "cell")
        ref = Cell(cfg, tmp_path / "ref")
        await feed_good(cell, 0.0)
        await feed_good(ref, 0.0)
        status = await cell.ingest(bad_batch(600, value), now=10.0)
        assert status.rejected == 40 and cell.samples == 600
        assert engine_bytes(cell) == engine_bytes(ref)
        for c in (cell, ref):
            await c.ingest(synthetic_phase(600, 80, dt=0.01), now=11.0)
        assert engine_bytes(cell) == engine_bytes(ref)
        rejected = [r.data() for r in cell.memory.witnesses() if r.kind == "input.rejected"]
        assert sum(r["rows"] for r in rejected) == 40  # with NaN rows counted first, or not
        assert ["overflow" in r.get("reason", "") for r in rejected][-1]
        assert sum(len(b) for b in cell.memory.replay_log()) == 680
        assert cell.counts["rejected"] == 40 and cell.verify_chain().ok
        cell.memory._db.close()  # crash: no final checkpoint, state comes from the replay log
        cell.lock.release()  # the OS drops the lock of a crashed process
        again = Cell(cfg, tmp_path / "cell")
        assert engine_bytes(again) == engine_bytes(ref)
        assert again.counts["rejected"] == 40 and again.verify_chain().ok
        again.close()
        ref.close()


async def test_rejected_batch_after_restart_from_signatures(tmp_path: Path) -> None:
    """A cell restored from signatures rejects a huge batch the same way and can be closed
    and reopened again (its stored state is finite)."""
    cfg = small_config(memory={"signature_interval": 0.5})
    cell = Cell(cfg, tmp_path)
    await feed_good(cell, 0.0)
    cell.close()
    cell = Cell(cfg, tmp_path)
    before = engine_bytes(cell)
    status = await cell.ingest(np.array([1.0, 1e308, 2.0]), now=50.0)
    assert status.rejected == 3 and engine_bytes(cell) == before
    cell.close()
    again = Cell(cfg, tmp_path)
    assert engine_bytes(again) == before and again.samples == 600
    again.close()


def wait_for_witnesses(db: Path, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Wait (bounded) until the running cell has committed one more witness record."""
    seen = witness_count(db)
    deadline = time.monotonic() + timeout
    while witness_count(db) <= seen:
        assert proc.poll() is None and time.monotonic() < deadline, "cell did not ingest"
        time.sleep(0.05)


def witness_count(db: Path) -> int:
    """Witness records stored in the cell database (0 before it exists)."""
    if not db.exists():
        return 0
    try:
        return int(sql(db, "SELECT COUNT(*) FROM witness")[0][0])
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def test_stdin_with_a_huge_line_goes_on_and_reports_it(tmp_path: Path) -> None:
    """`printf '…1e308…' | becomingone up --source stdin --json`: the batch holding 1e308 is
    rejected (counted in the JSON status), later lines are ingested, the exit status is 0 and
    a second `up` on the same data dir starts and continues the sample count."""
    cfg = tmp_path / "cell.yaml"
    cfg.write_text("becomingone:\n  memory: {flush_interval: 0.2}\n")
    cmd = [sys.executable, "-m", "becomingone.cli", "up", "--config", str(cfg)]
    cmd += ["--data-dir", str(tmp_path / "data"), "--source", "stdin", "--json", "--summary"]
    phases = synthetic_phase(0, 60, dt=0.01)
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None
    for part in ("\n".join(f"{v:.9f}" for v in phases[:30]), "1e308", "-1e308"):
        proc.stdin.write(part + "\n")
        proc.stdin.flush()
        wait_for_witnesses(tmp_path / "data" / DB_NAME, proc)  # each part is its own batch
    out, err = proc.communicate("\n".join(f"{v:.9f}" for v in phases[30:]) + "\n", timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["samples"] == 60 and summary["rejected"] == 2
    assert summary["chain_verified"] is True
    again = subprocess.run(cmd, input="1.0\n", capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["summary"]["samples"] == 61
