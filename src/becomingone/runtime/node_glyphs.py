"""Glyphs on a node process: ownership on a compare-and-set record store, migration over NATS.

Rule: glue only, like :mod:`becomingone.runtime.glyph_migrate` (the in-process driver of the
same protocol). The states, the packet, the record values and recovery are
:mod:`becomingone.cluster`'s; this module performs their effects on one node: its
:class:`~becomingone.runtime.cell_glyphs.CellGlyphs`, its chain and hooks, a
:class:`~becomingone.memory.protocols.CasRecord` (the cluster's JetStream KV bucket
``glyphs_<cluster>``, one key ``glyph.<id>`` per glyph) and its bus.

- **Cycles shared by processes.** A node's scheduler advances to the position congruent to
  Θ_local mod 1 nearest to t·f₀ − a (t the wall clock, f₀ = 1 Hz, a the cluster's cycle
  anchor): a pure function of (wall time, phase), so locked nodes number each cycle alike and
  a restarted node numbers cycles as before. The anchor a is the locked cluster's phase offset
  (t·f₀ − Θ) mod 1, written once to the key ``cycle.anchor`` by the first node that sees the
  cluster locked (C > 0.95, stable); every node reads it. It puts the numbering's rounding
  boundary half a cycle away from the lock phase, where jitter cannot flip it. Before it
  exists a = 0 (the switch may renumber once, at the cluster's first lock).
- **Fire log.** Every firing is entered in the node's
  :class:`~becomingone.runtime.fire_log.FireLog` (SQLite in the data dir, unique key (glyph,
  cycle)) and committed *before* its handler runs; a key already there is not run and counts
  as a double fire. The logs of all nodes together are the cross-process proof.
- **Records.** A submitted glyph's record is created owned by this node (an id any node
  already has is refused: the key exists); an ended glyph's record is deleted. Every
  ``refresh`` seconds the owner writes its glyphs' current state (energy, lifetime, measures,
  last fired cycle) into their records, at most :data:`REFRESH_BATCH` a time, in turn, so a
  restart resumes from at most that much before the crash.
- **Migration.** Subject ``glyph.<cluster>.<node>``; messages ``O`` + signed packet (offer),
  ``A`` + id (the target committed and runs it), ``N`` + id (the target refused it). Source:
  offer (CAS to ``offered``, hold, witness, send). Target: accept (``before_glyph.migrate``
  hooks may veto; the packet verified against the record read from the store), commit (CAS
  owned by the target, epoch + 1: the one linearization point), run (schedule it, not again
  in the later of the record's last fired cycle and its own fire log's), then ``A``. Source
  on ``A``: drop. On ``N``: abort (CAS back, schedule again). An offer unanswered for
  ``offer_timeout`` seconds is settled from the record alone (:func:`recover`): withdrawn if
  still open, dropped if the target committed — exactly one of the two CAS writes wins.
- **Restart.** A node starts by reading every record: what it owns it schedules (an offer of
  its own still open is withdrawn first), not again in the later of the record's and its
  fire log's last cycle; it rewrites each record it owns first (a takeover racing the start
  then loses its CAS, or wins it and the node leaves the glyph). What another node owns now
  (taken over while it was down) it leaves.
- **Takeover** (:mod:`becomingone.cluster.takeover`). While some expected peer has been
  silent past the peer timeout, every ``scan`` seconds the node reads the records and watches
  those the silent peers own; one whose owner has been silent for ``takeover`` seconds and
  that has stayed at its revision as long is taken by the least-loaded live node (CAS owned,
  epoch + 1, at the revision watched; witnessed ``glyph.takeover``). The write-back doubles
  as the owner's lease: a node whose last write-back round is older than ``takeover / 2``
  (stalled, or cut off from the store) fires nothing (counted ``fenced``) until a round
  succeeds, and a round that finds one of its glyphs owned by another node at a newer epoch
  drops its copy.

Crash testing: with ``BECOMINGONE_GLYPH_CRASH_FILE`` set to a path, the node reads that file
at each step boundary of a migration (``offer``, ``accept``, ``commit``, ``run``, ``drop``:
after the step's effects) and, if it names that step, deletes it and SIGKILLs itself. Unset
(the default), nothing is read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from becomingone.cluster import (
    DEFAULT_TAKEOVER,
    Deliver,
    Drop,
    Glyph,
    GlyphScheduler,
    Hold,
    Install,
    Migration,
    MigrationEffect,
    MigrationPacket,
    MigrationPolicy,
    MigrationVerifier,
    Notify,
    OwnerRecord,
    OwnerState,
    RecordWatch,
    Witness,
    WriteRecord,
    glyph_field,
    record_key,
    recover,
    should_take,
    takeover,
)
from becomingone.errors import CasConflict, InputError, ProtocolError, StorageError
from becomingone.events import HookEvent
from becomingone.memory.protocols import Versioned
from becomingone.runtime.cell_member import CellMember
from becomingone.runtime.fire_log import FireLog
from becomingone.runtime.glyph_desk import GlyphExists
from becomingone.runtime.glyph_migrate import perform_effects
from becomingone.sync.cps import PhaseSupervisor
from becomingone.transport.base import Bus, Subscription
from becomingone.witnessing import Level

__all__ = [
    "ANCHOR_KEY",
    "CRASH_ENV",
    "REFRESH_BATCH",
    "GlyphRecords",
    "NodeGlyphs",
    "anchored_position",
    "glyph_bucket",
    "glyph_subject",
]

log = logging.getLogger("becomingone.glyphs")

#: The environment variable naming the crash file (tests only; unset: no crash points).
CRASH_ENV = "BECOMINGONE_GLYPH_CRASH_FILE"
#: The key of the cluster's cycle anchor (JSON ``{"anchor": a}``, written once).
ANCHOR_KEY = "cycle.anchor"
#: C over the phases heard above which a node may write the cycle anchor.
ANCHOR_COHERENCE = 0.95
#: Records refreshed at most per refresh round.
REFRESH_BATCH = 64
#: Nominal frequency (cycles/s) the cycle count is anchored to.
F0 = 1.0
_PREFIX = "glyph."


def glyph_bucket(cluster: str) -> str:
    """The KV bucket of a cluster's glyph ownership records."""
    return f"glyphs_{cluster}"


