"""NATS bus: a :class:`~becomingone.transport.Bus` on ``nats-py``, one client connection.

Rule: the same contract as :class:`~becomingone.transport.MemoryBus` — fire-and-forget publish,
one bounded queue per subscription, a full queue drops the message and counts it (publishers
never block) — on real ``nats-server`` processes. Every ``nats-py`` error is translated into
:class:`~becomingone.errors.TransportError` here, at the boundary; bad arguments are
:class:`~becomingone.errors.InputError`.

Subjects (NATS tokens separated by dots, no spaces or wildcards when publishing)::

    ssep.<cluster>.<node>       SSEP packets of one node of one cluster (as in the in-process
                                cluster; a node subscribes to the subjects of its peers)

Later steps add their subjects under the same cluster token (for example a per-level prefix for
topology levels); a subscriber may use NATS wildcards (``ssep.<cluster>.*``).

Delivery and faults:

- ``publish`` hands the message to the client's outgoing buffer and returns (no round trip).
- The client is given every server URL in order (``dont_randomize``); when its server goes
  away it reconnects to the next one, at most ``max_reconnect_attempts`` times per server.
  While it reconnects, publishes are buffered in memory (up to ``reconnect_buffer`` bytes) and
  sent after the reconnect; a publish that does not fit, or any call once the client gave up
  and closed, raises :class:`TransportError`. Messages sent to a subscriber while it was
  disconnected are lost (NATS core is at-most-once).
- ``stats`` counts ``published``, ``delivered`` (into this connection's subscriptions),
  ``dropped_full`` (a subscription's queue was full), ``slow_consumer`` (the client library's
  own per-subscription buffer overflowed), ``disconnects``, ``reconnects`` and ``errors``.

TLS: ``connect_nats(..., tls=...)`` takes an :class:`ssl.SSLContext` or a
:class:`~becomingone.certs.TlsFiles` (the cluster CA, this node's certificate and key, checked
by :mod:`becomingone.certs` before any connection: an expired or foreign certificate is an
:class:`~becomingone.errors.InputError`). A server that refuses the handshake (no client
certificate, one from another CA) is a :class:`TransportError` saying TLS.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSub

from becomingone.certs import TlsFiles
from becomingone.errors import InputError, TransportError
from becomingone.transport.base import QueuedSubscription

__all__ = ["NatsBus", "NatsSubscription", "connect_nats"]

#: Bytes of publishes kept while reconnecting (nats-py's ``pending_size``).
RECONNECT_BUFFER = 8 * 1024 * 1024


def _check_subject(subject: str, *, wildcards: bool) -> None:
    if not isinstance(subject, str) or not subject:
        raise InputError("subject", f"must be a non-empty string, got {subject!r}")
    if any(c.isspace() for c in subject) or "" in subject.split("."):
        raise InputError("subject", f"must be dot-separated tokens without spaces: {subject!r}")
    if not wildcards and ("*" in subject or ">" in subject):
        raise InputError("subject", f"a publish subject has no wildcards: {subject!r}")


class NatsSubscription(QueuedSubscription):
    """A bounded queue of the messages of one subject on one :class:`NatsBus` connection."""

    def __init__(self, bus: NatsBus, subject: str, maxsize: int) -> None:
        super().__init__(subject, maxsize)
        self._bus = bus
        self._sub: NatsSub | None = None

    async def _on_msg(self, msg: Msg) -> None:
        """nats-py's callback: queue the payload, or drop and count it when the queue is full."""
        if not self.active:
            return
        if self._offer(msg.data):
            self._bus.stats["delivered"] += 1
        else:
            self._bus.stats["dropped_full"] += 1

    async def unsubscribe(self) -> None:
        """Stop receiving (messages still in flight are discarded)."""
        if not self.active:
            return
        self.active = False
        self._bus._subs.discard(self)
        sub, self._sub = self._sub, None
        if sub is not None and not self._bus.closed:
            try:
                await sub.unsubscribe()
            except nats.errors.Error as exc:
                raise TransportError(f"unsubscribe {self.subject!r}: {exc}") from exc


