"""The Choir page's files are served from the package at ``/choir/`` and ``/static/choir/``
with their content types and the shipped bytes, outside the OpenAPI schema."""

from __future__ import annotations

import httpx
import pytest

from becomingone.api.routers.ui import STATIC
from tests.api.conftest import Served


def root_client(app: object) -> httpx.AsyncClient:
    """A client on the app's root (the pages live outside /api/v1)."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50_000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.parametrize(
    ("path", "name", "media"),
    [
        ("/choir/", "index.html", "text/html"),
        ("/static/choir/index.html", "index.html", "text/html"),
        ("/static/choir/choir.js", "choir.js", "text/javascript"),
        ("/static/choir/choir.css", "choir.css", "text/css"),
    ],
)
async def test_choir_files_have_their_content_types(
    live: Served, path: str, name: str, media: str
) -> None:
    """Each Choir file answers 200 with its media type and the bytes in the package."""
    app = live.client._transport.app  # type: ignore[attr-defined]
    async with root_client(app) as client:
        answer = await client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] == media
    assert answer.content == (STATIC / "choir" / name).read_bytes()


async def test_choir_page_links_its_bundle_and_the_bare_path_redirects(live: Served) -> None:
    """The page links its own bundle and stylesheet (relative to /choir/, so /choir without
    the slash redirects there) and has the three panes the UI draws into."""
    app = live.client._transport.app  # type: ignore[attr-defined]
    async with root_client(app) as client:
        page = (await client.get("/choir/")).text
        bare = await client.get("/choir")
    assert 'src="../static/choir/choir.js"' in page
    assert 'href="../static/choir/choir.css"' in page
    for pane in ('id="messages"', 'id="specs"', 'id="flow-list"', 'id="wallet"'):
        assert pane in page
    assert bare.status_code == 308 and bare.headers["location"] == "/choir/"


def test_choir_page_is_not_in_the_openapi_schema(live: Served) -> None:
    """The page routes stay out of the schema (only /api/v1 paths are there)."""
    app = live.client._transport.app  # type: ignore[attr-defined]
    assert not any(p.startswith("/choir") for p in app.openapi()["paths"])
