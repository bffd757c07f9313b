"""Encoders turn phase samples, real signals, event trains and embeddings into φ."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.core.encoders import (
    phase_from_embeddings,
    phase_from_events,
    phase_from_samples,
    phase_from_signal,
)
from becomingone.core.kairos import temporal_resonance
from becomingone.errors import InputError


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.floats(-3.0, 3.0), min_size=2, max_size=60),
    start=st.floats(-100, 100),
)
def test_unwrapping_a_wrapped_phase_recovers_it(steps, start):
    """A phase whose steps stay below π is recovered from its wrapped form (up to 2π·k)."""
    phi = start + np.concatenate([[0.0], np.cumsum(steps)])
    wrapped = np.angle(np.exp(1j * phi))
    out = phase_from_samples(wrapped, wrapped=True)
    offset = out[0] - phi[0]
    assert abs(offset / (2 * np.pi) - round(offset / (2 * np.pi))) < 1e-9
    np.testing.assert_allclose(out - offset, phi, atol=1e-9)


def test_cycles_are_converted_to_radians():
    """unit='cycles' multiplies by 2π and keeps the shape (N, C)."""
    out = phase_from_samples([[0.0, 0.5], [0.25, 1.0]], unit="cycles")
    np.testing.assert_allclose(out, [[0.0, np.pi], [np.pi / 2, 2 * np.pi]])


def test_analytic_signal_phase_of_a_sine_has_its_frequency():
    """The Hilbert phase of a 7 Hz cosine advances at 2π·7 rad/s and resonates at ω = 0."""
    dt = 0.002
    t = np.arange(4000) * dt
    phi = phase_from_signal(np.cos(2 * np.pi * 7.0 * t + 0.3), dt)
    rate = np.median(np.diff(phi)) / dt
    assert rate == pytest.approx(2 * np.pi * 7.0, rel=1e-3)
    assert abs(temporal_resonance(phi[200:-200], dt, 0.05, 0.0)) ** 2 > 0.999


def test_band_pass_lifts_a_buried_oscillation():
    """With a band-pass around it, a sine under equal-power noise resonates far more."""
    rng = np.random.default_rng(3)
    dt = 0.01
    t = np.arange(3000) * dt
    x = rng.normal(size=t.size) + 1.4 * np.sin(2 * np.pi * 5.0 * t)
    raw = abs(temporal_resonance(phase_from_signal(x, dt), dt, 0.1, 0.0)) ** 2
    banded = abs(temporal_resonance(phase_from_signal(x, dt, band=(3, 8)), dt, 0.1, 0.0)) ** 2
    assert banded > 0.95 > raw


def _offset_sine(trend: float = 0.0) -> tuple[np.ndarray, float]:
    """1000 + trend·t + sin(2π·5t) + small noise: an offset ≫ the amplitude, 30 s at 100 Hz."""
    rng = np.random.default_rng(1)
    dt = 0.01
    t = np.arange(3000) * dt
    return 1000.0 + trend * t + np.sin(2 * np.pi * 5.0 * t) + 0.05 * rng.normal(size=t.size), dt


def test_signal_with_large_offset_resonates_once_the_mean_is_removed():
    """The analytic signal of 1000 + sin(2π·5t) barely turns, so its raw phase gives |T̂|² ≈ 0
    at a quarter-period lag; the encoder removes the mean first and the sine resonates."""
    x, dt = _offset_sine()
    coherence = abs(temporal_resonance(phase_from_signal(x, dt), dt, 0.05, 0.0)) ** 2
    assert coherence > 0.9
    raw = abs(temporal_resonance(phase_from_signal(x, dt, detrend="none"), dt, 0.05, 0.0)) ** 2
    assert raw < 0.01


def test_linear_detrend_rescues_a_signal_on_a_ramp():
    """A ramp of 50 per second under the sine defeats mean removal; detrend="linear" does not."""
    x, dt = _offset_sine(trend=50.0)
    mean_only = abs(temporal_resonance(phase_from_signal(x, dt), dt, 0.05, 0.0)) ** 2
    linear = phase_from_signal(x, dt, detrend="linear")
    assert abs(temporal_resonance(linear, dt, 0.05, 0.0)) ** 2 > 0.9 > mean_only


def test_detrend_is_per_channel():
    """Each channel loses its own mean: two offsets give the phases of the two sines."""
    t = np.arange(1000) * 0.01
    x = np.stack([500 + np.cos(2 * np.pi * 3 * t), -80 + np.cos(2 * np.pi * 6 * t)], axis=1)
    rates = np.median(np.diff(phase_from_signal(x, 0.01), axis=0), axis=0) / 0.01 / (2 * np.pi)
    np.testing.assert_allclose(rates, [3.0, 6.0], rtol=1e-3)


def test_band_below_the_resolution_is_refused_before_filtering():
    """A band far below 1/(N·dt) would make a singular Butterworth filter (LinAlgError
    today); it is an InputError naming the band and the data's resolution."""
    x = np.random.default_rng(0).normal(size=3000)
    for band in ((1e-9, 2e-9), (1e-3, 2e-3)):
        with pytest.raises(InputError, match="resolution") as info:
            phase_from_signal(x, 0.01, band=band)
        assert info.value.parameter == "band"


