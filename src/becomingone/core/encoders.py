"""Encoders: turn numeric inputs into the phase sequence φ the KAIROS engine reads (DESIGN.md §4).

- phase samples: as given (radians or cycles), optionally unwrapped from a wrapped input;
- real signals: the angle of the analytic signal (Hilbert) of the signal with its mean (or its
  linear trend) removed, with an optional band-pass;
- event timestamps: linear phase interpolation, one cycle (2π) per event;
- embeddings (text): each message one sample, the embedding vector as channels.

Pure NumPy/SciPy; no I/O. Text embedding itself (a model) lives in ``becomingone.ingest.text``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from becomingone.core._checks import finite_array, positive_float
from becomingone.errors import InputError

__all__ = [
    "DETRENDS",
    "Detrend",
    "phase_from_embeddings",
    "phase_from_events",
    "phase_from_samples",
    "phase_from_signal",
]


Detrend = Literal["none", "mean", "linear"]
#: What ``phase_from_signal`` may remove before the analytic signal.
DETRENDS: tuple[Detrend, ...] = ("none", "mean", "linear")


def _matrix(name: str, values: ArrayLike, min_rows: int = 2) -> NDArray[Any]:
    arr = finite_array(name, values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(name, f"must have shape (N,) or (N, C), got {arr.shape}")
    if arr.shape[0] < min_rows:
        raise InputError(name, f"needs at least {min_rows} samples, got {arr.shape[0]}")
    return arr


def _squeeze(arr: NDArray[Any], like: ArrayLike) -> NDArray[Any]:
    return arr[:, 0] if np.ndim(like) == 1 else arr


def phase_from_samples(
    theta: ArrayLike, *, wrapped: bool = False, unit: str = "rad"
) -> NDArray[np.float64]:
    """Phase samples to φ in radians.

    Parameters
    ----------
    theta : array_like, shape (N,) or (N, C)
        Phase samples.
    wrapped : bool
        The input is wrapped (into one turn); unwrap it along time.
    unit : {"rad", "cycles"}
        Unit of ``theta``.

    Examples
    --------
    >>> phase_from_samples([0.0, 0.75, 0.5], wrapped=True, unit="cycles").round(4).tolist()
    [0.0, -1.5708, -3.1416]
    """
    if unit not in ("rad", "cycles"):
        raise InputError("unit", f"must be 'rad' or 'cycles', got {unit!r}")
    arr = _matrix("theta", theta, min_rows=1)
    if arr.dtype.kind == "c":
        raise InputError("theta", "phase samples must be real; pass phasors to the engine")
    if unit == "cycles":
        arr = arr * (2.0 * math.pi)
    if wrapped:
        arr = np.unwrap(arr, axis=0)
    return _squeeze(arr, theta)


def phase_from_signal(
    x: ArrayLike,
    dt: float,
    *,
    band: tuple[float, float] | None = None,
    order: int = 4,
    detrend: Detrend = "mean",
) -> NDArray[np.float64]:
    """Unwrapped phase (radians) of a real signal from its analytic signal.

    The analytic signal of a series with a large offset hardly turns (its phase wobbles around
    0), so the mean of each channel is removed first (DESIGN.md §4); ``detrend="linear"``
    removes a least-squares line instead, for a series on a ramp.

    Parameters
    ----------
    x : array_like, shape (N,) or (N, C)
        Real samples.
    dt : float
        Sample step in seconds.
    band : (low_hz, high_hz), optional
        Zero-phase Butterworth band-pass applied after detrending (0 < low < high < Nyquist,
        and high ≥ the data's resolution 1/(N·dt)).
    order : int
        Filter order.
    detrend : {"mean", "linear", "none"}
        What to remove from each channel before the analytic signal.

    Examples
    --------
    >>> t = np.arange(1000) * 0.001
    >>> phi = phase_from_signal(100.0 + np.cos(2 * np.pi * 50 * t), 0.001)
    >>> round(float(np.median(np.diff(phi))) / 0.001 / (2 * np.pi), 3)
    50.0
    """
    from scipy import signal  # here, not at import: it costs ~1 s of CPU (every node process)

    step = positive_float("dt", dt)
    if detrend not in DETRENDS:
        raise InputError("detrend", f"must be one of {', '.join(DETRENDS)}; got {detrend!r}")
    arr = _matrix("x", x, min_rows=4)
    if arr.dtype.kind == "c":
        raise InputError("x", "must be real (a complex signal already is a phasor)")
    arr = _unit_peak(arr)
    if detrend != "none":
        kind = "constant" if detrend == "mean" else "linear"
        arr = np.asarray(signal.detrend(arr, axis=0, type=kind), dtype=np.float64)
    if band is not None:
        arr = _bandpass(arr, step, band, order)
    analytic = signal.hilbert(arr, axis=0)
    phi = np.unwrap(np.angle(analytic), axis=0)
    return _squeeze(phi, x)


def _unit_peak(arr: NDArray[Any]) -> NDArray[np.float64]:
    """``arr`` divided by its largest |value| (finite input), so no later sum can overflow.

    Detrending, the band-pass and the Hilbert transform are linear and the phase of an
    analytic signal does not change when the signal is scaled by a positive number, so this
    changes nothing but the range: a finite series of 1e308s keeps its phase.
    """
    out = np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise InputError("x", "must be finite (NaN or inf found)")
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    return out / peak if peak > 0.0 else out


def _band_edges(band: tuple[float, float], dt: float, n: int) -> tuple[float, float]:
    """(low, high) in Hz, inside (0, Nyquist) and reaching the resolution 1/(n·dt)."""
    try:
        low, high = (float(band[0]), float(band[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise InputError("band", f"must be (low_hz, high_hz), got {band!r}") from exc
    nyquist = 0.5 / dt
    if not (0.0 < low < high < nyquist):
        raise InputError("band", f"needs 0 < low < high < Nyquist ({nyquist} Hz), got {band!r}")
    resolution = 1.0 / (n * dt)
    if high < resolution:
        raise InputError(
            "band",
            f"{low:g}-{high:g} Hz lies below the data's resolution 1/(N·dt) = {resolution:.3g} Hz "
            f"({n} samples at dt {dt:g} s); choose a band with high >= {resolution:.3g} Hz",
        )
    return low, high


def _bandpass(
    arr: NDArray[np.float64], dt: float, band: tuple[float, float], order: int
) -> NDArray[np.float64]:
    low, high = _band_edges(band, dt, arr.shape[0])
    if order < 1:
        raise InputError("order", f"must be >= 1, got {order}")
    padlen = 3 * (2 * order + 1)  # sosfiltfilt: a band-pass of order k has k sections
    if arr.shape[0] <= padlen:
        raise InputError("x", f"band-pass needs more than {padlen} samples, got {arr.shape[0]}")
    unstable = InputError(
        "band",
        f"{low:g}-{high:g} Hz gives a numerically unstable Butterworth filter at dt {dt:g} s "
        f"(normalised frequencies {low * 2 * dt:.3g}-{high * 2 * dt:.3g} of Nyquist); "
        "widen the band or lower the order",
    )
    from scipy import signal

    try:
        sos = signal.butter(order, [low, high], btype="bandpass", fs=1.0 / dt, output="sos")
        out = np.asarray(signal.sosfiltfilt(sos, arr, axis=0), dtype=np.float64)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise unstable from exc
    if not (np.all(np.isfinite(sos)) and np.all(np.isfinite(out))):
        raise unstable
    return out


def phase_from_events(
    timestamps: ArrayLike, dt: float, *, t0: float | None = None, t_end: float | None = None
) -> tuple[float, NDArray[np.float64]]:
    """Phase of an event train: 2π per event, linear in between, sampled every ``dt`` seconds.

    Returns ``(t_start, phi)``: the time of the first sample and φ in radians. The grid runs from
    ``t0`` (default: the first event) to ``t_end`` (default: the last event); outside the events
    the phase is extrapolated with the nearest inter-event rate.

    Examples
    --------
    >>> t_start, phi = phase_from_events([0.0, 1.0, 2.0], 0.5)
    >>> (phi / (2 * np.pi)).tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0]
    """
    step = positive_float("dt", dt)
    ts = np.atleast_1d(finite_array("timestamps", timestamps, allow_complex=False))
    if ts.ndim != 1 or ts.size < 2:
        raise InputError("timestamps", f"needs at least 2 events, got {ts.size}")
    if np.any(np.diff(ts) <= 0):
        bad = int(np.flatnonzero(np.diff(ts) <= 0)[0]) + 1
        raise InputError("timestamps", f"must be strictly increasing; event {bad} is not")
    start = float(ts[0]) if t0 is None else _finite_time("t0", t0)
    stop = float(ts[-1]) if t_end is None else _finite_time("t_end", t_end)
    if stop <= start:
        raise InputError("t_end", f"must be after t0 ({start}), got {stop}")
    n = math.floor((stop - start) / step + 1e-9) + 1
    grid = start + step * np.arange(n)
    cycles = np.arange(ts.size, dtype=np.float64)
    phase = np.interp(grid, ts, cycles)
    before, after = grid < ts[0], grid > ts[-1]
    phase[before] = (grid[before] - ts[0]) / (ts[1] - ts[0])
    phase[after] = cycles[-1] + (grid[after] - ts[-1]) / (ts[-1] - ts[-2])
    return start, 2.0 * math.pi * phase


def _finite_time(name: str, value: float) -> float:
    """A finite float (times may be any finite value)."""
    out = float(value)
    if not math.isfinite(out):
        raise InputError(name, f"must be finite, got {value!r}")
    return out


def phase_from_embeddings(embeddings: ArrayLike) -> NDArray[np.float64]:
    """Message embeddings (N, D) as a D-channel phase sequence: one message is one sample.

    Each row is L2-normalised, so the engine's velocity is the move on the unit sphere from
    one message to the next and ⟨φ̇[n], φ̇[n−L]⟩ measures whether the conversation keeps
    turning the same way.
    """
    arr = _matrix("embeddings", embeddings, min_rows=2)
    if arr.dtype.kind == "c":
        raise InputError("embeddings", "must be real")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InputError("embeddings", f"row {int(np.flatnonzero(norms[:, 0] == 0)[0])} is zero")
    return np.asarray(arr / norms, dtype=np.float64)
