"""Tests of a cell in-process: resuming exactly, bad input, keys, self-verification."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from becomingone.errors import InputError
from becomingone.runtime import Cell
from becomingone.runtime.sources import synthetic_phase
from becomingone.witnessing import Level
from tests.helpers import small_config


async def feed(cell: Cell, start: int, stop: int, step: int = 50, now: float = 0.0) -> None:
    """Feed synthetic samples start … stop−1 in batches."""
    for i in range(start, stop, step):
        await cell.ingest(synthetic_phase(i, min(step, stop - i), dt=0.01), now=now + i * 0.01)


@pytest.mark.parametrize("signature_interval", [0.5, 1000.0])
async def test_restart_resumes_exactly(tmp_path: Path, signature_interval: float) -> None:
    """Closing or crashing (no close) and reopening continues engines, counts and chain exactly
    as an uninterrupted cell, whether state comes from signatures or the replay log."""
    cfg = small_config(memory={"signature_interval": signature_interval})
    ref = Cell(cfg, tmp_path / "ref")
    await feed(ref, 0, 1500)
    a = Cell(cfg, tmp_path / "a")
    await feed(a, 0, 700)
    a.memory._db.close()  # crash: no final checkpoint, and the OS drops the lock
    a.lock.release()
    b = Cell(cfg, tmp_path / "a")
    assert b.samples == 700
    await feed(b, 700, 1500)
    assert b.master.engine.last == ref.master.engine.last
    assert b.emissary.engine.last == ref.emissary.engine.last
    assert b.counts["collapses"] == ref.counts["collapses"] > 0
    assert b.counts["dissipations"] == ref.counts["dissipations"] > 0
    assert b.verify_chain().ok and b.chain.count == b.memory.witness_count()
    seqs = [r.seq for r in b.memory.witnesses()]
    assert seqs == list(range(len(seqs)))
    b.close()
    ref.close()


async def test_nan_rows_never_reach_the_engine(tmp_path: Path) -> None:
    """Rows with NaN/inf are dropped, counted and witnessed; the rest is ingested."""
    cell = Cell(small_config(), tmp_path)
    x = synthetic_phase(0, 10, dt=0.01)
    x[3], x[6] = np.nan, np.inf
    status = await cell.ingest(x, now=0.0)
    assert cell.samples == 8 and status.rejected == 2
    assert "input.rejected" in [r.kind for r in cell.memory.witnesses()]
    with pytest.raises(InputError):
        await cell.ingest(np.ones((4, 3)), now=0.0)
    with pytest.raises(InputError):
        await cell.ingest(["a", "b"], now=0.0)
    assert cell.verify_chain().ok
    cell.close()


async def test_key_file_is_private_and_checked(tmp_path: Path) -> None:
    """The key is created with mode 0600; a world-readable key is refused with the key named."""
    Cell(small_config(), tmp_path).close()
    key = tmp_path / "node.key"
    assert key.stat().st_mode & 0o777 == 0o600
    os.chmod(key, 0o644)
    with pytest.raises(InputError) as err:
        Cell(small_config(), tmp_path)
    assert err.value.parameter == "security.key_file"


async def test_meta_witness_verifies_recent_chain(tmp_path: Path) -> None:
    """Every meta_interval the cell verifies its recent records and witnesses the result;
    after tampering the next meta witness reports the bad record."""
    cell = Cell(small_config(witnessing={"meta_interval": 1.0, "meta_window": 20}), tmp_path)
    await feed(cell, 0, 600)
    metas = [r.data() for r in cell.memory.witnesses() if r.level == Level.META.value]
    assert metas and all(m["ok"] for m in metas) and metas[-1]["checked"] == 20
    cell.memory._db.execute(
        "UPDATE witness SET payload = '{}' WHERE seq = (SELECT MAX(seq) - 3 FROM witness)"
    )
    await feed(cell, 600, 800, now=100.0)
    metas = [r.data() for r in cell.memory.witnesses() if r.level == Level.META.value]
    assert metas[-1]["ok"] is False and metas[-1]["first_bad"] is not None
    assert cell.chain_ok is False
    cell.close()


async def test_micro_witness_per_batch_not_per_sample(tmp_path: Path) -> None:
    """One micro 'ingest' record per batch whatever its size; meso per completed cycle."""
    cell = Cell(small_config(witnessing={"meta_interval": 1e9}), tmp_path)
    await feed(cell, 0, 1000, step=500)
    kinds = [(r.level, r.kind) for r in cell.memory.witnesses()]
    assert kinds.count(("micro", "ingest")) == 2
    meso = [r.data() for r in cell.memory.witnesses() if r.level == "meso"]
    assert sum(m["cycles"] for m in meso if m["transducer"] == "emissary") == 10
    assert sum(m["cycles"] for m in meso if m["transducer"] == "master") == 2
    cell.close()
