"""The resonance map equals the one-shot T̂ at every (lag, ω), whichever FFT path computes it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.core.kairos import temporal_resonance
from becomingone.core.resmap import resonance_map
from becomingone.errors import InputError


def _reference(phi, dt, lags, omegas):
    return np.array(
        [[abs(temporal_resonance(phi, dt, lag, w)) ** 2 for w in omegas] for lag in lags]
    )


@pytest.mark.parametrize(
    "omegas",
    [
        np.linspace(0.3, 9.0, 20),  # uniform grid: chirp-z path
        [0.5, 2.0],  # short grid: direct sum
        [0.1, 0.7, 3.0, 4.0, 9.0, 11.0],  # irregular grid: direct sum
    ],
)
def test_explicit_grid_matches_reference(omegas):
    """Every path of resonance_map reproduces |temporal_resonance|² cell by cell."""
    rng = np.random.default_rng(0)
    phi = np.cumsum(rng.normal(size=(400, 2)), axis=0)
    lags = [0.0, 0.1, 0.55]
    m = resonance_map(phi, 0.05, lags, omegas)
    np.testing.assert_allclose(m.power, _reference(phi, 0.05, lags, omegas), atol=1e-12)
    assert m.power.shape == (3, len(omegas))
    assert m.terms.tolist() == [399, 397, 388]


def test_default_grid_is_exact_fft_bins_up_to_nyquist():
    """The default ω grid runs from 0 to π/dt and each value is exact at its bin."""
    rng = np.random.default_rng(1)
    phi = np.cumsum(rng.normal(size=300))
    m = resonance_map(phi, 0.02, [0.02, 0.1], n_omegas=40)
    assert m.omegas[0] == 0.0
    assert m.omegas[-1] == pytest.approx(np.pi / 0.02)
    np.testing.assert_allclose(m.power, _reference(phi, 0.02, [0.02, 0.1], m.omegas), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(20, 200),
    lag=st.integers(0, 10),
    omega=st.floats(-20, 20),
    seed=st.integers(0, 2**16),
    complex_input=st.booleans(),
)
def test_map_cell_equals_one_shot(n, lag, omega, seed, complex_input):
    """Any single (lag, ω) cell equals the one-shot coherence, for real and complex φ."""
    rng = np.random.default_rng(seed)
    phi = np.cumsum(rng.normal(size=n))
    if complex_input:
        phi = np.exp(1j * phi) * (1 + rng.random(n))
    dt = 0.1
    m = resonance_map(phi, dt, [lag * dt], [omega])
    ref = abs(temporal_resonance(phi, dt, lag * dt, omega)) ** 2
    assert m.power[0, 0] == pytest.approx(ref, abs=1e-12)
    assert 0.0 <= m.power[0, 0] <= 1.0


def test_ticking_phase_peaks_at_its_tick_rate():
    """A phase that advances in ticks at ω/2π per second peaks at that ω (DESIGN §4)."""
    dt = 0.01
    omega = 2 * np.pi * 2.0  # ticks at 2 per second
    n = 2000
    velocity = np.zeros(n)
    velocity[:: round(1 / (2.0 * dt))] = 1.0 / dt
    phi = np.concatenate([[0.0], np.cumsum(velocity * dt)])
    m = resonance_map(phi, dt, [0.5], [omega, 0.75 * omega, 1.3 * omega])
    assert m.power[0, 0] == pytest.approx(1.0, abs=1e-9)
    assert m.power[0, 1] < 0.05 and m.power[0, 2] < 0.05


def test_peak_reports_the_maximum():
    """peak() returns the lag, ω and power of the largest cell."""
    t = np.arange(1000) * 0.01
    m = resonance_map(2 * np.pi * 3 * t, 0.01, [0.01, 0.05], [0.0, 1.0, 2.0])
    _lag, omega, power = m.peak()
    assert omega == 0.0 and power == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"phi": [0.0, 1.0, 2.0], "dt": 0.1, "lags": [1.0]}, "lags"),
        ({"phi": np.arange(10.0), "dt": 0.0, "lags": [0.1]}, "dt"),
        ({"phi": np.arange(10.0), "dt": 0.1, "lags": [-0.1]}, "lags"),
        ({"phi": np.arange(10.0), "dt": 0.1, "lags": []}, "lags"),
        ({"phi": [0.0, np.nan, 1.0], "dt": 0.1, "lags": [0.0]}, "phi"),
        ({"phi": np.arange(10.0), "dt": 0.1, "lags": [0.1], "omegas": [np.inf]}, "omegas"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, parameter):
    """Bad arguments raise InputError naming the parameter."""
    with pytest.raises(InputError) as info:
        resonance_map(**kwargs)
    assert info.value.parameter == parameter


def test_huge_finite_phases_give_the_same_map() -> None:
    """Phases of 1e200 scale (velocities whose squares overflow float64) give the same map as
    the same stream at unit scale: |T̂|² is a ratio, so the common scale cancels."""
    rng = np.random.default_rng(3)
    phi = np.cumsum(rng.normal(1.0, 0.3, 3000))
    base = resonance_map(phi, 0.01, [0.05, 0.2], [0.0, 2.0])
    with np.errstate(over="raise", invalid="raise"):
        huge = resonance_map(phi * 1e200, 0.01, [0.05, 0.2], [0.0, 2.0])
    np.testing.assert_allclose(huge.power, base.power, rtol=1e-9, atol=1e-12)
