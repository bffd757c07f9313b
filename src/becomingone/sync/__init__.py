"""The Sync layer and the sans-IO protocol machines of a cell and a cluster.

Rule: no I/O and no clocks here; drivers in ``becomingone.runtime`` move bytes and time.
"""

from becomingone.sync.layer import (
    ActionEvent,
    DissipationReason,
    RealignRequest,
    SyncDecision,
    SyncLayer,
    SyncOutcome,
    action_from,
)

__all__ = [
    "ActionEvent",
    "DissipationReason",
    "RealignRequest",
    "SyncDecision",
    "SyncLayer",
    "SyncOutcome",
    "action_from",
]
