"""The Sync layer of a cell and the sans-IO protocol machines of a cluster.

CPS, SSEP packets, topologies and network stability for phase lock; the Sync layer that decides
collapse or dissipation inside a cell. Rule: no clocks and no I/O here; time arrives as ``now``
and outgoing bytes are returned. Drivers in ``becomingone.runtime`` move bytes and time.
"""

from becomingone.sync.cps import CpsState, Outgoing, PhaseSupervisor
from becomingone.sync.layer import (
    ActionEvent,
    DissipationReason,
    RealignRequest,
    SyncDecision,
    SyncLayer,
    SyncOutcome,
    action_from,
)
from becomingone.sync.ssep import (
    MAX_PACKET_BYTES,
    Packet,
    PacketKind,
    PacketValidator,
    Reject,
    decode_packet,
    encode_packet,
)
from becomingone.sync.stability import ClusterReading, NetworkStability, read_cluster
from becomingone.sync.topology import Plan, Topology, fractal_levels, is_twisted, winding_number
from becomingone.sync.verified import DEFAULT_CACHE_SIZE, CacheStats, VerifyCache

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "MAX_PACKET_BYTES",
    "ActionEvent",
    "CacheStats",
    "ClusterReading",
    "CpsState",
    "DissipationReason",
    "NetworkStability",
    "Outgoing",
    "Packet",
    "PacketKind",
    "PacketValidator",
    "PhaseSupervisor",
    "Plan",
    "RealignRequest",
    "Reject",
    "SyncDecision",
    "SyncLayer",
    "SyncOutcome",
    "Topology",
    "VerifyCache",
    "action_from",
    "decode_packet",
    "encode_packet",
    "fractal_levels",
    "is_twisted",
    "read_cluster",
    "winding_number",
]
