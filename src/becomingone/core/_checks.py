"""Argument checks shared by the numeric core: each raises ``InputError`` naming the parameter.

Pure functions on NumPy arrays; no I/O.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from becomingone.errors import InputError

#: Arrays with at most this many parts are scanned in Python by :func:`max_part`.
_SMALL = 32


def finite_float(name: str, value: Any) -> float:
    """Return ``value`` as a finite float or raise ``InputError`` naming ``name``."""
    if isinstance(value, bool):
        raise InputError(name, f"must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(name, f"must be a number, got {value!r}") from exc
    if not math.isfinite(out):
        raise InputError(name, f"must be finite, got {out!r}")
    return out


def positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a finite float > 0 or raise ``InputError``."""
    out = finite_float(name, value)
    if out <= 0.0:
        raise InputError(name, f"must be > 0, got {out!r}")
    return out


def nonnegative_float(name: str, value: Any) -> float:
    """Return ``value`` as a finite float >= 0 or raise ``InputError``."""
    out = finite_float(name, value)
    if out < 0.0:
        raise InputError(name, f"must be >= 0, got {out!r}")
    return out


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int >= 1 or raise ``InputError``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(name, f"must be an integer, got {value!r}")
    if int(value) < 1:
        raise InputError(name, f"must be >= 1, got {value!r}")
    return int(value)


def finite_array(name: str, value: ArrayLike, *, allow_complex: bool = True) -> NDArray[Any]:
    """Return ``value`` as a float64 or complex128 array with only finite entries."""
    arr = numeric_array(name, value, allow_complex=allow_complex)
    check_finite(name, arr)
    return arr


def numeric_array(name: str, value: ArrayLike, *, allow_complex: bool = True) -> NDArray[Any]:
    """Return ``value`` as a float64 or complex128 array (finiteness is not checked)."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(name, f"cannot be read as an array: {exc}") from exc
    if arr.dtype == object or arr.dtype.kind not in "biufc":
        raise InputError(name, f"must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind == "c":
        if not allow_complex:
            raise InputError(name, "must be real, got complex values")
        arr = arr.astype(np.complex128, copy=False)
    else:
        arr = arr.astype(np.float64, copy=False)
    return arr


def check_finite(name: str, arr: NDArray[Any]) -> None:
    """Raise ``InputError`` naming ``name`` and the first non-finite entry of ``arr``, if any."""
    if arr.size and not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr.ravel()))[0])
        raise InputError(name, f"must be finite; entry {bad} (flat index) is {arr.ravel()[bad]!r}")


def max_part(x: NDArray[Any]) -> float:
    """The largest |real| or |imaginary| part in ``x`` (0 when empty; NaN if any part is NaN).

    Two passes over the data and no temporary array of the full size (for a contiguous
    ``x``), so it is cheap enough to run on every chunk an engine ingests.
    """
    if x.size == 0:
        return 0.0
    flat = x.view(np.float64) if x.dtype == np.complex128 and x.flags.c_contiguous else x
    if flat.dtype.kind == "c":
        flat = np.concatenate([flat.real.ravel(), flat.imag.ravel()])
    if flat.size <= _SMALL:  # a few values: plain Python beats three NumPy reductions
        parts: list[float] = flat.ravel().tolist()
        total = float(sum(parts))  # NaN iff a part is NaN (or both ±inf); finite sums are not
        return total if total != total else float(max(map(abs, parts)))
    return float(np.maximum(flat.max(), -flat.min()))
