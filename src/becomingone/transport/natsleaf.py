"""A site's own ``nats-server`` linked into the cluster as a NATS leaf node (a relay's server).

Rule: like :mod:`becomingone.transport.natsd` — the environment's binary, loopback only, free
ports chosen at start, stopped by its own pid (SIGTERM, then SIGKILL after a bounded wait) —
and it dies with the process that started it (Linux ``PR_SET_PDEATHSIG``), so a relay killed
with ``-9`` leaves no server behind. The leaf server has no JetStream of its own: it is a
bridge. Its ``leafnodes.remotes`` point at the cluster's leafnode listeners
(:attr:`~becomingone.transport.natsd.ServerSpec.leaf_url`, tried in the order given); NATS
then forwards a message across the link only where the other side has interest in its
subject, so traffic between two clients of one site stays in the site. The link state is
read from the leaf server's monitoring port (``/leafz``).

Layout of the leaf dir (a relay uses ``DATA_DIR/leaf``)::

    leaf.conf, leaf.log     config and log of the leaf server

With ``tls`` (a node certificate, ``becomingone certs issue NAME``) the link presents it to a
cluster started with ``nats up --tls``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from becomingone.certs import CertKind, TlsFiles
from becomingone.errors import InputError, StorageError, TransportError
from becomingone.transport.natsd import (
    _HOST,
    _NO_PROXY,
    _POLL,
    _free_ports,
    _log_tail,
    _tls_block,
    find_nats_server,
)

__all__ = ["LeafLink", "LeafServer", "parse_leaf_urls"]

_SCHEMES = ("nats-leaf", "nats", "tls")
#: Seconds between the leaf server's attempts to link again when the cluster is unreachable.
RECONNECT = 0.5
_PR_SET_PDEATHSIG = 1


def parse_leaf_urls(urls: str | Sequence[str]) -> list[str]:
    """The cluster's leafnode URLs from ``"nats-leaf://H:P,..."`` or a list; ``InputError``
    naming ``--bus`` for an empty list, another scheme or a URL without a port."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    out = [u.strip() for u in items if u.strip()]
    if not out:
        raise InputError("--bus", "needs the cluster's leafnode URLs (nats-leaf://HOST:PORT)")
    for url in out:
        if not _is_leaf_url(url):
            raise InputError(
                "--bus",
                f"{url!r} is not a leafnode URL (nats-leaf://HOST:PORT, see `nats status`)",
            )
    return out