def test_multichannel_signal_keeps_channels():
    """A (N, C) signal gives a (N, C) phase, each channel on its own."""
    t = np.arange(1000) * 0.01
    x = np.stack([np.cos(2 * np.pi * 3 * t), np.cos(2 * np.pi * 6 * t)], axis=1)
    phi = phase_from_signal(x, 0.01)
    assert phi.shape == (1000, 2)
    rates = np.median(np.diff(phi, axis=0), axis=0) / 0.01 / (2 * np.pi)
    np.testing.assert_allclose(rates, [3.0, 6.0], rtol=1e-3)


def test_events_give_one_cycle_per_event_linear_between():
    """Event phase is 2π·k at event k and linear in between, extrapolated past the ends."""
    start, phi = phase_from_events([1.0, 2.0, 4.0], 0.5, t0=0.5, t_end=5.0)
    assert start == 0.5
    cycles = phi / (2 * np.pi)
    expected = [-0.5, 0.0, 0.5, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5]
    np.testing.assert_allclose(cycles, expected, atol=1e-12)


def test_periodic_events_resonate():
    """A regular event train has a steady phase velocity, so it collapses at ω = 0."""
    ts = np.arange(0, 60, 0.8)
    _, phi = phase_from_events(ts, 0.05)
    assert abs(temporal_resonance(phi, 0.05, 0.4, 0.0)) ** 2 > 0.999


def test_embeddings_are_normalised_rows():
    """Embedding rows are L2-normalised and kept as channels."""
    out = phase_from_embeddings([[3.0, 4.0], [0.0, 2.0]])
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 1.0]])


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda: phase_from_samples([0.0, 1.0], unit="deg"), "unit"),
        (lambda: phase_from_samples([[[0.0]]]), "theta"),
        (lambda: phase_from_samples([1j, 2j]), "theta"),
        (lambda: phase_from_signal([1.0, 2.0, 3.0, 4.0, 5.0], 0.0), "dt"),
        (lambda: phase_from_signal([1.0, 2.0], 0.1), "x"),
        (lambda: phase_from_signal(np.ones(100), 0.01, band=(8, 3)), "band"),
        (lambda: phase_from_signal(np.ones(100), 0.01, band=(3, 80)), "band"),
        (lambda: phase_from_signal([np.nan] * 10, 0.01), "x"),
        (lambda: phase_from_signal(np.ones(100), 0.01, detrend="quadratic"), "detrend"),
        (lambda: phase_from_events([1.0], 0.1), "timestamps"),
        (lambda: phase_from_events([1.0, 1.0, 2.0], 0.1), "timestamps"),
        (lambda: phase_from_events([1.0, 2.0], 0.1, t0=3.0), "t_end"),
        (lambda: phase_from_embeddings([[0.0, 0.0], [1.0, 0.0]]), "embeddings"),
    ],
)
def test_bad_input_names_the_parameter(call, parameter):
    """Each encoder rejects bad input with InputError naming the parameter."""
    with pytest.raises(InputError) as info:
        call()
    assert info.value.parameter == parameter


def test_huge_finite_signal_keeps_its_phase() -> None:
    """A finite signal near the float64 limit (1e308 scale) gives the same phase as the same
    signal at unit scale: no overflow in detrending, filtering or the Hilbert transform."""
    t = np.arange(2000) * 0.01
    x = 0.5 + np.sin(2 * np.pi * 5 * t)
    small = phase_from_signal(x, 0.01, band=(3.0, 8.0))
    with np.errstate(all="raise"):
        huge = phase_from_signal(x * 1e308, 0.01, band=(3.0, 8.0))
    assert np.all(np.isfinite(huge))
    np.testing.assert_allclose(huge, small, rtol=0, atol=1e-9)
