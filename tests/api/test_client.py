"""The typed client against a real loopback server: every method returns its model, errors
become ApiError with the body's code and field, a dead address a TransportError; and CORS is
answered only for configured origins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from becomingone.api import ApiError, ApiServer, ApiSettings, CellClient, create_app
from becomingone.errors import TransportError
from tests.api.conftest import Served, client_for, serve_cell
from tests.api.test_e2e import free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Served, str]]:
    """A running cell served on a free loopback port; yields it and the base URL."""
    async for served in serve_cell(tmp_path, ApiSettings()):
        app = served.client._transport.app  # type: ignore[attr-defined]
        api = ApiServer(app, "127.0.0.1", 0)
        await api.start()
        try:
            yield served, api.url
        finally:
            await api.aclose()


def use_every_method(url: str, token: str) -> dict[str, object]:
    """Call each client method once (in a worker thread: the client is synchronous)."""
    with CellClient(url, token=token) as api:
        return {
            "node": api.node().name,
            "config": api.config()["kairos"]["dt"],
            "state": api.state().samples,
            "now": api.coherence_now().outcome,
            "history": len(api.coherence_history(start=0, points=3).points),
            "json": api.post_signals([0.1, 0.2]).accepted,
            "csv": api.post_csv("0.3\n0.4\n0.5\n").accepted,
            "verify": api.verify().ok,
            "page": [r.seq for r in api.records(start=1, limit=2).records],
            "record": api.record(3).seq,
        }


async def test_every_client_method(server: tuple[Served, str]) -> None:
    """Each method answers with its typed model and the values the cell holds."""
    served, url = server
    out = await asyncio.to_thread(use_every_method, url, served.token)
    assert out.pop("now") in ("collapse", "dissipate")
    assert out == {
        "node": "cell",
        "config": 0.01,
        "state": 300,
        "history": 3,
        "json": 2,
        "csv": 3,
        "verify": True,
        "page": [1, 2],
        "record": 3,
    }
    assert served.inbox.queue.qsize() == 2


async def test_client_errors(server: tuple[Served, str]) -> None:
    """A refusal is an ApiError with status, code and field; no server is a TransportError."""
    _, url = server

    def refused() -> ApiError:
        with pytest.raises(ApiError) as caught, CellClient(url, token="bo1_wrong") as api:
            api.post_signals([0.1])
        return caught.value

    error = await asyncio.to_thread(refused)
    assert (error.status, error.code, error.field) == (401, "unauthorized", "Authorization")
    with pytest.raises(TransportError), CellClient(f"http://127.0.0.1:{free_port()}") as api:
        await asyncio.to_thread(api.node)


async def test_cors_only_for_configured_origins(live: Served, tmp_path: Path) -> None:
    """Without cors_origins no CORS header is sent; with one origin its preflight is allowed
    and another origin's is not."""
    plain = await live.client.get("/node", headers={"Origin": "http://dash.example"})
    assert "access-control-allow-origin" not in plain.headers
    settings = ApiSettings(cors_origins=("http://dash.example",))
    app = create_app(live.served, settings, tokens=live.tokens)
    async with client_for(app) as client:
        ask = {"Origin": "http://dash.example", "Access-Control-Request-Method": "POST"}
        ok = await client.options("/signals", headers=ask)
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "http://dash.example"
        other = await client.options("/signals", headers=ask | {"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers
