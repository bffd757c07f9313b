"""The typed events of a served cluster's tick: glyphs, roles, lifecycle and proposals.

Rule: after each tick :class:`ClusterEvents` compares what the running cluster holds now with
what it held at the previous tick and returns the events of the difference, each with the
tick as its ``seq`` — it reads the glyph desk's cells and the partifact driver's newest
:class:`~becomingone.runtime.PartifactTick`, never changes them, and does no I/O.

- ``glyph.submitted`` a glyph id new to the cluster (its owner, kind, energy);
  ``glyph.migrated`` a glyph whose owner changed (``from``, ``to``); ``glyph.ended`` a glyph
  gone (its last owner and the reason it ended there); ``glyph.fired`` one summary per tick
  with runs (``fires`` in all and ``by_cell``), never one event per run: at 10 ticks/s with
  many glyphs a per-run event would flood every client.
- ``role.assigned`` a cell without a role got one; ``role.changed`` a cell's role changed
  (``from``, ``to``; ``to`` null when it lost it); ``lifecycle.changed`` the stage changed or
  a condition started or stopped holding (the stage, the previous one, every condition).
- ``proposal.opened`` and ``proposal.decided`` as the driver reports them; ``proposal.vote``
  one per proposal per tick with the votes counted in it and the tally after them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from becomingone.api.events import EventType, StreamEvent
from becomingone.runtime.glyph_desk import GlyphDesk
from becomingone.runtime.partifacts import PartifactTick
from becomingone.runtime.proposal_desk import ConsensusDriver

__all__ = ["ClusterEvents"]

_PROPOSAL_TYPES = {
    "proposal.opened": EventType.PROPOSAL_OPENED,
    "proposal.decided": EventType.PROPOSAL_DECIDED,
}


def _glyph_state(desk: GlyphDesk) -> dict[str, dict[str, Any]]:
    """Each glyph's owner, kind and energy now: a scheduled copy wins over a held one (a
    migration's source holds it until the target has installed it)."""
    out: dict[str, dict[str, Any]] = {}
    for cell, m in desk.members.items():
        for g in m.glyphs.held.values():
            out.setdefault(g.id, {"id": g.id, "owner": cell, "kind": g.kind, "energy": g.energy})
        for g in m.glyphs.scheduler.glyphs():
            out[g.id] = {"id": g.id, "owner": cell, "kind": g.kind, "energy": g.energy}
    return out


