"""Mesh synchronisation (DESIGN §6): T_global over the peers heard; the cluster collapse edge."""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest

from becomingone.errors import InputError
from becomingone.runtime.cluster import build_supervisors
from becomingone.sync import (
    ClusterCollapseDetector,
    CollapseEdge,
    GlobalSync,
    PacketKind,
    PhaseSupervisor,
    SupervisorState,
    decode_packet,
    global_sync,
)


def slow_global(own, own_w, values, stamps, weights, now, timeout):
    """The obvious reference: a loop over the peers, stale ones skipped, own added."""
    num, den = own_w * own, own_w
    for z, t, w in zip(values, stamps, weights, strict=True):
        if now - t <= timeout:
            num += w * z
            den += w
    return num / den if den > 0 else 0j


def test_global_sync_matches_a_slow_reference() -> None:
    """Random T_sync values (|T| ≤ 1), ages and weights, as arrays (NumPy path) and as short
    lists (plain-Python path): the weighted mean over the fresh peers and the own value equals
    the reference loop, stale peers are not counted, |T_global| ≤ 1."""
    rng = np.random.default_rng(8)
    for _ in range(200):
        n = int(rng.integers(0, 40))
        values = np.sqrt(rng.random(n)) * np.exp(2j * np.pi * rng.random(n))
        stamps = 10.0 - rng.random(n) * 2.0  # ages 0 … 2 s, timeout 1 s
        weights = rng.random(n) * 5.0
        own = complex(cmath.rect(math.sqrt(rng.random()), 2 * math.pi * rng.random()))
        own_w = float(rng.random())
        got = global_sync(
            values, stamps, weights=weights, now=10.0, timeout=1.0, own=own, own_weight=own_w
        )
        as_lists = global_sync(
            list(values), list(stamps), weights=list(weights), now=10.0, timeout=1.0, own=own,
            own_weight=own_w,
        )  # fmt: skip
        want = slow_global(own, own_w, values, stamps, weights, 10.0, 1.0)
        assert got.value == pytest.approx(want, abs=1e-12)
        assert as_lists.value == pytest.approx(want, abs=1e-12) and as_lists.peers == got.peers
        assert got.peers == int(np.sum(10.0 - stamps <= 1.0))
        assert got.cells == pytest.approx(own_w + float(np.sum(weights[10.0 - stamps <= 1.0])))
        assert abs(got.value) <= 1.0 and got.coherence == pytest.approx(abs(want) ** 2)


def test_global_sync_equal_weights_own_included_and_edges() -> None:
    """Equal weights by default; own value counted once; a peer exactly at the timeout counts,
    one past it does not; nothing heard and no own value gives 0; aligned unit values give
    exactly |T_global|² = 1 (never above)."""
    g = global_sync([1.0, 0.0], [9.0, 8.999], now=10.0, timeout=1.0, own=0.5 + 0j)
    assert g.value == pytest.approx(0.75) and g.peers == 1 and g.cells == 2.0
    assert global_sync([], [], now=1.0, timeout=1.0) == GlobalSync(time=1.0)
    unit = cmath.exp(0.7j)
    g = global_sync([unit] * 7, [0.0] * 7, now=0.0, timeout=1.0, own=unit)
    assert g.coherence <= 1.0 and g.coherence == pytest.approx(1.0)
    assert g.to_json()["t_global_sq"] == g.coherence


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"t_sync": [1.5], "timestamps": [0.0]}, "t_sync"),
        ({"t_sync": [complex("nan")], "timestamps": [0.0]}, "t_sync"),
        ({"t_sync": [0.5], "timestamps": [0.0, 1.0]}, "timestamps"),
        ({"t_sync": [0.5], "timestamps": [0.0], "weights": [-1.0]}, "weights"),
        ({"t_sync": [0.5], "timestamps": [0.0], "timeout": 0.0}, "timeout"),
        ({"t_sync": [0.5], "timestamps": [0.0], "own": 2.0}, "own"),
        ({"t_sync": [0.5], "timestamps": [0.0], "now": math.inf}, "now"),
        ({"t_sync": ["x"], "timestamps": [0.0]}, "t_sync"),
        ({"t_sync": np.array([1.5]), "timestamps": [0.0]}, "t_sync"),
        ({"t_sync": [0.5] * 20, "timestamps": [0.0] * 19}, "timestamps"),
    ],
)
def test_global_sync_bad_input_names_the_parameter(kwargs, parameter) -> None:
    """Bad input is an InputError naming the parameter, never a wrong number."""
    args = {"now": 0.0, "timeout": 1.0} | kwargs
    with pytest.raises(InputError) as info:
        global_sync(**args)
    assert info.value.parameter == parameter


def test_detector_fires_on_the_upward_crossing_only() -> None:
    """One event per crossing of I_c, none while above, re-armed below; too few peers is
    below; the event carries |T_global|², peers and tick."""
    d = ClusterCollapseDetector(threshold=0.9, min_peers=1)
    readings = [(0.5, 2), (0.99, 2), (0.98, 2), (0.99, 0), (0.99, 3), (0.2, 3), (0.96, 3)]
    fired = [
        d.update(GlobalSync(time=float(i), value=math.sqrt(c), peers=p, cells=p + 1.0), tick=i)
        for i, (c, p) in enumerate(readings)
    ]
    ticks = [e.tick for e in fired if e is not None]
    assert ticks == [1, 4, 6] and d.fired == 3 and d.state is CollapseEdge.ABOVE
    event = fired[4]
    assert event is not None
    assert event.coherence == pytest.approx(0.99) and event.peers == 3
    assert event.payload()["t_global_sq"] == pytest.approx(0.99)
    with pytest.raises(InputError, match="threshold"):
        ClusterCollapseDetector(threshold=0.0)
    with pytest.raises(InputError, match="min_peers"):
        ClusterCollapseDetector(threshold=0.5, min_peers=-1)


