"""``becomingone witness verify|show``: check and read a cell's signed witness chain.

Rule: read-only on the data dir — the database is opened with SQLite's ``mode=ro``, no lock is
taken and the private key is never read: ``verify`` needs only ``node.pub`` (the public key
beside the chain). ``verify`` also runs SQLite's ``PRAGMA integrity_check``, and exits 1 naming
the first bad record on tampering or reporting what SQLite found on corruption.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from becomingone.config import load_config
from becomingone.errors import InputError, StorageError
from becomingone.memory.store import DB_NAME, TemporalMemory
from becomingone.runtime.cell import default_data_dir
from becomingone.runtime.datadir import public_key
from becomingone.witnessing import verify

__all__ = ["register"]


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


def _verify(args: argparse.Namespace) -> int:
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
    ok = report.ok and integrity == "ok"
    if args.json:
        out = {"ok": ok, "integrity": integrity, "chain_ok": report.ok, "checked": report.checked}
        print(json.dumps(out | {"first_bad": report.first_bad, "reason": report.reason}))
    else:
        print("database integrity: ok" if integrity == "ok" else f"database BROKEN: {integrity}")
        print(str(report) if report.ok else f"chain BROKEN at {report}")
    return 0 if ok else 1


def _show(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise InputError("-n", f"must be >= 1, got {args.n}")
    data_dir, _ = _data_dir(args)
    memory = TemporalMemory.open_read_only(data_dir / DB_NAME)
    try:
        total = memory.witness_count()
        records = [
            r
            for r in memory.witnesses(start=0 if args.level else max(0, total - args.n))
            if args.level is None or r.level == args.level
        ][-args.n :]
    finally:
        memory.close()
    for r in records:
        if args.json:
            print(json.dumps(r.summary()))
        else:
            print(f"#{r.seq:<7} {r.level:<5} {r.time:.3f} {r.kind:<14} {r.payload}  {r.hash[:16]}")
    return 0
