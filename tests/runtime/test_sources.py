"""The cell's CSV source: header and time columns, bad rows, and a time step that disagrees."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from becomingone.errors import InputError
from becomingone.runtime.sources import open_source


async def _all(source) -> np.ndarray:
    return np.concatenate([b async for b in source.batches])


async def test_time_column_is_dropped_and_channels_kept(tmp_path: Path):
    """A header with a time column: the time is not a channel; the other columns are."""
    f = tmp_path / "s.csv"
    f.write_text("time,a,b\n" + "".join(f"{i * 0.01:.2f},{i},{2 * i}\n" for i in range(120)))
    src = open_source(f"csv:{f}", dt=0.01, flush_interval=0.5)
    assert src.channels == 2
    data = await _all(src)
    assert data.shape == (120, 2)
    np.testing.assert_array_equal(data[:3], [[0, 0], [1, 2], [2, 4]])


async def test_unreadable_rows_become_nan_rows(tmp_path: Path):
    """A bad value turns its row into NaN (the cell drops and counts it); the stream goes on."""
    f = tmp_path / "s.csv"
    f.write_text("1\n2\noops\n4\n")
    data = await _all(open_source(f"csv:{f}", dt=0.01, flush_interval=0.5))
    assert data.shape == (4, 1) and math.isnan(data[2, 0]) and data[3, 0] == 4


def test_time_step_must_match_the_cell(tmp_path: Path):
    """A time column stepping by 0.5 s is refused for a cell at dt = 0.01 s, naming both."""
    f = tmp_path / "s.csv"
    f.write_text("t,x\n0,1\n0.5,2\n1.0,3\n")
    with pytest.raises(InputError, match=r"steps by 0\.5 s but kairos\.dt is 0\.01 s"):
        open_source(f"csv:{f}", dt=0.01, flush_interval=0.5)


def test_only_a_time_column_is_refused(tmp_path: Path):
    """A file whose only column is time has no samples."""
    f = tmp_path / "s.csv"
    f.write_text("time\n0\n0.01\n")
    with pytest.raises(InputError, match="no data column"):
        open_source(f"csv:{f}", dt=0.01, flush_interval=0.5)
