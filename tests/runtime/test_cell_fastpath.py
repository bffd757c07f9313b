"""The cell's fast path (one validation per batch, velocity products shared by the Master and
the Emissary): its engines equal two bare engines fed the cleaned samples, across a crash and
a restart from the replay log or from signatures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from becomingone.core.stream import KairosEngine
from becomingone.runtime import Cell
from becomingone.runtime.sources import synthetic_phase
from tests.helpers import small_config

SIZES = [1, 50, 7, 230, 120, 2, 400]


def bare_pair(cell: Cell) -> tuple[KairosEngine, KairosEngine]:
    """Fresh engines with the cell's Master and Emissary parameters."""
    out = []
    for t in (cell.master, cell.emissary):
        s = t.engine.snapshot()
        out.append(KairosEngine(s.dt, s.lag, s.omega, s.window, s.threshold, s.channels, s.t0))
    return out[0], out[1]


@pytest.mark.parametrize("signature_interval", [0.5, 1000.0])
async def test_cell_engines_equal_bare_engines_across_a_crash(
    tmp_path: Path, signature_interval: float
) -> None:
    """Batches of mixed sizes, some with NaN rows, fed to a cell that crashes and is reopened
    (state from signatures or the replay log): its engines equal bare engines fed the same
    finite samples, to 1e-9."""
    cfg = small_config(memory={"signature_interval": signature_interval})
    cell = Cell(cfg, tmp_path)
    ref_m, ref_e = bare_pair(cell)
    start, now = 0, 0.0
    for round_ in range(3):
        for k in SIZES:
            x = synthetic_phase(start, k, dt=0.01)
            start += k
            now += 1.0
            if k > 3:
                x[k // 2] = np.nan  # dropped by the cell, never seen by the engines
            await cell.ingest(x, now=now)
            ref_m.update(x[np.isfinite(x)])
            ref_e.update(x[np.isfinite(x)])
            for got, want in ((cell.master.engine, ref_m), (cell.emissary.engine, ref_e)):
                assert got.samples == want.samples
                assert got.last.terms == want.last.terms
                assert abs(got.last.value - want.last.value) <= 1e-9
        if round_ < 2:
            cell.memory._db.close()  # crash: no final checkpoint, and the OS drops the lock
            cell.lock.release()
            cell = Cell(cfg, tmp_path)
    assert cell.verify_chain().ok
    cell.close()
