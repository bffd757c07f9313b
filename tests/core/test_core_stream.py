"""The streaming KairosEngine (DESIGN.md §4): chunking invariance, agreement with the one-shot
``temporal_resonance`` over the window and with the pure-Python reference, snapshot/restore,
drift after a huge burst, and absolute time without drift."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

import numpy as np
import pytest
from core_reference import ref_windowed
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import Case, cases, make_phi

from becomingone.core.kairos import Resonance, temporal_resonance
from becomingone.core.stream import KairosEngine, KairosState

#: "1e-9 relative": T̂ is normalised (|T̂| ≤ 1 by Cauchy–Schwarz), so the error is measured
#: against that unit scale.
TOL = 1e-9


def engine_for(case: Case, window_terms: int, threshold: float = 0.95) -> KairosEngine:
    """An engine with the case's parameters and a window of ``window_terms`` products."""
    channels = 1 if case.phi.ndim == 1 else case.phi.shape[1]
    return KairosEngine(
        dt=case.dt,
        lag=case.lag,
        omega=case.omega,
        window=window_terms * case.dt,
        threshold=threshold,
        channels=channels,
        t0=case.t0,
    )


def window_oneshot(case: Case, n_samples: int, window_terms: int) -> tuple[complex, int]:
    """temporal_resonance over the latest W indices n ≥ L after ``n_samples`` samples."""
    m = n_samples - 1
    if m <= case.big_l:
        return 0j, 0
    first = max(case.big_l, m - window_terms)
    s = first - case.big_l
    value = temporal_resonance(
        case.phi[s:n_samples], case.dt, case.lag, case.omega, case.t0 + s * case.dt
    )
    return value, m - first


def split(n: int, sizes: list[int]) -> list[int]:
    """Chunk boundaries covering 0..n, cycling through ``sizes``."""
    bounds = [0]
    i = 0
    while bounds[-1] < n:
        bounds.append(min(n, bounds[-1] + sizes[i % len(sizes)]))
        i += 1
    return bounds


def check_result(res: Resonance, eng: KairosEngine) -> None:
    """The fields of a Resonance are consistent with each other and the threshold."""
    assert abs(res.value) <= 1.0
    assert res.coherence == pytest.approx(abs(res.value) ** 2, abs=1e-15)
    assert 0.0 <= res.coherence <= 1.0
    assert res.collapsed == (res.terms > 0 and res.coherence >= eng.threshold)


@st.composite
def streams(draw: st.DrawFn, max_n: int = 120) -> tuple[Case, int, list[int]]:
    """A case, a window W ≥ max(L, 1) in terms and chunk sizes (1 appears often)."""
    case = draw(cases(min_n=2, max_n=max_n))
    n = case.phi.shape[0]
    w = draw(st.integers(max(case.big_l, 1), n + 5))
    sizes = draw(st.lists(st.one_of(st.just(1), st.integers(1, n)), min_size=1, max_size=8))
    return case, w, sizes


@settings(max_examples=120)
@given(streams())
def test_any_chunking_equals_one_shot_and_window_resonance(
    stream: tuple[Case, int, list[int]],
) -> None:
    """After every chunk (random sizes, including 1), the engine's T̂, terms and time equal
    a fresh engine fed the same prefix in one piece and ``temporal_resonance`` over the
    window, within 1e-9; the final value also equals the pure-Python windowed reference."""
    case, w, sizes = stream
    eng = engine_for(case, w)
    bounds = split(case.phi.shape[0], sizes)
    for lo, hi in pairwise(bounds):
        res = eng.update(case.phi[lo:hi])
        check_result(res, eng)
        whole = engine_for(case, w).update(case.phi[:hi])
        assert abs(res.value - whole.value) <= TOL
        assert res.terms == whole.terms
        want, terms = window_oneshot(case, hi, w)
        assert res.terms == terms
        assert abs(res.value - want) <= TOL
        assert res.time == case.t0 + (hi - 1) * case.dt
    ref, terms = ref_windowed(case.phi, case.dt, case.lag, case.omega, w * case.dt, case.t0)
    assert abs(eng.last.value - ref) <= TOL and eng.last.terms == terms


