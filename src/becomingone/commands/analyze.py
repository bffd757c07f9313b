"""``becomingone analyze FILE``: coherence over time, collapses and the resonance map of a file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from becomingone.analysis import AnalysisResult, AnalysisSettings, analyze_file, plot_analysis
from becomingone.config import load_config

__all__ = ["register", "render_text"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``analyze`` subcommand."""
    p = sub.add_parser(
        "analyze",
        help="run the KAIROS engine over a CSV or text file",
        description=(
            "Read a CSV (optional time column, one or more channels) or a text file (one "
            "message per line), run the windowed KAIROS engine over it and print coherence "
            "|T̂|² over time, the collapse episodes and the resonance-map peak."
        ),
    )
    p.add_argument("file", help="CSV or text file")
    p.add_argument(
        "--kind",
        default="auto",
        choices=["auto", "signal", "phase", "wrapped-phase", "events", "text"],
        help="how to read the file (auto: text for .txt/.md/.log, else a real signal)",
    )
    p.add_argument("--dt", type=float, help="sample step in seconds (CSV without a time column)")
    p.add_argument(
        "--config",
        type=Path,
        help="take lag, ω, I_c and the window from this becomingone.yaml (kairos.tau_scale, "
        "kairos.omega, kairos.threshold, emissary.tau_max); flags still win",
    )
    p.add_argument("--lag", type=float, help="lag τ̄ in seconds (default 0.1)")
    p.add_argument("--omega", type=float, help="ω in rad/s (default 0)")
    p.add_argument("--window", type=float, help="window in seconds (default 2)")
    p.add_argument("--threshold", type=float, help="collapse threshold I_c (default 0.95)")
    p.add_argument("--hop", type=float, help="seconds between evaluations (default window/10)")
    p.add_argument(
        "--band", type=float, nargs=2, metavar=("LOW_HZ", "HIGH_HZ"), help="band-pass first"
    )
    p.add_argument(
        "--embedding",
        default="auto",
        choices=["auto", "model", "lexical"],
        help="text embedding: the MiniLM model (extra 'text') or the lexical fallback",
    )
    p.add_argument("--rows", type=int, default=30, help="timeline rows to print (default 30)")
    p.add_argument("--plot", metavar="PNG", help="save the timeline and resonance map here")
    p.add_argument("--json", action="store_true", help="print one JSON document instead")
    p.set_defaults(handler=run)


def _engine_values(args: argparse.Namespace) -> dict[str, float]:
    """lag, omega, window, threshold: the flags, else the config file, else the defaults."""
    base = AnalysisSettings()
    values = {"lag": base.lag, "omega": base.omega, "window": base.window}
    values["threshold"] = base.threshold
    if args.config is not None:
        cell = load_config(args.config)
        values = {
            "lag": cell.kairos.tau_scale,
            "omega": cell.kairos.omega,
            "window": cell.emissary.tau_max,
            "threshold": cell.kairos.threshold,
        }
    for name in values:
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return values


def run(args: argparse.Namespace) -> int:
    """Analyse the file and print the result."""
    engine = _engine_values(args)
    settings = AnalysisSettings(
        lag=engine["lag"],
        omega=engine["omega"],
        window=engine["window"],
        threshold=engine["threshold"],
        hop=args.hop,
        band=tuple(args.band) if args.band else None,
    )
    result = analyze_file(args.file, settings, kind=args.kind, dt=args.dt, embedding=args.embedding)
    plot = plot_analysis(result, args.plot) if args.plot else None
    if args.json:
        doc = result.to_json()
        doc["plot"] = str(plot) if plot else None
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(result, rows=max(1, args.rows)))
        if plot:
            print(f"plot: {plot}")
    return 0


def render_text(result: AnalysisResult, rows: int = 30) -> str:
    """The human-readable report: settings, a timeline, the episodes and a summary."""
    s = result.settings
    lines = [
        f"{result.source}: {result.samples} samples x {result.channels} channel(s), "
        f"dt={result.dt:g} s, kind={result.kind}"
        + (f", embedding={result.embedding}" if result.embedding else ""),
        f"engine: lag={s.lag:g} s, omega={s.omega:g} rad/s, window={s.window:g} s, "
        f"I_c={s.threshold:g}" + (f", band={s.band[0]:g}-{s.band[1]:g} Hz" if s.band else ""),
        "",
        f"{'t (s)':>10}  {'|T|^2':>6}  {'':<30}  state",
    ]
    idx = np.unique(np.linspace(0, result.times.size - 1, min(rows, result.times.size)).round())
    for i in idx.astype(int):
        c = float(result.coherence[i])
        bar = "#" * round(c * 30)
        state = "COLLAPSE" if c >= s.threshold else "dissipate"
        lines.append(f"{result.times[i]:10.2f}  {c:6.3f}  {bar:<30}  {state}")
    lines.append("")
    if result.episodes:
        lines.append("collapse episodes:")
        for e in result.episodes:
            lines.append(
                f"  {e.start:9.2f} s .. {e.end:9.2f} s   peak {e.peak:.4f} at {e.peak_time:.2f} s"
            )
    else:
        lines.append("collapse episodes: none (every evaluation dissipated)")
    lines.append(
        f"evaluations: {result.coherence.size}  collapsed: {result.collapses}  "
        f"dissipated: {result.dissipations}"
    )
    if result.rmap is not None:
        lag, omega, power = result.rmap.peak()
        lines.append(
            f"resonance map peak: |T|^2={power:.4f} at lag {lag:g} s, omega {omega:.4g} rad/s"
        )
    return "\n".join(lines) + "\n"
