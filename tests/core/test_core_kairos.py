"""One-shot KAIROS temporal resonance (DESIGN.md §4) against a pure-Python reference, and its
invariants: |T̂| ≤ 1, realness at ω = 0, scale and offset invariance, time-shift phase."""

from __future__ import annotations

import cmath

import numpy as np
import pytest
from core_reference import ref_temporal_resonance, ref_velocity
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import Case, cases, make_phi

from becomingone.core.kairos import phase_velocity, temporal_resonance

TOL = 1e-9
FAST = settings(max_examples=120)


@FAST
@given(cases())
def test_temporal_resonance_matches_reference(case: Case) -> None:
    """T̂ equals the direct summation of DESIGN §4 for random φ: real or complex, 1-D or
    (N, C), any lag from 0 to M − 1 samples, ω = 0 or not, t0 = 0 or not."""
    got = temporal_resonance(case.phi, case.dt, case.lag, case.omega, case.t0)
    want, _ = ref_temporal_resonance(case.phi, case.dt, case.lag, case.omega, case.t0)
    assert isinstance(got, complex)
    assert abs(got - want) <= TOL


@FAST
@given(cases(max_n=200))
def test_resonance_is_bounded_by_one(case: Case) -> None:
    """|T̂| ≤ 1 (Cauchy–Schwarz), also after rounding."""
    got = temporal_resonance(case.phi, case.dt, case.lag, case.omega, case.t0)
    assert abs(got) <= 1.0


@FAST
@given(cases(complex_ok=False))
def test_real_phase_at_zero_omega_gives_real_resonance(case: Case) -> None:
    """Real φ at ω = 0 gives a real T̂ (the sum has no complex factor), whatever t0."""
    got = temporal_resonance(case.phi, case.dt, case.lag, 0.0, case.t0)
    assert got.imag == 0.0


@FAST
@given(cases(), st.floats(0.01, 100.0), st.floats(-50.0, 50.0))
def test_resonance_ignores_scale_and_offset(case: Case, scale: float, offset: float) -> None:
    """T̂ depends on the phase velocity only through its shape: scaling φ by a > 0 or adding
    a constant leaves T̂ unchanged."""
    base = temporal_resonance(case.phi, case.dt, case.lag, case.omega, case.t0)
    moved = temporal_resonance(case.phi * scale + offset, case.dt, case.lag, case.omega, case.t0)
    assert abs(moved - base) <= TOL


@FAST
@given(cases(), st.floats(-100.0, 100.0))
def test_start_time_shift_rotates_by_omega(case: Case, shift: float) -> None:
    """Moving t0 by Δ multiplies T̂ by e^{iωΔ} (the clock enters only through e^{iωt_n})."""
    base = temporal_resonance(case.phi, case.dt, case.lag, case.omega, case.t0)
    moved = temporal_resonance(case.phi, case.dt, case.lag, case.omega, case.t0 + shift)
    want = base * cmath.exp(1j * case.omega * ((case.t0 + shift) - case.t0))
    assert abs(moved - want) <= TOL


@FAST
@given(cases(min_n=3))
def test_zero_lag_at_zero_omega_is_one(case: Case) -> None:
    """With lag 0 and ω = 0 every product is |φ̇|², so T̂ = 1 unless φ is constant (then 0)."""
    got = temporal_resonance(case.phi, case.dt, 0.0, 0.0, case.t0)
    if np.all(np.diff(case.phi, axis=0) == 0):
        assert got == 0j
    else:
        assert abs(got - 1.0) <= 1e-12


@FAST
@given(cases())
def test_phase_velocity_matches_reference(case: Case) -> None:
    """phase_velocity is (φ[n+1] − φ[n]) / dt with the shape (N−1,) or (N−1, C) of φ."""
    v = phase_velocity(case.phi, case.dt)
    assert v.shape == (case.phi.shape[0] - 1, *case.phi.shape[1:])
    want = np.asarray(ref_velocity([list(np.atleast_1d(r)) for r in case.phi], case.dt))
    np.testing.assert_allclose(v.reshape(want.shape), want, rtol=1e-15, atol=0)


def test_constant_phase_gives_zero() -> None:
    """A phase that never moves has no velocity energy: T̂ = 0 (not NaN)."""
    assert temporal_resonance(np.full(50, 2.0), 0.1, 0.3, 0.0) == 0j
    assert temporal_resonance(np.full((50, 2), 1 + 1j), 0.1, 0.3, 1.0) == 0j


@pytest.mark.parametrize("channels", [None, 1, 4])
def test_steady_oscillation_resonates_at_zero_omega(channels: int | None) -> None:
    """φ = 2πft (a steady oscillator, any number of channels) gives |T̂|² = 1 at ω = 0 for
    every lag."""
    t = np.arange(400) * 0.01
    phi = 2 * np.pi * 5.0 * t
    if channels is not None:
        phi = np.stack([phi * (k + 1) for k in range(channels)], axis=1)
    for lag in (0.0, 0.01, 0.37, 2.0):
        assert abs(temporal_resonance(phi, 0.01, lag, 0.0)) ** 2 == pytest.approx(1.0, abs=1e-12)


def test_lag_rounds_to_whole_samples() -> None:
    """lag is rounded to L = round(τ̄/dt) samples: 0.26 s and 0.34 s at dt = 0.1 both mean 3."""
    phi = make_phi(np.random.default_rng(5), 80, None, False, "walk")
    want = temporal_resonance(phi, 0.1, 0.3, 1.5)
    assert temporal_resonance(phi, 0.1, 0.26, 1.5) == pytest.approx(want, abs=1e-15)
    assert temporal_resonance(phi, 0.1, 0.34, 1.5) == pytest.approx(want, abs=1e-15)
    assert abs(temporal_resonance(phi, 0.1, 0.4, 1.5) - want) > 1e-6
