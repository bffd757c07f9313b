"""The lifecycle: each stage's named conditions, one step up per evaluation, demotion when a
condition is lost."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.cluster import (
    LIFECYCLE_TRANSITIONS,
    Lifecycle,
    LifecycleStage,
    Measurements,
    conditions,
    ratio_near_phi,
)
from becomingone.errors import InputError

L = LifecycleStage
FULL = Measurements(
    genesis=True,
    roles_filled=True,
    high=6,
    low=10,
    c_cluster=0.99,
    threshold=0.95,
    pass_rate=1.0,
    previous_pass_rate=0.875,
    digests=("ab",) * 16,
    c_history=(0.97, 0.98, 0.99),
)


def _climb(life: Lifecycle, m: Measurements, steps: int = 10) -> list[LifecycleStage]:
    return [life.evaluate(m).stage for _ in range(steps)]


def test_climbs_one_stage_per_evaluation() -> None:
    """With every condition met the stage rises one step per evaluation to AUTONOMOUS."""
    assert _climb(Lifecycle(), FULL, 6) == [
        L.FORMING,
        L.ACTIVE,
        L.CONVERGING,
        L.EMERGING,
        L.AUTONOMOUS,
        L.AUTONOMOUS,
    ]


@pytest.mark.parametrize(
    ("change", "stage", "failing"),
    [
        ({"genesis": False}, L.PRE_CLUSTER, "genesis"),
        ({"roles_filled": False}, L.FORMING, "roles_filled"),
        ({"high": 1, "low": 2}, L.FORMING, "redundancy_high"),
        ({"low": 1, "high": 2}, L.FORMING, "redundancy_low"),
        ({"c_cluster": 0.59}, L.ACTIVE, "coherence_converging"),
        ({"c_cluster": 0.74}, L.CONVERGING, "coherence_shared"),
        ({"pass_rate": 0.5}, L.CONVERGING, "consensus_rate"),
        ({"pass_rate": None}, L.CONVERGING, "consensus_rate"),
        ({"c_cluster": 0.9}, L.EMERGING, "coherence_ic"),
        ({"previous_pass_rate": 0.5}, L.EMERGING, "consensus_stable"),
        ({"pass_rate": 0.625, "previous_pass_rate": 1.0}, L.EMERGING, "consensus_stable"),
        ({"high": 8, "low": 8}, L.EMERGING, "role_ratio"),
        ({"digests": ("ab",) * 15 + ("cd",)}, L.EMERGING, "memory_synced"),
        ({"c_history": (0.99, 0.97, 0.95)}, L.EMERGING, "coherence_trend"),
    ],
)
def test_each_condition_holds_its_stage(change: dict[str, object], stage: L, failing: str) -> None:
    """Losing one condition stops the climb just below its stage, and demotes a cluster
    that was AUTONOMOUS straight to that stage; only that condition reads as unmet."""
    m = dataclasses.replace(FULL, **change)  # type: ignore[arg-type]
    unmet = [c.name for c in conditions(m) if not c.met]
    assert failing in unmet
    assert _climb(Lifecycle(), m)[-1] is stage
    life = Lifecycle()
    _climb(life, FULL)
    report = life.evaluate(m)
    assert report.stage is stage and report.changed == (stage is not L.AUTONOMOUS)


def test_conditions_are_named_and_shown() -> None:
    """The report lists the twelve conditions by name, each with value, threshold, met."""
    doc = Lifecycle().evaluate(FULL).to_json()
    assert doc["stage"] == "forming"
    conds = doc["conditions"]
    assert isinstance(conds, dict) and len(conds) == 12
    assert conds["role_ratio"]["met"] and conds["role_ratio"]["threshold"] == pytest.approx(
        1.618, abs=1e-3
    )
    assert conds["memory_synced"]["value"] == 1.0


@given(
    st.lists(
        st.builds(
            Measurements,
            genesis=st.booleans(),
            roles_filled=st.booleans(),
            high=st.integers(0, 9),
            low=st.integers(0, 15),
            c_cluster=st.floats(0, 1),
            threshold=st.just(0.95),
            pass_rate=st.none() | st.floats(0, 1),
            previous_pass_rate=st.none() | st.floats(0, 1),
            digests=st.lists(st.sampled_from("ab"), max_size=3),
            c_history=st.lists(st.floats(0, 1), max_size=5),
        ),
        max_size=30,
    )
)
def test_moves_are_in_the_table(ms: list[Measurements]) -> None:
    """Every stage change is one step up or a move down (LIFECYCLE_TRANSITIONS)."""
    life = Lifecycle()
    for m in ms:
        r = life.evaluate(m)
        assert not r.changed or (r.previous, r.stage) in LIFECYCLE_TRANSITIONS
        assert r.stage.level <= r.previous.level + 1


def test_ratio_near_phi() -> None:
    """The role ratio counts within 25 % of φ and needs at least one Ø2Ø1 role."""
    assert ratio_near_phi(8, 5) and ratio_near_phi(2, 1) and not ratio_near_phi(5, 1)
    assert not ratio_near_phi(3, 0)


def test_measurements_validate() -> None:
    """C_cluster outside [0, 1] is refused, naming it."""
    with pytest.raises(InputError, match="c_cluster"):
        dataclasses.replace(FULL, c_cluster=1.5)
