"""``becomingone nats up|down|status``: nats-server processes on this machine, for a cluster.

Rule: argument handling and printing only; the servers are
:class:`becomingone.transport.natsd.NatsServers`. ``up`` leaves them running detached (a
session of their own) and exits; ``down`` and ``status`` find them through
``DATA_DIR/nats/state.json`` and touch only processes that are still our ``nats-server``;
``status`` also shows each server's leafnode URL (where a relay node links).
``up --tls`` uses the server certificate ``nats`` of a certificates directory (``becomingone
certs issue nats --server``): clients and routes then need a certificate of the same CA.
``up --tls --cluster NAME`` (repeatable) also lets node certificates bound to NAME (``certs
issue N --cluster NAME``) write that cluster's glyph records and consensus log
(:func:`becomingone.runtime.node_grants.cluster_grant`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from becomingone.certs import TlsFiles
from becomingone.commands.certs import certs_dir
from becomingone.errors import InputError
from becomingone.runtime.cell import default_data_dir
from becomingone.runtime.node_grants import cluster_grant
from becomingone.transport.natsd import MAX_SERVERS, NatsServers, server_status, stop_servers

__all__ = ["SERVER_CERT", "register"]

#: Name of the server certificate ``nats up --tls`` uses (``certs issue nats --server``).
SERVER_CERT = "nats"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``nats`` with ``up``, ``down`` and ``status``."""
    p = sub.add_parser("nats", help="start, stop or show nats-server processes on loopback")
    inner = p.add_subparsers(dest="nats_command", metavar="ACTION")
    inner.required = True
    for name, handler, text in (
        ("up", _up, "start 1 server or a cluster with JetStream; print the URLs and exit"),
        ("down", _down, "stop the servers `nats up` started (by pid)"),
        ("status", _status, "show the servers of the data dir; exit 1 unless all run"),
    ):
        q = inner.add_parser(name, help=text)
        q.add_argument("--data-dir", help="data dir (default ~/.becomingone); files in DIR/nats")
        if name == "up":
            q.add_argument(
                "--servers",
                default="1",
                help=f"how many servers, 1 to {MAX_SERVERS} (default 1; 3 for a cluster)",
            )
            q.add_argument(
                "--tls",
                action="store_true",
                help="require TLS with client certificates (clients and routes); tls:// URLs",
            )
            q.add_argument(
                "--certs",
                help="certificates dir with ca.crt and the server certificate nats.crt "
                "(default DATA_DIR/certs)",
            )
            q.add_argument(
                "--cluster",
                action="append",
                default=[],
                help="with --tls: node certificates bound to this cluster (certs issue N "
                "--cluster NAME) may write its glyph records and consensus log, for node "
                "--glyphs/--roles (repeatable)",
            )
        if name == "status":
            q.add_argument("--json", action="store_true", help="machine-readable output")
        q.set_defaults(handler=handler)


def _nats_dir(args: argparse.Namespace) -> Path:
    if args.data_dir is not None and not args.data_dir.strip():
        raise InputError("--data-dir", "must not be empty")
    data_dir = Path(args.data_dir) if args.data_dir is not None else default_data_dir()
    return data_dir.expanduser().absolute()


def _up(args: argparse.Namespace) -> int:
    try:
        count = int(args.servers)
    except ValueError:
        raise InputError("--servers", f"must be an integer, got {args.servers!r}") from None
    if not 1 <= count <= MAX_SERVERS:
        raise InputError("--servers", f"must be 1 to {MAX_SERVERS}, got {count}")
    data_dir = _nats_dir(args)
    tls = None
    if args.certs is not None and not args.tls:
        raise InputError("--certs", "only with --tls")
    if args.cluster and not args.tls:
        raise InputError("--cluster", "only with --tls (without it any client may write)")
    try:
        grants = [cluster_grant(name) for name in dict.fromkeys(args.cluster)]
    except InputError as exc:
        raise InputError("--cluster", exc.message) from None
    if args.tls:
        folder = certs_dir(args.certs) if args.certs is not None else data_dir / "certs"
        tls = TlsFiles.named(folder, SERVER_CERT)
        if not tls.cert.exists():
            raise InputError(
                "--certs",
                f"no server certificate {tls.cert}: run `becomingone certs issue {SERVER_CERT} "
                f"--server --dir {folder}`",
            )
    servers = NatsServers(data_dir, servers=count, tls=tls, grants=grants)
    for url in servers.start(detach=True):
        print(url)
    return 0


def _down(args: argparse.Namespace) -> int:
    directory = _nats_dir(args) / "nats"
    found = stop_servers(directory)
    if not found:
        print(f"no nats servers recorded in {directory}")
    for s in found:
        note = "stopped" if s.state == "stopped" else "stale: not our nats-server, not signalled"
        print(f"{s.name} pid {s.pid} {s.url} {note}")
    return 0


def _status(args: argparse.Namespace) -> int:
    directory = _nats_dir(args) / "nats"
    found = server_status(directory)
    if args.json:
        print(json.dumps({"dir": str(directory), "servers": [s.to_json() for s in found]}))
    elif not found:
        print(f"no nats servers recorded in {directory}")
    for s in found if not args.json else ():
        leaf = f" leaf {s.leaf_url}" if s.leaf_url else ""
        print(f"{s.name} pid {s.pid} {s.url} {s.state}{leaf}")
    return 0 if found and all(s.state == "running" for s in found) else 1
