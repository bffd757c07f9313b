"""The API client of the commands that read or drive a cell or cluster through ``--url``.

Rule: one place that checks ``--url``/``--ca`` and reads the token from ``BECOMINGONE_TOKEN``
(so a token never appears on a command line); the API package is imported only when used.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from becomingone.errors import InputError

if TYPE_CHECKING:
    from becomingone.api.client import CellClient

__all__ = ["DEFAULT_URL", "TOKEN_ENV", "add_url_arguments", "api_client"]

DEFAULT_URL = "http://127.0.0.1:8787"
#: The environment variable holding the bearer token for writes and remote reads.
TOKEN_ENV = "BECOMINGONE_TOKEN"


def add_url_arguments(parser: argparse.ArgumentParser, *, default: str | None = None) -> None:
    """``--url`` (default ``default``) and ``--ca``."""
    parser.add_argument(
        "--url",
        default=default,
        help="the API (http(s)://HOST:PORT of `up --serve`, `serve` or `cluster --serve`)"
        + (f"; default {default}" if default else "")
        + f"; the token for writes and remote reads in {TOKEN_ENV}",
    )
    parser.add_argument(
        "--ca",
        type=Path,
        help="with an https --url: trust only this CA certificate (the cluster's ca.crt)",
    )


def api_client(url: str, ca: Path | None) -> CellClient:
    """The client of ``url`` (checked) trusting ``ca`` when given, with the token of
    :data:`TOKEN_ENV` if set."""
    from becomingone.api.client import CellClient

    clean = url.strip().rstrip("/")
    if not clean.startswith(("http://", "https://")):
        raise InputError("--url", f"{url!r}: must be http://HOST:PORT or https://HOST:PORT")
    if ca is not None and not ca.is_file():
        raise InputError("--ca", f"{ca} is not a file")
    return CellClient(clean, token=os.environ.get(TOKEN_ENV) or None, ca=ca)
