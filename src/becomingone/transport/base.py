"""The bus every transport implements: publish bytes to a subject, subscribe to a subject.

Rule: a small ``typing.Protocol`` shaped after NATS core (fire-and-forget publish, one bounded
queue per subscription, slow consumers lose messages rather than block publishers). The
conformance suite in ``tests/transport/conformance.py`` runs against every adapter. A driver
moves a tick's messages with ``publish_many`` and ``drain`` (one call each, not one per message).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

__all__ = ["Bus", "Subscription"]


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
