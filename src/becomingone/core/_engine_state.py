"""The KAIROS engine's explicit state and the sample limit that keeps it finite.

Rule: :class:`KairosState` is everything a :class:`~becomingone.core.stream.KairosEngine`
needs to resume exactly (plain arrays and numbers, bytes without pickle); :func:`sample_limit`
is the largest sample part an engine accepts, so that no finite input can overflow that state.
Pure NumPy; no I/O, no clocks.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from becomingone.errors import InputError

__all__ = ["KairosState", "sample_limit"]

#: The largest finite float64.
FMAX = float(np.finfo(np.float64).max)

_Complex = NDArray[np.complex128]
_Float = NDArray[np.float64]


def sample_limit(dt: float, window_terms: int, channels: int) -> float:
    """The largest |real| or |imaginary| part of a sample a KAIROS engine accepts.

    S = dt · sqrt(F / (512 · W · C)), at most F/4, with F the largest float64 (≈ 1.8e308),
    W the window in terms and C the channels. Parts ≤ S give velocity parts ≤ 2S/dt, so every
    term |q|, |φ̇[n]|², |φ̇[n−L]|² is at most 8·C·S²/dt² = F/(64·W): the window sums stay below
    F/64 and their re-summation drift below F/16 — nothing can overflow. For dt = 10 ms, a
    one-hour window and 64 channels, S ≈ 1.2e147.

    Examples
    --------
    >>> f"{sample_limit(0.01, 360_000, 64):.2g}"
    '1.2e+147'
    """
    return min(FMAX / 4, dt * math.sqrt(FMAX / (512.0 * window_terms * channels)))


@dataclass(slots=True)
class KairosState:
    """Everything a :class:`KairosEngine` needs to resume exactly where it was.

    Arrays are plain NumPy arrays; :meth:`to_bytes` / :meth:`from_bytes` use ``np.savez`` with
    ``allow_pickle=False``.
    """

    dt: float
    lag: float
    omega: float
    window: float
    threshold: float
    channels: int
    t0: float
    samples: int = 0
    last_sample: _Complex = field(default_factory=lambda: np.zeros(0, np.complex128))
    vel_ring: _Complex = field(default_factory=lambda: np.zeros((0, 1), np.complex128))
    term_q: _Complex = field(default_factory=lambda: np.zeros(0, np.complex128))
    term_a: _Float = field(default_factory=lambda: np.zeros(0, np.float64))
    term_b: _Float = field(default_factory=lambda: np.zeros(0, np.float64))
    sum_q_re: float = 0.0
    sum_q_im: float = 0.0
    sum_a: float = 0.0
    sum_b: float = 0.0
    drift_a: float = 0.0
    drift_b: float = 0.0
    since_resum: int = 0

    def copy(self) -> KairosState:
        """A deep copy (every array copied)."""
        copied = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in copied.items():
            if isinstance(value, np.ndarray):
                copied[name] = value.copy()
        return KairosState(**copied)

    def checked_like(self, expect: KairosState) -> KairosState:
        """A copy of this state with the array shapes and dtypes of ``expect`` (a fresh state
        of the same parameters); ``InputError('state')`` on a wrong shape, a non-finite value
        or a negative counter."""
        out = expect.copy()
        for f in fields(self):
            value = getattr(self, f.name)
            ref = getattr(expect, f.name)
            if isinstance(ref, np.ndarray):
                arr = np.asarray(value)
                if arr.shape != ref.shape:
                    raise InputError("state", f"{f.name} has shape {arr.shape}, want {ref.shape}")
                value = arr.astype(ref.dtype, copy=True)
            if not np.all(np.isfinite(value)):
                raise InputError("state", f"{f.name} holds non-finite values")
            setattr(out, f.name, value)
        if out.samples < 0 or out.since_resum < 0:
            raise InputError("state", "negative counters")
        return out

    def to_bytes(self) -> bytes:
        """Serialise to bytes (NumPy ``.npz``, no pickle)."""
        buf = io.BytesIO()
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}
        np.savez(buf, allow_pickle=False, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> KairosState:
        """Inverse of :meth:`to_bytes`; raises ``InputError`` on damaged data."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                raw = {name: npz[name] for name in npz.files}
        except (OSError, ValueError, EOFError) as exc:
            raise InputError("state", f"not a KAIROS engine state: {exc}") from exc
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in raw:
                raise InputError("state", f"missing field {f.name!r}")
            value = raw[f.name]
            if value.ndim == 0:
                kind = value.dtype.kind
                kwargs[f.name] = int(value) if kind in "iu" else float(value)
            else:
                kwargs[f.name] = value
        return cls(**kwargs)
