"""The simulator against the spectral prediction and the must-hold properties of issue 4."""

from __future__ import annotations

import math

import numpy as np
import pytest

from becomingone.core.phase import cluster_coherence, order_parameter
from becomingone.errors import InputError
from becomingone.keys import NodeKey
from becomingone.sim import predicted_rounds, simulate, slow_mode_variance
from becomingone.sync import PhaseSupervisor, Plan, cps_step, winding_number


@pytest.mark.parametrize("topology", ["mesh", "hub", "fractal"])
@pytest.mark.parametrize("n", [10, 100, 1_000, 10_000, 100_000])
def test_flat_in_n_and_as_predicted(topology: str, n: int) -> None:
    """Mesh, hub and fractal reach C >= 0.99 within 15% of the spectral prediction, any N."""
    predicted = predicted_rounds(topology, n, 0.01, 0.99)
    res = simulate(n, topology, int(predicted * 1.2), alpha=0.01, seed=7)
    got = res.rounds_to(0.99)
    assert got is not None
    assert abs(got - predicted) <= 0.15 * predicted
    assert res.c[-1] >= 0.99


def test_measures_match_core_statistics() -> None:
    """Per-round C and R equal core.phase's cluster_coherence and order_parameter."""
    th0 = np.random.default_rng(3).random(200) * 0.3
    res = simulate(200, "mesh", 0, theta0=th0)
    assert res.c[0] == pytest.approx(cluster_coherence(th0), rel=1e-9)
    assert res.r[0] == pytest.approx(order_parameter(th0), rel=1e-12)
    res = simulate(200, "mesh", 50, theta0=th0)
    assert res.c[-1] == pytest.approx(cluster_coherence(res.theta), rel=1e-9)


def test_vectorised_mesh_matches_a_slow_reference() -> None:
    """The vectorised mesh round equals the CPS rule written out cell by cell."""
    th = np.random.default_rng(5).random(30)
    expected = th.copy()
    for _ in range(20):
        z = np.exp(2j * np.pi * expected).sum()
        target = (np.angle(z) / (2 * np.pi)) % 1.0
        nxt = expected.copy()
        for i in range(expected.size):
            err = ((target - expected[i] + 0.5) % 1.0) - 0.5
            nxt[i] = expected[i] + 0.01 * err
        expected = nxt
    res = simulate(30, "mesh", 20, theta0=th)
    assert np.allclose(res.theta, np.mod(expected, 1.0), atol=1e-12)


@pytest.mark.parametrize("n", [16, 32])
def test_ring_untwisted_converges_as_predicted(n: int) -> None:
    """A winding-0 ring converges within 15% of the slowest-mode prediction."""
    th0 = 0.4 * (np.random.default_rng(1).random(n) - 0.5)
    assert winding_number(th0) == 0
    predicted = predicted_rounds("ring", n, 0.01, 0.99, initial_variance=slow_mode_variance(th0))
    res = simulate(n, "ring", int(predicted * 1.2), theta0=th0)
    got = res.rounds_to(0.99)
    assert got is not None
    assert abs(got - predicted) <= 0.15 * predicted
    assert res.winding == 0 and not res.twisted


def test_ring_twist_is_reported_and_stays() -> None:
    """A ring started with winding 2 stays twisted (C ~ 0) and says so."""
    n = 64
    th0 = (2 * np.arange(n) / n) % 1.0
    res = simulate(n, "ring", 3000, theta0=th0)
    assert res.twisted and res.winding == 2
    assert res.c[-1] < 0.01
    assert res.chord_rounds == 0


def test_ring_break_twist_unwinds_with_chords() -> None:
    """With break_twist, temporary chords unwind the twist and then switch off."""
    n = 64
    th0 = (2 * np.arange(n) / n) % 1.0
    res = simulate(n, "ring", 5000, theta0=th0, break_twist=True)
    assert res.windings is not None
    assert res.windings[0] == 2 and res.winding == 0 and not res.twisted
    assert 0 < res.chord_rounds < 5000
    assert res.c[-1] > 0.5


def test_random_ring_start_is_usually_twisted() -> None:
    """Uniform random phases on a long ring give a non-zero winding, reported per round."""
    res = simulate(1000, "ring", 10)
    assert res.windings is not None and res.windings.shape == (11,)
    assert res.winding == winding_number(res.theta)
    assert res.twisted


@pytest.mark.parametrize("topology", ["mesh", "hub", "fractal"])
def test_pll_locks_frequency_spread(topology: str) -> None:
    """With drifting clocks, beta > 0 locks at C >= 0.99 while beta = 0 keeps a steady lag."""
    plain = simulate(1000, topology, 4000, freq_spread=0.001, seed=2)
    assert plain.c[-1] < 0.5
    assert abs(plain.c[-1] - plain.c[-500]) < 0.02  # a steady state, not slow convergence
    locked = simulate(1000, topology, 4000, beta=0.01**2 / 4, freq_spread=0.001, seed=2)
    assert locked.c[-1] >= 0.99
    assert np.std(locked.frequency) < 1e-6


