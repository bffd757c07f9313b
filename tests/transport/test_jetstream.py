"""JetStream storage adapters beyond the conformance suite: racing writers on separate
connections, shared connections, durability across a server restart, bad arguments, and
failures (no server, a killed server, a closed adapter) turned into one-line StorageErrors."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from becomingone.errors import CasConflict, InputError, StorageError
from becomingone.transport import (
    JetStreamAppendLog,
    JetStreamCasRecord,
    JetStreamConnection,
    JetStreamProtocolState,
)
from becomingone.transport.natsd import _free_ports
from tests.memory.races import race, race_rounds
from tests.natshelpers import NatsServer, shared_server, unique_name

THREADS = 6
ROUNDS = 10


@pytest.fixture
def url() -> str:
    """The URL of the test process's shared nats-server."""
    return shared_server().url


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of this test alone (stopped by PID at the end)."""
    server = NatsServer(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.stop()


def test_connections_racing_on_a_revision_exactly_one_wins(url: str) -> None:
    """THREADS adapters, each on its own connection, update one key at the same revision:
    each round exactly one wins (its value is stored) and the others get CasConflict."""
    bucket = unique_name("race")
    kvs = [JetStreamCasRecord(url, bucket) for _ in range(THREADS)]
    try:
        race_rounds(kvs, rounds=ROUNDS, threads=THREADS)
    finally:
        for kv in kvs:
            kv.close()


def test_a_deleted_key_has_no_revision_even_its_tombstones(url: str) -> None:
    """A delete leaves a KV tombstone at the next revision; bare KV would accept an update or
    delete expecting it. Here both raise CasConflict (actual None), from this adapter and from
    one that never saw the key, and a create after them gets a fresh revision."""
    bucket = unique_name("tomb")
    with JetStreamCasRecord(url, bucket) as kv, JetStreamCasRecord(url, bucket) as other:
        r1 = kv.create("k", b"a")
        kv.delete("k", r1)
        tombstone = r1 + 1  # one writer: the delete marker took the next sequence
        for adapter in (kv, other):
            for call in (
                lambda a: a.update("k", b"x", tombstone),
                lambda a: a.delete("k", tombstone),
                lambda a: a.update("k", b"x", r1),
            ):
                with pytest.raises(CasConflict) as err:
                    call(adapter)
                assert err.value.actual is None
        assert other.get("k") is None and other.create("k", b"b") == tombstone + 1


def test_keys_lists_the_live_keys_only(url: str) -> None:
    """An empty bucket lists no keys; after two creates, an update and a delete, ``keys`` lists
    the one key that holds a value, also from an adapter that never wrote it."""
    bucket = unique_name("keys")
    with JetStreamCasRecord(url, bucket) as kv, JetStreamCasRecord(url, bucket) as other:
        assert kv.keys() == []
        r1 = kv.create("glyph.a", b"1")
        r2 = kv.create("glyph.b", b"2")
        kv.update("glyph.a", b"3", r1)
        kv.delete("glyph.b", r2)
        assert kv.keys() == other.keys() == ["glyph.a"]


def test_racing_creates_and_appends_have_one_winner(url: str) -> None:
    """Creates of one new key from several connections: one wins. Appends with expected_last
    from several connections: one wins per index and the log stays gapless."""
    stream = unique_name("race")
    with JetStreamConnection(url) as shared:
        kvs = [JetStreamCasRecord(shared, unique_name("c"))] * THREADS
        made: list[int] = []

        def creator(i: int) -> None:
            with contextlib.suppress(CasConflict):
                made.append(kvs[i].create("new", b"%d" % i))

        race([threading.Thread(target=creator, args=(i,)) for i in range(THREADS)])
        assert len(made) == 1
    logs = [JetStreamAppendLog(url, stream=stream) for _ in range(THREADS)]
    won: list[tuple[int, int]] = []

    def appender(i: int) -> None:
        for _ in range(ROUNDS):
            last = logs[i].last_index()
            with contextlib.suppress(CasConflict):
                won.append((logs[i].append(b"%d" % i, expected_last=last), i))

    try:
        race([threading.Thread(target=appender, args=(i,)) for i in range(THREADS)])
        indexes = sorted(index for index, _ in won)
        assert indexes == list(range(1, len(won) + 1)) and logs[0].last_index() == len(won)
        assert logs[0].read() == [b"%d" % i for _, i in sorted(won)]
    finally:
        for log in logs:
            log.close()


def test_adapters_share_a_connection_and_see_each_other(url: str) -> None:
    """Two adapters on one connection and a third on its own see the same bucket and log;
    closing an adapter leaves a shared connection open; buckets are separate namespaces."""
    bucket, stream = unique_name("kv"), unique_name("log")
    with JetStreamConnection(url, timeout=2) as conn:
        a, b = JetStreamCasRecord(conn, bucket), JetStreamCasRecord(conn, unique_name("kv"))
        with JetStreamCasRecord(url, bucket) as c:
            r1 = a.create("k", b"a")
            assert c.get("k") == (b"a", r1) and b.get("k") is None
            r2 = c.update("k", b"b", r1)
        a.close()
        with pytest.raises(CasConflict):
            a.update("k", b"stale", r1)
        assert a.get("k") == (b"b", r2)
        log = JetStreamAppendLog(conn, "raft", stream=stream)
        assert log.append(b"1") == 1 and log.name == "raft"
        assert JetStreamAppendLog(url, stream=stream).read() == [b"1"]


def test_everything_survives_a_server_restart(tmp_path: Path) -> None:
    """Records and entries written before the server stops are there after it restarts on the
    same store directory, and revisions and indexes go on from where they were."""
    server = NatsServer(tmp_path / "nats").start()
    try:
        with JetStreamCasRecord(server.url, "durable") as kv:
            r1 = kv.create("k", b"v")
        with JetStreamAppendLog(server.url, "durable") as log:
            assert log.append(b"e1") == 1
        server.stop()
        server.start()
        with JetStreamCasRecord(server.url, "durable") as kv:
            assert kv.get("k") == (b"v", r1) and kv.create("h", b"w") > r1
        with JetStreamAppendLog(server.url, "durable") as log:
            assert log.read() == [b"e1"] and log.append(b"e2") == 2
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("make", "parameter"),
    [
        (lambda url: JetStreamCasRecord(url, "a.b"), "bucket"),
        (lambda url: JetStreamCasRecord(url, 5), "bucket"),
        (lambda url: JetStreamCasRecord(url, "kv", replicas=0), "replicas"),
        (lambda url: JetStreamCasRecord(url, "kv", timeout=0), "timeout"),
        (lambda url: JetStreamCasRecord(url, "kv", timeout=float("nan")), "timeout"),
        (lambda url: JetStreamCasRecord("http://127.0.0.1:1", "kv"), "servers"),
        (lambda url: JetStreamCasRecord([], "kv"), "servers"),
        (lambda url: JetStreamAppendLog(url, "a/b"), "name"),
        (lambda url: JetStreamAppendLog(url, "a b"), "name"),
        (lambda url: JetStreamAppendLog(url, stream="x.y"), "stream"),
    ],
)
def test_bad_arguments_name_the_parameter(url: str, make: object, parameter: str) -> None:
    """Bad bucket, stream and log names, replicas, timeouts and server URLs raise InputError
    naming the parameter before anything connects."""
    with pytest.raises(InputError) as err:
        make(url)  # type: ignore[operator]
    assert err.value.parameter == parameter


def test_no_server_is_a_storage_error_in_bounded_time() -> None:
    """Connecting to a port nobody listens on raises StorageError (one line) within seconds."""
    started = time.monotonic()
    with pytest.raises(StorageError) as err:
        JetStreamCasRecord(f"nats://127.0.0.1:{_free_ports(1)[0]}", "kv", timeout=1)
    assert time.monotonic() - started < 15
    assert "connect to nats://127.0.0.1:" in str(err.value) and "\n" not in str(err.value)


def test_a_killed_server_and_a_closed_adapter_are_storage_errors(own_server: NatsServer) -> None:
    """After the server dies a write raises StorageError within the bounded timeout (no hang);
    after close() every call raises StorageError and the loop's thread has ended."""
    kv = JetStreamCasRecord(own_server.url, "kv", timeout=0.5)
    log = JetStreamAppendLog(own_server.url, "log", timeout=0.5)
    r1 = kv.create("k", b"a")
    own_server.stop()
    started = time.monotonic()
    with pytest.raises(StorageError):
        kv.update("k", b"b", r1)
    with pytest.raises(StorageError):
        log.append(b"x")
    assert time.monotonic() - started < 10
    for adapter in (kv, log):
        adapter.close()
        adapter.close()
        assert not adapter.connection._thread.is_alive()
    with pytest.raises(StorageError, match="closed"):
        kv.get("k")
    with pytest.raises(StorageError, match="closed"):
        log.last_index()


