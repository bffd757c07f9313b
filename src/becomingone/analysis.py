"""Offline analysis of a recorded stream: read a file, encode it, run the KAIROS engine over it.

This is the library behind ``becomingone analyze``: it reads CSV or text files (``ingest``),
turns them into a phase sequence (``core.encoders``), streams it through a windowed
``KairosEngine`` in hops, and groups the evaluations into collapse episodes; ``plot_analysis``
draws the coherence timeline and the resonance map. Reads files and writes the plot; no clocks.

Rule: by default one engine, one window: an evaluation collapses iff |T̂|² ≥ I_c of that single
window (``RULES["single"]``) — not the cell's rule. ``rule="sync"`` runs the cell's rule instead
(``RULES["sync"]``): a Master engine over a long window and an Emissary over the short one meet
in the ``SyncLayer`` (|T_sync|² ≥ I_c and Δ_phase < phase_threshold). Times, lags,
windows and ``dt`` are in the file's time unit (seconds unless its time column says otherwise);
every size is checked before anything is allocated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from becomingone.core._checks import finite_float, nonnegative_float, positive_float
from becomingone.core.encoders import (
    DETRENDS,
    Detrend,
    phase_from_embeddings,
    phase_from_events,
    phase_from_samples,
    phase_from_signal,
)
from becomingone.core.resmap import ResonanceMap, resonance_map
from becomingone.core.stream import KairosEngine
from becomingone.errors import InputError, StorageError
from becomingone.ingest.files import read_csv_series, read_event_times, read_messages
from becomingone.ingest.text import embed_messages, model_available
from becomingone.sync.layer import SyncLayer

__all__ = [
    "MAX_ANALYSIS_BYTES",
    "RULE",
    "RULES",
    "AnalysisResult",
    "AnalysisSettings",
    "Episode",
    "InputKind",
    "analyze_file",
    "analyze_phase",
    "frequency_unit",
    "plot_analysis",
    "quantity",
    "time_unit_name",
]

InputKind = Literal["auto", "signal", "phase", "wrapped-phase", "events", "text"]
_TEXT_SUFFIXES = (".txt", ".text", ".md", ".log")
#: The collapse rules of ``analyze``: one engine, or the cell's Sync layer over two windows.
RULES = {
    "single": "single-engine |T|^2 >= I_c",
    "sync": "sync-layer |T_sync|^2 >= I_c and delta_phase < phase_threshold",
}
#: The default rule: one engine, one window.
RULE = RULES["single"]
#: Largest buffer an analysis may allocate (engine ring buffers, an event grid): 1 GiB.
MAX_ANALYSIS_BYTES = 2**30
_UNIT_NAMES = {"s": "s", "day": "days", "year": "years", "": "time units"}
_RATE_NAMES = {"s": "Hz", "day": "/day", "year": "/year", "": "/time unit"}


def time_unit_name(unit: str) -> str:
    """How a time unit reads after a number: "s", "days", "years", "time units"."""
    return _UNIT_NAMES.get(unit, unit)


def quantity(value: float, unit: str) -> str:
    """``value`` with its time unit: "0.1 s", "1 year", "44 years"."""
    name = time_unit_name(unit)
    if value == 1.0 and name != "s":
        name = name.removesuffix("s")
    return f"{value:g} {name}"


def frequency_unit(unit: str) -> str:
    """Cycles per time unit as it reads after a number: "Hz", "/day", "/year"."""
    return _RATE_NAMES.get(unit, f"/{unit}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisSettings:
    """Engine settings for an analysis (time units of the data; ω in rad per time unit).

    ``hop`` defaults to window / 10. ``rule="sync"`` adds a Master engine over
    ``master_window`` (default 10 × window) and collapses by the Sync layer with
    ``phase_threshold``; ``window`` is then the Emissary's.
    """

    lag: float = 0.1
    omega: float = 0.0
    window: float = 2.0
    threshold: float = 0.95
    hop: float | None = None
    band: tuple[float, float] | None = None
    lags: int = 24
    detrend: Detrend = "mean"
    rule: Literal["single", "sync"] = "single"
    master_window: float | None = None
    phase_threshold: float = 0.1

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise InputError("rule", f"must be one of {', '.join(RULES)}; got {self.rule!r}")
        if self.master_window is not None:
            positive_float("master_window", self.master_window)
        if not 0.0 < finite_float("phase_threshold", self.phase_threshold) <= 1.0:
            raise InputError("phase_threshold", f"must be in (0, 1], got {self.phase_threshold}")
        if self.detrend not in DETRENDS:
            raise InputError(
                "detrend", f"must be one of {', '.join(DETRENDS)}; got {self.detrend!r}"
            )
        finite_float("lag", self.lag)
        finite_float("omega", self.omega)
        positive_float("window", self.window)
        if self.hop is not None:
            positive_float("hop", self.hop)
        if self.lags < 1:
            raise InputError("lags", f"must be >= 1, got {self.lags}")

    @property
    def longest_window(self) -> float:
        """The window that must fill before the first evaluation."""
        return max(self.window, self.master_span) if self.rule == "sync" else self.window

    @property
    def master_span(self) -> float:
        """The Master's window under ``rule="sync"``."""
        return self.master_window if self.master_window is not None else 10.0 * self.window


