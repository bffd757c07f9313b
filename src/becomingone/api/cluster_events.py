"""The typed events of a served cluster's tick: glyphs, roles, lifecycle and proposals.

Rule: after each tick :class:`ClusterEvents` compares what the running cluster holds now with
what it held at the previous tick and returns the events of the difference, each with the
tick as its ``seq`` — it reads a :class:`GlyphSource` (an in-process cluster's glyph desk,
:class:`DeskGlyphs`, or the glyph lists in the statuses of node processes,
:class:`HeardGlyphs`: one diff for both) and the partifact ticks of a driver it has not read
yet (:class:`PartifactSource`: the in-process driver's, numbered as the cluster's ticks; a
``node --roles`` process's :class:`~becomingone.runtime.node_partifacts.NodePartifacts`,
which ticks on its own beside the observer: every partifact tick since the last served one,
in order; a witness's :class:`HeardRoles`, from the partifact rows of the statuses it
hears), never changes them, and does no I/O.

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

from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from becomingone.api.events import EventType, StreamEvent
from becomingone.cluster import LifecycleReport, LifecycleStage, PartifactState, Role
from becomingone.runtime.glyph_desk import GlyphDesk
from becomingone.runtime.node import NodeStatus
from becomingone.runtime.partifacts import PartifactTick

__all__ = [
    "ClusterEvents",
    "DeskGlyphs",
    "GlyphSource",
    "HeardGlyphs",
    "HeardRoles",
    "PartifactSource",
]

#: Partifact ticks a :class:`HeardRoles` keeps.
HEARD_TICKS = 64

_PROPOSAL_TYPES = {
    "proposal.opened": EventType.PROPOSAL_OPENED,
    "proposal.decided": EventType.PROPOSAL_DECIDED,
}


class GlyphSource(Protocol):
    """Where :class:`ClusterEvents` reads a cluster's glyphs: each glyph's owner now, each
    cell's runs so far, and why a glyph ended (the in-process desk: :class:`DeskGlyphs`; the
    statuses of node processes: :class:`HeardGlyphs`)."""

    def state(self) -> dict[str, dict[str, Any]]:
        """``{id: {"id", "owner", "kind", "energy"}}`` of every glyph now."""
        ...

    def fires(self) -> dict[str, int]:
        """Runs so far by cell."""
        ...

    def reason(self, glyph_id: str, owner: str) -> str | None:
        """Why ``glyph_id`` ended, asked of its last ``owner`` first (None: nobody knows)."""
        ...


def _row(gid: str, owner: str, kind: str, energy: float) -> dict[str, Any]:
    return {"id": gid, "owner": owner, "kind": kind, "energy": energy}


class DeskGlyphs:
    """The glyphs of an in-process cluster, read from its :class:`GlyphDesk`."""

    def __init__(self, desk: GlyphDesk) -> None:
        self.desk = desk

    def state(self) -> dict[str, dict[str, Any]]:
        """A scheduled copy wins over a held one (a migration's source holds it until the
        target has installed it)."""
        out: dict[str, dict[str, Any]] = {}
        for cell, m in self.desk.members.items():
            for g in m.glyphs.held.values():
                out.setdefault(g.id, _row(g.id, cell, g.kind, g.energy))
            for g in m.glyphs.scheduler.glyphs():
                out[g.id] = _row(g.id, cell, g.kind, g.energy)
        return out

    def fires(self) -> dict[str, int]:
        """Each cell's ``fired`` count."""
        return {c: m.glyphs.counts["fired"] for c, m in self.desk.members.items()}

    def reason(self, glyph_id: str, owner: str) -> str | None:
        """From the cells' ``finished`` glyphs (it may have moved and ended within a tick)."""
        members = self.desk.members
        for name in [owner, *(m for m in members if m != owner)]:
            member = members.get(name)
            ended = None if member is None else member.glyphs.finished.get(glyph_id)
            if ended is not None:
                return str(ended[1])
        return None


class HeardGlyphs:
    """The glyphs of a cluster of node processes, from the ``glyphs`` rows of the statuses an
    observer hears (:mod:`becomingone.runtime.status_glyphs`); :meth:`update` with each tick's
    statuses before the events are asked for.

    A node not heard in a tick keeps its last row (a silent node's glyphs stay where they
    were last seen, rather than ending). A node listing only its first ids (``more`` > 0) keeps
    the glyphs it owned before and no longer lists, unless another node lists them: they are
    beyond its list, not ended; a glyph beyond every list is first seen when it enters one.
    """

    def __init__(self) -> None:
        self.rows: dict[str, Mapping[str, Any]] = {}
        self._state: dict[str, dict[str, Any]] = {}

    def update(self, statuses: Iterable[NodeStatus]) -> None:
        """Take the newest glyph rows of ``statuses`` (rows without a list are ignored)."""
        for st in statuses:
            if st.glyphs is not None and "list" in st.glyphs:
                self.rows[st.node] = st.glyphs
        before, out = self._state, {}
        for node, row in self.rows.items():
            for gid, _epoch, kind, energy, held in row["list"]:
                if not held or gid not in out:
                    out[gid] = _row(gid, node, kind, energy)
        for gid, old in before.items():
            last = self.rows.get(old["owner"])
            if gid not in out and last is not None and last["more"] > 0:
                out[gid] = old
        self._state = out

    def state(self) -> dict[str, dict[str, Any]]:
        """A scheduled copy wins over a held one, as in-process."""
        return dict(self._state)

    def fires(self) -> dict[str, int]:
        """Each node's ``fires`` count (a restarted node counts from 0 again)."""
        return {node: int(row["fires"]) for node, row in self.rows.items()}

    def reason(self, glyph_id: str, owner: str) -> str | None:
        """From the nodes' ``gone`` lists (the newest few ended glyphs of each)."""
        for node in [owner, *(n for n in self.rows if n != owner)]:
            row = self.rows.get(node)
            for gid, why in [] if row is None else row["gone"]:
                if gid == glyph_id:
                    return str(why)
        return None


