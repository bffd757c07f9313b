"""The sans-IO cell: the decisions of one cell as a generator of effects (DESIGN.md §5).

The asyncio driver that performs the effects (storage, hooks, the data-dir lock) is
:class:`becomingone.runtime.Cell`.
"""

from becomingone.cell.core import CellCore, CoreSettings, Ingest, decision_payload
from becomingone.cell.effects import (
    COUNTERS,
    Commit,
    Effect,
    FireHook,
    HookOutcome,
    IngestOutcome,
    VerifyRecent,
)

__all__ = [
    "COUNTERS",
    "CellCore",
    "Commit",
    "CoreSettings",
    "Effect",
    "FireHook",
    "HookOutcome",
    "Ingest",
    "IngestOutcome",
    "VerifyRecent",
    "decision_payload",
]