@dataclass(frozen=True, slots=True)
class Episode:
    """A run of consecutive collapsed evaluations: [start, end] seconds, peak |T̂|²."""

    start: float
    end: float
    peak: float
    peak_time: float


@dataclass(slots=True)
class AnalysisResult:
    """Coherence over time for one stream, its collapse episodes and its resonance map.

    Times, ``dt``, lags and windows are in ``time_unit``; ``frequencies`` are the mean phase
    velocity of each channel in cycles per time unit (empty for text, whose embedding channels
    are not phase angles).
    """

    source: str
    kind: str
    dt: float
    samples: int
    channels: int
    settings: AnalysisSettings
    times: NDArray[np.float64]
    coherence: NDArray[np.float64]
    terms: NDArray[np.int64]
    episodes: list[Episode] = field(default_factory=list)
    rmap: ResonanceMap | None = None
    embedding: str = ""
    time_unit: str = "s"
    time_column: str | None = None
    time_origin: str | None = None
    frequencies: tuple[float, ...] = ()
    collapsed: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))

    def __post_init__(self) -> None:
        if self.collapsed.shape != self.coherence.shape:
            self.collapsed = self.coherence >= self.settings.threshold

    @property
    def rule(self) -> str:
        """The collapse rule of the COLLAPSE column, as printed (``RULES``)."""
        return RULES[self.settings.rule]

    @property
    def collapses(self) -> int:
        """Number of evaluations that collapsed under the rule."""
        return int(np.count_nonzero(self.collapsed))

    @property
    def dissipations(self) -> int:
        """Number of evaluations below the threshold (the input dissipated)."""
        return int(self.coherence.size - self.collapses)

    @property
    def frequency(self) -> float | None:
        """The stream's dominant frequency: the mean over channels of the mean phase velocity
        / 2π, in cycles per time unit; ``None`` for text."""
        return float(np.mean(self.frequencies)) if self.frequencies else None

    @property
    def period(self) -> float | None:
        """1 / |frequency| in the time unit; ``None`` when the phase does not advance."""
        f = self.frequency
        return None if f is None or f == 0.0 else 1.0 / abs(f)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary with every evaluation."""
        peak = self.rmap.peak() if self.rmap is not None else None
        return {
            "source": self.source,
            "kind": self.kind,
            "rule": self.rule,
            "dt": self.dt,
            "time_unit": self.time_unit,
            "time_column": self.time_column,
            "time_origin": self.time_origin,
            "samples": self.samples,
            "channels": self.channels,
            "embedding": self.embedding or None,
            "detrend": self.settings.detrend if self.kind == "signal" else None,
            "lag": self.settings.lag,
            "omega": self.settings.omega,
            "window": self.settings.window,
            "threshold": self.settings.threshold,
            **self._sync_json(),
            "dominant_frequency": self._frequency_json(),
            "evaluations": [
                {"t": float(t), "coherence": float(c), "terms": int(k), "collapsed": bool(x)}
                for t, c, k, x in zip(self.times, self.coherence, self.terms, self.collapsed)
            ],
            "collapses": self.collapses,
            "dissipations": self.dissipations,
            "episodes": [
                {"start": e.start, "end": e.end, "peak": e.peak, "peak_time": e.peak_time}
                for e in self.episodes
            ],
            "resonance_peak": (
                None if peak is None else {"lag": peak[0], "omega": peak[1], "coherence": peak[2]}
            ),
        }

    def _sync_json(self) -> dict[str, Any]:
        if self.settings.rule != "sync":
            return {}
        return {
            "master_window": self.settings.master_span,
            "phase_threshold": self.settings.phase_threshold,
        }

    def _frequency_json(self) -> dict[str, Any] | None:
        if self.frequency is None:
            return None
        return {
            "frequency": self.frequency,
            "period": self.period,
            "unit": f"cycles per {self.time_unit or 'time unit'}",
            "per_channel": list(self.frequencies),
        }


def _episodes(
    times: NDArray[np.float64], coh: NDArray[np.float64], on: NDArray[np.bool_]
) -> list[Episode]:
    out: list[Episode] = []
    i = 0
    while i < on.size:
        if not on[i]:
            i += 1
            continue
        j = i
        while j + 1 < on.size and on[j + 1]:
            j += 1
        k = i + int(np.argmax(coh[i : j + 1]))
        out.append(Episode(float(times[i]), float(times[j]), float(coh[k]), float(times[k])))
        i = j + 1
    return out


def _steps(name: str, length: float, dt: float, unit: str) -> int:
    """``round(length / dt)`` once the ratio is known to be a sane sample count."""
    ratio = length / dt
    if not math.isfinite(ratio) or ratio > 1e15:
        raise InputError(name, f"{quantity(length, unit)} at dt {dt:g} is more than 1e15 samples")
    return round(ratio)


def _check_bytes(name: str, what: str, count: int, channels: int, width: int) -> None:
    """Refuse before allocating ``count × channels × width`` bytes beyond the limit."""
    size = count * channels * width
    if size > MAX_ANALYSIS_BYTES:
        raise InputError(
            name,
            f"{what} needs {count:,} x {channels} channel(s) x {width} B = {size / 2**30:.3g} GiB, "
            f"more than the {MAX_ANALYSIS_BYTES / 2**30:g} GiB limit",
        )


def _engine_terms(
    settings: AnalysisSettings, dt: float, samples: int, channels: int, source: str, unit: str
) -> tuple[int, int]:
    """(L, W) with W the longest window, after every check that needs no allocation."""
    lag_n = _steps("lag", nonnegative_float("lag", settings.lag), dt, unit)
    if lag_n == 0:
        raise InputError(
            "lag",
            f"--lag {quantity(settings.lag, unit)} is 0 samples at dt = {quantity(dt, unit)}; "
            f"use a lag > 0.5·dt (at least one sample, e.g. --lag {dt:g})",
        )
    name = "window" if settings.longest_window == settings.window else "master_window"
    window_n = _steps(name, settings.longest_window, dt, unit)
    need = lag_n + window_n + 1
    if samples < need:
        raise InputError(
            "file",
            f"{source}: {samples} samples are fewer than one window needs ({need}: {name} "
            f"{quantity(settings.longest_window, unit)} + lag {quantity(settings.lag, unit)} at "
            f"dt {quantity(dt, unit)})",
        )
    engines = 2 if settings.rule == "sync" else 1
    _check_bytes(name, "the engine windows", engines * (window_n + lag_n), channels, 16)
    return lag_n, window_n


def analyze_phase(
    phi: NDArray[Any],
    dt: float,
    settings: AnalysisSettings,
    *,
    t0: float = 0.0,
    source: str = "<array>",
    kind: str = "phase",
    with_map: bool = True,
    unit: str = "s",
) -> AnalysisResult:
    """Stream φ through the windowed engine(s) in hops and collect coherence over time.

    ``dt``, ``t0`` and the settings' lag, windows and hop are in ``unit``. A lag that rounds to
    0 samples is refused: φ̇ against itself gives |T̂|² = 1 on pure noise.
    """
    step = positive_float("dt", dt)
    mat = phi[:, None] if phi.ndim == 1 else phi
    lag_n, window_n = _engine_terms(settings, step, mat.shape[0], mat.shape[1], source, unit)
    hop_time = settings.hop if settings.hop is not None else settings.window / 10.0
    hop = max(1, _steps("hop", hop_time, step, unit))
    first = lag_n + window_n + 1  # evaluate only once the (longest) window is full
    chunks = [mat[:first]] + [mat[i : i + hop] for i in range(first, mat.shape[0], hop)]
    run = _run_sync if settings.rule == "sync" else _run_single
    t_arr, c_arr, terms, on = run(chunks, step, settings, t0, mat.shape[1])
    return AnalysisResult(
        source=source,
        kind=kind,
        dt=step,
        samples=int(mat.shape[0]),
        channels=int(mat.shape[1]),
        settings=settings,
        times=t_arr,
        coherence=c_arr,
        terms=terms,
        episodes=_episodes(t_arr, c_arr, on),
        rmap=_map(mat, step, settings) if with_map else None,
        time_unit=unit,
        frequencies=() if kind == "text" else _mean_frequencies(mat, step),
        collapsed=on,
    )


_Run = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]]


def _engine(
    settings: AnalysisSettings, window: float, dt: float, t0: float, ch: int
) -> KairosEngine:
    return KairosEngine(
        dt=dt,
        lag=settings.lag,
        omega=settings.omega,
        window=window,
        threshold=settings.threshold,
        channels=ch,
        t0=t0,
    )


def _run_single(
    chunks: list[NDArray[Any]], dt: float, settings: AnalysisSettings, t0: float, ch: int
) -> _Run:
    """One engine: collapse iff |T̂|² ≥ I_c of its window."""
    engine = _engine(settings, settings.window, dt, t0, ch)
    results = [engine.update(c) for c in chunks]
    coh = np.asarray([r.coherence for r in results])
    return (
        np.asarray([r.time for r in results]),
        coh,
        np.asarray([r.terms for r in results], dtype=np.int64),
        coh >= settings.threshold,
    )


def _run_sync(
    chunks: list[NDArray[Any]], dt: float, settings: AnalysisSettings, t0: float, ch: int
) -> _Run:
    """The cell's rule: Master (long window) and Emissary (short) meet in the Sync layer."""
    master = _engine(settings, settings.master_span, dt, t0, ch)
    emissary = _engine(settings, settings.window, dt, t0, ch)
    layer = SyncLayer(threshold=settings.threshold, phase_threshold=settings.phase_threshold)
    times, coh, terms, on = [], [], [], []
    for chunk in chunks:
        m, e = master.update(chunk), emissary.update(chunk)
        decision = layer.evaluate(m, e, now=e.time)
        times.append(e.time)
        coh.append(decision.coherence)
        terms.append(e.terms)
        on.append(decision.collapsed)
    return (
        np.asarray(times, dtype=np.float64),
        np.asarray(coh, dtype=np.float64),
        np.asarray(terms, dtype=np.int64),
        np.asarray(on, dtype=np.bool_),
    )


