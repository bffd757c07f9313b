"""Serving an app on the running event loop: uvicorn's ``Server``, driven programmatically.

Rule: the API shares the cell's event loop and never owns the process — it installs no signal
handlers (the command that runs the cell owns SIGINT/SIGTERM), binds its socket itself so a
busy port is a one-line ``TransportError``, and stops within a bounded time on :meth:`aclose`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from becomingone.certs import TlsFiles
from becomingone.errors import TransportError

__all__ = ["ApiServer"]

#: Seconds ``aclose`` waits for open requests and WebSockets before it cuts them.
SHUTDOWN_SECONDS = 2


class _Server(uvicorn.Server):
    """uvicorn without its signal capture (the cell's command handles signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise TransportError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


class ApiServer:
    """``app`` listening on ``host:port`` (port 0: a free one; see :attr:`port`); HTTPS with
    ``tls`` (its certificate and key; checked by the caller, see ``api_tls``)."""

    def __init__(self, app: Any, host: str, port: int, *, tls: TlsFiles | None = None) -> None:
        self.host = host
        self.tls = tls
        ssl = {} if tls is None else {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
            timeout_graceful_shutdown=SHUTDOWN_SECONDS,
            **ssl,  # type: ignore[arg-type]
        )
        if tls is not None:
            config.load()  # reads the certificate now, so a bad file fails before listening
        self._socket = _bind(host, port)
        self.port: int = self._socket.getsockname()[1]
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (``https://`` with TLS)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://{host}:{self.port}"

    async def start(self, timeout: float = 10.0) -> None:
        """Start serving; returns once the server accepts connections."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._server.started:
            if self._task.done() or loop.time() > deadline:
                await self.aclose()
                raise TransportError(f"the API did not start on {self.url}")
            await asyncio.sleep(0.01)

    async def aclose(self) -> None:
        """Stop serving (open connections get :data:`SHUTDOWN_SECONDS` to finish)."""
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, SystemExit, Exception):
                await asyncio.wait_for(self._task, SHUTDOWN_SECONDS + 3.0)
            self._task = None
        self._socket.close()

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
