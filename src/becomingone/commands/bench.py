"""``becomingone bench --profile small|cluster``: measure a deployment profile on this machine.

Rule: argument handling and presentation only; the measuring is
:func:`becomingone.runtime.profile.run_small_profile` (one pinned ``up`` process) and the cluster
profile is ``bench/nats_cluster.py`` on its largest case, run as a child process whose output
is passed through. A MISS is a finding, not an error: the exit status is 0 whenever the
measurement itself succeeded (timing on a shared machine is noisy; the load is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

from becomingone.errors import InputError
from becomingone.runtime.profile import (
    Budget,
    SmallProfile,
    cluster_bench_argv,
    run_small_profile,
)

__all__ = ["register", "run_bench", "small_report"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bench``."""
    budget = Budget()
    p = sub.add_parser(
        "bench",
        help="measure a deployment profile: small (one pinned cell) or cluster (NATS nodes)",
        description=(
            "small: one cell (`up`, synthetic 100 Hz source) pinned to one core, its CPU % of "
            f"that core and peak RSS against the budget (< {budget.cpu_percent:g} %, "
            f"< {budget.rss_mb:g} MB). cluster: bench/nats_cluster.py on its largest case "
            "(a source checkout with nats-server). See docs/deployment.md."
        ),
    )
    p.add_argument("--profile", required=True, choices=("small", "cluster"))
    p.add_argument(
        "--duration", type=float, default=60.0, help="small: seconds the cell runs (default 60)"
    )
    p.add_argument("--core", type=int, help="small: the core to pin to (default: the last one)")
    p.add_argument(
        "--config", type=Path, help="small: the becomingone.yaml the cell runs with (`up --config`)"
    )
    p.add_argument("--json", action="store_true", help="small: print one JSON object")
    p.add_argument("--quick", action="store_true", help="cluster: the benchmark's quick case")
    p.set_defaults(handler=run_bench)


def small_report(profile: SmallProfile, budget: Budget, load: float) -> str:
    """The small profile as text: one line per budget with its figure and PASS/MISS."""
    ok = profile.verdicts(budget)
    steady = "n/a" if profile.steady_cpu_percent is None else f"{profile.steady_cpu_percent:.1f} %"
    return "\n".join(
        [
            f"small profile: one cell, synthetic 100 Hz source, {profile.duration:g} s on core "
            f"{profile.core}; {profile.samples} samples; load average {load:.2f}",
            f"  CPU {profile.cpu_percent:5.1f} % of one core ({profile.cpu_seconds:.2f} s "
            f"user+sys over {profile.wall_seconds:.1f} s wall, start-up included; steady "
            f"{steady})  budget < {budget.cpu_percent:g} %  {_verdict(ok['cpu'])}",
            f"  RSS {profile.rss_mb:5.1f} MB peak  budget < {budget.rss_mb:g} MB  "
            f"{_verdict(ok['rss'])}",
        ]
    )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def run_bench(args: argparse.Namespace) -> int:
    """Handler of ``becomingone bench``."""
    if args.profile == "cluster":
        if args.json or args.config is not None:
            flag = "--json" if args.json else "--config"
            raise InputError(flag, "only for --profile small")
        return subprocess.call(cluster_bench_argv(quick=args.quick))
    if args.quick:
        raise InputError("--quick", "only for --profile cluster (small takes --duration)")
    if args.config is not None and not args.config.is_file():
        raise InputError("--config", f"{args.config} is not a file")
    budget = Budget()
    extra = () if args.config is None else ("--config", str(args.config.resolve()))
    profile = run_small_profile(duration=args.duration, core=args.core, extra_args=extra)
    load = os.getloadavg()[0]
    if args.json:
        ok = profile.verdicts(budget)
        data = {
            "profile": "small",
            "duration": profile.duration,
            "core": profile.core,
            "samples": profile.samples,
            "wall_seconds": profile.wall_seconds,
            "cpu_seconds": profile.cpu_seconds,
            "cpu_percent": profile.cpu_percent,
            "steady_cpu_percent": profile.steady_cpu_percent,
            "rss_mb": profile.rss_mb,
            "load_average": load,
            "budget": {"cpu_percent": budget.cpu_percent, "rss_mb": budget.rss_mb},
            "verdict": {name: _verdict(passed) for name, passed in ok.items()},
        }
        print(json.dumps(data), flush=True)
    else:
        print(small_report(profile, budget, load), flush=True)
    return 0