def _map(mat: NDArray[Any], step: float, settings: AnalysisSettings) -> ResonanceMap:
    max_lag = min(settings.window / 2.0, (mat.shape[0] - 2) * step)
    lags = np.unique(np.rint(np.linspace(step, max_lag, settings.lags) / step)) * step
    # ω up to 48 resolution steps (2π / duration) shows the shape of the peak; capped at the
    # Nyquist rate.
    top = min(np.pi / step, 48 * 2 * np.pi / (mat.shape[0] * step))
    return resonance_map(mat, step, lags, np.linspace(0.0, top, 97))


def _mean_frequencies(mat: NDArray[Any], step: float) -> tuple[float, ...]:
    """Mean phase velocity / 2π of each channel: (φ[N−1] − φ[0]) / (2π·(N−1)·dt)."""
    angles = np.unwrap(np.angle(mat), axis=0) if mat.dtype.kind == "c" else mat
    rates = (angles[-1] - angles[0]) / (2.0 * math.pi * (mat.shape[0] - 1) * step)
    return tuple(float(r) for r in rates)


def _resolve_kind(path: Path, kind: InputKind) -> str:
    if kind != "auto":
        return kind
    return "text" if path.suffix.lower() in _TEXT_SUFFIXES else "signal"


def analyze_file(
    path: Path | str,
    settings: AnalysisSettings,
    *,
    kind: InputKind = "auto",
    dt: float | None = None,
    embedding: Literal["auto", "model", "lexical"] = "auto",
    time_column: str | None = None,
) -> AnalysisResult:
    """Read ``path`` and analyse it.

    ``kind``: ``signal`` (CSV of real samples: analytic-signal phase, after removing the mean
    or the trend of ``settings.detrend``), ``phase`` or ``wrapped-phase`` (CSV of phase
    samples in radians), ``events`` (CSV, one column of event times), ``text`` (one message per
    line; dt is one message). ``auto`` picks ``text`` for .txt/.md/.log files and ``signal``
    otherwise. ``time_column`` names the CSV's time column (``"none"``: none; default: found by
    name or ISO-8601 values, see ``becomingone.ingest.times``); it sets ``dt`` and the time
    unit of the lag, window, hop and of the report. ``dt`` is needed when a CSV has no time
    column (then in seconds).
    """
    p = Path(path)
    resolved = _resolve_kind(p, kind)
    if resolved == "text":
        return _analyze_text(p, settings, dt, embedding)
    if resolved == "events":
        return _analyze_events(p, settings, dt, time_column)
    if resolved not in ("signal", "phase", "wrapped-phase"):
        raise InputError("kind", f"unknown input kind {resolved!r}")
    series = read_csv_series(p, time_column=time_column)
    if series.dt is None and dt is None:
        raise InputError("dt", f"{p} has no time column; pass --dt (seconds)")
    step = positive_float("dt", series.dt if series.dt is not None else dt)
    if series.dt is not None and dt is not None and not math.isclose(series.dt, dt, rel_tol=0.01):
        raise InputError("dt", f"--dt {dt} disagrees with the file's time step {series.dt}")
    if resolved == "signal":
        phi = phase_from_signal(series.values, step, band=settings.band, detrend=settings.detrend)
    else:
        phi = phase_from_samples(series.values, wrapped=resolved == "wrapped-phase")
    result = analyze_phase(
        phi, step, settings, t0=series.t0, source=str(p), kind=resolved, unit=series.time_unit
    )
    result.time_column = series.time_column
    result.time_origin = series.time_origin
    return result


