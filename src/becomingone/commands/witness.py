"""``becomingone witness verify|show``: check and read a cell's signed witness chain.

Rule: read-only on the data dir; ``verify`` exits 1 and names the first bad record on tampering.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from becomingone.config import load_config
from becomingone.errors import InputError, StorageError
from becomingone.memory.store import DB_NAME, TemporalMemory
from becomingone.runtime.cell import default_data_dir, load_key
from becomingone.witnessing import verify

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``witness`` with ``verify`` and ``show``."""
    p = sub.add_parser("witness", help="verify or show a cell's witness chain")
    inner = p.add_subparsers(dest="witness_command", metavar="ACTION")
    inner.required = True
    for name, handler, text in (
        ("verify", _verify, "walk the whole chain; non-zero exit names the first bad record"),
        ("show", _show, "print the newest records"),
    ):
        q = inner.add_parser(name, help=text)
        q.add_argument("--data-dir", type=Path, help="data dir (default: ~/.becomingone)")
        q.add_argument("--config", type=Path, help="becomingone.yaml (for the key file name)")
        q.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "show":
            q.add_argument("-n", type=int, default=10, help="how many records (default 10)")
            q.add_argument("--level", choices=["micro", "meso", "macro", "meta"])
        q.set_defaults(handler=handler)


def _open(args: argparse.Namespace) -> tuple[TemporalMemory, bytes]:
    config = load_config(args.config)
    data_dir = (args.data_dir or config.memory.path or default_data_dir()).expanduser()
    db = data_dir / DB_NAME
    key_path = data_dir / config.security.key_file
    if not db.exists() or not key_path.exists():
        raise InputError("--data-dir", f"{data_dir} holds no cell (no {DB_NAME} or key file)")
    key = load_key(key_path, strict=False)
    return TemporalMemory(db, config.memory.retention.to_retention()), key.public_bytes


def _verify(args: argparse.Namespace) -> int:
    memory, public = _open(args)
    try:
        report = verify(memory.witnesses(), public, head=memory.chain_head())
    except StorageError as exc:
        print(f"chain BROKEN: {exc}")
        return 1
    finally:
        memory.close()
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "checked": report.checked,
                    "first_bad": report.first_bad,
                    "reason": report.reason,
                }
            )
        )
    else:
        print(str(report) if report.ok else f"chain BROKEN at {report}")
    return 0 if report.ok else 1


def _show(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise InputError("-n", f"must be >= 1, got {args.n}")
    memory, _ = _open(args)
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
