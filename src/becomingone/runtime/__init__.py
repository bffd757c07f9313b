"""asyncio drivers: a running cell (sources, hooks, terminal view) and a local cluster.

Rule: thin loops around the sans-IO parts; this layer owns time, signals and terminals, and
makes no protocol decisions (see :mod:`becomingone.sync`).
"""

from becomingone.runtime.backup import BackupReport, back_up
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
from becomingone.runtime.fire_log import FireLog
from becomingone.runtime.glyph_desk import (
    GlyphBusy,
    GlyphDesk,
    GlyphExists,
    UnknownCell,
    UnknownGlyph,
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
from becomingone.runtime.logs import LOGGER, StructuredFormatter, TextFormatter, setup_logging
from becomingone.runtime.metrics import (
    METRICS,
    MetricSpec,
    MetricsServer,
    StateCollector,
    cell_registry,
    cluster_registry,
    serve_metrics,
)
from becomingone.runtime.node import (
    CellReading,
    NodeSettings,
    NodeStatus,
    RosterFile,
    SupervisedNode,
    status_subject,
)
from becomingone.runtime.node_feed import FedMember, FullFeed, LightFeed, node_member
from becomingone.runtime.node_glyphs import NodeGlyphs, anchored_position
from becomingone.runtime.observer import ClusterObserver, PacketAges
from becomingone.runtime.partifacts import PartifactDriver, PartifactTick
from becomingone.runtime.profile import (
    LARGEST_CLUSTER,
    Budget,
    SmallProfile,
    cluster_bench_argv,
    run_small_profile,
)
from becomingone.runtime.proposal_desk import (
    OPERATOR_KINDS,
    ProposalDesk,
    ProposalRefused,
    UnknownProposal,
)
from becomingone.runtime.relay import Relay, RelayStatus, relay_subject
from becomingone.runtime.sources import Source, SourceCursor, open_source, synthetic_phase

__all__ = [
    "DELIVERY_SECONDS",
    "DEMO_CELLS",
    "LARGEST_CLUSTER",
    "LOCK_NAME",
    "LOGGER",
    "METRICS",
    "OPERATOR_KINDS",
    "PUBLIC_KEY_FILE",
    "RUN_COST",
    "SEND_SECONDS",
    "BackupReport",
    "Budget",
    "Cell",
    "CellGlyphs",
    "CellMember",
    "CellReading",
    "CellStatus",
    "CellTotals",
    "ClusterMember",
    "ClusterObserver",
    "ClusterSummary",
    "CommandHandler",
    "DataDirLock",
    "FedMember",
    "FireLog",
    "FullFeed",
    "GlyphBusy",
    "GlyphDesk",
    "GlyphExists",
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
    "MetricSpec",
    "MetricsServer",
    "NodeGlyphs",
    "NodeProcesses",
    "NodeSettings",
    "NodeStatus",
    "PacketAges",
    "PartifactDriver",
    "PartifactTick",
    "ProbeHandler",
    "ProposalDesk",
    "ProposalRefused",
    "PythonHandler",
    "Relay",
    "RelayStatus",
    "RosterFile",
    "RunOutcome",
    "SmallProfile",
    "Source",
    "SourceCursor",
    "StateCollector",
    "StructuredFormatter",
    "SupervisedNode",
    "TextFormatter",
    "TickReport",
    "UnknownCell",
    "UnknownGlyph",
    "UnknownProposal",
    "Veto",
    "anchored_position",
    "back_up",
    "build_cell_members",
    "build_registry",
    "build_supervisors",
    "cell_registry",
    "cell_totals",
    "check_chain",
    "check_glyphs",
    "check_hooks",
    "cluster_bench_argv",
    "cluster_registry",
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
    "run_small_profile",
    "serve_metrics",
    "setup_logging",
    "spread_glyphs",
    "status_subject",
    "subject_for",
    "summarize",
    "synthetic_phase",
    "value_digest",
    "verify_tail",
]
