"""The ``choir_*`` tools of `becomingone mcp`, driven by the official SDK's client over stdio (a
real subprocess) against a served Choir on a loopback port: threads, post, submit, vote and
search as two users (their tokens in the environment); the Choir's refusals and bad arguments
come back as tool errors while the server keeps serving."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from becomingone.api import ApiServer, ChoirClient
from tests.api.choirhelpers import Community, community
from tests.api.test_mcp import data, error_text, free_port

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Community, str, str]]:
    """ada, grace and alan's Choir on a free loopback port, with ada's thread "tides":
    (the community, the base URL, the thread id)."""
    for c in community(tmp_path / "data"):
        api = ApiServer(c.app, "127.0.0.1", 0)
        await api.start()
        try:
            yield c, api.url, await asyncio.to_thread(make_thread, api.url, c.tokens["ada"])
        finally:
            await api.aclose()


def make_thread(url: str, token: str) -> str:
    """The id of a new thread "tides" of the token's user."""
    with ChoirClient(url, token=token) as user:
        return user.create_thread("tides").id


def server(*args: str, token: str | None = None) -> StdioServerParameters:
    """`becomingone mcp` with ``args`` (a Choir user's token in the environment)."""
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    if token is not None:
        env["BECOMINGONE_CHOIR_TOKEN"] = token
    return StdioServerParameters(
        command=sys.executable, args=["-m", "becomingone.cli", "mcp", *args], env=env
    )


async def test_post_submit_vote_and_search(served: tuple[Community, str, str]) -> None:
    """grace sees ada's thread, cannot post to it (not_coauthor, a tool error) but submits a
    spec with a stake; ada posts (published), approves the spec (the only co-author's vote:
    it is published) and finds her post by meaning; a bad choice, k or blank text is a tool
    error and the server keeps serving."""
    c, url, thread = served
    async with Client(server("--choir-url", url, token=c.tokens["grace"])) as grace:
        names = {t.name for t in (await grace.list_tools()).tools}
        assert {"choir_threads", "choir_post", "choir_search", "choir_submit"} <= names
        threads = data(await grace.call_tool("choir_threads", {}))["threads"]
        assert [t["id"] for t in threads] == [thread]
        refused = await grace.call_tool("choir_post", {"thread_id": thread, "text": "hi"})
        assert "the Choir refused" in error_text(refused) and "not_coauthor" in error_text(refused)
        spec = data(
            await grace.call_tool(
                "choir_submit", {"thread_id": thread, "text": "the sun", "stake": 80}
            )
        )
        assert spec["stake"] == 80 and spec["status"] == "pending"
    async with Client(server("--choir-url", url, token=c.tokens["ada"])) as ada:
        post = data(
            await ada.call_tool(
                "choir_post", {"thread_id": thread, "text": "the moon pulls the sea"}
            )
        )
        assert post["status"] == "published"
        vote = data(await ada.call_tool("choir_vote", {"spec_id": spec["id"], "choice": "approve"}))
        assert (vote["spec_id"], vote["choice"], vote["status"]) == (
            spec["id"],
            "approve",
            "published",
        )  # ada is the only co-author: her vote decides it
        hits = data(await ada.call_tool("choir_search", {"query": "moon sea", "k": 1}))["hits"]
        assert [h["message_id"] for h in hits] == [post["id"]]
        bad = await ada.call_tool("choir_vote", {"spec_id": spec["id"], "choice": "maybe"})
        assert error_text(bad)
        assert "k" in error_text(await ada.call_tool("choir_search", {"query": "x", "k": 0}))
        blank = await ada.call_tool("choir_post", {"thread_id": thread, "text": "  "})
        assert "blank" in error_text(blank)
        assert data(await ada.call_tool("choir_threads", {}))  # still serving


async def test_without_a_choir_or_token_the_tools_say_what_is_missing(
    served: tuple[Community, str, str],
) -> None:
    """Without --choir-url the tools name it; without a token a post names the environment
    variable; an unreachable Choir names its URL; a bad --choir-url is exit 2."""
    _, url, thread = served
    async with Client(server()) as client:
        assert "--choir-url" in error_text(await client.call_tool("choir_threads", {}))
    async with Client(server("--choir-url", url)) as client:
        no_token = await client.call_tool("choir_post", {"thread_id": thread, "text": "x"})
        assert "BECOMINGONE_CHOIR_TOKEN" in error_text(no_token)
        assert data(await client.call_tool("choir_threads", {}))  # reads need no token
    dead = f"http://127.0.0.1:{free_port()}"
    async with Client(server("--choir-url", dead)) as client:
        assert "cannot reach the Choir" in error_text(await client.call_tool("choir_threads", {}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "becomingone.cli", "mcp", "--choir-url", "ftp://x",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2 and out == b"" and b"--choir-url" in err
