"""Glyph migration on the in-process cluster: the driver of :class:`~becomingone.cluster.Migration`.

Rule: glue only. The protocol (states, packet, record values, recovery) is sans-IO in
:mod:`becomingone.cluster`; this module performs its effects on the cells' glyphs, witness
chains and hooks and on one compare-and-set record store (one key per glyph; an in-memory
:class:`~becomingone.memory.MemoryCasRecord` unless given another
:class:`~becomingone.memory.protocols.CasRecord`). After each tick, once the cluster is SHARED,
each cell's glyphs are offered to the least-loaded peer it heard (its supervisor's
:class:`~becomingone.sync.PeerLoad` ``node_energy``) as the policy allows; each migration runs
offer → accept (``before_glyph.migrate`` hooks on the target may veto) → commit → run → drop
within the tick. A lost compare-and-set stops the effects and :func:`~becomingone.cluster.recover`
restores the record's one owner.

Cycle numbers: each cell counts cycles on its own unwrapped Θ_local, so two locked cells can
differ by a whole cycle. The packet and the record carry the source's numbering; a glyph
installed on another cell has its last fired cycle shifted by the whole-cycle difference of
the two cells' positions (they agree mod 1 when locked), so "not again in this cycle" means
the same cluster cycle on both.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from becomingone.cluster import (
    Deliver,
    Drop,
    Hold,
    Install,
    Migration,
    MigrationEffect,
    MigrationPolicy,
    MigrationVerifier,
    Notify,
    OwnerRecord,
    Witness,
    WriteRecord,
    glyph_field,
    record_key,
    recover,
)
from becomingone.core.phase import CoherenceBand
from becomingone.errors import CasConflict, ProtocolError
from becomingone.events import HookEvent
from becomingone.memory.inmemory import MemoryCasRecord
from becomingone.memory.protocols import CasRecord
from becomingone.runtime.cell_member import CellMember
from becomingone.witnessing import Level

__all__ = ["GlyphMigrator", "perform_effects"]

log = logging.getLogger("becomingone.glyphs")


class GlyphMigrator:
    """Moves glyphs between the full cells of one in-process cluster.

    Parameters
    ----------
    members : sequence of CellMember
        The cells (their glyphs, keys, chains and hooks).
    policy : MigrationPolicy, optional
        When and where a glyph may move (default: C > 0.65, energy > 1, band 0.1).
    records : CasRecord, optional
        The ownership records (default: a fresh in-memory store).
    per_tick : int
        At most this many migrations per tick over the cluster (default 8).
    """

    def __init__(
        self,
        members: Sequence[CellMember],
        *,
        policy: MigrationPolicy | None = None,
        records: CasRecord | None = None,
        per_tick: int = 8,
    ) -> None:
        self.members = {m.node_id: m for m in members}
        self.policy = policy or MigrationPolicy()
        self.records: CasRecord = records if records is not None else MemoryCasRecord()
        self.per_tick = per_tick
        roster = {m.node_id: m.cell.key.public_bytes for m in members}
        self.verifiers = {n: MigrationVerifier(receiver=n, keys=roster) for n in self.members}
        self.counts: Counter[str] = Counter()
        self._inbox: dict[str, list[bytes]] = {n: [] for n in self.members}

    # -- when and where ------------------------------------------------------------------------

    async def step(self, c_cluster: float, band: CoherenceBand, now: float) -> int:
        """Run the migrations the policy allows after a tick; returns how many completed."""
        if band is not CoherenceBand.SHARED:
            return 0
        done = 0
        loads = {n: m.glyphs.node_energy() for n, m in self.members.items()}
        for source in sorted(self.members.values(), key=lambda m: (-loads[m.node_id], m.node_id)):
            if done >= self.per_tick:
                break
            done += await self._from(source, c_cluster, loads, now, self.per_tick - done)
        return done

    async def _from(
        self, source: CellMember, c: float, loads: dict[str, float], now: float, budget: int
    ) -> int:
        heard = {
            n: load.node_energy
            for n, load in source.supervisor.peer_loads.items()
            if n in self.members
        }
        stable = source.snapshot().stable
        done = 0
        for glyph in sorted(source.glyphs.scheduler.glyphs(), key=lambda g: (-g.energy, g.id)):
            if done >= budget or source.glyphs.scheduler.busy(glyph.id):
                continue
            peers = {n: max(heard[n], loads[n]) for n in heard}  # what it heard, or moved since
            target = self.policy.target(
                glyph,
                c_cluster=c,
                stable=stable,
                own_load=loads[source.node_id],
                peers=peers,
            )
            if target is None:
                continue
            if await self.migrate(source.node_id, glyph.id, target, now):
                loads[source.node_id] -= glyph.energy
                loads[target] += glyph.energy
                done += 1
        return done

    # -- one migration -------------------------------------------------------------------------

    async def migrate(self, source: str, glyph_id: str, target: str, now: float) -> bool:
        """Move ``glyph_id`` from ``source`` to ``target`` now; True iff it moved."""
        src = self.members[source]
        glyph = src.glyphs.scheduler.glyph(glyph_id)
        revision = self._revision(glyph_id, src)
        record = OwnerRecord(glyph=glyph, fired_cycle=src.glyphs.scheduler.last_cycle(glyph_id))
        mig = Migration(record=record, revision=revision, target=target)
        if not await self._run(mig, mig.offer(src.cell.key), now):
            return False
        if not await self._accept(mig, now):
            return False
        for step in (mig.commit, mig.run, mig.drop):
            if not await self._run(mig, step(), now):
                return False
        self.counts["migrations"] += 1
        return True

    def _revision(self, glyph_id: str, src: CellMember) -> int:
        """The revision of the glyph's record (created, owned by ``src``, on first use)."""
        key = record_key(glyph_id)
        got = self.records.get(key)
        if got is not None:
            return got.revision
        owned = OwnerRecord(glyph=src.glyphs.scheduler.glyph(glyph_id))
        return self.records.create(key, owned.to_bytes())

    async def _accept(self, mig: Migration, now: float) -> bool:
        dst = self.members[mig.target]
        data = self._inbox[mig.target].pop()
        got = self.records.get(mig.key)
        record = None if got is None else OwnerRecord.from_bytes(got.value)
        facts = {"glyph": mig.glyph.id, "source": mig.source, "epoch": mig.glyph.epoch}
        result = await dst.cell.hooks.fire(HookEvent.GLYPH_MIGRATE, now, facts)
        await self._failures(dst, result.failures, now)
        try:
            if result.veto is not None:
                raise ProtocolError("vetoed", result.veto.reason)
            effects = mig.accept(data, self.verifiers[mig.target], record)
        except ProtocolError as exc:
            self.counts[f"rejected_{exc.reason}"] += 1
            await self._run(mig, mig.abort(str(exc.reason)), now)
            return False
        return await self._run(mig, effects, now)

    async def _run(self, mig: Migration, effects: list[MigrationEffect], now: float) -> bool:
        """Perform ``effects`` in order; a lost CAS stops them and recovers the record."""

        async def lost() -> None:
            self.counts["conflicts"] += 1
            await self.recover(mig.glyph.id, now)

        return await perform_effects(
            mig, effects, self.records, lambda e: self._apply(e, mig, now), lost
        )

    async def _apply(self, effect: MigrationEffect, mig: Migration | None, now: float) -> None:
        match effect:
            case Hold():
                self.members[effect.cell].glyphs.hold(effect.glyph_id)
            case Deliver():
                self._inbox[effect.cell].append(effect.data)
            case Install():
                cell = self.members[effect.cell]
                origin = mig.source if mig is not None else effect.glyph.owner
                cell.glyphs.install(effect.glyph, self._shift(effect.fired_cycle, origin, cell))
            case Drop():
                self.members[effect.cell].glyphs.drop(effect.glyph_id)
            case Witness():
                await self._witness(effect.cell, effect.kind, dict(effect.payload), now)
            case Notify():
                cell = self.members[effect.cell]
                result = await cell.cell.hooks.fire(HookEvent.GLYPH_MIGRATED, now, effect.payload)
                await self._failures(cell, result.failures, now)

    def _shift(self, cycle: int | None, origin: str, cell: CellMember) -> int | None:
        """``cycle`` of ``origin``'s numbering in ``cell``'s (the whole-cycle offset)."""
        if cycle is None or origin == cell.node_id or origin not in self.members:
            return cycle
        here = cell.glyphs.scheduler.position
        there = self.members[origin].glyphs.scheduler.position
        return cycle + round(here - there)

    async def _witness(self, cell_id: str, kind: str, payload: dict[str, Any], now: float) -> None:
        cell = self.members[cell_id]
        if kind == "glyph.migrate.run":
            payload["field"] = glyph_field(cell.glyphs.scheduler.glyphs()).to_json()
        await cell.cell.witness(Level.MICRO, kind, payload, now)

    async def _failures(self, member: CellMember, failures: Sequence[Any], now: float) -> None:
        for failure in failures:
            log.warning("hook %s on %s failed: %s", failure.hook, failure.event, failure.error)
            await member.cell.witness(Level.MICRO, "hook.failed", asdict(failure), now)

    async def recover(self, glyph_id: str, now: float) -> None:
        """Restore the one owner of ``glyph_id`` from its record (after a lost CAS)."""
        got = self.records.get(record_key(glyph_id))
        if got is None:
            return
        record = OwnerRecord.from_bytes(got.value)
        holders = [n for n, m in self.members.items() if m.glyphs.holds(glyph_id)]
        self.counts["recovered"] += 1
        for effect in recover(record, got.revision, holders=holders):
            if isinstance(effect, WriteRecord):
                self.records.update(effect.key, effect.value, effect.expected_revision)
            else:
                await self._apply(effect, None, now)

    def row(self) -> Mapping[str, int]:
        """Counts for a ``--json`` row: migrations, rejections by reason, conflicts."""
        return dict(sorted(self.counts.items()))


async def perform_effects(
    mig: Migration,
    effects: Iterable[MigrationEffect],
    records: CasRecord,
    apply: Callable[[MigrationEffect], Awaitable[None]],
    lost: Callable[[], Awaitable[None]],
) -> bool:
    """Perform a migration's ``effects`` in order: each record write through ``records``
    (its new revision handed back to ``mig``), every other effect through ``apply``. A lost
    compare-and-set stops the rest, awaits ``lost`` (the driver's recovery) and returns
    False. One path for the in-process migrator and the node processes."""
    for effect in effects:
        if isinstance(effect, WriteRecord):
            try:
                mig.recorded(records.update(effect.key, effect.value, effect.expected_revision))
            except CasConflict:
                await lost()
                return False
        else:
            await apply(effect)
    return True
