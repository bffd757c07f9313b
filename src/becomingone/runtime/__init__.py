"""asyncio drivers: a running cell (sources, hooks, terminal view) and a local cluster.

Rule: thin loops around the sans-IO parts; this layer owns time, signals and terminals, and
makes no protocol decisions (see :mod:`becomingone.sync`).
"""

from becomingone.runtime.cell import (
    PUBLIC_KEY_FILE,
    Cell,
    CellStatus,
    default_data_dir,
    load_key,
    open_identity,
    run_cell,
)
from becomingone.runtime.cell_member import (
    CellMember,
    CellTotals,
    LivingMember,
    build_cell_members,
    cell_totals,
)
from becomingone.runtime.cluster import (
    ClusterMember,
    ClusterSummary,
    LocalCluster,
    TickReport,
    build_supervisors,
    subject_for,
)
from becomingone.runtime.datadir import LOCK_NAME, DataDirLock, LockHolder
from becomingone.runtime.hooks import (
    HookEvent,
    HookFailure,
    HookRegistry,
    HookResult,
    Veto,
    resolve_hook,
)
from becomingone.runtime.sources import Source, SourceCursor, open_source, synthetic_phase

__all__ = [
    "LOCK_NAME",
    "PUBLIC_KEY_FILE",
    "Cell",
    "CellMember",
    "CellStatus",
    "CellTotals",
    "ClusterMember",
    "ClusterSummary",
    "DataDirLock",
    "HookEvent",
    "HookFailure",
    "HookRegistry",
    "HookResult",
    "LivingMember",
    "LocalCluster",
    "LockHolder",
    "Source",
    "SourceCursor",
    "TickReport",
    "Veto",
    "build_cell_members",
    "build_supervisors",
    "cell_totals",
    "default_data_dir",
    "load_key",
    "open_identity",
    "open_source",
    "resolve_hook",
    "run_cell",
    "subject_for",
    "synthetic_phase",
]
