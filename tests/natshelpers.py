"""Real ``nats-server`` processes for tests, started through the project's own
:class:`~becomingone.transport.natsd.NatsServers` (free loopback ports, bounded readiness,
stopped by their own PIDs).

Rule: a test that needs a server takes one from here or from ``NatsServers`` directly; nothing
finds or launches the binary any other way. :func:`shared_server` is one lazily started server
per test process, for adapters built outside fixtures (the Hypothesis state machines); it is
stopped when the process exits.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from becomingone.transport.natsd import NatsServers

__all__ = ["NatsServer", "shared_server", "unique_name"]

_counter = itertools.count(1)


def unique_name(prefix: str) -> str:
    """A stream or bucket name no other test of this run uses (``[-_A-Za-z0-9]``)."""
    return f"{prefix}_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"


class NatsServer:
    """One JetStream server under ``workdir``; :meth:`stop` then :meth:`start` restarts it on
    the same store (on a fresh port: read :attr:`url` again)."""

    def __init__(self, workdir: Path) -> None:
        self.servers = NatsServers(workdir, servers=1)

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:PORT`` of the running server."""
        return self.servers.urls[0]

    def start(self) -> NatsServer:
        """Start and wait until ready."""
        self.servers.start()
        return self

    def kill(self) -> None:
        """SIGKILL the server (a crash: nothing is flushed)."""
        self.servers.kill(0)

    def stop(self) -> None:
        """Stop the server this object started (SIGTERM, then SIGKILL)."""
        self.servers.stop()


_shared: NatsServer | None = None


def shared_server() -> NatsServer:
    """The test process's shared server, started on first use, stopped (and its store removed)
    at exit."""
    global _shared
    if _shared is None:
        workdir = Path(tempfile.mkdtemp(prefix="bo-nats-"))
        server = NatsServer(workdir).start()
        _shared = server
        atexit.register(_stop_shared, server, workdir)
    return _shared


def _stop_shared(server: NatsServer, workdir: Path) -> None:
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)
