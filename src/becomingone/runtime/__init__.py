"""asyncio drivers: a running cell (sources, hooks, terminal view) and a local cluster.

Rule: thin loops around the sans-IO parts; this layer owns time, signals and terminals, and
makes no protocol decisions (see :mod:`becomingone.sync`).
"""

from becomingone.runtime.cell import Cell, CellStatus, default_data_dir, run_cell
from becomingone.runtime.cell_glyphs import (
    DEMO_CELLS,
    CellGlyphs,
    GlyphTotals,
    glyph_totals,
    probe_glyphs,
    spread_glyphs,
    value_digest,
)
from becomingone.runtime.cell_member import (
    CellMember,
    CellTotals,
    LivingMember,
    build_cell_members,
    cell_totals,
)
from becomingone.runtime.cluster import (
    DELIVERY_SECONDS,
    SEND_SECONDS,
    ClusterMember,
    ClusterSummary,
    LocalCluster,
    TickReport,
    build_supervisors,
    estimate_tick_seconds,
    packets_per_tick,
    subject_for,
    summarize,
)
from becomingone.runtime.datadir import (
    LOCK_NAME,
    PUBLIC_KEY_FILE,
    DataDirLock,
    LockHolder,
    check_chain,
    load_key,
    open_identity,
    resume_point,
    verify_tail,
)
from becomingone.runtime.glyph_handlers import (
    RUN_COST,
    CommandHandler,
    ProbeHandler,
    PythonHandler,
    build_registry,
    check_glyphs,
)
from becomingone.runtime.glyph_migrate import GlyphMigrator
from becomingone.runtime.glyph_runner import GlyphRunner, RunOutcome
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
from becomingone.runtime.launcher import NodeProcesses, node_name
from becomingone.runtime.node import (
    NodeSettings,
    NodeStatus,
    RosterFile,
    SupervisedNode,
    status_subject,
)
from becomingone.runtime.node_feed import FedMember, FullFeed, LightFeed, node_member
from becomingone.runtime.observer import ClusterObserver, PacketAges
from becomingone.runtime.partifacts import PartifactDriver, PartifactTick
from becomingone.runtime.relay import Relay, RelayStatus, relay_subject
from becomingone.runtime.sources import Source, SourceCursor, open_source, synthetic_phase

__all__ = [
    "DELIVERY_SECONDS",
    "DEMO_CELLS",
    "LOCK_NAME",
    "PUBLIC_KEY_FILE",
    "RUN_COST",
    "SEND_SECONDS",
    "Cell",
    "CellGlyphs",
    "CellMember",
    "CellStatus",
    "CellTotals",
    "ClusterMember",
    "ClusterObserver",
    "ClusterSummary",
    "CommandHandler",
    "DataDirLock",
    "FedMember",
    "FullFeed",
    "GlyphMigrator",
    "GlyphRunner",
    "GlyphTotals",
    "HookCall",
    "HookEvent",
    "HookFailure",
    "HookRegistry",
    "HookResult",
    "LightFeed",
    "LivingMember",
    "LocalCluster",
    "LockHolder",
    "NodeProcesses",
    "NodeSettings",
    "NodeStatus",
    "PacketAges",
    "PartifactDriver",
    "PartifactTick",
    "ProbeHandler",
    "PythonHandler",
    "Relay",
    "RelayStatus",
    "RosterFile",
    "RunOutcome",
    "Source",
    "SourceCursor",
    "SupervisedNode",
    "TickReport",
    "Veto",
    "build_cell_members",
    "build_registry",
    "build_supervisors",
    "cell_totals",
    "check_chain",
    "check_glyphs",
    "check_hooks",
    "default_data_dir",
    "estimate_tick_seconds",
    "glyph_totals",
    "load_key",
    "node_member",
    "node_name",
    "open_identity",
    "open_source",
    "packets_per_tick",
    "probe_glyphs",
    "relay_subject",
    "resolve_hook",
    "resume_point",
    "run_cell",
    "spread_glyphs",
    "status_subject",
    "subject_for",
    "summarize",
    "synthetic_phase",
    "value_digest",
    "verify_tail",
]