def _analyze_text(
    p: Path,
    settings: AnalysisSettings,
    dt: float | None,
    embedding: Literal["auto", "model", "lexical"],
) -> AnalysisResult:
    messages = read_messages(p)
    step = 1.0 if dt is None else positive_float("dt", dt)
    vectors = embed_messages(messages, backend=embedding)
    used = (
        "model"
        if embedding == "model" or (embedding == "auto" and model_available())
        else "lexical"
    )
    result = analyze_phase(
        phase_from_embeddings(vectors), step, settings, source=str(p), kind="text"
    )
    result.embedding = used
    return result


def _analyze_events(
    p: Path, settings: AnalysisSettings, dt: float | None, time_column: str | None
) -> AnalysisResult:
    axis = read_event_times(p, time_column=time_column)
    step = positive_float("dt", dt if dt is not None else 0.01)
    span = float(axis.values[-1] - axis.values[0]) if axis.values.size else 0.0
    grid = _steps("dt", span, step, axis.unit) + 1
    _check_bytes("dt", "the event grid", grid, 1, 8)
    t0, phi = phase_from_events(axis.values, step)
    result = analyze_phase(phi, step, settings, t0=t0, source=str(p), kind="events", unit=axis.unit)
    result.time_origin = axis.origin
    return result


def plot_analysis(result: AnalysisResult, out: Path | str) -> Path:
    """Draw the coherence timeline (with collapses) and the resonance map into ``out``.

    The format follows the suffix (matplotlib: .png, .pdf, .svg, ...); a file that cannot be
    written is a ``StorageError``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = Path(out)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7.5), constrained_layout=True)
    unit = time_unit_name(result.time_unit)
    thr = result.settings.threshold
    ax1.plot(result.times, result.coherence, color="#2b6cb0", lw=1.4, label="|T̂|²")
    ax1.axhline(thr, color="#c53030", ls="--", lw=1, label=f"I_c = {thr:g}")
    for ep in result.episodes:
        ax1.axvspan(ep.start, ep.end, color="#f6ad55", alpha=0.35, lw=0)
    ax1.set_ylim(-0.02, 1.02)
    since = f" since {result.time_origin}" if result.time_origin else ""
    ax1.set_xlabel(f"time ({unit}{since})")
    ax1.set_ylabel("coherence |T̂|²")
    ax1.set_title(
        f"{Path(result.source).name}: {len(result.episodes)} collapse episode(s), "
        f"{result.collapses} collapsed / {result.dissipations} dissipated evaluations\n"
        f"rule: {result.rule}"
    )
    ax1.legend(loc="upper right")
    if result.rmap is not None:
        rm = result.rmap
        mesh = ax2.pcolormesh(
            rm.omegas, rm.lags, rm.power, shading="nearest", cmap="magma", vmin=0.0, vmax=1.0
        )
        fig.colorbar(mesh, ax=ax2, label="|T̂|²")
        lag, omega, power = rm.peak()
        ax2.plot([omega], [lag], marker="o", mfc="none", mec="cyan", ms=10)
        ax2.set_title(f"resonance map (peak |T̂|² = {power:.3f} at lag {lag:g}, ω = {omega:.3g})")
    ax2.set_xlabel(f"ω (rad/{result.time_unit or 'time unit'})")
    ax2.set_ylabel(f"lag τ̄ ({unit})")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, dpi=110)
    except OSError as exc:
        raise StorageError(f"cannot write plot {target}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    return target
