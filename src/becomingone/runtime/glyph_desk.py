"""The glyph desk of an in-process cluster: list, submit and cancel glyphs across its cells.

Rule: what an operator may do to a running cluster's glyphs, in one place, on the driver's
event loop (the API calls it between ticks; it never blocks). A submitted glyph goes to the
cell with the least glyph energy (ties by node id) unless a cell is named; its id must be new
to the whole cluster. A cancel ends the glyph on its owner (scheduler ``End(CANCELLED)``,
witnessed as ``glyph.ended``); a glyph in flight between two cells (held by its source while
a migration runs) is refused with :class:`GlyphBusy` so the caller can retry after the tick.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from becomingone.cluster import Glyph
from becomingone.errors import BecomingOneError, InputError
from becomingone.runtime.cell_member import CellMember

__all__ = ["GlyphBusy", "GlyphDesk", "GlyphExists", "UnknownCell", "UnknownGlyph"]


class UnknownGlyph(BecomingOneError):
    """No cell of the cluster owns a glyph of that id."""


class GlyphBusy(BecomingOneError):
    """The glyph is between two cells (a migration in progress); try again after the tick."""


class GlyphExists(BecomingOneError):
    """A glyph of that id already runs in the cluster."""


class UnknownCell(BecomingOneError):
    """The cluster has no cell of that node id."""


def _row(glyph: Glyph, state: str, kairos: dict[str, Any] | None = None) -> dict[str, Any]:
    """A glyph's row: its fields, ``state`` and ``kairos``, the state of its self-observation
    stream on its owner (a probe; ``None`` for other kinds and ended glyphs)."""
    return {**glyph.to_dict(), "state": state, "kairos": kairos}


class GlyphDesk:
    """List, submit and cancel the glyphs of ``members`` (full cells)."""

    def __init__(self, members: Sequence[CellMember]) -> None:
        if not members:
            raise InputError("members", "needs at least one full cell")
        self.members = {m.node_id: m for m in members}

    @property
    def kinds(self) -> list[str]:
        """The handler kinds the cells can run (sorted; empty: any)."""
        kinds = next(iter(self.members.values())).glyphs.scheduler.kinds
        return sorted(kinds) if kinds is not None else []

    def glyphs(self) -> list[dict[str, Any]]:
        """Every glyph of the cluster with its owner and ``state`` (``scheduled``, ``held``
        while a migration moves it), ordered by id."""
        rows = []
        for m in self.members.values():
            k = m.glyphs.kairos
            rows += [_row(g, "scheduled", k(g.id)) for g in m.glyphs.scheduler.glyphs()]
            rows += [_row(g, "held", k(g.id)) for g in m.glyphs.held.values()]
        return sorted(rows, key=lambda r: (r["id"], r["state"]))

    def _owners(self, glyph_id: str) -> list[CellMember]:
        return [m for m in self.members.values() if m.glyphs.holds(glyph_id)]

    def submit(self, fields: Mapping[str, Any], cell: str | None = None) -> dict[str, Any]:
        """Make a glyph of ``fields`` (``id`` optional: a new one is drawn) and give it to
        ``cell`` or the least-loaded cell; returns it as owned. ``InputError`` for bad fields
        or an unknown kind, :class:`GlyphExists` for an id already in the cluster,
        :class:`UnknownCell` for a cell it does not have."""
        fields = dict(fields)
        for taken in ("owner", "epoch", "delta_phi", "coherence"):
            if taken in fields:
                raise InputError(taken, "is set by the cluster, not by a submission")
        fields.setdefault("id", f"g-{secrets.token_hex(6)}")
        glyph = Glyph(**fields)
        if self._owners(glyph.id):
            raise GlyphExists(f"glyph {glyph.id!r} already runs in this cluster")
        if cell is not None and cell not in self.members:
            raise UnknownCell(f"the cluster has no cell {cell!r}")
        target = self.members[cell] if cell is not None else self._least_loaded()
        owned = target.glyphs.submit(glyph)
        return _row(owned, "scheduled", target.glyphs.kairos(owned.id))

    def _least_loaded(self) -> CellMember:
        return min(self.members.values(), key=lambda m: (m.glyphs.node_energy(), m.node_id))

    async def cancel(self, glyph_id: str, now: float) -> dict[str, Any]:
        """End ``glyph_id`` on its owner (witnessed); returns its last state. A glyph that has
        already ended (energy or lifetime spent, or cancelled before) is not an error: its
        final state comes back with ``state`` ``ended`` and the reason (a cancel is
        idempotent). :class:`UnknownGlyph` if no cell has or had it, :class:`GlyphBusy` while
        it moves."""
        owners = self._owners(glyph_id)
        if not owners:
            for m in self.members.values():
                if glyph_id in m.glyphs.finished:
                    glyph, reason = m.glyphs.finished[glyph_id]
                    return {**_row(glyph, "ended"), "reason": reason}
            raise UnknownGlyph(f"no cell owns glyph {glyph_id!r}")
        if len(owners) > 1 or glyph_id in owners[0].glyphs.held:
            raise GlyphBusy(f"glyph {glyph_id!r} is moving between cells; retry after the tick")
        return _row(await owners[0].glyphs.cancel(glyph_id, now), "cancelled")
