"""The CLI imports only the chosen subcommand's module, while ``--help`` lists every command
with the help line its module registers; ``up`` without ``--serve`` loads neither FastAPI nor
SciPy (the small profile's RSS, docs/deployment.md)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from becomingone.cli import build_parser, main
from becomingone.commands import COMMANDS


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action


def test_the_table_matches_what_each_module_registers() -> None:
    """For every command, the full parser (each module's own ``register``) has a subparser of
    that name whose help line is the table's, in the table's order: the listing ``--help``
    shows without importing the modules cannot drift from the modules."""
    sub = _subparsers(build_parser())
    registered = {a.dest: a.help for a in sub._choices_actions}
    assert list(registered) == [c.name for c in COMMANDS]
    for command in COMMANDS:
        assert registered[command.name] == command.help, command.name


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """``becomingone --help`` prints every command name with its help line and exits 0."""
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for command in COMMANDS:
        assert f"{command.name} {' '.join(command.help.split())}" in out


def test_a_chosen_command_keeps_its_full_parser(capsys: pytest.CaptureFixture[str]) -> None:
    """``becomingone up --help`` still shows ``up``'s own flags (its module was registered)."""
    with pytest.raises(SystemExit):
        main(["up", "--help"])
    out = capsys.readouterr().out
    assert "--data-dir" in out and "--serve" in out and "--accept-broken-chain" in out


def test_an_unknown_command_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A typo names the invalid choice (argparse, exit status 2), with every command listed."""
    with pytest.raises(SystemExit) as stop:
        main(["upp"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'upp'" in err and "backup" in err


def test_up_loads_neither_fastapi_nor_scipy() -> None:
    """A fresh interpreter that builds the parser for ``up`` (what ``becomingone up`` does
    before it runs) has not imported FastAPI, uvicorn, httpx, SciPy or another command's
    module; building it for ``serve`` does import FastAPI (the check can fail)."""
    code = (
        "import sys\n"
        "from becomingone.cli import build_parser, _chosen\n"
        "build_parser(_chosen(sys.argv[1:]))\n"
        "heavy = ('fastapi', 'uvicorn', 'httpx', 'scipy', 'becomingone.commands.analyze')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    runs = {
        cmd: subprocess.run(
            [sys.executable, "-c", code, cmd, "--duration", "1"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout.strip()
        for cmd in ("up", "serve")
    }
    assert runs["up"] == "[]"
    assert "fastapi" in runs["serve"]


def test_a_module_with_several_commands_registers_them_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``vote`` comes from the module that also adds ``propose`` and ``proposals``: choosing
    it registers that module once (its own flags show), and ``propose`` still parses."""
    with pytest.raises(SystemExit):
        main(["vote", "--help"])
    assert "--as CELL" in capsys.readouterr().out
    args = build_parser("propose").parse_args(["propose", "do it"])
    assert args.text == "do it" and callable(args.handler)
