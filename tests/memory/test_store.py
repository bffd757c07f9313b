"""Tests of temporal memory: snapshots, history, reconstruction, retention, atomic batches."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from becomingone.config import RetentionConfig
from becomingone.core.stream import KairosEngine, KairosState
from becomingone.errors import InputError, StorageError
from becomingone.keys import NodeKey
from becomingone.memory import Coherence, TemporalMemory
from becomingone.witnessing import Level, WitnessChain

KEY = NodeKey.from_seed(bytes(range(32)))


def c(v: float) -> Coherence:
    """A coherence reading with all values v."""
    return Coherence(master=v, emissary=v, sync=v, delta_phase=v / 10)


def test_wal_mode_and_snapshot_retrieve(tmp_path: Path) -> None:
    """The file is in WAL mode; snapshots come back from retrieve() in time order."""
    with TemporalMemory(tmp_path / "m.db") as mem:
        for i in range(10):
            mem.snapshot(float(i), c(i / 10), phase=0.1 * i, witnesses=[])
        pts = mem.retrieve(2.0, 5.0)
        assert [p.t for p in pts] == [2.0, 3.0, 4.0, 5.0]
        assert pts[1].coherence.sync == pytest.approx(0.3) and pts[1].phase == pytest.approx(0.3)
    con = sqlite3.connect(tmp_path / "m.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_reconstruct_interpolates(tmp_path: Path) -> None:
    """reconstruct_coherence(t) interpolates between neighbours and refuses times outside."""
    with TemporalMemory(tmp_path / "m.db") as mem:
        mem.snapshot(10.0, c(0.2), 0.0, [])
        mem.snapshot(20.0, c(0.6), 1.0, [])
        mid = mem.reconstruct_coherence(12.5)
        assert mid.coherence.master == pytest.approx(0.3) and mid.phase == pytest.approx(0.25)
        assert mem.reconstruct_coherence(20.0).coherence.sync == pytest.approx(0.6)
        with pytest.raises(InputError):
            mem.reconstruct_coherence(25.0)


def test_retention_downsamples_and_drops(tmp_path: Path) -> None:
    """Old raw points become bucket means; very old buckets go; signatures keep the newest N."""
    ret = RetentionConfig(raw_seconds=100, coarse_step=10, coarse_seconds=1000, signatures=2)
    with TemporalMemory(tmp_path / "m.db", ret) as mem:
        for i in range(3000):
            t = float(i)
            sig = {"master": (i, b"s%d" % i), "emissary": (i, b"e")} if i % 50 == 49 else None
            mem.snapshot(t, c((i % 10) / 10), 0.0, [], signatures=sig)
        pts = mem.retrieve(0, 3000)
        raw = [p for p in pts if p.step == 0]
        coarse = [p for p in pts if p.step > 0]
        assert len(raw) <= 100 + 50 + 1
        assert 85 <= len(coarse) <= 101  # ~1000 s of 10 s buckets
        assert all(p.n == 10 for p in coarse)
        assert coarse[-1].coherence.master == pytest.approx(0.45)  # mean of 0.0 … 0.9
        assert min(p.t for p in pts) >= 2999 - 1000 - 100 - 10
        assert mem.latest_signatures()["master"] == (2999, b"s2999")
        con = sqlite3.connect(tmp_path / "m.db")
        assert con.execute("SELECT COUNT(*) FROM signature").fetchone()[0] == 4
        con.close()


def test_bounded_file_for_an_hour_long_master(tmp_path: Path) -> None:
    """Repeated hour-window signatures (100 Hz, ~11.5 MB each) do not grow the file unbounded."""
    eng = KairosEngine(dt=0.01, lag=0.05, omega=0.0, window=3600.0)
    eng.update(np.cumsum(np.ones(360_100)) * 0.06)
    state = eng.snapshot().to_bytes()
    sizes = []
    with TemporalMemory(tmp_path / "m.db") as mem:
        for i in range(10):
            mem.snapshot(float(i), c(0.5), 0.0, [], signatures={"master": (i, state)})
            sizes.append((tmp_path / "m.db").stat().st_size)
    assert sizes[-1] <= 4 * len(state)
    # Steady state (two kept signatures and the one being written): freed pages are reused,
    # so the file stops growing however many signatures follow.
    assert max(sizes[5:]) <= min(sizes[5:]) * 1.05


def test_replay_log_is_cleared_by_signatures(tmp_path: Path) -> None:
    """Batches wait in the replay log (no pickle) until signatures are stored."""
    with TemporalMemory(tmp_path / "m.db") as mem:
        mem.snapshot(0.0, c(0), 0.0, [], samples=np.arange(3.0))
        mem.snapshot(1.0, c(0), 0.0, [], samples=np.ones((2, 2)))
        logged = list(mem.replay_log())
        assert [b.shape for b in logged] == [(3,), (2, 2)]
        state = KairosEngine(dt=0.1, lag=0, omega=0, window=1).snapshot().to_bytes()
        mem.checkpoint(2.0, {"master": (5, state), "emissary": (5, state)})
        assert list(mem.replay_log()) == []
        assert KairosState.from_bytes(mem.latest_signatures()["emissary"][1]).dt == 0.1


def test_a_failed_batch_stores_nothing(tmp_path: Path) -> None:
    """A batch whose write fails (duplicate key) leaves no record, point or counter behind."""
    chain = WitnessChain(KEY)
    with TemporalMemory(tmp_path / "m.db") as mem:
        rec = chain.append(Level.MICRO, "x", {}, now=0.0)
        mem.snapshot(0.0, c(0), 0.0, [rec], head=chain.head(), counters={"collapses": 1})
        mem._db.execute("CREATE UNIQUE INDEX w_seq ON witness (seq)")
        with pytest.raises(StorageError):
            mem.snapshot(1.0, c(1), 0.0, [rec], head=chain.head(), counters={"collapses": 2})
        assert mem.witness_count() == 1
        assert len(mem.retrieve(0, 10)) == 1
        assert mem.counters() == {"collapses": 1}


def test_mesh_snapshots(tmp_path: Path) -> None:
    """Mesh-sync snapshots are stored as JSON and read back by time range; NaN is refused."""
    with TemporalMemory(tmp_path / "m.db") as mem:
        mem.mesh_snapshot(1.0, {"peers": ["a", "b"], "C": 0.8})
        mem.mesh_snapshot(5.0, {"peers": [], "C": 0.1})
        assert mem.mesh_snapshots(0, 2) == [(1.0, {"C": 0.8, "peers": ["a", "b"]})]
        with pytest.raises(InputError):
            mem.mesh_snapshot(2.0, {"C": float("nan")})


def test_not_a_database(tmp_path: Path) -> None:
    """A file that is not SQLite is a StorageError, not a crash."""
    bad = tmp_path / "m.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError):
        TemporalMemory(bad)


@pytest.mark.parametrize(
    "samples",
    [
        np.linspace(-3.0, 3.0, 2000),
        (np.arange(30.0) * (1 + 2j)).reshape(10, 3),
        np.arange(7, dtype=np.int32),  # another dtype: stored through np.save
        np.arange(12.0).reshape(3, 4).T,  # not C-contiguous
        np.array([1e308, -0.0, 5e-324]),
    ],
)
def test_replay_log_returns_each_batch_exactly(tmp_path: Path, samples: np.ndarray) -> None:
    """A batch written to the replay log comes back with the same dtype, shape and values."""
    with TemporalMemory(tmp_path / "m.db") as mem:
        mem.snapshot(1.0, c(0.5), 0.0, [], samples=samples)
        (back,) = list(mem.replay_log())
    assert back.dtype == samples.dtype and back.shape == samples.shape
    assert back.tobytes() == np.ascontiguousarray(samples).tobytes()  # every bit, -0.0 too


def test_wal_is_checkpointed_off_the_ingest_path(tmp_path: Path) -> None:
    """With SQLite's in-commit autocheckpoint off, the background checkpointer still copies
    the WAL into the database file (so it does not grow), and close() leaves no WAL behind."""
    import time

    db = tmp_path / "m.db"
    with TemporalMemory(db) as mem:
        state = b"x" * 2_000_000
        mem.snapshot(0.0, c(0.5), 0.0, [], signatures={"master": (1, state)})
        deadline = time.monotonic() + 5.0
        while db.stat().st_size < len(state) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db.stat().st_size >= len(state)  # the pages reached the main file
        assert mem._checkpointer.runs >= 1 and mem._checkpointer.errors == 0
    wal = tmp_path / "m.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_source_position_is_stored_with_its_batch(tmp_path: Path) -> None:
    """A source position is written in the batch's transaction: a failed batch leaves the
    previous position, a stored one reads back; an unknown source reads None."""
    with TemporalMemory(tmp_path / "m.db") as mem:
        assert mem.source_position("csv:/x") is None
        mem.snapshot(1.0, c(0.5), 0.0, [], source=("csv:/x", {"rows": 10, "offset": 99}))
        chain = WitnessChain(KEY)
        r = chain.append(Level.MICRO, "ingest", {}, now=1.0)
        mem._db.execute("CREATE UNIQUE INDEX w_seq ON witness (seq)")
        with pytest.raises(StorageError):  # the same record twice: the batch fails whole
            mem.snapshot(2.0, c(0.5), 0.0, [r, r], source=("csv:/x", {"rows": 20}))
        assert mem.source_position("csv:/x") == {"rows": 10, "offset": 99}
        with pytest.raises(InputError):
            mem.snapshot(3.0, c(0.5), 0.0, [], source=("csv:/x", {"rows": float("nan")}))


def test_read_only_open(tmp_path: Path) -> None:
    """open_read_only reads what a writer stored, refuses writes, and names a missing file or
    a file that is not a cell database."""
    with TemporalMemory(tmp_path / "m.db") as mem:
        mem.snapshot(1.0, c(0.5), 0.0, [])
    ro = TemporalMemory.open_read_only(tmp_path / "m.db")
    try:
        assert len(ro.retrieve(0.0, 2.0)) == 1 and ro.integrity_check() == "ok"
        with ro.read_snapshot():
            assert ro.chain_head() is None and ro.witness_count() == 0
        with pytest.raises(sqlite3.OperationalError):
            ro._db.execute("DELETE FROM coherence")
    finally:
        ro.close()
    with pytest.raises(StorageError, match="no cell database"):
        TemporalMemory.open_read_only(tmp_path / "missing.db")
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StorageError):
        TemporalMemory.open_read_only(tmp_path / "junk.db")
