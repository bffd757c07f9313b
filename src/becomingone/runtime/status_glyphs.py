"""The glyphs a node process shows of its cluster: its status list and the ownership records.

Rule: no I/O of its own (the records are read through the store it is given). A
``node --glyphs`` node's status ``glyphs`` row (counts, energy, latest value;
:meth:`~becomingone.runtime.cell_glyphs.CellGlyphs.row`) gains three fields made here, which
an observer of the cluster (``node --serve``, ``cluster --bus nats --serve``) turns into the
same glyph state the in-process glyph desk gives (:mod:`becomingone.api.cluster_events`),
and a fourth that ``cluster --bus nats --json`` sums into its rows' ``migrations``:

- ``list``: ``[[id, epoch, kind, energy, held], ...]`` — the node's glyphs, scheduled and held
  (``held`` 1: in flight to another node), ordered by id, at most :data:`STATUS_GLYPHS`;
- ``more``: how many of its glyphs the list leaves out (0 unless it holds more than
  :data:`STATUS_GLYPHS`: then the list is the first :data:`STATUS_GLYPHS` ids);
- ``gone``: ``[[id, reason], ...]`` — the newest :data:`STATUS_GONE` glyphs that ended on it,
  oldest first (energy, lifetime, cancelled);
- ``migrations``: the node's ownership counters (:meth:`NodeGlyphs.row
  <becomingone.runtime.node_glyphs.NodeGlyphs.row>`: ``migrations`` — counted by the source
  when it drops a glyph the target committed, so the sum over nodes counts each once —
  ``offered``, ``accepted``, ``aborted``, ``takeovers``, ``rejected_<reason>``, ...), at most
  :data:`STATUS_COUNTERS` of them.

At 64 glyphs (10-character ids) and 16 ended the three fields take about 2.9 KB of a status;
a status of an earlier version has none of the four fields and parses with none.

:func:`record_glyphs` lists every glyph of the cluster from its ownership records (the KV bucket
every node reads) and the reading node's own glyph desk: its own glyphs as it runs them
(``mine``: it schedules or holds them), every other glyph as its owner last wrote its record
(refreshed every few seconds, so energy and lifetime may lag) with its owner, ``scheduled``
(owned) or ``held`` (an offer is open).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from becomingone.cluster import OwnerRecord, OwnerState
from becomingone.errors import InputError, StorageError
from becomingone.runtime.cell_glyphs import CellGlyphs

if TYPE_CHECKING:
    from becomingone.runtime.node_glyphs import GlyphRecords

__all__ = [
    "STATUS_COUNTERS",
    "STATUS_GLYPHS",
    "STATUS_GONE",
    "parse_status_glyphs",
    "record_glyphs",
    "status_glyphs",
]

#: Glyphs listed per node in a status (the first ids in order; ``more`` counts the rest).
STATUS_GLYPHS = 64
#: Ended glyphs (the newest) a status names with their reason.
STATUS_GONE = 16
#: Ownership counters a status may carry.
STATUS_COUNTERS = 32
_MAX_ID = 64


def status_glyphs(glyphs: CellGlyphs, counters: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A node's status ``glyphs`` row: :meth:`CellGlyphs.row` plus ``list``, ``more``,
    ``gone`` and, given the node's ownership ``counters``, ``migrations`` (see the module
    rule)."""
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
        **({} if counters is None else {"migrations": dict(counters)}),
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
    out: dict[str, Any] = {"list": listed, "more": more, "gone": ended}
    if "migrations" in doc:
        out["migrations"] = _counters(doc["migrations"])
    return out


def _counters(doc: Any) -> dict[str, int]:
    if not isinstance(doc, dict) or len(doc) > STATUS_COUNTERS:
        raise ValueError(f"migration counters must be an object of at most {STATUS_COUNTERS}")
    out = {}
    for key, value in doc.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"migration counter {str(key)[:40]!r}: {value!r} is not a count")
        out[_id(key)] = value
    return out


def _id(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_ID:
        raise ValueError(f"not a glyph id, kind or reason: {str(value)[:40]!r}")
    return value


def record_glyphs(
    records: GlyphRecords, local: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Every glyph of the cluster, ordered by id: the reading node's own rows ``local`` (its
    desk's: fresh, ``mine`` true) and, for every other glyph, its ownership record in
    ``records`` (``mine`` false); ``StorageError`` for a record that is not one."""
    out = {str(r["id"]): {**r, "mine": True} for r in local}
    for key in sorted(records.keys()):
        if not key.startswith("glyph.") or key[len("glyph.") :] in out:
            continue  # cycle.anchor, or this node's own
        got = records.get(key)
        if got is None:
            continue  # ended since the listing
        try:
            rec = OwnerRecord.from_bytes(got.value)
        except InputError as exc:
            raise StorageError(f"{key}: not an ownership record: {exc}") from None
        state = "scheduled" if rec.state is OwnerState.OWNED else "held"
        out[rec.glyph.id] = {**rec.glyph.to_dict(), "state": state, "mine": False}
    return [out[k] for k in sorted(out)]
