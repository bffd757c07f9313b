"""Tests of the Master and Emissary transducers: engines, cycle clocks, phase extraction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.core.stream import KairosEngine
from becomingone.errors import InputError
from becomingone.runtime.sources import synthetic_phase
from becomingone.transducers import EmissaryTransducer, MasterTransducer, ingest_pair
from tests.helpers import small_config


def test_engines_follow_the_config() -> None:
    """window = tau_max, lag = kairos.tau_scale, ω = kairos.omega, I_c = kairos.threshold."""
    cfg = small_config(kairos={"omega": 2.0, "threshold": 0.9})
    m = MasterTransducer.from_config(cfg)
    e = EmissaryTransducer.from_config(cfg)
    assert m.engine.window_terms == 3000 and e.engine.window_terms == 100
    assert m.engine.lag_samples == 5 == e.engine.lag_samples
    assert m.engine.omega == 2.0 and e.engine.threshold == 0.9
    assert (m.witness_interval, e.witness_interval) == (5.0, 1.0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=8))
def test_cycles_counted_once_whatever_the_batching(sizes: list[int]) -> None:
    """Cycles reported over all batches equal floor(total time / witness_interval)."""
    cfg = small_config()
    e = EmissaryTransducer.from_config(cfg)
    start, cycles = 0, 0
    for k in sizes:
        cycles += e.ingest(synthetic_phase(start, k, dt=0.01)).cycles
        start += k
    assert cycles == e.cycle == int(start * 0.01 / 1.0 + 1e-9)


def test_same_values_as_a_bare_engine() -> None:
    """A transducer's resonance equals a bare KairosEngine with the same parameters."""
    cfg = small_config()
    m = MasterTransducer.from_config(cfg)
    bare = KairosEngine(dt=0.01, lag=0.05, omega=0.0, window=30.0)
    x = synthetic_phase(0, 2000, dt=0.01)
    for i in range(0, 2000, 137):
        got = m.ingest(x[i : i + 137]).resonance
        want = bare.update(x[i : i + 137])
    assert got == want


def test_extract_phase_and_frequency() -> None:
    """A steady 3 Hz phase gives frequency 3 Hz and the wrapped phase of the last sample."""
    e = EmissaryTransducer.from_config(small_config())
    t = np.arange(300) * 0.01
    phi = 2 * np.pi * 3.0 * t + 0.5
    e.ingest(phi)
    phase, freq = e.extract()
    assert freq == pytest.approx(3.0)
    assert phase == pytest.approx((phi[-1] / (2 * np.pi)) % 1.0)
    z = EmissaryTransducer.from_config(small_config())
    z.ingest(np.exp(1j * phi))
    assert z.extract()[1] == pytest.approx(3.0)


def test_restore_refuses_other_parameters() -> None:
    """A signature from an engine with another window cannot be restored (named key)."""
    m = MasterTransducer.from_config(small_config())
    other = MasterTransducer.from_config(small_config(master={"tau_max": 20.0}))
    with pytest.raises(InputError) as err:
        m.restore(other.snapshot())
    assert err.value.parameter == "master.window"


def test_bad_witness_interval() -> None:
    """A non-positive witness interval is refused."""
    with pytest.raises(InputError):
        MasterTransducer(KairosEngine(dt=0.01, lag=0, omega=0, window=1), 0.0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 250), min_size=1, max_size=8), st.sampled_from([0.0, 2.0]))
def test_ingest_pair_equals_ingesting_each_transducer(sizes: list[int], omega: float) -> None:
    """ingest_pair (shared velocity products) gives the readings, cycles and extracted phase of
    feeding the Master and the Emissary one after the other."""
    cfg = small_config(kairos={"omega": omega})
    m, e = MasterTransducer.from_config(cfg), EmissaryTransducer.from_config(cfg)
    m2, e2 = MasterTransducer.from_config(cfg), EmissaryTransducer.from_config(cfg)
    start = 0
    for k in sizes:
        x = synthetic_phase(start, k, dt=0.01)
        start += k
        if k == 0:
            continue
        got = ingest_pair(m, e, x.astype(np.complex128)[:, None])
        want = m2.ingest(x), e2.ingest(x)
        for a, b in zip(got, want, strict=True):
            assert (a.role, a.samples, a.cycles, a.cycle) == (b.role, b.samples, b.cycles, b.cycle)
            assert abs(a.resonance.value - b.resonance.value) <= 1e-9
            assert a.resonance.terms == b.resonance.terms
        assert e.extract() == e2.extract()


@pytest.mark.parametrize("value", [1e308, -1e200])
def test_huge_batch_changes_neither_transducer(value: float) -> None:
    """ingest_pair / ingest of a batch with one huge finite value raise InputError('samples')
    and leave both engines, the cycle counts and the Emissary's kept window (its extracted
    phase and frequency) exactly as before."""
    cfg = small_config()
    m, e = MasterTransducer.from_config(cfg), EmissaryTransducer.from_config(cfg)
    good = synthetic_phase(0, 300, dt=0.01).astype(np.complex128)[:, None]
    ingest_pair(m, e, good)
    before = (m.engine.state_bytes(), e.engine.state_bytes(), m.cycle, e.cycle, e.extract())
    bad = synthetic_phase(300, 50, dt=0.01).astype(np.complex128)[:, None]
    bad[25, 0] = value
    with pytest.raises(InputError, match="overflow") as info:
        ingest_pair(m, e, bad)
    assert info.value.parameter == "samples"
    with pytest.raises(InputError, match="overflow"):
        e.ingest(bad[:, 0])
    after = (m.engine.state_bytes(), e.engine.state_bytes(), m.cycle, e.cycle, e.extract())
    assert after == before
