"""``becomingone tokens create NAME | list | revoke NAME``: the API's write tokens of a data dir.

Rule: argument handling and printing only; the tokens are :class:`becomingone.api.TokenStore`
(hashed in the data dir's database). A new token is printed once, on stdout alone (so
``TOKEN=$(becomingone tokens create ci)`` works); it cannot be shown again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from becomingone.api.tokens import TokenStore, check_token_name
from becomingone.commands.up import data_dir_arg
from becomingone.config import load_config

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tokens`` with ``create``, ``list`` and ``revoke``."""
    p = sub.add_parser("tokens", help="create, list or revoke API write tokens of a data dir")
    inner = p.add_subparsers(dest="tokens_command", metavar="ACTION")
    inner.required = True
    for name, text in (
        ("create", "create a token NAME and print it (shown only this once)"),
        ("list", "list tokens (names and dates; never the tokens)"),
        ("revoke", "revoke the token NAME"),
    ):
        q = inner.add_parser(name, help=text)
        if name != "list":
            q.add_argument("name", help="token name: 1-64 of A-Z a-z 0-9 _ . -")
        q.add_argument("--data-dir", help="data dir (default: memory.path or ~/.becomingone)")
        q.add_argument("--config", type=Path, help="becomingone.yaml")
        q.add_argument("--json", action="store_true", help="machine-readable output")
        q.set_defaults(handler=_run)


def _when(at: float | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _run(args: argparse.Namespace) -> int:
    data_dir = data_dir_arg(args.data_dir, load_config(args.config))
    if args.tokens_command != "list":
        check_token_name(args.name)  # bad input touches no data dir
    store = TokenStore(data_dir)
    try:
        if args.tokens_command == "create":
            token = store.create(args.name)
            print(json.dumps({"name": args.name, "token": token}) if args.json else token)
            if not args.json:
                print(f"token {args.name!r} created; it is shown only now", file=sys.stderr)
        elif args.tokens_command == "revoke":
            store.revoke(args.name)
            print(
                json.dumps({"name": args.name, "revoked": True})
                if args.json
                else f"token {args.name!r} revoked"
            )
        else:
            _list(store, args.json)
    finally:
        store.close()
    return 0


def _list(store: TokenStore, as_json: bool) -> None:
    tokens = store.list()
    if as_json:
        rows = [
            {
                "name": t.name,
                "created_at": t.created_at,
                "revoked_at": t.revoked_at,
                "active": t.active,
            }
            for t in tokens
        ]
        print(json.dumps(rows))
        return
    for t in tokens:
        state = "active" if t.active else f"revoked {_when(t.revoked_at)}"
        print(f"{t.name:<24} created {_when(t.created_at)}  {state}")
