"""``choir up`` follows what other processes write: while it serves (and so holds the content
store), ``becomingone choir post`` and ``vote`` from a shell write the ledger and the outbox
only; the server folds the new records within its poll interval, pushes their events to the
thread's WebSocket clients and writes its store. Real processes, a real WebSocket client. Also:
``choir up`` verifies the whole ledger chain at start and refuses a tampered one in one line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from becomingone.api import ChoirClient
from becomingone.choir import ChoirHome
from becomingone.cli import main
from tests.api.test_e2e import CLI, free_port
from tests.commands.test_choir_up import read_urls


async def _frames_until(ws: Any, done: Any, limit_s: float) -> list[dict[str, Any]]:
    """Frames received until ``done(frames)`` is true; at most ``limit_s`` seconds."""
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + limit_s
    while not done(frames):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no such frame within {limit_s} s; got {frames}")
        frames.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
    return frames


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "choir", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_shell_post_and_vote_reach_the_websocket_of_a_running_choir_up(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "choir", "up", "--serve", f"127.0.0.1:{port}", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        read_urls(proc, time.monotonic() + 120)
        base = f"http://127.0.0.1:{port}"
        marker = json.loads((tmp_path / "choir" / "up.json").read_text())
        assert marker == {"pid": proc.pid, "url": base}
        with ChoirClient(base) as client:
            [thread] = client.threads()
            [pending] = [m for m in client.thread(thread.id).messages if m.status == "pending"]
        url = f"ws://127.0.0.1:{port}/api/v1/choir/threads/{thread.id}/events"
        text = "the ebb runs out past the bar at dawn"

        async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
            async with websockets.connect(url) as ws:
                await _frames_until(ws, lambda f: f and f[-1]["type"] == "resumed", 30)
                started = time.monotonic()
                post = await asyncio.to_thread(
                    _cli, "post", thread.id, text, "--as", "ada", data_dir=tmp_path
                )
                assert post.returncode == 0, post.stderr
                assert "holds the content store" in post.stderr
                posted = await _frames_until(ws, lambda f: f and f[-1]["type"] == "message", 30)
                took = time.monotonic() - started
                vote = await asyncio.to_thread(
                    _cli, "vote", pending.id, "approve", "--as", "ada", data_dir=tmp_path
                )
                assert vote.returncode == 0, vote.stderr
                voted = await _frames_until(ws, lambda f: f and f[-1]["type"] == "approved", 30)
                return posted, voted, took

        posted, voted, took = asyncio.run(scenario())
        assert posted[-1]["data"]["text"] == text and posted[-1]["data"]["author_name"] == "ada"
        assert took < 60  # the CLI's own start (imports) is most of it
        assert [f["type"] for f in voted if f["type"] != "balance"] == ["vote", "approved"]
        assert voted[-1]["data"]["id"] == pending.id
        assert voted[-1]["seq"] == posted[-1]["seq"] + 1  # one chain, in order
        deadline = time.monotonic() + 30  # the store follows after the events are pushed
        while True:
            hits = httpx.get(f"{base}/api/v1/choir/search", params={"q": text, "k": 1}).json()
            if hits and hits[0]["text"] == text:
                break
            assert time.monotonic() < deadline, hits
            time.sleep(0.2)
        reads = _cli("search", text, data_dir=tmp_path)  # a read still needs the store
        assert reads.returncode == 1 and "open in another process" in reads.stderr
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert not (tmp_path / "choir" / "up.json").exists()
    check = _cli("check", "--json", data_dir=tmp_path)
    assert check.returncode == 0 and json.loads(check.stdout)["drift"] == [], check.stdout
    assert not list((tmp_path / "choir" / "outbox").glob("*.txt"))


def test_a_marker_of_a_dead_server_is_ignored(tmp_path: Path) -> None:
    """``up.json`` naming a pid that is gone (a killed server) names no server."""
    home = ChoirHome(tmp_path)
    home.root.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait(timeout=10)
    (home.root / "up.json").write_text(json.dumps({"pid": dead.pid, "url": "http://x"}))
    assert home.server() is None
    home.mark_serving("http://127.0.0.1:1")
    assert home.server() == (os.getpid(), "http://127.0.0.1:1")
    home.unmark_serving()
    assert home.server() is None and not (home.root / "up.json").exists()


def test_choir_up_refuses_a_tampered_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One changed byte in a chain record's payload: `choir up` exits 1 with one line naming
    the record, before it serves or writes anything."""
    assert main(["choir", "users", "add", "ada", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    db = sqlite3.connect(tmp_path / "choir" / "ledger.sqlite3")
    with db:
        (payload,) = db.execute("SELECT payload FROM choir_chain WHERE seq = 1").fetchone()
        assert '"ada"' in payload
        db.execute(
            "UPDATE choir_chain SET payload = ? WHERE seq = 1", (payload.replace("ada", "adb"),)
        )
    db.close()
    before = sorted(p.name for p in (tmp_path / "choir").iterdir())
    assert main(["choir", "up", "--serve", "127.0.0.1:0", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "record 1: the Choir ledger does not verify" in err[0], err
    assert sorted(p.name for p in (tmp_path / "choir").iterdir()) == before


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_choir_up_json_prints_its_urls_as_one_object(tmp_path: Path) -> None:
    """``choir up --json --no-demo``: one JSON line with the UI, API and docs URLs and no
    logins (no demo users); the URLs answer; SIGINT ends it with 0."""
    port = free_port()
    up = ["choir", "up", "--json", "--no-demo", "--serve", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [*CLI, *up, "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the server prints it once it listens
        base = f"http://127.0.0.1:{port}"
        assert json.loads(line) == {
            "ui": f"{base}/choir/",
            "api": f"{base}/api/v1/choir",
            "docs": f"{base}/api/v1/docs",
            "logins": {},
        }
        assert httpx.get(f"{base}/choir/", timeout=10).status_code == 200
        assert httpx.get(f"{base}/api/v1/choir/threads", timeout=10).json() == []
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
