"""schemathesis against the live app: `becomingone up --serve` as a subprocess, every route
fuzzed from the OpenAPI document (examples, coverage and fuzzing phases), and nothing found —
no 500, no undocumented status, no schema-valid request refused, no answer off its schema.

One check is left out: ``negative_data_rejection`` counts a ``text/csv`` body generated as the
integer ``0`` (sent as the text ``0``, a valid one-sample CSV) as a wrongly typed body that
should have been refused; a text body cannot carry that type, so the finding is the tool's.
The JSON negatives it would cover are tested in ``test_signals.py``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sysconfig
from pathlib import Path

import pytest

from becomingone.api import TokenStore
from tests.api.test_e2e import CLI, free_port, wait_until_up

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SCHEMATHESIS = shutil.which("schemathesis", path=sysconfig.get_path("scripts"))


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (dev extra)")
def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    """`schemathesis run` with a write token exits 0 against a running cell's API."""
    data = tmp_path / "data"
    tokens = TokenStore(data)
    token = tokens.create("fuzz")
    tokens.close()
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "up", "--data-dir", str(data), "--serve", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, url)
        run = fuzz(
            url,
            tmp_path,
            "-H",
            f"Authorization: Bearer {token}",
            "--exclude-checks",
            "negative_data_rejection",
        )
        assert run.returncode == 0, run.stdout[-4000:]
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def fuzz(url: str, cwd: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`schemathesis run` against the OpenAPI document at ``url`` (fixed seed)."""
    return subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{url}/api/v1/openapi.json",
            "--max-examples",
            "30",
            "--seed",
            "20261202",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,  # its cache directory goes there, not into the checkout
    )


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (dev extra)")
def test_schemathesis_finds_nothing_on_a_cluster(tmp_path: Path) -> None:
    """`schemathesis run` with a write token exits 0 against `becomingone cluster --cells
    full --roles --serve` (cluster, glyph, roles and proposal routes) while it runs."""
    data = tmp_path / "cluster"
    tokens = TokenStore(data)
    token = tokens.create("fuzz")
    tokens.close()
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "cluster", "--cells", "full", "--roles", "--nodes", "3", "--duration", "600",
         "--data-dir", str(data), "--serve", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, url, path="/api/v1/cluster/roles")
        run = fuzz(url, tmp_path, "-H", f"Authorization: Bearer {token}")
        assert run.returncode == 0, run.stdout[-4000:]
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(timeout=30)
