"""The sums behind T̂: one fused compiled pass at ω = 0, and the NumPy form it must match.

For a phase matrix φ of shape (N, C) (float64 or complex128), the differences
d[n] = φ[n+1] − φ[n] (n < M = N − 1) and a lag of L rows, :func:`lagged_sums` returns

    energy = Σ_{n<M} |d[n]|²,  a = Σ_{n≥L} |d[n]|²,  b = Σ_{n<M−L} |d[n]|²,
    total  = Σ_{n≥L} ⟨d[n], d[n−L]⟩ = ``np.vdot(d[:M−L], d[L:])``

— what :func:`~becomingone.core.kairos.temporal_resonance` needs at ω = 0 (``energy`` covers
every sample, so a non-finite φ anywhere makes it non-finite). The compiled extension
``becomingone.core._fused`` (C, built by ``pip install``; docs/kairos.md "ω = 0") computes all
of them in one pass without writing the differences; :func:`lagged_sums_numpy` is the
reference and the fallback. Both follow IEEE arithmetic with no reassociation flags that drop
NaN or inf, so non-finite input gives non-finite sums on either path.

Rule: pure computation on arrays; the one outside input is the environment variable
``BECOMINGONE_PURE``, read once at import (``1`` forces the NumPy path, for tests and
comparisons).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["COMPILED", "ISA", "energies", "lagged_sums", "lagged_sums_numpy"]

#: Largest total / partial energy ratio for which a partial sum is taken by subtraction.
_CANCEL = 1e3


_Sums = tuple[float, float, float, complex]
_Kernel = Callable[[NDArray[Any], int], _Sums]


def _load() -> tuple[_Kernel | None, str]:
    """The compiled kernel and its ISA, or (None, "numpy") when it is missing or
    ``BECOMINGONE_PURE=1``."""
    if os.environ.get("BECOMINGONE_PURE", "") == "1":
        return None, "numpy"
    try:
        from becomingone.core import _fused
    except ImportError:
        return None, "numpy"
    return _fused.lagged_sums, _fused.ISA


_KERNEL, ISA = _load()
"""ISA: the instruction set the compiled kernel chose at import (``"avx2+fma"`` or
``"baseline"``), or ``"numpy"`` on the fallback."""

#: True when :func:`lagged_sums` runs the compiled kernel; False on the NumPy fallback (the
#: extension was not built, or ``BECOMINGONE_PURE=1``).
COMPILED: bool = _KERNEL is not None


def lagged_sums(mat: NDArray[Any], big_l: int) -> _Sums:
    """(energy, a, b, total) of φ at a lag of ``big_l`` rows, compiled when available.

    Parameters
    ----------
    mat : ndarray, shape (N, C), float64 or complex128
        φ as :func:`~becomingone.core.kairos.as_phase_matrix` returns it (any strides and
        byte order; such a φ is copied once into a C-contiguous native array).
    big_l : int
        L, with 0 ≤ L < N − 1.

    Returns
    -------
    tuple
        ``(energy, a, b, total)``: three floats and a complex (module docstring). _Sums that
        overflow come back as inf or NaN; callers decide what that means.

    Examples
    --------
    >>> phi = np.array([[0.0], [1.0], [3.0], [6.0]])
    >>> lagged_sums(phi, 1)
    (14.0, 13.0, 5.0, (8+0j))
    """
    if _KERNEL is None:
        return lagged_sums_numpy(mat, big_l)
    if not (mat.flags.c_contiguous and mat.dtype.isnative):
        mat = np.ascontiguousarray(mat, dtype=mat.dtype.newbyteorder("="))
    return _KERNEL(mat, big_l)


def lagged_sums_numpy(mat: NDArray[Any], big_l: int) -> _Sums:
    """The NumPy form of :func:`lagged_sums`: one subtraction, the energies, one ``np.vdot``.

    Examples
    --------
    >>> lagged_sums_numpy(np.array([[0.0], [1.0], [3.0], [6.0]]), 1)
    (14.0, 13.0, 5.0, (8+0j))
    """
    m = mat.shape[0] - 1
    with np.errstate(over="ignore", invalid="ignore"):  # the caller checks the sums
        d = np.subtract(mat[1:], mat[:-1])
        energy, a, b = energies(d, big_l)
        total = complex(np.vdot(d[: m - big_l], d[big_l:]))
    return energy, a, b, total


def energies(d: NDArray[Any], big_l: int) -> tuple[float, float, float]:
    """(Σ|d[n]|², Σ_{n≥L} |d[n]|², Σ_{n<M−L} |d[n]|²) from one pass over d and two of L rows.

    Each partial sum is the total minus its L excluded rows; when those rows hold more than a
    fraction 1 − 1/_CANCEL of the total (the subtraction would lose more than ~3 digits),
    both are taken directly instead.
    """
    total = _energy(d)
    a = total - _energy(d[:big_l])
    b = total - _energy(d[d.shape[0] - big_l :])
    if not (total <= _CANCEL * a and total <= _CANCEL * b):
        a, b = _energy(d[big_l:]), _energy(d[: d.shape[0] - big_l])
    return total, a, b


def _energy(x: NDArray[Any]) -> float:
    """Σ|x|² over all entries, as one real dot product."""
    flat = np.ascontiguousarray(x)
    if flat.dtype.kind == "c":
        flat = flat.view(np.float64)
    flat = flat.reshape(-1)
    return float(np.dot(flat, flat))
