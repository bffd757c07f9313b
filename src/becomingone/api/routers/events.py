"""``/api/v1/events``: the WebSocket event stream (tick, collapse, dissipate, witness).

Rule: a client names the types it wants (``types=tick,collapse``; default all) and, when it
reconnects, the last ``seq`` it saw (``since=SEQ``). The server subscribes first, then sends
the stored records after ``since`` (at most ``replay_limit``) turned into events, then a
``resumed`` message, then live events newer than the replay — so nothing is missed or sent
twice. Each client has a bounded queue; when it is full the oldest event is dropped and every
message carries the client's ``dropped`` count. A filter the server cannot read closes the
socket with code 1008 and the error body as the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from becomingone.api.cell import ServedCell
from becomingone.api.deps import ApiState
from becomingone.api.events import EventType, Subscriber, events_of, parse_types
from becomingone.api.settings import is_loopback
from becomingone.errors import InputError

__all__ = ["loopback_or_public", "refuse", "router", "run_stream"]

router = APIRouter(tags=["events"])


def _query(ws: WebSocket) -> tuple[frozenset[EventType], int]:
    types = parse_types(ws.query_params.get("types"))
    since_text = ws.query_params.get("since", "-1")
    try:
        since = int(since_text)
    except ValueError:
        raise InputError("since", f"{since_text!r} is not a witness seq") from None
    return types, since


async def _replay(ws: WebSocket, cell: ServedCell, sub: Subscriber, since: int, limit: int) -> int:
    """Send stored events after ``since`` (≤ ``limit`` records); the newest seq sent."""
    last, sent = since, 0
    while since >= 0 and sent < limit:
        page, total = cell.records(last + 1, min(500, limit - sent))
        if not page:
            break
        for record in page:
            for event in events_of(record):
                if event.type in sub.types:
                    await ws.send_json(event.as_json(sub.dropped))
            last, sent = record.seq, sent + 1
        if last + 1 >= total:
            break
    complete = since < 0 or last + 1 >= cell.witness_count()
    await ws.send_json(
        {
            "type": "resumed",
            "seq": last,
            "dropped": sub.dropped,
            "data": {"replayed": sent, "complete": complete},
        }
    )
    return last


async def _pump(ws: WebSocket, sub: Subscriber) -> None:
    """Live events newer than the replay, until the socket fails."""
    while True:
        event = await sub.next()
        if event.seq > sub.after:
            await ws.send_json(event.as_json(sub.dropped))


async def _until_closed(ws: WebSocket) -> None:
    """Read (and ignore) client messages until the client goes away."""
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


async def refuse(ws: WebSocket, code: str, message: str, field: str | None) -> None:
    """Close with 1008 and the one error body as the reason."""
    await ws.accept()
    body = {"error": {"code": code, "message": message, "field": field}}
    await ws.close(code=1008, reason=json.dumps(body)[:120])


def loopback_or_public(ws: WebSocket) -> bool:
    """Whether this socket may read: a loopback client, or an app with public reads."""
    state: ApiState = ws.app.state.api
    host = ws.client.host if ws.client else ""
    return state.settings.public_reads or is_loopback(host)


async def run_stream(
    ws: WebSocket,
    sub: Subscriber,
    replay: Callable[[], Awaitable[int]],
    unsubscribe: Callable[[Subscriber], None],
) -> None:
    """Send ``replay()``'s events (it returns the newest seq sent), then live events, until
    the client goes; ``sub`` is unsubscribed and the socket closed however it ends."""
    tasks: set[asyncio.Task[None]] = set()
    try:
        sub.after = await replay()
        tasks = {asyncio.ensure_future(_pump(ws, sub)), asyncio.ensure_future(_until_closed(ws))}
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except (WebSocketDisconnect, OSError):
        pass
    finally:
        unsubscribe(sub)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(RuntimeError, OSError):
            await ws.close()


@router.websocket("/events")
async def events(ws: WebSocket) -> None:
    """Stream events; query ``types`` (comma list) and ``since`` (resume after this seq)."""
    state: ApiState = ws.app.state.api
    if not loopback_or_public(ws):
        await refuse(ws, "remote_read", "reads from beyond loopback need a token", None)
        return
    try:
        types, since = _query(ws)
    except InputError as exc:
        await refuse(ws, "invalid", exc.message, exc.parameter)
        return
    await ws.accept()
    sub = state.hub.subscribe(types, state.settings.event_queue, after=since)
    cell = state.cell
    assert cell is not None  # mounted only beside a cell

    async def replay() -> int:
        return await _replay(ws, cell, sub, since, state.settings.replay_limit)

    await run_stream(ws, sub, replay, state.hub.unsubscribe)
