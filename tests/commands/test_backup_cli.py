"""``becomingone backup`` on a running cell: the copy (a directory or a .tar.gz) passes
``witness verify``, and ``up`` on the restored dir continues the chain where the copy ends;
the source keeps running and is stopped by PID; bad input is one line and exit status 2."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from becomingone.cli import main
from becomingone.runtime.backup import back_up

pytestmark = pytest.mark.timeout(180)

CLI = [sys.executable, "-m", "becomingone.cli"]


def _witnessed(db: Path) -> int:
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
        (count,) = conn.execute("SELECT count(*) FROM witness").fetchone()
    return int(count)


def _run_json(argv: list[str]) -> list[dict[str, object]]:
    out = subprocess.run(
        [*CLI, *argv], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _start_cell(data_dir: Path) -> tuple[subprocess.Popen[str], list[dict[str, object]]]:
    """``up --json`` in the background; its status lines collected by a reader thread."""
    proc = subprocess.Popen(
        [*CLI, "up", "--data-dir", str(data_dir), "--duration", "60", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[dict[str, object]] = []

    def read() -> None:
        assert proc.stdout is not None
        lines.extend(json.loads(line) for line in proc.stdout)

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


@pytest.mark.parametrize("kind", ["dir", "tar.gz"])
def test_back_up_a_running_cell_restore_verify_resume(tmp_path: Path, kind: str) -> None:
    """Back up while ``up`` writes; stop it; unpack; ``witness verify`` exits 0 on the copy;
    ``up`` on the copy resumes: its samples continue after the copy's and its chain grows
    from the copy's records and still verifies."""
    source = tmp_path / "cell"
    proc, lines = _start_cell(source)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(1 for s in lines if "samples" in s) < 3:
            time.sleep(0.1)
        assert lines, "the cell never reported"
        target = tmp_path / ("copy" if kind == "dir" else "copy.tar.gz")
        assert main(["backup", "--data-dir", str(source), "--to", str(target)]) == 0
        assert proc.poll() is None  # the cell kept running through the backup
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    if kind == "tar.gz":
        assert target.stat().st_mode & 0o777 == 0o600
        with tarfile.open(target) as tar:
            tar.extractall(tmp_path / "unpacked", filter="data")
        restored = tmp_path / "unpacked" / "cell"
    else:
        restored = target
    assert sorted(p.name for p in restored.iterdir()) == ["memory.sqlite3", "node.key", "node.pub"]
    assert (restored / "node.key").stat().st_mode & 0o777 == 0o600
    copied = _witnessed(restored / "memory.sqlite3")
    assert copied > 0
    (verified,) = _run_json(["witness", "verify", "--data-dir", str(restored), "--json"])
    assert verified["ok"] is True
    resumed = _run_json(["up", "--data-dir", str(restored), "--duration", "2", "--json"])
    first = next(s for s in resumed if "samples" in s)
    assert int(str(first["samples"])) > 100  # resumed after the copy's samples, not from 0
    assert _witnessed(restored / "memory.sqlite3") > copied
    (again,) = _run_json(["witness", "verify", "--data-dir", str(restored), "--json"])
    assert again["ok"] is True


def test_backup_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a data dir, an existing destination, a destination inside the data dir: each one
    line naming its flag, exit status 2, nothing written."""
    cell = tmp_path / "cell"
    cell.mkdir()
    assert main(["backup", "--data-dir", str(cell), "--to", str(tmp_path / "x")]) == 2
    assert "--data-dir" in capsys.readouterr().err
    sqlite3.connect(cell / "memory.sqlite3").close()
    (tmp_path / "taken").mkdir()
    assert main(["backup", "--data-dir", str(cell), "--to", str(tmp_path / "taken")]) == 2
    assert "--to:" in capsys.readouterr().err
    assert main(["backup", "--data-dir", str(cell), "--to", str(cell / "inner")]) == 2
    assert "inside the data dir" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (cell / "inner").exists()


def test_a_backup_under_concurrent_writes_is_one_consistent_snapshot(tmp_path: Path) -> None:
    """A writer commits rows in pairs (WAL mode) while backups are taken: every copy passes
    quick_check and holds whole pairs only (an even count), never half a transaction."""
    cell = tmp_path / "cell"
    cell.mkdir()
    db = cell / "memory.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (i INTEGER)")
    stop = threading.Event()

    def write() -> None:
        conn = sqlite3.connect(db, timeout=30)
        i = 0
        while not stop.is_set() and i < 200_000:
            with conn:
                conn.executemany("INSERT INTO t VALUES (?)", [(i,), (i + 1,)])
            i += 2
        conn.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        counts = []
        for n in range(5):
            time.sleep(0.05)
            report = back_up(cell, tmp_path / f"b{n}")
            assert report.databases == ("memory.sqlite3",)
            with sqlite3.connect(tmp_path / f"b{n}" / "memory.sqlite3") as copy:
                counts.append(copy.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        stop.set()
        writer.join(timeout=30)
    assert all(c % 2 == 0 for c in counts) and counts[-1] > 0
