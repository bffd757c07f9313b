"""Takeover of a dead owner's glyph, sans-IO: the decision, the chosen taker, the effects,
and exactly one winner on a real compare-and-set store (the node driver is tested in
tests/runtime/test_node_glyphs.py, real processes in tests/faults/test_glyph_faults.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.cluster import (
    Glyph,
    Install,
    OwnerRecord,
    OwnerState,
    RecordWatch,
    Witness,
    WriteRecord,
    record_key,
    should_take,
    takeover,
    taker,
)
from becomingone.errors import CasConflict, InputError
from becomingone.memory.inmemory import MemoryCasRecord

T = 10.0
names = st.sampled_from([f"n{i}" for i in range(6)])
loads_st = st.dictionaries(names, st.sampled_from([0.0, 1.0, 5.0, 1000.0]), min_size=1)


def _record(owner: str = "dead", state: OwnerState = OwnerState.OWNED) -> OwnerRecord:
    glyph = Glyph(
        id="g",
        kind="probe",
        payload={"probe": "loadavg"},
        theta=0.7,
        delta_phi=0.01,
        kappa=3.0,
        energy=321.5,
        lifetime=4567,
        coherence=0.93,
        owner=owner,
        epoch=4,
    )
    target = "n1" if state is OwnerState.OFFERED else ""
    return OwnerRecord(glyph=glyph, state=state, target=target, fired_cycle=812)


@given(loads=loads_st, unchanged=st.floats(T, 2 * T, exclude_max=True), silent=st.floats(T, 1e4))
def test_nodes_that_hear_alike_choose_exactly_one_taker(
    loads: dict[str, float], unchanged: float, silent: float
) -> None:
    """Every live node with the same view of the loads decides; exactly one says take, and it
    is the least loaded (ties by id)."""
    rec = _record()
    takers = [
        n
        for n in loads
        if should_take(
            rec, node_id=n, silent_for=silent, unchanged_for=unchanged, loads=loads, timeout=T
        )
    ]
    assert takers == [taker(loads)]
    best = min(loads.values())
    assert takers[0] == min(n for n, v in loads.items() if v == best)


@given(
    loads=loads_st,
    node=names,
    silent=st.floats(0.0, 1e4),
    unchanged=st.floats(0.0, 1e4),
    state=st.sampled_from(list(OwnerState)),
)
def test_nobody_takes_from_a_live_or_recent_owner(
    loads: dict[str, float], node: str, silent: float, unchanged: float, state: OwnerState
) -> None:
    """A node takes only if it is live itself, the owner is not among the live nodes, and the
    owner has been silent and its record unchanged for the timeout; past twice the timeout
    of an unchanged record any live node does (so a disagreement never leaves it stuck)."""
    owner = sorted(loads)[0]
    alive = should_take(
        _record(owner, state),
        node_id=node,
        silent_for=silent,
        unchanged_for=unchanged,
        loads=loads,
        timeout=T,
    )
    assert not alive  # the owner is heard: never taken
    dead = {n: v for n, v in loads.items() if n != owner} or {"n9": 0.0}
    got = should_take(
        _record(owner, state),
        node_id=node,
        silent_for=silent,
        unchanged_for=unchanged,
        loads=dead,
        timeout=T,
    )
    expected = (
        node in dead
        and silent >= T
        and unchanged >= T
        and (taker(dead) == node or unchanged >= 2 * T)
    )
    assert got == expected


def test_the_timeout_is_checked() -> None:
    with pytest.raises(InputError, match="timeout"):
        should_take(
            _record(), node_id="a", silent_for=1, unchanged_for=1, loads={"a": 0}, timeout=0
        )


@pytest.mark.parametrize("state", list(OwnerState))
def test_takeover_keeps_the_glyphs_state_and_bumps_the_epoch(state: OwnerState) -> None:
    """The new record (owned or an open offer before) is owned by the taker, epoch + 1,
    with the glyph's energy, lifetime, θ, ΔΦ, κ, coherence and last fired cycle; the taker
    schedules exactly that and witnesses who it took from."""
    rec = _record(state=state)
    write, install, witness = takeover(rec, 17, "n3", silent_for=12.25)
    assert isinstance(write, WriteRecord) and isinstance(install, Install)
    assert isinstance(witness, Witness)
    assert write.cell == install.cell == witness.cell == "n3"
    assert (write.key, write.expected_revision) == (record_key("g"), 17)
    new = OwnerRecord.from_bytes(write.value)
    assert (new.owner, new.epoch, new.state, new.fired_cycle) == ("n3", 5, OwnerState.OWNED, 812)
    for field in ("kind", "payload", "theta", "delta_phi", "kappa", "energy", "lifetime"):
        assert getattr(new.glyph, field) == getattr(rec.glyph, field), field
    assert new.glyph.coherence == rec.glyph.coherence
    assert install.glyph == new.glyph and install.fired_cycle == 812
    assert witness.kind == "glyph.takeover"
    assert witness.payload == {
        "glyph": "g",
        "from": "dead",
        "epoch": 5,
        "was": state.value,
        "fired_cycle": 812,
        "silent_for": 12.25,
    }


@given(order=st.permutations(["n1", "n2", "n3"]))
def test_of_several_takers_on_one_revision_exactly_one_wins(order: list[str]) -> None:
    """Three nodes that disagree all write their takeover at the revision they watched: the
    store accepts the first and refuses the others; the record names the winner at epoch + 1
    (and a stale target's commit at that revision loses too)."""
    store = MemoryCasRecord()
    rec = _record(state=OwnerState.OFFERED)
    rev = store.create(record_key("g"), rec.to_bytes())
    won = []
    for node in order:
        (write, *_) = takeover(rec, rev, node, silent_for=20.0)
        try:
            store.update(write.key, write.value, write.expected_revision)
            won.append(node)
        except CasConflict:
            pass
    assert won == [order[0]]
    got = store.get(record_key("g"))
    assert got is not None
    final = OwnerRecord.from_bytes(got.value)
    assert (final.owner, final.epoch) == (order[0], 5)
    with pytest.raises(CasConflict):
        store.update(record_key("g"), rec.to_bytes(), rev)


@given(steps=st.lists(st.tuples(st.booleans(), st.floats(0.0, 5.0)), max_size=30))
def test_the_watch_measures_time_at_one_revision(steps: list[tuple[bool, float]]) -> None:
    """The age a watch reports is the time since the revision last changed (0 on a change)."""
    w, now, rev, since = RecordWatch(), 0.0, 1, 0.0
    assert w.observe("k", rev, now) == 0.0
    for change, dt in steps:
        now += dt
        if change:
            rev, since = rev + 1, now
        assert w.observe("k", rev, now) == pytest.approx(now - since)
    w.keep(["other"])
    assert len(w) == 0 and w.observe("k", rev, now + 1) == 0.0
