"""The event stream: events derived from witness records (live and replayed alike), the
filter, bounded drop-oldest queues with a readable counter, resume after a seq, and the
WebSocket route on a real loopback server with the typed client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from becomingone.api import ApiServer, ApiSettings, CellClient, EventHub, EventType, events_of
from becomingone.api.events import parse_types
from becomingone.errors import InputError, TransportError
from tests.api.conftest import Served, ingest, serve_cell

pytestmark = pytest.mark.timeout(60)


def record(seq: int, kind: str, **payload: Any) -> dict[str, Any]:
    """A witness record summary as the witness hook delivers it."""
    return {"seq": seq, "kind": kind, "level": "micro", "payload": payload}


def test_events_of_each_record_kind() -> None:
    """ingest → witness + tick (+ dissipate when it dissipated); collapse → witness + collapse;
    other kinds → witness only; all carry the record's seq."""
    assert [e.type for e in events_of(record(1, "ingest", outcome="collapse"))] == [
        EventType.WITNESS,
        EventType.TICK,
    ]
    assert [e.type for e in events_of(record(2, "ingest", outcome="dissipate"))] == [
        EventType.WITNESS,
        EventType.TICK,
        EventType.DISSIPATE,
    ]
    assert [e.type for e in events_of(record(3, "collapse", time=1.0))] == [
        EventType.WITNESS,
        EventType.COLLAPSE,
    ]
    assert [(e.type, e.seq) for e in events_of(record(4, "cycle"))] == [(EventType.WITNESS, 4)]


@pytest.mark.parametrize(
    "kind", ["glyph.fired", "glyph.migrated", "glyph.ended", "role.changed", "proposal.opened"]
)
def test_a_witnessed_glyph_role_or_proposal_record_is_also_its_typed_event(kind: str) -> None:
    """A cell's glyph, role or proposal record gives witness + the typed event of that name
    with the record's payload and seq (so it resumes from the stored chain); a kind that is
    only on the cluster stream (glyph.submitted) or a migration step is witness only."""
    events = events_of(record(7, kind, glyph="g-1"))
    assert [(e.type.value, e.seq) for e in events] == [("witness", 7), (kind, 7)]
    assert events[1].data == {"glyph": "g-1"}
    for other in ("glyph.submitted", "glyph.migrate.run", "hook.failed"):
        assert [e.type for e in events_of(record(8, other))] == [EventType.WITNESS]


def test_filter_names_are_checked() -> None:
    """An unknown type in the filter is an InputError naming `types`."""
    assert parse_types(None) == frozenset(EventType)
    with pytest.raises(InputError, match="known types"):
        parse_types("tick,bogus")


def test_a_full_queue_drops_the_oldest_and_counts() -> None:
    """A subscriber of size 3 given 5 ticks keeps the newest 3 and has dropped 2; events at or
    before its `after` seq and types outside its filter are not queued at all."""
    hub = EventHub()
    sub = hub.subscribe([EventType.TICK], size=3, after=0)
    for seq in range(6):
        hub.publish_record(record(seq, "ingest", outcome="collapse"))
    assert [e.seq for e in sub.queue] == [3, 4, 5] and sub.dropped == 2
    assert sub.queue[-1].as_json(sub.dropped)["dropped"] == 2
    hub.unsubscribe(sub)
    hub.publish_record(record(9, "ingest"))
    assert len(sub.queue) == 3


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Served, ApiServer]]:
    """A running cell served on a free loopback port."""
    async for served in serve_cell(tmp_path, ApiSettings(event_queue=1000)):
        app = served.client._transport.app  # type: ignore[attr-defined]
        api = ApiServer(app, "127.0.0.1", 0)
        await api.start()
        try:
            yield served, api
        finally:
            await api.aclose()


