"""A cell observing itself: each probe glyph feeds its readings, one per firing, into a KAIROS
engine of the cell's own; its |T|² shows in the run's witness record, the cell's row, the
desk's glyph rows and a node status; bad readings are refused and counted; a migration starts
a fresh stream on the target."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from becomingone.cluster import Glyph
from becomingone.config.schema import BecomingOneConfig, CellConfig
from becomingone.errors import InputError
from becomingone.runtime import RunOutcome, build_supervisors
from becomingone.runtime.cell_member import CellMember, build_cell_members
from becomingone.runtime.glyph_desk import GlyphDesk
from becomingone.runtime.node import _glyph_row
from becomingone.runtime.probe_kairos import ProbeStreams, probe_settings
from becomingone.runtime.status_glyphs import status_glyphs

SMALL: dict[str, Any] = {"master": {"tau_max": 10.0, "witness_interval": 5.0}}


def _config() -> CellConfig:
    return BecomingOneConfig.model_validate({"becomingone": SMALL}).becomingone


@pytest.fixture
def members(tmp_path: Path) -> Any:
    sups = build_supervisors(2, "mesh", seed=3)
    built = build_cell_members(sups, tmp_path / "cells", _config(), seed=3, wait_runs=True)
    yield built
    for m in built:
        m.close()


def _file_probe(gid: str, path: Path, theta: float, **payload: Any) -> Glyph:
    return Glyph(
        id=gid,
        kind="probe",
        payload={"probe": "file_size", "path": str(path), **payload},
        theta=theta,
        energy=1000.0,
        lifetime=1000,
    )


def _fired(member: CellMember, gid: str) -> list[dict[str, Any]]:
    rows = [json.loads(r.payload) for r in member.cell.memory.witnesses()]
    return [r for r in rows if r.get("glyph") == gid and "kairos" in r]


async def test_a_periodic_file_size_is_coherent_and_a_random_one_is_not(
    members: list[CellMember], tmp_path: Path
) -> None:
    """Two file-size probes on one cell, 48 cycles of 20 ticks: after each firing the test
    writes the file's next size — one file alternates 100/300 bytes (period 2 = the default
    lag), the other takes random sizes. The periodic stream ends at |T|² ≈ 1 (collapsed), the
    random one low; both are counted from the engine, the witness records and the rows."""
    cell = members[0]
    periodic, noisy = tmp_path / "periodic", tmp_path / "noisy"
    rng = random.Random(7)
    sizes = {periodic: lambda k: (100, 300)[k % 2], noisy: lambda k: rng.randrange(1, 10_000)}
    fed = {periodic: 0, noisy: 0}
    for path, size in sizes.items():
        path.write_bytes(b"x" * size(0))
    cell.glyphs.submit(_file_probe("periodic", periodic, 0.25))
    cell.glyphs.submit(_file_probe("noisy", noisy, 0.75))
    theta = cell.glyphs.scheduler.position % 1.0
    for tick in range(48 * 20):
        await cell.glyphs.step((theta + tick / 20) % 1.0, tick * 0.05)
        for path, gid in ((periodic, "periodic"), (noisy, "noisy")):
            state = cell.glyphs.kairos(gid)
            assert state is not None
            if state["samples"] > fed[path]:  # it read the file: write the next size
                fed[path] = state["samples"]
                path.write_bytes(b"x" * sizes[path](fed[path]))
    p, n = cell.glyphs.kairos("periodic"), cell.glyphs.kairos("noisy")
    assert p is not None and n is not None
    assert p["samples"] >= 45 and p["terms"] == 32 and (p["lag"], p["window"]) == (2, 32)
    assert p["coherence"] > 0.99 and p["collapsed"]
    assert n["coherence"] < 0.3 and not n["collapsed"]
    # the witness records of the runs carry the stream's state after each reading
    recs = _fired(cell, "periodic")
    assert [r["kairos"]["samples"] for r in recs] == list(range(1, len(recs) + 1))
    assert recs[-1]["kairos"]["coherence"] == pytest.approx(p["coherence"])
    # the cell's row, its node status row (parsed as an observer does) and the desk's rows
    row = cell.glyphs.row()
    assert row["rejected"] == 0 and row["kairos"] in (p["coherence"], n["coherence"])
    heard = _glyph_row(json.loads(json.dumps(status_glyphs(cell.glyphs))))
    assert heard is not None and heard["kairos"] == row["kairos"] and heard["rejected"] == 0
    listed = {g["id"]: g for g in GlyphDesk(members).glyphs()}
    assert listed["periodic"]["kairos"]["coherence"] == pytest.approx(p["coherence"])
    assert listed["noisy"]["kairos"]["coherence"] == pytest.approx(n["coherence"])


async def test_nan_inf_and_huge_readings_are_refused_counted_and_witnessed(
    members: list[CellMember], tmp_path: Path
) -> None:
    """Readings the engine cannot take change nothing in the stream: each is counted in the
    row's ``rejected`` and its run record says why; the next good reading is fed."""
    cell = members[0]
    (tmp_path / "f").write_bytes(b"x")
    cell.glyphs.submit(_file_probe("p", tmp_path / "f", 0.5))

    def run(cycle: int, value: Any) -> RunOutcome:
        return RunOutcome(
            glyph_id="p", kind="probe", cycle=cycle, ok=True, value=value, cost=1.0, elapsed=0.0
        )

    bad = [float("nan"), float("inf"), -1e300, "12"]
    for cycle, value in enumerate([1.0, *bad, 2.0]):
        await cell.glyphs._fired(run(cycle, value), 0.0)
    state = cell.glyphs.kairos("p")
    assert state is not None and state["samples"] == 2
    assert cell.glyphs.row()["rejected"] == len(bad)
    recs = _fired(cell, "p")
    assert [("rejected" in r["kairos"]) for r in recs] == [False, True, True, True, True, False]
    assert "finite" in recs[1]["kairos"]["rejected"]
    assert "sample limit" in recs[3]["kairos"]["rejected"]
    assert "number" in recs[4]["kairos"]["rejected"]
    assert [r["value"] for r in recs] == [1.0, None, None, -1e300, "12", 2.0]


