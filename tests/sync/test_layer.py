"""Tests of the Sync layer: T_sync, Δ_phase, collapse / dissipate / realign (DESIGN.md §5)."""

from __future__ import annotations

import cmath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.core.kairos import Resonance
from becomingone.errors import InputError
from becomingone.sync import DissipationReason, SyncLayer, SyncOutcome, action_from


def res(value: complex, terms: int = 10) -> Resonance:
    """A resonance with the given T̂."""
    c = abs(value) ** 2
    return Resonance(time=2.0, value=value, coherence=c, terms=terms, collapsed=c >= 0.95)


LAYER = SyncLayer(threshold=0.95, phase_threshold=0.1)
unit = st.builds(cmath.rect, st.floats(0, 1), st.floats(-cmath.pi, cmath.pi, allow_nan=False))


@given(unit, unit)
def test_formulas_and_rule(m: complex, e: complex) -> None:
    """T_sync = ½(T_m + T_e), Δ = ||T_m| − |T_e||; collapse iff |T_sync|² ≥ I_c and Δ < bound."""
    d = LAYER.evaluate(res(m), res(e), now=2.0)
    assert d.t_sync == pytest.approx(0.5 * (m + e))
    assert d.coherence == pytest.approx(min(1.0, abs(0.5 * (m + e)) ** 2))
    assert d.delta_phase == pytest.approx(abs(abs(m) - abs(e)))
    expect = d.coherence >= 0.95 and d.delta_phase < 0.1
    assert d.collapsed is expect
    assert (d.realign is None) is expect


def test_reasons() -> None:
    """Each dissipation says why: warming up, below threshold, or phase mismatch."""
    assert LAYER.evaluate(res(1, 0), res(1), now=0).reason is DissipationReason.WARMING_UP
    assert LAYER.evaluate(res(1), res(-1), now=0).reason is DissipationReason.BELOW_THRESHOLD
    # |T_sync|² = (0.5·(1 + 0.85))² ≈ 0.856 < 0.95 → below threshold, not phase
    low = LAYER.evaluate(res(1), res(0.85), now=0)
    assert low.reason is DissipationReason.BELOW_THRESHOLD
    loose = SyncLayer(threshold=0.8, phase_threshold=0.1)
    mismatch = loose.evaluate(res(1), res(0.85), now=0)
    assert mismatch.reason is DissipationReason.PHASE_MISMATCH
    assert mismatch.realign is not None and mismatch.realign.delta_phase == pytest.approx(0.15)


def test_opposite_phases_never_collapse() -> None:
    """Two fully coherent transducers with opposite T cancel: |T_sync|² = 0, dissipation."""
    d = LAYER.evaluate(res(1), res(-1), now=1.0)
    assert d.outcome is SyncOutcome.DISSIPATE and d.coherence == pytest.approx(0)


def test_action_and_veto() -> None:
    """A collapse becomes an action (phase wrapped to [0,1)); a vetoed one is a dissipation."""
    d = LAYER.evaluate(res(1), res(1), now=3.0)
    a = action_from(d, phase=1.25, frequency_hz=2.0)
    assert (a.phi_extracted, a.frequency_hz, a.coherence, a.time) == (0.25, 2.0, 1.0, 3.0)
    assert action_from(d, phase=-1e-20, frequency_hz=0).phi_extracted == 0.0
    v = SyncLayer.veto(d)
    assert v.reason is DissipationReason.VETOED and v.realign is not None
    with pytest.raises(InputError):
        action_from(v, phase=0, frequency_hz=0)
    with pytest.raises(InputError):
        SyncLayer.veto(v)


@pytest.mark.parametrize(
    ("threshold", "phase"), [(0, 0.1), (1.5, 0.1), (0.9, 0), (0.9, float("nan"))]
)
def test_bad_parameters(threshold: float, phase: float) -> None:
    """Thresholds outside (0, 1] or non-finite are refused with the parameter named."""
    with pytest.raises(InputError):
        SyncLayer(threshold=threshold, phase_threshold=phase)
