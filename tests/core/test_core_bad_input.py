"""Bad input to the numeric core: NaN/inf, wrong shapes, dt ≤ 0, a window shorter than the
lag, empty input, a lag longer than the data, damaged engine state. Each must raise
``becomingone.errors.InputError`` (a ValueError) whose ``parameter`` names the culprit, and a
rejected chunk must leave the engine exactly as it was."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.core.field import FieldState
from becomingone.core.kairos import false_alarm_probability, phase_velocity, temporal_resonance
from becomingone.core.phase import (
    circular_mean,
    circular_midpoint,
    circular_variance,
    cluster_coherence,
    coherence_band,
    harmonic_mean,
    order_parameter,
    r2_unbiased,
    wrap,
)
from becomingone.core.stream import KairosEngine, KairosState
from becomingone.errors import InputError

NAN = math.nan
INF = math.inf
PHI = np.cumsum(np.random.default_rng(0).normal(size=30))


def _engine(**kw: Any) -> KairosEngine:
    args: dict[str, Any] = {"dt": 0.1, "lag": 0.2, "omega": 0.0, "window": 1.0}
    args.update(kw)
    return KairosEngine(**args)


def _with(index: int, value: float) -> np.ndarray:
    out = PHI.copy()
    out[index] = value
    return out


CASES: list[tuple[str, Callable[[], object], str]] = [
    # temporal_resonance
    ("phi NaN", lambda: temporal_resonance(_with(4, NAN), 0.1, 0.2, 0.0), "phi"),
    ("phi inf", lambda: temporal_resonance(_with(29, INF), 0.1, 0.2, 0.0), "phi"),
    ("phi -inf", lambda: temporal_resonance(_with(0, -INF), 0.1, 0.2, 0.0), "phi"),
    ("phi complex NaN", lambda: temporal_resonance(PHI + 1j * _with(3, NAN), 0.1, 0, 0), "phi"),
    ("phi 3-D", lambda: temporal_resonance(np.zeros((5, 2, 2)), 0.1, 0.1, 0.0), "phi"),
    ("phi no channels", lambda: temporal_resonance(np.zeros((5, 0)), 0.1, 0.1, 0.0), "phi"),
    ("phi scalar", lambda: temporal_resonance(3.0, 0.1, 0.0, 0.0), "phi"),
    ("phi empty", lambda: temporal_resonance([], 0.1, 0.0, 0.0), "phi"),
    ("phi one sample", lambda: temporal_resonance([1.0], 0.1, 0.0, 0.0), "phi"),
    ("phi ragged", lambda: temporal_resonance([[1, 2], [3]], 0.1, 0.0, 0.0), "phi"),
    ("phi text", lambda: temporal_resonance(["a", "b", "c"], 0.1, 0.0, 0.0), "phi"),
    ("dt zero", lambda: temporal_resonance(PHI, 0.0, 0.0, 0.0), "dt"),
    ("dt negative", lambda: temporal_resonance(PHI, -0.1, 0.2, 0.0), "dt"),
    ("dt NaN", lambda: temporal_resonance(PHI, NAN, 0.2, 0.0), "dt"),
    ("dt inf", lambda: temporal_resonance(PHI, INF, 0.2, 0.0), "dt"),
    ("dt bool", lambda: temporal_resonance(PHI, True, 0.2, 0.0), "dt"),
    ("lag negative", lambda: temporal_resonance(PHI, 0.1, -0.2, 0.0), "lag"),
    ("lag NaN", lambda: temporal_resonance(PHI, 0.1, NAN, 0.0), "lag"),
    ("lag = data", lambda: temporal_resonance(PHI, 0.1, 2.9, 0.0), "lag"),
    ("lag > data", lambda: temporal_resonance(PHI, 0.1, 100.0, 0.0), "lag"),
    ("omega NaN", lambda: temporal_resonance(PHI, 0.1, 0.2, NAN), "omega"),
    ("omega inf", lambda: temporal_resonance(PHI, 0.1, 0.2, INF), "omega"),
    ("t0 NaN", lambda: temporal_resonance(PHI, 0.1, 0.2, 1.0, NAN), "t0"),
    ("t0 inf", lambda: temporal_resonance(PHI, 0.1, 0.2, 1.0, -INF), "t0"),
    # phase_velocity
    ("velocity phi NaN", lambda: phase_velocity(_with(1, NAN), 0.1), "phi"),
    ("velocity phi empty", lambda: phase_velocity([], 0.1), "phi"),
    ("velocity dt zero", lambda: phase_velocity(PHI, 0.0), "dt"),
    # KairosEngine construction
    ("engine dt zero", lambda: _engine(dt=0.0), "dt"),
    ("engine dt negative", lambda: _engine(dt=-1.0), "dt"),
    ("engine dt NaN", lambda: _engine(dt=NAN), "dt"),
    ("engine lag negative", lambda: _engine(lag=-0.1), "lag"),
    ("engine lag inf", lambda: _engine(lag=INF), "lag"),
    ("engine window < lag", lambda: _engine(lag=0.5, window=0.3), "window"),
    ("engine window zero", lambda: _engine(window=0.0), "window"),
    ("engine window < dt/2", lambda: _engine(lag=0.0, window=0.04), "window"),
    ("engine window NaN", lambda: _engine(window=NAN), "window"),
    ("engine omega NaN", lambda: _engine(omega=NAN), "omega"),
    ("engine threshold zero", lambda: _engine(threshold=0.0), "threshold"),
    ("engine threshold > 1", lambda: _engine(threshold=1.5), "threshold"),
    ("engine threshold NaN", lambda: _engine(threshold=NAN), "threshold"),
    ("engine channels zero", lambda: _engine(channels=0), "channels"),
    ("engine channels float", lambda: _engine(channels=2.0), "channels"),
    ("engine t0 inf", lambda: _engine(t0=INF), "t0"),
    # phase statistics
    ("mean empty", lambda: circular_mean([]), "theta"),
    ("mean NaN", lambda: circular_mean([0.1, NAN]), "theta"),
    ("mean weights shape", lambda: circular_mean([0.1, 0.2], [1.0]), "w"),
    ("mean weights inf", lambda: circular_mean([0.1, 0.2], [1.0, INF]), "w"),
    ("R empty", lambda: order_parameter([]), "theta"),
    ("R inf", lambda: order_parameter([INF]), "theta"),
    ("R2u NaN", lambda: r2_unbiased([0.2, NAN]), "theta"),
    ("variance empty", lambda: circular_variance([]), "theta"),
    ("coherence text", lambda: cluster_coherence(["a"]), "theta"),
    ("coherence complex", lambda: cluster_coherence([0.1 + 1j]), "theta"),
    ("band NaN", lambda: coherence_band(NAN), "c"),
    ("band negative", lambda: coherence_band(-0.1), "c"),
    ("band above one", lambda: coherence_band(1.5), "c"),
    ("midpoint a NaN", lambda: circular_midpoint(NAN, 0.2), "a"),
    ("midpoint b inf", lambda: circular_midpoint(0.2, INF), "b"),
    ("harmonic a NaN", lambda: harmonic_mean(NAN, 1.0), "a"),
    ("harmonic b inf", lambda: harmonic_mean(1.0, INF), "b"),
    # field state
    ("field delta_phi NaN", lambda: FieldState(delta_phi=NAN), "delta_phi"),
    ("field kappa negative", lambda: FieldState(kappa=-1.0), "kappa"),
    ("field theta inf", lambda: FieldState(theta=INF), "theta"),
    ("field coherence > 1", lambda: FieldState(coherence=1.5), "coherence"),
    ("field energy negative", lambda: FieldState(energy=-1.0), "energy"),
    ("field variance NaN", lambda: FieldState(variance=NAN), "variance"),
    ("field variance negative", lambda: FieldState(variance=-0.1), "variance"),
    # false alarm probability
    ("fap terms negative", lambda: false_alarm_probability(-1, 0.5, 0.0), "terms"),
    ("fap terms float", lambda: false_alarm_probability(1.5, 0.5, 0.0), "terms"),
    ("fap threshold NaN", lambda: false_alarm_probability(10, NAN, 0.0), "threshold"),
    ("fap omega inf", lambda: false_alarm_probability(10, 0.5, INF), "omega"),
    # engine state
    ("state junk", lambda: KairosState.from_bytes(b"junk"), "state"),
    ("state empty", lambda: KairosState.from_bytes(b""), "state"),
]


@pytest.mark.parametrize(("call", "parameter"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_input_error_naming_parameter(
    call: Callable[[], object], parameter: str
) -> None:
    """The call raises InputError (a ValueError and BecomingOneError) whose ``parameter``
    names the bad argument, and whose message starts with that name."""
    with pytest.raises(InputError) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert info.value.parameter == parameter
    assert str(info.value).startswith(f"{parameter}: ")


BAD_CHUNKS: list[tuple[str, object, int]] = [
    ("NaN in the middle", [1.0, 2.0, NAN, 4.0], 1),
    ("inf at the end", [1.0, 2.0, INF], 1),
    ("complex NaN", [1.0 + 0j, complex(0.0, NAN)], 1),
    ("too many channels", np.zeros((4, 3)), 1),
    ("too few channels", np.zeros((4, 1)), 2),
    ("one sample of the wrong width", np.zeros(3), 2),
    ("3-D", np.zeros((2, 2, 2)), 2),
    ("text", ["x", "y"], 1),
]


@pytest.mark.parametrize(
    ("chunk", "channels"), [c[1:] for c in BAD_CHUNKS], ids=[c[0] for c in BAD_CHUNKS]
)
def test_rejected_chunk_leaves_engine_untouched(chunk: object, channels: int) -> None:
    """A bad chunk raises InputError('samples') and nothing of it is ingested: the state
    bytes are unchanged and later good data gives the same results as a clean engine."""
    rng = np.random.default_rng(1)
    good = np.cumsum(rng.normal(size=(40, channels)), axis=0)
    eng = _engine(channels=channels)
    clean = _engine(channels=channels)
    eng.update(good[:20])
    clean.update(good[:20])
    before = eng.snapshot().to_bytes()
    with pytest.raises(InputError) as info:
        eng.update(chunk)  # type: ignore[arg-type]
    assert info.value.parameter == "samples"
    assert eng.snapshot().to_bytes() == before
    assert eng.update(good[20:]) == clean.update(good[20:])


def test_restore_rejects_state_of_the_wrong_shape() -> None:
    """restore() names ``state`` when an array has the wrong shape or a counter is negative."""
    eng = _engine()
    eng.update(PHI)
    wrong = eng.snapshot()
    wrong.term_q = np.zeros(3, np.complex128)
    negative = eng.snapshot()
    negative.samples = -5
    for state in (wrong, negative):
        with pytest.raises(InputError) as info:
            KairosEngine.restore(state)
        assert info.value.parameter == "state"


@pytest.mark.parametrize("field", ["last_sample", "sum_a", "sum_q_re", "term_q", "vel_ring"])
def test_restore_rejects_non_finite_state(field: str) -> None:
    """A state with a NaN in any array (a damaged file) is refused with InputError('state')
    instead of letting NaN into the engine and reporting a collapse."""
    eng = _engine()
    eng.update(PHI)
    state = eng.snapshot()
    value = getattr(state, field)
    if isinstance(value, float):
        setattr(state, field, NAN)
    else:
        arr = value.copy()
        arr.flat[0] = NAN
        setattr(state, field, arr)
    with pytest.raises(InputError) as info:
        KairosEngine.restore(KairosState.from_bytes(state.to_bytes()))
    assert info.value.parameter == "state"


@pytest.mark.parametrize("x", [NAN, INF, -INF])
def test_wrap_rejects_non_finite(x: float) -> None:
    """wrap() of NaN or ±inf raises InputError('x') like the rest of the core."""
    with pytest.raises(InputError) as info:
        wrap(x)
    assert info.value.parameter == "x"


@settings(max_examples=60)
@given(
    st.integers(2, 40),
    st.integers(0, 60),
    st.sampled_from([0.001, 0.1, 2.0]),
)
def test_lag_versus_data_length(n: int, lag_samples: int, dt: float) -> None:
    """temporal_resonance works iff L < M = N − 1 (at least one term), and otherwise raises
    InputError('lag')."""
    phi = np.cumsum(np.random.default_rng(n).normal(size=n))
    if lag_samples < n - 1:
        assert abs(temporal_resonance(phi, dt, lag_samples * dt, 0.0)) <= 1.0
    else:
        with pytest.raises(InputError) as info:
            temporal_resonance(phi, dt, lag_samples * dt, 0.0)
        assert info.value.parameter == "lag"
