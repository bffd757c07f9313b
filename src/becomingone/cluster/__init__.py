"""The cluster layer (WSP 28, DESIGN.md §7): glyphs, their scheduler and handler registry.

Rule: sans-IO protocol objects over ``core`` and ``sync``: values that validate on
construction and machines that take a phase or an event and return effects. Handlers that do
I/O, and the async runner that calls them, live in ``becomingone.runtime``. (Not to be confused
with :mod:`becomingone.runtime.cluster`, the asyncio driver of an in-process cluster.)
"""

from becomingone.cluster.glyph import (
    MAX_ENERGY,
    MAX_KAPPA,
    MAX_PAYLOAD_BYTES,
    Glyph,
    evolve,
    glyph_digest,
    node_energy,
)
from becomingone.cluster.handlers import (
    ENTRY_POINT_GROUP,
    GlyphHandler,
    HandlerContext,
    HandlerRegistry,
    HandlerResult,
    as_result,
    resolve_target,
)
from becomingone.cluster.scheduler import (
    RUNNING_WEIGHT,
    End,
    EndReason,
    Fire,
    GlyphScheduler,
    SchedulerEffect,
    Skip,
    SkipReason,
    late_limit,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "MAX_ENERGY",
    "MAX_KAPPA",
    "MAX_PAYLOAD_BYTES",
    "RUNNING_WEIGHT",
    "End",
    "EndReason",
    "Fire",
    "Glyph",
    "GlyphHandler",
    "GlyphScheduler",
    "HandlerContext",
    "HandlerRegistry",
    "HandlerResult",
    "SchedulerEffect",
    "Skip",
    "SkipReason",
    "as_result",
    "evolve",
    "glyph_digest",
    "late_limit",
    "node_energy",
    "resolve_target",
]
