"""The resonance map: |T̂|² over lags × ω for one sequence, by FFT (DESIGN.md §4).

For each lag L the products p_n = ⟨φ̇[n], φ̇[n−L]⟩ (n = L … M−1) are formed once; T̂ at every ω
is then a Fourier sum of that sequence, so one FFT (or a chirp-z transform for an arbitrary
uniform ω grid) gives the whole row. The normalisers come from prefix sums of |φ̇|². Work is
O(lags · M log M); there is no loop over ω. Pure NumPy/SciPy; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from becomingone.core._checks import finite_array, positive_float, positive_int

if TYPE_CHECKING:  # scipy.signal costs ~1 s of CPU to import: only where a map is computed
    from scipy import signal
from becomingone.core.kairos import as_phase_matrix, phase_velocity
from becomingone.errors import InputError

__all__ = ["ResonanceMap", "resonance_map"]

#: ω grids with at most this many points are evaluated by a direct (BLAS) Fourier sum.
_DIRECT_MAX = 4


@dataclass(frozen=True, slots=True)
class ResonanceMap:
    """|T̂|² on a grid of lags (seconds) × ω (rad/s).

    ``power[i, j]`` is the coherence at ``lags[i]`` and ``omegas[j]``; ``terms[i]`` is K for
    that lag. ``peak()`` returns the (lag, ω, power) of the maximum.
    """

    lags: NDArray[np.float64]
    omegas: NDArray[np.float64]
    power: NDArray[np.float64]
    terms: NDArray[np.int64]

    def peak(self) -> tuple[float, float, float]:
        """The lag (s), ω (rad/s) and |T̂|² of the strongest resonance."""
        i, j = np.unravel_index(int(np.argmax(self.power)), self.power.shape)
        return float(self.lags[i]), float(self.omegas[j]), float(self.power[i, j])


def _default_omegas(dt: float, n_omegas: int) -> NDArray[np.float64]:
    return np.linspace(0.0, math.pi / dt, n_omegas)


def _validate_grid(name: str, values: ArrayLike) -> NDArray[np.float64]:
    arr = np.atleast_1d(finite_array(name, values, allow_complex=False)).astype(np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(name, f"must be a non-empty 1-D sequence, got shape {arr.shape}")
    return arr


def _uniform_step(omegas: NDArray[np.float64]) -> float | None:
    if omegas.size < 2:
        return None
    steps = np.diff(omegas)
    step = float(steps.mean())
    if step != 0.0 and np.allclose(steps, step, rtol=1e-9, atol=1e-12 * abs(step)):
        return step
    return None


class _FourierRows:
    """Σ_n p[n − start] · e^{iω·dt·n} for every ω, n = start … start + len(p) − 1.

    A uniform ω grid uses one precomputed chirp-z transform (FFT-based) for every row; short or
    irregular grids use a direct matrix–vector product.
    """

    def __init__(self, length: int, dt: float, omegas: NDArray[np.float64]) -> None:
        self.length = length
        self.dt = dt
        self.omegas = omegas
        step = _uniform_step(omegas)
        self.czt: signal.CZT | None = None
        if omegas.size > _DIRECT_MAX and step is not None:
            # Chirp-z evaluates X_j = Σ_k p_k z_j^{-k} at z_j = A·W^{-j}; A = e^{-iω0·dt} and
            # W = e^{iΔω·dt} give z_j^{-k} = e^{iω_j·dt·k}.
            from scipy import signal

            self.czt = signal.CZT(
                length, m=omegas.size, w=np.exp(1j * step * dt), a=np.exp(-1j * omegas[0] * dt)
            )

    def __call__(self, p: NDArray[np.complex128], start: int) -> NDArray[np.complex128]:
        if self.czt is None:
            n = np.arange(start, start + p.size, dtype=np.float64)
            rows = np.exp(1j * self.dt * np.outer(self.omegas, n))
            return np.asarray(rows @ p, dtype=np.complex128)
        padded = np.zeros(self.length, np.complex128)
        padded[: p.size] = p
        row = self.czt(padded)
        return np.asarray(row * np.exp(1j * self.omegas * self.dt * start), np.complex128)


def _fft_grid_row(p: NDArray[np.complex128], start: int, n_fft: int, pick: Any) -> Any:
    """Row on the FFT grid ω_k = 2πk/(n_fft·dt): inverse FFT gives the e^{+iωt} sign."""
    from scipy import fft as sfft  # here: a cell that never maps resonance never loads SciPy

    spec = sfft.ifft(p, n=n_fft) * n_fft
    k = np.arange(n_fft)[pick]
    return spec[pick] * np.exp(2j * np.pi * k * start / n_fft)


def _unit_scale(v: NDArray[Any]) -> NDArray[Any]:
    """Velocities divided by their largest real or imaginary part, so |φ̇|² sums cannot
    overflow; |T̂|² is a ratio of products of φ̇, so a common positive scale cancels."""
    peak = float(max(np.max(np.abs(v.real)), np.max(np.abs(v.imag)))) if v.size else 0.0
    return v / peak if peak > 0.0 else v


def resonance_map(
    phi: ArrayLike,
    dt: float,
    lags: ArrayLike,
    omegas: ArrayLike | None = None,
    *,
    n_omegas: int = 256,
) -> ResonanceMap:
    """|T̂|² of ``phi`` over a grid of lags and angular frequencies.

    Parameters
    ----------
    phi : array_like, shape (N,) or (N, C)
        Unwrapped phase (radians) or complex phasors.
    dt : float
        Sample step in seconds.
    lags : array_like
        Lags τ̄ in seconds (each rounded to whole samples, must be < the velocity count).
    omegas : array_like, optional
        ω values in rad/s. Default: ``n_omegas`` points of the FFT grid from 0 to the Nyquist
        rate π/dt (exact FFT bins; the grid is as uniform as the bin spacing allows).
    n_omegas : int
        Points of the default grid.

    Returns
    -------
    ResonanceMap

    Examples
    --------
    >>> t = np.arange(2000) * 0.01
    >>> m = resonance_map(2 * np.pi * 4.0 * t, 0.01, [0.05, 0.1], [0.0, 3.0])
    >>> np.round(m.power[:, 0], 6).tolist()
    [1.0, 1.0]
    """
    step = positive_float("dt", dt)
    v = _unit_scale(phase_velocity(as_phase_matrix(phi), step))
    m = v.shape[0]
    lag_s = _validate_grid("lags", lags)
    if np.any(lag_s < 0):
        raise InputError("lags", "must be >= 0 seconds")
    lag_n = np.rint(lag_s / step).astype(np.int64)
    if int(lag_n.max()) >= m:
        raise InputError("lags", f"largest lag {int(lag_n.max())} samples needs > {m} samples")
    energy = np.sum(v.real**2 + v.imag**2, axis=1)
    prefix = np.concatenate([[0.0], np.cumsum(energy)])
    if omegas is None:
        count = positive_int("n_omegas", n_omegas)
        n_fft = max(m, 2 * count)
        n_fft += n_fft % 2  # even, so the Nyquist rate π/dt is a bin
        bins = np.unique(np.rint(np.linspace(0, n_fft // 2, count)).astype(np.int64))
        grid = 2.0 * math.pi * bins / (n_fft * step)
    else:
        grid = _validate_grid("omegas", omegas)
        rows = _FourierRows(m, step, grid)
    power = np.zeros((lag_s.size, grid.size))
    conj_v = np.conj(v)
    for i, lag in enumerate(lag_n):
        lag_i = int(lag)
        p = np.einsum("nc,nc->n", v[lag_i:], conj_v[: m - lag_i])
        a = prefix[m] - prefix[lag_i]
        b = prefix[m - lag_i]
        if a <= 0.0 or b <= 0.0:
            continue
        row = _fft_grid_row(p, lag_i, n_fft, bins) if omegas is None else rows(p, lag_i)
        power[i] = np.minimum(1.0, np.abs(row) ** 2 / (a * b))
    return ResonanceMap(
        lags=(lag_n * step).astype(np.float64),
        omegas=grid,
        power=power,
        terms=(m - lag_n).astype(np.int64),
    )
