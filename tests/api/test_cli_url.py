"""`becomingone witness verify|show --url`: the CLI reads a cell through its API and prints
exactly what it prints from the data dir; a tampered chain fails the same way; bad --url input
is one line."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from becomingone.memory.store import DB_NAME
from tests.api.test_e2e import CLI, free_port, wait_until_up
from tests.helpers import sql

pytestmark = pytest.mark.timeout(120)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI (bounded) and capture its output."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A cell run for 2 s, then `serve`d read-only on a free port: (base URL, data dir)."""
    data = tmp_path / "data"
    ran = cli("up", "--data-dir", str(data), "--duration", "2")
    assert ran.returncode == 0, ran.stderr
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--data-dir", str(data), "--listen", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, url)
        yield url, data
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize(
    "args",
    [
        ["verify"],
        ["verify", "--json"],
        ["show", "-n", "4"],
        ["show", "-n", "3", "--level", "meso", "--json"],
        ["show", "-n", "100000"],
    ],
)
def test_url_prints_what_the_data_dir_prints(served: tuple[str, Path], args: list[str]) -> None:
    """Through --url, verify and show print the same bytes and exit with the same status as
    on the data dir."""
    url, data = served
    local = cli("witness", *args, "--data-dir", str(data))
    remote = cli("witness", *args, "--url", url)
    assert local.returncode == remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout and remote.stdout


def test_url_names_the_first_tampered_record(served: tuple[str, Path]) -> None:
    """A record changed in the database: verify --url exits 1 naming it, as verify does on
    the data dir."""
    url, data = served
    sql(data / DB_NAME, "UPDATE witness SET payload = '{}' WHERE seq = 2")
    local = cli("witness", "verify", "--data-dir", str(data))
    remote = cli("witness", "verify", "--url", url)
    assert local.returncode == remote.returncode == 1
    assert remote.stdout == local.stdout and "BROKEN at record 2" in remote.stdout


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--url", "localhost:8787"], 2, "must be http://HOST:PORT"),
        (["--url", "http://127.0.0.1:8787", "--data-dir", "x"], 2, "drop --data-dir"),
        (["--url", "http://127.0.0.1:1"], 1, "Connection refused"),
    ],
)
def test_bad_url_is_one_line(args: list[str], status: int, message: str) -> None:
    """A URL without a scheme, --url beside --data-dir, or nothing listening: one line."""
    done = cli("witness", "verify", *args)
    assert done.returncode == status
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
