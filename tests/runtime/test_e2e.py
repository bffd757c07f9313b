"""End-to-end: `becomingone up` as a real subprocess — JSON output, clean stop, restart,
continuation of memory and chain, `witness verify` on tampering, and kill -9 crash safety."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from becomingone.runtime.sources import synthetic_phase

CLI = [sys.executable, "-m", "becomingone.cli"]
CONFIG = """\
becomingone:
  name: e2e
  master: {tau_max: 30.0, witness_interval: 5.0}
  memory: {flush_interval: 0.25, signature_interval: 2.0}
  witnessing: {meta_interval: 1.0, meta_window: 100}
"""

pytestmark = pytest.mark.timeout(120)


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """Start `becomingone up` on tmp_path/data with the e2e config."""
    cfg = tmp_path / "cell.yaml"
    cfg.write_text(CONFIG)
    cmd = [*CLI, "up", "--config", str(cfg), "--data-dir", str(tmp_path / "data"), *args]
    return subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def read_lines(proc: subprocess.Popen[str], n: int) -> list[dict[str, Any]]:
    """Read n JSON lines from the process."""
    assert proc.stdout is not None
    out = []
    while len(out) < n:
        line = proc.stdout.readline()
        assert line, f"process ended early: {proc.stderr.read() if proc.stderr else ''}"
        out.append(json.loads(line))
    return out


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a short CLI command."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def test_up_json_stop_restart_continue_and_verify(tmp_path: Path) -> None:
    """JSON lines carry the documented keys; SIGTERM stops cleanly; a restart continues the
    sample count, the counts and the chain; `witness verify` passes, then names a tampered
    record and exits non-zero."""
    proc = start(tmp_path, "--json")
    first = read_lines(proc, 3)
    for key in ("t", "master", "emissary", "sync", "delta_phase", "collapses", "dissipations"):
        assert key in first[0]
    assert first[-1]["witnessed"] > first[0]["witnessed"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    before = first[-1]

    proc = start(tmp_path, "--json", "--duration", "7", "--summary")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    summary = lines[-1]["summary"]
    after = lines[-2]
    assert after["samples"] > before["samples"] and after["t"] > before["t"]
    assert after["witnessed"] > before["witnessed"]
    assert after["collapses"] >= before["collapses"] and summary["collapses"] > 0
    assert summary["dissipations"] > 0 and summary["chain_verified"] is True

    data = str(tmp_path / "data")
    ok = cli("witness", "verify", "--data-dir", data)
    assert ok.returncode == 0 and "chain verified" in ok.stdout
    shown = cli("witness", "show", "--data-dir", data, "-n", "3", "--json")
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 3
    con = sqlite3.connect(tmp_path / "data" / "memory.sqlite3")
    con.execute("UPDATE witness SET payload = payload || ' ' WHERE seq = 5")
    con.commit()
    con.close()
    bad = cli("witness", "verify", "--data-dir", data)
    assert bad.returncode == 1 and "record 5" in bad.stdout


def test_kill_9_during_ingest_loses_at_most_the_open_batch(tmp_path: Path) -> None:
    """kill -9 while ingesting a large CSV as fast as possible leaves a sound database and a
    verifiable chain; the restarted cell resumes at least where the last report said."""
    csv = tmp_path / "big.csv"
    np.savetxt(csv, synthetic_phase(0, 400_000, dt=0.01), fmt="%.9f")
    proc = start(tmp_path, "--json", "--source", f"csv:{csv}")
    seen = read_lines(proc, 2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    db = tmp_path / "data" / "memory.sqlite3"
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    assert cli("witness", "verify", "--data-dir", str(tmp_path / "data")).returncode == 0
    short = tmp_path / "short.csv"
    np.savetxt(short, synthetic_phase(0, 100, dt=0.01), fmt="%.9f")
    again = start(tmp_path, "--json", "--summary", "--source", f"csv:{short}")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["samples"] >= seen[-1]["samples"] + 100
    assert summary["chain_verified"] is True


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    """A bad source, a bad config or an empty --data-dir (up, witness) exits 2 with one line
    naming what was wrong."""
    r = cli("up", "--data-dir", str(tmp_path), "--source", "bogus", "--duration", "1")
    assert r.returncode == 2 and "source" in r.stderr
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("becomingone:\n  kairos: {omega: nope}\n")
    r = cli("up", "--config", str(cfg), "--data-dir", str(tmp_path), "--duration", "1")
    assert r.returncode == 2 and "becomingone.kairos.omega" in r.stderr
    for args in (("up", "--duration", "1"), ("witness", "verify"), ("witness", "show")):
        r = cli(*args, "--data-dir", "")
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--data-dir" in r.stderr


def test_stdin_source_with_bad_lines(tmp_path: Path) -> None:
    """stdin: one sample per line; unreadable lines are counted as rejected, not fatal."""
    phases = synthetic_phase(0, 300, dt=0.01)
    text = "\n".join(
        [*(f"{v:.9f}" for v in phases[:150]), "garbage", "nan", *map(str, phases[150:])]
    )
    proc = start(tmp_path, "--json", "--summary", "--source", "stdin")
    out, err = proc.communicate(text + "\n", timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["samples"] == 300 and summary["rejected"] == 2
    assert summary["chain_verified"] is True


def test_text_source(tmp_path: Path) -> None:
    """text:PATH embeds each message (one sample of many channels) and runs the cell."""
    msgs = tmp_path / "msgs.txt"
    msgs.write_text("\n".join(f"message {i % 5} about the cell" for i in range(400)))
    proc = start(tmp_path, "--json", "--summary", "--source", f"text:{msgs}")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["samples"] == 400 and summary["chain_verified"] is True