def test_a_migrated_probe_starts_a_fresh_stream_and_an_aborted_one_keeps_its_own(
    members: list[CellMember], tmp_path: Path
) -> None:
    """The engine is the cell's, not the glyph's: install on the target starts at 0 readings,
    the source forgets its stream on drop; an offer aborted back to the source keeps it."""
    src, dst = members[0].glyphs, members[1].glyphs
    owned = src.submit(_file_probe("p", tmp_path / "f", 0.5))
    for v in (1.0, 5.0, 1.0):
        src.probes.feed("p", v)
    assert src.kairos("p")["samples"] == 3  # type: ignore[index]
    src.hold("p")
    src.install(owned, fired_cycle=None)  # aborted: back on the source, same stream
    assert src.kairos("p")["samples"] == 3  # type: ignore[index]
    src.hold("p")
    dst.install(owned, fired_cycle=None)
    src.drop("p")
    assert src.kairos("p") is None and "p" not in src.probes.engines
    assert dst.kairos("p") == {
        "coherence": 0.0,
        "collapsed": False,
        "samples": 0,
        "terms": 0,
        "lag": 2,
        "window": 32,
    }


def test_probe_stream_settings_are_checked_when_the_glyph_is_submitted(
    members: list[CellMember], tmp_path: Path
) -> None:
    """A probe's ``lag`` and ``window`` (cycles) come from its payload; out of range, the
    submission is refused naming the key and the cell keeps nothing of it."""
    assert (probe_settings({"lag": 3, "window": 12}).lag, probe_settings({}).window) == (3, 32)
    cell = members[0].glyphs
    for payload, key in (
        ({"lag": 0}, "payload.lag"),
        ({"lag": True}, "payload.lag"),
        ({"window": 5000}, "payload.window"),
        ({"lag": 8, "window": 8}, "payload.window"),
    ):
        with pytest.raises(InputError) as err:
            cell.submit(_file_probe("bad", tmp_path / "f", 0.5, **payload))
        assert err.value.parameter == key
        assert "bad" not in cell.scheduler and "bad" not in cell.probes.engines
    with pytest.raises(InputError, match="cycle"):
        ProbeStreams(cycle=0.0)
