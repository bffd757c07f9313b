"""JetStream adapters on a real 3-server cluster: replicated (R3) buckets and logs, writers on
different servers, and one server killed with SIGKILL while a counter is being incremented."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from becomingone.errors import CasConflict, StorageError
from becomingone.transport import JetStreamAppendLog, JetStreamCasRecord
from becomingone.transport.natsd import NatsServers
from tests.memory.races import one_round

T = TypeVar("T")
#: How long a cluster may take to elect its JetStream leaders, or to fail over (s).
SETTLE = 30.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsServers]:
    """Three JetStream servers joined by routes (stopped by PID at the end)."""
    nodes = NatsServers(tmp_path / "cluster", servers=3)
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


def retried(call: Callable[[], T], deadline: float) -> T:
    """``call()``, retried on StorageError (not CasConflict) until ``deadline`` (monotonic)."""
    while True:
        try:
            return call()
        except CasConflict:
            raise
        except StorageError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_r3_bucket_and_log_across_three_servers(cluster: NatsServers) -> None:
    """A replicated bucket and log made through server 0: a write through server 1 is read
    through server 2 at once, and CAS writers racing through all three have one winner."""
    a, b, c = cluster.urls
    deadline = time.monotonic() + SETTLE
    kvs = [
        retried(lambda u=u: JetStreamCasRecord(u, "r3", replicas=3), deadline) for u in (a, b, c)
    ]
    logs = [JetStreamAppendLog(u, "r3", replicas=3) for u in (a, b, c)]
    try:
        r1 = kvs[1].create("k", b"a")
        assert kvs[2].get("k") == (b"a", r1)
        revision = r1
        for tag in range(5):
            wins, losses = one_round(kvs * 2, revision, tag, threads=6)
            assert len(wins) == 1 and len(losses) == 5
            revision = wins[0]
            seen = [kv.get("k") for kv in kvs]  # through each server, right after the race
            assert all(v is not None and v.revision == revision for v in seen)
            assert seen[0] is not None and seen[0].value.startswith(b"%d:" % tag)
        assert logs[0].append(b"1") == 1 and logs[1].append(b"2", expected_last=1) == 2
        with pytest.raises(CasConflict):
            logs[2].append(b"late", expected_last=1)
        assert logs[2].read() == [b"1", b"2"]
    finally:
        for store in (*kvs, *logs):
            store.close()


def test_killing_one_server_loses_no_committed_write(cluster: NatsServers) -> None:
    """A counter on an R3 bucket is incremented by read + CAS through a client given all three
    URLs; its server is killed (SIGKILL) a third of the way. Writes resume within SETTLE
    seconds, and the counter ends between the increments acknowledged and those plus the ones
    whose outcome was unknown (a timed-out write may have landed): nothing acknowledged is lost."""
    deadline = time.monotonic() + SETTLE
    kv = retried(lambda: JetStreamCasRecord(cluster.urls, "ctr", replicas=3, timeout=0.5), deadline)
    reader = JetStreamCasRecord(cluster.urls[::-1], "ctr", timeout=2)
    acked = unknown = 0
    last_ack, gap = time.monotonic(), 0.0
    try:
        kv.create("n", b"0")
        for i in range(60):
            if i == 20:
                cluster.kill(0)
            deadline = time.monotonic() + SETTLE
            while True:
                current = retried(lambda: kv.get("n"), deadline)
                assert current is not None
                try:
                    kv.update("n", b"%d" % (int(current.value) + 1), current.revision)
                    acked += 1
                    gap, last_ack = max(gap, time.monotonic() - last_ack), time.monotonic()
                    break
                except CasConflict:
                    continue
                except StorageError:
                    unknown += 1
                    assert time.monotonic() < deadline, "writes did not resume"
        final = retried(lambda: reader.get("n"), time.monotonic() + SETTLE)
        assert final is not None and acked <= int(final.value) <= acked + unknown
        assert gap < SETTLE, f"no acknowledged write for {gap:.1f} s"
        print(f"longest pause between acknowledged writes: {gap:.2f} s ({unknown} unknown)")
    finally:
        kv.close()
        reader.close()
