"""Mutual TLS on real nats-server processes with real certificates made in tmp dirs: a node
certificate connects and round-trips; no certificate, a foreign CA's certificate and plain
NATS are refused (TransportError saying TLS); an expired certificate is refused by our loader
before any connection; a 3-server cluster routes over TLS; readiness probes log no handshake
errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from becomingone.certs import TlsFiles, init_ca, issue_certificate
from becomingone.errors import InputError, TransportError
from becomingone.transport import connect_nats, natsd
from becomingone.transport.natsd import _NO_PROXY, NatsServers, _routed_peers, server_status

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cluster CA with a server certificate ``nats``, node certificates ``n1`` and ``n2``
    and an expired one ``old``; a second CA in ``other/`` with its own ``n1``."""
    folder = tmp_path_factory.mktemp("certs")
    now = dt.datetime.now(dt.UTC)
    init_ca(folder, now=now - dt.timedelta(days=10))
    issue_certificate(folder, "nats", server=True)
    issue_certificate(folder, "n1")
    issue_certificate(folder, "n2")
    issue_certificate(folder, "old", days=1, now=now - dt.timedelta(days=3))
    init_ca(folder / "other")
    issue_certificate(folder / "other", "n1")
    return folder


@pytest.fixture(scope="module")
def tls_server(certs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServers]:
    """One nats-server requiring TLS with client certificates, for the whole module."""
    with NatsServers(
        tmp_path_factory.mktemp("nats-tls"), servers=1, tls=TlsFiles.named(certs, "nats")
    ) as servers:
        yield servers


def settled_log(path: Path, quiet: float = 0.5, limit: float = 5.0) -> str:
    """The text of ``path`` once it has not changed for ``quiet`` seconds (at most ``limit``)."""
    text, since, end = path.read_text(), time.monotonic(), time.monotonic() + limit
    while time.monotonic() - since < quiet and time.monotonic() < end:
        time.sleep(0.05)
        now = path.read_text()
        if now != text:
            text, since = now, time.monotonic()
    return text


def logged(path: Path, line: str, before: int, limit: float = 5.0) -> bool:
    """Whether the log at ``path`` holds ``line`` more than ``before`` times within ``limit``
    seconds: the server writes its handshake error after the client has seen the failure."""
    end = time.monotonic() + limit
    while path.read_text().count(line) <= before:
        if time.monotonic() >= end:
            return False
        time.sleep(0.05)
    return True


def handshake_errors(servers: NatsServers) -> int:
    """How many TLS handshake errors the servers logged."""
    return sum(Path(s.log).read_text().count("TLS handshake error") for s in servers.specs)


