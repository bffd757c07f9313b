"""``becomingone config check FILE`` and ``config show``: validate or print a configuration.

Rule: reports every bad key with its dotted path and reason; exit 2 if any.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import yaml

from becomingone.config import check_config, load_config

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``config`` with ``check`` and ``show``."""
    p = sub.add_parser("config", help="check or show a becomingone.yaml")
    inner = p.add_subparsers(dest="config_command", metavar="ACTION")
    inner.required = True
    check = inner.add_parser("check", help="validate FILE (and BECOMINGONE__* overrides)")
    check.add_argument("file", type=Path)
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(handler=_check)
    show = inner.add_parser("show", help="print the effective configuration as YAML")
    show.add_argument("file", type=Path, nargs="?")
    show.set_defaults(handler=_show)


def _check(args: argparse.Namespace) -> int:
    issues = check_config(args.file, os.environ)
    if args.json:
        print(json.dumps([{"path": i.path, "reason": i.reason} for i in issues]))
    elif not issues:
        print(f"{args.file}: ok")
    for issue in [] if args.json else issues:
        where = "" if issue.path == str(args.file) else f"{issue.path}: "
        print(f"{args.file}: {where}{issue.reason}")
    return 2 if issues else 0


def _show(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(yaml.safe_dump({"becomingone": config.model_dump(mode="json")}, sort_keys=False), end="")
    return 0
