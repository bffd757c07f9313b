"""Phase statistics on the circle (DESIGN.md §3) and the field merge, against slow references
and as Hypothesis properties: wrap range, rotation equivariance, clusters straddling 0/1,
band boundaries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from core_reference import (
    ref_band,
    ref_circular_mean,
    ref_circular_variance,
    ref_cluster_coherence,
    ref_harmonic_mean,
    ref_midpoint,
    ref_order_parameter,
    ref_r2_unbiased,
    ref_resultant,
    ref_wrap,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from becomingone.core.field import FieldState, merge_fields
from becomingone.core.phase import (
    CoherenceBand,
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

unit = st.floats(0.0, 1.0, exclude_max=True, allow_subnormal=False)
phases = st.lists(unit, min_size=1, max_size=40)
moderate = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
FAST = settings(max_examples=150)


def circ_dist(a: float, b: float) -> float:
    """Distance between two phases in cycles, along the circle."""
    return abs(ref_wrap(a - b))


@FAST
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_wrap_range_is_half_open(x: float) -> None:
    """wrap(x) lies in [-0.5, 0.5) for every finite x, 0.5 itself never comes out."""
    y = wrap(x)
    assert -0.5 <= y < 0.5


@FAST
@given(moderate)
def test_wrap_matches_reference_and_is_congruent(x: float) -> None:
    """wrap(x) equals ((x + 0.5) mod 1) − 0.5 (modulo the half-open fix) and differs from x
    by a whole number of cycles."""
    y = wrap(x)
    assert circ_dist(y, ref_wrap(x)) <= 1e-15 * max(1.0, abs(x))
    k = x - y
    assert abs(k - round(k)) <= 4e-16 * max(1.0, abs(x))


@settings(max_examples=400)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_wrap_of_one_float_equals_the_array_path(x: float) -> None:
    """wrap() of a Python float (the supervisor's step, computed without NumPy) is bit for bit
    the element-wise NumPy result for that value, including tiny negatives and huge values."""
    assert wrap(x) == float(wrap(np.array([x]))[0])
    assert type(wrap(x)) is float


def test_wrap_edges_and_arrays() -> None:
    """wrap(0.5) = −0.5, wrap(−0.5) = −0.5, a tiny negative number stays tiny, and arrays are
    wrapped element-wise into an array of the same shape."""
    assert wrap(0.5) == -0.5
    assert wrap(-0.5) == -0.5
    assert -0.5 <= wrap(-1e-20) < 0.5 and abs(wrap(-1e-20)) <= 1e-16
    assert circ_dist(wrap(math.nextafter(0.5, 0.0)), 0.5) <= 1e-15
    arr = wrap(np.array([[0.9, 1.5], [-0.75, 2.25]]))
    assert isinstance(arr, np.ndarray) and arr.shape == (2, 2)
    np.testing.assert_allclose(arr, [[-0.1, -0.5], [0.25, 0.25]], atol=1e-12)


@FAST
@given(phases, st.data())
def test_statistics_match_reference(theta: list[float], data: st.DataObject) -> None:
    """order_parameter, r2_unbiased, circular_variance, cluster_coherence and the (weighted)
    circular_mean equal the slow reference on random phase sets."""
    assert order_parameter(theta) == pytest.approx(ref_order_parameter(theta), abs=1e-12)
    assert r2_unbiased(theta) == pytest.approx(ref_r2_unbiased(theta), abs=1e-12)
    want_var = ref_circular_variance(theta)
    got_var = circular_variance(theta)
    if math.isinf(want_var):
        # R2u is a difference of nearly equal numbers near 0: accept either side of 0 there.
        assert math.isinf(got_var) or abs(ref_r2_unbiased(theta)) < 1e-12
    else:
        r2u = ref_r2_unbiased(theta)
        assert got_var == pytest.approx(want_var, abs=1e-12 / max(r2u, 1e-300) + 1e-12)
    assert cluster_coherence(theta) == pytest.approx(ref_cluster_coherence(theta), abs=1e-9)
    w = data.draw(st.lists(st.floats(0.0, 10.0), min_size=len(theta), max_size=len(theta)))
    for weights in (None, w):
        want = ref_circular_mean(theta, weights)
        got = circular_mean(theta, weights)
        if want is None or got is None:
            scale = len(theta) if weights is None else sum(weights)
            assert abs(ref_resultant(theta, weights)) <= 1e-9 * max(scale, 1e-300)
        else:
            assert 0.0 <= got < 1.0
            r = abs(ref_resultant(theta, weights))
            assert circ_dist(got, want) <= 1e-13 * (sum(weights) if weights else len(theta)) / r


@FAST
@given(phases, st.floats(-3.0, 3.0))
def test_circular_mean_of_rotated_set_rotates(theta: list[float], delta: float) -> None:
    """Rotating every phase by δ rotates the circular mean by δ (mod 1); R, R2u and C do not
    change."""
    assume(order_parameter(theta) > 0.05)
    rotated = [(x + delta) % 1.0 for x in theta]
    m0 = circular_mean(theta)
    m1 = circular_mean(rotated)
    assert m0 is not None and m1 is not None
    assert circ_dist(m1, m0 + delta) <= 1e-9
    assert order_parameter(rotated) == pytest.approx(order_parameter(theta), abs=1e-12)
    assert cluster_coherence(rotated) == pytest.approx(cluster_coherence(theta), abs=1e-9)


@FAST
@given(
    st.floats(-0.01, 0.01),
    st.floats(0.0, 0.01),
    st.lists(st.floats(-1.0, 1.0), min_size=2, max_size=30),
)
def test_tight_cluster_straddling_zero_scores_near_one(
    centre: float, spread: float, offsets: list[float]
) -> None:
    """A cluster of half-width s ≤ 0.01 cycles around 0/1 (phases on both sides of the cut)
    has C ≥ cos(4πs)⁵ ≥ 0.96 and a circular mean within s of the centre — a linear variance
    of the raw θ would score it as random."""
    theta = [(centre + spread * o) % 1.0 for o in offsets]
    theta += [(centre - spread) % 1.0, (centre + spread) % 1.0]
    c = cluster_coherence(theta)
    assert c >= math.cos(4 * math.pi * spread) ** 5 - 1e-9
    assert c >= 0.96
    m = circular_mean(theta)
    assert m is not None and circ_dist(m, centre) <= spread + 1e-12


def test_straddling_cluster_example() -> None:
    """[0.99, 0.01, 0.0, 0.02] scores C > 0.96 (DESIGN's example), though its raw values span
    nearly the whole unit interval."""
    assert cluster_coherence([0.99, 0.01, 0.0, 0.02]) > 0.96
    assert np.var([0.99, 0.01, 0.0, 0.02]) > 0.15


def test_degenerate_sets() -> None:
    """One phase: R = 1, R2u = 1, variance 0, C = 1. Antipodal or evenly spread phases: the
    mean is None and C = 0 (variance inf)."""
    assert order_parameter([0.3]) == 1.0
    assert r2_unbiased([0.3]) == 1.0
    assert circular_variance([0.3]) == 0.0
    assert cluster_coherence([0.3]) == 1.0
    for theta in ([0.0, 0.5], [0.1, 0.6], [0.0, 1 / 3, 2 / 3], [0.25, 0.5, 0.75, 0.0]):
        assert circular_mean(theta) is None
        assert math.isinf(circular_variance(theta))
        assert cluster_coherence(theta) == 0.0


@pytest.mark.parametrize(
    ("c", "band"),
    [
        (0.0, CoherenceBand.LOOSE),
        (math.nextafter(0.30, 0.0), CoherenceBand.LOOSE),
        (0.30, CoherenceBand.FORMING),
        (math.nextafter(0.60, 0.0), CoherenceBand.FORMING),
        (0.60, CoherenceBand.SYMBOLIC),
        (0.65, CoherenceBand.SYMBOLIC),
        (0.75, CoherenceBand.SYMBOLIC),
        (math.nextafter(0.75, 1.0), CoherenceBand.SHARED),
        (1.0, CoherenceBand.SHARED),
    ],
)
def test_coherence_band_boundaries(c: float, band: CoherenceBand) -> None:
    """The band edges are exactly DESIGN §3's: C < 0.30 LOOSE, 0.30 ≤ C < 0.60 FORMING,
    0.60 ≤ C ≤ 0.75 SYMBOLIC, C > 0.75 SHARED (one ulp either side of each edge)."""
    assert coherence_band(c) is band


@FAST
@given(st.floats(0.0, 1.0))
def test_coherence_band_matches_reference(c: float) -> None:
    """coherence_band agrees with the inequalities of DESIGN §3 on all of [0, 1]."""
    assert coherence_band(c).name == ref_band(c)


def test_coherence_band_members() -> None:
    """The band Enum has exactly the four members of the issue, in increasing order."""
    assert [b.name for b in CoherenceBand] == ["LOOSE", "FORMING", "SYMBOLIC", "SHARED"]


@FAST
@given(unit, unit)
def test_circular_midpoint_matches_reference(a: float, b: float) -> None:
    """circular_midpoint(a, b) = a + wrap(b − a)/2 mod 1, lies in [0, 1), and sits half-way
    along the shorter arc from a to b."""
    m = circular_midpoint(a, b)
    assert 0.0 <= m < 1.0
    assert circ_dist(m, ref_midpoint(a, b)) <= 1e-15
    assert ref_wrap(m - a) == pytest.approx(ref_wrap(b - a) / 2.0, abs=1e-12)


gains = st.one_of(st.floats(-10.0, 0.0), st.floats(1e-6, 1e6))


@FAST
@given(gains, gains)
def test_harmonic_mean_matches_reference(a: float, b: float) -> None:
    """harmonic_mean is 2ab/(a+b), 0 when either argument is ≤ 0, symmetric, and between
    min and max of two positive arguments."""
    h = harmonic_mean(a, b)
    assert h == pytest.approx(ref_harmonic_mean(a, b), rel=1e-15, abs=0.0)
    assert h == harmonic_mean(b, a)
    if a > 0 and b > 0:
        assert min(a, b) * (1 - 1e-15) <= h <= max(a, b) * (1 + 1e-15)


@pytest.mark.parametrize("x", [1e200, 1e-300, 1.5e300])
def test_harmonic_mean_of_equal_extreme_values_is_that_value(x: float) -> None:
    """harmonic_mean(x, x) = x for any positive finite x (no overflow or underflow in 2ab),
    and merging two fields with κ = x gives κ = x."""
    assert harmonic_mean(x, x) == pytest.approx(x, rel=1e-15, abs=0.0)
    f = FieldState(kappa=x)
    assert merge_fields(f, f).kappa == pytest.approx(x, rel=1e-15, abs=0.0)


fields = st.builds(
    FieldState,
    delta_phi=st.floats(-10.0, 10.0),
    kappa=st.floats(0.0, 10.0),
    theta=unit,
    coherence=st.floats(0.0, 1.0),
    energy=st.floats(0.0, 100.0),
    variance=st.one_of(st.floats(0.0, 50.0), st.just(math.inf)),
)


@FAST
@given(fields, fields)
def test_merge_fields_matches_seed_operator(local: FieldState, remote: FieldState) -> None:
    """merge_fields: ΔΦ average, κ harmonic mean, θ circular midpoint,
    C = exp(−(var_local + var_remote)/2) (0 when a variance is inf)."""
    m = merge_fields(local, remote)
    assert m.delta_phi == pytest.approx((local.delta_phi + remote.delta_phi) / 2.0, abs=1e-15)
    assert m.kappa == pytest.approx(ref_harmonic_mean(local.kappa, remote.kappa), rel=1e-15)
    assert circ_dist(m.theta, ref_midpoint(local.theta, remote.theta)) <= 1e-15
    want_c = math.exp(-(local.variance + remote.variance) / 2.0)
    assert m.coherence == pytest.approx(want_c, rel=1e-15, abs=0.0)
    assert 0.0 <= m.coherence <= 1.0