def glyph_subject(cluster: str, node_id: str) -> str:
    """The subject a node receives migration messages on."""
    return f"glyph.{cluster}.{node_id}"


def anchored_position(theta: float, now: float, anchor: float = 0.0) -> float:
    """The unwrapped position (cycles) of phase ``theta`` at wall time ``now``: the value
    congruent to ``theta`` mod 1 nearest to now·f₀ − ``anchor`` (a half cycle ahead is
    rounded down).

    >>> anchored_position(0.25, 100.0), anchored_position(0.75, 100.0)
    (100.25, 99.75)
    >>> anchored_position(0.75, 100.0, anchor=0.4)
    99.75
    >>> anchored_position(0.5, 100.0, anchor=0.45), anchored_position(0.5, 100.0, anchor=0.55)
    (99.5, 99.5)
    """
    base = now * F0 - anchor
    return base + ((theta - base + 0.5) % 1.0 - 0.5)


class GlyphRecords(Protocol):
    """A :class:`~becomingone.memory.protocols.CasRecord` that can list its keys (the
    JetStream adapter)."""

    def get(self, key: str) -> Versioned | None: ...

    def create(self, key: str, value: bytes) -> int: ...

    def update(self, key: str, value: bytes, expected_revision: int) -> int: ...

    def delete(self, key: str, expected_revision: int) -> None: ...

    def keys(self) -> list[str]: ...


@dataclass(slots=True)
class _Pending:
    """A migration this node (its source) has offered and not yet settled."""

    migration: Migration
    deadline: float