class NatsBus:
    """One client connection to a NATS server or cluster; make one with :func:`connect_nats`.

    Parameters
    ----------
    name : connection name (shown by the server's monitoring pages).
    maxsize : capacity of each subscription's queue (as :class:`MemoryBus`).
    """

    def __init__(self, *, name: str, maxsize: int = 1024) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InputError("name", f"must be a non-empty string, got {name!r}")
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise InputError("maxsize", f"must be an integer >= 1, got {maxsize!r}")
        self.name = name
        self.maxsize = maxsize
        self.stats: Counter[str] = Counter()
        self._nc = Client()
        self._subs: set[NatsSubscription] = set()
        self._last_error: Exception | None = None  # what a failed first connect really hit
        self._connecting = False
        self._error_callbacks: list[Callable[[Exception], None]] = []

    @property
    def client(self) -> Client:
        """The ``nats-py`` client of this connection (JetStream on the same connection)."""
        return self._nc

    def on_error(self, callback: Callable[[Exception], None]) -> None:
        """Also hand every asynchronous error the connection reports (a server's permission
        violation, for one) to ``callback``."""
        self._error_callbacks.append(callback)

    @property
    def closed(self) -> bool:
        """True once the connection is closed (by :meth:`aclose` or after reconnects failed)."""
        return bool(self._nc.is_closed)

    @property
    def connected_url(self) -> str | None:
        """The server this client is connected to now (``None`` while disconnected)."""
        url = self._nc.connected_url
        return None if url is None or not self._nc.is_connected else url.geturl()

    async def _connect(
        self,
        urls: Sequence[str],
        *,
        connect_timeout: float,
        max_reconnect_attempts: int,
        reconnect_time_wait: float,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        # nats-py annotates these seconds as int; it uses them as asyncio timeouts (floats).
        seconds: dict[str, Any] = {
            "connect_timeout": connect_timeout,
            "reconnect_time_wait": reconnect_time_wait,
        }
        budget = 2 * len(urls) * (3 * connect_timeout + reconnect_time_wait) + connect_timeout
        self._connecting = True
        try:
            async with asyncio.timeout(budget):  # a bound even if nats-py hangs (see _abandon)
                await self._nc.connect(
                    servers=list(urls),
                    name=self.name,
                    dont_randomize=True,
                    allow_reconnect=True,
                    # nats-py spends the whole reconnect budget on the first connect too: try each
                    # server twice there, then allow the full budget for later reconnects.
                    max_reconnect_attempts=1,
                    pending_size=RECONNECT_BUFFER,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnect,
                    reconnected_cb=self._on_reconnect,
                    tls=tls,
                    **seconds,
                )
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            await self._abandon()
            retried = isinstance(exc, nats.errors.NoServersError | TimeoutError)
            cause = (self._last_error if retried else None) or exc
            raise TransportError(_connect_failure(urls, cause, tls=tls is not None)) from exc
        finally:
            self._connecting = False
        self._nc.options["max_reconnect_attempts"] = max_reconnect_attempts

    async def _abandon(self) -> None:
        """Close a client whose first connect failed.

        nats-py 2.16 closes a failed connection by waiting for its stream to close; after a
        failed TLS upgrade (``start_tls`` already closed the socket under another protocol)
        that wait never ends. Close the transport here and detach it so the wait is skipped.
        """
        transport, self._nc._transport = self._nc._transport, None
        if transport is not None:
            transport.close()  # type: ignore[no-untyped-call]
        await self._nc.close()

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = exc
        for callback in self._error_callbacks:
            callback(exc)
        if self._connecting and isinstance(exc, ssl.SSLError):
            self.stats["errors"] += 1
            raise exc  # a certificate that failed verification fails again: stop retrying
        if isinstance(exc, nats.errors.SlowConsumerError):
            self.stats["slow_consumer"] += 1
        else:
            self.stats["errors"] += 1

    async def _on_disconnect(self) -> None:
        self.stats["disconnects"] += 1

    async def _on_reconnect(self) -> None:
        self.stats["reconnects"] += 1

    async def publish(self, subject: str, data: bytes) -> None:
        """Send ``data`` to every current subscriber of ``subject`` (fire and forget)."""
        await self.publish_many(((subject, data),))

    async def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """Publish each ``(subject, data)`` in order; all are checked before any is sent."""
        batch = list(messages)
        for subject, data in batch:
            _check_subject(subject, wildcards=False)
            if not isinstance(data, bytes | bytearray | memoryview):
                raise InputError("data", f"must be bytes, got {type(data).__name__}")
        publish = self._nc.publish
        try:
            for subject, data in batch:
                await publish(subject, bytes(data))
        except nats.errors.Error as exc:
            raise TransportError(f"publish on {self.name!r}: {exc or type(exc).__name__}") from exc
        self.stats["published"] += len(batch)

    async def subscribe(self, subject: str) -> NatsSubscription:
        """Start receiving ``subject``; returns once the server has registered the interest."""
        _check_subject(subject, wildcards=True)
        sub = NatsSubscription(self, subject, self.maxsize)
        try:
            sub._sub = await self._nc.subscribe(
                subject, cb=sub._on_msg, pending_msgs_limit=max(self.maxsize, 1024)
            )
        except (nats.errors.Error, TimeoutError) as exc:
            raise TransportError(f"subscribe {subject!r}: {exc or type(exc).__name__}") from exc
        await self._round_trip(asyncio.get_running_loop().time() + 5.0)
        self._subs.add(sub)
        return sub

    async def _round_trip(self, deadline: float) -> None:
        """PING/PONG with the server after everything sent so far: a barrier.

        nats-py writes its PING straight to the socket while earlier SUB/PUB commands may still
        wait in its pending buffer for the flusher task, so a bare ``flush()`` can return before
        the server has seen them (a subscription missed the next publishes about 1 time in 25
        in our tests). So first wait, bounded, until the buffer has been written.
        """
        loop = asyncio.get_running_loop()
        while self._nc.pending_data_size > 0 and self._nc.is_connected:
            if loop.time() > deadline:
                raise TransportError(f"flush on {self.name!r}: pending data not written in time")
            await asyncio.sleep(0)
        try:
            left = max(deadline - loop.time(), 0.001)
            await self._nc.flush(timeout=left)  # type: ignore[arg-type]  # seconds, float
        except (nats.errors.Error, TimeoutError) as exc:
            raise TransportError(f"flush on {self.name!r}: {exc or type(exc).__name__}") from exc

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until the server has everything published so far (one round trip) and every
        message that reached this connection before that round trip is in its subscription's
        queue (nats-py hands messages to the queues from tasks of its own)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self._round_trip(deadline)
        while any(s._sub is not None and s._sub.pending_msgs for s in self._subs):
            if loop.time() > deadline:
                raise TransportError(f"flush on {self.name!r}: messages still pending")
            await asyncio.sleep(0.001)

    async def aclose(self) -> None:
        """Close the connection and its subscriptions (idempotent)."""
        for sub in list(self._subs):
            sub.active = False
        self._subs.clear()
        if not self._nc.is_closed:
            try:
                await self._nc.close()
            except nats.errors.Error as exc:
                raise TransportError(f"close {self.name!r}: {exc}") from exc


#: What the usual TLS alerts mean here (OpenSSL reason code → explanation).
_TLS_REASONS = {
    "CERTIFICATE_REQUIRED": ": the server requires a client certificate",
    "UNKNOWN_CA": ": the server does not trust this client certificate (another CA?)",
    "BAD_CERTIFICATE": ": the server refused this client certificate",
    "CERTIFICATE_VERIFY_FAILED": ": the server's certificate is not signed by the given CA",
}


def _connect_failure(urls: Sequence[str], exc: BaseException, *, tls: bool) -> str:
    """One line saying why a first connect failed (naming TLS when the handshake was refused)."""
    where = ", ".join(urls)
    if isinstance(exc, ssl.SSLError) and not tls:
        return (
            f"cannot connect to {where}: the server requires TLS with a client certificate, "
            f"and none was given ({exc.reason or exc})"
        )
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or exc)
        meaning = next((text for key, text in _TLS_REASONS.items() if key in reason), "")
        return f"cannot connect to {where}: TLS handshake failed{meaning} ({reason})"
    if tls and isinstance(exc, ConnectionError | nats.errors.UnexpectedEOF):
        return (
            f"cannot connect to {where}: the server closed the TLS connection (it requires a "
            "client certificate signed by its CA)"
        )
    detail = exc or type(exc).__name__
    if not tls and "tls" in str(detail).lower():
        return f"cannot connect to {where}: the server requires TLS ({detail})"
    return f"cannot connect to {where}: {detail}"