def test_a_stream_with_other_subjects_is_refused(url: str) -> None:
    """An existing stream of the log's name but other subjects is a StorageError, not reused."""
    stream = unique_name("other")
    with JetStreamConnection(url) as conn:
        conn.run(conn.js.add_stream(name=stream, subjects=[f"elsewhere.{stream}"]), "setup")
        with pytest.raises(StorageError, match="exists with subjects"):
            JetStreamAppendLog(conn, stream=stream)


def test_protocol_state_writers_on_several_connections_lose_nothing(url: str) -> None:
    """THREADS stores on their own connections write their own names ROUNDS times at once:
    every name ends with its last value (a lost race is retried, never dropped)."""
    bucket = unique_name("state")
    stores = [JetStreamProtocolState(url, bucket, "cell-a") for _ in range(THREADS)]

    def writer(i: int) -> None:
        for r in range(ROUNDS):
            stores[i].put_many({f"n{i}": b"%d" % r, f"m{i}": b"%d" % r})

    try:
        race([threading.Thread(target=writer, args=(i,)) for i in range(THREADS)])
        last = b"%d" % (ROUNDS - 1)
        assert stores[0].names() == sorted(f"{c}{i}" for c in "nm" for i in range(THREADS))
        assert all(stores[0].get(f"n{i}") == last for i in range(THREADS))
        with JetStreamProtocolState(url, bucket, "cell-b") as other:
            assert other.names() == []
    finally:
        for store in stores:
            store.close()


def test_protocol_state_refuses_a_record_it_did_not_write(url: str) -> None:
    """A record under the store's key that is not in its format is a StorageError, not data."""
    bucket = unique_name("state")
    with JetStreamCasRecord(url, bucket) as kv, JetStreamProtocolState(url, bucket) as store:
        kv.create("protocol", b"\x00\x09ab")
        with pytest.raises(StorageError, match="is not protocol state"):
            store.get("cps")