async def take(stream: AsyncIterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The next n messages (bounded in time)."""
    out = []
    async with asyncio.timeout(10):
        async for message in stream:
            out.append(message)
            if len(out) == n:
                break
    return out


async def test_live_events_with_a_filter(server: tuple[Served, ApiServer]) -> None:
    """A client asking for ticks gets `resumed` (ready), then one tick per ingested batch,
    with the seq of its ingest record and the decision's fields."""
    served, api = server
    client = CellClient(api.url)
    stream = client.events(types=["tick"])
    ready = await take(stream, 1)
    assert ready[0]["type"] == "resumed"
    await ingest(served.cell, 2)
    ticks = await take(stream, 2)
    assert [t["type"] for t in ticks] == ["tick", "tick"]
    ingests = [r for r in served.cell.memory.witnesses() if r.kind == "ingest"][-2:]
    assert [t["seq"] for t in ticks] == [r.seq for r in ingests]
    assert {"t", "master", "emissary", "sync", "outcome"} <= set(ticks[0]["data"])
    await stream.aclose()  # type: ignore[attr-defined]
    client.close()


async def test_resume_replays_what_was_missed_then_goes_live(
    server: tuple[Served, ApiServer],
) -> None:
    """A client that saw up to seq S reconnects with since=S: it gets every stored record
    after S once, in order, a `resumed` marker, then live records — no gap, no repeat."""
    served, api = server
    client = CellClient(api.url)
    seen = served.cell.chain.count - 1
    await ingest(served.cell, 3)  # missed while away
    stored = served.cell.chain.count
    stream = client.events(types=["witness"], since=seen)
    replayed = await take(stream, stored - seen)
    assert [m["seq"] for m in replayed[:-1]] == list(range(seen + 1, stored))
    assert replayed[-1]["type"] == "resumed"
    assert replayed[-1]["data"] == {"replayed": stored - seen - 1, "complete": True}
    await ingest(served.cell, 1)
    live = await take(stream, 1)
    assert live[0]["seq"] == stored
    await stream.aclose()  # type: ignore[attr-defined]
    client.close()


async def test_a_bad_filter_closes_with_the_error_body(server: tuple[Served, ApiServer]) -> None:
    """types=bogus: the socket closes with 1008 and the error body as reason."""
    _, api = server
    client = CellClient(api.url)
    with pytest.raises(TransportError, match="1008"):
        await take(client.events(types=["bogus"]), 1)
    client.close()


async def test_the_client_reconnects_and_resumes_after_a_restart(
    server: tuple[Served, ApiServer],
) -> None:
    """The server goes away, the cell witnesses more, a new server comes up on the same port:
    the client's stream reconnects with since=<last seq it saw> and yields every record it
    missed exactly once, in order, then the `resumed` marker."""
    served, api = server
    client = CellClient(api.url)
    stream = client.events(types=["witness"], reconnects=100, retry_seconds=0.05)
    assert (await take(stream, 1))[0]["type"] == "resumed"
    n0 = served.cell.chain.count
    await ingest(served.cell, 1)
    n1 = served.cell.chain.count
    live = await take(stream, n1 - n0)
    assert [m["seq"] for m in live] == list(range(n0, n1))
    await api.aclose()
    await ingest(served.cell, 2)  # witnessed while no server listens
    n2 = served.cell.chain.count
    app = served.client._transport.app  # type: ignore[attr-defined]
    again = ApiServer(app, "127.0.0.1", api.port)
    await again.start()
    try:
        missed = await take(stream, n2 - n1 + 1)
        assert [m["seq"] for m in missed[:-1]] == list(range(n1, n2))
        assert missed[-1]["type"] == "resumed" and missed[-1]["data"]["complete"] is True
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        client.close()
        await again.aclose()


async def test_a_remote_client_without_public_reads_is_refused(live: Served) -> None:
    """A WebSocket client from beyond loopback is closed with 1008 and code remote_read."""
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    app = live.client._transport.app  # type: ignore[attr-defined]
    with (
        TestClient(app, client=("192.0.2.7", 50_000)) as remote,
        pytest.raises(WebSocketDisconnect) as closed,
        remote.websocket_connect("/api/v1/events") as ws,
    ):
        ws.receive_json()
    assert closed.value.code == 1008 and "remote_read" in closed.value.reason
