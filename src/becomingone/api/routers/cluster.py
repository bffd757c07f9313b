"""``/api/v1/cluster``: the served cluster now, per cell, over time, and as a live stream.

Rule: everything comes from the :class:`~becomingone.api.cluster.ServedCluster` the running
cluster feeds once per tick, so these handlers never touch the cluster itself. The stream
``/cluster/events`` sends the kept events after ``since`` (a tick), then a ``resumed`` message
(``complete`` false when events after ``since`` were no longer kept), then every new tick: a
``cluster.tick`` event (the frame) followed by the tick's typed events (glyph.*, role.*,
lifecycle.changed, proposal.*), all with the tick as ``seq``; ``types`` filters them as on
``/events``. A client resumes with the last ``seq`` it saw (or the one before, to get a tick
whose events it may have received only in part). Each client's queue is bounded: the oldest
event is dropped (and counted) when full.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, WebSocket

from becomingone.api.deps import ApiState, Cluster, Reader
from becomingone.api.errors import ApiProblem, responses
from becomingone.api.events import parse_types
from becomingone.api.routers.events import loopback_or_public, refuse, run_stream
from becomingone.api.routers.node import READ_STATUSES
from becomingone.api.schemas import (
    ClusterFrame,
    ClusterHistory,
    ClusterInfo,
    ClusterMemberPublic,
    ClusterNow,
    ClusterPoint,
)
from becomingone.errors import InputError

__all__ = ["MAX_HISTORY", "router"]

#: Most points one history answer holds.
MAX_HISTORY = 6_000

router = APIRouter(prefix="/cluster", tags=["cluster"], responses=responses(*READ_STATUSES))


@router.get("")
async def now(cluster: Cluster, _: Reader) -> ClusterNow:
    """The cluster (name, topology, cells, ticks) and its newest frame with every cell."""
    latest = cluster.latest()
    frame = ClusterFrame(**latest) if latest is not None else None
    return ClusterNow(cluster=ClusterInfo(**cluster.describe()), frame=frame)


@router.get("/members/{name}", responses=responses(404, 422))
async def member(name: str, cluster: Cluster, _: Reader) -> ClusterMemberPublic:
    """One cell at the newest tick (404 when the cluster has no cell of that name)."""
    row = cluster.member(name)
    if row is None:
        raise ApiProblem(404, "unknown_cell", f"the cluster has no cell {name!r}", field="name")
    return ClusterMemberPublic(**row)


@router.get("/history", responses=responses(422))
async def history(
    cluster: Cluster,
    _: Reader,
    since: Annotated[int, Query(ge=-1, description="Ticks after this one; -1: all kept")] = -1,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY, description="At most this many")] = 1000,
    every: Annotated[int, Query(ge=1, le=10_000, description="Every n-th tick")] = 1,
) -> ClusterHistory:
    """C, band, T_global and rejections per kept tick (no per-cell rows), oldest first."""
    kept_from = cluster.frames[0]["tick"] if cluster.frames else None
    points = [ClusterPoint(**p) for p in cluster.history(since, limit, every)]
    return ClusterHistory(since=since, every=every, kept_from=kept_from, points=points)


def _since(ws: WebSocket) -> int:
    text = ws.query_params.get("since", "-1")
    try:
        since = int(text)
    except ValueError:
        raise ValueError(f"since: {text!r} is not a tick") from None
    if since < -1:
        raise ValueError(f"since: must be -1 or a tick, got {since}")
    return since


@router.websocket("/events")
async def events(ws: WebSocket) -> None:
    """Stream cluster events; query ``types`` (comma list) and ``since`` (resume after this
    tick)."""
    state: ApiState = ws.app.state.api
    if not loopback_or_public(ws):
        await refuse(ws, "remote_read", "reads from beyond loopback need a token", None)
        return
    try:
        since = _since(ws)
    except ValueError as exc:
        await refuse(ws, "invalid", str(exc), "since")
        return
    try:
        types = parse_types(ws.query_params.get("types"))
    except InputError as exc:
        await refuse(ws, "invalid", exc.message, exc.parameter)
        return
    served = state.cluster
    if served is None:
        await refuse(ws, "no_cluster", "this server serves one cell, not a cluster", None)
        return
    await ws.accept()
    sub = served.subscribe(state.settings.event_queue, after=since, types=types)

    async def replay() -> int:
        events, complete = served.replay(since, types)
        last = since
        for event in events:
            await ws.send_json(event.as_json(sub.dropped))
            last = event.seq
        body = {"replayed": len(events), "complete": complete}
        await ws.send_json({"type": "resumed", "seq": last, "dropped": sub.dropped, "data": body})
        return last

    await run_stream(ws, sub, replay, served.unsubscribe)
