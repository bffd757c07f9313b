"""NatsBus on a real nats-server: the shared conformance suite, bounds, stats and errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from becomingone.errors import InputError, TransportError
from becomingone.transport import Bus, NatsBus, connect_nats
from becomingone.transport.natsd import NatsServers
from tests.transport.conformance import BusConformance


class TestNatsBusConformance(BusConformance):
    """The shared suite, each connection a real client of one nats-server."""

    @pytest.fixture
    async def connect(  # type: ignore[no-untyped-def]
        self, nats_server: NatsServers, request: pytest.FixtureRequest
    ) -> AsyncIterator:
        """Connections to the module's server; all closed when the test ends."""
        opened: list[NatsBus] = []
        request.instance.opened = opened

        async def _connect(name: str) -> Bus:
            bus = await connect_nats(nats_server.urls, name=name)
            opened.append(bus)
            return bus

        yield _connect
        for bus in opened:
            await bus.aclose()

    async def settle(self) -> None:
        """Round trip every connection to the server, then let callbacks run."""
        for bus in self.opened:  # type: ignore[attr-defined]
            await bus.flush()
        for bus in self.opened:  # type: ignore[attr-defined]
            await bus.flush()
        await asyncio.sleep(0.02)


@pytest.fixture
async def pair(nats_server: NatsServers) -> AsyncIterator[tuple[NatsBus, NatsBus]]:
    """A publisher and a receiver (queues of 3 messages) on the module's server."""
    pub = await connect_nats(nats_server.urls, name="pub")
    rx = await connect_nats(nats_server.urls, name="rx", maxsize=3)
    yield pub, rx
    await pub.aclose()
    await rx.aclose()


async def test_full_queue_drops_and_counts(pair: tuple[NatsBus, NatsBus]) -> None:
    """A full subscription keeps the first messages, drops the rest and counts them."""
    pub, rx = pair
    sub = await rx.subscribe("t.full")
    await pub.publish_many([("t.full", bytes([i])) for i in range(5)])
    await pub.flush()
    await rx.flush()
    await asyncio.sleep(0.02)
    assert sub.drain() == [b"\x00", b"\x01", b"\x02"]
    assert (pub.stats["published"], rx.stats["delivered"], rx.stats["dropped_full"]) == (5, 3, 2)


async def test_wildcard_subscription_gets_every_node(pair: tuple[NatsBus, NatsBus]) -> None:
    """``ssep.<cluster>.*`` receives the packets of every node of that cluster, no other."""
    pub, rx = pair
    sub = await rx.subscribe("ssep.c1.*")
    await pub.publish_many([("ssep.c1.n1", b"a"), ("ssep.c2.n1", b"x"), ("ssep.c1.n2", b"b")])
    assert [await sub.next_msg(timeout=2.0) for _ in range(2)] == [b"a", b"b"]
    await pub.flush()
    await rx.flush()
    assert sub.drain() == []


@pytest.mark.parametrize(
    ("subject", "data", "parameter"),
    [
        ("", b"x", "subject"),
        ("a b", b"x", "subject"),
        ("a..b", b"x", "subject"),
        ("ssep.*", b"x", "subject"),
        ("ok", "text", "data"),
    ],
)
async def test_bad_publish_is_input_error(
    pair: tuple[NatsBus, NatsBus], subject: str, data: bytes, parameter: str
) -> None:
    """A bad subject or non-bytes data is an InputError naming it; nothing of the batch goes."""
    pub, _ = pair
    with pytest.raises(InputError) as info:
        await pub.publish_many([("ok", b"first"), (subject, data)])
    assert info.value.parameter == parameter
    assert pub.stats["published"] == 0


async def test_closed_connection_raises_transport_error(pair: tuple[NatsBus, NatsBus]) -> None:
    """After aclose, publish and subscribe raise TransportError (not a nats-py error)."""
    pub, _ = pair
    await pub.aclose()
    assert pub.closed
    with pytest.raises(TransportError):
        await pub.publish("t.closed", b"x")
    with pytest.raises(TransportError):
        await pub.subscribe("t.closed")
    await pub.aclose()  # idempotent


@pytest.mark.parametrize("urls", ["", "http://127.0.0.1:1", ["nats://127.0.0.1:1", "x"]])
async def test_bad_urls_are_input_errors(urls: str | list[str]) -> None:
    """URLs that are not nats:// are refused before any connection attempt."""
    with pytest.raises(InputError, match="urls"):
        await connect_nats(urls, name="bad")


async def test_no_server_is_transport_error(nats_server: NatsServers) -> None:
    """Connecting to a port where no server listens is a TransportError naming the URL."""
    stopped = NatsServers(nats_server.dir.parent / "gone", servers=1)
    stopped.start()
    url = stopped.urls[0]
    stopped.stop()
    with pytest.raises(TransportError, match=url.removeprefix("nats://")):
        await connect_nats([url], name="nobody", connect_timeout=0.5)


async def test_a_subscription_sees_the_very_next_publish_of_another_connection(
    nats_server: NatsServers,
) -> None:
    """subscribe() and flush() are barriers: 300 times, a fresh subscription receives all 5
    messages another connection publishes right after it, with nothing lost. (nats-py writes
    its PING ahead of commands still buffered, so without the barrier about 1 round in 25
    lost its messages.)"""
    pub = await connect_nats(nats_server.urls, name="pub")
    rx = await connect_nats(nats_server.urls, name="rx")
    try:
        lost = 0
        for k in range(300):
            sub = await rx.subscribe(f"t.barrier.{k}")
            await pub.publish_many([(f"t.barrier.{k}", bytes([i])) for i in range(5)])
            await pub.flush()
            await rx.flush()
            lost += sub.drain() != [bytes([i]) for i in range(5)]
            await sub.unsubscribe()
        assert lost == 0
    finally:
        await pub.aclose()
        await rx.aclose()
