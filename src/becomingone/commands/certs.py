"""``becomingone certs init|issue|list``: the cluster CA and the certificates of servers and nodes.

Rule: argument handling and printing only; certificates are made and checked by
:mod:`becomingone.certs`. Files live in ``--dir`` (default ``DATA_DIR/certs``, that is
``~/.becomingone/certs``); private keys are written 0600 and never printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from becomingone.certs import (
    CA_DAYS,
    NODE_DAYS,
    CertInfo,
    TlsFiles,
    check_name,
    init_ca,
    issue_certificate,
    list_certificates,
)
from becomingone.errors import InputError
from becomingone.runtime.cell import default_data_dir

__all__ = ["add_tls_options", "certs_dir", "register", "tls_files"]


def certs_dir(value: str | None) -> Path:
    """The certificates directory: ``value``, or ``DATA_DIR/certs`` when it is ``None``."""
    if value is not None and not value.strip():
        raise InputError("--dir", "must not be empty")
    folder = Path(value) if value is not None else default_data_dir() / "certs"
    return folder.expanduser().absolute()


def add_tls_options(parser: argparse.ArgumentParser, cert_default: str) -> None:
    """``--certs DIR`` and ``--cert NAME``: the client certificate of a command that connects
    to TLS servers (the same two options on every such command)."""
    parser.add_argument(
        "--certs",
        help="certificates directory (ca.crt, NAME.crt, NAME.key as `certs issue` writes them): "
        "connect with mutual TLS",
    )
    parser.add_argument("--cert", help=f"certificate name in --certs (default: {cert_default})")


def tls_files(args: argparse.Namespace, default_name: str) -> TlsFiles | None:
    """The client certificate ``--certs``/``--cert`` name (``None`` without ``--certs``);
    the files are checked when the connection is made."""
    if args.certs is None:
        if args.cert is not None:
            raise InputError("--cert", "only with --certs DIR")
        return None
    name = args.cert if args.cert is not None else default_name
    try:
        check_name(name)
    except InputError as exc:
        raise InputError("--cert", exc.message) from None
    return TlsFiles.named(certs_dir(args.certs), name)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``certs`` with ``init``, ``issue`` and ``list``."""
    p = sub.add_parser("certs", help="the cluster CA and server/node certificates (for TLS)")
    inner = p.add_subparsers(dest="certs_command", metavar="ACTION")
    inner.required = True
    q = inner.add_parser("init", help="create the cluster CA (ca.crt, ca.key)")
    q.add_argument("--days", default=str(CA_DAYS), help=f"validity in days (default {CA_DAYS})")
    q.add_argument("--force", action="store_true", help="replace an existing CA")
    q.set_defaults(handler=_init)
    q = inner.add_parser("issue", help="issue NAME.crt and NAME.key signed by the CA")
    q.add_argument("name", metavar="NAME", help="node name (the certificate's CN) or server name")
    q.add_argument("--server", action="store_true", help="a server certificate (nats up --tls)")
    q.add_argument(
        "--admin",
        action="store_true",
        help="an admin client certificate: may write the roster (becomingone roster add)",
    )
    q.add_argument(
        "--cluster",
        help="bind a node certificate to this cluster: servers started with `nats up --tls "
        "--cluster NAME` let it write the cluster's glyph records and consensus log "
        "(node --glyphs/--roles)",
    )
    q.add_argument(
        "--host",
        action="append",
        default=[],
        help="extra IP or DNS name of a --server certificate (repeatable; 127.0.0.1, ::1 and "
        "localhost are always in)",
    )
    q.add_argument("--days", default=str(NODE_DAYS), help=f"validity in days (default {NODE_DAYS})")
    q.add_argument("--force", action="store_true", help="replace NAME's certificate (rotation)")
    q.set_defaults(handler=_issue)
    q = inner.add_parser("list", help="show every certificate: usage, not-after, state, SHA-256")
    q.add_argument("--json", action="store_true", help="one JSON object per certificate")
    q.set_defaults(handler=_list)
    for parser in inner.choices.values():
        parser.add_argument("--dir", help="certificates directory (default ~/.becomingone/certs)")


def _days(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InputError("--days", f"must be an integer, got {value!r}") from None


def _describe(info: CertInfo) -> str:
    return (
        f"{info.name}: {info.subject} ({info.kind.value}: {info.usage}) "
        f"not after {info.not_after:%Y-%m-%d %H:%M} UTC, sha256 {info.fingerprint[:16]}…"
    )


def _init(args: argparse.Namespace) -> int:
    info = init_ca(certs_dir(args.dir), days=_days(args.days), force=args.force)
    print(_describe(info))
    print(f"wrote {info.path} and {info.path.with_suffix('.key')} (0600)")
    return 0


def _issue(args: argparse.Namespace) -> int:
    info = issue_certificate(
        certs_dir(args.dir),
        args.name,
        server=args.server,
        admin=args.admin,
        hosts=args.host,
        cluster=args.cluster,
        days=_days(args.days),
        force=args.force,
    )
    print(_describe(info))
    print(f"wrote {info.path} and {info.path.with_suffix('.key')} (0600)")
    return 0


def _list(args: argparse.Namespace) -> int:
    infos = list_certificates(certs_dir(args.dir))
    if args.json:
        for info in infos:
            print(json.dumps(info.to_json()))
        return 0 if all(i.state == "valid" for i in infos) else 1
    rows = [("NAME", "KIND", "USAGE", "NOT AFTER (UTC)", "STATE", "SUBJECT", "SHA-256")]
    rows += [
        (
            i.name,
            i.kind.value,
            i.usage,
            f"{i.not_after:%Y-%m-%d %H:%M}",
            i.state,
            i.subject,
            i.fingerprint,
        )
        for i in infos
    ]
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    return 0 if all(i.state == "valid" for i in infos) else 1
