"""The glyphs a node's status message carries: which glyphs it holds, compactly and bounded.

Rule: pure values, no I/O. A ``node --glyphs`` node's status ``glyphs`` row (counts, energy,
latest value; :meth:`~becomingone.runtime.cell_glyphs.CellGlyphs.row`) gains three fields made
here, which an observer of the cluster (``node --serve``, ``cluster --bus nats --serve``)
turns into the same glyph state the in-process glyph desk gives
(:mod:`becomingone.api.cluster_events`):

- ``list``: ``[[id, epoch, kind, energy, held], ...]`` — the node's glyphs, scheduled and held
  (``held`` 1: in flight to another node), ordered by id, at most :data:`STATUS_GLYPHS`;
- ``more``: how many of its glyphs the list leaves out (0 unless it holds more than
  :data:`STATUS_GLYPHS`: then the list is the first :data:`STATUS_GLYPHS` ids);
- ``gone``: ``[[id, reason], ...]`` — the newest :data:`STATUS_GONE` glyphs that ended on it,
  oldest first (energy, lifetime, cancelled).

At 64 glyphs a list is about 4 KB per status; a status of an earlier version has none of the
three fields and parses with none.
"""

from __future__ import annotations

import math
from typing import Any

from becomingone.runtime.cell_glyphs import CellGlyphs

__all__ = ["STATUS_GLYPHS", "STATUS_GONE", "parse_status_glyphs", "status_glyphs"]

#: Glyphs listed per node in a status (the first ids in order; ``more`` counts the rest).
STATUS_GLYPHS = 64
#: Ended glyphs (the newest) a status names with their reason.
STATUS_GONE = 16
_MAX_ID = 64


def status_glyphs(glyphs: CellGlyphs) -> dict[str, Any]:
    """A node's status ``glyphs`` row: :meth:`CellGlyphs.row` plus ``list``, ``more`` and
    ``gone`` (see the module rule)."""
    rows = [(g, 0) for g in glyphs.scheduler.glyphs()]
    rows += [(g, 1) for g in glyphs.held.values() if g.id not in glyphs.scheduler]
    rows.sort(key=lambda r: r[0].id)
    listed = [[g.id, g.epoch, g.kind, g.energy, held] for g, held in rows[:STATUS_GLYPHS]]
    finished = list(glyphs.finished.items())[-STATUS_GONE:]
    return {
        **glyphs.row(),
        "list": listed,
        "more": len(rows) - len(listed),
        "gone": [[gid, reason] for gid, (_g, reason) in finished],
    }


def parse_status_glyphs(doc: Any) -> dict[str, Any]:
    """``list``, ``more`` and ``gone`` of a status ``glyphs`` row, checked (absent: ``{}``);
    ``ValueError`` for anything out of shape or range."""
    if "list" not in doc:
        return {}
    raw, more, gone = doc["list"], int(doc["more"]), doc["gone"]
    if not isinstance(raw, list) or not isinstance(gone, list):
        raise ValueError("glyph list and gone must be lists")
    if len(raw) > STATUS_GLYPHS or len(gone) > STATUS_GONE or more < 0:
        raise ValueError(f"glyph list of {len(raw)}, gone {len(gone)}, more {more}: out of bounds")
    listed = []
    for gid, epoch, kind, energy, held in raw:
        gid, kind, epoch, energy = _id(gid), _id(kind), int(epoch), float(energy)
        if epoch < 0 or not (math.isfinite(energy) and energy >= 0) or held not in (0, 1):
            raise ValueError(f"glyph {gid!r}: epoch {epoch}, energy {energy}, held {held!r}")
        listed.append([gid, epoch, kind, energy, int(held)])
    ended = [[_id(gid), _id(reason)] for gid, reason in gone]
    return {"list": listed, "more": more, "gone": ended}


def _id(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_ID:
        raise ValueError(f"not a glyph id, kind or reason: {str(value)[:40]!r}")
    return value
