"""Bus conformance suite: every transport adapter must pass these (memory now, NATS later).

An adapter's test module subclasses :class:`BusConformance` and provides ``connect`` (an async
factory: name → connected Bus) and ``settle`` (await until published messages are delivered).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from becomingone.transport import Bus, Subscription

Connect = Callable[[str], Awaitable[Bus]]


class BusConformance:
    """Behaviour every Bus must show."""

    async def settle(self) -> None:
        """Wait until messages in flight are delivered (adapters may override)."""
        await asyncio.sleep(0.05)

    async def test_is_a_bus(self, connect: Connect) -> None:
        """Connections satisfy the Bus protocol and subscriptions the Subscription protocol."""
        conn = await connect("a")
        sub = await conn.subscribe("s.one")
        assert isinstance(conn, Bus) and isinstance(sub, Subscription)
        await conn.aclose()

    async def test_delivers_exact_bytes_in_order(self, connect: Connect) -> None:
        """A subscriber gets every message of one publisher, byte-exact and in order."""
        pub, rx = await connect("p"), await connect("r")
        sub = await rx.subscribe("s.order")
        payloads = [bytes([i]) * (i + 1) for i in range(50)]
        for p in payloads:
            await pub.publish("s.order", p)
        got = [await sub.next_msg(timeout=2.0) for _ in payloads]
        assert got == payloads

    async def test_fan_out_and_subject_isolation(self, connect: Connect) -> None:
        """Every subscriber of a subject gets a copy; other subjects get nothing."""
        pub = await connect("p")
        subs = [await (await connect(f"r{i}")).subscribe("s.fan") for i in range(3)]
        other = await (await connect("o")).subscribe("s.other")
        await pub.publish("s.fan", b"hello")
        for sub in subs:
            assert await sub.next_msg(timeout=2.0) == b"hello"
        await self.settle()
        assert other.drain() == []

    async def test_next_msg_times_out(self, connect: Connect) -> None:
        """next_msg raises TimeoutError when nothing arrives."""
        sub = await (await connect("r")).subscribe("s.quiet")
        with pytest.raises(TimeoutError):
            await sub.next_msg(timeout=0.05)

    async def test_unsubscribe_stops_delivery(self, connect: Connect) -> None:
        """After unsubscribe, publishes are not delivered to that subscription."""
        pub, rx = await connect("p"), await connect("r")
        sub = await rx.subscribe("s.unsub")
        await sub.unsubscribe()
        await pub.publish("s.unsub", b"late")
        await self.settle()
        assert sub.drain() == []

    async def test_drain_returns_what_arrived(self, connect: Connect) -> None:
        """drain() returns queued messages without waiting, then nothing."""
        pub, rx = await connect("p"), await connect("r")
        sub = await rx.subscribe("s.drain")
        for i in range(5):
            await pub.publish("s.drain", bytes([i]))
        await self.settle()
        assert sub.drain() == [bytes([i]) for i in range(5)]
        assert sub.drain() == []

    async def test_publish_many_is_publish_in_order(self, connect: Connect) -> None:
        """A batch over two subjects reaches each subscriber byte-exact and in batch order,
        exactly as the same messages published one by one."""
        pub, rx = await connect("p"), await connect("r")
        one, two = await rx.subscribe("s.b1"), await rx.subscribe("s.b2")
        batch = [("s.b1" if i % 3 else "s.b2", bytes([i]) * (i + 1)) for i in range(40)]
        await pub.publish_many(batch)
        await pub.publish_many([])  # an empty batch is a no-op
        await self.settle()
        assert one.drain() == [d for s, d in batch if s == "s.b1"]
        assert two.drain() == [d for s, d in batch if s == "s.b2"]

    async def test_next_msg_wakes_on_a_later_publish(self, connect: Connect) -> None:
        """A reader already waiting in next_msg gets a message published after it started."""
        pub, rx = await connect("p"), await connect("r")
        sub = await rx.subscribe("s.wait")
        reader = asyncio.ensure_future(sub.next_msg(timeout=2.0))
        await asyncio.sleep(0.01)
        assert not reader.done()
        await pub.publish_many([("s.wait", b"late")])
        assert await reader == b"late"
