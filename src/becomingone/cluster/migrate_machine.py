"""The migration of one glyph as a state machine, and recovery from its ownership record.

Rule: sans-IO. A :class:`Migration` takes events (offer, accept, commit, run, drop, abort)
and returns effects, each naming the cell that performs it; it reads no clock and touches no
store. Transitions are the table :data:`TRANSITIONS`; any other event raises
:class:`~becomingone.errors.ProtocolError` (``illegal_transition``) and leaves the machine in
``ERROR``. The protocol (DESIGN.md §7)::

    PLANNED ─offer→ OFFERED ─accept→ ACCEPTED ─commit→ COMMITTED ─run→ RUNNING ─drop→ DONE
       └────────────┴──────────────────┴─abort→ ABORTED

- offer (source): write the record ``OFFERED to target`` at the revision read (CAS), then
  hold the glyph (out of the scheduler, so it does not fire while in flight; the record holds
  its state and its last fired cycle), witness, deliver the signed packet.
- accept (target): verify the packet against the record (:class:`MigrationVerifier`), witness.
- commit (target): CAS the record to ``OWNED by target`` with epoch + 1: the one linearization
  point. Before it the source owns the glyph, after it the target does.
- run (target): schedule the glyph (not again in the cycle it last fired in), witness, hook.
- drop (source): forget the held glyph, witness.
- abort (source, before the commit): CAS the record back to ``OWNED by source`` (same epoch)
  and schedule the glyph again.

Executing effects: in order; a :class:`WriteRecord` that loses its compare-and-set stops the
list (nothing after it happens) and the driver calls :func:`recover`. After a crash at any
point, :func:`recover` on the record alone restores exactly one owner: an open offer is
withdrawn (the source owns it, same epoch), the owner schedules the glyph if it lost it (not
again in the last cycle it fired in: the record's or the witness log's, whichever is later)
and every other cell that holds it drops it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from becomingone.cluster.glyph import Glyph, evolve
from becomingone.cluster.migration import (
    MigrationPacket,
    MigrationVerifier,
    OwnerRecord,
    OwnerState,
    record_key,
)
from becomingone.errors import ProtocolError
from becomingone.keys import NodeKey

__all__ = [
    "TRANSITIONS",
    "Deliver",
    "Drop",
    "Hold",
    "Install",
    "Migration",
    "MigrationEffect",
    "MigrationEvent",
    "MigrationState",
    "Notify",
    "Witness",
    "WriteRecord",
    "recover",
]


class MigrationState(enum.StrEnum):
    """Where one migration is."""

    PLANNED = "planned"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    COMMITTED = "committed"
    RUNNING = "running"
    DONE = "done"
    ABORTED = "aborted"
    ERROR = "error"


class MigrationEvent(enum.StrEnum):
    """What can happen to a migration."""

    OFFER = "offer"
    ACCEPT = "accept"
    COMMIT = "commit"
    RUN = "run"
    DROP = "drop"
    ABORT = "abort"


_S, _E = MigrationState, MigrationEvent
#: (state, event) → next state; every other pair is illegal.
TRANSITIONS: dict[tuple[MigrationState, MigrationEvent], MigrationState] = {
    (_S.PLANNED, _E.OFFER): _S.OFFERED,
    (_S.OFFERED, _E.ACCEPT): _S.ACCEPTED,
    (_S.ACCEPTED, _E.COMMIT): _S.COMMITTED,
    (_S.COMMITTED, _E.RUN): _S.RUNNING,
    (_S.RUNNING, _E.DROP): _S.DONE,
    (_S.PLANNED, _E.ABORT): _S.ABORTED,
    (_S.OFFERED, _E.ABORT): _S.ABORTED,
    (_S.ACCEPTED, _E.ABORT): _S.ABORTED,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteRecord:
    """Compare-and-set ``value`` under ``key`` iff its revision is ``expected_revision``."""

    cell: str
    key: str
    value: bytes
    expected_revision: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    """Take ``glyph_id`` out of ``cell``'s scheduler and keep it aside (in flight)."""

    cell: str
    glyph_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliver:
    """Hand the signed migration packet ``data`` to ``cell``."""

    cell: str
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Install:
    """Make sure ``cell`` schedules ``glyph`` (no-op if it does; its held copy if it has one),
    not firing it again in ``fired_cycle``."""

    cell: str
    glyph: Glyph
    fired_cycle: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Drop:
    """``cell`` forgets ``glyph_id`` (held or scheduled): another cell owns it."""

    cell: str
    glyph_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Witness:
    """``cell`` witnesses a MICRO record ``kind`` (``glyph.migrate.*``) with ``payload``."""

    cell: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Notify:
    """``cell`` fires its ``glyph.migrated`` hooks with ``payload``."""

    cell: str
    payload: dict[str, Any] = field(default_factory=dict)


