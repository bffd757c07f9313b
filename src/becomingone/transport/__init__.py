"""Transports: the :class:`Bus` protocol and its adapters (in-process memory bus, NATS),
and the JetStream adapters of the storage protocols (they need a NATS connection).

Rule: adapters only move bytes; protocol logic lives in :mod:`becomingone.sync`.
"""

from becomingone.transport.base import Bus, Subscription
from becomingone.transport.jetstream import (
    JetStreamAppendLog,
    JetStreamCasRecord,
    JetStreamConnection,
    JetStreamProtocolState,
)
from becomingone.transport.memory import MemoryBus, MemoryConnection, MemorySubscription
from becomingone.transport.nats import NatsBus, NatsSubscription, connect_nats
from becomingone.transport.natsd import NatsServers, find_nats_server
from becomingone.transport.natsleaf import LeafLink, LeafServer
from becomingone.transport.roster_kv import RosterBucket, RosterWatch, roster_bucket

__all__ = [
    "Bus",
    "JetStreamAppendLog",
    "JetStreamCasRecord",
    "JetStreamConnection",
    "JetStreamProtocolState",
    "LeafLink",
    "LeafServer",
    "MemoryBus",
    "MemoryConnection",
    "MemorySubscription",
    "NatsBus",
    "NatsServers",
    "NatsSubscription",
    "RosterBucket",
    "RosterWatch",
    "Subscription",
    "connect_nats",
    "find_nats_server",
    "roster_bucket",
]
