"""Leaf servers (a relay's site server) on real nats-server processes: the cluster servers
listen for leaf nodes; a leaf server links to them, messages cross the link both ways and only
where the other side has interest; the link fails over when its server is killed; it is
stopped by pid and dies with its parent; mutual TLS on the link; bad URLs are one InputError."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from becomingone.certs import TlsFiles, init_ca, issue_certificate
from becomingone.errors import InputError, TransportError
from becomingone.transport import LeafServer, connect_nats
from becomingone.transport.natsd import NatsServers, read_state, server_status
from becomingone.transport.natsleaf import parse_leaf_urls
from tests.helpers import gone

pytestmark = pytest.mark.timeout(120)


def test_servers_listen_for_leaf_nodes_on_loopback(tmp_path: Path) -> None:
    """Every server of a cluster has a leafnodes listener on its own loopback port, recorded in
    the state file and shown by status as a nats-leaf:// URL."""
    with NatsServers(tmp_path, servers=3) as servers:
        ports = set()
        for spec in servers.specs:
            assert spec.leaf_port is not None
            text = Path(spec.config).read_text()
            assert f'leafnodes {{\n  listen: "127.0.0.1:{spec.leaf_port}"' in text
            ports.add(spec.leaf_port)
        assert len(ports | {s.port for s in servers.specs}) == 6
        assert servers.leaf_urls == [f"nats-leaf://127.0.0.1:{s.leaf_port}" for s in servers.specs]
        assert read_state(servers.dir) == servers.specs
        state = json.loads((servers.dir / "state.json").read_text())
        assert [s["leaf_url"] for s in state["servers"]] == servers.leaf_urls
        assert [s.leaf_url for s in server_status(servers.dir)] == servers.leaf_urls


async def test_leaf_links_and_carries_both_ways(tmp_path: Path) -> None:
    """A leaf server linked to a 3-server cluster (through its second server): a client of
    the site and a client of the cluster hear each other; a message between two site clients
    does not cross the link (out_msgs unchanged); stop ends the pid."""
    with NatsServers(tmp_path / "hub", servers=3) as servers:
        leaf = LeafServer(tmp_path / "leaf", servers.leaf_urls[1:], name="site-a")
        with leaf:
            link = leaf.wait_linked(10)
            assert link.up and link.hub == "n2"
            site = await connect_nats([leaf.url], name="site")
            hub = await connect_nats(servers.urls[2:], name="hub")
            try:
                at_hub = await hub.subscribe("ssep.c.hub")
                at_site = await site.subscribe("ssep.c.site")
                local = await site.subscribe("ssep.c.local")
                await _until_interest(hub, at_site, site, at_hub)
                await site.publish("ssep.c.hub", b"up")
                await hub.publish("ssep.c.site", b"down")
                assert await at_hub.next_msg(timeout=5) == b"up"
                assert await at_site.next_msg(timeout=5) == b"down"
                before = leaf.link().out_msgs
                for _ in range(20):
                    await site.publish("ssep.c.local", b"stays")
                assert [await local.next_msg(timeout=5) for _ in range(20)] == [b"stays"] * 20
                time.sleep(0.2)
                assert leaf.link().out_msgs == before
            finally:
                await site.aclose()
                await hub.aclose()
            pid = leaf.pid
            assert pid is not None
        assert gone(pid) and leaf.stop() is None


async def _until_interest(hub, at_site, site, at_hub) -> None:  # type: ignore[no-untyped-def]
    """Ping both ways until each side's subscription is known across the link (bounded)."""
    for _ in range(100):
        await site.publish("ssep.c.hub", b"ping")
        await hub.publish("ssep.c.site", b"ping")
        try:
            if await at_hub.next_msg(timeout=0.05) and await at_site.next_msg(timeout=0.5):
                break
        except TimeoutError:  # next_msg's timeout: interest not across the link yet
            continue
    else:
        raise AssertionError("no interest across the link after 100 pings")
    at_hub.drain()
    at_site.drain()


