"""``/metrics``: the cell's Prometheus metrics in the text exposition format.

Rule: the registry is the one the command built (:func:`becomingone.runtime.cell_registry`),
held by the app's state; this handler only renders it. It runs on the event loop (``async
def``), the loop that changes the cell, so a scrape reads a cell between two batches. Outside
``/api/v1`` and the OpenAPI document (it is not JSON), where Prometheus looks by default; the
same read access as every other read.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from becomingone.api.deps import Reader, State
from becomingone.api.errors import ApiProblem

__all__ = ["router"]

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(api: State, _: Reader) -> Response:
    """Prometheus text of the cell (docs/operations.md lists every metric)."""
    if api.metrics is None:
        raise ApiProblem(404, "not_found", "this server exposes no metrics")
    return Response(generate_latest(api.metrics), media_type=CONTENT_TYPE_LATEST)