def _is_leaf_url(url: str) -> bool:
    """``scheme://HOST:PORT`` with a leafnode scheme (``nats-leaf``, ``nats`` or ``tls``)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number or out of range
        return False
    return parts.scheme in _SCHEMES and bool(parts.hostname) and port is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeafLink:
    """The link of a leaf server to the cluster, from its ``/leafz`` page.

    ``up`` is True while a link is established; ``hub`` names the cluster server it is linked
    to; the counts are the link's messages and bytes in (from the cluster) and out (to it).
    """

    up: bool
    hub: str | None = None
    rtt: str | None = None
    in_msgs: int = 0
    out_msgs: int = 0
    in_bytes: int = 0
    out_bytes: int = 0

    @classmethod
    def from_leafz(cls, doc: dict[str, Any]) -> LeafLink:
        """The link described by a ``/leafz`` document (down when it lists no leaf)."""
        leafs = doc.get("leafs") or []
        if not leafs:
            return cls(up=False)
        leaf = leafs[0]
        return cls(
            up=True,
            hub=str(leaf.get("name") or f"{leaf.get('ip')}:{leaf.get('port')}"),
            rtt=leaf.get("rtt"),
            in_msgs=int(leaf.get("in_msgs", 0)),
            out_msgs=int(leaf.get("out_msgs", 0)),
            in_bytes=int(leaf.get("in_bytes", 0)),
            out_bytes=int(leaf.get("out_bytes", 0)),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "up": self.up,
            "hub": self.hub,
            "rtt": self.rtt,
            "in_msgs": self.in_msgs,
            "out_msgs": self.out_msgs,
            "in_bytes": self.in_bytes,
            "out_bytes": self.out_bytes,
        }


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask the kernel to SIGTERM this child when the process that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class LeafServer:
    """A ``nats-server`` for a site, linked as a leaf node to the cluster at ``remotes``.

    Parameters
    ----------
    directory : where ``leaf.conf`` and ``leaf.log`` go (created).
    remotes : the cluster's leafnode URLs (:func:`parse_leaf_urls`).
    name : the server's name (``server_name``; shown by the cluster's ``/leafz``).
    tls : a node certificate the link presents to a TLS cluster (checked here).
    ready_timeout, stop_timeout : bounds in seconds for readiness and for SIGTERM.

    :meth:`start` returns once the site's clients can connect (the link may come later, and is
    re-established by the server whenever it drops); :attr:`url` is the site's client URL.
    After :meth:`stop`, :meth:`start` runs the server again on the same ports.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        remotes: Sequence[str],
        *,
        name: str = "leaf",
        tls: TlsFiles | None = None,
        ready_timeout: float = 20.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.remotes = parse_leaf_urls(remotes)
        if tls is not None:
            tls.check(kind=CertKind.NODE)
        for label, value in (("ready_timeout", ready_timeout), ("stop_timeout", stop_timeout)):
            if not value > 0:
                raise InputError(label, f"must be > 0 seconds, got {value!r}")
        self.dir = Path(directory).expanduser().absolute()
        self.name = name
        self.tls = tls
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        self.monitor_port = 0
        self.config = self.dir / "leaf.conf"
        self.log = self.dir / "leaf.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The site's client URL, ``nats://127.0.0.1:PORT``."""
        return f"nats://{_HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's pid while this object runs it."""
        return None if self._proc is None else self._proc.pid

    def config_text(self) -> str:
        """The leaf server's config (JSON strings are valid NATS config strings)."""
        remote = ["    dont_randomize: true", f"    urls: {json.dumps(self.remotes)}"]
        if self.tls is not None:
            remote += _tls_block(self.tls, "    ")
        return (
            "\n".join(
                [
                    f"server_name: {json.dumps(self.name)}",
                    f"listen: {json.dumps(f'{_HOST}:{self.port}')}",
                    f"http: {json.dumps(f'{_HOST}:{self.monitor_port}')}",
                    "leafnodes {",
                    f'  reconnect: "{round(RECONNECT * 1000)}ms"',
                    "  remotes: [",
                    "   {",
                    *remote,
                    "   }",
                    "  ]",
                    "}",
                ]
            )
            + "\n"
        )

    def start(self) -> str:
        """Write the config, start the server, wait until it accepts clients; the site URL.

        Raises :class:`TransportError` if it exits or is not ready in time (it is stopped
        first) and :class:`StorageError` if the directory cannot be written.
        """
        if self._proc is not None:
            raise TransportError(f"leaf server of {self.dir} already started by this object")
        binary = find_nats_server()
        first = not self.port
        if first:  # a restart keeps its ports (the site's URL stays valid) and its log
            self.port, self.monitor_port = _free_ports(2)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.config.write_text(self.config_text())
            if first:
                self.log.write_bytes(b"")
        except OSError as exc:
            raise StorageError(f"cannot write the leaf server config in {self.dir}: {exc}") from exc
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                [str(binary), "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                close_fds=True,
                preexec_fn=_die_with_parent,  # start() runs before any thread of ours
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout
        while self._monitor("varz", 1.0) is None:
            if self._proc.poll() is not None:
                raise TransportError(
                    f"leaf nats-server exited with status {self._proc.returncode}: "
                    f"{_log_tail(str(self.log))}"
                )
            if time.monotonic() > deadline:
                raise TransportError(
                    f"leaf nats-server not ready within {self.ready_timeout:g} s (see {self.log})"
                )
            time.sleep(_POLL)

    def _monitor(self, page: str, timeout: float) -> dict[str, Any] | None:
        """A monitoring page as JSON (None when the server does not answer)."""
        url = f"http://{_HOST}:{self.monitor_port}/{page}"
        try:
            with _NO_PROXY.open(url, timeout=timeout) as reply:
                doc = json.loads(reply.read())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def running(self) -> bool:
        """True while the server this object started has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def link(self, timeout: float = 1.0) -> LeafLink:
        """The link to the cluster now (down if the server does not answer)."""
        doc = self._monitor("leafz", timeout) if self.running() else None
        return LeafLink(up=False) if doc is None else LeafLink.from_leafz(doc)

    def wait_linked(self, timeout: float) -> LeafLink:
        """Until the link is up (bounded); :class:`TransportError` naming the remotes if not."""
        deadline = time.monotonic() + timeout
        while not (link := self.link()).up:
            if time.monotonic() > deadline or not self.running():
                raise TransportError(
                    f"leaf server not linked to {', '.join(self.remotes)} within {timeout:g} s: "
                    f"{_log_tail(str(self.log))}"
                )
            time.sleep(_POLL)
        return link

    def stop(self) -> int | None:
        """Stop the server this object started (SIGTERM, then SIGKILL); its exit status.

        Idempotent; None when nothing was running.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=self.stop_timeout)
        return proc.returncode

    def __enter__(self) -> LeafServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