def test_leaf_dies_with_its_parent(tmp_path: Path) -> None:
    """A process that started a leaf server is killed with -9: the leaf server goes too."""
    with NatsServers(tmp_path / "hub", servers=1) as servers:
        code = (
            "import sys, time\n"
            "from becomingone.transport import LeafServer\n"
            f"leaf = LeafServer({str(tmp_path / 'leaf')!r}, {servers.leaf_urls!r})\n"
            "leaf.start(); print(leaf.pid, flush=True); time.sleep(60)\n"
        )
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
        parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
        try:
            assert parent.stdout is not None
            leaf_pid = int(parent.stdout.readline())
            assert not gone(leaf_pid)
        finally:
            parent.send_signal(signal.SIGKILL)
            parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not gone(leaf_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(leaf_pid)


def test_leaf_link_over_mutual_tls(tmp_path: Path) -> None:
    """With a cluster started with TLS, a leaf presenting an admin certificate of the cluster CA
    links; one presenting a node certificate (it would step around the node permissions) or
    another CA's certificate never does (TransportError naming the remote, bounded)."""
    certs = tmp_path / "certs"
    init_ca(certs, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    issue_certificate(certs, "nats", server=True)
    issue_certificate(certs, "relay", admin=True)
    issue_certificate(certs, "plain")
    init_ca(certs / "other")
    issue_certificate(certs / "other", "relay")
    with NatsServers(tmp_path / "hub", servers=1, tls=TlsFiles.named(certs, "nats")) as servers:
        assert "leafnodes {\n  listen" in Path(servers.specs[0].config).read_text()
        with LeafServer(
            tmp_path / "ok", servers.leaf_urls, tls=TlsFiles.named(certs, "relay")
        ) as leaf:
            assert leaf.wait_linked(10).up
        with (
            LeafServer(
                tmp_path / "node", servers.leaf_urls, tls=TlsFiles.named(certs, "plain")
            ) as leaf,
            pytest.raises(TransportError, match="not linked"),
        ):
            leaf.wait_linked(2)
        foreign = TlsFiles(
            cert=certs / "other" / "relay.crt",
            key=certs / "other" / "relay.key",
            ca=certs / "ca.crt",
        )
        with pytest.raises(InputError):
            LeafServer(tmp_path / "bad", servers.leaf_urls, tls=foreign)
        other = TlsFiles.named(certs / "other", "relay")
        with (
            LeafServer(tmp_path / "bad", servers.leaf_urls, tls=other) as leaf,
            pytest.raises(TransportError, match="not linked"),
        ):
            leaf.wait_linked(2)


@pytest.mark.parametrize(
    "urls",
    [
        "",
        " , ",
        "http://127.0.0.1:4222",
        "nats-leaf://127.0.0.1",
        "127.0.0.1:4222",
        "nats-leaf://:9",
        "nats-leaf://h:99999",
        "nats-leaf://h:x",
    ],
)
def test_bad_leaf_urls(urls: str) -> None:
    """Anything but HOST:PORT URLs of a nats-leaf/nats/tls scheme is one InputError (--bus)."""
    with pytest.raises(InputError) as info:
        parse_leaf_urls(urls)
    assert info.value.parameter == "--bus"


def test_link_fails_over_to_the_next_server(tmp_path: Path) -> None:
    """kill -9 of the cluster server a leaf is linked to: the link goes down and comes back
    up through the next leafnode URL (bounded), the leaf server itself untouched."""
    with (
        NatsServers(tmp_path / "hub", servers=3) as servers,
        LeafServer(tmp_path / "leaf", servers.leaf_urls) as leaf,
    ):
        assert leaf.wait_linked(10).hub == "n1"
        pid = leaf.pid
        killed = time.monotonic()
        servers.kill(0)
        deadline = killed + 15
        while (link := leaf.link()).hub in ("n1", None):
            assert time.monotonic() < deadline, link
            time.sleep(0.02)
        took = time.monotonic() - killed
        print(f"leaf link back up through {link.hub} {took * 1000:.0f} ms after kill -9")
        assert link.up and link.hub in ("n2", "n3") and leaf.pid == pid and leaf.running()
