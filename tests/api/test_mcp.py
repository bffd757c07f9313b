"""`becomingone mcp` driven by the official SDK's client over stdio (a real subprocess) against
a real `up --serve` cell: every tool and resource answers, writes use the token, and bad
arguments come back as tool errors while the server keeps serving."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from becomingone.api import TokenStore

pytestmark = pytest.mark.timeout(180)

CLI = [sys.executable, "-m", "becomingone.cli"]
CONFIG = """\
becomingone:
  name: mcp-cell
  master: {tau_max: 30.0, witness_interval: 5.0}
  memory: {flush_interval: 0.25}
"""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def cell(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A running `up --serve` cell on the synthetic source: (API URL, write token); stopped
    by its PID at the end."""
    config = tmp_path / "cell.yaml"
    config.write_text(CONFIG)
    data = tmp_path / "data"
    store = TokenStore(data)
    token = store.create("mcp")
    store.close()
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "up", "--config", str(config), "--data-dir", str(data), "--serve", f"{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the cell API never answered"
            try:
                if httpx.get(f"{url}/api/v1/coherence/now", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url, token
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def server(*args: str, token: str | None = None) -> StdioServerParameters:
    """`becomingone mcp` with ``args`` as the SDK launches it (token in the environment)."""
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    if token is not None:
        env["BECOMINGONE_TOKEN"] = token
    return StdioServerParameters(
        command=sys.executable, args=["-m", "becomingone.cli", "mcp", *args], env=env
    )


def data(result: Any) -> dict[str, Any]:
    """The JSON object a successful tool call returned."""
    assert not result.is_error, result.content
    if result.structured_content is not None:
        out = result.structured_content
        return out.get("result", out) if set(out) == {"result"} else out
    loaded: dict[str, Any] = json.loads(result.content[0].text)
    return loaded


def error_text(result: Any) -> str:
    """The message of a tool error (fails if the call succeeded)."""
    assert result.is_error, result
    text: str = result.content[0].text
    return text


async def test_tools_and_resources_over_stdio(cell: tuple[str, str], tmp_path: Path) -> None:
    """Over stdio: the six tools are listed; analyze_file reports a steady sine as coherent;
    ingest_samples is accepted with the token; coherence, history, verify and records read the
    cell; both resources are JSON of the same cell; bad arguments are tool errors."""
    url, token = cell
    csv = tmp_path / "sine.csv"
    csv.write_text("\n".join(f"{math.sin(2 * math.pi * 2 * i * 0.01):.6f}" for i in range(1000)))
    async with Client(server("--stdio", "--url", url, token=token)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {
            "analyze_file",
            "ingest_samples",
            "coherence_now",
            "coherence_history",
            "verify_witness_chain",
            "witness_records",
            "cluster_status",
            "list_glyphs",
            "submit_glyph",
            "cancel_glyph",
            "propose",
            "list_proposals",
            "vote",
            "choir_threads",
            "choir_post",
            "choir_search",
            "choir_submit",
            "choir_vote",
        }
        report = data(await client.call_tool("analyze_file", {"path": str(csv), "dt": 0.01}))
        assert report["samples"] == 1000 and report["collapses"] > 0
        accepted = data(await client.call_tool("ingest_samples", {"samples": [0.1, 0.2, 0.3]}))
        assert accepted["accepted"] == 3
        now = data(await client.call_tool("coherence_now", {}))
        assert 0.0 <= now["sync"] <= 1.0
        history = data(await client.call_tool("coherence_history", {"points": 50}))
        assert 0 < len(history["points"]) <= 50
        verified = data(await client.call_tool("verify_witness_chain", {}))
        assert verified["ok"] is True and verified["checked"] > 0
        page = data(await client.call_tool("witness_records", {"limit": 5}))
        seqs = [r["seq"] for r in page["records"]]  # the live cell may append meanwhile
        assert seqs == list(range(seqs[0], seqs[0] + 5)) and seqs[-1] <= page["total"] - 1
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert uris == {"becomingone://witness/records", "becomingone://coherence/history"}
        res = await client.read_resource("becomingone://witness/records")
        assert json.loads(res.contents[0].text)["records"]
        res = await client.read_resource("becomingone://coherence/history")
        assert json.loads(res.contents[0].text)["points"]

        missing = await client.call_tool("analyze_file", {"path": str(tmp_path / "no.csv")})
        assert "is not a readable file" in error_text(missing)
        assert error_text(await client.call_tool("ingest_samples", {"samples": ["x"]}))
        assert "at least one" in error_text(
            await client.call_tool("ingest_samples", {"samples": []})
        )
        bad = await client.call_tool("coherence_history", {"points": 0})
        assert "points" in error_text(bad)
        assert data(await client.call_tool("coherence_now", {}))  # still serving


async def test_without_a_cell_or_token_the_tools_say_what_is_missing(tmp_path: Path) -> None:
    """Without --url the cell tools are tool errors naming --url; analyze_file still works
    offline; an unreachable cell is a tool error naming its URL; no token: ingest refused."""
    csv = tmp_path / "x.csv"
    csv.write_text("\n".join(str(math.sin(i / 5)) for i in range(400)))
    async with Client(server()) as client:
        assert "--url" in error_text(await client.call_tool("coherence_now", {}))
        report = data(await client.call_tool("analyze_file", {"path": str(csv), "dt": 0.01}))
        assert report["samples"] == 400
    dead = f"http://127.0.0.1:{free_port()}"
    async with Client(server("--url", dead)) as client:
        assert "cannot reach the cell" in error_text(
            await client.call_tool("verify_witness_chain", {})
        )
        no_token = await client.call_tool("ingest_samples", {"samples": [1.0]})
        assert "BECOMINGONE_TOKEN" in error_text(no_token)


def test_a_bad_url_or_address_is_one_line_and_status_2() -> None:
    """`mcp --url ftp://x` and `mcp --http nine` exit 2 with one line naming the flag."""
    for args, flag in ((["--url", "ftp://x"], "--url"), (["--http", "nine"], "--http")):
        run = subprocess.run([*CLI, "mcp", *args], capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and run.stdout == ""
        assert run.stderr.strip().count("\n") == 0 and flag in run.stderr


async def test_tools_over_streamable_http(cell: tuple[str, str], tmp_path: Path) -> None:
    """`mcp --http 127.0.0.1:PORT`: the SDK's client reaches /mcp, reads the cell's coherence
    through it and gets a tool error for a bad argument; the server is stopped by its PID."""
    url, _ = cell
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "mcp", "--http", f"127.0.0.1:{port}", "--url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the MCP server never listened"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            now = data(await client.call_tool("coherence_now", {}))
            assert 0.0 <= now["master"] <= 1.0
            bad = await client.call_tool("witness_records", {"limit": 0})
            assert "limit" in error_text(bad)
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture
def served_cluster(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`cluster --cells full --serve` with a token in its data dir: (API URL, token); stopped
    by its PID at the end."""
    data = tmp_path / "cluster"
    store = TokenStore(data)
    token = store.create("mcp")
    store.close()
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "cluster", "--cells", "full", "--nodes", "3", "--duration", "300",
         "--data-dir", str(data), "--serve", f"{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the cluster API never answered"
            try:
                if httpx.get(f"{url}/api/v1/cluster", timeout=2).json()["frame"]:
                    break
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(0.2)
        yield url, token
    finally:
        proc.kill()
        proc.wait(timeout=30)


async def test_cluster_tools_over_stdio(served_cluster: tuple[str, str]) -> None:
    """Against `cluster --serve`: cluster_status reads the cells (and leaves them out when
    asked), submit_glyph runs a probe on a cell, list_glyphs shows it, cancel_glyph ends it;
    an unknown kind and an unknown glyph are tool errors; the cell tools say 404 there."""
    url, token = served_cluster
    async with Client(server("--stdio", "--url", url, token=token)) as client:
        status = data(await client.call_tool("cluster_status", {}))
        assert status["cluster"]["cells"] == 3 and len(status["frame"]["members"]) == 3
        short = data(await client.call_tool("cluster_status", {"members": False}))
        assert "members" not in short["frame"] and "band" in short["frame"]
        made = data(
            await client.call_tool(
                "submit_glyph", {"kind": "probe", "payload": {"probe": "loadavg"}, "theta": 0.5}
            )
        )
        assert made["owner"].startswith("cell-") and made["state"] == "scheduled"
        listed = data(await client.call_tool("list_glyphs", {}))
        assert [g["id"] for g in listed["glyphs"]] == [made["id"]]
        gone = data(await client.call_tool("cancel_glyph", {"glyph_id": made["id"]}))
        assert gone["state"] == "cancelled"
        assert "unknown kind" in error_text(await client.call_tool("submit_glyph", {"kind": "x"}))
        assert "404" in error_text(await client.call_tool("cancel_glyph", {"glyph_id": "nope"}))
        assert "404" in error_text(await client.call_tool("coherence_now", {}))


@pytest.fixture(scope="module")
def roles_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """`cluster --cells full --nodes 5 --roles --serve` with a token: (API URL, token, its
    Validator) once a Validator holds its role; stopped by its PID at the end."""
    data = tmp_path_factory.mktemp("roles") / "cluster"
    store = TokenStore(data)
    token = store.create("mcp")
    store.close()
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "cluster", "--cells", "full", "--nodes", "5", "--roles", "--alpha", "0.3",
         "--spread", "0.05", "--duration", "300", "--data-dir", str(data), "--serve", f"{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the cluster formed no Validator in time"
            try:
                validators = httpx.get(f"{url}/api/v1/cluster/roles", timeout=2).json()[
                    "validators"
                ]
                if validators:
                    break
            except (httpx.TransportError, ValueError, KeyError):
                pass
            time.sleep(0.3)
        yield url, token, validators[0]
    finally:
        proc.kill()
        proc.wait(timeout=30)


async def test_propose_list_and_vote_over_stdio(roles_cluster: tuple[str, str, str]) -> None:
    """Against `cluster --roles --serve`: propose a text (open, the Validator eligible),
    list_proposals shows it with the Validators, an Executor's vote is a tool error naming
    not_validator, the Validator's yes passes it (recorded); a glyph proposal passes and runs
    the probe on a cell; bad arguments (neither or both of text and glyph, a bad theta, a
    malformed id, a vote that is not yes or no, a vote on a decided proposal) are tool
    errors and the server keeps serving."""
    url, token, validator = roles_cluster
    async with Client(server("--stdio", "--url", url, token=token)) as client:
        made = data(await client.call_tool("propose", {"text": "drain cell-0004"}))
        assert (made["kind"], made["status"], made["eligible"]) == ("command", "open", [validator])
        listed = data(await client.call_tool("list_proposals", {}))
        assert listed["validators"] == [validator] and listed["lifecycle"] != "pre_cluster"
        assert made["id"] in [p["id"] for p in listed["proposals"]]
        roles = httpx.get(f"{url}/api/v1/cluster/roles", timeout=5).json()
        executor = next(c for c, r in roles["cells"].items() if r["role"] == "executor")
        args = {"proposal_id": made["id"], "vote": "yes", "cell": executor}
        assert "not_validator" in error_text(await client.call_tool("vote", args))
        done = data(await client.call_tool("vote", {**args, "cell": validator}))
        assert done["status"] == "passed" and done["executed"] == {"ok": True, "detail": "recorded"}
        assert "closed" in error_text(await client.call_tool("vote", {**args, "cell": validator}))

        glyph = {"glyph": "probe", "payload": {"probe": "loadavg"}, "theta": 0.5}
        made = data(await client.call_tool("propose", glyph))
        assert made["kind"] == "glyph.submit" and made["payload"]["glyph"]["kind"] == "probe"
        done = data(
            await client.call_tool(
                "vote", {"proposal_id": made["id"], "vote": "yes", "cell": validator}
            )
        )
        assert done["status"] == "passed" and done["executed"]["ok"], done
        assert "on cell-" in done["executed"]["detail"]

        assert "one of them" in error_text(await client.call_tool("propose", {}))
        both = await client.call_tool("propose", {"text": "x", "glyph": "probe"})
        assert "one of them" in error_text(both)
        bad_theta = await client.call_tool("propose", {"glyph": "probe", "theta": 2.0})
        assert "theta" in error_text(bad_theta)
        bad_id = await client.call_tool(
            "vote", {"proposal_id": "nothex", "vote": "yes", "cell": validator}
        )
        assert "16 hex digits" in error_text(bad_id)
        assert error_text(
            await client.call_tool(
                "vote", {"proposal_id": made["id"], "vote": "maybe", "cell": validator}
            )
        )
        assert data(await client.call_tool("list_proposals", {"all": True, "limit": 5}))
    async with Client(server("--stdio", "--url", url)) as client:  # no token
        assert "BECOMINGONE_TOKEN" in error_text(
            await client.call_tool("propose", {"text": "no token"})
        )


async def test_propose_and_vote_over_streamable_http(
    roles_cluster: tuple[str, str, str],
) -> None:
    """`mcp --http` with the token in its environment: propose and vote pass a text through
    the SDK's HTTP client; a bad limit is a tool error; the server is stopped by its PID."""
    url, token, validator = roles_cluster
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "mcp", "--http", f"127.0.0.1:{port}", "--url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "BECOMINGONE_TOKEN": token},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the MCP server never listened"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            made = data(await client.call_tool("propose", {"text": "over http"}))
            done = data(
                await client.call_tool(
                    "vote", {"proposal_id": made["id"], "vote": "yes", "cell": validator}
                )
            )
            assert done["status"] == "passed"
            bad = await client.call_tool("list_proposals", {"limit": 0})
            assert "limit" in error_text(bad)
    finally:
        proc.kill()
        proc.wait(timeout=30)
