"""Statistics of the KAIROS collapse decision (DESIGN.md §4): noise collapses no more often than
``false_alarm_probability`` says, coherent oscillators collapse at ω = 0, and a phase advancing
in ticks at ω/2π per second resonates fully at that ω while smooth modulations do not.

The noise tests use fixed seeds (deterministic) and a binomial bound at the 1 − 1e-6 quantile.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from becomingone.core.kairos import false_alarm_probability, temporal_resonance
from becomingone.core.stream import KairosEngine

TERMS = 200
LAG = 3
DT = 0.01
WINDOWS = 4000
#: ω·dt = 1 rad per sample: far from 0 and from the Nyquist ±π, where the sum turns real.
OMEGA_OFF = 1.0 / DT


def threshold_for(target: float, omega: float) -> float:
    """The I_c at which the stated false-alarm probability with K = TERMS is ``target``."""
    if omega == 0.0:
        return 2.0 * special.erfcinv(target) ** 2 / TERMS
    return math.log(1.0 / target) / TERMS


def bounds(p: float, n: int) -> tuple[int, int]:
    """Hit counts outside which a Binomial(n, p) (upper) or Binomial(n, p/2) (lower) model
    is rejected at the 1e-6 level."""
    upper = int(stats.binom.ppf(1.0 - 1e-6, n, p))
    lower = int(stats.binom.ppf(1e-6, n, p / 2.0))
    return lower, upper


@pytest.mark.parametrize("omega", [0.0, OMEGA_OFF, 37.0])
@pytest.mark.parametrize("target", [0.01, 0.04])
def test_noise_collapses_no_more_than_false_alarm_probability(omega: float, target: float) -> None:
    """Over 4000 independent windows of random-walk phase (white-noise velocity, K = 200
    terms, random t0), the number with |T̂|² ≥ I_c stays below the binomial 1 − 1e-6
    quantile for the stated probability (1 % and 4 %), at ω = 0 and ω ≠ 0 — and is not
    below half of it either, so the stated probability is not vacuously large."""
    ic = threshold_for(target, omega)
    p = false_alarm_probability(TERMS, ic, omega)
    assert p == pytest.approx(target, rel=1e-9)
    rng = np.random.default_rng(20240 + int(omega) + int(1000 * target))
    hits = 0
    for _ in range(WINDOWS):
        phi = np.cumsum(rng.normal(size=TERMS + LAG + 1))
        t0 = float(rng.uniform(0.0, 1e4))
        hits += abs(temporal_resonance(phi, DT, LAG * DT, omega, t0)) ** 2 >= ic
    lower, upper = bounds(p, WINDOWS)
    assert lower <= hits <= upper, (hits, p * WINDOWS)


@pytest.mark.parametrize("omega", [0.0, OMEGA_OFF])
def test_streaming_engine_false_alarms_match(omega: float) -> None:
    """The streaming engine's ``collapsed`` flag, read after every W new samples of one long
    noise stream (disjoint windows), fires no more often than false_alarm_probability."""
    ic = threshold_for(0.03, omega)
    eng = KairosEngine(dt=DT, lag=LAG * DT, omega=omega, window=TERMS * DT, threshold=ic)
    rng = np.random.default_rng(7 + int(omega))
    phi = np.cumsum(rng.normal(size=TERMS * 3001 + LAG + 1))
    eng.update(phi[: TERMS + LAG + 1])
    hits = 0
    for k in range(3000):
        lo = TERMS + LAG + 1 + k * TERMS
        res = eng.update(phi[lo : lo + TERMS])
        assert res.terms == TERMS
        hits += res.collapsed
    p = false_alarm_probability(TERMS, ic, omega)
    lower, upper = bounds(p, 3000)
    assert lower <= hits <= upper, (hits, p * 3000)


def test_false_alarm_probability_formulas() -> None:
    """P = exp(−K·I_c) for ω ≠ 0 and erfc(sqrt(K·I_c/2)) for ω = 0; 1 at I_c ≤ 0; 0 with no
    terms or I_c > 1; decreasing in K and I_c."""
    assert false_alarm_probability(100, 0.05, 1.0) == pytest.approx(math.exp(-5.0), rel=1e-15)
    assert false_alarm_probability(100, 0.05, 0.0) == pytest.approx(
        math.erfc(math.sqrt(2.5)), rel=1e-14
    )
    assert false_alarm_probability(10, 0.0, 0.0) == 1.0
    assert false_alarm_probability(0, 0.5, 1.0) == 0.0
    ps = [false_alarm_probability(k, 0.02, w) for w in (0.0, 2.0) for k in (10, 100, 1000)]
    assert ps[0] > ps[1] > ps[2] and ps[3] > ps[4] > ps[5]


@settings(max_examples=30)
@given(
    st.floats(0.5, 20.0),
    st.integers(0, 2**32 - 1),
    st.integers(1, 40),
    st.sampled_from([None, 3]),
)
def test_coherent_oscillators_collapse_at_zero_omega(
    freq: float, seed: int, lag_samples: int, channels: int | None
) -> None:
    """φ = 2πft plus tiny noise (1e-3 rad), one or several channels at different
    frequencies, collapses at ω = 0 with I_c = 0.95, one-shot and in the streaming engine."""
    rng = np.random.default_rng(seed)
    t = np.arange(1500) * DT
    freqs = [freq] if channels is None else [freq * (1 + 0.3 * k) for k in range(channels)]
    phi = np.stack([2 * np.pi * f * t for f in freqs], axis=1)
    phi = phi + 1e-3 * rng.normal(size=phi.shape)
    if channels is None:
        phi = phi[:, 0]
    lag = lag_samples * DT
    assert abs(temporal_resonance(phi, DT, lag, 0.0)) ** 2 >= 0.95
    eng = KairosEngine(dt=DT, lag=lag, omega=0.0, window=5.0, channels=channels or 1)
    res = eng.update(phi)
    assert res.collapsed and res.terms == 500


def test_steady_oscillator_does_not_resonate_off_zero_omega() -> None:
    """A steady oscillator does not collapse at ω ≠ 0: the rotating factor averages out."""
    t = np.arange(2000) * DT
    phi = 2 * np.pi * 5.0 * t
    assert abs(temporal_resonance(phi, DT, 0.1, 2.0)) ** 2 < 0.05


@pytest.mark.parametrize("ticks_per_second", [0.5, 2.0, 5.0])
def test_ticking_phase_resonates_at_its_omega(ticks_per_second: float) -> None:
    """A phase that advances in ticks at ω/2π per second (velocity a pulse train) reaches
    |T̂|² ≈ 1 at that ω with the lag one period, and the engine collapses there; at 1.5·ω
    the pulses' rotating factors cancel."""
    omega = 2 * np.pi * ticks_per_second
    period = 1.0 / ticks_per_second
    n = round(20 * period / DT) + 1
    steps = round(period / DT)
    v = np.zeros(n - 1)
    v[7::steps] = 1.0 / DT
    phi = np.concatenate([[0.0], np.cumsum(v) * DT])
    assert abs(temporal_resonance(phi, DT, period, omega, 3 * period)) ** 2 == pytest.approx(
        1.0, abs=1e-9
    )
    assert abs(temporal_resonance(phi, DT, period, 1.5 * omega)) ** 2 < 0.1
    eng = KairosEngine(dt=DT, lag=period, omega=omega, window=10 * period, t0=3 * period)
    assert eng.update(phi).collapsed


def test_smooth_modulation_stays_far_below_collapse() -> None:
    """A smooth velocity modulation 1 + ½cos(ωt) (period 0.5 s, lag one period) stays far
    below 0.95 at that ω: a real sequence splits its spectrum between ±ω."""
    omega = 2 * np.pi * 2.0
    t = np.arange(4001) * DT
    v = 1.0 + 0.5 * np.cos(omega * t[:-1])
    phi = np.concatenate([[0.0], np.cumsum(v) * DT])
    assert abs(temporal_resonance(phi, DT, 0.5, omega)) ** 2 < 0.5
