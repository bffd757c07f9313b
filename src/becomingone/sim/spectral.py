"""Spectral prediction of how fast a cluster phase-locks (derivation in docs/cluster.md).

Rule: closed-form arithmetic only; no simulation here. Linearise the CPS update around the
locked state: deviations δ from the cluster phase obey δ ← (I − α·g·L)·δ, where L is the
Laplacian of the averaging the topology performs and g the weight a cell gives to what it
hears. The slowest non-constant mode shrinks by ρ = |1 − α·g·μ₂| per round (μ₂ the Laplacian
eigenvalue whose real part is the spectral gap λ₂), so the circular variance (radians²)
shrinks by ρ² per round, and C = exp(−5·V) reaches ``target`` after
``ln(V_target / V₀) / (2 ln ρ)`` rounds with ``V_target = −ln(target) / 5``.
"""

from __future__ import annotations

import cmath
import math

from becomingone.core._checks import finite_float, positive_int
from becomingone.errors import InputError
from becomingone.sync.topology import Topology

__all__ = ["UNIFORM_VARIANCE", "contraction", "predicted_rounds", "spectral_gap"]

#: Linearised circular variance (radians²) of uniform random phases: (2π)²·(1/12) = π²/3.
UNIFORM_VARIANCE = math.pi**2 / 3.0


def spectral_gap(topology: Topology | str, n: int) -> float:
    """λ₂ of the topology's coupling graph: 1 − cos(2π/N) for a ring; 1 otherwise.

    Mesh and hub average over every cell (Laplacian I − J/N, eigenvalue 1 on every
    non-constant mode); the fractal topology aggregates up to the same global mean.

    Examples
    --------
    >>> round(spectral_gap("ring", 4), 12)
    1.0
    >>> spectral_gap("mesh", 1000)
    1.0
    """
    topo = Topology.parse(topology)
    size = positive_int("n", n)
    if size == 1:
        return 1.0
    if topo is Topology.RING:
        return 1.0 - math.cos(2.0 * math.pi / size)
    return 1.0


def contraction(topology: Topology | str, n: int, alpha: float) -> float:
    """ρ: the factor by which the slowest deviation mode shrinks per round.

    Mesh, hub, fractal: 1 − α exactly (every cell steps α of the way to the common mean).
    Ring: Θ_cluster is the mean of the predecessor and the cell, so the coupling weight is
    g = ½ and mode k = 1 has eigenvalue μ = 1 − e^{2πi/N}; ρ = |1 − (α/2)·μ| ≈ 1 − (α/2)·λ₂.
    """
    topo = Topology.parse(topology)
    size = positive_int("n", n)
    a = finite_float("alpha", alpha)
    if not 0.0 < a < 1.0:
        raise InputError("alpha", f"must be in (0, 1), got {a!r}")
    if topo is not Topology.RING or size == 1:
        return 1.0 - a
    mu = 1.0 - cmath.exp(2j * math.pi / size)
    return abs(1.0 - (a / 2.0) * mu)


def predicted_rounds(
    topology: Topology | str,
    n: int,
    alpha: float,
    target: float,
    *,
    initial_variance: float = UNIFORM_VARIANCE,
) -> int:
    """Rounds for C to reach ``target`` from linearised variance ``initial_variance`` (rad²).

    The default start is uniform random phases (π²/3). For a ring, pass the variance carried by
    the slowest modes (:func:`becomingone.sim.slow_mode_variance`): the faster modes are gone
    long before the slowest one is.

    Examples
    --------
    >>> predicted_rounds("mesh", 1000, 0.01, 0.99)
    369
    """
    c = finite_float("target", target)
    if not 0.0 < c < 1.0:
        raise InputError("target", f"must be in (0, 1), got {c!r}")
    v0 = finite_float("initial_variance", initial_variance)
    if v0 < 0.0:
        raise InputError("initial_variance", f"must be >= 0, got {v0!r}")
    rho = contraction(topology, n, alpha)
    v_target = -math.log(c) / 5.0
    if v0 <= v_target:
        return 0
    return math.ceil(math.log(v_target / v0) / (2.0 * math.log(rho)))