async def test_node_certificate_round_trip(
    tls_server: NatsServers, certs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A client with a valid node certificate connects to the tls:// URL and passes a
    publish/subscribe round trip through the server; closing it logs no asyncio SSL noise."""
    assert tls_server.urls[0].startswith("tls://127.0.0.1:")
    caplog.set_level(logging.DEBUG, logger="asyncio")
    bus = await connect_nats(tls_server.urls, name="n1", tls=TlsFiles.named(certs, "n1"))
    try:
        sub = await bus.subscribe("ssep.c.n1")
        await bus.publish("ssep.c.n1", b"over tls")
        assert await sub.next_msg(timeout=5) == b"over tls"
        assert bus.connected_url == tls_server.urls[0]
    finally:
        await bus.aclose()
    await asyncio.sleep(0.05)  # let the server's close arrive
    assert not [r for r in caplog.records if "eof_received" in r.getMessage()]


async def test_client_without_certificate_is_refused(tls_server: NatsServers, certs: Path) -> None:
    """A client that trusts the CA but presents no certificate is refused by the server: a
    TransportError naming TLS; the server logs that no certificate was provided."""
    log = Path(tls_server.specs[0].log)
    before = log.read_text().count("client didn't provide a certificate")
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    with pytest.raises(TransportError, match="TLS") as info:
        await connect_nats(tls_server.urls, name="anon", tls=context, connect_timeout=2.0)
    assert "client certificate" in str(info.value)
    assert logged(log, "client didn't provide a certificate", before)


async def test_certificate_of_another_ca_is_refused(tls_server: NatsServers, certs: Path) -> None:
    """A node certificate from another CA (its client trusting our CA, so only the server's
    check can refuse it) is a TransportError naming TLS."""
    log = Path(tls_server.specs[0].log)
    before = log.read_text().count("certificate signed by unknown authority")
    foreign = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    foreign.load_cert_chain(str(certs / "other" / "n1.crt"), str(certs / "other" / "n1.key"))
    with pytest.raises(TransportError, match="TLS"):
        await connect_nats(tls_server.urls, name="stranger", tls=foreign, connect_timeout=2.0)
    assert logged(log, "certificate signed by unknown authority", before)


async def test_plain_client_is_refused_at_once(tls_server: NatsServers) -> None:
    """A client without any TLS setting (a nats:// URL to the TLS port) is a TransportError
    saying the server requires TLS with a client certificate and none was given, at once
    (nats-py alone would wait forever closing the failed upgrade)."""
    plain = tls_server.urls[0].replace("tls://", "nats://")
    start = time.monotonic()
    with pytest.raises(TransportError, match="requires TLS with a client certificate, and none"):
        await connect_nats([plain], name="plain", connect_timeout=2.0)
    assert time.monotonic() - start < 2.0


async def test_client_of_another_ca_does_not_trust_the_server(
    tls_server: NatsServers, certs: Path
) -> None:
    """A node holding another cluster's CA and certificate refuses our server's certificate:
    a TransportError naming TLS and the certificate, without retrying until a timeout."""
    start = time.monotonic()
    with pytest.raises(TransportError, match=r"TLS handshake failed.*CERTIFICATE_VERIFY_FAILED"):
        await connect_nats(
            tls_server.urls * 2, name="lost", tls=TlsFiles.named(certs / "other", "n1")
        )
    assert time.monotonic() - start < 2.0


async def test_expired_certificate_is_refused_before_connecting(
    tls_server: NatsServers, certs: Path
) -> None:
    """An expired node certificate is an InputError from our loader (naming the file and its
    expiry), raised before any connection: the server sees no new client. The log is read
    once it has settled: the earlier tests' refused handshakes may be logged late under load."""
    before = settled_log(Path(tls_server.specs[0].log))
    with pytest.raises(InputError, match=r"old\.crt expired on ") as info:
        await connect_nats(tls_server.urls, name="old", tls=TlsFiles.named(certs, "old"))
    assert info.value.parameter == "cert"
    assert settled_log(Path(tls_server.specs[0].log)) == before


async def test_bad_tls_argument(tls_server: NatsServers) -> None:
    """tls must be an SSLContext or TlsFiles: anything else is an InputError naming tls."""
    with pytest.raises(InputError) as info:
        await connect_nats(tls_server.urls, name="x", tls="certs")  # type: ignore[arg-type]
    assert info.value.parameter == "tls"


def test_server_needs_a_server_certificate(certs: Path, tmp_path: Path) -> None:
    """NatsServers refuses a node certificate (no serverAuth) and an expired one before
    starting anything: InputErrors naming the file."""
    with pytest.raises(InputError, match=r"n1\.crt is a node certificate"):
        NatsServers(tmp_path, tls=TlsFiles.named(certs, "n1"))
    with pytest.raises(InputError, match=r"old\.crt expired"):
        NatsServers(tmp_path, tls=TlsFiles.named(certs, "old"))
    assert not (tmp_path / "nats").exists()


async def test_three_servers_route_over_tls(certs: Path, tmp_path: Path) -> None:
    """A 3-server TLS cluster comes up routed (each server to both others), with TLS required
    and verified on routes and leafnode listeners too (every config, /varz); a message from a
    client of n1 reaches a client of n3 through the TLS routes; status says running; and no
    server logged a TLS handshake error (readiness and status probe the monitoring port)."""
    with NatsServers(tmp_path, servers=3, tls=TlsFiles.named(certs, "nats")) as servers:
        assert all(url.startswith("tls://") for url in servers.urls)
        for spec in servers.specs:
            assert _routed_peers(spec.monitor_port, 2.0) == 2
            text = Path(spec.config).read_text()
            # client and leaf ports map certificates to users; routes only verify
            assert text.count("verify: true") == 1 and text.count("verify_and_map: true") == 2
            url = f"http://127.0.0.1:{spec.monitor_port}/varz"
            with _NO_PROXY.open(url, timeout=2.0) as reply:
                varz = json.loads(reply.read())
            assert varz["tls_verify"] and varz["cluster"]["tls_verify"]
            assert varz["cluster"]["tls_required"]
            assert varz["leaf"]["tls_required"] and varz["leaf"]["tls_verify"]
        first = await connect_nats(servers.urls[:1], name="n1", tls=TlsFiles.named(certs, "n1"))
        third = await connect_nats(servers.urls[2:], name="n2", tls=TlsFiles.named(certs, "n2"))
        try:
            sub = await third.subscribe("ssep.c.n1")
            for _ in range(100):  # interest propagates over the routes in a few ms
                await first.publish("ssep.c.n1", b"routed")
                try:
                    assert await sub.next_msg(timeout=0.05) == b"routed"
                    break
                except TimeoutError:
                    continue
            else:
                pytest.fail("no message crossed the TLS routes in 100 tries")
        finally:
            await first.aclose()
            await third.aclose()
        assert [s.state for s in server_status(servers.dir)] == ["running"] * 3
        assert handshake_errors(servers) == 0


def cert_not_after(monitor_port: int) -> str:
    """The not-after of the certificate a server presents to clients (its /varz)."""
    with _NO_PROXY.open(f"http://127.0.0.1:{monitor_port}/varz", timeout=2.0) as reply:
        return str(json.loads(reply.read())["tls_cert_not_after"])


async def test_server_certificate_rotates_on_sighup(tmp_path: Path) -> None:
    """The documented rotation of the server certificate: issue it again with --force, send
    SIGHUP; the running server presents the new certificate (its not-after changes within 5 s)
    and a node still connects, with no restart."""
    folder = tmp_path / "certs"
    init_ca(folder)
    issue_certificate(folder, "nats", server=True, days=300)
    issue_certificate(folder, "n1")
    with NatsServers(tmp_path, servers=1, tls=TlsFiles.named(folder, "nats")) as servers:
        spec = servers.specs[0]
        before = cert_not_after(spec.monitor_port)
        issue_certificate(folder, "nats", server=True, days=30, force=True)
        os.kill(spec.pid, signal.SIGHUP)  # our own child: nats-server reloads its config
        deadline = time.monotonic() + 5.0
        while cert_not_after(spec.monitor_port) == before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert cert_not_after(spec.monitor_port) != before
        bus = await connect_nats(servers.urls, name="n1", tls=TlsFiles.named(folder, "n1"))
        await bus.aclose()


def test_server_of_another_ca_cannot_join_the_routes(certs: Path, tmp_path: Path) -> None:
    """A nats-server presenting a server certificate of another CA (while trusting ours, so only
    our check can refuse it), configured with a route to our cluster, is refused on the route:
    ours stay routed to each other only, the stranger has no route, and our server logs the
    TLS failure (route TLS verifies the peer's certificate, not just clients')."""
    issue_certificate(certs / "other", "nats", server=True, force=True)
    stranger_files = TlsFiles(
        ca=certs / "ca.crt", cert=certs / "other" / "nats.crt", key=certs / "other" / "nats.key"
    )
    with NatsServers(tmp_path / "ours", servers=2, tls=TlsFiles.named(certs, "nats")) as ours:
        spec = ours.specs[0]
        port, cluster_port, monitor = natsd._free_ports(3)
        stranger = natsd.ServerSpec(
            name="stranger",
            port=port,
            cluster_port=cluster_port,
            monitor_port=monitor,
            config=str(tmp_path / "stranger.conf"),
            log=str(tmp_path / "stranger.log"),
            store_dir=str(tmp_path / "stranger-js"),
            tls=True,
        )
        route = [f"nats-route://127.0.0.1:{spec.cluster_port}"]
        Path(stranger.config).write_text(natsd._config_text(stranger, route, stranger_files))
        with open(stranger.log, "wb") as log:
            proc = subprocess.Popen(
                [str(natsd.find_nats_server()), "-c", stranger.config],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 10.0
            text = ""
            while "certificate signed by unknown authority" not in text:
                assert time.monotonic() < deadline, "no route TLS failure logged in 10 s"
                time.sleep(0.05)
                text = Path(spec.log).read_text()
            assert _routed_peers(spec.monitor_port, 2.0) == 1
            assert _routed_peers(stranger.monitor_port, 2.0) == 0
        finally:
            proc.kill()
            proc.wait(timeout=10)
