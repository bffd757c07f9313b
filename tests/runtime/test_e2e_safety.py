"""End-to-end data safety with real `becomingone` subprocesses: one writer per data dir, a
tampered chain at start, CSV sources resumed across kill -9, read-only `witness verify` with
the integrity check, and clean output into pipes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from becomingone.runtime.sources import synthetic_phase
from tests.helpers import sql
from tests.runtime.test_e2e import CLI, cli, read_lines, start

pytestmark = pytest.mark.timeout(180)


def up(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A short `becomingone up` on tmp_path/data with the e2e config, run to completion."""
    proc = start(tmp_path, *args)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_second_up_is_refused_until_the_holder_is_killed(tmp_path: Path) -> None:
    """A running `up` holds the dir: a second `up` exits 1 at once with one line naming the
    holder's pid; `witness verify` still reads; after kill -9 of the holder a new `up` runs."""
    holder = start(tmp_path, "--json")
    try:
        read_lines(holder, 1)
        t0 = time.monotonic()
        second = up(tmp_path, "--duration", "30")
        assert time.monotonic() - t0 < 20  # refused at once, not after --duration
        assert second.returncode == 1 and second.stderr.count("\n") == 1
        assert f"pid {holder.pid}" in second.stderr and "in use" in second.stderr
        reader = cli("witness", "verify", "--data-dir", str(tmp_path / "data"))
        assert reader.returncode == 0, reader.stdout + reader.stderr
    finally:
        holder.kill()  # SIGKILL: the OS drops the lock
        holder.wait(timeout=30)
    again = up(tmp_path, "--duration", "2", "--json", "--summary")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["summary"]["chain_verified"] is True


def test_tampered_chain_refuses_to_start_unless_accepted(tmp_path: Path) -> None:
    """A changed record: `up` exits 1 naming it; with --accept-broken-chain it starts and
    witnesses chain.break_accepted naming the record."""
    first = up(tmp_path, "--duration", "2", "--json")
    assert first.returncode == 0, first.stderr
    sql(tmp_path / "data" / "memory.sqlite3", "UPDATE witness SET payload = '{}' WHERE seq = 5")
    refused = up(tmp_path, "--duration", "2")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "record 5" in refused.stderr and "--accept-broken-chain" in refused.stderr
    accepted = up(tmp_path, "--duration", "2", "--json", "--accept-broken-chain")
    assert json.loads(accepted.stdout.splitlines()[-1])["samples"] > 0, accepted.stderr
    shown = cli("witness", "show", "--data-dir", str(tmp_path / "data"), "--level", "meta",
                "-n", "50", "--json")  # fmt: skip
    breaks = [r for r in map(json.loads, shown.stdout.splitlines())
              if r["kind"] == "chain.break_accepted"]  # fmt: skip
    assert len(breaks) == 1 and breaks[0]["payload"]["first_bad"] == 5


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_csv_source_resumes_exactly_after_a_stop(tmp_path: Path, how: signal.Signals) -> None:
    """`up --source csv:F` stopped part-way (kill -9 or SIGTERM) and started again ingests
    every row of F exactly once: total samples == rows, none rejected, chain verified."""
    rows = 150_000
    csv = tmp_path / "big.csv"
    np.savetxt(csv, synthetic_phase(0, rows, dt=0.01), fmt="%.9f", header="phase", comments="")
    proc = start(tmp_path, "--json", "--source", f"csv:{csv}")
    seen = read_lines(proc, 2)
    os.kill(proc.pid, how)
    proc.wait(timeout=30)
    assert 0 < seen[-1]["samples"] < rows
    again = up(tmp_path, "--json", "--summary", "--source", f"csv:{csv}")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.splitlines()[-1])["summary"]
    assert summary["samples"] == rows and summary["rejected"] == 0
    assert summary["chain_verified"] is True
    once_more = up(tmp_path, "--json", "--summary", "--source", f"csv:{csv}")
    assert json.loads(once_more.stdout.splitlines()[-1])["summary"]["samples"] == rows
    csv.write_text("phase\n" + "0.5\n" * 10)
    changed = up(tmp_path, "--source", f"csv:{csv}")
    assert changed.returncode == 2 and "not the same stream" in changed.stderr


