"""``becomingone choir`` with the content store: texts and real sentence embeddings follow the
ledger, ``search`` finds by meaning, ``threads`` shows coherence, ``check`` finds and repairs
drift — including after a real ``kill -9`` between the ledger write and the store write — and a
store held by another process is one line with exit status 1 before the ledger changes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from becomingone.choir import ChoirHome
from becomingone.cli import main
from becomingone.ingest.text import model_available

REPO = Path(__file__).resolve().parents[2]
needs_model = pytest.mark.skipif(not model_available(), reason="the text extra is not installed")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    """``becomingone choir ARGS --json``: (status, parsed stdout or None, stderr)."""
    status = main(["choir", *args, "--json"])
    out, err = capsys.readouterr()
    return status, json.loads(out) if out.strip() else None, err


def ok(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """Run and require exit status 0; the parsed output."""
    status, out, err = run(capsys, *args)
    assert status == 0, err
    return out


def start(capsys: pytest.CaptureFixture[str], where: list[str]) -> str:
    """ada and bob join; ada opens a thread; its id."""
    ok(capsys, "users", "add", "ada", *where)
    ok(capsys, "users", "add", "bob", *where)
    return str(ok(capsys, "threads", "create", "Weather", "--as", "ada", *where)["thread"])


@needs_model
def test_texts_follow_the_ledger_and_search_finds_by_meaning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Posts and an approved spec are searchable by meaning (no shared words with the query),
    a pending spec is not; check finds no drift; coherence appears after ten messages."""
    where = ["--data-dir", str(tmp_path)]
    t = start(capsys, where)
    post = ok(capsys, "post", t, "the sea was rough with tall breakers", "--as", "ada", *where)
    assert post["embedding"] == "model"
    ok(capsys, "post", t, "a recipe for sourdough bread", "--as", "ada", *where)
    spec = ok(capsys, "submit", t, "storms at the coast flooded the harbour", "--as", "bob", *where)
    hits = ok(capsys, "search", "ocean waves", *where)["hits"]
    assert hits[0]["text"] == "the sea was rough with tall breakers"
    assert "storms at the coast flooded the harbour" not in [h["text"] for h in hits]
    ok(capsys, "vote", spec["spec"], "approve", "--as", "ada", *where)
    hits = ok(capsys, "search", "hurricane by the shore", "-k", "1", *where)["hits"]
    assert hits[0]["text"] == "storms at the coast flooded the harbour"
    assert hits[0]["author"] == "bob"
    report = ok(capsys, "check", *where)
    assert report["ok"] and report["drift"] == [] and report["messages"] == 3
    [thread] = ok(capsys, "threads", *where)
    assert thread["coherence"] is None  # fewer than ten published messages
    for i in range(8):
        ok(capsys, "post", t, f"note {i} about the weather today", "--as", "ada", *where)
    [thread] = ok(capsys, "threads", *where)
    assert 0.0 <= thread["coherence"] <= 1.0


def test_without_the_model_the_lexical_fallback_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the text extra absent, a post says so in one stderr line and in --json."""
    monkeypatch.setattr("becomingone.choir.home.model_available", lambda: False)
    where = ["--data-dir", str(tmp_path)]
    t = start(capsys, where)
    status, out, err = run(capsys, "post", t, "hello there", "--as", "ada", *where)
    assert status == 0 and out["embedding"] == "lexical"
    assert err.count("lexical embeddings") == 1 and len(err.strip().splitlines()) == 1
    hits = ok(capsys, "search", "hello", *where)["hits"]
    assert hits[0]["text"] == "hello there"


def test_check_reports_drift_and_repair_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message deleted from the store behind the ledger's back is reported (exit 1); its
    text is gone, so --repair cannot invent it and says so; a stray store message is removed."""
    monkeypatch.setattr("becomingone.choir.home.model_available", lambda: False)
    where = ["--data-dir", str(tmp_path)]
    t = start(capsys, where)
    mid = ok(capsys, "post", t, "kept", "--as", "ada", *where)["message"]
    store = ChoirHome(tmp_path).open_store()
    store.delete_messages([mid])
    store.close()
    status, report, _ = run(capsys, "check", *where)
    assert status == 1 and [d["kind"] for d in report["drift"]] == ["missing"]
    status, report, _ = run(capsys, "check", "--repair", *where)
    assert status == 1 and [d["message"] for d in report["remaining"]] == [mid]


