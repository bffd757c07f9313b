"""asyncio drivers: a running cell (sources, hooks, terminal view) and a local cluster.

Rule: thin loops around the sans-IO parts; this layer owns time, signals and terminals, and
makes no protocol decisions (see :mod:`becomingone.sync`).
"""

from becomingone.runtime.cell import Cell, CellStatus, default_data_dir, load_key, run_cell
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
from becomingone.runtime.hooks import (
    HookCall,
    HookEvent,
    HookFailure,
    HookRegistry,
    HookResult,
    Veto,
    check_hooks,
    resolve_hook,
)
from becomingone.runtime.sources import Source, open_source, synthetic_phase

__all__ = [
    "Cell",
    "CellMember",
    "CellStatus",
    "CellTotals",
    "ClusterMember",
    "ClusterSummary",
    "HookCall",
    "HookEvent",
    "HookFailure",
    "HookRegistry",
    "HookResult",
    "LivingMember",
    "LocalCluster",
    "Source",
    "TickReport",
    "Veto",
    "build_cell_members",
    "build_supervisors",
    "cell_totals",
    "check_hooks",
    "default_data_dir",
    "load_key",
    "open_source",
    "resolve_hook",
    "run_cell",
    "subject_for",
    "synthetic_phase",
]