@settings(max_examples=12)
@given(streams(max_n=3000), st.lists(st.integers(1, 400), min_size=1, max_size=6))
def test_long_streams_cross_many_resummations(
    stream: tuple[Case, int, list[int]], sizes: list[int]
) -> None:
    """Streams many windows long (periodic exact re-summation happens many times) still
    equal ``temporal_resonance`` over the window after every chunk."""
    case, _, _ = stream
    w = max(case.big_l, 1) + 37
    eng = engine_for(case, w)
    bounds = split(case.phi.shape[0], [1, *sizes])
    for lo, hi in pairwise(bounds):
        res = eng.update(case.phi[lo:hi])
        want, terms = window_oneshot(case, hi, w)
        assert res.terms == terms
        assert abs(res.value - want) <= TOL


def test_window_longer_than_data_equals_whole_sequence() -> None:
    """With a window longer than the stream, the engine equals temporal_resonance over all
    of it (terms = M − L)."""
    phi = make_phi(np.random.default_rng(3), 300, 2, True, "walk")
    eng = KairosEngine(dt=0.1, lag=0.5, omega=1.3, window=100.0, channels=2, t0=7.0)
    res = eng.update(phi)
    assert res.terms == 299 - 5
    assert abs(res.value - temporal_resonance(phi, 0.1, 0.5, 1.3, 7.0)) <= TOL


@settings(max_examples=40)
@given(streams(max_n=150), st.data())
def test_snapshot_restore_resumes_exactly(
    stream: tuple[Case, int, list[int]], data: st.DataObject
) -> None:
    """A snapshot taken mid-stream, restored directly or through KairosState.to_bytes /
    from_bytes, continues with results identical (==) to the uninterrupted engine; the
    snapshot is a deep copy that later updates do not change."""
    case, w, sizes = stream
    n = case.phi.shape[0]
    cut = data.draw(st.integers(0, n))
    eng = engine_for(case, w, threshold=0.5)
    eng.update(case.phi[:cut])
    snap = eng.snapshot()
    frozen = snap.to_bytes()
    copies = [KairosEngine.restore(snap), KairosEngine.restore(KairosState.from_bytes(frozen))]
    for copy in copies:
        assert copy.last == eng.last and copy.samples == eng.samples == cut
    bounds = split(n - cut, sizes)
    for lo, hi in pairwise(bounds):
        chunk = case.phi[cut + lo : cut + hi]
        want = eng.update(chunk)
        for copy in copies:
            assert copy.update(chunk) == want
    assert snap.to_bytes() == frozen
    again = KairosEngine.restore(KairosState.from_bytes(frozen))
    assert again.samples == cut


def test_snapshot_bytes_round_trip_preserves_every_field() -> None:
    """to_bytes/from_bytes reproduces every field of a mid-stream state, with dtypes."""
    phi = make_phi(np.random.default_rng(11), 97, 3, True, "walk")
    eng = KairosEngine(dt=0.02, lag=0.1, omega=2.0, window=0.6, channels=3, t0=-4.0)
    eng.update(phi)
    snap = eng.snapshot()
    back = KairosState.from_bytes(snap.to_bytes())
    for name in snap.__dataclass_fields__:
        a, b = getattr(snap, name), getattr(back, name)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), name
        else:
            assert a == b and type(a) is type(b), name


def test_empty_update_changes_nothing() -> None:
    """An empty chunk returns the previous result and leaves the state as it was."""
    phi = make_phi(np.random.default_rng(2), 40, None, False, "walk")
    eng = KairosEngine(dt=0.1, lag=0.2, omega=0.0, window=1.0)
    before = eng.update(phi)
    state = eng.snapshot().to_bytes()
    assert eng.update(np.zeros(0)) == before
    assert eng.snapshot().to_bytes() == state


