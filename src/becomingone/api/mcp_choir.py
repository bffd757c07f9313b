"""The Choir tools of the MCP server: post to and search a Choir's threads, submit a spec and
vote on one, through a served Choir's HTTP API.

Rule: thin, like :mod:`becomingone.api.mcp_server`. :class:`ChoirTools` checks the arguments
and calls :class:`~becomingone.api.client.ChoirClient` (writes as the Choir user whose bearer
token the server was given); :func:`register_choir_tools` adds the ``choir_*`` tools to an
``MCPServer``. Each call runs in a worker thread; every failure the caller can cause (a bad
argument, a Choir that refuses with its rule's code or cannot be reached) is an MCP tool
error of one line, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

import anyio
import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from becomingone.api.client import ApiError, ChoirClient
from becomingone.errors import BecomingOneError, InputError, TransportError

__all__ = ["CHOIR_TOKEN_ENV", "ChoirTools", "register_choir_tools"]

T = TypeVar("T")

#: The environment variable that holds the Choir user's bearer token.
CHOIR_TOKEN_ENV = "BECOMINGONE_CHOIR_TOKEN"
#: Longest text one tool call may post or submit (the Choir has its own limits too).
MAX_TEXT = 20_000


def _text(name: str, text: str) -> str:
    if not text.strip():
        raise InputError(name, "must not be blank")
    if len(text) > MAX_TEXT:
        raise InputError(name, f"at most {MAX_TEXT} characters, got {len(text)}")
    return text


def _id(name: str, value: str) -> str:
    if not value or len(value) > 128 or not value.isprintable() or "/" in value:
        raise InputError(name, f"is not an id, got {value!r}")
    return value


class ChoirTools:
    """What the Choir tools do, as plain methods (usable and testable without MCP).

    Parameters
    ----------
    url : str, optional
        The served Choir's API (``http://127.0.0.1:8795``); without it every tool says so.
    token : str, optional
        A Choir user's bearer token, needed to post, submit and vote.
    timeout : float
        Seconds per API request.
    """

    def __init__(
        self, url: str | None = None, *, token: str | None = None, timeout: float = 10.0
    ) -> None:
        self.url, self.token, self.timeout = url, token, timeout

    def _call(self, fn: Callable[[ChoirClient], T], *, write: bool = False) -> T:
        if self.url is None:
            raise InputError("choir_url", "no Choir: start `becomingone mcp` with --choir-url")
        if write and self.token is None:
            raise InputError("token", f"Choir writes need a user's token: set {CHOIR_TOKEN_ENV}")
        with ChoirClient(self.url, token=self.token, timeout=self.timeout) as client:
            try:
                return fn(client)
            except (httpx.HTTPError, TransportError) as exc:
                raise InputError("choir_url", f"cannot reach the Choir at {self.url}") from exc

    def threads(self) -> dict[str, Any]:
        """Every thread, oldest first."""
        return self._call(lambda c: {"threads": [t.model_dump() for t in c.threads()]})

    def post(self, thread_id: str, text: str) -> dict[str, Any]:
        """Post ``text`` to a thread as its co-author."""
        thread_id, text = _id("thread_id", thread_id), _text("text", text)
        return self._call(lambda c: c.post(thread_id, text).model_dump(), write=True)

    def search(self, query: str, thread_id: str | None = None, k: int = 5) -> dict[str, Any]:
        """Published messages nearest ``query`` in meaning (in one thread, or all)."""
        query = _text("query", query)
        if not 1 <= k <= 50:
            raise InputError("k", f"must be in [1, 50], got {k}")
        thread = None if thread_id is None else _id("thread_id", thread_id)
        return self._call(
            lambda c: {"hits": [h.model_dump() for h in c.search(query, thread=thread, k=k)]}
        )

    def submit(self, thread_id: str, text: str, stake: int | None = None) -> dict[str, Any]:
        """Submit ``text`` as a spec, staking ``stake`` CHOIR (default: the price now)."""
        thread_id, text = _id("thread_id", thread_id), _text("text", text)
        if stake is not None and stake <= 0:
            raise InputError("stake", f"must be > 0 CHOIR, got {stake}")
        return self._call(lambda c: c.submit(thread_id, text, stake=stake).model_dump(), write=True)

    def vote(self, spec_id: str, choice: str) -> dict[str, Any]:
        """Approve or deny a pending spec as a co-author."""
        spec_id = _id("spec_id", spec_id)
        if choice not in ("approve", "deny"):
            raise InputError("choice", f"must be approve or deny, got {choice!r}")
        return self._call(lambda c: c.vote(spec_id, choice == "approve").model_dump(), write=True)


async def _run(fn: Callable[[], T]) -> T:
    """``fn`` in a worker thread; anything the caller caused becomes a tool error."""
    try:
        return await anyio.to_thread.run_sync(fn)
    except ApiError as exc:
        raise ToolError(f"the Choir refused: {exc}") from exc
    except (BecomingOneError, ValueError, OSError) as exc:
        raise ToolError(str(exc)) from exc


def register_choir_tools(server: MCPServer, tools: ChoirTools) -> None:
    """Add ``choir_threads``, ``choir_post``, ``choir_search``, ``choir_submit`` and
    ``choir_vote`` to ``server``."""

    @server.tool()
    async def choir_threads() -> dict[str, Any]:
        """The Choir's threads (id, title, co-authors), oldest first."""
        return await _run(tools.threads)

    @server.tool()
    async def choir_post(thread_id: str, text: str) -> dict[str, Any]:
        """Post a message to a Choir thread as its co-author (uses the Choir token)."""
        return await _run(lambda: tools.post(thread_id, text))

    @server.tool()
    async def choir_search(query: str, thread_id: str | None = None, k: int = 5) -> dict[str, Any]:
        """The k published Choir messages nearest the query in meaning (priors), in one
        thread or in all of them."""
        return await _run(lambda: tools.search(query, thread_id, k))

    @server.tool()
    async def choir_submit(thread_id: str, text: str, stake: int | None = None) -> dict[str, Any]:
        """Submit a spec to a Choir thread, staking CHOIR (default: the price now); the
        co-authors vote on it (uses the Choir token)."""
        return await _run(lambda: tools.submit(thread_id, text, stake))

    @server.tool()
    async def choir_vote(spec_id: str, choice: Literal["approve", "deny"]) -> dict[str, Any]:
        """Approve or deny a pending spec as a co-author of its thread (uses the Choir token)."""
        return await _run(lambda: tools.vote(spec_id, choice))
