"""``becomingone config check FILE`` and ``config show``: validate or print a configuration.

Rule: ``check`` reports every bad key with its dotted path and reason, one line each (a YAML
syntax error as ``FILE:LINE:COLUMN: problem``), then imports every hook and glyph
``module:function`` the way a cell would and reports each one that cannot be imported or is not
callable; exit 2 if anything was reported.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import yaml

from becomingone.config import ConfigIssue, check_config, load_config
from becomingone.runtime.glyph_handlers import check_glyphs
from becomingone.runtime.hooks import check_hooks

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``config`` with ``check`` and ``show``."""
    p = sub.add_parser("config", help="check or show a becomingone.yaml")
    inner = p.add_subparsers(dest="config_command", metavar="ACTION")
    inner.required = True
    check = inner.add_parser(
        "check", help="validate FILE (and BECOMINGONE__* overrides) and import its hooks"
    )
    check.add_argument("file", type=Path)
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(handler=_check)
    show = inner.add_parser("show", help="print the effective configuration as YAML")
    show.add_argument("file", type=Path, nargs="?")
    show.set_defaults(handler=_show)


def _issues(path: Path) -> list[ConfigIssue]:
    """Schema problems of the file; when there are none, the hooks and glyph handlers that do
    not import."""
    issues = check_config(path, os.environ)
    if issues:
        return issues
    config = load_config(path, os.environ)
    errors = [*check_hooks(config.hooks), *check_glyphs(config.glyphs)]
    return [ConfigIssue(path=exc.path, reason=exc.message) for exc in errors]


def _check(args: argparse.Namespace) -> int:
    issues = _issues(args.file)
    if args.json:
        print(json.dumps([{"path": i.path, "reason": i.reason} for i in issues]))
    elif not issues:
        print(f"{args.file}: ok")
    for issue in [] if args.json else issues:
        file = str(args.file)
        if issue.path == file or issue.path.startswith(f"{file}:"):  # FILE[:LINE:COLUMN]
            print(f"{issue.path}: {issue.reason}")
        else:
            print(f"{args.file}: {issue.path}: {issue.reason}")
    return 2 if issues else 0


def _show(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(yaml.safe_dump({"becomingone": config.model_dump(mode="json")}, sort_keys=False), end="")
    return 0
