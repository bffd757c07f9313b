"""SQLite adapters beyond the conformance suite: durability, several connections, threads and
processes racing on one file, and compatibility with a cell's ``memory.sqlite3``."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from becomingone.errors import CasConflict, StorageError
from becomingone.memory import (
    Coherence,
    SqliteAppendLog,
    SqliteCasRecord,
    SqliteCoherenceHistory,
    SqliteProtocolState,
    SqliteSignatureStore,
    SqliteWitnessLog,
    TemporalMemory,
)
from becomingone.witnessing import verify
from tests.memory.conformance import KEY, chain_batches
from tests.memory.races import race, race_rounds

THREADS = 6
ROUNDS = 15


def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    """What one connection committed, a new connection on the same file reads back."""
    db = tmp_path / "s.sqlite3"
    (records, head), *_ = chain_batches([3])
    with (
        SqliteWitnessLog(db) as log,
        SqliteCasRecord(db) as kv,
        SqliteAppendLog(db) as alog,
        SqliteProtocolState(db) as state,
        SqliteSignatureStore(db) as sigs,
    ):
        log.append(records, head)
        rev = kv.create("g", b"v")
        alog.append(b"e1")
        state.put("epoch", b"3")
        sigs.put(1.0, {"master": (5, b"s")})
    with (
        SqliteWitnessLog(db) as log,
        SqliteCasRecord(db) as kv,
        SqliteAppendLog(db) as alog,
        SqliteProtocolState(db) as state,
        SqliteSignatureStore(db) as sigs,
    ):
        assert list(log.read()) == records and log.head() == head
        assert kv.get("g") == (b"v", rev) and kv.create("h", b"w") > rev
        assert alog.read() == [b"e1"] and alog.append(b"e2") == 2
        assert state.get("epoch") == b"3" and sigs.latest() == {"master": (5, b"s")}


def test_two_connections_see_each_other_and_conflict(tmp_path: Path) -> None:
    """Two adapters on one file: a write by one is seen by the other, and the other's stale
    update loses with CasConflict; buckets and log names are separate namespaces."""
    db = tmp_path / "s.sqlite3"
    with SqliteCasRecord(db) as a, SqliteCasRecord(db) as b, SqliteCasRecord(db, "other") as c:
        r1 = a.create("k", b"a")
        assert b.get("k") == (b"a", r1) and c.get("k") is None
        r2 = b.update("k", b"b", r1)
        with pytest.raises(CasConflict):
            a.update("k", b"stale", r1)
        assert a.get("k") == (b"b", r2)
    with (
        SqliteAppendLog(db, "x") as x,
        SqliteAppendLog(db, "x") as x2,
        SqliteAppendLog(db, "y") as y,
    ):
        assert x.append(b"1") == 1 and x2.append(b"2", expected_last=1) == 2
        with pytest.raises(CasConflict):
            x.append(b"3", expected_last=1)
        assert y.last_index() == 0 and x.read() == [b"1", b"2"]


@pytest.mark.parametrize("shared", [False, True], ids=["own-connections", "one-adapter"])
def test_threads_racing_on_a_revision_exactly_one_wins(tmp_path: Path, shared: bool) -> None:
    """Threads updating the same key at the same revision: exactly one wins each round."""
    db = tmp_path / "s.sqlite3"
    kvs = [SqliteCasRecord(db) for _ in range(1 if shared else THREADS)]
    try:
        race_rounds(kvs, rounds=ROUNDS, threads=THREADS)
    finally:
        for kv in kvs:
            kv.close()


def test_threads_racing_on_an_append_log_stay_gapless(tmp_path: Path) -> None:
    """Threads appending with expected_last: one wins per index, indexes stay 1..n gapless."""
    db = tmp_path / "s.sqlite3"
    logs = [SqliteAppendLog(db) for _ in range(THREADS)]
    won: list[tuple[int, int]] = []

    def appender(i: int) -> None:
        for _ in range(ROUNDS):
            last = logs[i].last_index()
            with contextlib.suppress(CasConflict):
                won.append((logs[i].append(b"%d" % i, expected_last=last), i))

    race([threading.Thread(target=appender, args=(i,)) for i in range(THREADS)])
    try:
        indexes = sorted(index for index, _ in won)
        assert indexes == list(range(1, len(won) + 1)) and logs[0].last_index() == len(won)
        assert logs[0].read() == [b"%d" % i for _, i in sorted(won)]
    finally:
        for log in logs:
            log.close()


_COUNTER = """
import sys, time
from pathlib import Path
from becomingone.errors import CasConflict
from becomingone.memory import SqliteCasRecord
kv, done, tries = SqliteCasRecord(sys.argv[1]), 0, 0
for _ in range(3000):  # start together: wait (at most 30 s) for the gate file
    if Path(sys.argv[3]).exists():
        break
    time.sleep(0.01)
while done < int(sys.argv[2]) and tries < 10000:
    tries += 1
    value, revision = kv.get("n")
    try:
        kv.update("n", str(int(value) + 1).encode(), revision)
        done += 1
    except CasConflict:
        pass
print(done, tries)
"""


def test_processes_incrementing_one_counter_lose_no_update(tmp_path: Path) -> None:
    """Three processes each add 40 to one counter by read + compare-and-set (retrying on
    CasConflict): the counter ends at exactly 120, so no update was lost across processes."""
    db, gate = tmp_path / "s.sqlite3", tmp_path / "go"
    with SqliteCasRecord(db) as kv:
        kv.create("n", b"0")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _COUNTER, str(db), "40", str(gate)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    gate.touch()
    try:
        outs = [p.communicate(timeout=120)[0].split() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [int(done) for done, _ in outs] == [40, 40, 40]
    with SqliteCasRecord(db) as kv:
        value, _ = kv.get("n")  # type: ignore[misc]
    assert value == b"120"


def test_reads_a_cells_temporal_memory(tmp_path: Path) -> None:
    """The witness, signature and coherence adapters read what TemporalMemory wrote."""
    db = tmp_path / "memory.sqlite3"
    batches = chain_batches([2, 3])
    zero = Coherence(master=0.5, emissary=0.5, sync=0.5, delta_phase=0.0)
    with TemporalMemory(db) as mem:
        for i, (records, head) in enumerate(batches):
            mem.snapshot(float(i), zero, 0.0, records, head=head)
        mem.checkpoint(2.0, {"master": (9, b"state")})
    with SqliteWitnessLog(db) as log, SqliteSignatureStore(db) as sigs:
        assert verify(log.read(), KEY.public_bytes, head=log.head()).ok
        assert log.count() == 5 and sigs.latest() == {"master": (9, b"state")}
    with SqliteCoherenceHistory(db) as hist:
        assert [p.t for p in hist.retrieve(0, 10)] == [0.0, 1.0]


def test_unopenable_path_is_a_storage_error(tmp_path: Path) -> None:
    """A database path under a regular file raises StorageError naming the path."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match=r"file/s\.sqlite3"):
        SqliteCasRecord(tmp_path / "file" / "s.sqlite3")


def test_witness_log_reads_across_pages(tmp_path: Path) -> None:
    """Reading more records than one page returns them all, in order, from any start."""
    batches = chain_batches([7, 6])
    every = [r for records, _ in batches for r in records]
    with SqliteWitnessLog(tmp_path / "s.sqlite3") as log:
        log.PAGE = 3
        for records, head in batches:
            log.append(records, head)
        assert list(log.read()) == every
        assert list(log.read(2, 7)) == every[2:9] and list(log.read(5, 6)) == every[5:11]
        assert list(log.read(11)) == every[11:] and list(log.read(13)) == []
