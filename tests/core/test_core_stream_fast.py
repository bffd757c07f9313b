"""The KairosEngine fast paths used by the cell: ``update_trusted`` (no second validation),
``update_pair`` (velocity products shared by two windows) and chunks longer than W + L (terms
that would leave the window at once are never computed). Each must equal the plain paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.core.kairos import Resonance
from becomingone.core.stream import KairosEngine, KairosState
from becomingone.errors import InputError

TOL = 1e-9
DT = 0.1


def close(a: Resonance, b: Resonance) -> bool:
    """Same time, terms and decision; T̂ within TOL."""
    return (
        a.time == b.time
        and a.terms == b.terms
        and abs(a.value - b.value) <= TOL
        and (a.collapsed == b.collapsed or abs(a.coherence - b.coherence) <= TOL)
    )


def stream(seed: int, n: int, channels: int, complex_: bool) -> np.ndarray:
    """A random-walk phase stream (k, C), complex128; complex phasors when ``complex_``."""
    rng = np.random.default_rng(seed)
    phi = np.cumsum(rng.normal(0.3, 1.0, size=(n, channels)), axis=0)
    return (np.exp(1j * phi) if complex_ else phi).astype(np.complex128)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[dict[str, float | int], float, float, np.ndarray, list[int]]:
    """Engine parameters, two windows (follower ≤ leader), a stream and chunk sizes."""
    big_l = draw(st.integers(0, 4))
    w_f = draw(st.integers(max(big_l, 1), 25))
    w_l = w_f + draw(st.integers(0, 40))
    channels = draw(st.integers(1, 3))
    omega = draw(st.sampled_from([0.0, 1.7, -0.4]))
    x = stream(
        draw(st.integers(0, 2**16)), draw(st.integers(0, 200)), channels, draw(st.booleans())
    )
    sizes = draw(
        st.lists(st.one_of(st.integers(0, 3), st.integers(0, 120)), min_size=1, max_size=10)
    )
    params: dict[str, float | int] = {
        "dt": DT,
        "lag": big_l * DT,
        "omega": omega,
        "channels": channels,
    }
    return params, w_l * DT, w_f * DT, x, sizes


def chunks(x: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """x cut into pieces of the given sizes (cycling), covering all of x."""
    out, i, j = [], 0, 0
    while i < len(x):
        k = sizes[j % len(sizes)]
        out.append(x[i : i + k])
        i, j = i + k, j + 1
        if j > 10 * len(x) + 10:  # only zero sizes: take the rest in one piece
            out.append(x[i:])
            break
    return out


@settings(max_examples=150, deadline=None)
@given(pairs())
def test_update_pair_equals_two_separate_engines(
    case: tuple[dict[str, float | int], float, float, np.ndarray, list[int]],
) -> None:
    """After every chunk (sizes 0, 1, small and longer than both windows), a leader/follower
    pair fed with update_pair gives the same results and states as two engines fed alone."""
    params, w_l, w_f, x, sizes = case
    lead, follow = KairosEngine(window=w_l, **params), KairosEngine(window=w_f, **params)  # type: ignore[arg-type]
    ref_l, ref_f = KairosEngine(window=w_l, **params), KairosEngine(window=w_f, **params)  # type: ignore[arg-type]
    for part in chunks(x, sizes):
        got = lead.update_pair(part, follow)
        want = ref_l.update(part), ref_f.update(part)
        assert close(got[0], want[0]) and close(got[1], want[1])
    for a, b in ((lead, ref_l), (follow, ref_f)):
        sa, sb = a.snapshot(), b.snapshot()
        for name in ("term_q", "term_a", "term_b", "vel_ring", "last_sample"):
            assert np.allclose(getattr(sa, name), getattr(sb, name), rtol=TOL, atol=TOL)
        assert sa.samples == sb.samples


@settings(max_examples=60, deadline=None)
@given(pairs(), st.integers(0, 200))
def test_update_pair_survives_snapshot_restore_through_bytes(
    case: tuple[dict[str, float | int], float, float, np.ndarray, list[int]], cut: int
) -> None:
    """Restoring both engines from bytes mid-stream and going on with update_pair equals two
    uninterrupted separate engines."""
    params, w_l, w_f, x, sizes = case
    cut = min(cut, len(x))
    lead, follow = KairosEngine(window=w_l, **params), KairosEngine(window=w_f, **params)  # type: ignore[arg-type]
    ref_l, ref_f = KairosEngine(window=w_l, **params), KairosEngine(window=w_f, **params)  # type: ignore[arg-type]
    for part in chunks(x[:cut], sizes):
        lead.update_pair(part, follow)
    lead = KairosEngine.restore(KairosState.from_bytes(lead.state_bytes()))
    follow = KairosEngine.restore(KairosState.from_bytes(follow.snapshot().to_bytes()))
    ref_l.update(x[:cut])
    ref_f.update(x[:cut])
    for part in chunks(x[cut:], sizes[::-1]):
        got = lead.update_pair(part, follow)
        want = ref_l.update(part), ref_f.update(part)
        assert close(got[0], want[0]) and close(got[1], want[1])


@pytest.mark.parametrize(
    "other",
    [
        {"lag": 0.3},  # another lag
        {"omega": 2.0},  # another ω
        {"window": 9.0},  # a longer window than the leader's
    ],
)
def test_update_pair_falls_back_when_products_differ(other: dict[str, float]) -> None:
    """With another lag, ω or a longer window, the follower computes its own terms: results
    still equal separate engines."""
    base = {"dt": DT, "lag": 0.2, "omega": 0.5, "window": 4.0}
    x = stream(3, 300, 1, False)
    lead, ref_l = KairosEngine(**base), KairosEngine(**base)
    follow, ref_f = KairosEngine(**(base | other)), KairosEngine(**(base | other))
    for i in range(0, 300, 37):
        got = lead.update_pair(x[i : i + 37], follow)
        assert got == (ref_l.update(x[i : i + 37]), ref_f.update(x[i : i + 37]))


def test_update_pair_falls_back_when_histories_differ() -> None:
    """A follower that has seen other samples (same count; even the same last sample, with
    other velocities in its lag ring) is not fed the leader's products."""
    a = stream(1, 100, 1, False)
    b_last_differs = stream(2, 100, 1, False)
    b_ring_differs = a.copy()
    b_ring_differs[-2] += 1.0  # same last sample, other velocities in the lag ring
    for b in (b_last_differs, b_ring_differs):
        lead = KairosEngine(dt=DT, lag=0.2, omega=0.0, window=5.0)
        follow = KairosEngine(dt=DT, lag=0.2, omega=0.0, window=1.0)
        ref = KairosEngine(dt=DT, lag=0.2, omega=0.0, window=1.0)
        lead.update_trusted(a)
        follow.update_trusted(b)
        ref.update(b)
        x = stream(5, 6, 1, False)
        assert lead.update_pair(x, follow)[1] == ref.update(x)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**16),
    st.integers(1, 3),
    st.lists(st.integers(0, 150), min_size=1, max_size=8),
)
def test_update_trusted_equals_update(seed: int, channels: int, sizes: list[int]) -> None:
    """update_trusted on a cleaned (k, C) complex128 chunk gives exactly update's results."""
    x = stream(seed, 400, channels, seed % 2 == 0)
    a = KairosEngine(dt=DT, lag=0.2, omega=0.9, window=3.0, channels=channels)
    b = KairosEngine(dt=DT, lag=0.2, omega=0.9, window=3.0, channels=channels)
    for part in chunks(x, sizes):
        assert a.update_trusted(part) == b.update(part if channels > 1 else part[:, 0])
    assert a.state_bytes() == b.snapshot().to_bytes()


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((5, 1)),  # float64, not complex128
        np.zeros(5, np.complex128),  # 1-D
        np.zeros((5, 2), np.complex128),  # wrong channel count
        [[0j]],  # not an array
    ],
)
def test_update_trusted_rejects_wrong_dtype_or_shape(bad: object) -> None:
    """A chunk of the wrong dtype or shape is refused with InputError; nothing is ingested."""
    eng = KairosEngine(dt=DT, lag=0.1, omega=0.0, window=1.0)
    eng.update(np.arange(5.0))
    before = eng.state_bytes()
    with pytest.raises(InputError, match="samples"):
        eng.update_trusted(bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="samples"):
        eng.update_pair(bad, KairosEngine(dt=DT, lag=0.1, omega=0.0, window=1.0))  # type: ignore[arg-type]
    assert eng.state_bytes() == before


@pytest.mark.parametrize("prefix", [0, 1, 3, 40])
@pytest.mark.parametrize("channels", [1, 2])
def test_chunk_longer_than_window_equals_small_pieces(prefix: int, channels: int) -> None:
    """A chunk much longer than W + L (only its newest W terms are computed) ends with the same
    result and window contents as the same samples fed seven at a time."""
    x = stream(11, prefix + 500, channels, channels == 2)
    big = KairosEngine(dt=DT, lag=0.3, omega=1.1, window=2.0, channels=channels)
    small = KairosEngine(dt=DT, lag=0.3, omega=1.1, window=2.0, channels=channels)
    big.update_trusted(x[:prefix])
    got = big.update_trusted(x[prefix:])
    for i in range(0, len(x), 7):
        want = small.update_trusted(x[i : i + 7])
    assert close(got, want)
    sa, sb = big.snapshot(), small.snapshot()
    for name in ("term_q", "term_a", "term_b", "vel_ring", "last_sample"):
        assert np.allclose(getattr(sa, name), getattr(sb, name), rtol=TOL, atol=TOL)
