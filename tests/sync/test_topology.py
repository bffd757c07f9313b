"""Topology plans (who hears whom) and ring winding numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.errors import InputError
from becomingone.sync import Plan, Topology, fractal_levels, is_twisted, winding_number

MEMBERS = tuple(f"n{i}" for i in range(10))


def test_hears_per_topology() -> None:
    """Mesh hears all, hub cells hear the hub, ring hears its predecessor."""
    assert Plan.for_member("mesh", MEMBERS, "n3").hears() == set(MEMBERS) - {"n3"}
    assert Plan.for_member("hub", MEMBERS, "n3").hears() == {"n0"}
    assert Plan.for_member("hub", MEMBERS, "n0").hears() == set(MEMBERS) - {"n0"}
    ring = Plan.for_member("ring", MEMBERS, "n0")
    assert ring.hears() == {"n9"} and ring.successor == "n1"


def test_fractal_groups() -> None:
    """b = 3 over 10 cells: 3 levels, heads are the first of each group, children nest."""
    assert fractal_levels(10, 3) == 3
    p0 = Plan.for_member("fractal", MEMBERS, "n0", branching=3)
    assert p0.children(1) == ("n0", "n1", "n2")
    assert p0.children(2) == ("n0", "n3", "n6")
    assert p0.children(3) == ("n0", "n9")
    p4 = Plan.for_member("fractal", MEMBERS, "n4", branching=3)
    assert p4.head(1) == "n3" and not p4.is_head(1)
    assert p4.hears() == {"n3"}
    assert Plan.for_member("fractal", MEMBERS, "n3", branching=3).hears() == {"n4", "n5", "n0"}


def test_bad_plans() -> None:
    """Unknown topology, duplicate members and non-members are rejected by name."""
    with pytest.raises(InputError, match="topology"):
        Topology.parse("star")
    with pytest.raises(InputError, match="members"):
        Plan(topology=Topology.MESH, members=("a", "a"), index=0)
    with pytest.raises(InputError, match="node_id"):
        Plan.for_member("mesh", MEMBERS, "x")


@given(st.integers(-3, 3), st.integers(12, 60), st.floats(0.0, 1.0))
def test_winding_of_a_twisted_state(w: int, n: int, offset: float) -> None:
    """θ_i = w·i/N + offset has winding number w; twisted iff w ≠ 0."""
    th = (w * np.arange(n) / n + offset) % 1.0
    assert winding_number(th) == w
    assert is_twisted(th) == (w != 0)


def test_group_sizes_of_a_fractal_plan() -> None:
    """child_sizes(level) gives each child's group size (the last group may be short); the
    sizes of a group's children add up to its size, for every cell and level."""
    members = [f"c{i}" for i in range(10)]
    plan = Plan.for_member("fractal", members, "c0", branching=3)
    assert plan.child_sizes(1) == {"c0": 1, "c1": 1, "c2": 1}
    assert plan.child_sizes(2) == {"c0": 3, "c3": 3, "c6": 3}
    assert plan.child_sizes(3) == {"c0": 9, "c9": 1}
    for name in members:
        p = Plan.for_member("fractal", members, name, branching=3)
        for level in range(1, p.levels + 1):
            assert sum(p.child_sizes(level).values()) == p.subtree_size(level)
            assert tuple(p.child_sizes(level)) == p.children(level)