@pytest.mark.parametrize("sizes", [[1], [7], [64], [5000], [1, 3, 250, 2, 999]])
@pytest.mark.parametrize("channels", [None, 2])
def test_huge_burst_leaves_no_drift(sizes: list[int], channels: int | None) -> None:
    """A burst of 1e8-amplitude velocities, then small noise: once the burst has left the
    window the engine still equals ``temporal_resonance`` over the window to 1e-9 (the
    running sums were re-computed, not left with the burst's rounding error)."""
    rng = np.random.default_rng(42)
    c = 1 if channels is None else channels
    v = np.concatenate(
        [
            rng.normal(size=(300, c)),
            1e8 * rng.normal(size=(60, c)),
            1e-3 * rng.normal(size=(1500, c)),
        ]
    )
    phi = np.cumsum(v, axis=0)
    if channels is None:
        phi = phi[:, 0]
    case = Case(phi=phi, dt=0.01, big_l=3, omega=0.0 if channels is None else 5.0, t0=100.0)
    w = 200
    eng = engine_for(case, w)
    burst_end = 360 + case.big_l  # last velocity index touched by the burst, plus the lag
    checked = 0
    for lo, hi in pairwise(split(phi.shape[0], sizes)):
        res = eng.update(phi[lo:hi])
        want, _ = window_oneshot(case, hi, w)
        if hi - 1 - w > burst_end:
            assert abs(res.value - want) <= TOL, (lo, hi, res.value, want)
            checked += 1
    assert checked >= 1
    assert abs(eng.last.value - want) <= TOL


def test_absolute_time_does_not_drift_over_ten_million_samples() -> None:
    """After 1.2·10⁷ samples fed in a few big chunks, ``.last.time`` is exactly
    t0 + (N−1)·dt (the float expression, within one ulp of the exact value), after every
    chunk: no clock accumulated sample by sample."""
    t0, dt = 1_700_000_000.123, 1e-3
    eng = KairosEngine(dt=dt, lag=0.05, omega=0.0, window=10.0, t0=t0)
    chunk = 3_000_000
    ramp = 2 * np.pi * 3.0 * dt * np.arange(chunk)
    total = 0
    for k in range(4):
        res = eng.update(ramp + ramp[-1] * k)
        total += chunk
        assert res.time == t0 + (total - 1) * dt
    exact = Fraction(t0) + (total - 1) * Fraction(dt)
    assert abs(Fraction(res.time) - exact) <= Fraction(2) ** -22  # one ulp at 1.7e9
    assert eng.samples == total and eng.time_of(total - 1) == res.time
    assert res.terms == 10_000 and res.collapsed


#: π to 60 digits, for reducing ω·t modulo 2π exactly in the reference below.
PI = Fraction("3.14159265358979323846264338327950288419716939937510582097494459230781640628620")


@pytest.mark.parametrize("days", [0.0, 1.0, 30.0])
def test_phase_factor_keeps_precision_after_days_of_samples(days: float) -> None:
    """At ω = 2.3 rad/s and dt = 1 ms, after ``days`` of samples (the count is fast-forwarded
    through a restored state), T̂ equals a reference whose e^{iωt_n} uses t_n = t0 + n·dt and
    ω·t_n reduced mod 2π in exact rational arithmetic, to 1e-9: the rotating factor does
    not lose precision as n grows."""
    dt, omega, big_l, w = 1e-3, 2.3, 5, 1000
    start = round(days * 86_400 / dt)
    eng = KairosEngine(dt=dt, lag=big_l * dt, omega=omega, window=w * dt, t0=0.25)
    state = eng.snapshot()
    state.samples = start
    eng = KairosEngine.restore(state)
    phi = np.cumsum(np.random.default_rng(9).normal(size=3000))
    res = eng.update(phi)
    assert res.time == 0.25 + (start + 3000 - 1) * dt
    v = np.diff(phi) / dt  # the velocity at global index start + k is v[k]
    m = len(v)
    ks = np.arange(m - w, m)
    prods = v[ks] * v[ks - big_l]
    phases = [
        float((Fraction(omega) * (Fraction(0.25) + (start + int(k)) * Fraction(dt))) % (2 * PI))
        for k in ks
    ]
    norm = np.sqrt(np.sum(v[ks] ** 2) * np.sum(v[ks - big_l] ** 2))
    want = complex(np.sum(prods * np.exp(1j * np.array(phases))) / norm)
    assert abs(res.value - want) <= TOL
