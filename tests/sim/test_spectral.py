"""The closed-form spectral prediction."""

from __future__ import annotations

import math

import pytest

from becomingone.errors import InputError
from becomingone.sim import UNIFORM_VARIANCE, contraction, predicted_rounds, spectral_gap


def test_gaps() -> None:
    """Ring λ₂ = 1 − cos(2π/N); mesh, hub and fractal 1."""
    assert spectral_gap("ring", 100) == pytest.approx(1 - math.cos(2 * math.pi / 100))
    for topo in ("mesh", "hub", "fractal"):
        assert spectral_gap(topo, 100) == 1.0


def test_ring_contraction_is_about_one_minus_half_alpha_gap() -> None:
    """The ring's slowest mode shrinks by ≈ 1 − (α/2)·λ₂ per round."""
    rho = contraction("ring", 50, 0.01)
    assert 1 - rho == pytest.approx(0.005 * spectral_gap("ring", 50), rel=1e-2)
    assert contraction("mesh", 50, 0.01) == pytest.approx(0.99)


def test_mesh_formula_and_flatness() -> None:
    """Mesh rounds = ln(V_target/V0)/(2 ln(1−α)), independent of N."""
    v_target = -math.log(0.99) / 5
    expected = math.ceil(math.log(v_target / UNIFORM_VARIANCE) / (2 * math.log(0.99)))
    assert predicted_rounds("mesh", 10, 0.01, 0.99) == expected
    assert predicted_rounds("fractal", 10**6, 0.01, 0.99) == expected
    assert predicted_rounds("mesh", 10, 0.01, 0.99, initial_variance=1e-4) == 0


def test_bad_target() -> None:
    """target outside (0, 1) is rejected by name."""
    with pytest.raises(InputError) as info:
        predicted_rounds("mesh", 10, 0.01, 1.0)
    assert info.value.parameter == "target"
