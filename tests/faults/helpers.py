"""What the fault tests share: node processes spread over servers, an observer, bounded waits.

Rule: every process is started here or by :class:`NatsServers` and stopped by its own pid;
every wait is bounded in time (a failed wait names what was seen). The nodes tick at 10 Hz
(100 ms) with α = 0.3, so a cluster locks in a few seconds and 8 processes fit on 2 cores.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from becomingone.core.phase import CoherenceBand
from becomingone.memory.store import DB_NAME, TemporalMemory
from becomingone.runtime.launcher import NodeProcesses
from becomingone.runtime.node import NodeStatus
from becomingone.runtime.observer import ClusterObserver
from becomingone.transport import NatsBus, connect_nats
from tests.helpers import gone

__all__ = [
    "FLAGS",
    "PEER_TIMEOUT",
    "TICK",
    "Fleet",
    "chain_length",
    "gone",
    "locked",
    "observe",
    "until",
    "witness_verify",
]

#: Tick period of the nodes (s) and their flags; the peer timeout is the default cluster's.
TICK = 0.1
PEER_TIMEOUT = 1.0
FLAGS = ("--topology", "mesh", "--tick", "100", "--alpha", "0.3")
#: The ``becomingone`` command of this environment.
CLI = (sys.executable, "-m", "becomingone.cli")
#: Seconds a node may take to stop after SIGTERM (a loaded machine is slow) before SIGKILL.
STOP_TIMEOUT = 30.0


class Fleet:
    """``becomingone node`` processes sharing one roster under ``base``, each given the server
    URLs of its own list (``urls[i]`` for a node started ``at=i``: the first is the server it
    connects to, the rest its failover order)."""

    def __init__(
        self, base: Path, urls: Sequence[Sequence[str]], flags: Sequence[str] = FLAGS
    ) -> None:
        self.launchers = [NodeProcesses(base, list(u), flags) for u in urls]
        self.base = base
        self.where: dict[str, NodeProcesses] = {}

    def start(self, name: str, *, at: int = 0, kind: str = "full") -> int:
        """Start (or restart) node ``name`` on server list ``at``; its pid."""
        launcher = self.where.setdefault(name, self.launchers[at])
        return launcher.start(name, kind=kind)

    def roster_text(self) -> str:
        """The roster file's contents (names and public keys)."""
        return (self.base / "roster.json").read_text()

    def signal(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to node ``name`` (a SIGKILLed one is reaped)."""
        self.where[name].kill(name, sig)

    def terminate(self, name: str) -> int | None:
        """SIGTERM node ``name`` and wait for it (SIGKILL after :data:`STOP_TIMEOUT`); its
        exit code."""
        proc = self.proc(name)
        proc.terminate()
        try:
            return proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(timeout=10)

    def proc(self, name: str) -> subprocess.Popen[bytes]:
        """The process of node ``name``."""
        return self.where[name].procs[name]

    def running(self) -> list[str]:
        """Names of the nodes whose process still runs."""
        return [n for n in self.where if self.proc(n).poll() is None]

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every node (SIGCONT first, for one left stopped), SIGKILL those left after
        :data:`STOP_TIMEOUT`; exit codes by name. Asserts every pid started is gone."""
        for name in self.running():
            self.proc(name).send_signal(signal.SIGCONT)
        codes: dict[str, int | None] = {}
        for launcher in self.launchers:
            pids = list(launcher.pids.values())
            codes |= launcher.stop(timeout=STOP_TIMEOUT)
            assert all(gone(pid) for pid in pids), f"node pids left: {pids}"
        return codes


async def observe(
    urls: Sequence[str], name: str = "fault-observer"
) -> tuple[NatsBus, ClusterObserver]:
    """An observer of cluster ``local`` on its own connection (given ``urls`` in order)."""
    bus = await connect_nats(list(urls), name=name)
    obs = ClusterObserver(bus, cluster="local", peer_timeout=PEER_TIMEOUT)
    await obs.start()
    return bus, obs


async def until(
    observers: ClusterObserver | Sequence[ClusterObserver],
    check: Callable[[], bool],
    seconds: float,
    what: str = "",
) -> float:
    """Step the observers every tick until ``check()``; the seconds it took, or fail saying
    what the observers saw last."""
    group = [observers] if isinstance(observers, ClusterObserver) else list(observers)
    start = time.monotonic()
    while True:
        for obs in group:
            obs.step()
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > seconds:
            seen = [(o.history[-1], summary(o.latest)) for o in group]
            raise AssertionError(f"{what or 'condition'} not reached within {seconds} s: {seen}")
        await asyncio.sleep(TICK)


async def locked(obs: ClusterObserver, names: Sequence[str]) -> None:
    """Wait until every node is heard, the cluster is SHARED and every node is stable."""
    await until(obs, lambda: len(obs.live(time.time())) == len(names), 90, "all nodes heard")
    await until(
        obs,
        lambda: (
            obs.history[-1].band is CoherenceBand.SHARED
            and all(obs.latest[n].stable for n in names)
        ),
        60,
        "SHARED and stable",
    )


def summary(latest: dict[str, NodeStatus]) -> dict[str, tuple[bool, int, dict[str, int]]]:
    """(stable, heard, rejected) of each node's newest status, for failure messages."""
    return {n: (s.stable, s.heard, dict(s.rejected)) for n, s in sorted(latest.items())}


def chain_length(data_dir: Path) -> int:
    """How many witness records the cell in ``data_dir`` has committed (read-only, no lock:
    its process may be running)."""
    memory = TemporalMemory.open_read_only(data_dir / DB_NAME)
    try:
        return memory.witness_count()
    finally:
        memory.close()


def witness_verify(data_dir: Path) -> dict[str, Any]:
    """``becomingone witness verify --json`` on ``data_dir`` (read-only, no lock), parsed."""
    out = subprocess.run(
        [*CLI, "witness", "verify", "--json", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    doc: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    doc["exit"] = out.returncode
    return doc
