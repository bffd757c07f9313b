"""``becomingone mcp``: an MCP server for agents, over stdio (default) or streamable HTTP.

Rule: argument handling only; the tools are :mod:`becomingone.api.mcp_server`. The cell API's
bearer token comes from the environment (``BECOMINGONE_TOKEN``; a Choir user's from
``BECOMINGONE_CHOIR_TOKEN``), never from the command line,
where other users of the machine could read it. Over stdio, stdout carries the protocol and
nothing else; diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlsplit

from becomingone.api.settings import parse_listen
from becomingone.errors import InputError

__all__ = ["CHOIR_TOKEN_ENV", "TOKEN_ENV", "register", "run_mcp"]

#: The environment variable that holds the cell API's bearer token.
TOKEN_ENV = "BECOMINGONE_TOKEN"
#: The one that holds a Choir user's bearer token (as :mod:`becomingone.api.mcp_choir`).
CHOIR_TOKEN_ENV = "BECOMINGONE_CHOIR_TOKEN"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``mcp``."""
    p = sub.add_parser("mcp", help="serve the BecomingONE tools to agents (Model Context Protocol)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--stdio", action="store_true", help="speak MCP on stdin/stdout (default)")
    mode.add_argument(
        "--http",
        metavar="[HOST:]PORT",
        help="serve MCP over streamable HTTP at http://HOST:PORT/mcp (default host 127.0.0.1)",
    )
    p.add_argument(
        "--url",
        metavar="CELL_API",
        help="a running cell's API (`up --serve`) or a cluster's (`cluster --serve`, with "
        "--roles for propose and vote), e.g. http://127.0.0.1:8787; writes use the "
        f"token in ${TOKEN_ENV}",
    )
    p.add_argument(
        "--choir-url",
        metavar="CHOIR_API",
        help="a served Choir's API for the choir_* tools; writes use the Choir user's token "
        f"in ${CHOIR_TOKEN_ENV}",
    )
    p.set_defaults(handler=run_mcp)


def _check_url(url: str, flag: str = "--url") -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(flag, f"{url!r} is not an http(s) URL of an API")
    return url.rstrip("/")


def run_mcp(args: argparse.Namespace) -> int:
    """Handler of ``becomingone mcp``."""
    url = None if args.url is None else _check_url(args.url)
    choir_url = None if args.choir_url is None else _check_url(args.choir_url, "--choir-url")
    listen = None if args.http is None else parse_listen(args.http, parameter="--http")
    token = os.environ.get(TOKEN_ENV) or None
    choir_token = os.environ.get(CHOIR_TOKEN_ENV) or None
    from becomingone.api.mcp_choir import ChoirTools  # the SDK loads here
    from becomingone.api.mcp_server import CellTools, build_mcp_server

    tools = CellTools(url, token=token)
    server = build_mcp_server(tools, ChoirTools(choir_url, token=choir_token))
    if listen is None:
        server.run("stdio")
        return 0
    host, port = listen
    print(f"becomingone mcp: MCP at http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    server.run("streamable-http", host=host, port=port)
    return 0
