"""Node processes started by this process (``becomingone cluster --bus nats``), stopped by pid.

Rule: every process started here is remembered by its :class:`subprocess.Popen`; stopping
sends SIGTERM to exactly those pids, waits a bounded time, then SIGKILLs the ones left and
reaps them all. Nothing is looked up by name. Each node writes its output to
``<base>/<name>.log``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from becomingone.errors import InputError

__all__ = ["NodeProcesses", "node_name"]


def node_name(index: int) -> str:
    """The name of the ``index``-th node a launcher starts (``cell-0000``, ...)."""
    return f"cell-{index:04d}"


class NodeProcesses:
    """``becomingone node`` processes, one per name, sharing a roster file under ``base``.

    ``extra`` are the flags every node gets (topology, tick, ...); each node runs on
    ``base/<name>`` as its data dir and joins ``base/roster.json`` — or, with ``kv_roster``,
    reads the cluster's KV roster (no ``--roster``, no ``--join``: an admin wrote the members
    before the nodes start). A node gets every URL,
    starting at the server it is given (``server``: an index into ``urls``), so nodes spread
    over a cluster's servers and each fails over to the next one.
    """

    def __init__(
        self,
        base: Path,
        urls: Sequence[str],
        extra: Sequence[str] = (),
        *,
        kv_roster: bool = False,
    ) -> None:
        if not urls:
            raise InputError("urls", "needs at least one server URL")
        self.base = Path(base).absolute()
        self.urls = list(urls)
        self.extra = list(extra)
        self.kv_roster = kv_roster
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def roster(self) -> Path:
        """The roster file the nodes share."""
        return self.base / "roster.json"

    def command(self, name: str, kind: str = "full", *, server: int = 0) -> list[str]:
        """The command line of node ``name`` (JSON status lines; a witness does not join, nor a
        node on the KV roster), connecting first to ``urls[server % len(urls)]``."""
        first = server % len(self.urls)
        roster = [] if self.kv_roster else ["--roster", str(self.roster)]
        join = [] if self.kv_roster or kind == "witness" else ["--join"]
        return [
            sys.executable,
            "-m",
            "becomingone.cli",
            "node",
            "--bus",
            ",".join(self.urls[first:] + self.urls[:first]),
            "--name",
            name,
            "--data-dir",
            str(self.base / name),
            *roster,
            "--json",
            "--kind",
            kind,
            *join,
            *self.extra,
        ]

    def start(self, name: str, kind: str = "full", *, server: int = 0) -> int:
        """Start node ``name`` of ``kind`` (again, if it exited) on server ``server``; its
        pid."""
        old = self.procs.get(name)
        if old is not None and old.poll() is None:
            raise InputError("name", f"{name!r} is already running (pid {old.pid})")
        self.base.mkdir(parents=True, exist_ok=True)
        with open(self.base / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                self.command(name, kind, server=server),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.procs[name] = proc
        return proc.pid

    @property
    def pids(self) -> dict[str, int]:
        """name → pid of every process started (running or not)."""
        return {name: p.pid for name, p in self.procs.items()}

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to node ``name``; a SIGKILLed process is reaped."""
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(sig)
            if sig == signal.SIGKILL:
                proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> dict[str, int | None]:
        """SIGTERM every running node, SIGKILL those left after ``timeout`` s; exit codes."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return {name: p.returncode for name, p in self.procs.items()}

    def __enter__(self) -> NodeProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