def run_cluster(sups: list[PhaseSupervisor], ticks: int, dt: float = 0.05, silent=()) -> None:
    """Tick every supervisor and deliver its packets for the next tick (``silent`` never tick)."""
    by_id = {s.node_id: s for s in sups}
    inbox: list[tuple[str, bytes]] = []
    for i in range(ticks):
        now = i * dt
        for dest, data in inbox:
            by_id[dest].receive(data, now)
        inbox = []
        for s in sups:
            if s.node_id in silent:
                continue
            inbox += [(d, m.data) for m in s.tick(now) for d in m.to]


def with_fields(topology: str, n: int, **kw) -> tuple[list[PhaseSupervisor], list[complex]]:
    sups = build_supervisors(n, topology, seed=3, alpha=0.2, **kw)
    rng = np.random.default_rng(n)
    values = [complex(v) for v in 0.9 * np.exp(2j * np.pi * rng.random(n) * 0.2)]
    for s, v in zip(sups, values, strict=True):
        s.set_field(t_sync=v, coherence=abs(v) ** 2)
    return sups, values


@pytest.mark.parametrize(("topology", "n"), [("mesh", 5), ("hub", 6), ("fractal", 21)])
def test_every_cell_gets_the_equal_weight_mean_of_the_whole_cluster(topology, n) -> None:
    """Mesh hears every cell; a hub sends T_global down; a fractal carries group means up
    (weighted by group size) and T_global down: every cell ends with the mean of all N T_sync
    values (own included) and reports all N cells behind it."""
    sups, values = with_fields(topology, n, branching=4)
    run_cluster(sups, 12)
    want = sum(values) / n
    for s in sups:
        assert s.mesh.value == pytest.approx(want, abs=1e-12), s.node_id
        assert s.mesh.cells == pytest.approx(n)
        assert s.snapshot().mesh == s.mesh and s.snapshot().t_sync == s.field.t_sync


def test_ring_counts_its_predecessor_and_itself() -> None:
    """A ring cell hears its predecessor only: T_global = ½(own + predecessor), 1 peer."""
    sups, values = with_fields("ring", 4)
    run_cluster(sups, 3)
    for i, s in enumerate(sups):
        assert s.mesh.value == pytest.approx((values[i] + values[i - 1]) / 2, abs=1e-12)
        assert s.mesh.peers == 1 and s.mesh.cells == 2.0


def test_stale_peers_leave_t_global() -> None:
    """A mesh cell that falls silent leaves its peers' T_global once its timeout passed."""
    sups, values = with_fields("mesh", 4, peer_timeout=0.5)
    run_cluster(sups, 40, silent=("cell-0003",))
    for s in sups[:3]:
        assert s.mesh.peers == 2
        assert s.mesh.value == pytest.approx(sum(values[:3]) / 3, abs=1e-12)


def test_carried_t_sync_survives_a_state_round_trip() -> None:
    """The T_sync values in the inbox are state: a supervisor restored from its canonical bytes
    computes the same T_global and sends the same bytes as the uninterrupted one."""
    sups, _values = with_fields("hub", 5)
    run_cluster(sups, 5)
    hub = sups[0]
    state = SupervisorState.from_bytes(hub.to_bytes())
    assert any(h.t_sync != 0j for h in state.inbox)
    twin = PhaseSupervisor.restore(state, **hub.settings())
    assert [m.data for m in twin.tick(1.0)] == [m.data for m in hub.tick(1.0)]
    assert twin.mesh == hub.mesh


def test_a_silent_child_leaves_its_heads_up_resultant() -> None:
    """A fractal head sums its children's UP phases heard within the peer timeout: once a
    child has been silent longer than that, its last UP no longer counts in the head's own UP
    (whose weight is |Σ e^{2πiθ}|, about the number of locked cells behind it)."""
    sups, _ = with_fields("fractal", 16, branching=4, peer_timeout=0.5)
    by_id = {s.node_id: s for s in sups}
    head, leaf = sups[4], sups[5]  # cell 4 heads the level-1 group {4, 5, 6, 7}
    assert head.plan.is_head(1) and head.plan.head(1) == head.node_id == leaf.plan.head(1)

    def up_weight(now: float, silent: str | None) -> float:
        """Tick everything once at ``now``; the weight of ``head``'s level-1 UP packet."""
        sent = []
        for s in sups:
            if s.node_id != silent:
                sent += [(d, m.data) for m in s.tick(now) for d in m.to]
        weight = None
        for dest, data in sent:
            by_id[dest].receive(data, now)
            packet = decode_packet(data)[0]
            if packet.node_id == head.node_id and packet.kind is PacketKind.UP:
                weight = packet.weight
        assert weight is not None
        return weight

    dt, ticks = 0.05, 0
    for ticks in range(40):  # everyone speaks: four level-0 phases behind the head
        heard = up_weight(ticks * dt, None)
    assert heard == pytest.approx(4.0, abs=0.05)
    for ticks in range(40, 80):  # the leaf is silent for 2 s, four timeouts
        heard = up_weight(ticks * dt, leaf.node_id)
    assert heard == pytest.approx(3.0, abs=0.05)