#: Anything a migration returns.
MigrationEffect = WriteRecord | Hold | Deliver | Install | Drop | Witness | Notify


class Migration:
    """One glyph moving from ``source`` to ``target``, from the record read at ``revision``.

    ``record`` is the glyph's ownership record as read (owned by ``source``); the glyph must be
    held by nobody else. Call the events in protocol order; after each :class:`WriteRecord`
    succeeds, report the new revision with :meth:`recorded`.

    Examples
    --------
    >>> from becomingone.keys import NodeKey
    >>> k = NodeKey.from_seed(bytes(32))
    >>> g = Glyph(id="g", kind="probe", energy=5.0, owner="a", epoch=3)
    >>> m = Migration(record=OwnerRecord(glyph=g), revision=7, target="b")
    >>> [type(e).__name__ for e in m.offer(k)], m.state.value
    (['WriteRecord', 'Hold', 'Witness', 'Deliver'], 'offered')
    """

    def __init__(self, *, record: OwnerRecord, revision: int, target: str) -> None:
        if record.state is not OwnerState.OWNED:
            raise ProtocolError("illegal_transition", f"{record.glyph.id!r} is already offered")
        self.glyph = record.glyph
        self.source = record.owner
        self.fired_cycle = record.fired_cycle
        self.packet = MigrationPacket(
            glyph=self.glyph, source=self.source, target=target, fired_cycle=self.fired_cycle
        )
        self.target = target
        self.key = record_key(self.glyph.id)
        self.revision = revision
        self.moved = evolve(self.glyph, owner=target, epoch=self.glyph.epoch + 1)
        self.state = MigrationState.PLANNED
        self.reason = ""

    @classmethod
    def offered(cls, record: OwnerRecord, revision: int) -> Migration:
        """The target's half of a migration in another process: the machine in ``OFFERED``,
        rebuilt from the offered ``record`` read at ``revision`` (the source's offer is the
        write that made it), ready for :meth:`accept`. ``ProtocolError`` for a record that is
        not an open offer.

        >>> g = Glyph(id="g", kind="probe", energy=5.0, owner="a", epoch=3)
        >>> rec = OwnerRecord(glyph=g, state=OwnerState.OFFERED, target="b")
        >>> m = Migration.offered(rec, 8)
        >>> m.state.value, m.source, m.target, m.revision
        ('offered', 'a', 'b', 8)
        """
        if record.state is not OwnerState.OFFERED:
            raise ProtocolError("not_offered", f"{record.glyph.id!r} is not offered")
        owned = OwnerRecord(glyph=record.glyph, fired_cycle=record.fired_cycle)
        mig = cls(record=owned, revision=revision, target=record.target)
        mig.state = MigrationState.OFFERED
        return mig

    def _next(self, event: MigrationEvent) -> MigrationState:
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is None:
            was, self.state = self.state, MigrationState.ERROR
            raise ProtocolError("illegal_transition", f"{event.value} in state {was.value}")
        return nxt

    def _go(self, event: MigrationEvent) -> None:
        self.state = self._next(event)

    def _facts(self, **more: Any) -> dict[str, Any]:
        return {
            "glyph": self.glyph.id,
            "source": self.source,
            "target": self.target,
            "epoch": self.glyph.epoch,
            **more,
        }

    def recorded(self, revision: int) -> None:
        """A :class:`WriteRecord` of this migration succeeded at ``revision``."""
        self.revision = revision

    def offer(self, key: NodeKey) -> list[MigrationEffect]:
        """Source: record the offer, hold the glyph, witness, send the packet signed by ``key``."""
        self._go(MigrationEvent.OFFER)
        offered = OwnerRecord(
            glyph=self.glyph,
            state=OwnerState.OFFERED,
            target=self.target,
            fired_cycle=self.fired_cycle,
        )
        return [
            WriteRecord(
                cell=self.source,
                key=self.key,
                value=offered.to_bytes(),
                expected_revision=self.revision,
            ),
            Hold(cell=self.source, glyph_id=self.glyph.id),
            Witness(cell=self.source, kind="glyph.migrate.offer", payload=self._facts()),
            Deliver(cell=self.target, data=self.packet.sign(key)),
        ]

    def accept(
        self, data: bytes, verifier: MigrationVerifier, record: OwnerRecord | None
    ) -> list[MigrationEffect]:
        """Target: verify ``data`` against the ``record`` it read; a rejection raises
        :class:`~becomingone.errors.ProtocolError` (counted by ``verifier``), then abort."""
        self._next(MigrationEvent.ACCEPT)
        packet = verifier.verify(data, record)
        if packet.glyph.id != self.glyph.id:
            raise ProtocolError("malformed", f"packet for {packet.glyph.id!r}")
        self._go(MigrationEvent.ACCEPT)
        return [Witness(cell=self.target, kind="glyph.migrate.accept", payload=self._facts())]

    def commit(self) -> list[MigrationEffect]:
        """Target: CAS the record to owned by the target at epoch + 1."""
        self._go(MigrationEvent.COMMIT)
        owned = OwnerRecord(glyph=self.moved, fired_cycle=self.fired_cycle)
        return [
            WriteRecord(
                cell=self.target,
                key=self.key,
                value=owned.to_bytes(),
                expected_revision=self.revision,
            ),
            Witness(
                cell=self.target,
                kind="glyph.migrate.commit",
                payload=self._facts(new_epoch=self.moved.epoch),
            ),
        ]

    def run(self) -> list[MigrationEffect]:
        """Target: schedule the glyph, witness, fire ``glyph.migrated``."""
        self._go(MigrationEvent.RUN)
        facts = self._facts(new_epoch=self.moved.epoch, fired_cycle=self.fired_cycle)
        return [
            Install(cell=self.target, glyph=self.moved, fired_cycle=self.fired_cycle),
            Witness(cell=self.target, kind="glyph.migrate.run", payload=facts),
            Notify(cell=self.target, payload=facts),
        ]

    def drop(self) -> list[MigrationEffect]:
        """Source: forget the held glyph, witness."""
        self._go(MigrationEvent.DROP)
        return [
            Drop(cell=self.source, glyph_id=self.glyph.id),
            Witness(cell=self.source, kind="glyph.migrate.drop", payload=self._facts()),
        ]

    def abort(self, reason: str) -> list[MigrationEffect]:
        """Source, before the commit: withdraw the offer (if recorded) and run the glyph again."""
        recorded = self.state is not MigrationState.PLANNED
        self._go(MigrationEvent.ABORT)
        self.reason = reason
        out: list[MigrationEffect] = []
        if recorded:
            back = OwnerRecord(glyph=self.glyph, fired_cycle=self.fired_cycle)
            out.append(
                WriteRecord(
                    cell=self.source,
                    key=self.key,
                    value=back.to_bytes(),
                    expected_revision=self.revision,
                )
            )
            out.append(Install(cell=self.source, glyph=self.glyph, fired_cycle=self.fired_cycle))
        out.append(
            Witness(
                cell=self.source, kind="glyph.migrate.abort", payload=self._facts(reason=reason)
            )
        )
        return out


