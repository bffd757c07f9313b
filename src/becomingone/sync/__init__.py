"""The Sync layer of a cell and the sans-IO protocol machines of a cluster.

CPS, SSEP packets, topologies, network stability and mesh synchronisation (T_global, the
cluster collapse) for phase lock; the Sync layer that decides
collapse or dissipation inside a cell. Rule: no clocks and no I/O here; time arrives as ``now``
and outgoing bytes are returned. Drivers in ``becomingone.runtime`` move bytes and time.
"""

from becomingone.sync.cps import CpsState, Outgoing, PeerLoad, PhaseSupervisor
from becomingone.sync.cps_state import CellField, HeardPhase, SupervisorState
from becomingone.sync.law import cps_step
from becomingone.sync.layer import (
    ActionEvent,
    DissipationReason,
    RealignRequest,
    SyncDecision,
    SyncLayer,
    SyncOutcome,
    action_from,
)
from becomingone.sync.mesh import (
    ClusterCollapse,
    ClusterCollapseDetector,
    CollapseEdge,
    GlobalSync,
    global_sync,
)
from becomingone.sync.roster import NODE_ID_PATTERN, KeyRoster
from becomingone.sync.ssep import (
    MAX_PACKET_BYTES,
    Packet,
    PacketKind,
    PacketValidator,
    Reject,
    ValidatorState,
    decode_packet,
    encode_packet,
    next_epoch,
)
from becomingone.sync.stability import (
    ClusterReading,
    NetworkStability,
    StabilityState,
    read_cluster,
)
from becomingone.sync.topology import Plan, Topology, fractal_levels, is_twisted, winding_number
from becomingone.sync.verified import DEFAULT_CACHE_SIZE, CacheStats, VerifyCache

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "MAX_PACKET_BYTES",
    "NODE_ID_PATTERN",
    "ActionEvent",
    "CacheStats",
    "CellField",
    "ClusterCollapse",
    "ClusterCollapseDetector",
    "ClusterReading",
    "CollapseEdge",
    "CpsState",
    "DissipationReason",
    "GlobalSync",
    "HeardPhase",
    "KeyRoster",
    "NetworkStability",
    "Outgoing",
    "Packet",
    "PacketKind",
    "PacketValidator",
    "PeerLoad",
    "PhaseSupervisor",
    "Plan",
    "RealignRequest",
    "Reject",
    "StabilityState",
    "SupervisorState",
    "SyncDecision",
    "SyncLayer",
    "SyncOutcome",
    "Topology",
    "ValidatorState",
    "VerifyCache",
    "action_from",
    "cps_step",
    "decode_packet",
    "encode_packet",
    "fractal_levels",
    "global_sync",
    "is_twisted",
    "next_epoch",
    "read_cluster",
    "winding_number",
]
