"""Glyph migration: the policy and its hysteresis, the signed packet and its counted rejections,
the ownership record, the field fold, the state machine, and crash safety with a fault injected
between every two effects of the protocol (exactly one owner, no glyph lost, no double fire)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from becomingone.cluster import (
    TRANSITIONS,
    Glyph,
    GlyphField,
    Migration,
    MigrationEffect,
    MigrationPacket,
    MigrationPolicy,
    MigrationReject,
    MigrationState,
    MigrationVerifier,
    OwnerRecord,
    OwnerState,
    glyph_field,
)
from becomingone.errors import InputError, ProtocolError
from becomingone.keys import NodeKey
from tests.cluster.migration_model import KEYS, NAMES, ROSTER, Model

A, B, C = NAMES


def glyph(gid: str = "g1", **kw: object) -> Glyph:
    """A probe glyph with energy 10."""
    args: dict[str, object] = {"energy": 10.0, "lifetime": 100, "theta": 0.25, **kw}
    return Glyph(id=gid, kind="probe", **args)  # type: ignore[arg-type]


def model() -> Model:
    """Three cells; g1 on A, g2 on B; both fired in cycle 0."""
    m = Model(NAMES)
    m.submit(glyph("g1"), A)
    m.submit(glyph("g2", theta=0.5), B)
    for cell in m.cells.values():
        cell.fire(0, m.fire_log)
    return m


def migrate(m: Model, gid: str, target: str) -> Migration:
    """Run a whole migration of ``gid`` to ``target``."""
    mig = m.plan(gid, target)
    verifier = MigrationVerifier(receiver=target, keys=ROSTER)
    for step in m.steps(mig, verifier):
        for effect in step():
            assert m.apply(effect, mig)
    return mig


# -- policy -------------------------------------------------------------------------------------


def test_policy_needs_coherence_energy_and_a_stable_network() -> None:
    """No target at C_cluster ≤ 0.65, energy ≤ the threshold or an unstable network."""
    p = MigrationPolicy(energy_threshold=5.0)
    peers = {B: 0.0}
    ok = {"c_cluster": 0.9, "stable": True, "own_load": 100.0, "peers": peers}
    assert p.target(glyph(), **ok) == B  # type: ignore[arg-type]
    assert p.target(glyph(), **{**ok, "c_cluster": 0.65}) is None  # type: ignore[arg-type]
    assert p.target(glyph(), **{**ok, "stable": False}) is None  # type: ignore[arg-type]
    assert p.target(glyph(energy=5.0), **ok) is None  # type: ignore[arg-type]


def test_policy_picks_the_least_loaded_peer_ties_by_id() -> None:
    """The lightest peer wins; equal loads go to the smallest node id."""
    p = MigrationPolicy()
    got = p.target(glyph(), c_cluster=0.9, stable=True, own_load=100.0, peers={C: 5.0, B: 5.0})
    assert got == B


def test_hysteresis_does_not_bounce() -> None:
    """After a move the target never qualifies to send the glyph straight back, and loads
    inside the band (gap ≤ e + h·L) are left alone."""
    p = MigrationPolicy(hysteresis=0.1)
    g = glyph(energy=10.0)
    for source_load in [30.0, 50.0, 100.0, 1000.0]:
        for target_load in [0.0, 5.0, 10.0, 25.0]:
            kw = {"c_cluster": 0.9, "stable": True}
            if p.target(g, own_load=source_load, peers={B: target_load}, **kw) != B:
                continue
            back = p.target(g, own_load=target_load + 10.0, peers={A: source_load - 10.0}, **kw)
            assert back is None
    assert p.target(g, c_cluster=0.9, stable=True, own_load=29.0, peers={B: 17.0}) is None


def test_policy_rejects_bad_settings() -> None:
    """A band or coherence outside [0, 1), or a negative threshold, names the parameter."""
    with pytest.raises(InputError, match="hysteresis"):
        MigrationPolicy(hysteresis=1.0)
    with pytest.raises(InputError, match="energy_threshold"):
        MigrationPolicy(energy_threshold=-1.0)


# -- values -------------------------------------------------------------------------------------


def test_record_round_trips_and_validates() -> None:
    """An ownership record survives its bytes; an offer without a target is refused."""
    r = OwnerRecord(
        glyph=glyph(owner=A, epoch=4), state=OwnerState.OFFERED, target=B, fired_cycle=7
    )
    assert OwnerRecord.from_bytes(r.to_bytes()) == r
    with pytest.raises(InputError, match="target"):
        OwnerRecord(glyph=glyph(owner=A), state=OwnerState.OFFERED)
    with pytest.raises(InputError, match="record"):
        OwnerRecord.from_bytes(b"{}")


def test_field_fold_is_energy_weighted() -> None:
    """Folding glyphs one by one gives the energy-weighted ΔΦ and κ and the argument of the
    energy-weighted resultant for θ; a zero-energy glyph changes nothing."""
    gs = [
        glyph("a", energy=1.0, delta_phi=0.1, kappa=2.0, theta=0.1),
        glyph("b", energy=3.0, delta_phi=0.5, kappa=10.0, theta=0.2),
    ]
    f = glyph_field(gs)
    assert f.energy == 4.0
    assert math.isclose(f.delta_phi, (0.1 + 1.5) / 4)
    assert math.isclose(f.kappa, (2.0 + 30.0) / 4)
    z = sum(
        g.energy * complex(math.cos(2 * math.pi * g.theta), math.sin(2 * math.pi * g.theta))
        for g in gs
    )
    assert math.isclose(f.theta, math.atan2(z.imag, z.real) / (2 * math.pi))
    assert f.fold(glyph("z", energy=0.0)) == f
    assert GlyphField().fold(gs[0]).theta == pytest.approx(0.1)


# -- the packet ---------------------------------------------------------------------------------


def offered(m: Model, gid: str, target: str) -> tuple[Migration, bytes]:
    """Offer ``gid`` to ``target`` and return the migration and the packet delivered."""
    mig = m.plan(gid, target)
    for effect in mig.offer(KEYS[mig.source]):
        assert m.apply(effect, mig)
    return mig, m.cells[target].take(gid)


def reject(m: Model, data: bytes, gid: str, receiver: str = B) -> str:
    """The counted reason ``receiver`` rejects ``data`` with."""
    verifier = MigrationVerifier(receiver=receiver, keys=ROSTER)
    record, _ = m.read(gid)
    with pytest.raises(ProtocolError) as info:
        verifier.verify(data, record)
    assert sum(verifier.rejected.values()) == 1 and verifier.accepted == 0
    return str(info.value.reason)


def test_packet_verifies_and_forgeries_are_counted() -> None:
    """A good offer verifies; a flipped signature, a key not in the roster, a wrong target
    and garbage are rejected with their reasons."""
    m = model()
    _, data = offered(m, "g1", B)
    record, _ = m.read("g1")
    assert MigrationVerifier(receiver=B, keys=ROSTER).verify(data, record).glyph.id == "g1"
    assert reject(m, data[:-1] + bytes([data[-1] ^ 1]), "g1") == MigrationReject.BAD_SIGNATURE
    assert reject(m, data, "g1", receiver=C) == MigrationReject.WRONG_TARGET
    assert reject(m, b"x" * 100, "g1") == MigrationReject.MALFORMED
    forged = MigrationPacket(glyph=glyph(owner="cell-x"), source="cell-x", target=B)
    assert reject(m, forged.sign(NodeKey.generate()), "g1") == MigrationReject.UNKNOWN_SIGNER
    stolen = MigrationPacket(glyph=record.glyph, source=A, target=B).sign(KEYS[C])
    assert reject(m, stolen, "g1") == MigrationReject.BAD_SIGNATURE


def test_stale_epoch_and_replayed_offers_are_rejected() -> None:
    """After A→B→A the first offer (epoch 0) is stale; a replay of an aborted offer finds no
    open offer; an offer by a cell that does not own the glyph is refused."""
    m = model()
    first = m.plan("g1", B)
    packet = first.packet.sign(KEYS[A])
    migrate(m, "g1", B)
    assert reject(m, packet, "g1") == MigrationReject.NOT_OWNER
    migrate(m, "g1", A)
    assert m.read("g1")[0].epoch == 2
    assert reject(m, packet, "g1") == MigrationReject.STALE_EPOCH
    mig, data = offered(m, "g1", B)
    for effect in mig.abort("vetoed"):
        assert m.apply(effect, mig)
    assert reject(m, data, "g1") == MigrationReject.NOT_OFFERED
    m.check()


# -- the machine --------------------------------------------------------------------------------


def test_a_migration_moves_ownership_with_epoch_plus_one() -> None:
    """offer → accept → commit → run → drop leaves B the one owner at epoch 1, the record
    owned, every step witnessed on its side and the hook notified."""
    m = model()
    mig = migrate(m, "g1", B)
    assert mig.state is MigrationState.DONE
    record, _ = m.read("g1")
    assert (record.owner, record.epoch, record.state) == (B, 1, OwnerState.OWNED)
    kinds = lambda cell: [k for k, g, _ in m.cells[cell].witness if k.startswith("glyph.migrate")]  # noqa: E731
    assert kinds(A) == ["glyph.migrate.offer", "glyph.migrate.drop"]
    assert kinds(B) == ["glyph.migrate.accept", "glyph.migrate.commit", "glyph.migrate.run"]
    assert m.cells[B].notified == 1
    for cell in m.cells.values():
        cell.fire(0, m.fire_log)  # already fired in cycle 0 at A: not again at B
        cell.fire(1, m.fire_log)
    m.check()
    assert ("g1", 1) in m.fire_log


def test_illegal_transitions_raise_and_leave_error() -> None:
    """Events out of protocol order raise ``illegal_transition`` and move to ERROR; the table
    has no transition out of a final state."""
    m = model()
    mig = m.plan("g1", B)
    with pytest.raises(ProtocolError, match="illegal_transition"):
        mig.commit()
    assert mig.state is MigrationState.ERROR
    finals = {MigrationState.DONE, MigrationState.ABORTED, MigrationState.ERROR}
    assert not [k for k in TRANSITIONS if k[0] in finals]


def test_abort_after_a_rejected_accept_restores_the_source() -> None:
    """A vetoed (or rejected) offer aborts: the record is owned by A again, same epoch, and A
    runs the glyph."""
    m = model()
    mig, _ = offered(m, "g1", B)
    for effect in mig.abort("vetoed"):
        assert m.apply(effect, mig)
    assert mig.state is MigrationState.ABORTED
    record, _ = m.read("g1")
    assert (record.owner, record.epoch, record.state) == (A, 0, OwnerState.OWNED)
    m.check()


# -- crash safety -------------------------------------------------------------------------------

#: Effects of a whole migration: offer 4, accept 1, commit 2, run 3, drop 2.
EFFECTS = 12


def run_until(m: Model, gid: str, target: str, after: int) -> Migration:
    """Run a migration's effects up to (not including) effect number ``after``, firing every
    cell in cycle 0 again after each effect (a fire in flight must never repeat)."""
    mig = m.plan(gid, target)
    verifier = MigrationVerifier(receiver=target, keys=ROSTER)
    done = 0
    for step in m.steps(mig, verifier):
        if done >= after:
            break
        for effect in step():
            if done >= after:
                break
            assert m.apply(effect, mig)
            done += 1
            for cell in m.cells.values():
                cell.fire(0, m.fire_log)
    return mig


@pytest.mark.parametrize("crashed", [(), ("source",), ("target",), ("source", "target")])
@pytest.mark.parametrize("after", range(EFFECTS + 1))
def test_a_crash_between_any_two_effects_leaves_one_owner(
    after: int, crashed: tuple[str, ...]
) -> None:
    """Drop the migration's state (and the source's, the target's or both cells') after any
    number of effects, restart from the records and the witness logs: exactly one owner per
    glyph, none lost, none fired twice in a cycle; past the commit the target owns it."""
    m = model()
    mig = run_until(m, "g1", B, after)
    for who in crashed:
        m.cells[mig.source if who == "source" else mig.target].crash()
    m.recover_all()
    for cycle in (0, 1, 2):
        for cell in m.cells.values():
            cell.fire(cycle, m.fire_log)
    m.check()
    committed = after >= 4 + 1 + 1  # the commit's record write is effect 6
    assert m.read("g1")[0].owner == (B if committed else A)
    assert {g for g, _ in m.fire_log} == {"g1", "g2"}
    assert sorted(c for g, c in m.fire_log if g == "g1") == [0, 1, 2]


def test_a_lost_compare_and_set_stops_the_effects() -> None:
    """Two offers of one glyph from the same read: the second loses its CAS and changes
    nothing; recovery leaves A the owner."""
    m = model()
    first, second = m.plan("g1", B), m.plan("g1", C)
    for effect in first.offer(KEYS[A]):
        assert m.apply(effect, first)
    effects = second.offer(KEYS[A])
    assert not m.apply(effects[0], second)
    m.recover_all()
    m.check()
    assert m.read("g1")[0].owner == A


# -- random interleavings against the plain model -------------------------------------------------


class Interleavings(RuleBasedStateMachine):
    """Submissions, firings, migrations advanced one effect at a time, crashes (which lose
    every migration in progress and the crashed cell's state) and recoveries, interleaved at
    random. Always: no glyph scheduled on two cells, no (glyph, cycle) fired twice. After a
    final recovery: exactly one owner per glyph, the record's, none lost."""

    def __init__(self) -> None:
        super().__init__()
        self.m = Model(NAMES)
        self.cycle = 0
        self.next_id = 0
        self.flights: dict[str, Iterator[MigrationEffect]] = {}
        self.machines: dict[str, Migration] = {}

    @rule(owner=st.sampled_from(NAMES), theta=st.floats(0.0, 0.99))
    def submit(self, owner: str, theta: float) -> None:
        gid = f"g{self.next_id}"
        self.next_id += 1
        self.m.submit(glyph(gid, theta=theta), owner)

    @rule(again=st.booleans())
    def fire(self, again: bool) -> None:
        if not again:
            self.cycle += 1
        for cell in self.m.cells.values():
            cell.fire(self.cycle, self.m.fire_log)

    @rule(data=st.data())
    def start(self, data: st.DataObject) -> None:
        idle = []
        for gid in sorted(self.m.glyphs - set(self.flights)):
            record, _ = self.m.read(gid)
            if record.state is OwnerState.OWNED and gid in self.m.cells[record.owner].scheduled:
                idle.append((gid, record.owner))
        if not idle:
            return
        gid, owner = data.draw(st.sampled_from(idle))
        target = data.draw(st.sampled_from([n for n in NAMES if n != owner]))
        mig = self.m.plan(gid, target)
        verifier = MigrationVerifier(receiver=target, keys=ROSTER)
        steps = self.m.steps(mig, verifier)
        self.flights[gid] = (e for step in steps for e in step())
        self.machines[gid] = mig

    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        if not self.flights:
            return
        gid = data.draw(st.sampled_from(sorted(self.flights)))
        effect = next(self.flights[gid], None)
        if effect is None or not self.m.apply(effect, self.machines[gid]):
            del self.flights[gid], self.machines[gid]
            if effect is not None:
                self.m.recover_all()

    @rule(cell=st.sampled_from(NAMES))
    def crash(self, cell: str) -> None:
        self.m.cells[cell].crash()
        self.flights.clear()
        self.machines.clear()

    @rule()
    def restart(self) -> None:
        self.flights.clear()
        self.machines.clear()
        self.m.recover_all()

    @invariant()
    def never_twice(self) -> None:
        for gid in self.m.glyphs:
            assert sum(gid in c.scheduled for c in self.m.cells.values()) <= 1
        assert len(self.m.fire_log) == len(set(self.m.fire_log))

    def teardown(self) -> None:
        self.flights.clear()
        self.m.recover_all()
        for cell in self.m.cells.values():
            cell.fire(self.cycle, self.m.fire_log)
            cell.fire(self.cycle + 1, self.m.fire_log)
        self.m.check()


Interleavings.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
test_random_interleavings = Interleavings.TestCase