def tree_state(path: Path) -> dict[str, tuple[int, str]]:
    """Name → (mode, SHA-256) of every file under ``path``."""
    return {
        str(p.relative_to(path)): (p.stat().st_mode, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(path.rglob("*"))
    }


def test_witness_verify_is_read_only_and_checks_integrity(tmp_path: Path) -> None:
    """verify works on a read-only copy without node.key (needs node.pub only) and changes
    nothing there; it reports SQLite's integrity check; missing dir or database: one line,
    exit 1."""
    assert up(tmp_path, "--duration", "2").returncode == 0
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "data", copy)
    (copy / "node.key").unlink()
    for p in [copy, *copy.iterdir()]:
        p.chmod(stat.S_IMODE(p.stat().st_mode) & ~0o222)
    before = tree_state(copy)
    try:
        ok = cli("witness", "verify", "--data-dir", str(copy), "--json")
        assert ok.returncode == 0, ok.stderr
        result = json.loads(ok.stdout)
        assert result["ok"] and result["integrity"] == "ok" and result["checked"] > 0
        after = tree_state(copy)
        if os.geteuid() == 0:  # root may write anyway: SQLite adds its (empty) side files
            after = {k: v for k, v in after.items() if not k.endswith(("-wal", "-shm"))}
        assert after == before
    finally:
        for p in [copy, *copy.iterdir()]:
            p.chmod(0o700)
    con = sqlite3.connect(tmp_path / "data" / "memory.sqlite3", isolation_level=None)
    con.execute("PRAGMA writable_schema=ON")  # the index no longer matches its table
    con.execute("UPDATE sqlite_schema SET sql = 'CREATE INDEX coherence_t ON coherence (master)'"
                " WHERE name = 'coherence_t'")  # fmt: skip
    con.close()
    bad = cli("witness", "verify", "--data-dir", str(tmp_path / "data"))
    assert bad.returncode == 1 and "database BROKEN" in bad.stdout and "coherence_t" in bad.stdout
    missing = cli("witness", "verify", "--data-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert missing.stderr.count("\n") == 1
    (tmp_path / "empty").mkdir()
    empty = cli("witness", "verify", "--data-dir", str(tmp_path / "empty"))
    assert empty.returncode == 1 and "holds no cell database" in empty.stderr


def test_read_only_store_cannot_write(tmp_path: Path) -> None:
    """TemporalMemory.open_read_only really is read-only (SQLite refuses a write, even as root)."""
    from becomingone.memory.store import TemporalMemory

    assert up(tmp_path, "--duration", "1").returncode == 0
    store = TemporalMemory.open_read_only(tmp_path / "data" / "memory.sqlite3")
    try:
        assert store.witness_count() > 0
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store._db.execute("DELETE FROM witness")
    finally:
        store.close()


def test_read_only_dir_is_opened_without_side_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a dir SQLite cannot write (simulated, as tests may run as root), the store is read
    as it is: nothing created beside it, records readable."""
    from becomingone.memory import store as store_module

    assert up(tmp_path, "--duration", "1").returncode == 0
    data = tmp_path / "data"
    monkeypatch.setattr(store_module.os, "access", lambda *a, **k: False)
    store = store_module.TemporalMemory.open_read_only(data / "memory.sqlite3")
    try:
        assert store.witness_count() > 0 and store.integrity_check() == "ok"
    finally:
        store.close()
    assert not list(data.glob("memory.sqlite3-*"))


def test_json_into_a_closed_pipe_exits_cleanly(tmp_path: Path) -> None:
    """`up --json | head -1`: the reader goes away; up stops with status 0, no traceback."""
    cfg = tmp_path / "cell.yaml"
    cfg.write_text("becomingone: {memory: {flush_interval: 0.25}}\n")
    cmd = " ".join([*CLI, "up", "--json", "--duration", "20", "--config", str(cfg),
                    "--data-dir", str(tmp_path / "d"), "| head -1"])  # fmt: skip
    t0 = time.monotonic()
    done = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert time.monotonic() - t0 < 15
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr
    assert json.loads(done.stdout)["samples"] >= 0


def test_non_tty_output_prints_progress_lines(tmp_path: Path) -> None:
    """Without a terminal and without --json, `up` prints a plain progress line about once
    per second while it runs (not nothing until exit)."""
    proc = start(tmp_path, "--duration", "4")
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert proc.poll() is None, "the first line came only at exit"
    assert first.startswith("t=") and "samples=" in first and "collapses=" in first
    rest, _ = proc.communicate(timeout=60)
    lines = [first, *rest.splitlines()]
    assert proc.returncode == 0 and len([x for x in lines if x.startswith("t=")]) >= 3
