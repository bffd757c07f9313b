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


async def _sequential_and_batched(bus_kw: dict[str, object]) -> list[tuple[object, object]]:
    """The same 300 messages to three subscribers, one by one and as one batch."""
    results = []
    for batched in (False, True):
        bus = MemoryBus(**bus_kw)  # type: ignore[arg-type]
        subs = [await bus.connect(f"r{i}").subscribe(f"s{i % 2}") for i in range(3)]
        pub = bus.connect("p")
        messages = [(f"s{i % 2}", i.to_bytes(2, "big")) for i in range(300)]
        if batched:
            await pub.publish_many(messages)
        else:
            for subject, data in messages:
                await pub.publish(subject, data)
        results.append(([s.drain() for s in subs], dict(bus.stats)))
    return results


@pytest.mark.parametrize(
    "bus_kw", [{"maxsize": 50}, {"loss": 0.3, "seed": 4}, {"maxsize": 1000}], ids=str
)
async def test_batch_drops_and_stats_equal_one_by_one(bus_kw: dict[str, object]) -> None:
    """publish_many gives the same deliveries, drops (full, loss) and stats as publish."""
    one_by_one, batched = await _sequential_and_batched(bus_kw)
    assert batched == one_by_one
    queues, stats = batched
    assert all(len(q) <= bus_kw.get("maxsize", 1024) for q in queues)  # type: ignore[operator]
    assert stats["published"] == 300
    assert stats["delivered"] + stats.get("dropped_full", 0) + stats.get("dropped_loss", 0) == 450


async def test_batch_partition_counts_and_bad_item_sends_nothing() -> None:
    """A batch across a partition counts each dropped copy; a non-bytes item in a batch
    raises InputError before anything of the batch is sent."""
    bus = MemoryBus()
    near, far = await bus.connect("a").subscribe("s"), await bus.connect("b").subscribe("s")
    pub = bus.connect("a")
    bus.partition({"a"}, {"b"})
    await pub.publish_many([("s", b"1"), ("s", b"2")])
    assert near.drain() == [b"1", b"2"] and far.drain() == []
    assert bus.stats["dropped_partition"] == 2
    with pytest.raises(InputError):
        await pub.publish_many([("s", b"ok"), ("s", "text")])  # type: ignore[list-item]
    assert near.drain() == [] and bus.stats["published"] == 2
