"""Subcommands of the ``becomingone`` CLI, one module each.

Each module has ``register(subparsers)``, which adds its parser and sets ``handler`` (a function
taking the parsed ``argparse.Namespace`` and returning an exit status). Handlers only call library
functions, print, and return; errors from the library are reported by ``becomingone.cli``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from becomingone.commands import (
    analyze,
    certs,
    choir,
    cluster,
    config,
    glyph,
    mcp,
    nats,
    node,
    proposals,
    roster,
    serve,
    simulate,
    tokens,
    up,
    witness,
)

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

#: Registration functions, in the order ``--help`` lists them.
COMMANDS: list[Register] = [
    up.register,
    analyze.register,
    cluster.register,
    glyph.register,
    proposals.register,
    simulate.register,
    witness.register,
    config.register,
    nats.register,
    certs.register,
    node.register,
    roster.register,
    serve.register,
    tokens.register,
    choir.register,
    mcp.register,
]

__all__ = ["COMMANDS", "Register"]
