"""Faults of the NATS servers under a running cluster of node processes: ``kill -9`` of one
server of three (clients reconnect, JetStream KV compare-and-set writes resume, nothing
acknowledged is lost) and a partition between two servers, healed.

Real ``nats-server`` and ``becomingone node`` processes; every wait bounded; every pid started
is stopped by the test and checked gone. ``pytest -s`` prints the figures quoted in
docs/nats.md ("Faults").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from becomingone.core.phase import CoherenceBand, circular_mean, wrap
from becomingone.errors import CasConflict, StorageError
from becomingone.runtime.launcher import node_name
from becomingone.runtime.observer import ClusterObserver
from becomingone.sync.stability import read_cluster
from becomingone.transport import JetStreamCasRecord
from becomingone.transport.natsd import NatsServers
from tests.faults.helpers import Fleet, gone, locked, observe, until
from tests.natshelpers import TcpProxy, routed_to

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: Seconds a JetStream cluster may take to elect its leaders (at start, or after a kill).
SETTLE = 30.0


def open_bucket(urls: list[str], bucket: str) -> JetStreamCasRecord:
    """The R3 bucket ``bucket`` through a client given ``urls`` in order (created if absent;
    retried until the cluster has a JetStream meta leader, at most :data:`SETTLE` s)."""
    deadline = time.monotonic() + SETTLE
    while True:
        try:
            return JetStreamCasRecord(urls, bucket, replicas=3, timeout=1.0)
        except StorageError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stream_leader(kv: JetStreamCasRecord) -> str:
    """The name of the server that leads the bucket's stream now."""
    js = kv.connection.js
    info = kv.connection.run(js.stream_info(kv.stream), "stream info")
    return str(info.cluster.leader if info.cluster else None)


class CasWriter:
    """Appends numbered writes to one key of a replicated KV bucket from a thread of its own,
    each a read + compare-and-set (``update`` at the revision read). A write that raised
    anything but a conflict has an unknown outcome (it may have landed): it is counted as
    such and never retried under the same number."""

    def __init__(self, urls: list[str], bucket: str) -> None:
        self.kv = open_bucket(urls, bucket)
        self.kv.create("log", b"")
        self._lock = threading.Lock()
        self._acked: dict[int, float] = {}  # write number -> monotonic time of its ack
        self.unknown: set[int] = set()
        self.errors: list[str] = []
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def acked(self) -> dict[int, float]:
        """Acknowledged write numbers and when (monotonic s), a copy."""
        with self._lock:
            return dict(self._acked)

    def start(self) -> None:
        """Start writing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the connection; re-raise what ended the thread, if
        anything did."""
        self._stop.set()
        self._thread.join(timeout=SETTLE)
        assert not self._thread.is_alive(), "the KV writer did not stop"
        self.kv.close()
        if self.failure is not None:
            raise self.failure

    def _run(self) -> None:
        try:
            self._write_until_stopped()
        except BaseException as exc:  # handed to stop(), which raises it in the test
            self.failure = exc

    def _write_until_stopped(self) -> None:
        number = 0
        while not self._stop.is_set() and number < 100_000:
            number += 1
            try:
                current = self.kv.get("log")
                if current is None:
                    raise AssertionError("the key written at the start is gone")
                self.kv.update("log", current.value + b"%d," % number, current.revision)
                with self._lock:
                    self._acked[number] = time.monotonic()
            except CasConflict as exc:  # only this writer writes: an unknown write landed
                self.errors.append(str(exc))
            except StorageError as exc:
                self.unknown.add(number)
                self.errors.append(str(exc))
            time.sleep(0.01)  # ~50 writes a second: enough to see the gap, light on the CPU


