"""``becomingone cluster --roles``: the partifact view of an in-process cluster.

Rule: builds the :class:`~becomingone.runtime.PartifactDriver` from the command's arguments and
formats what it reports (a table of cells, the lifecycle with its conditions, a summary);
no protocol decisions here.
"""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from becomingone.cluster import LifecycleStage
from becomingone.errors import InputError
from becomingone.memory import AppendLog, MemoryAppendLog, SqliteAppendLog
from becomingone.runtime import ClusterMember, PartifactDriver, PartifactTick, TickReport
from becomingone.sync import PhaseSupervisor

#: Name of the consensus log's SQLite file under ``--data-dir``.
CONSENSUS_DB = "consensus.db"


def check_roles_args(args: argparse.Namespace) -> None:
    """``--roles`` runs in process; ``--silence-genesis`` needs it and a time >= 0."""
    if args.silence_genesis is not None:
        if not args.roles:
            raise InputError("--silence-genesis", "needs --roles")
        if not math.isfinite(args.silence_genesis) or args.silence_genesis < 0:
            raise InputError(
                "--silence-genesis", f"must be >= 0 seconds, got {args.silence_genesis}"
            )
    if args.roles and args.bus == "nats":
        raise InputError("--roles", "runs on the in-process bus only (for now)")


@contextlib.contextmanager
def partifact_driver(
    args: argparse.Namespace,
    members: Sequence[ClusterMember],
    supervisors: Sequence[PhaseSupervisor],
    threshold: float,
    tick_seconds: float,
) -> Iterator[PartifactDriver | None]:
    """The driver for ``--roles`` (``None`` without it); its log is ``consensus.db`` under
    ``--data-dir`` (decisions of an earlier run are replayed) or in memory."""
    if not args.roles:
        yield None
        return
    log: AppendLog
    if args.data_dir is not None:
        path = Path(args.data_dir)
        path.mkdir(parents=True, exist_ok=True)
        log = SqliteAppendLog(path / CONSENSUS_DB, "consensus")
    else:
        log = MemoryAppendLog("consensus")
    try:
        yield PartifactDriver(
            members,
            {s.node_id: s.key for s in supervisors},
            log=log,
            threshold=threshold,
            genesis_timeout=max(1.0, 20 * tick_seconds),
            vote_seconds=max(0.5, 10 * tick_seconds),
            propose_every=max(0.2, 4 * tick_seconds),
        )
    finally:
        if isinstance(log, SqliteAppendLog):
            log.close()


async def step_driver(
    driver: PartifactDriver, report: TickReport, silence_at: float | None
) -> None:
    """One partifact tick and its hooks (full cells); from ``silence_at`` seconds on, the
    Genesis is silenced (once)."""
    genesis = driver.cluster.genesis
    if silence_at is not None and report.time >= silence_at and genesis and not driver.silent:
        driver.crash(genesis, report.time)
    await driver.fire_hooks(driver.step(report))


def roles_view(tick: PartifactTick, limit: int = 16) -> list[Text | Table]:
    """The lifecycle line, its conditions and a table of the first ``limit`` cells."""
    life = tick.lifecycle
    head = Text(f"lifecycle {life.stage.value.upper()}  ")
    for c in life.conditions:
        head.append(f"{c.name} ", style="green" if c.met else "red")
    table = Table("cell", "state", "role")
    for cell, (state, role) in sorted(tick.cells.items())[:limit]:
        table.add_row(cell, state.value, "-" if role is None else role.value)
    if len(tick.cells) > limit:
        table.caption = f"first {limit} of {len(tick.cells)} cells"
    return [head, table]


def progress_suffix(tick: PartifactTick) -> str:
    """``lifecycle STAGE  roles G/E/V/I`` for a progress line."""
    counts = {"genesis": 0, "executor": 0, "validator": 0, "integrator": 0}
    for _state, role in tick.cells.values():
        if role is not None:
            counts[role.value] += 1
    roles = "/".join(str(v) for v in counts.values())
    return f"  lifecycle {tick.lifecycle.stage.value}  roles G/E/V/I {roles}"


def roles_summary(driver: PartifactDriver) -> dict[str, Any]:
    """First tick at each lifecycle stage, the final stage, decisions, refusals, transfers."""
    first = {s.value: driver.first_tick.get(s) for s in LifecycleStage}
    pc = driver.cluster
    last = driver.history[-1] if driver.history else None
    return {
        "lifecycle": pc.lifecycle.stage.value,
        "ticks_to_stage": first,
        "conditions": {} if last is None else last.lifecycle.to_json()["conditions"],
        "roles": {c: r.value for c, r in sorted(pc.roles.items())},
        "term": pc.term,
        "proposals": dict(driver.counts.proposed),
        "decisions": dict(driver.counts.decided),
        "restored": driver.restored,
        "log_entries": pc.head,
        "votes_rejected": dict(pc.book.rejected),
        "signals_refused": dict(pc.router.refused),
        "role_transfers": len(pc.transfers),
        "failovers": list(driver.failovers),
        "delegation": dict(driver.delegation.counts),
    }


def add_summary_rows(table: Table, doc: dict[str, Any]) -> None:
    """The ``--roles`` rows of the summary table."""
    reached = ", ".join(
        f"{stage} {tick}" for stage, tick in doc["ticks_to_stage"].items() if tick is not None
    )
    table.add_row("lifecycle", f"{doc['lifecycle']} (first tick: {reached or 'none'})")
    table.add_row("roles", f"term {doc['term']}, {_count_roles(doc['roles'])}")
    decided = ", ".join(f"{k}={v}" for k, v in sorted(doc["decisions"].items())) or "none"
    table.add_row(
        "decisions", f"{decided}; {doc['log_entries']} in the log ({doc['restored']} replayed)"
    )
    rejected = ", ".join(f"{k}={v}" for k, v in sorted(doc["votes_rejected"].items())) or "none"
    table.add_row("votes rejected", rejected)
    if doc["delegation"]:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(doc["delegation"].items()))
        table.add_row("delegated tasks", counts)
    for f in doc["failovers"]:
        table.add_row(
            "genesis failover",
            f"{f['from']} silent at {f['silenced_at']:.2f} s → {f['to']} at "
            f"{f['replaced_at']:.2f} s ({f['seconds']:.2f} s)",
        )
    unmet = [n for n, c in doc["conditions"].items() if not c["met"]]
    table.add_row("unmet conditions", ", ".join(unmet) or "none")


def _count_roles(roles: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for role in roles.values():
        counts[role] = counts.get(role, 0) + 1
    return ", ".join(f"{n} {r}" for r, n in sorted(counts.items())) or "none"
