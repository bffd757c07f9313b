"""Offline analysis of a recorded stream: read a file, encode it, run the KAIROS engine over it.

This is the library behind ``becomingone analyze``: it reads CSV or text files (``ingest``),
turns them into a phase sequence (``core.encoders``), streams it through a windowed
``KairosEngine`` in hops, and groups the evaluations into collapse episodes; ``plot_analysis``
draws the coherence timeline and the resonance map. Reads files and writes the plot; no clocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from becomingone.core._checks import finite_float, positive_float
from becomingone.core.encoders import (
    phase_from_embeddings,
    phase_from_events,
    phase_from_samples,
    phase_from_signal,
)
from becomingone.core.resmap import ResonanceMap, resonance_map
from becomingone.core.stream import KairosEngine
from becomingone.errors import InputError
from becomingone.ingest.files import read_csv_series, read_messages
from becomingone.ingest.text import embed_messages, model_available

__all__ = [
    "AnalysisResult",
    "AnalysisSettings",
    "Episode",
    "InputKind",
    "analyze_file",
    "analyze_phase",
    "plot_analysis",
]

InputKind = Literal["auto", "signal", "phase", "wrapped-phase", "events", "text"]
_TEXT_SUFFIXES = (".txt", ".text", ".md", ".log")


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisSettings:
    """Engine settings for an analysis (seconds, rad/s); ``hop`` defaults to window / 10."""

    lag: float = 0.1
    omega: float = 0.0
    window: float = 2.0
    threshold: float = 0.95
    hop: float | None = None
    band: tuple[float, float] | None = None
    lags: int = 24

    def __post_init__(self) -> None:
        finite_float("lag", self.lag)
        finite_float("omega", self.omega)
        positive_float("window", self.window)
        if self.hop is not None:
            positive_float("hop", self.hop)
        if self.lags < 1:
            raise InputError("lags", f"must be >= 1, got {self.lags}")


@dataclass(frozen=True, slots=True)
class Episode:
    """A run of consecutive collapsed evaluations: [start, end] seconds, peak |T̂|²."""

    start: float
    end: float
    peak: float
    peak_time: float


@dataclass(slots=True)
class AnalysisResult:
    """Coherence over time for one stream, its collapse episodes and its resonance map."""

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

    @property
    def collapses(self) -> int:
        """Number of evaluations at or above the threshold."""
        return int(np.count_nonzero(self.coherence >= self.settings.threshold))

    @property
    def dissipations(self) -> int:
        """Number of evaluations below the threshold (the input dissipated)."""
        return int(self.coherence.size - self.collapses)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary with every evaluation."""
        peak = self.rmap.peak() if self.rmap is not None else None
        return {
            "source": self.source,
            "kind": self.kind,
            "dt": self.dt,
            "samples": self.samples,
            "channels": self.channels,
            "embedding": self.embedding or None,
            "lag": self.settings.lag,
            "omega": self.settings.omega,
            "window": self.settings.window,
            "threshold": self.settings.threshold,
            "evaluations": [
                {"t": float(t), "coherence": float(c), "terms": int(k)}
                for t, c, k in zip(self.times, self.coherence, self.terms)
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


def _episodes(times: NDArray[np.float64], coh: NDArray[np.float64], thr: float) -> list[Episode]:
    out: list[Episode] = []
    on = coh >= thr
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


def analyze_phase(
    phi: NDArray[Any],
    dt: float,
    settings: AnalysisSettings,
    *,
    t0: float = 0.0,
    source: str = "<array>",
    kind: str = "phase",
    with_map: bool = True,
) -> AnalysisResult:
    """Stream φ through a windowed engine in hops and collect coherence over time."""
    step = positive_float("dt", dt)
    mat = phi[:, None] if phi.ndim == 1 else phi
    engine = KairosEngine(
        dt=step,
        lag=settings.lag,
        omega=settings.omega,
        window=settings.window,
        threshold=settings.threshold,
        channels=mat.shape[1],
        t0=t0,
    )
    need = engine.lag_samples + engine.window_terms + 1
    if mat.shape[0] < need:
        raise InputError(
            "file",
            f"{source}: {mat.shape[0]} samples are fewer than one window needs ({need}: "
            f"window {settings.window} s + lag {settings.lag} s at dt {step} s)",
        )
    hop = max(1, round((settings.hop or settings.window / 10.0) / step))
    first = need  # evaluate only once the window is full
    results = [engine.update(mat[:first])]
    results += [engine.update(mat[i : i + hop]) for i in range(first, mat.shape[0], hop)]
    times = [r.time for r in results]
    coh = [r.coherence for r in results]
    terms = [r.terms for r in results]
    t_arr, c_arr = np.asarray(times), np.asarray(coh)
    rmap = None
    if with_map:
        max_lag = min(settings.window / 2.0, (mat.shape[0] - 2) * step)
        lags = np.unique(np.rint(np.linspace(step, max_lag, settings.lags) / step)) * step
        # ω up to 48 resolution steps (2π / duration) shows the shape of the peak; capped at
        # the Nyquist rate.
        top = min(np.pi / step, 48 * 2 * np.pi / (mat.shape[0] * step))
        rmap = resonance_map(mat, step, lags, np.linspace(0.0, top, 97))
    return AnalysisResult(
        source=source,
        kind=kind,
        dt=step,
        samples=int(mat.shape[0]),
        channels=int(mat.shape[1]),
        settings=settings,
        times=t_arr,
        coherence=c_arr,
        terms=np.asarray(terms, dtype=np.int64),
        episodes=_episodes(t_arr, c_arr, settings.threshold),
        rmap=rmap,
    )


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
) -> AnalysisResult:
    """Read ``path`` and analyse it.

    ``kind``: ``signal`` (CSV of real samples: analytic-signal phase), ``phase`` or
    ``wrapped-phase`` (CSV of phase samples in radians), ``events`` (CSV, one column of event
    times in seconds), ``text`` (one message per line; dt is one message). ``auto`` picks
    ``text`` for .txt/.md/.log files and ``signal`` otherwise. ``dt`` (seconds) is needed when a
    CSV has no time column.
    """
    p = Path(path)
    resolved = _resolve_kind(p, kind)
    if resolved == "text":
        messages = read_messages(p)
        vectors = embed_messages(messages, backend=embedding)
        used = (
            "model"
            if embedding == "model" or (embedding == "auto" and model_available())
            else "lexical"
        )
        step = 1.0 if dt is None else positive_float("dt", dt)
        result = analyze_phase(
            phase_from_embeddings(vectors), step, settings, source=str(p), kind="text"
        )
        result.embedding = used
        return result
    series = read_csv_series(p)
    if resolved == "events":
        if series.values.shape[1] != 1:
            raise InputError("file", f"{p}: events need one column of times, got {series.channels}")
        step = positive_float("dt", dt if dt is not None else 0.01)
        t0, phi = phase_from_events(series.values[:, 0], step)
        return analyze_phase(phi, step, settings, t0=t0, source=str(p), kind="events")
    if series.dt is None and dt is None:
        raise InputError("dt", f"{p} has no time column; pass --dt (seconds)")
    step = positive_float("dt", series.dt if series.dt is not None else dt)
    if series.dt is not None and dt is not None and not math.isclose(series.dt, dt, rel_tol=0.01):
        raise InputError("dt", f"--dt {dt} disagrees with the file's time step {series.dt}")
    if resolved == "signal":
        phi = phase_from_signal(series.values, step, band=settings.band)
    elif resolved in ("phase", "wrapped-phase"):
        phi = phase_from_samples(series.values, wrapped=resolved == "wrapped-phase")
    else:
        raise InputError("kind", f"unknown input kind {resolved!r}")
    return analyze_phase(phi, step, settings, t0=series.t0, source=str(p), kind=resolved)


def plot_analysis(result: AnalysisResult, out: Path | str) -> Path:
    """Draw the coherence timeline (with collapses) and the resonance map into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7.5), constrained_layout=True)
    thr = result.settings.threshold
    ax1.plot(result.times, result.coherence, color="#2b6cb0", lw=1.4, label="|T̂|²")
    ax1.axhline(thr, color="#c53030", ls="--", lw=1, label=f"I_c = {thr:g}")
    for ep in result.episodes:
        ax1.axvspan(ep.start, ep.end, color="#f6ad55", alpha=0.35, lw=0)
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_xlabel("time (s)")
    ax1.set_ylabel("coherence |T̂|²")
    ax1.set_title(
        f"{Path(result.source).name}: {len(result.episodes)} collapse episode(s), "
        f"{result.collapses} collapsed / {result.dissipations} dissipated evaluations"
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
        ax2.set_title(f"resonance map (peak |T̂|² = {power:.3f} at lag {lag:g} s, ω = {omega:.3g})")
    ax2.set_xlabel("ω (rad/s)")
    ax2.set_ylabel("lag τ̄ (s)")
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target
