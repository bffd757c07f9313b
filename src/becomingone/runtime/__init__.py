"""asyncio drivers: a running cell, its sources, hooks and terminal view.

Rule: thin loops around the sans-IO parts; this layer owns time, signals and terminals.
"""

from becomingone.runtime.cell import Cell, CellStatus, default_data_dir, load_key, run_cell
from becomingone.runtime.hooks import (
    HookEvent,
    HookFailure,
    HookRegistry,
    HookResult,
    Veto,
    resolve_hook,
)
from becomingone.runtime.lexical import LEXICAL_DIM, lexical_embed
from becomingone.runtime.sources import Source, open_source, synthetic_phase

__all__ = [
    "LEXICAL_DIM",
    "Cell",
    "CellStatus",
    "HookEvent",
    "HookFailure",
    "HookRegistry",
    "HookResult",
    "Source",
    "Veto",
    "default_data_dir",
    "lexical_embed",
    "load_key",
    "open_source",
    "resolve_hook",
    "run_cell",
    "synthetic_phase",
]
