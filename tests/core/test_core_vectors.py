"""The numeric core against the reference vectors of DESIGN.md §3–§4 (``data/kairos_vectors.json``).

Every entry of every section is checked, against the fast code and against the slow reference
in ``core_reference`` (so the reference itself is anchored to the independent numbers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from core_reference import (
    ref_circular_mean,
    ref_circular_variance,
    ref_cluster_coherence,
    ref_order_parameter,
    ref_r2_unbiased,
    ref_temporal_resonance,
    ref_windowed,
)
from core_vectors import load_vectors

from becomingone.core.field import FieldState, merge_fields
from becomingone.core.kairos import temporal_resonance
from becomingone.core.phase import (
    circular_mean,
    circular_variance,
    cluster_coherence,
    order_parameter,
    r2_unbiased,
    wrap,
)
from becomingone.core.stream import KairosEngine

VECTORS = load_vectors()
TOL = 1e-12


def _ids(section: str) -> list[str]:
    return [f"{section}[{i}]" for i in range(len(VECTORS[section]))]


def _phi(entry: dict[str, Any]) -> np.ndarray:
    """φ of an entry: real ``phi`` or complex ``phi_complex`` given as [re, im] pairs."""
    if "phi_complex" in entry:
        pairs = np.asarray(entry["phi_complex"], dtype=np.float64)
        return pairs[..., 0] + 1j * pairs[..., 1]
    return np.asarray(entry["phi"], dtype=np.float64)


def test_every_section_is_present_and_non_empty() -> None:
    """The copied vector file has all four sections, each with at least one entry."""
    for section in ("phase", "merge", "temporal_resonance", "windowed"):
        assert VECTORS[section], section


@pytest.mark.parametrize("entry", VECTORS["phase"], ids=_ids("phase"))
def test_phase_statistics_match_vectors(entry: dict[str, Any]) -> None:
    """circular_mean, order_parameter, r2_unbiased, circular_variance (null = inf) and
    cluster_coherence equal the reference values for each phase set."""
    theta = entry["theta"]
    mean = circular_mean(theta)
    assert mean is not None
    assert abs(wrap(mean - entry["circular_mean"])) <= TOL
    assert order_parameter(theta) == pytest.approx(entry["order_parameter"], rel=TOL, abs=TOL)
    assert r2_unbiased(theta) == pytest.approx(entry["r2_unbiased"], rel=TOL, abs=TOL)
    var = circular_variance(theta)
    if entry["circular_variance"] is None:
        assert math.isinf(var) and var > 0
    else:
        assert var == pytest.approx(entry["circular_variance"], rel=1e-10, abs=TOL)
    assert cluster_coherence(theta) == pytest.approx(entry["cluster_coherence"], rel=1e-10, abs=TOL)


@pytest.mark.parametrize("entry", VECTORS["phase"], ids=_ids("phase"))
def test_reference_phase_statistics_match_vectors(entry: dict[str, Any]) -> None:
    """The slow reference implementations reproduce the vectors too (they anchor the
    property tests)."""
    theta = entry["theta"]
    mean = ref_circular_mean(theta)
    assert mean is not None
    assert abs(wrap(mean - entry["circular_mean"])) <= TOL
    assert ref_order_parameter(theta) == pytest.approx(entry["order_parameter"], abs=TOL)
    assert ref_r2_unbiased(theta) == pytest.approx(entry["r2_unbiased"], abs=TOL)
    var = ref_circular_variance(theta)
    expect = math.inf if entry["circular_variance"] is None else entry["circular_variance"]
    assert var == pytest.approx(expect, rel=1e-10, abs=TOL)
    assert ref_cluster_coherence(theta) == pytest.approx(entry["cluster_coherence"], abs=TOL)


@pytest.mark.parametrize("entry", VECTORS["merge"], ids=_ids("merge"))
def test_merge_fields_matches_vectors(entry: dict[str, Any]) -> None:
    """merge_fields on two FieldStates gives the vector's ΔΦ, κ, θ and coherence, in both
    argument orders (the operator is symmetric)."""
    local = FieldState(**entry["local"])
    remote = FieldState(**entry["remote"])
    want = entry["merged"]
    for merged in (merge_fields(local, remote), merge_fields(remote, local)):
        assert merged.delta_phi == pytest.approx(want["delta_phi"], abs=TOL)
        assert merged.kappa == pytest.approx(want["kappa"], abs=TOL)
        assert abs(wrap(merged.theta - want["theta"])) <= TOL
        assert merged.coherence == pytest.approx(want["coherence"], abs=TOL)


@pytest.mark.parametrize("entry", VECTORS["temporal_resonance"], ids=_ids("temporal_resonance"))
def test_temporal_resonance_matches_vectors(entry: dict[str, Any]) -> None:
    """temporal_resonance (real 1-D, real (N, C) and complex φ; ω and t0 as given) gives the
    vector's T̂ and coherence |T̂|²; the slow reference agrees."""
    phi = _phi(entry)
    want = complex(*entry["T_hat"])
    got = temporal_resonance(phi, entry["dt"], entry["lag"], entry["omega"], entry["t0"])
    assert abs(got - want) <= 1e-10
    assert abs(got) ** 2 == pytest.approx(entry["coherence"], abs=1e-10)
    ref, _ = ref_temporal_resonance(phi, entry["dt"], entry["lag"], entry["omega"], entry["t0"])
    assert abs(ref - want) <= 1e-10


@pytest.mark.parametrize("entry", VECTORS["windowed"], ids=_ids("windowed"))
@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_windowed_engine_matches_vectors(entry: dict[str, Any], chunk: int | None) -> None:
    """KairosEngine with the vector's window gives its T̂, coherence and number of terms,
    whether fed in one piece or in chunks of 1 or 7 samples."""
    phi = _phi(entry)
    eng = KairosEngine(
        dt=entry["dt"],
        lag=entry["lag"],
        omega=entry["omega"],
        window=entry["window"],
        t0=entry["t0"],
    )
    step = phi.shape[0] if chunk is None else chunk
    for i in range(0, phi.shape[0], step):
        res = eng.update(phi[i : i + step])
    want = complex(*entry["T_hat"])
    assert abs(res.value - want) <= 1e-10
    assert res.coherence == pytest.approx(entry["coherence"], abs=1e-10)
    assert res.terms == entry["terms"]
    assert res.time == entry["t0"] + (phi.shape[0] - 1) * entry["dt"]
    ref, terms = ref_windowed(
        phi, entry["dt"], entry["lag"], entry["omega"], entry["window"], entry["t0"]
    )
    assert abs(ref - want) <= 1e-10 and terms == entry["terms"]
