"""End to end: `becomingone up --serve` as a real subprocess on a free loopback port — POST
signals with a token, read coherence, stream ticks over the WebSocket, bad input of every kind
refused while the cell keeps running, stop by PID; then `becomingone serve` on the same data
dir, read-only."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from becomingone.api import ApiError, CellClient, TokenStore
from becomingone.runtime.sources import synthetic_phase

pytestmark = pytest.mark.timeout(120)

CLI = [sys.executable, "-m", "becomingone.cli"]
CONFIG = """\
becomingone:
  name: api-e2e
  master: {tau_max: 30.0, witness_interval: 5.0}
  memory: {flush_interval: 0.25}
  api: {rate_per_second: 1.0, rate_burst: 8, max_body_bytes: 65536}
"""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """`up --serve` with the api source; yields (process, base URL, data dir); always stopped."""
    config = tmp_path / "cell.yaml"
    config.write_text(CONFIG)
    data = tmp_path / "data"
    port = free_port()
    proc = subprocess.Popen(
        [
            *CLI,
            "up",
            "--config",
            str(config),
            "--data-dir",
            str(data),
            "--source",
            "api",
            "--serve",
            f"127.0.0.1:{port}",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, url)
        yield proc, url, data
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def wait_until_up(
    proc: subprocess.Popen[str], url: str, seconds: float = 60.0, path: str = "/api/v1/node"
) -> None:
    """Poll GET ``path`` until it answers (bounded); fail with stderr if the process ended."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server ended: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}{path}", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail("the API did not come up")


async def until(check, seconds: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """Wait (bounded) until ``check()`` is true."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_up_serve_end_to_end(started: tuple[subprocess.Popen[str], str, Path]) -> None:
    """Posted samples are ingested (samples, coherence, ticks on the WebSocket); every bad
    request gets its status and one-line body; the process stays up; SIGTERM ends it with 0."""
    proc, url, data = started
    tokens = TokenStore(data)
    token = tokens.create("e2e")
    api = CellClient(url, token=token)
    ticks: list[dict[str, object]] = []

    async def listen() -> None:
        async for message in api.events(types=["tick"]):
            ticks.append(message)

    listener = asyncio.ensure_future(listen())
    await until(lambda: bool(ticks))  # the `resumed` marker: subscribed
    for i in range(4):
        accepted = await asyncio.to_thread(
            api.post_signals, synthetic_phase(i * 50, 50, dt=0.01).tolist()
        )
        assert accepted.accepted == 50
    await until(lambda: api.state().samples == 200)
    now = api.coherence_now()
    assert now.t == pytest.approx(1.99) and 0.0 <= now.sync <= 1.0
    await until(lambda: sum(m["type"] == "tick" for m in ticks) >= 4)
    assert api.verify().ok

    refusals, extra = bad_requests(url, token, tokens)
    assert refusals == {
        "bad_json": 400,
        "invalid": 422,
        "too_large": 413,
        "unauthorized": 401,
        "token_revoked": 403,
        "rate_limited": 429,
    }
    reader = CellClient(url)  # reads need no token on loopback
    await until(lambda: reader.state().samples == 200 + extra)
    assert proc.poll() is None and set(reader.state().api_errors) == set(refusals)
    reader.close()
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    api.close()
    tokens.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def bad_requests(url: str, token: str, tokens: TokenStore) -> tuple[dict[str, int], int]:
    """Send one request of each bad kind; the error code → status of each answer, and the
    samples accepted on the way to the rate limit."""
    out: dict[str, int] = {}
    post = f"{url}/api/v1/signals"
    good = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for body, headers in (
        (b'{"samples": [0.1,', good),
        (b'{"samples": [NaN]}', good),
        (b"[" + b"0.1," * 30_000 + b"0.1]", good),
        (b'{"samples": [0.1]}', {"Authorization": "Bearer bo1_wrong"}),
    ):
        answer = httpx.post(post, content=body, headers=headers, timeout=10)
        error = answer.json()["error"]
        assert set(error) == {"code", "message", "field"} and "\n" not in error["message"]
        out[error["code"]] = answer.status_code
    client = CellClient(url, token=token)
    accepted = 0
    with pytest.raises(ApiError) as limited:
        for _ in range(20):
            accepted += client.post_signals([0.5]).accepted
    out[limited.value.code] = limited.value.status
    client.close()
    tokens.revoke("e2e")
    with pytest.raises(ApiError) as revoked:
        CellClient(url, token=token).post_signals([0.5])
    out[revoked.value.code] = revoked.value.status
    return out, accepted


def test_serve_a_stopped_cell_read_only(tmp_path: Path) -> None:
    """After `up` has run, `serve --data-dir` answers reads and refuses writes with 405."""
    data = tmp_path / "data"
    ran = subprocess.run(
        [*CLI, "up", "--data-dir", str(data), "--duration", "1.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--data-dir", str(data), "--listen", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, url)
        client = CellClient(url, token="bo1_any")
        assert client.node().running is False and client.verify().ok
        assert client.records(limit=5).total > 0
        with pytest.raises(ApiError) as refused:
            client.post_signals([0.1])
        assert (refused.value.status, refused.value.code) == (405, "read_only")
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize(
    "command", [["up", "--serve", "0.0.0.0:8787"], ["serve", "--listen", "192.0.2.1:80"]]
)
def test_beyond_loopback_is_refused_without_config(tmp_path: Path, command: list[str]) -> None:
    """A non-loopback address is exit 2 with one line naming --serve/--listen, before any
    cell starts (no data dir is created)."""
    ran = subprocess.run(
        [*CLI, *command, "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 2
    assert ran.stderr.count("\n") == 1 and "api.allow_remote" in ran.stderr
    assert not (tmp_path / "d").exists()
    assert json.dumps(ran.stdout) == '""'
