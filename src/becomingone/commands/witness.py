"""``becomingone witness verify|show``: check and read a cell's signed witness chain.

Rule: read-only on the data dir — the database is opened with SQLite's ``mode=ro``, no lock is
taken and the private key is never read: ``verify`` needs only ``node.pub`` (the public key
beside the chain). ``verify`` also runs SQLite's ``PRAGMA integrity_check``, and exits 1 naming
the first bad record on tampering or reporting what SQLite found on corruption. With ``--url``
both read a cell through its API instead (the cell's own process runs the same checks); a read
from beyond loopback sends the token in ``BECOMINGONE_TOKEN``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from becomingone.config import load_config
from becomingone.errors import InputError, StorageError
from becomingone.memory.store import DB_NAME, TemporalMemory
from becomingone.runtime.cell import default_data_dir
from becomingone.runtime.datadir import public_key
from becomingone.witnessing import WitnessRecord, verify

if TYPE_CHECKING:
    from becomingone.api.client import CellClient

__all__ = ["PAGE", "register"]

#: Records per API page when reading through ``--url`` (the served limit is 1,000).
PAGE = 500


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``witness`` with ``verify`` and ``show``."""
    p = sub.add_parser("witness", help="verify or show a cell's witness chain")
    inner = p.add_subparsers(dest="witness_command", metavar="ACTION")
    inner.required = True
    for name, handler, text in (
        ("verify", _verify, "integrity check + walk the whole chain; exit 1 names the first bad"),
        ("show", _show, "print the newest records"),
    ):
        q = inner.add_parser(name, help=text)
        q.add_argument("--data-dir", help="data dir (default: memory.path or ~/.becomingone)")
        q.add_argument(
            "--url",
            help="read a cell through its API (http://HOST:PORT of `up --serve` or `serve`) "
            "instead of a data dir; token for remote reads in BECOMINGONE_TOKEN",
        )
        q.add_argument(
            "--ca",
            type=Path,
            help="with an https --url: trust only this CA certificate (the cluster's ca.crt)",
        )
        q.add_argument("--config", type=Path, help="becomingone.yaml (for the key file name)")
        q.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "show":
            q.add_argument("-n", type=int, default=10, help="how many records (default 10)")
            q.add_argument("--level", choices=["micro", "meso", "macro", "meta"])
        q.set_defaults(handler=handler)


def _data_dir(args: argparse.Namespace) -> tuple[Path, str]:
    """(data dir, private key file name); a missing dir or database is a StorageError."""
    if args.data_dir is not None and not args.data_dir.strip():
        raise InputError("--data-dir", "must not be empty")
    config = load_config(args.config)
    given = Path(args.data_dir) if args.data_dir is not None else config.memory.path
    data_dir = (given or default_data_dir()).expanduser()
    if not data_dir.is_dir():
        raise StorageError(f"data dir {data_dir} does not exist")
    if not (data_dir / DB_NAME).is_file():
        raise StorageError(f"data dir {data_dir} holds no cell database ({DB_NAME})")
    return data_dir, config.security.key_file


def _client(args: argparse.Namespace) -> CellClient | None:
    """The API client of ``--url`` (None without it); ``--url`` excludes ``--data-dir``."""
    if args.url is None:
        return None
    if args.data_dir is not None:
        raise InputError("--url", "reads a cell through its API; drop --data-dir")
    from becomingone.api.client import CellClient

    url = args.url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InputError("--url", f"{args.url!r}: must be http://HOST:PORT or https://HOST:PORT")
    if args.ca is not None and not args.ca.is_file():
        raise InputError("--ca", f"{args.ca} is not a file")
    return CellClient(url, token=os.environ.get("BECOMINGONE_TOKEN") or None, ca=args.ca)


def _print_verify(args: argparse.Namespace, out: dict[str, Any]) -> int:
    """The verify report as JSON or two lines; exit 0 when the database and chain are sound."""
    if args.json:
        print(json.dumps(out))
    else:
        integrity = out["integrity"]
        print("database integrity: ok" if integrity == "ok" else f"database BROKEN: {integrity}")
        if out["chain_ok"]:
            print(f"chain verified: {out['checked']} records")
        else:
            print(
                f"chain BROKEN at record {out['first_bad']}: {out['reason']} "
                f"(checked {out['checked']})"
            )
    return 0 if out["ok"] else 1


def _verify(args: argparse.Namespace) -> int:
    client = _client(args)
    if client is not None:
        with client:
            remote = client.verify()
        return _print_verify(args, remote.model_dump())
    data_dir, key_file = _data_dir(args)
    public = public_key(data_dir, key_file)
    memory = TemporalMemory.open_read_only(data_dir / DB_NAME)
    try:
        integrity = memory.integrity_check()
        with memory.read_snapshot():
            head = memory.chain_head()
            report = verify(memory.witnesses(), public, head=head)
    except StorageError as exc:
        print(f"chain BROKEN: {exc}")
        return 1
    finally:
        memory.close()
    out = {
        "ok": report.ok and integrity == "ok",
        "integrity": integrity,
        "chain_ok": report.ok,
        "checked": report.checked,
        "first_bad": report.first_bad,
        "reason": report.reason or None,
    }
    return _print_verify(args, out)


def _show(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise InputError("-n", f"must be >= 1, got {args.n}")
    client = _client(args)
    if client is not None:
        with client:
            summaries = _newest_remote(client, args.n, args.level)
    else:
        summaries = [r.summary() for r in _newest_local(args)]
    for r in summaries:
        if args.json:
            print(json.dumps(r))
        else:
            print(
                f"#{r['seq']:<7} {r['level']:<5} {r['time']:.3f} {r['kind']:<14} "
                f"{r['payload']}  {r['hash'][:16]}"
            )
    return 0


def _newest_local(args: argparse.Namespace) -> list[WitnessRecord]:
    """The newest ``-n`` records (of ``--level``) of the data dir's chain, oldest first."""
    data_dir, _ = _data_dir(args)
    memory = TemporalMemory.open_read_only(data_dir / DB_NAME)
    try:
        total = memory.witness_count()
        return [
            r
            for r in memory.witnesses(start=0 if args.level else max(0, total - args.n))
            if args.level is None or r.level == args.level
        ][-args.n :]
    finally:
        memory.close()


def _newest_remote(client: CellClient, n: int, level: str | None) -> list[dict[str, Any]]:
    """The newest ``n`` records (of ``level``) read through the API, oldest first: pages of
    of :data:`PAGE` records from the end backwards."""
    total = client.records(0, 1).total
    found: list[dict[str, Any]] = []
    end = total
    while end > 0 and len(found) < n:
        start = max(0, end - PAGE)
        page = client.records(start, end - start).records
        found = [r.model_dump() for r in page if level is None or r.level == level] + found
        end = start
    return found[-n:]
