"""Transports: the :class:`Bus` protocol and its adapters (in-process memory bus; NATS later).

Rule: adapters only move bytes; protocol logic lives in :mod:`becomingone.sync`.
"""

from becomingone.transport.base import Bus, Subscription
from becomingone.transport.memory import MemoryBus, MemoryConnection, MemorySubscription

__all__ = ["Bus", "MemoryBus", "MemoryConnection", "MemorySubscription", "Subscription"]
