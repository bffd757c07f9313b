"""The FastAPI app of a cell or a cluster: :func:`create_app` wires routers, access, limits
and errors.

Rule: the app holds one :class:`~becomingone.api.deps.ApiState` and nothing global; it never
drives the cell or the cluster — a running cell feeds :meth:`EventHub.publish_record` through
its ``witness`` hook (:func:`attach_events`) and takes posted samples from its inbox; a running
cluster hands each tick to :meth:`ServedCluster.record`. The cell routes are mounted when there
is a cell, the cluster routes when there is a cluster. Every route lives under ``/api/v1``;
OpenAPI is at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from becomingone import __version__
from becomingone.api.cell import ServedCell
from becomingone.api.choir import ChoirService
from becomingone.api.cluster import ServedCluster
from becomingone.api.deps import ApiState
from becomingone.api.errors import ApiProblem, error_response, install_error_handlers
from becomingone.api.events import EventHub
from becomingone.api.routers import choir as choir_routes
from becomingone.api.routers import cluster as cluster_routes
from becomingone.api.routers import (
    coherence,
    events,
    metrics,
    node,
    resonance,
    signals,
    ui,
    witness,
)
from becomingone.api.routers import glyphs as glyph_routes
from becomingone.api.routers import partifacts as partifact_routes
from becomingone.api.settings import ApiSettings
from becomingone.api.tokens import TokenStore
from becomingone.errors import InputError
from becomingone.runtime.cell import Cell
from becomingone.runtime.hooks import HookCall

__all__ = ["PREFIX", "attach_events", "create_app"]

PREFIX = "/api/v1"


class _BodyLimit:
    """Refuses (413, the error body) any request whose Content-Length is over the limit."""

    def __init__(self, app: ASGIApp, limit: int, state: ApiState) -> None:
        self.app, self.limit, self.state = app, limit, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = dict(scope["headers"]).get(b"content-length", b"0")
            if declared.isdigit() and int(declared) > self.limit:
                self.state.errors["too_large"] += 1
                problem = ApiProblem(
                    413, "too_large", f"body of {int(declared)} bytes; the limit is {self.limit}"
                )
                await error_response(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    cell: ServedCell | None,
    settings: ApiSettings,
    *,
    tokens: TokenStore | None = None,
    hub: EventHub | None = None,
    clock: Callable[[], float] = time.monotonic,
    cluster: ServedCluster | None = None,
    registry: CollectorRegistry | None = None,
    choir: ChoirService | None = None,
) -> FastAPI:
    """The API of ``cell`` and/or ``cluster`` (writes need ``tokens``; a read-only
    ``settings`` refuses them); with a Prometheus ``registry`` also ``GET /metrics``."""
    if cell is None and cluster is None and choir is None:
        raise InputError("cell", "an app serves a cell, a cluster or a Choir; got none")
    served = (("cell", cell), ("cluster", cluster), ("Choir", choir))
    what = " and ".join(w for w, x in served if x is not None)
    parts = {
        "cell": "node, coherence, signals, witness chain, resonance map, event stream",
        "cluster": "members, phases, C, band, T_global, rejections, tick stream",
        "Choir": "users, threads, specs, votes, totals, priors, a WebSocket per thread",
    }
    app = FastAPI(
        title=f"BecomingONE {what} API",
        version=__version__,
        description="; ".join(f"{w}: {parts[w]}" for w, x in served if x is not None),
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    state = ApiState(
        cell=cell,
        settings=settings,
        tokens=tokens,
        hub=hub or EventHub(),
        clock=clock,
        cluster=cluster,
        metrics=registry,
    )
    app.state.api = state
    install_error_handlers(app, state.errors)
    edits: list[Callable[[dict[str, Any]], None]] = []
    if cell is not None:
        for module in (node, coherence, signals, witness, resonance, events):
            app.include_router(module.router, prefix=PREFIX)
        edits.append(_signals_body(cell.channels, settings.max_samples))
    if cluster is not None:
        app.include_router(cluster_routes.router, prefix=PREFIX)
        if cluster.desk is not None or cluster.listing is not None:
            app.include_router(glyph_routes.list_router, prefix=PREFIX)
        if cluster.desk is not None:
            app.include_router(glyph_routes.router, prefix=PREFIX)
            kinds = cluster.desk.kinds
            edits.append(lambda document: glyph_routes.describe_kinds(document, kinds))
        if cluster.partifacts is not None:
            app.include_router(partifact_routes.router, prefix=PREFIX)
    if choir is not None:  # its service is the app's state.choir (see api/choir.py)
        app.state.choir = choir
        app.include_router(choir_routes.router, prefix=PREFIX)
    _edit_document(app, edits)
    if registry is not None:
        app.include_router(metrics.router)
    app.include_router(ui.router)
    app.mount("/static", ui.static_files(), name="static")
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes, state=state)
    return app


def _signals_body(channels: int, max_samples: int) -> Callable[[dict[str, Any]], None]:
    """The edit making POST /signals' body exact for this cell (its channels, its row cap)."""

    def edit(document: dict[str, Any]) -> None:
        body = signals.signals_body(channels, max_samples)["requestBody"]
        document["paths"][f"{PREFIX}/signals"]["post"]["requestBody"] = body

    return edit


def _edit_document(app: FastAPI, edits: list[Callable[[dict[str, Any]], None]]) -> None:
    """Apply ``edits`` to the app's OpenAPI document once, when it is first made: the routers
    are shared by every app, so what is exact for this app (a cell's channels, a cluster's
    glyph kinds) is written into its document, not into the routes."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for edit in edits:
                edit(document)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def attach_events(cell: Cell, hub: EventHub) -> None:
    """Publish every record ``cell`` witnesses (after its commit) to ``hub``."""

    def publish(call: HookCall) -> None:
        hub.publish_record(call.payload)

    cell.hooks.on("witness", publish, name="becomingone.api.events")
