"""Real ``nats-server`` processes for tests, started through the project's own
:class:`~becomingone.transport.natsd.NatsServers` (free loopback ports, bounded readiness,
stopped by their own PIDs).

Rule: a test that needs a server takes one from here or from ``NatsServers`` directly; nothing
finds or launches the binary any other way. :func:`shared_server` is one lazily started server
per test process, for adapters built outside fixtures (the Hypothesis state machines); it is
stopped when the process exits.
:class:`TcpProxy` forwards TCP on loopback and can be cut and healed (a network partition
between two servers); :func:`routed_to` and :func:`route_links` read a server's routes from
its monitoring port.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import json
import os
import shutil
import socket
import tempfile
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from becomingone.runtime.launcher import NodeProcesses
from becomingone.transport.natsd import NatsServers
from tests.helpers import gone

__all__ = [
    "NatsServer",
    "TcpProxy",
    "route_links",
    "routed_to",
    "shared_server",
    "unique_name",
]

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


def routed_to(monitor_port: int) -> set[str]:
    """Names of the servers a server has routes to now (its ``/routez`` page), or an empty
    set when it does not answer."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{monitor_port}/routez", timeout=2.0) as reply:
            routes = json.loads(reply.read()).get("routes") or []
    except (OSError, ValueError):
        return set()
    return {str(r.get("remote_name")) for r in routes}


def route_links(monitor_port: int) -> list[tuple[str, bool, int]]:
    """Each route of a server now (its ``/routez``): the remote server's name, whether this
    server solicited it, and the remote port it is connected to (for an accepted route: the
    port the connection came from)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{monitor_port}/routez", timeout=2.0) as reply:
        routes = json.loads(reply.read()).get("routes") or []
    return [(str(r["remote_name"]), bool(r.get("did_solicit")), int(r["port"])) for r in routes]


class TcpProxy:
    """A TCP proxy on ``127.0.0.1``, run by an asyncio loop on a thread of its own (so it keeps
    forwarding while the test blocks, e.g. in :meth:`NatsServers.start`).

    It listens on one port, fixed at construction (:attr:`port`), and forwards each connection
    to ``127.0.0.1:target()`` (asked per connection, so the target may be chosen after the
    proxy). :meth:`cut` closes the listener and aborts every forwarded connection (both ends
    see a reset, as when a link fails); :meth:`heal` listens on the same port again. Use as a
    context manager: the loop and thread end on exit.
    """

    def __init__(self, target: Callable[[], int]) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.target = target
        self.connections = 0
        #: Local ports of the connections it opened upstream (what the target sees as the
        #: peer's port, e.g. in a server's ``/routez``).
        self.upstream_ports: set[int] = set()
        self._cuts = 0
        self._links: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _call(self, make: Callable[[], object]) -> None:
        future = asyncio.run_coroutine_threadsafe(make(), self._loop)  # type: ignore[arg-type]
        future.result(timeout=10.0)

    def heal(self) -> TcpProxy:
        """Listen (again) and forward new connections."""
        self._call(self._listen)
        return self

    def cut(self) -> None:
        """Stop listening and abort every connection it forwards."""
        self._call(self._cut)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._forward, "127.0.0.1", self.port, reuse_address=True
            )

    async def _cut(self) -> None:
        self._cuts += 1
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A connection accepted before a cut must not survive it: a cut may land while the
        # upstream connection is still being opened, so the cut count is checked after it.
        cuts = self._cuts
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target())
        except OSError:
            writer.transport.abort()
            return
        if self._cuts != cuts or self._server is None:
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self.connections += 1
        self.upstream_ports.add(int(up_writer.get_extra_info("sockname")[1]))
        self._links |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._links.discard(w)
                w.transport.abort()

    def close(self) -> None:
        """Cut, end every forwarding task, then the loop and its thread."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._shutdown)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10.0)
            if not self._thread.is_alive():
                self._loop.close()

    async def _shutdown(self) -> None:
        await self._cut()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until EOF or an error on either side."""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


@contextlib.contextmanager
def node_cluster(base: Path, flags: list[str]) -> Iterator[tuple[NatsServers, NodeProcesses]]:
    """A nats-server and a node launcher on it (node ``flags``); every node and the server
    stopped by pid afterwards, and checked gone."""
    with NatsServers(base, servers=1) as servers:
        procs = NodeProcesses(base / "nodes", servers.urls, flags)
        try:
            yield servers, procs
        finally:
            procs.stop()
            assert all(gone(pid) for pid in procs.pids.values())
    assert all(gone(pid) for pid in servers.pids)
