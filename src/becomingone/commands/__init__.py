"""Subcommands of the ``becomingone`` CLI, one module each, imported only when chosen.

Each module has ``register(subparsers)``, which adds its parser and sets ``handler`` (a function
taking the parsed ``argparse.Namespace`` and returning an exit status). Handlers only call library
functions, print, and return; errors from the library are reported by ``becomingone.cli``.

Rule: this package's ``__init__`` imports no subcommand module. :data:`COMMANDS` names each
command, its module and its one-line help, so ``becomingone --help`` lists every command while a
process imports only the module of the command it runs (``up`` never loads FastAPI or SciPy;
``docs/deployment.md`` has the figures). ``tests/commands/test_lazy_commands.py`` checks that
each help line here is the one its module registers.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One subcommand: its name, the module that registers it, and its ``--help`` line.

    A module may register several commands (``proposals``: ``propose``, ``proposals``,
    ``vote``); their entries follow each other in the order the module adds them."""

    name: str
    module: str
    help: str

    def register(self) -> Register:
        """The module's ``register`` function (imports the module)."""
        module = importlib.import_module(f"{__name__}.{self.module}")
        register: Register = module.register
        return register


#: Every subcommand, in the order ``--help`` lists them.
COMMANDS: tuple[Command, ...] = (
    Command(name="up", module="up", help="run a cell (transducers, sync, witnessing, memory)"),
    Command(name="analyze", module="analyze", help="run the KAIROS engine over a CSV or text file"),
    Command(
        name="cluster", module="cluster", help="run an in-process phase-locked cluster (live view)"
    ),
    Command(
        name="glyph",
        module="glyph",
        help="submit, list, cancel or watch a running cluster's glyphs",
    ),
    Command(
        name="propose",
        module="proposals",
        help="put a text or a glyph to a running `cluster --roles`' Validators",
    ),
    Command(
        name="proposals",
        module="proposals",
        help="the proposals of a running `cluster --roles`",
    ),
    Command(
        name="vote",
        module="proposals",
        help="vote yes or no on a proposal as one of the cluster's cells",
    ),
    Command(
        name="simulate", module="simulate", help="simulate cluster phase lock at large N (NumPy)"
    ),
    Command(name="witness", module="witness", help="verify or show a cell's witness chain"),
    Command(name="config", module="config", help="check or show a becomingone.yaml"),
    Command(
        name="nats", module="nats", help="start, stop or show nats-server processes on loopback"
    ),
    Command(
        name="certs",
        module="certs",
        help="the cluster CA and server/node certificates (for TLS)",
    ),
    Command(name="node", module="node", help="run one cell in this process on a NATS bus"),
    Command(
        name="roster",
        module="roster",
        help="the members of a cluster (JetStream KV; admins write)",
    ),
    Command(
        name="serve", module="serve", help="serve a stopped cell's history read-only over the API"
    ),
    Command(
        name="tokens",
        module="tokens",
        help="create, list or revoke API write tokens of a data dir",
    ),
    Command(name="choir", module="choir", help="Choir: users, threads, specs, votes and balances"),
    Command(
        name="mcp",
        module="mcp",
        help="serve the BecomingONE tools to agents (Model Context Protocol)",
    ),
    Command(
        name="bench",
        module="bench",
        help="measure a deployment profile: small (one pinned cell) or cluster (NATS nodes)",
    ),
    Command(
        name="backup",
        module="backup",
        help="copy a cell's data dir consistently, even while the cell runs",
    ),
)

__all__ = ["COMMANDS", "Command", "Register"]
