"""``becomingone nats up|down|status`` as real subprocesses: detached servers, stop by pid,
stale state never kills a foreign process, bad input is one line with exit 2 or 1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from becomingone.transport.natsd import STATE_FILE, read_state

CLI = [sys.executable, "-m", "becomingone.cli", "nats"]

pytestmark = pytest.mark.timeout(120)


def nats(*args: str) -> subprocess.CompletedProcess[str]:
    """Run one ``becomingone nats`` command to completion (at most 60 s)."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def alive(pid: int) -> bool:
    """The pid exists and is not a zombie (a detached server's parent has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir; whatever a failed test left running from it is stopped by pid."""
    yield tmp_path
    for spec in read_state(tmp_path / "nats"):
        if (
            alive(spec.pid)
            and f"{tmp_path}".encode() in Path(f"/proc/{spec.pid}/cmdline").read_bytes()
        ):
            os.kill(spec.pid, signal.SIGKILL)


def test_up_status_down_three_servers(data_dir: Path) -> None:
    """up prints 3 URLs and exits with the servers running detached in their own session;
    status shows them running; down stops exactly those pids; status then exits 1."""
    up = nats("up", "--servers", "3", "--data-dir", str(data_dir))
    assert up.returncode == 0, up.stderr
    urls = up.stdout.split()
    assert len(urls) == 3 and all(u.startswith("nats://127.0.0.1:") for u in urls)
    specs = read_state(data_dir / "nats")
    assert [s.url for s in specs] == urls
    assert all(alive(s.pid) for s in specs)
    assert all(os.getsid(s.pid) == s.pid for s in specs)  # a session (and group) of its own
    status = nats("status", "--data-dir", str(data_dir), "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)["servers"]
    assert [(s["pid"], s["state"]) for s in shown] == [(s.pid, "running") for s in specs]
    down = nats("down", "--data-dir", str(data_dir))
    assert down.returncode == 0, down.stderr
    assert down.stdout.count("stopped") == 3
    deadline = time.monotonic() + 10.0
    while any(alive(s.pid) for s in specs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(s.pid) for s in specs)
    for port in [p for s in specs for p in (s.port, s.cluster_port, s.monitor_port) if p]:
        with socket.socket() as probe:  # nothing listens there any more: the ports are free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
    assert not (data_dir / "nats" / STATE_FILE).exists()
    after = nats("status", "--data-dir", str(data_dir))
    assert after.returncode == 1 and "no nats servers recorded" in after.stdout


def test_up_twice_is_refused(data_dir: Path) -> None:
    """A second up on a data dir whose servers still run fails in one line (exit 1)."""
    assert nats("up", "--data-dir", str(data_dir)).returncode == 0
    again = nats("up", "--data-dir", str(data_dir))
    assert again.returncode == 1
    assert "already running" in again.stderr and len(again.stderr.splitlines()) == 1
    assert nats("down", "--data-dir", str(data_dir)).returncode == 0


def test_stale_state_never_kills_a_foreign_pid(data_dir: Path) -> None:
    """A state file naming a pid that is not our nats-server (here a `sleep`): status says
    stale, down reports it and removes the state, and the process is still alive."""
    foreign = subprocess.Popen(["sleep", "60"])
    try:
        state = data_dir / "nats" / STATE_FILE
        (data_dir / "nats").mkdir()
        entry = {
            "name": "n1",
            "pid": foreign.pid,
            "port": 1,
            "cluster_port": None,
            "monitor_port": 2,
            "config": str(data_dir / "nats" / "n1.conf"),
            "log": str(data_dir / "nats" / "n1.log"),
            "store_dir": str(data_dir / "nats" / "jetstream" / "n1"),
        }
        state.write_text(json.dumps({"version": 1, "servers": [entry]}))
        status = nats("status", "--data-dir", str(data_dir))
        assert status.returncode == 1 and "stale" in status.stdout
        down = nats("down", "--data-dir", str(data_dir))
        assert down.returncode == 0 and "stale" in down.stdout
        assert foreign.poll() is None
        assert not state.exists()
    finally:
        foreign.kill()
        foreign.wait(timeout=10)


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["up", "--servers", "0"], 2, "--servers: must be 1 to 9, got 0"),
        (["up", "--servers", "three"], 2, "--servers: must be an integer"),
        (["up", "--data-dir", ""], 2, "--data-dir: must not be empty"),
        (["up", "--data-dir", "{file}/d"], 1, "cannot write nats configs"),
        (["status", "--data-dir", "{corrupt}"], 1, "unreadable nats state"),
        (["up", "--cluster", "local"], 2, "--cluster: only with --tls"),
        (["up", "--tls", "--cluster", "a b"], 2, "--cluster: must be 1-64 of"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], status: int, message: str) -> None:
    """Bad values and unusable data dirs: one line on stderr naming the problem, no traceback."""
    (tmp_path / "file").write_text("")
    (tmp_path / "corrupt" / "nats").mkdir(parents=True)
    (tmp_path / "corrupt" / "nats" / STATE_FILE).write_text("{not json")
    args = [a.format(file=tmp_path / "file", corrupt=tmp_path / "corrupt") for a in args]
    result = nats(*args)
    assert result.returncode == status
    assert message in result.stderr and len(result.stderr.splitlines()) == 1
    assert not read_state(tmp_path / "nats")
