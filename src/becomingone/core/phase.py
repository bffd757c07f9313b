"""Phase statistics on the circle (DESIGN.md §3, normative).

Cluster phases θ are in **cycles** in [0, 1). Every statistic here is circular: a tight group
straddling 0/1 scores as tight. Pure NumPy; no I/O, no clocks.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from becomingone.core._checks import finite_array, finite_float
from becomingone.errors import InputError

__all__ = [
    "CoherenceBand",
    "circular_mean",
    "circular_midpoint",
    "circular_variance",
    "cluster_coherence",
    "coherence_band",
    "harmonic_mean",
    "order_parameter",
    "r2_unbiased",
    "wrap",
]

TWO_PI = 2.0 * math.pi

#: Coherence band limits (DESIGN.md §3).
LOOSE_BELOW = 0.30
FORMING_BELOW = 0.60
SYMBOLIC_UP_TO = 0.75
#: Glyph migration is possible above this cluster coherence.
MIGRATION_ABOVE = 0.65


class CoherenceBand(enum.Enum):
    """The named ranges of cluster coherence C."""

    LOOSE = "LOOSE"
    FORMING = "FORMING"
    SYMBOLIC = "SYMBOLIC"
    SHARED = "SHARED"


def wrap(x: ArrayLike) -> Any:
    """Wrap a phase difference in cycles into [-0.5, 0.5).

    ``wrap(x) = ((x + 0.5) mod 1) - 0.5``; works element-wise on arrays.

    Examples
    --------
    >>> round(float(wrap(0.9)), 12)
    -0.1
    """
    if type(x) is float and math.isfinite(x):  # one phase (a supervisor's step): no array
        # Python's float % follows the same rule as np.mod (fmod, then the divisor's sign)
        one = (x + 0.5) % 1.0 - 0.5
        return one - 1.0 if one >= 0.5 else one
    arr = finite_array("x", x, allow_complex=False)
    out = np.mod(arr + 0.5, 1.0) - 0.5
    # mod can round up to exactly 1.0 for tiny negative inputs; keep the half-open range.
    out = np.where(out >= 0.5, out - 1.0, out)
    return float(out) if out.ndim == 0 else out


def _phases(theta: ArrayLike, name: str = "theta") -> NDArray[np.float64]:
    arr = finite_array(name, theta, allow_complex=False)
    return np.atleast_1d(arr).ravel()


def _resultant(theta: NDArray[np.float64], w: NDArray[np.float64] | None = None) -> complex:
    """Σ w·e^{2πiθ}; θ is reduced mod 1 first (exact), so a huge finite θ cannot overflow."""
    z = np.exp(1j * TWO_PI * np.mod(theta, 1.0))
    return complex(np.sum(z if w is None else w * z))


def circular_mean(theta: ArrayLike, w: ArrayLike | None = None) -> float | None:
    """Weighted circular mean in cycles, in [0, 1); ``None`` when the resultant is zero.

    ``arg(Σ w·e^{2πiθ}) / 2π mod 1``.

    Examples
    --------
    >>> round(circular_mean([0.95, 0.05]), 12) in (0.0, 1.0)
    True
    """
    th = _phases(theta)
    if th.size == 0:
        raise InputError("theta", "needs at least one phase")
    weights = None
    if w is not None:
        weights = _phases(w, "w")
        if weights.shape != th.shape:
            raise InputError("w", f"must have the shape of theta {th.shape}, got {weights.shape}")
        peak = float(np.max(np.abs(weights)))
        if peak > 1.0:  # the mean does not depend on the weights' scale; keep Σ w·z finite
            weights = weights / peak
    z = _resultant(th, weights)
    scale = float(np.sum(np.abs(weights))) if weights is not None else float(th.size)
    if abs(z) <= 1e-12 * max(scale, 1e-300):
        return None
    mean = (math.atan2(z.imag, z.real) / TWO_PI) % 1.0
    return 0.0 if mean >= 1.0 else mean


def order_parameter(theta: ArrayLike) -> float:
    """Kuramoto order parameter R = |mean(e^{2πiθ})|, in [0, 1]."""
    th = _phases(theta)
    if th.size == 0:
        raise InputError("theta", "needs at least one phase")
    return min(1.0, abs(_resultant(th)) / th.size)


def r2_unbiased(theta: ArrayLike) -> float:
    """Bias-corrected R²: (|Σ e^{2πiθ}|² − N) / (N(N−1)); 1.0 for a single phase."""
    th = _phases(theta)
    n = th.size
    if n == 0:
        raise InputError("theta", "needs at least one phase")
    if n == 1:
        return 1.0
    s = abs(_resultant(th)) ** 2
    return (s - n) / (n * (n - 1))


def circular_variance(theta: ArrayLike) -> float:
    """Wrapped-normal variance −ln(R2u) in radians²; ``inf`` when R2u ≤ 0, 0 for one phase."""
    r2u = r2_unbiased(theta)
    if r2u <= 0.0:
        return math.inf
    return max(0.0, -math.log(min(r2u, 1.0)))


def cluster_coherence(theta: ArrayLike) -> float:
    """Cluster coherence C = exp(−5 · circular_variance), in [0, 1].

    Examples
    --------
    >>> cluster_coherence([0.99, 0.01, 0.0, 0.02]) > 0.96
    True
    """
    var = circular_variance(theta)
    return 0.0 if math.isinf(var) else math.exp(-5.0 * var)


def coherence_band(c: float) -> CoherenceBand:
    """Name the band of a cluster coherence value C in [0, 1]."""
    value = finite_float("c", c)
    if value < 0.0 or value > 1.0 + 1e-12:
        raise InputError("c", f"must be in [0, 1], got {value!r}")
    if value < LOOSE_BELOW:
        return CoherenceBand.LOOSE
    if value < FORMING_BELOW:
        return CoherenceBand.FORMING
    if value <= SYMBOLIC_UP_TO:
        return CoherenceBand.SYMBOLIC
    return CoherenceBand.SHARED


def circular_midpoint(a: float, b: float) -> float:
    """Midpoint of two phases along the shorter arc: a + wrap(b − a)/2 mod 1."""
    x = finite_float("a", a) % 1.0  # exact; keeps b − a finite for huge phases
    y = finite_float("b", b) % 1.0
    out = (x + float(wrap(y - x)) / 2.0) % 1.0
    return 0.0 if out >= 1.0 else out


def harmonic_mean(a: float, b: float) -> float:
    """Harmonic mean 2ab/(a+b); 0 when either is ≤ 0."""
    x = finite_float("a", a)
    y = finite_float("b", b)
    if x <= 0.0 or y <= 0.0:
        return 0.0
    # Scale by the larger value so 2ab neither overflows nor underflows.
    big = max(x, y)
    xs, ys = x / big, y / big
    return big * (2.0 * xs * ys / (xs + ys))
