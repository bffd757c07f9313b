"""In-process bus: a real :class:`~becomingone.transport.Bus` for one machine and for tests.

Rule: bounded queues (a full subscription drops the message and counts it, publishers never
block), optional injected latency, loss and partitions, all counted. Connections are named so
partitions can separate them; no network and no threads.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable

from becomingone.errors import InputError, TransportError
from becomingone.transport.base import QueuedSubscription

__all__ = ["MemoryBus", "MemoryConnection", "MemorySubscription"]


class MemorySubscription(QueuedSubscription):
    """A bounded queue of messages for one subject on one connection."""

    def __init__(self, conn: MemoryConnection, subject: str, maxsize: int) -> None:
        super().__init__(subject, maxsize)
        self._conn = conn

    async def unsubscribe(self) -> None:
        """Stop receiving."""
        self.active = False
        self._conn._bus._remove(self)


def _as_bytes(data: object) -> bytes:
    """A bytes-like message as immutable bytes; anything else is an ``InputError``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InputError("data", f"must be bytes, got {type(data).__name__}")
    return bytes(data)


class MemoryConnection:
    """One named client of a :class:`MemoryBus`."""

    def __init__(self, bus: MemoryBus, name: str) -> None:
        self._bus = bus
        self.name = name
        self.closed = False
        self._subs: list[MemorySubscription] = []

    async def publish(self, subject: str, data: bytes) -> None:
        """Deliver ``data`` to every subscriber of ``subject`` (subject to faults)."""
        await self.publish_many(((subject, data),))

    async def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """Deliver each ``(subject, data)`` in order; all are checked before any is sent."""
        if self.closed:
            raise TransportError(f"connection {self.name!r} is closed")
        batch = [(s, d if type(d) is bytes else _as_bytes(d)) for s, d in messages]
        self._bus._route(self.name, batch)

    async def subscribe(self, subject: str) -> MemorySubscription:
        """Start receiving ``subject``."""
        if self.closed:
            raise TransportError(f"connection {self.name!r} is closed")
        if not subject:
            raise InputError("subject", "must not be empty")
        sub = MemorySubscription(self, subject, self._bus.maxsize)
        self._subs.append(sub)
        self._bus._subs[subject].append(sub)
        return sub

    async def aclose(self) -> None:
        """Close this connection and its subscriptions."""
        for sub in list(self._subs):
            await sub.unsubscribe()
        self.closed = True


class MemoryBus:
    """The in-process bus (the "server"). ``connect(name)`` gives a :class:`Bus` client.

    Parameters
    ----------
    maxsize : capacity of each subscription's queue.
    latency : seconds added to every delivery (on the running loop's clock).
    loss : probability that a delivery is dropped.
    seed : seeds the loss draws.
    """

    def __init__(
        self, *, maxsize: int = 1024, latency: float = 0.0, loss: float = 0.0, seed: int = 0
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise InputError("maxsize", f"must be an integer >= 1, got {maxsize!r}")
        if not math.isfinite(latency) or latency < 0.0:
            raise InputError("latency", f"must be a finite number >= 0, got {latency!r}")
        if not math.isfinite(loss) or not 0.0 <= loss < 1.0:
            raise InputError("loss", f"must be in [0, 1), got {loss!r}")
        self.maxsize, self.latency, self.loss = maxsize, latency, loss
        self._rng = random.Random(seed)
        self._subs: defaultdict[str, list[MemorySubscription]] = defaultdict(list)
        self._groups: dict[str, int] = {}
        self.stats: Counter[str] = Counter()

    def connect(self, name: str) -> MemoryConnection:
        """A new client connection called ``name`` (used by partitions)."""
        return MemoryConnection(self, name)

    def partition(self, *groups: Iterable[str]) -> None:
        """Split connections into groups; messages cross no group boundary until :meth:`heal`.

        Connections not named in any group form one more group together.
        """
        self._groups = {name: i for i, group in enumerate(groups) for name in group}

    def heal(self) -> None:
        """Remove every partition."""
        self._groups = {}

    def _remove(self, sub: MemorySubscription) -> None:
        subs = self._subs.get(sub.subject, [])
        if sub in subs:
            subs.remove(sub)

    def _route(self, origin: str, batch: list[tuple[str, bytes]]) -> None:
        """Route a batch in order; counters are summed locally and added once."""
        delivered = full = partition = lost = 0
        groups, subs, rng, loss = self._groups, self._subs, self._rng, self.loss
        home = groups.get(origin, -1)
        if not groups and not loss and self.latency <= 0.0:  # no faults set: the plain path
            delivered, full = self._route_plain(batch)
        else:
            for subject, data in batch:
                for sub in subs.get(subject, ()):
                    if groups and groups.get(sub._conn.name, -1) != home:
                        partition += 1
                    elif loss and rng.random() < loss:
                        lost += 1
                    elif self.latency > 0.0:
                        loop = asyncio.get_running_loop()
                        loop.call_later(self.latency, self._deliver, sub, data)
                    elif not sub.active:
                        continue
                    elif sub._offer(data):
                        delivered += 1
                    else:
                        full += 1
        stats = self.stats
        for name, count in (
            ("published", len(batch)),
            ("delivered", delivered),
            ("dropped_full", full),
            ("dropped_partition", partition),
            ("dropped_loss", lost),
        ):
            if count:
                stats[name] += count

    def _route_plain(self, batch: list[tuple[str, bytes]]) -> tuple[int, int]:
        """:meth:`_route` without partitions, loss or latency: (delivered, dropped full)."""
        delivered = full = 0
        get = self._subs.get
        for subject, data in batch:
            for sub in get(subject, ()):
                if not sub.active:
                    continue
                queue = sub._queue
                if len(queue) < sub._maxsize:  # QueuedSubscription._offer, inlined
                    queue.append(data)
                    delivered += 1
                    waiter = sub._waiter
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                else:
                    full += 1
        return delivered, full

    def _deliver(self, sub: MemorySubscription, data: bytes) -> None:
        if sub._offer(data):
            self.stats["delivered"] += 1
        elif sub.active:
            self.stats["dropped_full"] += 1
