"""Relay nodes with real processes: a cluster server, a relay (``becomingone node --kind
relay``) with its leaf server, one cell behind the relay and one on the cluster.

Every wait is bounded; every process is started by the test and stopped by pid, and the tests
assert that none is left (the relay's leaf server included).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from becomingone.certs import TlsFiles, init_ca, issue_certificate
from becomingone.runtime.datadir import load_key
from becomingone.runtime.launcher import NodeProcesses
from becomingone.runtime.observer import ClusterObserver
from becomingone.runtime.relay import RelayStatus, relay_subject
from becomingone.transport import connect_nats
from becomingone.transport.natsd import NatsServers
from becomingone.transport.roster_kv import RosterBucket

from .test_node_processes import FLAGS, gone, observe, until

pytestmark = pytest.mark.timeout(180)

CLI = [sys.executable, "-m", "becomingone.cli"]


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[NatsServers, subprocess.Popen[str], dict[str, object]]]:
    """A cluster server and a relay process linked to it; the relay's first JSON status."""
    with NatsServers(tmp_path / "hub", servers=1) as servers:
        proc = subprocess.Popen(
            [*CLI, "node", "--kind", "relay", "--bus", ",".join(servers.leaf_urls),
             "--name", "site-a", "--data-dir", str(tmp_path / "relay"), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            first = json.loads(proc.stdout.readline())
            yield servers, proc, first
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert all(gone(pid) for pid in servers.pids)


async def test_nodes_behind_a_relay_hear_the_cluster(
    tmp_path: Path, relay: tuple[NatsServers, subprocess.Popen[str], dict[str, object]]
) -> None:
    """A cell connected to the relay's site URL and a cell on the cluster server hear each
    other (each heard its peer, accepted its signed packets and rejected none) and reach
    SHARED as seen by an observer on the cluster; the relay reports the link up with messages
    both ways on relay.<cluster>.<name>; SIGTERM stops the relay with exit 0 and its leaf
    server is gone; no process is left."""
    servers, proc, first = relay
    assert first["kind"] == "relay" and str(first["url"]).startswith("nats://127.0.0.1:")
    leaf_pid = first["pid"]
    assert isinstance(leaf_pid, int) and not gone(leaf_pid)
    base = tmp_path / "nodes"
    on_hub = NodeProcesses(base, servers.urls, FLAGS)
    at_site = NodeProcesses(base, [str(first["url"])], FLAGS)
    bus, obs = await observe(servers.urls)
    try:
        watch = await bus.subscribe(relay_subject("local", "site-a"))
        on_hub.start("hub-cell")
        at_site.start("site-cell")
        await until(obs, lambda: len(obs.live(time.time())) == 2, 60)
        await until(
            obs,
            lambda: all(s.heard == 1 and s.accepted > 20 for s in obs.latest.values()),
            30,
        )
        await until(obs, lambda: obs.history[-1].band.value == "SHARED", 30)
        assert all(s.members == 2 and not s.rejected for s in obs.latest.values())
        status = RelayStatus.from_bytes(await watch.next_msg(timeout=5))
        while status.link.out_msgs == 0 or status.link.in_msgs == 0:
            status = RelayStatus.from_bytes(await watch.next_msg(timeout=5))
        assert status.link.up and status.link.hub == "n1" and status.restarts == 0
    finally:
        await bus.aclose()
        codes = {**on_hub.stop(), **at_site.stop()}
    assert codes == {"hub-cell": 0, "site-cell": 0}
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["summary"] and summary["stopped"] and summary["link"]["up"]
    assert gone(leaf_pid) and gone(proc.pid)
    assert all(gone(pid) for pid in {**on_hub.pids, **at_site.pids}.values())


async def test_relay_restarts_its_leaf_server_on_the_same_url(
    tmp_path: Path, relay: tuple[NatsServers, subprocess.Popen[str], dict[str, object]]
) -> None:
    """The relay's leaf server killed with -9: the relay starts it again on the same site URL
    (counted in ``restarts``; the log of the first run kept), the link comes back up, and a
    client of the site reaches the cluster through it again."""
    servers, proc, first = relay
    old = first["pid"]
    assert isinstance(old, int)
    os.kill(old, signal.SIGKILL)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    doc = first
    while not (doc["restarts"] == 1 and doc["link"]["up"]):  # type: ignore[index]
        assert time.monotonic() < deadline, doc
        doc = json.loads(proc.stdout.readline())
    assert doc["url"] == first["url"] and doc["pid"] != old
    log = (tmp_path / "relay" / "leaf" / "leaf.log").read_text()
    assert log.count("Server is ready") == 2
    site = await connect_nats([str(first["url"])], name="site")
    hub = await connect_nats(servers.urls, name="hub")
    try:
        sub = await hub.subscribe("ssep.local.x")
        for _ in range(100):  # until the subscription is known across the link (bounded)
            await site.publish("ssep.local.x", b"again")
            try:
                assert await sub.next_msg(timeout=0.1) == b"again"
                break
            except TimeoutError:  # next_msg's timeout: interest not across the link yet
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("nothing crossed the restarted link")
    finally:
        await site.aclose()
        await hub.aclose()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0 and gone(int(doc["pid"]))  # type: ignore[call-overload]


async def test_a_site_is_one_fractal_field_behind_its_relay(
    tmp_path: Path, relay: tuple[NatsServers, subprocess.Popen[str], dict[str, object]]
) -> None:
    """Fractal topology, b = 2: cells a-0, a-1 behind the relay and b-0, b-1 on the cluster
    (names sort the site into one local field). All four lock (SHARED, each hears the peers
    its plan expects), and per tick only the group heads' packets cross the link: b-0's
    resultant up to a-0 (in) and a-0's phase down to b-0 (out), besides the two site cells'
    status messages to the observer (out, one each every STATUS_PERIOD = 0.5 s: 0.1 a tick
    each) — not the 4 + 4 packets a mesh would send."""
    servers, proc, first = relay
    flags = ["--topology", "fractal", "--branching", "2", "--tick", "50", "--alpha", "0.3"]
    on_hub = NodeProcesses(tmp_path / "nodes", servers.urls, flags)
    at_site = NodeProcesses(tmp_path / "nodes", [str(first["url"])], flags)
    bus, obs = await observe(servers.urls)
    try:
        watch = await bus.subscribe(relay_subject("local", "site-a"))
        for name in ("a-0", "a-1"):
            at_site.start(name)
        for name in ("b-0", "b-1"):
            on_hub.start(name)
        expect = {"a-0": 2, "a-1": 1, "b-0": 2, "b-1": 1}  # heads hear their children + parent
        await until(
            obs,
            lambda: (
                {n: s.heard for n, s in obs.latest.items()} == expect
                and obs.history[-1].band.value == "SHARED"
            ),
            60,
        )
        watch.drain()
        before = RelayStatus.from_bytes(await watch.next_msg(timeout=5))
        await asyncio.sleep(3.0)
        watch.drain()
        after = RelayStatus.from_bytes(await watch.next_msg(timeout=5))
    finally:
        await bus.aclose()
        codes = {**on_hub.stop(), **at_site.stop()}
    assert set(codes.values()) == {0}
    ticks = (after.time - before.time) / 0.05
    crossed_in = (after.link.in_msgs - before.link.in_msgs) / ticks
    crossed_out = (after.link.out_msgs - before.link.out_msgs) / ticks
    print(f"fractal b=2 behind a relay: {crossed_in:.2f} in, {crossed_out:.2f} out per tick")
    assert 0.5 < crossed_in <= 1.2 and 1.0 < crossed_out <= 1.8
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0


async def test_a_tls_relay_with_a_tls_node_behind_it(tmp_path: Path) -> None:
    """Mutual TLS end to end: a TLS cluster server (``nats up --tls``-style), a relay linked to
    its leafnode listener with an admin certificate, a node with its node certificate on the
    cluster reading the KV roster an admin wrote, and a node behind the relay on the site's
    loopback URL with the same command line (``--certs``; the hop is plain: the site server is
    the relay's own, on 127.0.0.1), reading the same KV roster across the leaf link (through
    the cluster's JetStream domain; no roster file) and following it live (a member an admin
    adds reaches it). They hear each
    other with nothing rejected and reach SHARED as an observer with its own certificate sees
    it; SIGTERM stops every process with exit 0 and none is left, the relay's leaf server
    included."""
    certs = tmp_path / "certs"
    init_ca(certs)
    issue_certificate(certs, "nats", server=True)
    issue_certificate(certs, "admin", admin=True)
    for name in ("observer", "hub-cell", "site-cell"):
        issue_certificate(certs, name)
    keys = {n: load_key(tmp_path / n / "node.key").public_bytes for n in ("hub-cell", "site-cell")}
    with NatsServers(tmp_path / "hub", tls=TlsFiles.named(certs, "nats")) as servers:
        admin = await RosterBucket.connect(
            servers.urls, cluster="local", tls=TlsFiles.named(certs, "admin")
        )
        try:
            for name, public_key in keys.items():
                await admin.put(name, public_key)
        finally:
            await admin.aclose()
        procs: list[subprocess.Popen[str]] = []

        def start(name: str, *args: str) -> subprocess.Popen[str]:
            log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            proc = subprocess.Popen(
                [*CLI, "node", "--name", name, "--data-dir", str(tmp_path / name), *args],
                stdout=subprocess.PIPE if name == "site-a" else log,
                stderr=log,
                text=True,
            )
            procs.append(proc)
            return proc

        try:
            relay = start(
                "site-a", "--kind", "relay", "--bus", ",".join(servers.leaf_urls),
                "--certs", str(certs), "--cert", "admin", "--json",
            )  # fmt: skip
            assert relay.stdout is not None
            first = json.loads(relay.stdout.readline())
            assert first["kind"] == "relay"
            leaf_pid, site_url = int(first["pid"]), str(first["url"])
            node_flags = [*FLAGS, "--kind", "light", "--json"]
            start("hub-cell", "--bus", servers.urls[0], "--certs", str(certs), *node_flags)
            start("site-cell", "--bus", site_url, "--certs", str(certs), *node_flags)
            tls = TlsFiles.named(certs, "observer")
            bus = await connect_nats(servers.urls, name="observer", tls=tls)
            try:
                obs = ClusterObserver(bus, cluster="local", peer_timeout=1.0)
                await obs.start()
                await until(
                    obs,
                    lambda: (
                        len(obs.live(time.time())) == 2
                        and all(s.heard == 1 and s.accepted > 20 for s in obs.latest.values())
                    ),
                    60,
                )
                await until(obs, lambda: obs.history[-1].band.value == "SHARED", 30)
                assert all(s.members == 2 and not s.rejected for s in obs.latest.values())
                admin = await RosterBucket.connect(
                    servers.urls, cluster="local", tls=TlsFiles.named(certs, "admin")
                )
                try:  # a member added by an admin reaches the node behind the relay live
                    await admin.put("late-cell", bytes(range(32)))
                finally:
                    await admin.aclose()
                await until(obs, lambda: obs.latest["site-cell"].members == 3, 10)
            finally:
                await bus.aclose()
            for proc in reversed(procs):  # the nodes, then the relay
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
            assert [p.returncode for p in procs] == [0, 0, 0]
            summary = json.loads(relay.communicate(timeout=10)[0].strip().splitlines()[-1])
            assert summary["stopped"] and summary["link"]["up"]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
        assert gone(leaf_pid) and all(gone(p.pid) for p in procs)
    assert all(gone(pid) for pid in servers.pids)