class PartifactSource(Protocol):
    """Where :class:`ClusterEvents` reads a cluster's partifact ticks: a
    :class:`~becomingone.runtime.proposal_desk.ConsensusDriver` or :class:`HeardRoles`."""

    @property
    def history(self) -> Sequence[PartifactTick]:
        """The last partifact ticks, numbered upwards, newest last."""
        ...


class HeardRoles:
    """The roles and lifecycle of a cluster of ``node --roles`` processes as an observer
    without a partifact view of its own (a witness node) knows them: the ``partifacts`` rows of
    the statuses it hears (:func:`~becomingone.runtime.node.partifact_row`); :meth:`update`
    with each tick's statuses.

    Each tick's :class:`PartifactTick` has every heard node's own state and role, and the
    lifecycle stage of the view of the Genesis most rows name (else the stage most rows
    give). A status carries no lifecycle conditions, votes or proposals, so the ticks have
    none: a witness shows ``role.*`` and ``lifecycle.changed`` (with no conditions), never
    ``proposal.*`` (it holds no key of the roster and reads no consensus log).
    """

    def __init__(self) -> None:
        self.history: deque[PartifactTick] = deque(maxlen=HEARD_TICKS)
        self._stage: LifecycleStage | None = None

    def update(self, statuses: Iterable[NodeStatus], now: float) -> None:
        """A partifact tick of the rows in ``statuses`` (none without a row)."""
        rows = {st.node: st.partifacts for st in statuses if st.partifacts is not None}
        if not rows:
            return
        geneses = Counter(r["genesis"] for r in rows.values() if r["genesis"] is not None)
        genesis = geneses.most_common(1)[0][0] if geneses else None
        stages = Counter(r["lifecycle"] for r in rows.values())
        stage = LifecycleStage(
            rows[genesis]["lifecycle"] if genesis in rows else stages.most_common(1)[0][0]
        )
        previous = stage if self._stage is None else self._stage
        self._stage = stage
        cells = {
            node: (PartifactState(r["state"]), None if r["role"] is None else Role(r["role"]))
            for node, r in rows.items()
        }
        tick = self.history[-1].tick + 1 if self.history else 0
        life = LifecycleReport(stage=stage, previous=previous, conditions=())
        self.history.append(PartifactTick(tick=tick, time=now, lifecycle=life, cells=cells))


class ClusterEvents:
    """Turns each tick of a served cluster into its typed events (see the module rule).

    Parameters
    ----------
    glyphs : where the cluster's glyphs are read (None: no glyph events).
    driver : the partifact driver of a ``--roles`` cluster, or what an observer hears of
        one (None: no role, lifecycle or proposal events).
    """

    def __init__(self, glyphs: GlyphSource | None, driver: PartifactSource | None) -> None:
        self.glyphs, self.driver = glyphs, driver
        self._glyphs: dict[str, dict[str, Any]] = {} if glyphs is None else glyphs.state()
        self._fires: dict[str, int] = {} if glyphs is None else glyphs.fires()
        self._roles: dict[str, str | None] = {}
        self._stage: str | None = None
        self._met: dict[str, bool] = {}
        self._seen_tick = -1

    def step(self, tick: int) -> list[StreamEvent]:
        """The events of tick ``tick`` (call once per tick, after it ran)."""
        data: list[tuple[EventType, Mapping[str, Any]]] = []
        if self.glyphs is not None:
            data += self._glyph_events(self.glyphs)
        if self.driver is not None:
            for last in [t for t in self.driver.history if t.tick > self._seen_tick]:
                self._seen_tick = last.tick
                data += self._role_events(last) + self._proposal_events(last)
        return [StreamEvent(type=t, seq=tick, data=d) for t, d in data]

    def _glyph_events(self, glyphs: GlyphSource) -> list[tuple[EventType, Mapping[str, Any]]]:
        now, before = glyphs.state(), self._glyphs
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
                reason = glyphs.reason(gid, old["owner"])
                out.append((EventType.GLYPH_ENDED, {**old, "reason": reason}))
        fires = glyphs.fires()
        by_cell = {c: n - self._fires.get(c, 0) for c, n in fires.items()}
        by_cell = {c: n for c, n in by_cell.items() if n > 0}
        if by_cell:
            summary = {"fires": sum(by_cell.values()), "by_cell": by_cell}
            out.append((EventType.GLYPH_FIRED, summary))
        self._glyphs, self._fires = now, fires
        return out

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
