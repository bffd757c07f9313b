"""Protocol state as a value: CPS and stability state round-trip through bytes and restore."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.errors import InputError
from becomingone.keys import NodeKey
from becomingone.sync import (
    CellField,
    HeardPhase,
    NetworkStability,
    PacketKind,
    PhaseSupervisor,
    Plan,
    Reject,
    StabilityState,
    SupervisorState,
    ValidatorState,
)

NAMES = [f"n{i}" for i in range(6)]
KEYS = {n: NodeKey.from_seed(bytes([i + 1]) * 32) for i, n in enumerate(NAMES)}
ROSTER = {n: k.public_bytes for n, k in KEYS.items()}


def settings_of(name: str, topology: str) -> dict[str, object]:
    """The constructor settings of cell ``name`` (everything but the evolving state)."""
    plan = Plan.for_member(topology, NAMES, name, branching=2)
    return {"key": KEYS[name], "plan": plan, "keys": ROSTER, "alpha": 0.2, "beta": 0.01}


def cluster(topology: str) -> list[PhaseSupervisor]:
    """Six supervisors with spread phases and frequencies."""
    return [
        PhaseSupervisor(
            **settings_of(n, topology),  # type: ignore[arg-type]
            theta=0.13 * i,
            frequency=1.0 + 0.003 * i,
            epoch=7,
        )
        for i, n in enumerate(NAMES)
    ]


def run(
    sups: list[PhaseSupervisor],
    pending: dict[str, list[bytes]],
    ticks: range,
    dt: float = 0.1,
) -> list[list[bytes]]:
    """Tick every supervisor; bytes sent at one tick are received at the next."""
    sent = []
    for k in ticks:
        now = k * dt
        out: dict[str, list[bytes]] = defaultdict(list)
        wire = []
        for sup in sups:
            for data in pending.pop(sup.node_id, []):
                sup.receive(data, now)
            for msg in sup.tick(now):
                wire.append(msg.data)
                for dest in msg.to:
                    out[dest].append(msg.data)
        pending.clear()
        pending.update(out)
        sent.append(wire)
    return sent


@pytest.mark.parametrize("topology", ["mesh", "hub", "ring", "fractal"])
def test_restored_supervisors_send_byte_identical_packets(topology: str) -> None:
    """Cells stopped at tick 20, saved to bytes and restored send exactly the packets (and
    reach exactly the phases) that the uninterrupted cells do over the next 20 ticks."""
    sups = cluster(topology)
    pending: dict[str, list[bytes]] = {}
    run(sups, pending, range(20))
    saved = {s.node_id: s.to_bytes() for s in sups}
    in_flight = {k: list(v) for k, v in pending.items()}
    expected = run(sups, pending, range(20, 40))
    restored = [
        PhaseSupervisor.restore(SupervisorState.from_bytes(saved[n]), **settings_of(n, topology))
        for n in NAMES
    ]
    assert run(restored, in_flight, range(20, 40)) == expected
    assert [r.theta for r in restored] == [s.theta for s in sups]
    assert [r.state() for r in restored] == [s.state() for s in sups]
    assert sups[1].state().inbox, "the saved state had something in its inbox"


def test_state_carries_replay_table_and_counters() -> None:
    """A restored cell still rejects a replay of a packet its previous life accepted."""
    a, b = cluster("mesh")[:2]
    first = b.tick(0.0)[0].data
    a.receive(first, 0.0)
    a.receive(b"junk", 0.0)
    state = a.state()
    assert state.validator.last == (("n1", 7, 1),)
    back = PhaseSupervisor.restore(
        SupervisorState.from_bytes(state.to_bytes()), **settings_of("n0", "mesh")
    )  # type: ignore[arg-type]
    back.receive(first, 0.0)
    assert back.rejected == {Reject.MALFORMED: 1, Reject.REPLAY: 1}


field_values = st.builds(
    CellField,
    delta_phi=st.floats(0.0, 1.0),
    kappa=st.floats(0.0, 1e6),
    coherence=st.floats(0.0, 1.0),
    node_energy=st.floats(0.0, 1e12),
    t_sync=st.builds(complex, st.floats(-0.7, 0.7), st.floats(-0.7, 0.7)),
    glyph_digest=st.one_of(st.just(b""), st.binary(min_size=32, max_size=32)),
)
finite = st.floats(-1e9, 1e9, allow_nan=False)
heard = st.builds(
    HeardPhase,
    kind=st.sampled_from(PacketKind),
    level=st.integers(0, 63),
    sender=st.sampled_from(NAMES),
    theta=st.floats(0.0, 1.0, exclude_max=True),
    weight=st.floats(0.0, 1e6),
    timestamp=finite,
    fresh=st.booleans(),
)
stability = st.builds(
    StabilityState,
    peers=st.sets(st.sampled_from(NAMES)).map(lambda s: tuple(sorted(s))),
    last_heard=st.dictionaries(st.sampled_from(NAMES), finite).map(
        lambda d: tuple(sorted(d.items()))
    ),
    changed=st.booleans(),
    streak=st.integers(0, 10**6),
)
validators = st.builds(
    ValidatorState,
    last=st.dictionaries(
        st.sampled_from(NAMES), st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
    ).map(lambda d: tuple((n, e, q) for n, (e, q) in sorted(d.items()))),
    accepted=st.integers(0, 2**40),
    rejected=st.dictionaries(st.sampled_from([str(r) for r in Reject]), st.integers(1, 99)).map(
        lambda d: tuple(sorted(d.items()))
    ),
)
states = st.builds(
    SupervisorState,
    node_id=st.sampled_from(NAMES),
    epoch=st.integers(0, 2**64 - 1),
    seq=st.integers(0, 2**64 - 1),
    theta=st.floats(0.0, 1.0, exclude_max=True),
    frequency=finite,
    last_error=st.floats(-0.5, 0.5),
    steps=st.integers(0, 2**40),
    last_now=st.one_of(st.none(), finite),
    inbox=st.lists(heard, max_size=6, unique_by=lambda h: (h.kind, h.level, h.sender)).map(tuple),
    validator=validators,
    stability=stability,
    field=field_values,
)


@given(states)
@settings(max_examples=150, deadline=None)
def test_state_bytes_round_trip(state: SupervisorState) -> None:
    """from_bytes(to_bytes(s)) == s, and writing it back gives the same bytes (canonical)."""
    data = state.to_bytes()
    back = SupervisorState.from_bytes(data)
    assert back == state
    assert back.to_bytes() == data
    assert StabilityState.from_bytes(state.stability.to_bytes()) == state.stability


def _doc(state: SupervisorState) -> dict[str, object]:
    return json.loads(state.to_bytes())  # type: ignore[no-any-return]


def test_bad_state_bytes_are_refused_with_input_error() -> None:
    """NaN or infinity, a foreign format, a future version, a missing or mistyped field and
    non-canonical bytes all raise InputError naming ``state``; nothing else escapes."""
    sup = cluster("mesh")[0]
    good = sup.state()
    doc = _doc(good)
    bad = [
        good.to_bytes().replace(b'"theta":0.0', b'"theta":NaN'),
        good.to_bytes().replace(b'"frequency":1.0', b'"frequency":Infinity'),
        json.dumps({**doc, "format": "other"}).encode(),
        json.dumps(
            {**doc, "version": doc["version"] + 1}, sort_keys=True, separators=(",", ":")
        ).encode(),
        json.dumps({k: v for k, v in doc.items() if k != "seq"}).encode(),
        json.dumps({**doc, "seq": -1}, sort_keys=True, separators=(",", ":")).encode(),
        json.dumps({**doc, "theta": 1.5}, sort_keys=True, separators=(",", ":")).encode(),
        json.dumps(doc, sort_keys=True, indent=1).encode(),
        b"\xff\xfe",
        b"[1, 2]",
    ]
    for data in bad:
        with pytest.raises(InputError) as info:
            SupervisorState.from_bytes(data)
        assert info.value.parameter == "state", data
    with pytest.raises(InputError):
        SupervisorState(node_id="n0", epoch=0, seq=0, theta=math.nan, frequency=1.0)
    with pytest.raises(InputError):
        SupervisorState(node_id="n0", epoch=0, seq=0, theta=0.0, frequency=math.inf)


def test_restore_checks_identity_and_settings() -> None:
    """A state restores only under its own node id; θ, f and epoch come from the state."""
    state = cluster("mesh")[0].state()
    with pytest.raises(InputError, match="state of 'n0'"):
        PhaseSupervisor.restore(state, **settings_of("n1", "mesh"))  # type: ignore[arg-type]
    with pytest.raises(InputError) as info:
        PhaseSupervisor.restore(state, theta=0.5, **settings_of("n0", "mesh"))  # type: ignore[arg-type]
    assert info.value.parameter == "theta"


def test_rebooted_state_needs_a_higher_epoch_and_restarts_seq() -> None:
    """rebooted(e) keeps phase, frequency and replay table, drops the session's time base,
    restarts seq at 0, and refuses an epoch that does not grow."""
    sups = cluster("mesh")
    run(sups, {}, range(5))
    state = sups[0].state()
    new = state.rebooted(8)
    assert (new.epoch, new.seq, new.last_now, new.inbox) == (8, 0, None, ())
    assert (new.theta, new.frequency, new.validator) == (
        state.theta,
        state.frequency,
        state.validator,
    )
    assert new.stability.streak == 0 and new.stability.last_heard == ()
    for epoch in (7, 6, True):
        with pytest.raises(InputError) as info:
            state.rebooted(epoch)  # type: ignore[arg-type]
        assert info.value.parameter == "epoch"


def test_network_stability_restores_its_streak() -> None:
    """A restored detector continues exactly: same streak, same verdict on the next ticks."""
    s = NetworkStability(peers={"a", "b"}, k=3, timeout=1.0)
    for t in range(2):
        s.heard("a", t)
        s.heard("b", t)
        s.tick(t + 0.5)
    copy = NetworkStability.restore(StabilityState.from_bytes(s.state().to_bytes()), k=3)
    assert copy.state() == s.state() and not copy.stable
    for det in (s, copy):
        det.heard("a", 2.0)
        det.heard("b", 2.0)
        assert det.tick(2.5)
    with pytest.raises(InputError):
        StabilityState(peers=("b", "a"))
    with pytest.raises(InputError):
        StabilityState(last_heard=(("a", math.nan),))
