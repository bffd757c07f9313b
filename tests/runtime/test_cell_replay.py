"""The replay log is bounded by memory.replay_windows Master windows of samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from becomingone.config.schema import BecomingOneConfig
from becomingone.runtime import Cell
from becomingone.runtime.sources import synthetic_phase


@pytest.mark.parametrize("windows", [1, 3])
async def test_signatures_are_stored_when_the_replay_log_reaches_its_bound(
    tmp_path: Path, windows: int
) -> None:
    """With wall-time signatures far away, engine signatures are written once the replay log
    would exceed `replay_windows` Master windows, and the log never holds more than that."""
    cfg = BecomingOneConfig.model_validate(
        {
            "becomingone": {
                "master": {"tau_max": 1.0, "witness_interval": 1.0},
                "emissary": {"tau_max": 0.5, "witness_interval": 0.5},
                "memory": {"signature_interval": 1e6, "replay_windows": windows},
            }
        }
    ).becomingone
    cell = Cell(cfg, tmp_path)
    bound = windows * cell.master.engine.window_terms
    try:
        for i in range(40):
            await cell.ingest(synthetic_phase(i * 25, 25, dt=0.01), now=1000.0 + i * 0.01)
            logged = sum(len(b) for b in cell.memory.replay_log())
            assert logged <= bound
        sigs = cell.memory.latest_signatures()
        assert set(sigs) == {"master", "emissary"}
        assert sigs["master"][0] >= 1000 - bound
    finally:
        cell.close()


def test_replay_windows_is_validated() -> None:
    """replay_windows outside [1, 64] is a config error naming the key."""
    with pytest.raises(ValidationError, match="replay_windows"):
        BecomingOneConfig.model_validate({"becomingone": {"memory": {"replay_windows": 0}}})
