"""KAIROS temporal resonance, one-shot form (DESIGN.md §4, normative).

For a phase sequence φ of N samples at step ``dt`` seconds (shape (N,) or (N, C); real φ is an
unwrapped phase in radians, complex φ a phasor signal)::

    φ̇[n] = (φ[n+1] − φ[n]) / dt,                       n = 0 … M−1, M = N − 1
    T_τ  = Σ_{n=L}^{M−1} ⟨φ̇[n], φ̇[n−L]⟩ e^{iω t_n} dt,  t_n = t0 + n·dt, L = round(τ̄/dt)
    T̂    = T_τ / (dt · sqrt(Σ|φ̇[n]|² · Σ|φ̇[n−L]|²))   (same n range; 0 if the root is 0)

Coherence is |T̂|²; a collapse happens iff |T̂|² ≥ I_c. NumPy, and at ω = 0 the compiled kernel
of :mod:`becomingone.core.kernels`; no I/O, no clocks. The streaming engine lives in
:mod:`becomingone.core.stream`, the lag × ω map in :mod:`becomingone.core.resmap`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from becomingone.core import kernels
from becomingone.core._checks import (
    check_finite,
    finite_array,
    finite_float,
    max_part,
    nonnegative_float,
    numeric_array,
    positive_float,
)
from becomingone.errors import InputError

__all__ = [
    "Resonance",
    "as_phase_matrix",
    "false_alarm_probability",
    "lag_samples",
    "phase_velocity",
    "temporal_resonance",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Resonance:
    """One evaluation of the engine.

    Attributes
    ----------
    time : float
        Seconds: time of the newest input sample the value covers.
    value : complex
        The normalised resonance T̂ (|T̂| ≤ 1).
    coherence : float
        |T̂|², in [0, 1].
    terms : int
        Number of velocity products in the sum (K).
    collapsed : bool
        ``coherence >= threshold`` (and at least one term).
    """

    time: float
    value: complex
    coherence: float
    terms: int
    collapsed: bool


def as_phase_matrix(phi: ArrayLike, name: str = "phi", *, finite: bool = True) -> NDArray[Any]:
    """Validate φ and return it as a 2-D (N, C) float64 or complex128 array.

    With ``finite=False`` the caller promises to detect non-finite entries itself (as
    :func:`temporal_resonance` does from its sums, saving a pass over the data).
    """
    arr = finite_array(name, phi) if finite else numeric_array(name, phi)
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2:
        raise InputError(name, f"must have shape (N,) or (N, C), got {arr.shape}")
    if arr.shape[1] < 1:
        raise InputError(name, "needs at least one channel")
    return arr


def lag_samples(lag: float, dt: float) -> int:
    """The lag in samples, L = round(τ̄ / dt); ``lag`` and ``dt`` in seconds."""
    lag_s = nonnegative_float("lag", lag)
    step = positive_float("dt", dt)
    return round(lag_s / step)


def phase_velocity(phi: ArrayLike, dt: float) -> NDArray[Any]:
    """Phase velocity φ̇[n] = (φ[n+1] − φ[n]) / dt, in rad/s, shape (N−1,) or (N−1, C).

    Raises ``InputError('phi')`` when φ is not finite or a velocity overflows float64.

    Examples
    --------
    >>> phase_velocity([0.0, 0.5, 1.5], 0.5).tolist()
    [1.0, 2.0]
    """
    step = positive_float("dt", dt)
    arr = finite_array("phi", phi)
    if arr.ndim not in (1, 2):
        raise InputError("phi", f"must have shape (N,) or (N, C), got {arr.shape}")
    if arr.shape[0] < 2:
        raise InputError("phi", f"needs at least 2 samples, got {arr.shape[0]}")
    with np.errstate(over="ignore"):
        v = np.diff(arr, axis=0) / step
    if not np.all(np.isfinite(v)):
        raise _overflow(arr, "its phase velocity", f"dt={step}")
    return v


def temporal_resonance(
    phi: ArrayLike, dt: float, lag: float, omega: float, t0: float = 0.0
) -> complex:
    """The normalised temporal resonance T̂ of a whole sequence.

    T̂ does not depend on the scale of φ̇, so the sums run over the differences φ[n+1] − φ[n]
    (the 1/dt factors cancel). At ω = 0 the rotation is skipped and the sums come from one
    fused compiled pass over φ (:mod:`becomingone.core.kernels`; the NumPy form when the
    extension is not built), within 2× one complex ``np.vdot`` of the velocities
    (``bench/kairos.py``).

    Parameters
    ----------
    phi : array_like, shape (N,) or (N, C)
        Unwrapped phase in radians (real) or a phasor signal (complex).
    dt : float
        Sample step in seconds, > 0.
    lag : float
        τ̄ in seconds, ≥ 0; rounded to L = round(lag/dt) samples.
    omega : float
        ω in rad/s.
    t0 : float
        Time of sample 0 in seconds.

    Returns
    -------
    complex
        T̂, with |T̂| ≤ 1; 0 when either energy sum is 0.

    Raises
    ------
    InputError
        ``phi`` not finite, or so large that the sums overflow float64; ``omega`` so large
        that ω·t overflows; any other argument out of range.

    Examples
    --------
    >>> t = np.arange(200) * 0.01
    >>> round(abs(temporal_resonance(2 * np.pi * 5 * t, 0.01, 0.1, 0.0)) ** 2, 12)
    1.0
    """
    mat = as_phase_matrix(phi, finite=False)
    lag_s = nonnegative_float("lag", lag)
    step = positive_float("dt", dt)
    big_l = round(lag_s / step)  # lag_samples(lag, dt), without checking dt twice
    w = finite_float("omega", omega)
    start = finite_float("t0", t0)
    if mat.shape[0] < 2:
        raise InputError("phi", f"needs at least 2 samples, got {mat.shape[0]}")
    m = mat.shape[0] - 1
    if big_l >= m:
        raise InputError("lag", f"lag of {big_l} samples needs more than {m} velocity samples")
    if w == 0.0:
        energy, a, b, total = kernels.lagged_sums(mat, big_l)
    else:
        energy, a, b, total = _rotated_sums(mat, w, step, start, big_l)
    # energy covers every difference, so it is not finite iff some φ is not or a term overflows
    if not (
        math.isfinite(energy)
        and math.isfinite(a)
        and math.isfinite(b)
        and math.isfinite(total.real)
        and math.isfinite(total.imag)
    ):
        check_finite("phi", mat)
        raise _overflow(mat, "the velocity sums", f"dt={step}")
    if a == 0.0 or b == 0.0:
        return 0j
    return clip_unit(total / (math.sqrt(a) * math.sqrt(b)))


def _rotated_sums(
    mat: NDArray[Any], omega: float, dt: float, t0: float, big_l: int
) -> tuple[float, float, float, complex]:
    """(energy, a, b, rotated lagged sum) of φ at ω ≠ 0 (NumPy; see :mod:`.kernels`)."""
    m = mat.shape[0] - 1
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by the caller
        d = np.subtract(mat[1:], mat[:-1])
        energy, a, b = kernels.energies(d, big_l)
        total = _rotated(d[big_l:], d[: m - big_l], omega, dt, t0, big_l)
    return energy, a, b, total


def _rotated(
    now: NDArray[Any], past: NDArray[Any], omega: float, dt: float, t0: float, big_l: int
) -> complex:
    """Σ_j ⟨now[j], past[j]⟩ e^{iω t_{L+j}}: the sum at ω ≠ 0 (now[0] is index L)."""
    n_last = big_l + now.shape[0] - 1
    if not (math.isfinite(omega * dt * n_last) and math.isfinite(omega * t0)):
        raise InputError(
            "omega", f"ω·t overflows float64 (ω={omega} rad/s, t0={t0} s, {n_last} steps)"
        )
    products = np.sum(now * np.conj(past), axis=1)
    n = np.arange(big_l, n_last + 1, dtype=np.float64)
    rot = np.exp(1j * omega * t0) * np.exp(1j * ((omega * dt) * n))
    return complex(np.sum(products * rot))


def _overflow(arr: NDArray[Any], what: str, how: str) -> InputError:
    """The error for finite φ whose velocity terms do not fit in float64."""
    peak = max_part(arr)
    return InputError(
        "phi", f"{what} would overflow float64 ({how}, max |value| {peak:.3g}); rescale φ"
    )


def clip_unit(z: complex) -> complex:
    """Bring |z| back to ≤ 1 when rounding pushed it a hair above (Cauchy–Schwarz bound)."""
    r = abs(z)
    return z / r if r > 1.0 else z


def false_alarm_probability(terms: int, threshold: float, omega: float) -> float:
    """Chance that a non-resonant stream reaches |T̂|² ≥ ``threshold`` with K = ``terms``.

    For ω ≠ 0, |T̂|² is about exponential with mean 1/K: P = exp(−K·I_c). For ω = 0 the sum is
    real, |T̂|² is about χ²₁/K: P = erfc(sqrt(K·I_c/2)).

    Examples
    --------
    >>> round(false_alarm_probability(100, 0.05, 1.0), 6)
    0.006738
    """
    if isinstance(terms, bool) or not isinstance(terms, int | np.integer) or terms < 0:
        raise InputError("terms", f"must be an integer >= 0, got {terms!r}")
    thr = finite_float("threshold", threshold)
    w = finite_float("omega", omega)
    if thr <= 0.0:
        return 1.0
    if thr > 1.0 or terms == 0:
        return 0.0
    x = int(terms) * thr
    if w != 0.0:
        return math.exp(-x)
    return math.erfc(math.sqrt(x / 2.0))  # the stdlib erfc: no SciPy import for one scalar