def connected_names(monitor_port: int) -> set[str]:
    """Client connection names on a server (its ``/connz`` page); empty when it is down."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = f"http://127.0.0.1:{monitor_port}/connz?limit=1024"
    try:
        with opener.open(url, timeout=2.0) as reply:
            conns = json.loads(reply.read()).get("connections") or []
    except (OSError, ValueError):
        return set()
    return {str(c.get("name")) for c in conns}


@pytest.fixture
def three_servers(tmp_path: Path) -> Iterator[NatsServers]:
    """A routed 3-server JetStream cluster, stopped by pid afterwards."""
    with NatsServers(tmp_path, servers=3) as servers:
        yield servers
    assert all(gone(pid) for pid in servers.pids)


async def test_kill9_one_of_three_servers(three_servers: NatsServers, tmp_path: Path) -> None:
    """kill -9 of the server leading the KV bucket's stream (R3), under 4 node processes
    (two on that server, one on each other, each given all three URLs in its own order) and
    a compare-and-set writer connected to it: the cluster stays SHARED at every observer
    tick, the two nodes reconnect (the other servers list them as clients) and are heard
    again, writes resume once a new stream leader is elected (the longest pause between two
    acknowledged writes is measured), and every acknowledged write is in the value read back
    afterwards (what else is there had an unknown outcome)."""
    servers = three_servers
    with contextlib.closing(open_bucket(servers.urls, "faults")) as setup:
        leader = stream_leader(setup)
    k = [s.name for s in servers.specs].index(leader)
    urls = servers.urls[k:] + servers.urls[:k]  # the leader's server first
    fleet = Fleet(tmp_path / "nodes", [urls[i:] + urls[:i] for i in range(3)])
    names = [node_name(i) for i in range(4)]
    writer = CasWriter(urls, "faults")
    others = [s.monitor_port for i, s in enumerate(servers.specs) if i != k]
    try:
        for i, name in enumerate(names):
            fleet.start(name, at=i % 3)  # cell-0000 and cell-0003 on the leader's server
        bus, obs = await observe(urls[1:])
        try:
            await locked(obs, names)
            writer.start()
            await until(obs, lambda: len(writer.acked) >= 20, SETTLE, "20 KV writes")
            assert stream_leader(writer.kv) == leader  # it has not moved meanwhile
            servers.kill(k)  # SIGKILL, reaped
            killed, killed_wall = time.monotonic(), time.time()

            def back() -> bool:
                assert obs.history[-1].band is CoherenceBand.SHARED, "left SHARED"
                clients = connected_names(others[0]) | connected_names(others[1])
                return set(names) <= clients and all(
                    obs.latest[n].time > killed_wall + 0.5 for n in names
                )

            took = await until(obs, back, 20, "nodes reconnected and heard")

            def writes_resumed() -> bool:
                assert obs.history[-1].band is CoherenceBand.SHARED, "left SHARED"
                return sum(t > killed for t in writer.acked.values()) >= 20

            await until(obs, writes_resumed, SETTLE, "20 KV writes after the kill")
            assert obs.history[-1].band is CoherenceBand.SHARED
            assert obs.rejected() == {}
        finally:
            await bus.aclose()
            codes = fleet.stop()
    finally:
        writer.stop()
    acks = sorted(writer.acked.values())
    since = [t for t in acks if t > killed]
    before = max(t for t in acks if t <= killed)
    paused = max(b - a for a, b in zip([before, *since], since))  # the longest stall
    print(
        f"\nkill -9 of the stream leader ({leader}) of 3 servers: nodes back on the others "
        f"after {took:.2f} s; KV writes paused {paused:.2f} s at most "
        f"({len(writer.acked)} acknowledged, {len(writer.unknown)} unknown)"
    )
    assert codes == dict.fromkeys(names, 0)
    assert paused < SETTLE
    reader = JetStreamCasRecord(urls[1:], "faults", timeout=2.0)  # the survivors
    try:
        stored = reader.get("log")
    finally:
        reader.close()
    assert stored is not None
    numbers = [int(x) for x in stored.value.decode().split(",") if x]
    assert len(numbers) == len(set(numbers))  # nothing written twice
    assert set(writer.acked) <= set(numbers), "an acknowledged write is lost"
    assert set(numbers) <= set(writer.acked) | writer.unknown


async def test_partition_two_halves_then_heal(tmp_path: Path) -> None:
    """Two servers whose routes both go through loopback proxies; the proxies are cut (no
    route left), then two nodes start on each server: each half locks among itself (SHARED
    as seen from its own server, every node hearing only its half, the network unstable) on
    a phase of its own, apart from the other half's (all four together not SHARED). Healed,
    the routes come back and the four become one SHARED cluster, every node hearing 3 peers
    and stable again (time to re-lock measured); no packet is rejected on the way."""
    servers: NatsServers | None = None

    def cluster_port(i: int) -> int:
        assert servers is not None
        port = servers.specs[i].cluster_port
        assert port is not None
        return port

    with TcpProxy(lambda: cluster_port(1)) as to_n2, TcpProxy(lambda: cluster_port(0)) as to_n1:
        to_n2.heal()
        to_n1.heal()
        routes = {
            "n1": [f"nats-route://127.0.0.1:{to_n2.port}"],
            "n2": [f"nats-route://127.0.0.1:{to_n1.port}"],
        }
        servers = NatsServers(tmp_path, servers=2, routes=routes)
        with servers:
            monitors = [s.monitor_port for s in servers.specs]
            assert [routed_to(p) for p in monitors] == [{"n2"}, {"n1"}]
            to_n2.cut()
            to_n1.cut()
            await wait_routes(monitors, routed=False)
            await partition_and_heal(servers, tmp_path, (to_n2, to_n1), monitors)
        assert all(gone(pid) for pid in servers.pids)


async def wait_routes(monitors: list[int], *, routed: bool, seconds: float = 15.0) -> float:
    """Wait until every server has a route (``routed``) or none has; seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        routes = [routed_to(p) for p in monitors]
        if all(routes) if routed else not any(routes):
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"routes still {[routed_to(p) for p in monitors]} after {seconds} s")


