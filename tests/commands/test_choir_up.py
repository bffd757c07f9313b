"""``becomingone choir up`` as a user runs it: a real process on a free loopback port makes
the demo community, prints the UI URL and one login link per demo user; a vote driven over
HTTP with a link's token publishes the pending spec; /metrics shows the Choir's counts and a
residual of 0; SIGTERM stops it cleanly. Also ``users add`` and ``token`` print tokens that
the API accepts, and bad arguments are one line with exit status 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from becomingone.api import ChoirClient
from becomingone.api.choir import user_tokens
from becomingone.choir import ChoirHome
from becomingone.cli import main
from tests.api.test_e2e import CLI, free_port

pytestmark = pytest.mark.timeout(180)


def read_urls(proc: subprocess.Popen[str], deadline: float) -> dict[str, str]:
    """The ``ui`` URL and the ``login NAME`` links printed on stdout (until all 3 logins)."""
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    while sum(k.startswith("login") for k in urls) < 3:
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            raise AssertionError(f"choir up ended or stalled; printed {urls}")
        key, _, url = line.strip().partition(": ")
        urls[key] = url
    return urls


def test_choir_up_serves_a_demo_community(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's pending spec, approved by ada over HTTP with her login link's token, is
    published; metrics count the transactions; a second `choir up` on the same data dir is
    refused in one line (exit 1: the content store is held); SIGTERM ends the first with 0."""
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "choir", "up", "--serve", f"127.0.0.1:{port}", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        urls = read_urls(proc, time.monotonic() + 120)
        base = f"http://127.0.0.1:{port}"
        assert urls["ui"] == f"{base}/choir/"
        assert urls["login ada"].startswith(f"{base}/choir/#token=bo1_")
        token = urls["login ada"].partition("#token=")[2]
        with ChoirClient(base, token=token) as ada:
            assert ada.me().name == "ada"
            [thread] = ada.threads()
            [pending] = [m for m in ada.thread(thread.id).messages if m.status == "pending"]
            assert pending.author_name == "grace"
            assert ada.vote(pending.id, True).status == "published"
            assert ada.totals().residual == 0
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics)
            for s in family.samples
        }
        assert samples[("becomingone_choir_transactions_total", (("kind", "vote"),))] == 1
        assert samples[("becomingone_choir_transactions_total", (("kind", "join"),))] == 3
        assert samples[("becomingone_choir_conservation_residual", ())] == 0
        assert samples[("becomingone_choir_invariant_holds", ())] == 1
        assert samples[("becomingone_choir_thread_balances_consistent", ())] == 1
        assert samples[("becomingone_choir_balance", (("kind", "escrow"),))] == 0
        assert samples[("becomingone_choir_pending_specs", ())] == 0
        second = ["choir", "up", "--serve", "127.0.0.1:0", "--data-dir", str(tmp_path)]
        assert main(second) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "open in another process" in err[0]
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert "check --repair: 0 drift" in (proc.stderr.read() if proc.stderr else "")


def test_users_add_and_token_print_tokens_the_api_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``users add`` prints a token once, ``token NAME`` a second one; both name the user."""
    where = ["--data-dir", str(tmp_path), "--json"]
    assert main(["choir", "users", "add", "ada", *where]) == 0
    first = json.loads(capsys.readouterr().out)["token"]
    assert main(["choir", "token", "ada", *where]) == 0
    second = json.loads(capsys.readouterr().out)["token"]
    assert first != second and first.startswith("bo1_")
    home = ChoirHome(tmp_path)
    tokens = user_tokens(home)
    ledger = home.open(now=0.0)
    try:
        user = ledger.user_named("ada")
        assert user is not None
        for token in (first, second):
            info = tokens.check(token)
            assert info is not None and info.active and info.name.startswith(f"{user.id}.")
    finally:
        tokens.close()
        ledger.close()


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["up", "--serve", "10.0.0.1:80"], "--serve"),
        (["up", "--serve", "127.0.0.1:x"], "--serve"),
        (["token", "no body"], "name"),
        (["token", "nobody"], "name"),
    ],
)
def test_bad_arguments_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], where: str
) -> None:
    """A remote --serve, a bad port, a bad or unknown user name: exit 2, one line naming it."""
    assert main(["choir", *args, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and where in err