@pytest.mark.parametrize("topology", ["mesh", "hub", "fractal"])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_loss_slows_by_one_over_one_minus_p(topology: str, p: float) -> None:
    """Loss p stretches the rounds to C >= 0.99 by about 1/(1 - p)."""
    base = simulate(2000, topology, 1000, seed=4).rounds_to(0.99)
    lossy = simulate(2000, topology, 2000, seed=4, loss=p).rounds_to(0.99)
    assert base is not None and lossy is not None
    assert lossy / base == pytest.approx(1.0 / (1.0 - p), rel=0.1)


def test_large_n_coupling_is_a_mean() -> None:
    """At N = 1e5 the step stays bounded by alpha (a mean, not a sum) and converges."""
    res = simulate(100_000, "mesh", 5, seed=1)
    moved = np.abs(((res.theta - simulate(100_000, "mesh", 4, seed=1).theta) + 0.5) % 1 - 0.5)
    assert moved.max() <= 0.01 * 0.5 + 1e-12
    assert math.isfinite(res.c[-1])


def test_bad_arguments_name_the_parameter() -> None:
    """Bad arguments raise InputError naming the parameter."""
    for kwargs, name in [
        ({"alpha": 1.5}, "alpha"),
        ({"loss": 1.0}, "loss"),
        ({"beta": float("nan")}, "beta"),
        ({"branching": 1}, "branching"),
        ({"theta0": [0.1, float("inf")]}, "theta0"),
    ]:
        with pytest.raises(InputError) as info:
            simulate(2, "mesh", 3, **kwargs)  # type: ignore[arg-type]
        assert info.value.parameter == name
    with pytest.raises(InputError, match="topology"):
        simulate(2, "star", 3)


@pytest.mark.parametrize("n", [8, 20])
def test_cps_and_simulator_share_one_trajectory(n: int) -> None:
    """An n-cell CPS mesh (β > 0, drifting frequencies, tick dt = 1 s) and the simulator,
    started from the same phases and frequencies, give the same phases (to 1e-12) and
    frequencies after every round: both apply one update law, sync.law.cps_step. n = 20 takes
    the supervisor's vectorised resultant (16 or more heard phases), n = 8 the plain sum."""
    alpha, beta, rounds = 0.05, 0.002, 60
    rng = np.random.default_rng(11)
    th0 = rng.random(n) * 0.6
    f0 = rng.normal(0.0, 0.01, n)
    names = [f"c{i}" for i in range(n)]
    keys = [NodeKey.from_seed(bytes([i + 1]) * 32) for i in range(n)]
    roster = {m: k.public_bytes for m, k in zip(names, keys, strict=True)}
    sups = [
        PhaseSupervisor(
            key=keys[i],
            plan=Plan.for_member("mesh", names, names[i]),
            keys=roster,
            alpha=alpha,
            beta=beta,
            theta=float(th0[i]),
            frequency=float(f0[i]),
        )
        for i in range(n)
    ]
    pending: list[tuple[str, bytes]] = []
    for k in range(rounds + 1):
        now = float(k)
        for dest, data in pending:
            sups[names.index(dest)].receive(data, now)
        pending = [(d, m.data) for s in sups for m in s.tick(now) for d in m.to]
        if k == 0:
            continue  # the first tick only introduces the cells (nothing heard yet)
        sim = simulate(n, "mesh", k, alpha=alpha, beta=beta, theta0=th0, freq0=f0)
        diff = np.array([s.theta for s in sups]) - sim.theta
        assert np.max(np.abs(diff - np.rint(diff))) < 1e-12, k
        assert np.allclose([s.frequency for s in sups], sim.frequency, rtol=0, atol=1e-12)
    assert sum(sum(s.rejected.values()) for s in sups) == 0
    assert not np.allclose(sups[0].frequency, f0[0])  # the PLL term did act


def test_cps_step_is_one_law_for_floats_and_arrays() -> None:
    """cps_step gives Θ + f·dt + α·err and f + β·err for floats and, elementwise, arrays."""
    assert cps_step(0.25, 2.0, 0.1, 0.5, 0.2, 0.125) == (0.25 + 0.25 + 0.05, 2.0 + 0.02)
    th, f, err = np.array([0.1, 0.9]), np.array([1.0, -1.0]), np.array([0.2, -0.2])
    new_th, new_f = cps_step(th, f, err, 0.5, 0.1, 0.5)
    assert np.allclose(new_th, [0.1 + 0.5 + 0.1, 0.9 - 0.5 - 0.1])
    assert np.allclose(new_f, [1.02, -1.02])


def test_freq0_is_checked() -> None:
    """freq0 must hold n finite frequencies."""
    with pytest.raises(InputError, match="freq0"):
        simulate(3, "mesh", 1, freq0=[0.0, 0.0])
    with pytest.raises(InputError, match="freq0"):
        simulate(2, "mesh", 1, freq0=[0.0, math.nan])