#: Restarts of the second half at most, to get two halves apart (each try: ~84% chance).
APART_TRIES = 5


async def halves_apart(
    fleet: Fleet, obs_a: ClusterObserver, obs_b: ClusterObserver, halves: list[list[str]]
) -> None:
    """Wait until each half is locked among itself (each observer sees its half only, SHARED,
    each node hearing its one peer) at phases apart enough that all four together are not
    SHARED (|gap| ≳ 0.08 cycles). Where a half settles depends on when its processes started,
    so when the halves happen to be that close the second half is restarted (SIGTERM, start
    again on the same data dirs), at most :data:`APART_TRIES` times."""
    newer: dict[str, int] = {}  # the second half's statuses must come from a later boot

    def halves_locked() -> bool:
        now = time.time()
        return all(
            sorted(s.node for s in obs.live(now)) == half
            and obs.history[-1].band is CoherenceBand.SHARED
            and all(obs.latest[n].heard == 1 for n in half)
            and all(obs.latest[n].epoch > newer.get(n, 0) for n in half)
            for obs, half in ((obs_a, halves[0]), (obs_b, halves[1]))
        )

    for _ in range(APART_TRIES):
        await until([obs_a, obs_b], halves_locked, 90, "each half locked")
        a, b = obs_a.history[-1].thetas, obs_b.history[-1].thetas
        union = read_cluster(a + b)
        gap = wrap(float(circular_mean(a) or 0.0) - float(circular_mean(b) or 0.0))
        print(f"\npartition: each half SHARED; the four together C {union.c:.3f}, gap {gap:+.3f}")
        if union.band is not CoherenceBand.SHARED:
            return
        for name in halves[1]:
            newer[name] = obs_b.latest[name].epoch
            assert fleet.terminate(name) == 0
            fleet.start(name, at=1)
    raise AssertionError(f"the halves settled together {APART_TRIES} times in a row")


async def partition_and_heal(
    servers: NatsServers, tmp_path: Path, proxies: tuple[TcpProxy, TcpProxy], monitors: list[int]
) -> None:
    """The partitioned part of the test: halves lock apart, then heal into one cluster."""
    urls = servers.urls
    fleet = Fleet(tmp_path / "nodes", [[urls[0]], [urls[1]]])
    halves = [[node_name(0), node_name(1)], [node_name(2), node_name(3)]]
    names = halves[0] + halves[1]
    for side, half in enumerate(halves):
        for name in half:
            fleet.start(name, at=side)
    bus_a, obs_a = await observe([urls[0]], "observer-n1")
    bus_b, obs_b = await observe([urls[1]], "observer-n2")
    both = [obs_a, obs_b]
    try:
        await halves_apart(fleet, obs_a, obs_b, halves)
        assert not any(obs.latest[n].stable for obs, half in zip(both, halves) for n in half)

        for proxy in proxies:
            proxy.heal()
        healed = time.monotonic()
        routed = await wait_routes(monitors, routed=True)

        def one_cluster() -> bool:
            now = time.time()
            return all(
                len(obs.live(now)) == 4
                and obs.history[-1].band is CoherenceBand.SHARED
                and all(obs.latest[n].heard == 3 and obs.latest[n].stable for n in names)
                for obs in both
            )

        await until(both, one_cluster, 60, "one cluster")
        took = time.monotonic() - healed
        print(f"healed: routes back after {routed:.2f} s, one SHARED cluster after {took:.2f} s")
        assert obs_a.rejected() == {} and obs_b.rejected() == {}
    finally:
        await bus_a.aclose()
        await bus_b.aclose()
        codes = fleet.stop()
    assert codes == dict.fromkeys(names, 0)