class ClusterEvents:
    """Turns each tick of a served cluster into its typed events (see the module rule).

    Parameters
    ----------
    desk : the glyph desk of a cluster of full cells (None: no glyph events).
    driver : the partifact driver of a ``--roles`` cluster (None: no role, lifecycle or
        proposal events).
    """

    def __init__(self, desk: GlyphDesk | None, driver: ConsensusDriver | None) -> None:
        self.desk, self.driver = desk, driver
        self._glyphs: dict[str, dict[str, Any]] = {} if desk is None else _glyph_state(desk)
        self._fires: dict[str, int] = self._fire_counts()
        self._roles: dict[str, str | None] = {}
        self._stage: str | None = None
        self._met: dict[str, bool] = {}
        self._seen_tick = -1

    def _fire_counts(self) -> dict[str, int]:
        if self.desk is None:
            return {}
        return {c: m.glyphs.counts["fired"] for c, m in self.desk.members.items()}

    def step(self, tick: int) -> list[StreamEvent]:
        """The events of tick ``tick`` (call once per tick, after it ran)."""
        data: list[tuple[EventType, Mapping[str, Any]]] = []
        if self.desk is not None:
            data += self._glyph_events()
        if self.driver is not None and self.driver.history:
            last = self.driver.history[-1]
            if last.tick == tick and last.tick != self._seen_tick:
                self._seen_tick = last.tick
                data += self._role_events(last) + self._proposal_events(last)
        return [StreamEvent(type=t, seq=tick, data=d) for t, d in data]

    def _glyph_events(self) -> list[tuple[EventType, Mapping[str, Any]]]:
        assert self.desk is not None
        now, before = _glyph_state(self.desk), self._glyphs
        out: list[tuple[EventType, Mapping[str, Any]]] = []
        for gid, row in now.items():
            old = before.get(gid)
            if old is None:
                out.append((EventType.GLYPH_SUBMITTED, row))
            elif old["owner"] != row["owner"]:
                moved = {**row, "from": old["owner"], "to": row["owner"]}
                del moved["owner"]
                out.append((EventType.GLYPH_MIGRATED, moved))
        for gid, old in before.items():
            if gid not in now:
                reason = self._reason(gid, old["owner"])
                out.append((EventType.GLYPH_ENDED, {**old, "reason": reason}))
        fires = self._fire_counts()
        by_cell = {c: n - self._fires.get(c, 0) for c, n in fires.items()}
        by_cell = {c: n for c, n in by_cell.items() if n > 0}
        if by_cell:
            summary = {"fires": sum(by_cell.values()), "by_cell": by_cell}
            out.append((EventType.GLYPH_FIRED, summary))
        self._glyphs, self._fires = now, fires
        return out

    def _reason(self, glyph_id: str, owner: str) -> str | None:
        """Why ``glyph_id`` ended: asked of its last known ``owner`` first, then of the other
        cells (it may have moved and ended within one tick); None if no cell remembers it."""
        assert self.desk is not None
        members = self.desk.members
        for name in [owner, *(m for m in members if m != owner)]:
            member = members.get(name)
            ended = None if member is None else member.glyphs.finished.get(glyph_id)
            if ended is not None:
                return str(ended[1])
        return None

    def _role_events(self, tick: PartifactTick) -> list[tuple[EventType, Mapping[str, Any]]]:
        out: list[tuple[EventType, Mapping[str, Any]]] = []
        for cell, (_state, role) in sorted(tick.cells.items()):
            now = None if role is None else role.value
            old = self._roles.get(cell)
            if now == old:
                continue
            if old is None:
                out.append((EventType.ROLE_ASSIGNED, {"cell": cell, "role": now}))
            else:
                out.append((EventType.ROLE_CHANGED, {"cell": cell, "from": old, "to": now}))
            self._roles[cell] = now
        stage = tick.lifecycle.stage.value
        conditions = {c.name: c.to_json() for c in tick.lifecycle.conditions}
        met = {c.name: c.met for c in tick.lifecycle.conditions}
        if stage != self._stage or met != self._met:
            body = {"stage": stage, "previous": self._stage, "conditions": conditions}
            out.append((EventType.LIFECYCLE_CHANGED, body))
            self._stage, self._met = stage, met
        return out

    def _proposal_events(self, tick: PartifactTick) -> list[tuple[EventType, Mapping[str, Any]]]:
        opened: list[tuple[EventType, Mapping[str, Any]]] = []
        decided: list[tuple[EventType, Mapping[str, Any]]] = []
        for name, payload in tick.events:
            kind = _PROPOSAL_TYPES.get(name)
            if kind is EventType.PROPOSAL_OPENED:
                opened.append((kind, dict(payload)))
            elif kind is EventType.PROPOSAL_DECIDED:
                decided.append((kind, dict(payload)))
        votes: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for v in tick.votes:
            votes[str(v["id"])].append(v)
        tallies: list[tuple[EventType, Mapping[str, Any]]] = []
        for pid, cast in votes.items():
            last = cast[-1]
            body = {
                "id": pid,
                "kind": last["kind"],
                "votes": [{"voter": v["voter"], "yes": v["yes"]} for v in cast],
                "yes": last["tally_yes"],
                "no": last["tally_no"],
                "eligible": last["eligible"],
            }
            tallies.append((EventType.PROPOSAL_VOTE, body))
        return opened + tallies + decided
