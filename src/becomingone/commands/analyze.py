"""``becomingone analyze FILE``: coherence over time, collapses and the resonance map of a file.

Rule: arguments are checked (the plot path too) before the run; the numbers come from
``becomingone.analysis``; output to a closed pipe ends the command quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from becomingone.analysis import (
    RULES,
    AnalysisResult,
    AnalysisSettings,
    analyze_file,
    frequency_unit,
    plot_analysis,
    quantity,
    time_unit_name,
)
from becomingone.commands._plots import PLOT_SUFFIXES, check_plot_path
from becomingone.config import load_config
from becomingone.core.encoders import DETRENDS
from becomingone.errors import InputError

__all__ = ["register", "render_text"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``analyze`` subcommand."""
    p = sub.add_parser(
        "analyze",
        help="run the KAIROS engine over a CSV or text file",
        description=(
            "Read a CSV (optional time column, one or more channels) or a text file (one "
            "message per line), run the windowed KAIROS engine over it and print coherence "
            "|T̂|² over time, the collapse episodes, the dominant frequency and the "
            "resonance-map peak. The COLLAPSE column uses one engine and one window "
            f"({RULES['single']}) unless --rule sync runs the cell's Sync-layer rule over a "
            "Master and an Emissary window. Times, --dt, --lag, --window and --hop are "
            "in the time column's unit (seconds, days or years; seconds without one)."
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
        "--time-column",
        metavar="NAME",
        help="the CSV's time column (default: a column named t, time, timestamp, seconds, year, "
        "date or datetime, or holding ISO-8601 timestamps); 'none' for no time column",
    )
    p.add_argument(
        "--detrend",
        default="mean",
        choices=list(DETRENDS),
        help="remove each channel's mean (default) or linear trend before the analytic signal",
    )
    _add_engine_arguments(p)
    p.set_defaults(handler=run)


def _add_engine_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        help="take lag, ω, I_c and the window from this becomingone.yaml (kairos.tau_scale, "
        "kairos.omega, kairos.threshold, emissary.tau_max); flags still win",
    )
    p.add_argument("--lag", type=float, help="lag τ̄ in time units (default 0.1; >= 1 sample)")
    p.add_argument("--omega", type=float, help="ω in rad per time unit (default 0)")
    p.add_argument("--window", type=float, help="window in time units (default 2)")
    p.add_argument("--threshold", type=float, help="collapse threshold I_c (default 0.95)")
    p.add_argument("--hop", type=float, help="time between evaluations (default window/10)")
    p.add_argument(
        "--rule",
        default="single",
        choices=list(RULES),
        help="collapse rule: one engine over --window (default), or the cell's Sync layer "
        "(Master over --master-window, Emissary over --window)",
    )
    p.add_argument(
        "--master-window",
        type=float,
        help="--rule sync: the Master's window (default master.tau_max of --config, else 10 x "
        "the window)",
    )
    p.add_argument(
        "--phase-threshold",
        type=float,
        help="--rule sync: collapse needs Δ_phase below this (default 0.1, or "
        "sync.phase_threshold of --config)",
    )
    p.add_argument(
        "--band",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="band-pass first (cycles per time unit: Hz for seconds)",
    )
    p.add_argument(
        "--embedding",
        default="auto",
        choices=["auto", "model", "lexical"],
        help="text embedding: the MiniLM model (extra 'text') or the lexical fallback",
    )
    p.add_argument("--rows", type=int, default=30, help="timeline rows to print (default 30)")
    p.add_argument(
        "--plot",
        metavar="FILE",
        help=f"save the timeline and resonance map ({', '.join(PLOT_SUFFIXES)})",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document instead")


def _engine_values(args: argparse.Namespace) -> dict[str, Any]:
    """lag, omega, window, threshold, master_window, phase_threshold: the flags, else the config
    file, else the defaults."""
    base = AnalysisSettings()
    values: dict[str, Any] = {
        "lag": base.lag,
        "omega": base.omega,
        "window": base.window,
        "threshold": base.threshold,
        "master_window": base.master_window,
        "phase_threshold": base.phase_threshold,
    }
    if args.config is not None:
        cell = load_config(args.config)
        values = {
            "lag": cell.kairos.tau_scale,
            "omega": cell.kairos.omega,
            "window": cell.emissary.tau_max,
            "threshold": cell.kairos.threshold,
            "master_window": cell.master.tau_max,
            "phase_threshold": cell.sync.phase_threshold,
        }
    for name in values:
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return values


def run(args: argparse.Namespace) -> int:
    """Check the arguments, analyse the file and print the result."""
    if args.rows < 1:
        raise InputError("rows", f"--rows must be >= 1, got {args.rows}")
    plot = check_plot_path(args.plot) if args.plot is not None else None
    engine = _engine_values(args)
    settings = AnalysisSettings(
        **engine,
        hop=args.hop,
        band=tuple(args.band) if args.band else None,
        detrend=args.detrend,
        rule=args.rule,
    )
    result = analyze_file(
        args.file,
        settings,
        kind=args.kind,
        dt=args.dt,
        embedding=args.embedding,
        time_column=args.time_column,
    )
    if plot is not None:
        plot_analysis(result, plot)
    if args.json:
        doc = result.to_json()
        doc["plot"] = str(plot) if plot else None
        text = json.dumps(doc) + "\n"
    else:
        text = render_text(result, rows=args.rows) + (f"plot: {plot}\n" if plot else "")
    return _emit(text)


def _emit(text: str) -> int:
    """Write ``text`` to stdout; a reader that went away (``| head``) ends the command quietly
    with status 1, without a traceback at interpreter exit."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    return 0


def _header(result: AnalysisResult) -> list[str]:
    """Source, engine settings and the collapse rule."""
    s, u = result.settings, result.time_unit
    source = (
        f"{result.source}: {result.samples} samples x {result.channels} channel(s), "
        f"dt={quantity(result.dt, u)}, kind={result.kind}"
        + (f", detrend={s.detrend}" if result.kind == "signal" else "")
        + (f", embedding={result.embedding}" if result.embedding else "")
        + (f", time column {result.time_column!r}" if result.time_column else "")
        + (f" (from {result.time_origin})" if result.time_origin else "")
    )
    band = f", band={s.band[0]:g}-{s.band[1]:g} {frequency_unit(u)}" if s.band else ""
    engine = (
        f"engine: lag={quantity(s.lag, u)}, omega={s.omega:g} rad/{u or 'time unit'}, "
        f"window={quantity(s.window, u)}, I_c={s.threshold:g}{band}"
    )
    if s.rule == "sync":
        rule = (
            f"collapse rule: {result.rule} (the cell's Sync layer: Master window "
            f"{quantity(s.master_span, u)}, Emissary window {quantity(s.window, u)}, "
            f"phase_threshold={s.phase_threshold:g})"
        )
    else:
        rule = (
            f"collapse rule: {result.rule} (one engine, one window; not the cell's "
            "Master+Emissary Sync-layer rule)"
        )
    return [source, engine, rule]


def render_text(result: AnalysisResult, rows: int = 30) -> str:
    """The human-readable report: settings and rule, a timeline, the episodes and a summary."""
    s, u = result.settings, result.time_unit
    short = "s" if u == "s" else time_unit_name(u)
    lines = [*_header(result), "", f"{'t (' + short + ')':>10}  {'|T|^2':>6}  {'':<30}  state"]
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
                f"  {e.start:9.2f} .. {e.end:9.2f} {short}   peak {e.peak:.4f} at "
                f"{e.peak_time:.2f} {short}"
            )
    else:
        lines.append("collapse episodes: none (every evaluation dissipated)")
    lines.append(
        f"evaluations: {result.coherence.size}  collapsed: {result.collapses}  "
        f"dissipated: {result.dissipations}"
    )
    lines.append(_frequency_line(result))
    if result.rmap is not None:
        lag, omega, power = result.rmap.peak()
        lines.append(
            f"resonance map peak: |T|^2={power:.4f} at lag {quantity(lag, u)}, "
            f"omega {omega:.4g} rad/{u or 'time unit'}"
        )
    return "\n".join(lines) + "\n"


def _frequency_line(result: AnalysisResult) -> str:
    f, period = result.frequency, result.period
    if f is None:
        return "dominant frequency: n/a for text (embedding channels are not phase angles)"
    rate = frequency_unit(result.time_unit)
    text = f"dominant frequency {f:.3g} {rate}"
    if period is None:
        return text + " (the phase does not advance on average)"
    return (
        text
        + f", period {quantity(float(f'{period:.3g}'), result.time_unit)} (mean phase velocity)"
    )
