"""``becomingone simulate``: the vectorised large-N simulator, its table and plot.

Rule: argument checks, then :func:`becomingone.sim.simulate` and display only.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from becomingone.commands._plots import check_plot_path
from becomingone.commands.cluster import cluster_settings
from becomingone.config import ClusterConfig, load_config
from becomingone.errors import InputError
from becomingone.sim import SimResult, predicted_rounds, simulate

_DEFAULT = ClusterConfig()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` subcommand."""
    d = _DEFAULT
    p = sub.add_parser("simulate", help="simulate cluster phase lock at large N (NumPy)")
    p.add_argument("--nodes", type=int, default=10_000, help="number of cells (default 10000)")
    p.add_argument(
        "--topology",
        choices=["mesh", "hub", "ring", "fractal"],
        help=f"default: cluster.topology ({d.topology})",
    )
    p.add_argument("--rounds", type=int, default=600, help="rounds (ticks) to run")
    p.add_argument("--alpha", type=float, help=f"CPS phase gain α (default {d.alpha})")
    p.add_argument("--beta", type=float, help=f"PLL frequency gain β (default {d.beta})")
    p.add_argument("--seed", type=int, default=0, help="seed of phases, noise and loss")
    p.add_argument("--freq-spread", type=float, default=0.0, help="cycles per round (std)")
    p.add_argument("--jitter", type=float, default=0.0, help="phase noise per round (std)")
    p.add_argument("--loss", type=float, default=0.0)
    p.add_argument("--branching", type=int, help=f"fractal branching b (default {d.branching})")
    p.add_argument(
        "--config", type=Path, help="becomingone.yaml: its cluster: section gives the defaults"
    )
    p.add_argument("--break-twist", action="store_true", help="ring: temporary chords")
    p.add_argument("--every", type=int, default=0, help="table row every K rounds")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", type=Path, help="save phase circle + C/R timeline (PNG)")
    p.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> None:
    if not 1 <= args.nodes <= 10_000_000:
        raise InputError("--nodes", f"must be in [1, 1e7], got {args.nodes}")
    if not 0 <= args.rounds <= 10_000_000:
        raise InputError("--rounds", f"must be in [0, 1e7], got {args.rounds}")
    if args.nodes * max(1, args.rounds) > 10**11:
        raise InputError("--rounds", f"{args.nodes} cells x {args.rounds} rounds is > 1e11 steps")
    if not 0 <= args.seed < 2**32:
        raise InputError("--seed", f"must be in [0, 2**32), got {args.seed}")
    if args.every < 0:
        raise InputError("--every", f"must be >= 0, got {args.every}")
    for name in ("freq_spread", "jitter"):
        value = getattr(args, name)
        if not math.isfinite(value) or value < 0:
            flag = "--" + name.replace("_", "-")
            raise InputError(flag, f"must be a finite number >= 0, got {value}")
    if args.plot is not None:
        check_plot_path(args.plot)  # before the run, not after it


def run(args: argparse.Namespace) -> int:
    """Simulate and print the table (or JSON), optionally plot."""
    _check(args)
    settings = cluster_settings(args, load_config(args.config))
    res = simulate(
        args.nodes,
        settings.topology,
        args.rounds,
        alpha=settings.alpha,
        beta=settings.beta,
        seed=args.seed,
        freq_spread=args.freq_spread,
        jitter=args.jitter,
        loss=args.loss,
        branching=settings.branching,
        break_twist=args.break_twist,
    )
    every = args.every if args.every > 0 else max(1, args.rounds // 12)
    reached = {c: res.rounds_to(c) for c in (0.30, 0.60, 0.75, 0.99)}
    predicted = {c: predicted_rounds(res.topology, args.nodes, settings.alpha, c) for c in reached}
    if args.json:
        print(json.dumps(_as_json(res, every, reached, predicted)))
    else:
        _print_table(res, every, reached, predicted)
    if args.plot is not None:
        from becomingone.commands._plots import save_phase_and_timeline

        save_phase_and_timeline(
            args.plot,
            res.theta[:: max(1, res.n // 2000)].tolist(),
            res.c.tolist(),
            f"simulate: {res.n} cells, {res.topology.value}",
            x_label="round",
            r_series=res.r.tolist(),
        )
    return 0


def _as_json(
    res: SimResult, every: int, reached: dict[float, int | None], predicted: dict[float, int]
) -> dict[str, object]:
    rows: list[dict[str, float | int]] = []
    for t in range(0, res.rounds + 1, every):
        row: dict[str, float | int] = {"round": t, "c": float(res.c[t]), "r": float(res.r[t])}
        if res.windings is not None:
            row["winding"] = int(res.windings[t])
        rows.append(row)
    return {
        "n": res.n,
        "topology": res.topology.value,
        "rows": rows,
        "rounds_to": {str(c): v for c, v in reached.items()},
        "predicted": {str(c): v for c, v in predicted.items()},
        "winding": res.winding,
        "twisted": res.twisted,
        "chord_rounds": res.chord_rounds,
    }


def _print_table(
    res: SimResult, every: int, reached: dict[float, int | None], predicted: dict[float, int]
) -> None:
    ring = res.windings is not None
    print(f"{res.n} cells, {res.topology.value}, alpha={res.alpha}, beta={res.beta}")
    print(f"{'round':>7} {'C':>9} {'R':>9}" + (f" {'winding':>8}" if ring else ""))
    for t in range(0, res.rounds + 1, every):
        line = f"{t:>7} {res.c[t]:9.5f} {res.r[t]:9.5f}"
        if res.windings is not None:
            line += f" {int(res.windings[t]):>8}"
        print(line)
    for c, got in reached.items():
        shown = "never" if got is None else str(got)
        print(f"rounds to C >= {c:.2f}: {shown:>7}   predicted (uniform start): {predicted[c]}")
    if ring:
        state = "TWISTED" if res.twisted else "untwisted"
        print(f"winding {res.winding} ({state}); chord rounds {res.chord_rounds}")
