"""The dashboard's files are served with their content types from the package (no Node at
run time), and ``GET /resonance`` maps the cell's recent stream with the core map function."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from becomingone.api import ApiSettings, ServedCell, create_app
from becomingone.api.routers.resonance import MIN_SAMPLES, map_of
from becomingone.api.routers.ui import STATIC
from becomingone.core.resmap import resonance_map
from becomingone.runtime.cell import Cell
from tests.api.conftest import Served, client_for
from tests.helpers import small_config


def root_client(app: object) -> httpx.AsyncClient:
    """A client on the app's root (the dashboard lives outside /api/v1)."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50_000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.parametrize(
    ("path", "media"),
    [
        ("/", "text/html"),
        ("/static/index.html", "text/html"),
        ("/static/dashboard.js", "text/javascript"),
        ("/static/dashboard.css", "text/css"),
    ],
)
async def test_dashboard_files_have_their_content_types(
    live: Served, path: str, media: str
) -> None:
    """Each dashboard file answers 200 with its media type and the bytes in the package."""
    app = live.client._transport.app  # type: ignore[attr-defined]
    async with root_client(app) as client:
        answer = await client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] == media
    name = "index.html" if path == "/" else path.rsplit("/", 1)[1]
    assert answer.content == (STATIC / name).read_bytes()


async def test_the_page_loads_the_bundle_and_a_missing_file_is_the_error_body(
    live: Served,
) -> None:
    """The page links the shipped bundle and stylesheet; an unknown static file is a 404 with
    the one error body (not Starlette's plain text)."""
    app = live.client._transport.app  # type: ignore[attr-defined]
    async with root_client(app) as client:
        page = (await client.get("/")).text
        missing = await client.get("/static/nope.js")
    assert 'src="static/dashboard.js"' in page and 'href="static/dashboard.css"' in page
    assert 'id="band"' in page and 'id="phase"' in page
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_the_dashboard_is_not_in_the_openapi_schema(live: Served) -> None:
    """Only /api/v1 routes are in the schema (schemathesis and the completeness test read it)."""
    app = live.client._transport.app  # type: ignore[attr-defined]
    assert all(p.startswith("/api/v1/") for p in app.openapi()["paths"])


async def test_resonance_is_the_core_map_of_the_recent_samples(live: Served) -> None:
    """The route's map equals resonance_map over the replay log's newest samples, on the
    grid it reports, and its peak is the largest cell."""
    answer = await live.client.get("/resonance", params={"samples": 200, "lags": 5, "omegas": 9})
    assert answer.status_code == 200
    body = answer.json()
    recent = live.served.recent_samples(200)
    assert body["samples"] == recent.shape[0] == 200
    expected = resonance_map(recent, live.cell.dt, body["lags"], body["omegas"]).power
    np.testing.assert_allclose(body["power"], expected, atol=1e-6)
    flat = np.asarray(body["power"])
    assert body["peak"]["power"] == pytest.approx(flat.max(), abs=1e-6)
    assert len(body["lags"]) == 5 and len(body["omegas"]) == 9


def test_map_of_a_steady_oscillation_peaks_at_omega_zero() -> None:
    """A steady phase ramp resonates fully at ω = 0 at every lag (DESIGN.md §4)."""
    t = np.arange(600) * 0.01
    m = map_of(2 * np.pi * 3.0 * t, 0.01, 6, 12)
    np.testing.assert_allclose(np.asarray(m.power)[:, 0], 1.0, atol=1e-9)
    assert m.peak is not None and m.peak.omega == 0.0
    assert m.lags[0] == pytest.approx(0.01) and m.lags[-1] <= 600 * 0.01 / 4


async def test_resonance_is_empty_before_the_cell_has_samples(tmp_path: Path) -> None:
    """A cell with fewer than MIN_SAMPLES recent samples answers an empty map (peak null),
    not an error: the dashboard shows "no map yet" without a failed request."""
    cell = Cell(small_config(), tmp_path / "data")
    served = ServedCell.live(cell, inbox=None)  # type: ignore[arg-type]
    try:
        async with client_for(create_app(served, ApiSettings())) as client:
            body = (await client.get("/resonance")).json()
    finally:
        served.close()
        await cell.aclose()
    assert body["samples"] < MIN_SAMPLES
    assert body["peak"] is None and body["power"] == [] and body["lags"] == []


async def test_resonance_refuses_a_grid_over_its_caps(live: Served) -> None:
    """Grid sizes beyond the documented bounds are a 422 naming the parameter."""
    for params, field in (({"lags": 65}, "lags"), ({"samples": 3}, "samples")):
        answer = await live.client.get("/resonance", params=params)
        assert answer.status_code == 422
        assert field in str(answer.json()["error"]["field"])
