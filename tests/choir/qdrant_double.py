"""A test double of a Qdrant server's REST API — not a Qdrant server.

No Qdrant server binary is installable here (PyPI, Debian and npm ship none), so the
``--store URL`` path (qdrant-client's remote mode) is tested against this: a small FastAPI app
that serves the REST routes qdrant-client's remote mode calls for Choir's content store and
forwards each to a qdrant-client *local-mode* instance on a directory, so that filtering,
scoring and paging are Qdrant's own (the local engine's), while the HTTP, the JSON (de)coding
and the error answers of the remote client are exercised for real. Routes Choir does not use
answer 404 like an unknown route would.

Run: ``python -m tests.choir.qdrant_double DIR PORT`` (loopback only); the fixture
:func:`tests.choir.conftest.qdrant_url` starts it on a free port and stops it by PID.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from qdrant_client import QdrantClient, models


def _ok(result: Any, started: float) -> JSONResponse:
    """Qdrant's answer envelope."""
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json")
    elif isinstance(result, list):
        result = [r.model_dump(mode="json") if hasattr(r, "model_dump") else r for r in result]
    return JSONResponse({"result": result, "status": "ok", "time": time.perf_counter() - started})


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": {"error": message}, "time": 0.0}, status_code=status)


def create_app(path: Path) -> FastAPI:
    """The double over a local-mode client on ``path`` (one call at a time: async routes)."""
    local = QdrantClient(path=str(path))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        local.close()

    app = FastAPI(lifespan=lifespan)

    @app.exception_handler(KeyError)
    async def not_found(_: Request, exc: KeyError) -> JSONResponse:
        return _error(404, f"Not found: {exc}")

    @app.exception_handler(ValueError)
    async def bad_request(_: Request, exc: ValueError) -> JSONResponse:
        return _error(400, f"Bad request: {exc}")

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"title": "qdrant REST double (tests only)", "version": version("qdrant-client")}

    @app.get("/collections/{name}/exists")
    async def exists(name: str) -> JSONResponse:
        t = time.perf_counter()
        return _ok({"exists": local.collection_exists(name)}, t)

    @app.put("/collections/{name}")
    async def create(name: str, request: Request) -> JSONResponse:
        t = time.perf_counter()
        body = models.CreateCollection.model_validate(await request.json())
        return _ok(local.create_collection(name, vectors_config=body.vectors or {}), t)

    @app.get("/collections/{name}")
    async def info(name: str) -> JSONResponse:
        t = time.perf_counter()
        if not local.collection_exists(name):
            return _error(404, f"Not found: Collection `{name}` doesn't exist!")
        return _ok(local.get_collection(name), t)

    @app.put("/collections/{name}/points")
    async def upsert(name: str, request: Request) -> JSONResponse:
        t = time.perf_counter()
        body = models.PointsList.model_validate(await request.json())
        return _ok(local.upsert(name, points=body.points, wait=True), t)

    @app.post("/collections/{name}/points/payload")
    async def set_payload(name: str, request: Request) -> JSONResponse:
        t = time.perf_counter()
        body = models.SetPayload.model_validate(await request.json())
        assert body.points is not None, "Choir sets payloads by point ids"
        found = {p.id for p in local.retrieve(name, body.points, with_payload=False)}
        missing = [p for p in body.points if p not in found]
        if missing:  # what the server answers (local mode raises KeyError instead)
            return _error(404, f"Not found: No point with id {missing[0]} found")
        return _ok(local.set_payload(name, payload=body.payload, points=body.points, wait=True), t)

    @app.post("/collections/{name}/points/delete")
    async def delete(name: str, request: Request) -> JSONResponse:
        t = time.perf_counter()
        body = models.PointIdsList.model_validate(await request.json())
        return _ok(local.delete(name, points_selector=body, wait=True), t)

    @app.post("/collections/{name}/points/scroll")
    async def scroll(name: str, request: Request) -> JSONResponse:
        t = time.perf_counter()
        body = models.ScrollRequest.model_validate(await request.json())
        points, after = local.scroll(
            name,
            scroll_filter=body.filter,
            limit=body.limit or 10,
            offset=body.offset,
            with_payload=body.with_payload if body.with_payload is not None else True,
            with_vectors=body.with_vector if body.with_vector is not None else False,
        )
        return _ok(models.ScrollResult(points=points, next_page_offset=after), t)

    @app.post("/collections/{name}/points")
    async def retrieve(name: str, request: Request) -> JSONResponse:
        t = time.perf_counter()
        body = models.PointRequest.model_validate(await request.json())
        got = local.retrieve(
            name,
            body.ids,
            with_payload=body.with_payload if body.with_payload is not None else True,
            with_vectors=body.with_vector if body.with_vector is not None else False,
        )
        return _ok(got, t)

    @app.post("/collections/{name}/points/query")
    async def query(name: str, request: Request) -> JSONResponse:
        t = time.perf_counter()
        body = models.QueryRequest.model_validate(await request.json())
        got = local.query_points(
            name,
            query=body.query,
            query_filter=body.filter,
            limit=body.limit or 10,
            offset=body.offset,
            with_payload=body.with_payload if body.with_payload is not None else False,
            with_vectors=body.with_vector if body.with_vector is not None else False,
            score_threshold=body.score_threshold,
        )
        return _ok(got, t)

    return app


def main(argv: list[str]) -> None:
    path, port = Path(argv[0]), int(argv[1])
    uvicorn.run(create_app(path), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