class _SslEofNoise(logging.Filter):
    """Drops one asyncio warning that every close of a nats-py TLS connection logs.

    nats-py reads TLS through an ``asyncio.StreamReaderProtocol``, whose ``eof_received``
    returns True; asyncio's SSL layer then warns "returning true from eof_received() has no
    effect when using ssl" each time a server closes. It means nothing here; every other
    asyncio record passes.
    """

    MESSAGE = "returning true from eof_received() has no effect when using ssl"

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.MESSAGE


def _client_context(tls: ssl.SSLContext | TlsFiles | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    if isinstance(tls, TlsFiles):
        tls = tls.client_context()
    if not isinstance(tls, ssl.SSLContext):
        raise InputError("tls", f"must be an ssl.SSLContext or TlsFiles, got {type(tls).__name__}")
    asyncio_logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _SslEofNoise) for f in asyncio_logger.filters):
        asyncio_logger.addFilter(_SslEofNoise())
    return tls


async def connect_nats(
    urls: Sequence[str] | str,
    *,
    name: str,
    maxsize: int = 1024,
    connect_timeout: float = 2.0,
    max_reconnect_attempts: int = 60,
    reconnect_time_wait: float = 0.25,
    tls: ssl.SSLContext | TlsFiles | None = None,
) -> NatsBus:
    """A :class:`NatsBus` connected to the first reachable server of ``urls``.

    Parameters
    ----------
    urls : server URLs (``nats://127.0.0.1:4222``), tried in this order; a string may hold
        several, comma-separated.
    name : connection name.
    maxsize : capacity of each subscription's queue.
    connect_timeout : seconds per connection attempt.
    max_reconnect_attempts : reconnect attempts per server before the client gives up and
        closes (every later call raises :class:`TransportError`).
    reconnect_time_wait : seconds between two attempts on the same server.
    tls : a client TLS context, or the files to build one from (:meth:`TlsFiles.named`:
        the cluster CA, this node's certificate and key, checked before connecting). Needed
        for servers started with TLS (``tls://`` URLs).
    """
    servers = [u.strip() for u in urls.split(",")] if isinstance(urls, str) else list(urls)
    if not servers or not all(u and u.startswith(("nats://", "tls://")) for u in servers):
        raise InputError("urls", f"must be nats://HOST:PORT URLs, got {urls!r}")
    for label, value in (
        ("connect_timeout", connect_timeout),
        ("reconnect_time_wait", reconnect_time_wait),
    ):
        if not (math.isfinite(value) and value > 0):
            raise InputError(label, f"must be a finite number > 0, got {value!r}")
    if isinstance(max_reconnect_attempts, bool) or not (
        isinstance(max_reconnect_attempts, int) and max_reconnect_attempts >= 1
    ):
        raise InputError(
            "max_reconnect_attempts", f"must be an integer >= 1, got {max_reconnect_attempts!r}"
        )
    context = _client_context(tls)
    bus = NatsBus(name=name, maxsize=maxsize)
    await bus._connect(
        servers,
        connect_timeout=connect_timeout,
        max_reconnect_attempts=max_reconnect_attempts,
        reconnect_time_wait=reconnect_time_wait,
        tls=context,
    )
    return bus
