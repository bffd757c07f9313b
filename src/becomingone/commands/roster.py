"""``becomingone roster add|remove|list``: the members of a cluster, in its JetStream KV bucket.

Rule: argument handling and printing only; the bucket is read and written by
:class:`~becomingone.transport.roster_kv.RosterBucket`. With TLS (``--certs``) the servers
let only an admin certificate (``certs issue NAME --admin``; ``--cert`` defaults to ``admin``)
write; without TLS the bucket is unprotected, and every write says so on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from becomingone.commands.certs import add_tls_options, tls_files
from becomingone.config import load_config
from becomingone.errors import InputError
from becomingone.keys import PUBLIC_KEY_BYTES, read_public_key
from becomingone.transport.roster_kv import DEV_MODE_WARNING, RosterBucket

__all__ = ["register"]

#: Certificate ``--cert`` names by default: the admin's.
ADMIN_CERT = "admin"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``roster`` with ``add``, ``remove`` and ``list``."""
    p = sub.add_parser("roster", help="the members of a cluster (JetStream KV; admins write)")
    inner = p.add_subparsers(dest="roster_command", metavar="ACTION")
    inner.required = True
    q = inner.add_parser("add", help="add a node, or replace its key (rotation)")
    q.add_argument("name", metavar="NAME", help="the node id")
    q.add_argument(
        "--pub", required=True, help="the node's public key: its node.pub file or 64 hex digits"
    )
    q.add_argument(
        "--replicas", type=int, default=1, help="replicas of a new bucket (3 on 3 servers)"
    )
    q.set_defaults(handler=_add)
    q = inner.add_parser("remove", help="remove a node (its packets are rejected from then on)")
    q.add_argument("name", metavar="NAME", help="the node id")
    q.set_defaults(handler=_remove)
    q = inner.add_parser("list", help="show every member and its public key")
    q.add_argument("--json", action="store_true", help="one JSON object")
    q.set_defaults(handler=_list)
    for parser in inner.choices.values():
        parser.add_argument("--bus", required=True, help="NATS server URLs: nats://HOST:PORT[,...]")
        parser.add_argument("--cluster", help="cluster name (default: cluster.name of --config)")
        parser.add_argument("--config", type=Path, help="becomingone.yaml (its cluster.name)")
        add_tls_options(parser, ADMIN_CERT)


def _public_key(value: str) -> bytes:
    """``--pub``: 64 hex digits, or a ``node.pub`` file."""
    text = value.strip()
    if len(text) == 2 * PUBLIC_KEY_BYTES and all(c in "0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text)
    path = Path(value).expanduser()
    if not path.is_file():
        raise InputError("--pub", f"neither 64 hex digits nor a file: {value!r}")
    try:
        return read_public_key(path)
    except InputError as exc:
        raise InputError("--pub", exc.message) from None


def _cluster(args: argparse.Namespace) -> str:
    if args.cluster is not None:
        return str(args.cluster)
    return load_config(args.config).cluster.name


def _session(args: argparse.Namespace, work: Callable[[RosterBucket], Awaitable[Any]]) -> Any:
    """Connect (with the admin certificate when ``--certs``), run ``work``, close."""
    tls = tls_files(args, ADMIN_CERT)

    async def main() -> Any:
        bucket = await RosterBucket.connect(args.bus, cluster=_cluster(args), tls=tls)
        try:
            return await work(bucket)
        finally:
            await bucket.aclose()

    if tls is None and args.roster_command != "list":
        print(DEV_MODE_WARNING, file=sys.stderr, flush=True)
    return asyncio.run(main())


def _add(args: argparse.Namespace) -> int:
    key = _public_key(args.pub)
    if not 1 <= args.replicas <= 5:
        raise InputError("--replicas", f"must be 1 to 5, got {args.replicas}")

    async def work(bucket: RosterBucket) -> tuple[str, bytes | None]:
        old = await bucket.put(args.name, key, replicas=args.replicas)
        return bucket.bucket, old

    bucket, old = _session(args, work)
    if old is None:
        print(f"added {args.name} {key.hex()} to {bucket}")
    elif old == key:
        print(f"{args.name} {key.hex()} already in {bucket}")
    else:
        print(f"replaced {args.name} {old.hex()} -> {key.hex()} in {bucket}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    async def work(bucket: RosterBucket) -> tuple[str, bytes]:
        return bucket.bucket, await bucket.remove(args.name)

    bucket, old = _session(args, work)
    print(f"removed {args.name} {old.hex()} from {bucket}")
    return 0


def _list(args: argparse.Namespace) -> int:
    async def work(bucket: RosterBucket) -> tuple[str, dict[str, str]]:
        roster = await bucket.members()
        return bucket.bucket, {n: k.hex() for n, k in roster.items()}

    bucket, members = _session(args, work)
    if args.json:
        print(json.dumps({"bucket": bucket, "members": members}))
        return 0
    if not members:
        print(f"{bucket}: no members")
    for name, key in members.items():
        print(f"{name}  {key}")
    return 0
