"""The ``becomingone`` command: parses arguments and dispatches to ``becomingone.commands``.

Rule: the CLI only calls library functions. Each subcommand lives in its own module under
``becomingone/commands/`` with ``register(subparsers)``, imported only for the command that runs
(the others are listed by name and help, so ``--help`` stays complete); library errors become
a one-line message on stderr and exit status 2 (bad input) or 1 (anything else we raised on
purpose). Output into
a pipe the reader closed early (``becomingone ... --json | head -1``) ends the command quietly
with status 141 (128 + SIGPIPE, what a shell reports for ``yes | head -1``), for every command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from becomingone import __version__
from becomingone.commands import COMMANDS
from becomingone.errors import BecomingOneError, InputError

__all__ = ["EXIT_BROKEN_PIPE", "build_parser", "main"]

#: Exit status when stdout was a pipe closed by its reader: 128 + SIGPIPE (13).
EXIT_BROKEN_PIPE = 141


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser: every subcommand registered, or (``only``) just that one with
    the others listed by name and help line, without importing their modules."""
    parser = argparse.ArgumentParser(
        prog="becomingone",
        description="BecomingONE: the KAIROS engine, cells and phase-locked clusters.",
    )
    parser.add_argument("--version", action="version", version=f"becomingone {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    chosen = {c.module for c in COMMANDS if only is None or c.name == only}
    registered: set[str] = set()
    for command in COMMANDS:
        if command.module not in chosen:
            sub.add_parser(command.name, help=command.help, add_help=False)
        elif command.module not in registered:  # a module may add several commands
            command.register()(sub)
            registered.add(command.module)
    return parser


def _chosen(argv: Sequence[str]) -> str:
    """The subcommand ``argv`` names ("" when none does: ``--help``, a typo, nothing)."""
    names = {command.name for command in COMMANDS}
    first = next((arg for arg in argv if not arg.startswith("-")), "")
    return first if first in names else ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        try:
            status = _run(argv)
        finally:  # also after --help: a broken pipe shows here, not at interpreter exit
            sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
        return EXIT_BROKEN_PIPE
    return status


def _stdout_to_devnull() -> None:
    """Point stdout's file descriptor at /dev/null, so the interpreter's final flush of what is
    still buffered cannot fail again (the recipe of the Python docs, ``signal`` module notes)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with contextlib.suppress(OSError, ValueError):  # stdout is not a real file: nothing to do
            os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _run(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_chosen(argv))
    args = parser.parse_args(argv)
    try:
        status = args.handler(args)
    except InputError as exc:
        print(f"becomingone {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BecomingOneError as exc:
        print(f"becomingone {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"becomingone {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
