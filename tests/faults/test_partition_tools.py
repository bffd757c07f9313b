"""The tools the partition test stands on: ``NatsServers(routes=...)`` and :class:`TcpProxy`.

Fast (no node processes): a proxy forwards, a cut resets what it forwards and refuses new
connections, a heal listens again on the same port; a server's routes can be pointed at given
URLs, and bad ``routes`` are refused naming the parameter.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from becomingone.errors import InputError
from becomingone.transport.natsd import NatsServers
from tests.natshelpers import TcpProxy

pytestmark = pytest.mark.timeout(60)


async def echo_server() -> asyncio.Server:
    """A loopback echo server on a free port."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def through(port: int, data: bytes) -> bytes:
    """Send ``data`` to ``127.0.0.1:port`` and read as many bytes back (at most 5 s)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.readexactly(len(data)), 5.0)
    finally:
        writer.close()


async def test_proxy_forwards_cuts_and_heals() -> None:
    """Bytes go through the proxy both ways; a cut resets an open connection (its reader sees
    EOF or a reset) and refuses new ones; a heal forwards again on the same port."""
    server = await echo_server()
    target = server.sockets[0].getsockname()[1]
    try:
        with TcpProxy(lambda: target) as proxy:
            proxy.heal()
            assert await through(proxy.port, b"hello") == b"hello"
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"x")
            assert await asyncio.wait_for(reader.readexactly(1), 5.0) == b"x"
            await asyncio.to_thread(proxy.cut)
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(reader.read(1), 5.0) == b""
            writer.close()
            with pytest.raises(OSError):
                await through(proxy.port, b"refused")
            await asyncio.to_thread(proxy.heal)
            assert await through(proxy.port, b"again") == b"again"
            assert proxy.connections == 3
    finally:
        server.close()
        await server.wait_closed()


def test_routes_point_a_server_at_given_urls(tmp_path: Path) -> None:
    """With ``routes``, the named server's config solicits exactly the given URLs (``[]``:
    none), the others keep a route to every other server."""
    ns = NatsServers(tmp_path, servers=3, routes={"n1": ["nats-route://127.0.0.1:9"], "n2": []})
    specs = ns._write_configs()
    configs = [Path(s.config).read_text() for s in specs]
    assert 'routes: ["nats-route://127.0.0.1:9"]' in configs[0]
    assert "routes: []" in configs[1]
    others = [f"nats-route://127.0.0.1:{s.cluster_port}" for s in specs[:2]]
    assert f"routes: {others}".replace("'", '"') in configs[2]


@pytest.mark.parametrize(
    ("servers", "routes"),
    [
        (3, {"n4": []}),
        (1, {"n1": []}),
        (2, {"n1": "nats-route://127.0.0.1:9"}),
        (2, {"n1": ["nats://127.0.0.1:9"]}),
    ],
)
def test_bad_routes_are_refused(tmp_path: Path, servers: int, routes: dict[str, object]) -> None:
    """A server that is not in the cluster, a single server, a bare string and a client URL
    are each an InputError naming ``routes``."""
    with pytest.raises(InputError, match="routes"):
        NatsServers(tmp_path, servers=servers, routes=routes)  # type: ignore[arg-type]


def test_advertise_sets_a_servers_route_address(tmp_path: Path) -> None:
    """With ``advertise``, the named server's cluster block advertises the given address; the
    others advertise nothing (nats-server's default: their listen address)."""
    ns = NatsServers(tmp_path, servers=2, advertise={"n1": "127.0.0.1:9"})
    configs = [Path(s.config).read_text() for s in ns._write_configs()]
    assert 'advertise: "127.0.0.1:9"' in configs[0]
    assert "  advertise:" not in configs[1]


@pytest.mark.parametrize(
    ("servers", "advertise"),
    [
        (3, {"n4": "127.0.0.1:9"}),
        (1, {"n1": "127.0.0.1:9"}),
        (2, {"n1": "127.0.0.1"}),
        (2, {"n1": "127.0.0.1:0"}),
        (2, {"n1": ":9"}),
        (2, {"n1": 9}),
    ],
)
def test_bad_advertise_is_refused(
    tmp_path: Path, servers: int, advertise: dict[str, object]
) -> None:
    """A server not in the cluster, a single server, no port, port 0, no host and a number
    are each an InputError naming ``advertise``."""
    with pytest.raises(InputError, match="advertise"):
        NatsServers(tmp_path, servers=servers, advertise=advertise)  # type: ignore[arg-type]
