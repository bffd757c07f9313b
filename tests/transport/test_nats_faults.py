"""NatsBus under faults with real servers: kill -9 of one server of three, a server stopped.

Every wait is bounded in time and count; the figures the failover test measures are printed
(``pytest -s``) and quoted in docs/nats.md.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from becomingone.errors import TransportError
from becomingone.transport import NatsBus, connect_nats
from becomingone.transport.natsd import NatsServers

pytestmark = pytest.mark.timeout(120)


async def wait_until_flowing(pub: NatsBus, sub_next: object, subject: str) -> None:
    """Publish probes until one arrives (interest crosses the cluster's routes); at most 5 s."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        await pub.publish(subject, b"probe")
        try:
            if await sub_next(timeout=0.1) == b"probe":  # type: ignore[operator]
                return
        except TimeoutError:
            continue
    raise AssertionError("no message crossed the cluster within 5 s")


async def test_kill9_one_server_of_three_client_reconnects(nats_cluster: NatsServers) -> None:
    """kill -9 of the publisher's server: it reconnects to the next server in its list and
    messages flow again, in publish order, within a bounded time (measured and printed)."""
    urls = nats_cluster.urls
    pub = await connect_nats(urls, name="pub")  # dont_randomize: connected to n1
    rx = await connect_nats([urls[2]], name="rx")
    try:
        assert pub.connected_url == urls[0]
        sub = await rx.subscribe("f.seq")
        await wait_until_flowing(pub, sub.next_msg, "f.seq")
        sub.drain()
        seq = 0
        killed_at = killed_seq = None
        flowing_after = None
        received: list[int] = []
        deadline = time.monotonic() + 15.0
        while flowing_after is None and time.monotonic() < deadline and seq < 20_000:
            seq += 1
            await pub.publish("f.seq", seq.to_bytes(4, "big"))
            if seq == 50:
                nats_cluster.kill(0)  # SIGKILL, reaped
                killed_at, killed_seq = time.monotonic(), seq
            await asyncio.sleep(0.002)
            received += [int.from_bytes(m, "big") for m in sub.drain() if m != b"probe"]
            if killed_seq is not None and received and received[-1] > killed_seq:
                flowing_after = time.monotonic() - killed_at  # type: ignore[operator]
        assert flowing_after is not None, f"no message after the kill within 15 s ({seq} sent)"
        print(f"\nkill -9 -> messages flow again after {flowing_after * 1000:.1f} ms")
        assert flowing_after < 10.0
        assert received == sorted(received)  # at most once, but in publish order
        assert pub.connected_url == urls[1]
        assert (pub.stats["disconnects"], pub.stats["reconnects"]) == (1, 1)
        assert rx.stats["disconnects"] == 0
    finally:
        await pub.aclose()
        await rx.aclose()


async def test_server_stopped_buffers_then_raises(tmp_path: Path) -> None:
    """With its only server stopped, a client buffers publishes while it retries (no error);
    once its reconnect attempts are spent it closes and publish raises TransportError."""
    servers = NatsServers(tmp_path, servers=1)
    servers.start()
    try:
        bus = await connect_nats(
            servers.urls, name="lonely", max_reconnect_attempts=5, reconnect_time_wait=0.3
        )
        servers.stop()
        deadline = time.monotonic() + 10.0
        while bus.connected_url is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert bus.connected_url is None and bus.stats["disconnects"] == 1
        assert not bus.closed  # five attempts 0.3 s apart: still retrying
        await bus.publish("f.buffered", b"kept for the reconnect")  # buffered, not an error
        assert bus.stats["published"] == 1
        while not bus.closed and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert bus.closed, "the client did not give up within 10 s"
        with pytest.raises(TransportError, match="lonely"):
            await bus.publish("f.after", b"x")
        await bus.aclose()
    finally:
        servers.stop()