class NodeGlyphs:
    """The glyphs of one node process, their records and their migrations.

    Parameters
    ----------
    member : CellMember
        The node's full cell (its :class:`CellGlyphs`, chain, key, hooks).
    records : GlyphRecords
        The cluster's ownership records (JetStream KV bucket :func:`glyph_bucket`).
    fire_log : FireLog
        This node's fire log.
    cluster : str
        The cluster's name (subjects).
    policy : MigrationPolicy, optional
        When and where a glyph may move.
    offer_timeout : float
        Seconds an offer may stay unanswered before it is settled from the record.
    quiet : float
        Seconds after a completed migration before this node offers again (the peers' loads
        in SSEP catch up with the move first; a few ticks).
    refresh : float
        Seconds between two rounds that write the owned glyphs' state into their records.
    clock : callable
        Wall time in seconds.
    """

    def __init__(
        self,
        member: CellMember,
        *,
        records: GlyphRecords,
        fire_log: FireLog,
        cluster: str,
        policy: MigrationPolicy | None = None,
        offer_timeout: float = 5.0,
        quiet: float = 0.5,
        refresh: float = 5.0,
        takeover: float = DEFAULT_TAKEOVER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        checked = (("offer_timeout", offer_timeout), ("refresh", refresh), ("takeover", takeover))
        for name, value in checked:
            if not (math.isfinite(value) and value > 0):
                raise InputError(name, f"must be a finite number > 0, got {value}")
        self.member, self.records, self.fire_log = member, records, fire_log
        self.cluster, self.clock = cluster, clock
        self.policy = policy or MigrationPolicy()
        # the write-back is the owner's lease: at least 3 rounds per takeover timeout
        self.offer_timeout, self.quiet = offer_timeout, quiet
        self.refresh = min(refresh, takeover / 3)
        self.takeover, self.scan = takeover, min(1.0, takeover / 4)
        self._watch = RecordWatch()
        self._scan_due = 0.0
        self._started = self._renewed = clock()
        self._lost: set[str] = set()
        self._refresh_due = 0.0
        self.cycle_anchor: float | None = None  # None: not agreed yet (0 is used)
        self._refresh_from = 0
        self.counts: Counter[str] = Counter()
        self.pending: dict[str, _Pending] = {}
        self._inbox: Subscription | None = None
        self._bus: Bus | None = None
        self._quiet_until = 0.0
        crash = os.environ.get(CRASH_ENV)
        self._crash_file = Path(crash) if crash else None

    @property
    def node_id(self) -> str:
        """This node's id."""
        return self.member.node_id

    @property
    def glyphs(self) -> Any:
        """The node's :class:`~becomingone.runtime.cell_glyphs.CellGlyphs`."""
        return self.member.glyphs

    # -- start ---------------------------------------------------------------------------------

    async def start(self, bus: Bus, now: float) -> None:
        """Anchor the scheduler, wire the hooks, subscribe, and take up every glyph the
        records say this node owns (``now``: the node's seconds since start, for records)."""
        g = self.glyphs
        sup = self.member.supervisor
        self._read_anchor()
        g.scheduler = GlyphScheduler(position=self._position(sup.theta), kinds=g.scheduler.kinds)
        g.anchor = self._position
        g.claim = self._claim
        g.on_submit = self._created
        g.on_end = self._ended
        g.fence = self._fenced
        self._bus = bus
        self._inbox = await bus.subscribe(glyph_subject(self.cluster, self.node_id))
        names = self.records.keys()
        for key in names:
            if key.startswith(_PREFIX):
                await self.settle(key[len(_PREFIX) :], now, mine_only=True)
        self._started = self._renewed = self.clock()

    def _position(self, theta: float) -> float:
        return anchored_position(theta, self.clock(), self.cycle_anchor or 0.0)

    def _read_anchor(self) -> None:
        got = self.records.get(ANCHOR_KEY)
        if got is not None:
            self.cycle_anchor = _parse_anchor(got.value)

    def _agree_anchor(self, c_cluster: float, stable: bool) -> None:
        """Once the cluster is locked, write the cycle anchor if nobody has; read it."""
        if c_cluster <= ANCHOR_COHERENCE or not stable:
            return self._read_anchor()
        offset = (self.clock() * F0 - self.member.supervisor.theta) % 1.0
        try:
            self.records.create(ANCHOR_KEY, json.dumps({"anchor": offset}).encode())
            self.cycle_anchor = offset
            log.info("cycle anchor %.4f written", offset)
        except CasConflict:
            self._read_anchor()

    def _fenced(self) -> bool:
        """True while this node's last completed write-back round is older than half the
        takeover timeout: it may have been presumed dead, so it fires nothing."""
        return self.clock() - self._renewed > self.takeover / 2

    def _claim(self, glyph_id: str, cycle: int) -> bool:
        return self.fire_log.claim(glyph_id, cycle, self.clock())

    def _created(self, glyph: Glyph) -> None:
        try:
            self.records.create(record_key(glyph.id), OwnerRecord(glyph=glyph).to_bytes())
        except CasConflict:
            raise GlyphExists(f"glyph {glyph.id!r} already runs in this cluster") from None

    def _ended(self, glyph: Glyph) -> None:
        key = record_key(glyph.id)
        got = self.records.get(key)
        if got is not None and OwnerRecord.from_bytes(got.value).owner == self.node_id:
            try:
                self.records.delete(key, got.revision)
            except CasConflict:
                self.counts["conflicts"] += 1

    # -- each tick -----------------------------------------------------------------------------

    async def step(self, now: float, *, c_cluster: float, stable: bool) -> None:
        """After the node's tick: handle the messages that arrived, settle offers past their
        timeout, then offer one glyph if the policy allows and none is in flight."""
        assert self._inbox is not None, "start() first"
        for data in self._inbox.drain():
            await self._receive(data, now)
        wall = self.clock()
        for glyph_id in [i for i, p in self.pending.items() if wall >= p.deadline]:
            self.counts["timeouts"] += 1
            await self.settle(glyph_id, now)
        if wall >= self._refresh_due:
            self._refresh_due = wall + self.refresh
            self.write_back()
            self._renewed = wall
            for glyph_id in sorted(self._lost):
                log.warning("dropping %s: another node owns it at a newer epoch", glyph_id)
                self.counts["lost"] += 1
                await self.settle(glyph_id, now)
            self._lost.clear()
            if self.cycle_anchor is None:
                self._agree_anchor(c_cluster, stable)
        if wall >= self._scan_due:
            await self.take_over(now)
        if not self.pending and wall >= self._quiet_until:
            await self._plan(now, c_cluster, stable)

    def write_back(self) -> int:
        """Write the current state of up to :data:`REFRESH_BATCH` scheduled glyphs (in turn)
        into their records where this node owns them (always: a write renews the lease a
        takeover watches); returns how many were written. A glyph whose record another node
        owns at a newer epoch is noted for dropping."""
        sched = self.glyphs.scheduler
        glyphs = sorted(sched.glyphs(), key=lambda g: g.id)
        if not glyphs:
            return 0
        start = self._refresh_from % len(glyphs)
        batch = (glyphs[start:] + glyphs[:start])[:REFRESH_BATCH]
        self._refresh_from = start + len(batch)
        written = 0
        for glyph in batch:
            got = self.records.get(record_key(glyph.id))
            if got is None:
                continue
            rec = OwnerRecord.from_bytes(got.value)
            if rec.owner != self.node_id and rec.epoch > glyph.epoch:
                self._lost.add(glyph.id)
            if rec.owner != self.node_id or rec.state is not OwnerState.OWNED:
                continue
            value = OwnerRecord(glyph=glyph, fired_cycle=sched.last_cycle(glyph.id)).to_bytes()
            try:
                self.records.update(record_key(glyph.id), value, got.revision)
                written += 1
            except CasConflict:
                self.counts["conflicts"] += 1
        self.counts["refreshed"] += written
        return written

    async def take_over(self, now: float) -> int:
        """While an expected peer is silent past the peer timeout: read the records, watch
        the silent peers', take over those :func:`should_take` says this node takes; returns
        how many it took. The next scan is due in ``scan`` seconds, or in ``refresh`` when the
        silent peers own no record (a roster member that never runs costs a read of the
        records every few seconds, not every second)."""
        sup = self.member.supervisor
        stability = sup.stability
        wall = self.clock()
        self._scan_due = wall + self.scan
        heard = dict(stability.state().last_heard)
        silent = {p: wall - heard.get(p, self._started) for p in stability.peers}
        silent = {p: s for p, s in silent.items() if s > stability.timeout}
        if not silent:
            self._watch.keep(())
            return 0
        loads = {n: e for n, e in _live_loads(sup, wall).items() if n not in silent}
        loads[self.node_id] = self.glyphs.scheduler.node_energy()
        kinds = self.glyphs.scheduler.kinds
        watched, took, names = [], 0, self.records.keys()
        for key in names:
            got = self.records.get(key) if key.startswith(_PREFIX) else None
            if got is None:
                continue
            try:
                record = OwnerRecord.from_bytes(got.value)
            except InputError:
                self.counts["bad_records"] += 1  # not ours to judge (or take) — never a crash
                continue
            if record.owner not in silent:
                continue
            watched.append(key)
            unchanged = self._watch.observe(key, got.revision, wall)
            if kinds is not None and record.glyph.kind not in kinds:
                continue  # this node cannot run it; a node that can will take it
            if not should_take(
                record,
                node_id=self.node_id,
                silent_for=silent[record.owner],
                unchanged_for=unchanged,
                loads=loads,
                timeout=self.takeover,
            ):
                continue
            if await self._take(record, got.revision, silent[record.owner], now):
                loads[self.node_id] += record.glyph.energy
                took += 1
        self._watch.keep(watched)
        if not watched:
            self._scan_due = wall + self.refresh
        return took

    async def _take(self, record: OwnerRecord, revision: int, silent: float, now: float) -> bool:
        for effect in takeover(record, revision, self.node_id, silent_for=silent):
            if isinstance(effect, WriteRecord):
                try:
                    self.records.update(effect.key, effect.value, effect.expected_revision)
                except CasConflict:
                    self.counts["conflicts"] += 1  # another node took it first
                    return False
            else:
                await self._apply(effect, None, now)
        self.counts["takeovers"] += 1
        log.warning(
            "took %s over from %s (silent %.1f s, epoch %d)",
            record.glyph.id,
            record.owner,
            silent,
            record.epoch + 1,
        )
        return True

    async def _plan(self, now: float, c: float, stable: bool) -> None:
        sup = self.member.supervisor
        peers = _live_loads(sup, self.clock())
        sched = self.glyphs.scheduler
        own = sched.node_energy()
        for glyph in sorted(sched.glyphs(), key=lambda g: (-g.energy, g.id)):
            if sched.busy(glyph.id):
                continue
            target = self.policy.target(
                glyph, c_cluster=c, stable=stable, own_load=own, peers=peers
            )
            if target is not None:
                await self.offer(glyph.id, target, now)
                return

    async def offer(self, glyph_id: str, target: str, now: float) -> bool:
        """Offer ``glyph_id`` to ``target`` (the source's step); True iff the offer is out."""
        sched = self.glyphs.scheduler
        key = record_key(glyph_id)
        got = self.records.get(key)
        if got is None:
            revision = self.records.create(key, OwnerRecord(glyph=sched.glyph(glyph_id)).to_bytes())
        else:
            revision = got.revision
            rec = OwnerRecord.from_bytes(got.value)
            if rec.owner != self.node_id or rec.state is not OwnerState.OWNED:
                await self.settle(glyph_id, now)
                return False
        record = OwnerRecord(glyph=sched.glyph(glyph_id), fired_cycle=sched.last_cycle(glyph_id))
        mig = Migration(record=record, revision=revision, target=target)
        if not await self._run(mig, mig.offer(self.member.cell.key), now):
            return False
        self.pending[glyph_id] = _Pending(mig, self.clock() + self.offer_timeout)
        self.counts["offered"] += 1
        log.info("offered %s to %s", glyph_id, target)
        self._crash_point("offer")
        return True

    # -- messages ------------------------------------------------------------------------------

    async def _receive(self, data: bytes, now: float) -> None:
        tag, body = data[:1], data[1:]
        try:
            if tag == b"O":
                await self._accept(body, now)
            elif tag in (b"A", b"N"):
                glyph_id = body.decode("utf-8", "strict")
                if glyph_id in self.pending:
                    if tag == b"N":
                        await self._abort(glyph_id, now)
                    else:
                        await self.settle(glyph_id, now, acked=True)
            else:
                self.counts["rejected_malformed"] += 1
        except (InputError, UnicodeDecodeError):
            self.counts["rejected_malformed"] += 1
        except ProtocolError as exc:
            self.counts[f"rejected_{exc.reason}"] += 1

    async def _accept(self, data: bytes, now: float) -> None:
        """The target's steps: accept, commit, run, then tell the source."""
        packet, _, _ = MigrationPacket.decode(data)
        key = record_key(packet.glyph.id)
        got = self.records.get(key)
        record = None if got is None else OwnerRecord.from_bytes(got.value)
        verifier = MigrationVerifier(
            receiver=self.node_id, keys=dict(self.member.supervisor.roster.items())
        )
        try:
            if got is None or record is None or record.state is not OwnerState.OFFERED:
                verifier.verify(data, record)  # counts and names the reason
                raise ProtocolError("not_offered", f"{packet.glyph.id!r} is not offered")
            mig = Migration.offered(record, got.revision)
            facts = {"glyph": mig.glyph.id, "source": mig.source, "epoch": mig.glyph.epoch}
            vote = await self.member.cell.hooks.fire(HookEvent.GLYPH_MIGRATE, now, facts)
            await self._failures(vote.failures, now)
            if vote.veto is not None:
                raise ProtocolError("vetoed", vote.veto.reason)
            effects = mig.accept(data, verifier, record)
        except ProtocolError as exc:
            self.counts[f"rejected_{exc.reason}"] += 1
            log.warning("refused %s from %s: %s", packet.glyph.id, packet.source, exc)
            if record is not None and record.target == self.node_id:
                await self._send(packet.source, b"N" + packet.glyph.id.encode())
            return
        await self._run(mig, effects, now)
        self._crash_point("accept")
        if not await self._run(mig, mig.commit(), now):
            return
        self._crash_point("commit")
        await self._run(mig, mig.run(), now)
        self.counts["accepted"] += 1
        log.info("took %s over from %s", mig.glyph.id, mig.source)
        self._crash_point("run")
        await self._send(mig.source, b"A" + mig.glyph.id.encode())

    async def _abort(self, glyph_id: str, now: float) -> None:
        mig = self.pending.pop(glyph_id).migration
        self.counts["aborted"] += 1
        await self._run(mig, mig.abort("refused"), now)

    async def settle(
        self, glyph_id: str, now: float, *, acked: bool = False, mine_only: bool = False
    ) -> None:
        """Leave exactly one owner of ``glyph_id`` from its record alone (:func:`recover`),
        doing this node's part: withdraw its own open offer, schedule what it owns, drop what
        another node owns. ``mine_only``: only for a record this node owns (at start)."""
        self.pending.pop(glyph_id, None)
        got = self.records.get(record_key(glyph_id))
        if got is None:
            self.glyphs.drop(glyph_id)
            return
        record = OwnerRecord.from_bytes(got.value)
        if mine_only and record.owner != self.node_id:
            return
        if mine_only and record.state is OwnerState.OWNED:
            try:  # claim it anew: a takeover that watched the old revision loses its CAS
                self.records.update(record_key(glyph_id), got.value, got.revision)
            except CasConflict:  # it won first: this node leaves the glyph to the taker
                self.counts["conflicts"] += 1
                return await self.settle(glyph_id, now, mine_only=True)
        holders = [self.node_id] if self.glyphs.holds(glyph_id) else []
        if record.owner != self.node_id and not holders:
            return
        last = self.fire_log.last(glyph_id)
        if acked and record.owner != self.node_id:
            effects: list[MigrationEffect] = [
                Drop(cell=self.node_id, glyph_id=glyph_id),
                Witness(
                    cell=self.node_id,
                    kind="glyph.migrate.drop",
                    payload={"glyph": glyph_id, "target": record.owner, "epoch": record.epoch},
                ),
            ]
            self.counts["migrations"] += 1
            log.info("dropped %s: %s owns it", glyph_id, record.owner)
            self._quiet_until = self.clock() + self.quiet
        else:
            effects = recover(record, got.revision, holders=holders, last_fired=last)
            self.counts["recovered"] += 1
            log.info("settled %s from its record: owner %s", glyph_id, record.owner)
        for effect in effects:
            if effect.cell != self.node_id:
                continue
            if isinstance(effect, WriteRecord):
                try:
                    self.records.update(effect.key, effect.value, effect.expected_revision)
                except CasConflict:
                    self.counts["conflicts"] += 1
                    return await self.settle(glyph_id, now, mine_only=mine_only)
            else:
                await self._apply(effect, None, now)
        if acked:
            self._crash_point("drop")

    # -- effects -------------------------------------------------------------------------------

    async def _run(self, mig: Migration, effects: Iterable[MigrationEffect], now: float) -> bool:
        """Perform this node's ``effects`` in order; a lost CAS stops them and settles."""

        async def lost() -> None:
            self.counts["conflicts"] += 1
            await self.settle(mig.glyph.id, now)

        return await perform_effects(
            mig, effects, self.records, lambda e: self._apply(e, mig, now), lost
        )

    async def _apply(self, effect: MigrationEffect, mig: Migration | None, now: float) -> None:
        g = self.glyphs
        match effect:
            case Hold():
                g.hold(effect.glyph_id)
            case Deliver():
                await self._send(effect.cell, b"O" + effect.data)
            case Install():
                fired = effect.fired_cycle
                last = self.fire_log.last(effect.glyph.id)
                if last is not None:
                    fired = last if fired is None else max(fired, last)
                g.install(effect.glyph, fired)
            case Drop():
                g.drop(effect.glyph_id)
            case Witness():
                payload = dict(effect.payload)
                if effect.kind == "glyph.migrate.run":
                    payload["field"] = glyph_field(g.scheduler.glyphs()).to_json()
                await self.member.cell.witness(Level.MICRO, effect.kind, payload, now)
            case Notify():
                result = await self.member.cell.hooks.fire(
                    HookEvent.GLYPH_MIGRATED, now, effect.payload
                )
                await self._failures(result.failures, now)

    async def _send(self, node_id: str, data: bytes) -> None:
        assert self._bus is not None
        await self._bus.publish(glyph_subject(self.cluster, node_id), data)

    async def _failures(self, failures: Iterable[Any], now: float) -> None:
        for failure in failures:
            log.warning("hook %s on %s failed: %s", failure.hook, failure.event, failure.error)
            await self.member.cell.witness(Level.MICRO, "hook.failed", asdict(failure), now)

    def _crash_point(self, step: str) -> None:
        """Tests: SIGKILL this process at ``step`` if the crash file names it."""
        path = self._crash_file
        if path is None:
            return
        try:
            armed = path.read_text().strip()
        except OSError:
            return
        if armed == step:
            path.unlink(missing_ok=True)
            log.warning("crash point %s: SIGKILL", step)
            os.kill(os.getpid(), signal.SIGKILL)

    async def aclose(self) -> None:
        """Unsubscribe and close the fire log."""
        if self._inbox is not None:
            with contextlib.suppress(Exception):  # the connection may be gone
                await self._inbox.unsubscribe()
        self.fire_log.close()

    def row(self) -> Mapping[str, int]:
        """Counts: offered, accepted, migrations, aborted, timeouts, recovered, conflicts,
        rejections by reason."""
        return dict(sorted(self.counts.items()))


def _parse_anchor(data: bytes) -> float:
    """The anchor in [0, 1) of a ``cycle.anchor`` value; ``StorageError`` for anything else."""
    try:
        value = float(json.loads(data)["anchor"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"{ANCHOR_KEY}: not a cycle anchor: {exc}") from None
    if not 0.0 <= value < 1.0:
        raise StorageError(f"{ANCHOR_KEY}: anchor {value} not in [0, 1)")
    return value


def _live_loads(sup: PhaseSupervisor, now: float) -> dict[str, float]:
    """The glyph load each peer reported, for the peers heard within the timeout."""
    stability = sup.stability
    recent = {p for p, at in stability.state().last_heard if now - at <= stability.timeout}
    return {n: load.node_energy for n, load in sup.peer_loads.items() if n in recent}
