"""MemoryBus: the conformance suite plus its fault injection (bounds, loss, latency, partitions)."""

from __future__ import annotations

import asyncio

import pytest

from becomingone.errors import InputError, TransportError
from becomingone.transport import Bus, MemoryBus
from tests.transport.conformance import BusConformance


class TestMemoryBusConformance(BusConformance):
    """The shared suite on the in-process bus."""

    @pytest.fixture
    def connect(self):  # type: ignore[no-untyped-def]
        """Connections to one fresh MemoryBus."""
        bus = MemoryBus()

        async def _connect(name: str) -> Bus:
            return bus.connect(name)

        return _connect

    async def settle(self) -> None:
        """Memory delivery is immediate."""
        await asyncio.sleep(0)


async def test_full_queue_drops_and_counts() -> None:
    """A full subscription drops further messages (never blocks) and counts them."""
    bus = MemoryBus(maxsize=3)
    sub = await bus.connect("r").subscribe("s")
    pub = bus.connect("p")
    for i in range(5):
        await pub.publish("s", bytes([i]))
    assert sub.drain() == [b"\x00", b"\x01", b"\x02"]
    assert bus.stats["dropped_full"] == 2


async def test_loss_is_seeded_and_counted() -> None:
    """Loss p drops about p of deliveries, reproducibly for a seed."""
    bus = MemoryBus(loss=0.3, seed=1, maxsize=10_000)
    sub = await bus.connect("r").subscribe("s")
    pub = bus.connect("p")
    for _ in range(2000):
        await pub.publish("s", b"x")
    got = len(sub.drain())
    assert got + bus.stats["dropped_loss"] == 2000
    assert 0.65 < got / 2000 < 0.75


async def test_latency_delays_delivery() -> None:
    """With latency, a message is not there at once but arrives after the delay."""
    bus = MemoryBus(latency=0.05)
    sub = await bus.connect("r").subscribe("s")
    await bus.connect("p").publish("s", b"x")
    assert sub.drain() == []
    assert await sub.next_msg(timeout=1.0) == b"x"


async def test_partition_and_heal() -> None:
    """Partitioned connections do not hear each other until healed."""
    bus = MemoryBus()
    a, b = bus.connect("a"), bus.connect("b")
    sub_b = await b.subscribe("s")
    bus.partition({"a"}, {"b"})
    await a.publish("s", b"lost")
    assert sub_b.drain() == [] and bus.stats["dropped_partition"] == 1
    bus.heal()
    await a.publish("s", b"ok")
    assert sub_b.drain() == [b"ok"]


async def test_closed_and_bad_input() -> None:
    """Publishing on a closed connection raises TransportError; bad arguments InputError."""
    conn = MemoryBus().connect("a")
    with pytest.raises(InputError):
        await conn.publish("s", "text")  # type: ignore[arg-type]
    await conn.aclose()
    with pytest.raises(TransportError):
        await conn.publish("s", b"x")
    with pytest.raises(InputError):
        MemoryBus(loss=1.0)