def _kill_between(tmp_path: Path, thread: str) -> tuple[str, str]:
    """Run a real process that posts as ada and stops between the ledger commit and the store
    write; kill -9 it there. (message id, text)."""
    marker = tmp_path / "between"
    code = (
        "import sys, time; from pathlib import Path\n"
        "from becomingone.choir import ChoirHome, TxKind, content_hash\n"
        "from becomingone.commands._choir_store import StoreSession, write_message\n"
        "home = ChoirHome(Path(sys.argv[1])); ledger = home.open(now=time.time())\n"
        "text = 'written before the crash'\n"
        "body = {'thread': sys.argv[2], 'message': 'm-crash', 'content_hash': content_hash(text)}\n"
        "def stop():\n"
        "    Path(sys.argv[3]).write_text('x'); time.sleep(60)\n"
        "write_message(StoreSession(home, None), ledger, 'ada', TxKind.POST, body, text,\n"
        "              now=time.time(), after_ledger=stop)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), thread, str(marker)],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return "m-crash", "written before the crash"


def test_kill_9_between_ledger_and_store_is_repaired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After kill -9 between the two writes the ledger has the post and verifies, the store
    lacks it, check says so (exit 1) and check --repair writes it from the outbox."""
    monkeypatch.setattr("becomingone.choir.home.model_available", lambda: False)
    where = ["--data-dir", str(tmp_path)]
    t = start(capsys, where)
    mid, text = _kill_between(tmp_path, t)
    home = ChoirHome(tmp_path)
    ledger = home.open(now=time.time())
    try:
        assert [m.id for m in ledger.messages(thread=t)] == [mid]
        assert ledger.verify().ok
    finally:
        ledger.close()
    status, report, _ = run(capsys, "check", *where)
    assert status == 1
    assert [(d["kind"], d["message"]) for d in report["drift"]] == [("missing", mid)]
    status, report, _ = run(capsys, "check", "--repair", *where)
    assert status == 0 and report["repaired"] == 1 and report["ok"]
    assert home.outbox.ids() == []
    assert ok(capsys, "check", *where)["drift"] == []
    assert ok(capsys, "search", "crash", *where)["hits"][0]["text"] == text


def test_a_store_held_by_another_process_is_one_line_and_the_ledger_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a real second process holds the local store, a post and a vote fail with one line
    on stderr and exit status 1, and the ledger has neither the message nor the vote."""
    monkeypatch.setattr("becomingone.choir.home.model_available", lambda: False)
    where = ["--data-dir", str(tmp_path)]
    t = start(capsys, where)
    spec = ok(capsys, "submit", t, "a spec", "--as", "bob", *where)["spec"]
    code = (  # the store the CLI opens (the default engine's), held by another process
        "import sys, time; from pathlib import Path\n"
        "from becomingone.choir import ChoirHome\n"
        "s = ChoirHome(Path(sys.argv[1])).open_store()\n"
        "print('held', flush=True); time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        status = main(["choir", "post", t, "blocked", "--as", "ada", *where])
        _, err = capsys.readouterr()
        vote_status = main(["choir", "vote", spec, "approve", "--as", "ada", *where])
        _, vote_err = capsys.readouterr()
    finally:
        holder.kill()
        holder.wait(timeout=30)
        if holder.stdout:
            holder.stdout.close()
    assert status == 1
    assert "is open in another process" in err and len(err.strip().splitlines()) == 1
    assert vote_status == 1 and "is open in another process" in vote_err
    assert ok(capsys, "check", *where)["messages"] == 1  # the spec only
    [pending] = ok(capsys, "specs", *where)
    assert pending["votes"] == {}
    ChoirHome(tmp_path).open_store().close()  # released by the kill
