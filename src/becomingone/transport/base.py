"""The bus every transport implements: publish bytes to a subject, subscribe to a subject.

Rule: a small ``typing.Protocol`` shaped after NATS core (fire-and-forget publish, one bounded
queue per subscription, slow consumers lose messages rather than block publishers). The
conformance suite in ``tests/transport/conformance.py`` runs against every adapter. A driver
moves a tick's messages with ``publish_many`` and ``drain`` (one call each, not one per message).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

__all__ = ["Bus", "QueuedSubscription", "Subscription"]


@runtime_checkable
class Subscription(Protocol):
    """Messages published to one subject, in publish order per publisher."""

    subject: str

    async def next_msg(self, timeout: float) -> bytes:
        """The next message; ``TimeoutError`` if none arrives within ``timeout`` seconds."""
        ...

    def drain(self) -> list[bytes]:
        """Every message already received, without waiting."""
        ...

    @property
    def pending(self) -> int:
        """Messages received and not yet taken (the queue depth)."""
        ...

    async def unsubscribe(self) -> None:
        """Stop receiving; later publishes are not delivered here."""
        ...


@runtime_checkable
class Bus(Protocol):
    """One client connection to a bus."""

    async def publish(self, subject: str, data: bytes) -> None:
        """Send ``data`` to every current subscriber of ``subject`` (fire and forget)."""
        ...

    async def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """Publish each ``(subject, data)`` in order, as ``publish`` would, in one call.

        The batch form a driver uses to hand over a tick's packets without per-message
        overhead; delivery, ordering, bounds and drops are exactly those of the single form.
        """
        ...

    async def subscribe(self, subject: str) -> Subscription:
        """Start receiving messages published to ``subject``."""
        ...

    async def aclose(self) -> None:
        """Close the connection and its subscriptions."""
        ...


class QueuedSubscription:
    """The receiving half every adapter shares: a bounded queue of payloads and one waiter.

    An adapter calls :meth:`_offer` for each message that arrives (in arrival order); a full
    queue refuses the message and the adapter counts the drop.
    """

    def __init__(self, subject: str, maxsize: int) -> None:
        self.subject = subject
        self._maxsize = maxsize
        self._queue: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.active = True

    def _offer(self, data: bytes) -> bool:
        """Queue ``data``; False (nothing queued) when inactive or full."""
        if not self.active or len(self._queue) >= self._maxsize:
            return False
        self._queue.append(data)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    async def next_msg(self, timeout: float) -> bytes:
        """The next message; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not self._queue:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
        return self._queue.popleft()

    @property
    def pending(self) -> int:
        """Messages queued and not yet taken (the queue depth)."""
        return len(self._queue)

    def drain(self) -> list[bytes]:
        """Every queued message, without waiting (one call however many there are)."""
        out = list(self._queue)
        self._queue.clear()
        return out
