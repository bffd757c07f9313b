"""The cluster an API app serves: a cluster's tick reports as frames.

Rule: a running cluster hands every tick's :class:`~becomingone.runtime.TickReport` and its
members to :meth:`ServedCluster.record` (from the driver's ``on_tick``), or — a cluster of
node processes seen by a :class:`~becomingone.runtime.observer.ClusterObserver` — the report
and the node statuses it measured to :meth:`ServedCluster.record_heard`; this module turns
them into one JSON-ready *frame* of the same schema — the cluster's C, band, T_global and
rejections plus, per cell, its phase θ (cycles), its CPS state and, for a full cell, its
Master/Emissary/Sync |T|² — keeps the newest ``keep`` frames for ``GET /cluster/history`` and
for resuming clients, and offers each frame to the subscribers of the cluster event stream as a
``cluster.tick`` event whose ``seq`` is the tick number, followed by the tick's typed glyph,
role, lifecycle and proposal events (:mod:`becomingone.api.cluster_events`; an observed
cluster's glyph events come from the glyph lists of the statuses heard, not from a desk, and
without a proposal desk — a witness — its role and lifecycle events from their partifact
rows; the newest
:data:`KEEP_EVENTS` kept in memory for resuming clients — the cluster stream has no stored
history). It never drives the cluster and does no I/O.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from becomingone.api.cluster_events import (
    ClusterEvents,
    DeskGlyphs,
    GlyphSource,
    HeardGlyphs,
    HeardRoles,
    PartifactSource,
)
from becomingone.api.events import EventType, StreamEvent, Subscriber
from becomingone.errors import InputError
from becomingone.runtime.cluster import ClusterMember, TickReport
from becomingone.runtime.glyph_desk import GlyphDesk
from becomingone.runtime.node import NodeStatus
from becomingone.runtime.proposal_desk import ProposalDesk

__all__ = ["KEEP_EVENTS", "KEEP_FRAMES", "ServedCluster", "member_row", "status_row"]

#: Frames kept for history and resuming clients (10 minutes at 10 ticks/s).
KEEP_FRAMES = 6_000
#: Typed (glyph, role, lifecycle, proposal) events kept for resuming clients.
KEEP_EVENTS = 20_000


def _finite(x: float) -> float | None:
    return x if x == x and abs(x) != float("inf") else None


def member_row(member: ClusterMember) -> dict[str, Any]:
    """One cell in a frame: name, θ, CPS state and (a full cell) its last decision."""
    snap = member.snapshot()
    row: dict[str, Any] = {
        "name": member.node_id,
        "theta": member.theta,
        "frequency": snap.frequency,
        "phase_error": _finite(snap.last_error),
        "stable": snap.stable,
        "rejected": sum(snap.rejected.values()),
        "t_sync_sq": min(1.0, abs(snap.t_sync) ** 2),
        "master": None,
        "emissary": None,
        "sync": None,
        "outcome": None,
        "collapses": None,
    }
    glyphs = getattr(member, "glyphs", None)
    row["glyphs"] = glyphs.row() if glyphs is not None else None
    status = getattr(member, "status", None)
    if status is not None:
        row.update(
            master=status.master,
            emissary=status.emissary,
            sync=status.sync,
            outcome=status.outcome,
            collapses=status.collapses,
        )
    return row


def _counts(glyphs: Mapping[str, Any]) -> dict[str, Any]:
    """A status's glyph row without its glyph lists (those feed the glyph events and would
    make every frame kilobytes larger): the in-process row's keys."""
    return {k: v for k, v in glyphs.items() if k not in _LISTS}


_LISTS = frozenset({"list", "more", "gone", "migrations"})  # migrations: the node's counters


def status_row(status: NodeStatus, theta: float) -> dict[str, Any]:
    """One node in a frame, from its newest status message: ``theta`` is its phase carried to
    the tick (the observer's); a full node's status carries its Master/Emissary/Sync reading;
    a status has no phase error, and glyphs only from a ``node --glyphs`` node (its counts, as
    an in-process cell's; else null, as for a CPS-only cell)."""
    row: dict[str, Any] = {
        "name": status.node,
        "theta": theta,
        "frequency": status.frequency,
        "phase_error": None,
        "stable": status.stable,
        "rejected": sum(status.rejected.values()),
        "t_sync_sq": min(1.0, abs(status.t_sync) ** 2),
        "master": None,
        "emissary": None,
        "sync": None,
        "outcome": None,
        "collapses": None,
        "glyphs": None if status.glyphs is None else _counts(status.glyphs),
    }
    if status.cell is not None:
        row.update(status.cell.to_json())
    return row


