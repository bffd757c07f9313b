"""Every subcommand printing into a pipe its reader closed (``becomingone ... | head -1``) ends
quietly: exit 0 (all written before the close) or 141 (``EXIT_BROKEN_PIPE``), and no traceback
or "Exception ignored" on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from becomingone.cli import EXIT_BROKEN_PIPE

ROOT = Path(__file__).resolve().parents[1]
RUN = "import sys; from becomingone.cli import main; sys.exit(main())"

#: One quick invocation of every subcommand (and the top-level options) that prints to stdout.
COMMANDS = {
    "help": ["--help"],
    "version": ["--version"],
    "up": ["up", "--duration", "1", "--json", "--data-dir", "{tmp}/cell"],
    "analyze": ["analyze", str(ROOT / "examples" / "buried.csv"), "--band", "3", "8", "--json"],
    "cluster": ["cluster", "--nodes", "4", "--duration", "1", "--fast", "--json"],
    "simulate": ["simulate", "--nodes", "64", "--rounds", "50", "--every", "1", "--json"],
    "witness-verify": ["witness", "verify", "--json", "--data-dir", "{tmp}/cell"],
    "witness-show": ["witness", "show", "-n", "50", "--data-dir", "{tmp}/cell"],
    "config-check": ["config", "check", "--json", str(ROOT / "config" / "becomingone.yaml")],
    "config-show": ["config", "show"],
}


def start(args: list[str], tmp: Path) -> subprocess.Popen[bytes]:
    """The CLI with ``args`` in a child with stdout a pipe and stderr captured."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-c", RUN, *(a.replace("{tmp}", str(tmp)) for a in args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp,
    )


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    """Exit status and stderr of ``proc`` (killed if it runs past 120 s)."""
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, err.decode(errors="replace")


#: Commands that may end with 0 instead: argparse ignores write errors for --help/--version,
#: and ``up`` stops its cell cleanly when the reader goes away.
MAY_EXIT_0 = {"help", "version", "up"}

#: At most this many children at once (the machine is shared).
PARALLEL = 4


@pytest.fixture(scope="module")
def cell_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a cell that ran for a second (for the witness commands)."""
    tmp = tmp_path_factory.mktemp("pipes")
    proc = start(COMMANDS["up"], tmp)
    assert finish(proc)[0] == 0
    return tmp


@pytest.fixture(scope="module")
def closed_early(cell_dir: Path) -> dict[str, tuple[int, str]]:
    """Exit status and stderr of every command run with its stdout closed before it starts
    writing (the parent closes the read end at once), PARALLEL at a time."""
    names, results = sorted(COMMANDS), {}
    for i in range(0, len(names), PARALLEL):
        procs = {name: start(COMMANDS[name], cell_dir) for name in names[i : i + PARALLEL]}
        for proc in procs.values():
            assert proc.stdout is not None
            proc.stdout.close()
        results |= {name: finish(proc) for name, proc in procs.items()}
    return results


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_reader_closes_before_the_first_write(
    name: str, closed_early: dict[str, tuple[int, str]]
) -> None:
    """stdout closed before the command writes: exit 141 (0 where noted), no traceback."""
    status, err = closed_early[name]
    assert "Traceback" not in err and "Exception ignored" not in err, err
    allowed = (0, EXIT_BROKEN_PIPE) if name in MAY_EXIT_0 else (EXIT_BROKEN_PIPE,)
    assert status in allowed, (status, err)


#: Commands whose output spans many lines, for the ``| head -1`` case.
LONG = {
    "simulate-table": ["simulate", "--nodes", "64", "--rounds", "400", "--every", "1"],
    "witness-show": ["witness", "show", "-n", "200", "--data-dir", "{tmp}/cell"],
}


@pytest.mark.parametrize("name", sorted(LONG))
def test_reader_closes_after_one_line(name: str, cell_dir: Path) -> None:
    """Like ``| head -1``: read one line, close; exit 0 or 141 and no traceback."""
    proc = start(LONG[name], cell_dir)
    assert proc.stdout is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    status, err = finish(proc)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert status in (0, EXIT_BROKEN_PIPE), (status, err)
