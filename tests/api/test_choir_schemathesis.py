"""schemathesis against `becomingone choir up` as a subprocess: every Choir route fuzzed
from the OpenAPI document with a demo user's token (examples, coverage and fuzzing phases),
and nothing found — no 500, no undocumented status, no schema-valid request refused, no
answer off its schema."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.api.test_e2e import CLI, free_port
from tests.api.test_schemathesis import SCHEMATHESIS, fuzz
from tests.commands.test_choir_up import read_urls

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (dev extra)")
def test_schemathesis_finds_nothing_on_the_choir(tmp_path: Path) -> None:
    """`schemathesis run` with ada's token exits 0 against `choir up` while it runs."""
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "choir", "up", "--serve", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "d")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        token = read_urls(proc, time.monotonic() + 120)["login ada"].partition("#token=")[2]
        run = fuzz(f"http://127.0.0.1:{port}", tmp_path, "-H", f"Authorization: Bearer {token}")
        assert run.returncode == 0, run.stdout[-4000:]
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