class ServedCluster:
    """What the cluster routes read: a name, a topology, the newest frames, subscribers.

    Parameters
    ----------
    name, topology : the cluster's name and topology (shown as they are).
    threshold : I_c of the cluster collapse (the cells' Sync threshold).
    keep : frames kept (history and resume), at least 1.
    desk : the glyph desk of a cluster of full cells (mounts the glyph routes).
    cells : cells the cluster was started with, the count :meth:`describe` gives before the
        first frame (after it: the cells in the newest frame).
    partifacts : the proposal desk of a ``--roles`` cluster (mounts the roles and proposal
        routes; frames then carry ``partifacts``: lifecycle, conditions, cells, events).
    """

    def __init__(
        self,
        name: str,
        topology: str,
        *,
        threshold: float,
        keep: int = KEEP_FRAMES,
        desk: GlyphDesk | None = None,
        cells: int = 0,
        partifacts: ProposalDesk | None = None,
    ) -> None:
        if keep < 1:
            raise InputError("keep", f"must be at least 1, got {keep}")
        if cells < 0:
            raise InputError("cells", f"must be at least 0, got {cells}")
        self.cells = cells
        self.name = name
        self.topology = topology
        self.threshold = threshold
        self.frames: deque[dict[str, Any]] = deque(maxlen=keep)
        self.subscribers: set[Subscriber] = set()
        self.collapses = 0
        self.ticks_to_band: dict[str, int | None] = {}
        self.desk = desk
        self.partifacts = partifacts
        #: Extra per-tick fields (e.g. the migrator's counts), added to every frame.
        self.extra: Callable[[], Mapping[str, Any]] | None = None
        #: Wall-clock time of the first observed tick (:meth:`record_heard`).
        self.origin: float | None = None
        #: The newest typed events (glyph.*, role.*, lifecycle.*, proposal.*), oldest first.
        self.events: deque[StreamEvent] = deque(maxlen=KEEP_EVENTS)
        #: The tick of the newest typed event no longer kept (-1: none lost).
        self.events_lost_through = -1
        self._source: ClusterEvents | None = None
        #: The glyphs the heard statuses list (:meth:`record_heard`; None before).
        self.heard_glyphs: HeardGlyphs | None = None
        #: The roles the heard statuses give (:meth:`record_heard` without ``partifacts``).
        self.heard_roles: HeardRoles | None = None
        self._framed = -1  # the newest partifact tick a frame carried
        #: The cluster's glyph list for ``GET /cluster/glyphs`` when it is not the desk's
        #: (a node process: every glyph's ownership record; rows as the desk's, plus ``mine``).
        self.listing: Callable[[], list[dict[str, Any]]] | None = None

    def record(self, report: TickReport, members: Sequence[ClusterMember]) -> dict[str, Any]:
        """Make the frame of one tick, keep it and offer it to every subscriber."""
        rejected: Counter[str] = Counter()
        rows = []
        for m in members:
            rows.append(member_row(m))
            rejected.update(m.snapshot().rejected)
        return self.record_rows(report, rows, rejected)

    def record_heard(
        self,
        report: TickReport,
        heard: Sequence[NodeStatus],
        rejected: Mapping[str, int],
    ) -> dict[str, Any]:
        """The frame of one tick of an observed cluster: ``heard`` are the statuses the report
        measured, in the order of ``report.thetas``; ``rejected`` the observer's totals by
        reason (every node ever heard). The report's wall-clock time becomes seconds since the
        first tick recorded, as a frame's ``time`` is."""
        if len(heard) != len(report.thetas):
            raise InputError(
                "heard", f"{len(heard)} statuses for {len(report.thetas)} phases in the report"
            )
        rows = [status_row(s, theta) for s, theta in zip(heard, report.thetas, strict=True)]
        if self.heard_glyphs is None:
            self.heard_glyphs = HeardGlyphs()
        self.heard_glyphs.update(heard)
        if self.partifacts is None:
            if self.heard_roles is None:
                self.heard_roles = HeardRoles()
            self.heard_roles.update(heard, report.time)
        if self.origin is None:
            self.origin = report.time
        report = dataclasses.replace(report, time=report.time - self.origin)
        return self.record_rows(report, rows, rejected)

    def record_rows(
        self,
        report: TickReport,
        rows: Sequence[dict[str, Any]],
        rejected: Mapping[str, int],
    ) -> dict[str, Any]:
        """Make the frame of one tick from its member rows and rejections by reason, keep it
        and offer it to every subscriber."""
        self.collapses += report.cluster_collapse
        band = report.band.value
        self.ticks_to_band.setdefault(band, report.tick)
        frame = {
            **report.to_json(),
            "rejected": sum(rejected.values()),
            "rejected_by_reason": dict(rejected),
            "cluster_collapses": self.collapses,
            "members": list(rows),
            **(self.extra() if self.extra is not None else {}),
        }
        driver = self._partifact_source()
        if driver is not None and driver.history and driver.history[-1].tick > self._framed:
            self._framed = driver.history[-1].tick
            frame["partifacts"] = driver.history[-1].to_json()
        self.frames.append(frame)
        events = [StreamEvent(type=EventType.CLUSTER_TICK, seq=report.tick, data=frame)]
        typed = self._typed(report.tick)
        for event in typed:
            if len(self.events) == self.events.maxlen:
                self.events_lost_through = self.events[0].seq
            self.events.append(event)
        for sub in self.subscribers:
            for event in events + typed:
                sub.offer(event)
        return frame

    def _partifact_source(self) -> PartifactSource | None:
        """The partifact ticks: the proposal desk's driver, else the roles heard (None)."""
        return self.partifacts.driver if self.partifacts is not None else self.heard_roles

    def _typed(self, tick: int) -> list[StreamEvent]:
        """The typed events of ``tick`` (none without glyphs or a proposal desk): glyph events
        from the heard statuses of an observed cluster, else from the glyph desk; role and
        lifecycle events from the partifact driver, else from the roles heard."""
        if self.desk is None and self.partifacts is None and self.heard_glyphs is None:
            return []
        if self._source is None:
            driver = self._partifact_source()
            glyphs: GlyphSource | None = self.heard_glyphs
            if glyphs is None and self.desk is not None:
                glyphs = DeskGlyphs(self.desk)
            self._source = ClusterEvents(glyphs, driver)
        return self._source.step(tick)

    def latest(self) -> dict[str, Any] | None:
        """The newest frame (None before the first tick)."""
        return self.frames[-1] if self.frames else None

    def describe(self) -> dict[str, Any]:
        """Name, topology, cells, I_c, ticks so far and the first tick in each band."""
        last = self.latest()
        return {
            "name": self.name,
            "topology": self.topology,
            "cells": len(last["members"]) if last else self.cells,
            "threshold": self.threshold,
            "ticks": last["tick"] + 1 if last else 0,
            "ticks_to_band": dict(self.ticks_to_band),
        }

    def history(self, since: int, limit: int, every: int) -> list[Mapping[str, Any]]:
        """Cluster-level points (no members) of ticks after ``since``, every ``every``-th,
        at most ``limit``, oldest first."""
        out: list[Mapping[str, Any]] = []
        for frame in self.frames:
            if frame["tick"] <= since or frame["tick"] % every:
                continue
            out.append({k: v for k, v in frame.items() if k != "members"})
            if len(out) >= limit:
                break
        return out

    def replay(
        self, since: int, types: frozenset[EventType] = frozenset(EventType)
    ) -> tuple[list[StreamEvent], bool]:
        """Kept events of ``types`` after tick ``since`` in the order they were sent live
        (per tick the frame, then the typed events), and whether nothing was lost: the oldest
        kept frame is at most ``since + 1`` and no typed event after ``since`` was evicted."""
        frames = [
            StreamEvent(type=EventType.CLUSTER_TICK, seq=f["tick"], data=f)
            for f in self.frames
            if f["tick"] > since
        ]
        if EventType.CLUSTER_TICK not in types:
            frames = []
        typed = [e for e in self.events if e.seq > since and e.type in types]
        merged = sorted(frames + typed, key=lambda e: (e.seq, e.type is not EventType.CLUSTER_TICK))
        complete = (not self.frames or self.frames[0]["tick"] <= since + 1) and (
            self.events_lost_through <= since
        )
        return merged, complete

    def subscribe(
        self, size: int, after: int = -1, types: frozenset[EventType] = frozenset(EventType)
    ) -> Subscriber:
        """A new subscriber to the cluster events of ``types`` with a queue of ``size``."""
        sub = Subscriber(types=types, size=size, after=after)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Stop delivering to ``sub``."""
        self.subscribers.discard(sub)

    def member(self, name: str) -> dict[str, Any] | None:
        """The newest row of cell ``name`` (None if the cluster has no such cell)."""
        last = self.latest()
        rows = last["members"] if last else []
        return next((r for r in rows if r["name"] == name), None)
