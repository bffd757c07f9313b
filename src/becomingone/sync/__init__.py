"""Sync layer: sans-IO protocol machines for phase lock (CPS, SSEP packets, topologies, stability).

Rule: no clocks and no I/O here; time arrives as ``now`` and outgoing bytes are returned.
"""

from becomingone.sync.cps import CpsState, Outgoing, PhaseSupervisor
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

__all__ = [
    "MAX_PACKET_BYTES",
    "ClusterReading",
    "CpsState",
    "NetworkStability",
    "Outgoing",
    "Packet",
    "PacketKind",
    "PacketValidator",
    "PhaseSupervisor",
    "Plan",
    "Reject",
    "Topology",
    "decode_packet",
    "encode_packet",
    "fractal_levels",
    "is_twisted",
    "read_cluster",
    "winding_number",
]
