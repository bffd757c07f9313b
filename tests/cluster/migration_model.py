"""A plain in-process model of cells that run a glyph migration's effects against a real
compare-and-set record: used by the migration tests to inject faults between any two effects.

A model cell schedules glyphs (with the last cycle each fired in), holds glyphs in flight, and
keeps a witness log that survives a crash (it is on disk); a crash forgets everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from becomingone.cluster import (
    Deliver,
    Drop,
    Glyph,
    Hold,
    Install,
    Migration,
    MigrationEffect,
    MigrationVerifier,
    Notify,
    OwnerRecord,
    Witness,
    WriteRecord,
    evolve,
    record_key,
    recover,
)
from becomingone.errors import CasConflict
from becomingone.keys import NodeKey
from becomingone.memory.inmemory import MemoryCasRecord


@dataclass
class ModelCell:
    """One cell: scheduled glyphs → last fired cycle, glyphs held in flight, the witness log."""

    name: str
    scheduled: dict[str, tuple[Glyph, int | None]] = field(default_factory=dict)
    held: dict[str, Glyph] = field(default_factory=dict)
    witness: list[tuple[str, str, int | None]] = field(default_factory=list)
    inbox: list[bytes] = field(default_factory=list)
    #: the glyph each inbox packet belongs to (a real target hands a packet to the migration
    #: of its glyph; with several migrations to one cell in flight, order alone is not enough)
    addressed: list[str | None] = field(default_factory=list)
    notified: int = 0

    def take(self, glyph_id: str) -> bytes:
        """The newest packet delivered for ``glyph_id`` (else the newest one of any glyph)."""
        mine = [i for i, gid in enumerate(self.addressed) if gid == glyph_id]
        at = mine[-1] if mine else len(self.inbox) - 1
        del self.addressed[at]
        return self.inbox.pop(at)

    def crash(self) -> None:
        """Lose the process state; the witness log stays."""
        self.scheduled.clear()
        self.held.clear()
        self.inbox.clear()
        self.addressed.clear()

    def fire(self, cycle: int, fire_log: list[tuple[str, int]]) -> None:
        """Fire every scheduled glyph once in ``cycle`` (not again if it already did)."""
        for gid, (glyph, last) in sorted(self.scheduled.items()):
            if last is None or last < cycle:
                fire_log.append((gid, cycle))
                self.witness.append(("fired", gid, cycle))
                self.scheduled[gid] = (glyph, cycle)

    def holds(self, gid: str) -> bool:
        """Scheduled or held in flight."""
        return gid in self.scheduled or gid in self.held


class Model:
    """Cells, the record store, and an executor of migration effects."""

    def __init__(self, names: list[str]) -> None:
        self.cells = {n: ModelCell(n) for n in names}
        self.store = MemoryCasRecord()
        self.fire_log: list[tuple[str, int]] = []
        self.glyphs: set[str] = set()

    def submit(self, glyph: Glyph, owner: str) -> None:
        """Own ``glyph`` on ``owner`` and create its record."""
        owned = evolve(glyph, owner=owner)
        self.store.create(record_key(glyph.id), OwnerRecord(glyph=owned).to_bytes())
        self.cells[owner].scheduled[glyph.id] = (owned, None)
        self.glyphs.add(glyph.id)

    def read(self, gid: str) -> tuple[OwnerRecord, int]:
        """The record of ``gid`` and its revision."""
        got = self.store.get(record_key(gid))
        assert got is not None
        return OwnerRecord.from_bytes(got.value), got.revision

    def plan(self, gid: str, target: str) -> Migration:
        """A migration of ``gid`` to ``target`` from its record as read now; the record carries
        the source's last fired cycle (what the source knows when it offers)."""
        record, revision = self.read(gid)
        _, last = self.cells[record.owner].scheduled[gid]
        record = OwnerRecord(glyph=record.glyph, fired_cycle=last)
        return Migration(record=record, revision=revision, target=target)

    def apply(self, effect: MigrationEffect, migration: Migration | None = None) -> bool:
        """Perform one effect; ``False`` if a record write lost its compare-and-set."""
        match effect:
            case WriteRecord():
                try:
                    rev = self.store.update(effect.key, effect.value, effect.expected_revision)
                except CasConflict:
                    return False
                if migration is not None:
                    migration.recorded(rev)
            case Hold():
                glyph, _ = self.cells[effect.cell].scheduled.pop(effect.glyph_id)
                self.cells[effect.cell].held[effect.glyph_id] = glyph
            case Deliver():
                self.cells[effect.cell].inbox.append(effect.data)
                self.cells[effect.cell].addressed.append(
                    None if migration is None else migration.glyph.id
                )
            case Install():
                cell = self.cells[effect.cell]
                if effect.glyph.id not in cell.scheduled:
                    cell.held.pop(effect.glyph.id, None)
                    cell.scheduled[effect.glyph.id] = (effect.glyph, effect.fired_cycle)
            case Drop():
                cell = self.cells[effect.cell]
                cell.scheduled.pop(effect.glyph_id, None)
                cell.held.pop(effect.glyph_id, None)
            case Witness():
                self.cells[effect.cell].witness.append((effect.kind, effect.payload["glyph"], None))
            case Notify():
                self.cells[effect.cell].notified += 1
        return True

    def last_fired(self, gid: str) -> int | None:
        """The latest cycle any witness log shows ``gid`` fired in."""
        cycles = [
            c
            for cell in self.cells.values()
            for k, g, c in cell.witness
            if k == "fired" and g == gid and c is not None
        ]
        return max(cycles) if cycles else None

    def recover_all(self) -> None:
        """Restart: every glyph's record decides its one owner."""
        for gid in sorted(self.glyphs):
            record, revision = self.read(gid)
            holders = [n for n, c in self.cells.items() if c.holds(gid)]
            for effect in recover(
                record, revision, holders=holders, last_fired=self.last_fired(gid)
            ):
                assert self.apply(effect)

    def steps(
        self, migration: Migration, verifier: MigrationVerifier
    ) -> list[Callable[[], list[MigrationEffect]]]:
        """The protocol's steps (offer, accept, commit, run, drop) as thunks returning effects."""
        target = self.cells[migration.target]

        def accept() -> list[MigrationEffect]:
            record, _ = self.read(migration.glyph.id)
            return migration.accept(target.take(migration.glyph.id), verifier, record)

        def offer() -> list[MigrationEffect]:
            return migration.offer(KEYS[migration.source])

        return [offer, accept, migration.commit, migration.run, migration.drop]

    def check(self) -> None:
        """Exactly one owner per glyph (the record's, state owned), none lost, none held, and
        no (glyph, cycle) fired twice."""
        for gid in sorted(self.glyphs):
            record, _ = self.read(gid)
            owners = [n for n, c in self.cells.items() if gid in c.scheduled]
            assert owners == [record.owner], (gid, owners, record)
            assert record.state.value == "owned"
            assert not any(gid in c.held for c in self.cells.values())
        assert len(self.fire_log) == len(set(self.fire_log)), self.fire_log


NAMES = ["cell-a", "cell-b", "cell-c"]
KEYS = {n: NodeKey.from_seed(bytes([i + 1]) * 32) for i, n in enumerate(NAMES)}
ROSTER = {n: k.public_bytes for n, k in KEYS.items()}
