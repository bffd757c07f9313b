"""Slow, obvious reference implementations of DESIGN.md §3–§4 for the core tests.

Rule: pure Python loops over the formulas exactly as DESIGN.md writes them (``cmath``/``math``,
no NumPy), so the fast code in ``becomingone.core`` is checked against something independent.
Nothing here is imported by the package.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Sequence

TWO_PI = 2.0 * math.pi

Rows = list[list[complex]]


def ref_wrap(x: float) -> float:
    """wrap(x) = ((x + 0.5) mod 1) − 0.5."""
    return ((x + 0.5) % 1.0) - 0.5


def ref_resultant(theta: Sequence[float], w: Sequence[float] | None = None) -> complex:
    """Σ w·e^{2πiθ} (w = 1 when not given)."""
    total = 0j
    for i, th in enumerate(theta):
        weight = 1.0 if w is None else w[i]
        total += weight * cmath.exp(1j * TWO_PI * th)
    return total


def ref_circular_mean(theta: Sequence[float], w: Sequence[float] | None = None) -> float | None:
    """arg(Σ w·e^{2πiθ}) / 2π mod 1; None when the resultant is (numerically) zero."""
    z = ref_resultant(theta, w)
    scale = len(theta) if w is None else sum(abs(x) for x in w)
    if abs(z) <= 1e-12 * scale:
        return None
    return (cmath.phase(z) / TWO_PI) % 1.0


def ref_order_parameter(theta: Sequence[float]) -> float:
    """R = |mean(e^{2πiθ})|."""
    return abs(ref_resultant(theta)) / len(theta)


def ref_r2_unbiased(theta: Sequence[float]) -> float:
    """R2u = (|Σ e^{2πiθ}|² − N) / (N(N−1)); 1 for a single phase."""
    n = len(theta)
    if n == 1:
        return 1.0
    return (abs(ref_resultant(theta)) ** 2 - n) / (n * (n - 1))


def ref_circular_variance(theta: Sequence[float]) -> float:
    """−ln(R2u) in radians²; inf when R2u ≤ 0; 0 for a single phase."""
    if len(theta) == 1:
        return 0.0
    r2u = ref_r2_unbiased(theta)
    if r2u <= 0.0:
        return math.inf
    return -math.log(r2u)


def ref_cluster_coherence(theta: Sequence[float]) -> float:
    """C = exp(−5 · circular_variance)."""
    var = ref_circular_variance(theta)
    return 0.0 if math.isinf(var) else math.exp(-5.0 * var)


def ref_band(c: float) -> str:
    """The band name of C exactly as DESIGN.md §3 writes the inequalities."""
    if c < 0.30:
        return "LOOSE"
    if 0.30 <= c < 0.60:
        return "FORMING"
    if 0.60 <= c <= 0.75:
        return "SYMBOLIC"
    return "SHARED"


def ref_midpoint(a: float, b: float) -> float:
    """a + wrap(b − a)/2 mod 1."""
    return (a + ref_wrap(b - a) / 2.0) % 1.0


def ref_harmonic_mean(a: float, b: float) -> float:
    """2ab/(a+b); 0 if either ≤ 0."""
    if a <= 0.0 or b <= 0.0:
        return 0.0
    return 2.0 * a * b / (a + b)


def as_rows(phi: object) -> Rows:
    """φ as a list of N rows of C complex numbers (1-D input is one channel)."""
    rows: Rows = []
    for item in phi:  # type: ignore[attr-defined]
        if isinstance(item, list | tuple) or hasattr(item, "__len__"):
            rows.append([complex(x) for x in item])
        else:
            rows.append([complex(item)])
    return rows


def ref_velocity(rows: Rows, dt: float) -> Rows:
    """φ̇[n] = (φ[n+1] − φ[n]) / dt per channel."""
    out: Rows = []
    for n in range(len(rows) - 1):
        out.append([(rows[n + 1][c] - rows[n][c]) / dt for c in range(len(rows[n]))])
    return out


def ref_inner(a: list[complex], b: list[complex]) -> complex:
    """⟨a, b⟩_C = Σ_c a_c · conj(b_c)."""
    total = 0j
    for x, y in zip(a, b, strict=True):
        total += x * y.conjugate()
    return total


def ref_temporal_resonance(
    phi: object, dt: float, lag: float, omega: float, t0: float = 0.0, first: int | None = None
) -> tuple[complex, int]:
    """T̂ of DESIGN.md §4 by direct summation, and the number of terms K.

    ``first`` restricts the sum to n ≥ first (a window's start); default L.
    """
    rows = as_rows(phi)
    v = ref_velocity(rows, dt)
    m = len(v)
    big_l = round(lag / dt)
    start = big_l if first is None else max(big_l, first)
    t_sum = 0j
    a = 0.0
    b = 0.0
    for n in range(start, m):
        t_n = t0 + n * dt
        t_sum += ref_inner(v[n], v[n - big_l]) * cmath.exp(1j * omega * t_n) * dt
        a += sum(abs(x) ** 2 for x in v[n])
        b += sum(abs(x) ** 2 for x in v[n - big_l])
    terms = max(0, m - start)
    denom = dt * math.sqrt(a * b)
    if denom == 0.0:
        return 0j, terms
    return t_sum / denom, terms


def ref_windowed(
    phi: object, dt: float, lag: float, omega: float, window: float, t0: float = 0.0
) -> tuple[complex, int]:
    """The windowed engine's T̂: the latest W = round(window/dt) indices n (n ≥ L)."""
    rows = as_rows(phi)
    m = len(rows) - 1
    big_w = round(window / dt)
    return ref_temporal_resonance(rows, dt, lag, omega, t0, first=m - big_w)