def recover(
    record: OwnerRecord,
    revision: int,
    *,
    holders: Iterable[str],
    last_fired: int | None = None,
) -> list[MigrationEffect]:
    """Effects that leave exactly one owner of ``record``'s glyph after a crash or a lost CAS.

    ``holders``: the cells that hold the glyph now (scheduled or held in flight);
    ``last_fired``: the latest cycle any witness log shows it fired in (``None``: none).
    An open offer is withdrawn (the source keeps it, same epoch); the owner schedules it and
    every other holder drops it.
    """
    glyph = record.glyph
    out: list[MigrationEffect] = []
    fired = record.fired_cycle
    if last_fired is not None:
        fired = last_fired if fired is None else max(fired, last_fired)
    if record.state is OwnerState.OFFERED:
        back = OwnerRecord(glyph=glyph, fired_cycle=record.fired_cycle)
        out.append(
            WriteRecord(
                cell=glyph.owner,
                key=record_key(glyph.id),
                value=back.to_bytes(),
                expected_revision=revision,
            )
        )
    out.append(Install(cell=glyph.owner, glyph=glyph, fired_cycle=fired))
    dropped = sorted(set(holders) - {glyph.owner})
    out.extend(Drop(cell=cell, glyph_id=glyph.id) for cell in dropped)
    facts = {
        "glyph": glyph.id,
        "owner": glyph.owner,
        "epoch": glyph.epoch,
        "withdrawn": record.state is OwnerState.OFFERED,
        "dropped": dropped,
        "fired_cycle": fired,
    }
    out.append(Witness(cell=glyph.owner, kind="glyph.migrate.recover", payload=facts))
    return out
