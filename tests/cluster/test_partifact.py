"""Partifact states: activation, ignition (k of m and C ≥ 0.60), demotion with hysteresis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.cluster import (
    STATE_TRANSITIONS,
    IgnitionPolicy,
    Partifact,
    PartifactState,
    StateEvent,
)
from becomingone.errors import InputError, ProtocolError

S = PartifactState


def test_first_collapse_awakens() -> None:
    """A dormant cell stays dormant without collapses and wakes on its first collapse."""
    p = Partifact("a")
    for _ in range(10):
        assert p.observe(collapsed=False, c_cluster=0.99) is None
    assert p.state is S.DORMANT
    assert p.observe(collapsed=True, c_cluster=0.0) is S.AWAKENED


def test_ignition_needs_k_of_m_and_coherence() -> None:
    """Ignition needs k collapses in the last m and C ≥ c_on; either alone is not enough."""
    p = Partifact("a", IgnitionPolicy(k=3, m=5))
    p.observe(collapsed=True, c_cluster=0.1)
    p.observe(collapsed=True, c_cluster=0.1)
    assert p.observe(collapsed=True, c_cluster=0.59) is None  # 3 of 5 but C < 0.60
    assert p.state is S.AWAKENED
    assert p.observe(collapsed=False, c_cluster=0.60) is S.OPERATIONAL


def test_ignition_counts_only_the_last_m() -> None:
    """Collapses that slid out of the window of m evaluations no longer count."""
    p = Partifact("a", IgnitionPolicy(k=2, m=3))
    p.observe(collapsed=True, c_cluster=0.0)
    for _ in range(3):
        p.observe(collapsed=False, c_cluster=0.0)
    assert p.observe(collapsed=True, c_cluster=0.9) is None  # 1 of the last 3
    assert p.observe(collapsed=True, c_cluster=0.9) is S.OPERATIONAL


def test_demotion_has_hysteresis() -> None:
    """An operational cell stays Ø2Ø1 between c_off and c_on and with k_off..k-1 collapses,
    and is demoted below c_off or below k_off collapses."""
    pol = IgnitionPolicy(k=3, m=4, k_off=2, c_off=0.5)
    p = Partifact("a", pol, state=S.AWAKENED)
    for _ in range(3):
        p.observe(collapsed=True, c_cluster=0.8)
    assert p.state is S.OPERATIONAL
    assert p.observe(collapsed=False, c_cluster=0.55) is None  # C in the band, 3 of 4
    assert p.observe(collapsed=False, c_cluster=0.55) is None  # 2 of 4 = k_off
    assert p.observe(collapsed=False, c_cluster=0.55) is S.AWAKENED  # 1 < k_off
    q = Partifact("b", pol, state=S.AWAKENED)
    for _ in range(3):
        q.observe(collapsed=True, c_cluster=0.8)
    assert q.observe(collapsed=True, c_cluster=0.49) is S.AWAKENED


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), max_size=60))
def test_moves_follow_the_table(steps: list[tuple[bool, float]]) -> None:
    """Every state change is a row of STATE_TRANSITIONS and an awakened cell never sleeps."""
    p = Partifact("a", IgnitionPolicy(k=2, m=4, k_off=1, c_off=0.4))
    woke = False
    for collapsed, c in steps:
        before = p.state
        after = p.observe(collapsed=collapsed, c_cluster=c)
        if after is not None:
            assert (before, after) in {(s, t) for (s, _), t in STATE_TRANSITIONS.items()}
        woke = woke or p.state is not S.DORMANT
        assert not (woke and p.state is S.DORMANT)


def test_illegal_event_raises() -> None:
    """An event with no row in the table raises ProtocolError and leaves the state alone."""
    p = Partifact("a")
    with pytest.raises(ProtocolError, match="illegal_transition"):
        p.apply(StateEvent.IGNITE)
    assert p.state is S.DORMANT


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"m": 0}, "m"),
        ({"k": 6, "m": 5}, "k"),
        ({"k_off": 4, "k": 3}, "k_off"),
        ({"c_on": 1.5}, "c_on"),
        ({"c_off": 0.7}, "c_off"),
    ],
)
def test_policy_rejects_bad_values(kwargs: dict[str, float], parameter: str) -> None:
    """A bad policy value raises InputError naming the parameter."""
    with pytest.raises(InputError) as err:
        IgnitionPolicy(**kwargs)  # type: ignore[arg-type]
    assert err.value.parameter == parameter


def test_observe_rejects_bad_coherence() -> None:
    """C_cluster outside [0, 1] (or NaN) is refused, naming c_cluster."""
    with pytest.raises(InputError, match="c_cluster"):
        Partifact("a").observe(collapsed=True, c_cluster=float("nan"))
