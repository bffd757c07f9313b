"""``becomingone backup --data-dir D --to DIR|FILE.tar.gz``: a consistent copy of a data dir.

Rule: argument handling and presentation only; the copy is
:func:`becomingone.runtime.backup.back_up` (SQLite's online backup API, so the cell may keep
running). Restoring is using the copy as a data dir; docs/deployment.md shows the whole drill.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from becomingone.errors import InputError
from becomingone.runtime.backup import back_up

__all__ = ["register", "run_backup"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``backup``."""
    p = sub.add_parser(
        "backup",
        help="copy a cell's data dir consistently, even while the cell runs",
        description=(
            "Copy every SQLite database of the data dir with SQLite's online backup API and "
            "every other file (the node key too: keep the copy private) into a new directory, "
            "or a .tar.gz archive of one. The copy is a data dir: `witness verify --data-dir "
            "COPY` checks it and `up --data-dir COPY` resumes the cell from it."
        ),
    )
    p.add_argument("--data-dir", required=True, help="the cell's data dir (may be running)")
    p.add_argument("--to", required=True, help="a new directory, or a new FILE.tar.gz (mode 0600)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run_backup)


def run_backup(args: argparse.Namespace) -> int:
    """Handler of ``becomingone backup``."""
    for name, value in (("--data-dir", args.data_dir), ("--to", args.to)):
        if not value.strip():
            raise InputError(name, "must not be empty")
    report = back_up(Path(args.data_dir).expanduser(), Path(args.to).expanduser())
    if args.json:
        data = {
            "destination": str(report.destination),
            "databases": list(report.databases),
            "files": list(report.files),
            "bytes": report.bytes,
        }
        print(json.dumps(data), flush=True)
    else:
        print(
            f"backed up {args.data_dir} to {report.destination}: databases "
            f"{', '.join(report.databases)}; files {', '.join(report.files) or 'none'}; "
            f"{report.bytes} bytes",
            flush=True,
        )
    return 0
