"""Finite but huge input never leaves non-finite state (issue 7 §1).

A sample such as 1e308 is finite, yet its phase velocity, the velocity products and the running
sums overflow float64. Every engine path (``update`` with a chunk or a scalar, ``update_trusted``,
``update_pair``) must either raise ``InputError('samples')`` and leave the state bit-identical,
or keep every state field finite; the one-shot functions raise ``InputError`` instead of
returning NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.core import stream as stream_module
from becomingone.core._checks import max_part
from becomingone.core.kairos import phase_velocity, temporal_resonance
from becomingone.core.phase import (
    circular_mean,
    circular_midpoint,
    cluster_coherence,
    order_parameter,
    r2_unbiased,
)
from becomingone.core.stream import KairosEngine, KairosState
from becomingone.errors import InputError

DT = 0.01
HUGE = [1e308, 1e200, -1e308, 1.7976931348623157e308, 1e160]


def engine(channels: int = 1, window: float = 0.5, lag: float = 0.03) -> KairosEngine:
    """A small engine (W = 50 terms, L = 3 samples) with ``channels`` channels."""
    return KairosEngine(dt=DT, lag=lag, omega=0.7, window=window, channels=channels)


def good(seed: int, n: int, channels: int, complex_: bool) -> np.ndarray:
    """A well-behaved phase stream (n, C) as complex128 (phasors when ``complex_``)."""
    phi = np.cumsum(np.random.default_rng(seed).normal(size=(n, channels)), axis=0)
    return (np.exp(1j * phi) if complex_ else phi).astype(np.complex128)


def with_huge(x: np.ndarray, value: float, complex_: bool) -> np.ndarray:
    """``x`` with one huge entry in the middle (in the imaginary part too, when complex)."""
    out = x.copy()
    out[len(out) // 2, -1] = complex(value, value) if complex_ else value
    return out


def all_finite(state: KairosState) -> bool:
    """True iff every number and array entry of ``state`` is finite."""
    return all(bool(np.all(np.isfinite(getattr(state, f.name)))) for f in fields(state))


PATHS: dict[str, Callable[[KairosEngine, np.ndarray], object]] = {
    "update": lambda eng, x: eng.update(x if x.shape[1] > 1 else x[:, 0]),
    "update_trusted": lambda eng, x: eng.update_trusted(x),
    "update one sample": lambda eng, x: eng.update(x[len(x) // 2 :][:1]),
    "update scalar": lambda eng, x: eng.update(complex(x[len(x) // 2, 0])),
}


#: Every path with one and three channels (the scalar path exists for one channel only).
PATH_CHANNELS = [(p, c) for p in PATHS for c in (1, 3) if not (p == "update scalar" and c > 1)]


@pytest.mark.parametrize(("path", "channels"), PATH_CHANNELS)
@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("complex_", [False, True])
def test_huge_sample_is_rejected_and_state_is_unchanged(
    path: str, channels: int, value: float, complex_: bool
) -> None:
    """A chunk holding one huge finite value among normal ones raises InputError('samples')
    saying it would overflow; the snapshot bytes are unchanged and later good data gives the
    same results (==) as an engine that never saw the bad chunk."""
    eng, clean = engine(channels), engine(channels)
    start = good(1, 80, channels, complex_)
    eng.update_trusted(start)
    clean.update_trusted(start)
    before = eng.snapshot().to_bytes()
    bad = with_huge(good(2, 30, channels, complex_) + start[-1], value, complex_)
    with pytest.raises(InputError, match="overflow") as info:
        PATHS[path](eng, bad)
    assert info.value.parameter == "samples"
    assert eng.snapshot().to_bytes() == before
    after = good(3, 60, channels, complex_) + start[-1]
    assert eng.update_trusted(after) == clean.update_trusted(after)
    restored = KairosEngine.restore(KairosState.from_bytes(eng.state_bytes()))
    assert restored.last == eng.last


@pytest.mark.parametrize("value", HUGE)
def test_first_samples_huge_are_rejected(value: float) -> None:
    """Huge samples as the very first input (no earlier sample to subtract) are rejected too,
    leaving a fresh engine."""
    eng = engine()
    before = eng.snapshot().to_bytes()
    with pytest.raises(InputError, match="overflow"):
        eng.update(np.array([value, -value, value]))
    assert eng.snapshot().to_bytes() == before and eng.samples == 0


def test_sample_limit_accepts_large_but_safe_values() -> None:
    """Values up to the documented ``sample_limit`` are accepted and leave finite state with
    a valid result; just above it they are refused."""
    eng = engine(channels=2, window=1.0)
    limit = eng.sample_limit
    assert limit == pytest.approx(DT * math.sqrt(np.finfo(np.float64).max / (512 * 100 * 2)))
    rng = np.random.default_rng(5)
    x = limit * rng.uniform(-1.0, 1.0, size=(400, 2))
    res = eng.update(x)
    assert all_finite(eng.snapshot())
    assert 0.0 <= res.coherence <= 1.0 and res.terms == 100
    with pytest.raises(InputError, match="overflow"):
        eng.update(np.full((2, 2), 1.01 * limit))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("k", [1, 2, 40, 200])
def test_post_check_catches_overflow_the_bound_would_miss(channels: int, k: int) -> None:
    """With the up-front bound disabled, the engine's own check on the computed velocities,
    terms and running sums still refuses the chunk and leaves the state bit-identical."""
    with mock.patch.object(stream_module, "sample_limit", lambda *a: math.inf):
        eng = engine(channels)
    assert eng.sample_limit == math.inf
    eng.update_trusted(good(1, 80, channels, False))
    before = eng.snapshot().to_bytes()
    bad = good(2, k, channels, False)
    bad[max(0, k - 3), -1] = 1e300  # near the end: its velocities stay in the window
    with pytest.raises(InputError, match="overflow"), np.errstate(over="ignore"):
        eng.update_trusted(bad)
    assert eng.snapshot().to_bytes() == before
    if channels == 1:
        with pytest.raises(InputError, match="overflow"), np.errstate(over="ignore"):
            eng.update(1e300)
        assert eng.snapshot().to_bytes() == before


@pytest.mark.parametrize("bound", [True, False])
@pytest.mark.parametrize("k", [1, 2, 40])
@pytest.mark.parametrize("lead", [True, False])
def test_update_pair_changes_neither_engine_when_one_would_overflow(
    bound: bool, k: int, lead: bool
) -> None:
    """``update_pair`` with a value between the two engines' limits (refused by the up-front
    bound of the stricter one), or with the bound off a value whose terms overflow (refused by
    the post-check), changes neither engine, whether the products are shared (both engines
    read the same stream) or computed apart."""
    limit = (lambda dt, w, c: 1e150 if w > 60 else 1e152) if bound else (lambda *a: math.inf)
    with mock.patch.object(stream_module, "sample_limit", limit):
        leader = engine(window=1.0)
        follower = engine(window=0.5)
    leader.update_trusted(good(1, 90, 1, False))
    follower.update_trusted(good(1 if lead else 9, 90, 1, False))
    before = leader.state_bytes(), follower.state_bytes()
    value = 1e151 if bound else 1e300
    bad = good(2, k, 1, False)
    bad[max(0, k - 3), 0] = value
    with pytest.raises(InputError, match="overflow"), np.errstate(over="ignore"):
        leader.update_pair(bad, follower)
    assert (leader.state_bytes(), follower.state_bytes()) == before


def test_one_shot_functions_refuse_overflow() -> None:
    """temporal_resonance and phase_velocity of finite φ whose velocities overflow raise
    InputError('phi') saying so, instead of returning NaN or inf."""
    phi = np.cumsum(np.random.default_rng(0).normal(size=50))
    phi[20] = 1.7e308
    phi[21] = -1.7e308
    for call in (
        lambda: temporal_resonance(phi, DT, 0.03, 0.0),
        lambda: temporal_resonance(phi, DT, 0.03, 2.0),
        lambda: temporal_resonance(phi.astype(complex) * 1j, DT, 0.0, 0.0),
        lambda: phase_velocity(phi, DT),
    ):
        with pytest.raises(InputError, match="overflow") as info:
            call()
        assert info.value.parameter == "phi"


@pytest.mark.parametrize(
    "call",
    [
        lambda: temporal_resonance(np.arange(20.0), 1.0, 0.0, 1e308),
        lambda: temporal_resonance(np.arange(20.0), 1.0, 0.0, 1e200, 1e200),
        lambda: KairosEngine(dt=1.0, lag=0.0, omega=1e300, window=5.0),
        lambda: KairosEngine(dt=1.0, lag=0.0, omega=1e200, window=5.0, t0=1e200),
    ],
)
def test_rotation_that_overflows_is_refused(call: Callable[[], object]) -> None:
    """An ω so large that ω·t overflows (e^{iωt} would be NaN) is refused naming omega."""
    with pytest.raises(InputError) as info:
        call()
    assert info.value.parameter == "omega"


MAGNITUDES = st.sampled_from([1.0, 1e3, 1e100, 1e150, 1e154, 1e200, 1e300, 1.7976931348623157e308])


@st.composite
def chunks(draw: st.DrawFn, channels: int) -> np.ndarray:
    """A chunk of 0–12 rows of random finite float64 values, some of them huge."""
    k = draw(st.integers(0, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(MAGNITUDES)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(k, channels)) * scale
    if k and draw(st.booleans()):
        x[draw(st.integers(0, k - 1)), 0] = draw(st.floats(allow_nan=False, allow_infinity=False))
    return x


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 3),
    st.booleans(),
    st.sampled_from(["update", "trusted", "pair"]),
    st.data(),
)
def test_any_finite_input_leaves_finite_state_or_is_refused(
    channels: int, complex_: bool, path: str, data: st.DataObject
) -> None:
    """For random finite float64 input including huge magnitudes, after every update either
    InputError was raised and the snapshot is unchanged, or every state field is finite."""
    eng, other = engine(channels, window=0.2, lag=0.02), engine(channels, window=0.1, lag=0.02)
    for _ in range(data.draw(st.integers(1, 6))):
        x = data.draw(chunks(channels)).astype(np.complex128)
        if complex_:
            x = x * 1j + x[::-1]
        before = eng.state_bytes(), other.state_bytes()
        try:
            res = feed(eng, other, path, x)
        except InputError as exc:
            assert exc.parameter == "samples"
            assert (eng.state_bytes(), other.state_bytes()) == before
            continue
        for e in (eng, other):
            assert all_finite(e.snapshot())
        value = res[0].value if path == "pair" else res.value
        assert cmath_finite(value) and abs(value) <= 1.0


def feed(eng: KairosEngine, other: KairosEngine, path: str, x: np.ndarray) -> Any:
    """Feed ``x`` by ``path``: ``update``, ``update_trusted`` or ``update_pair`` (with other)."""
    if path == "update":
        return eng.update(x)
    if path == "trusted":
        return eng.update_trusted(x)
    return eng.update_pair(x, other)


def cmath_finite(z: complex) -> bool:
    """True iff both parts of ``z`` are finite."""
    return math.isfinite(z.real) and math.isfinite(z.imag)


def test_engine_at_omega_zero_evaluates_no_rotation() -> None:
    """At ω = 0 neither the chunk path nor the one-sample paths evaluate e^{iωt}: np.exp and
    cmath.exp are never called during updates (the rotation is skipped, not multiplied by 1)."""
    eng = KairosEngine(dt=DT, lag=0.03, omega=0.0, window=0.5)
    multi = KairosEngine(dt=DT, lag=0.03, omega=0.0, window=0.5, channels=2)
    x = good(4, 300, 2, False)
    with (
        mock.patch.object(np, "exp", side_effect=AssertionError("np.exp at omega 0")),
        mock.patch("cmath.exp", side_effect=AssertionError("cmath.exp at omega 0")),
    ):
        eng.update(x[:200, 0])
        eng.update(float(x[200, 0].real))
        multi.update(x[:200])
        multi.update(x[200])
        temporal_resonance(x, DT, 0.03, 0.0)
    assert eng.last.terms == multi.last.terms == 50


def test_phase_statistics_of_huge_phases_are_finite() -> None:
    """Cluster phases are cycles: a huge finite θ (1e308) is the same point on the circle as
    θ mod 1, so every statistic equals that of the reduced phases (no NaN from 2π·θ
    overflowing); huge weights do not overflow the weighted mean either."""
    theta = np.array([1e308, 0.25, -1e308, 3.5e15 + 0.5, 0.3])
    reduced = np.mod(theta, 1.0)
    for stat in (order_parameter, r2_unbiased, cluster_coherence):
        assert stat(theta) == pytest.approx(stat(reduced), abs=1e-12)
    mean, want = circular_mean(theta), circular_mean(reduced)
    assert mean is not None and want is not None and mean == pytest.approx(want, abs=1e-12)
    weights = np.array([1e308, 1e308, 1.0, 1e300, 1e308])
    heavy = circular_mean(theta, weights)
    assert heavy is not None and math.isfinite(heavy)
    assert heavy == pytest.approx(circular_mean(reduced, weights / 1e308), abs=1e-12)
    assert circular_midpoint(1e308, -1e308) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("size", [1, 5, 16, 17, 1000])
@pytest.mark.parametrize("complex_", [False, True])
def test_max_part_finds_the_largest_part_and_flags_nan(size: int, complex_: bool) -> None:
    """max_part (the engines' one-pass bound check) returns the largest |real| or |imaginary|
    part, on both its small (Python) and large (NumPy) paths, for contiguous and strided
    arrays; NaN when any part is NaN, inf when one is infinite."""
    rng = np.random.default_rng(size)
    x = rng.normal(size=(size, 2))
    if complex_:
        x = x + 1j * rng.normal(size=(size, 2))
    want = max(np.max(np.abs(x.real)), np.max(np.abs(x.imag)))
    assert max_part(x) == want
    assert max_part(np.asfortranarray(x)[:, ::-1]) == want
    y = x.copy()
    y[size // 2, 1] = complex(0.0, math.nan) if complex_ else math.nan
    assert math.isnan(max_part(y))
    y[size // 2, 1] = -math.inf
    assert max_part(y) == math.inf
