"""A thread's WebSocket and the typed ChoirClient against a real loopback server: two
subscribers see a spec, a vote and its publication in order with the request's client_id;
a client resuming with after=SEQ gets exactly what it missed; events survive a restart
(they come from the ledger's chain); refused sockets close with 1008 and the error body;
every ChoirClient method returns its model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from becomingone.api import ApiError, ApiServer, ChoirClient
from becomingone.api.choir import ChoirService
from becomingone.choir import ChoirHome, Transaction, TxKind
from becomingone.ingest.text import lexical_embedding
from becomingone.keys import NodeKey
from tests.api.choirhelpers import Community, community

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Community, str]]:
    """ada, grace and alan's Choir on a free loopback port; yields it and the base URL."""
    for c in community(tmp_path / "data"):
        api = ApiServer(c.app, "127.0.0.1", 0)
        await api.start()
        try:
            yield c, api.url
        finally:
            await api.aclose()


async def frames(
    client: ChoirClient, thread: str, n: int, after: int | None = None
) -> list[dict[str, Any]]:
    """The first ``n`` frames after the ``resumed`` marker (bounded in time)."""
    out: list[dict[str, Any]] = []
    stream = client.events(thread, after)
    async with asyncio.timeout(20):
        async for frame in stream:
            if frame["type"] != "resumed":
                out.append(frame)
            if len(out) >= n:
                break
    await stream.aclose()  # type: ignore[attr-defined]
    return out


async def subscribed(
    client: ChoirClient, thread: str, after: int | None = None
) -> tuple[Any, asyncio.Queue[dict[str, Any]]]:
    """A task reading a thread's frames into a queue; returns once ``resumed`` arrived."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    ready = asyncio.Event()

    async def read() -> None:
        async for frame in client.events(thread, after):
            if frame["type"] == "resumed":
                ready.set()
            else:
                await queue.put(frame)

    task = asyncio.ensure_future(read())
    async with asyncio.timeout(10):
        await ready.wait()
    return task, queue


async def take(queue: asyncio.Queue[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``n`` frames from ``queue`` (within 10 s)."""
    async with asyncio.timeout(10):
        return [await queue.get() for _ in range(n)]


async def test_two_subscribers_see_spec_vote_publish_in_order(
    served: tuple[Community, str],
) -> None:
    """Both sockets get pending (with client_id), balance, vote, approved (the message now
    `published`), balance — the same frames, in chain order."""
    c, url = served
    ada, grace = ChoirClient(url, token=c.tokens["ada"]), ChoirClient(url, token=c.tokens["grace"])
    thread = await asyncio.to_thread(ada.create_thread, "tides")
    (t1, q1), (t2, q2) = [await subscribed(ChoirClient(url), thread.id) for _ in range(2)]
    try:
        spec = await asyncio.to_thread(
            grace.submit, thread.id, "the sun pulls too", client_id="opt-7"
        )
        await asyncio.to_thread(ada.vote, spec.id, True, client_id="v-1")
        got1, got2 = (await take(q1, 6))[1:], (await take(q2, 6))[1:]  # after the creation
    finally:
        t1.cancel(), t2.cancel()
    assert got1 == got2
    assert [f["type"] for f in got1] == ["pending", "balance", "vote", "approved", "balance"]
    assert got1[0]["data"]["client_id"] == "opt-7" and got1[0]["data"]["id"] == spec.id
    assert got1[2]["data"]["client_id"] == "v-1" and got1[2]["data"]["voter_name"] == "ada"
    assert got1[3]["data"]["status"] == "published"
    assert got1[4]["data"]["wallets"][c.ids["ada"]] == 1000 + spec.stake
    seqs = [f["seq"] for f in got1]
    assert seqs == sorted(seqs) and seqs[0] < seqs[2]
    ada.close(), grace.close()


async def test_resume_after_reconnect_misses_nothing(served: tuple[Community, str]) -> None:
    """A client that saw the spec, went away while the vote happened, and comes back with
    after=<last seq> gets the vote, the publication and the balance, and nothing twice."""
    c, url = served
    ada, grace = ChoirClient(url, token=c.tokens["ada"]), ChoirClient(url, token=c.tokens["grace"])
    thread = await asyncio.to_thread(ada.create_thread, "tides")
    await asyncio.to_thread(grace.submit, thread.id, "the sun pulls too")
    first = await frames(ChoirClient(url), thread.id, 3)
    assert [f["type"] for f in first] == ["balance", "pending", "balance"]
    spec_id = first[1]["data"]["id"]
    await asyncio.to_thread(ada.vote, spec_id, True)
    rest = await frames(ChoirClient(url), thread.id, 3, after=first[-1]["seq"])
    assert [f["type"] for f in rest] == ["vote", "approved", "balance"]
    everything = await frames(ChoirClient(url), thread.id, 6)
    assert everything == first + rest
    ada.close(), grace.close()


async def test_events_come_from_the_chain_after_a_restart(tmp_path: Path) -> None:
    """A new service on the same data dir replays the same frames (client_id aside: it is
    not in the chain)."""
    for c in community(tmp_path / "data"):
        api = ApiServer(c.app, "127.0.0.1", 0)
        await api.start()
        try:
            ada = ChoirClient(api.url, token=c.tokens["ada"])
            thread = await asyncio.to_thread(ada.create_thread, "tides")
            await asyncio.to_thread(ada.post, thread.id, "the moon", client_id="c1")
            before = [e.frame() for e in c.service.events[thread.id]]
            ada.close()
        finally:
            await api.aclose()
    service = ChoirService(ChoirHome(tmp_path / "data"), embed=(lexical_embedding, "lexical"))
    try:
        after = [e.frame() for e in service.events[thread.id]]
    finally:
        service.close()
    before[-1]["data"].pop("client_id")
    assert after == before


async def test_refused_sockets(served: tuple[Community, str]) -> None:
    """An unknown thread and a bad after= close with 1008 and the error body as the reason."""
    _, url = served
    ws_url = ChoirClient(url).events_url("nope")
    for target, code in ((ws_url, "unknown_thread"), (ws_url + "?after=x", "invalid")):
        async with websockets.connect(target) as ws:
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        assert json.loads(info.value.rcvd.reason)["error"]["code"] == code


def use_every_method(url: str, c: Community) -> dict[str, object]:
    """Each ChoirClient method once (synchronous: run in a worker thread)."""
    with (
        ChoirClient(url, token=c.tokens["ada"]) as ada,
        ChoirClient(url, token=c.tokens["grace"]) as grace,
    ):
        thread = ada.create_thread("tides")
        post = ada.post(thread.id, "the moon pulls the sea")
        spec = grace.submit(thread.id, "the sun", stake=80)
        vote = ada.vote(spec.id, False)
        spec2 = grace.submit(thread.id, "again")
        key = NodeKey.generate()
        receipt = ada.submit_transaction(Transaction.sign(key, TxKind.JOIN, {"name": "hopper"}))
        try:
            ada.close_spec(spec2.id)
            refused = ""
        except ApiError as exc:
            refused = exc.code
        return {
            "me": ada.me().name,
            "users": [u.name for u in ada.users()],
            "threads": [t.title for t in ada.threads()],
            "thread": [m.id for m in ada.thread(thread.id).messages],
            "post": post.status,
            "spec": spec.stake,
            "vote": vote.status,
            "receipt": receipt.kind,
            "refused": refused,
            "divest": ada.divest(thread.id).paid,
            "totals": ada.totals().invariant,
            "search": [h.message_id for h in ada.search("moon sea", k=1)] == [post.id],
        }


async def test_every_choir_client_method(served: tuple[Community, str]) -> None:
    """Each method answers its model with the values the ledger holds; a refusal is an
    ApiError carrying the rule's code."""
    c, url = served
    out = await asyncio.to_thread(use_every_method, url, c)
    assert out == {
        "me": "ada",
        "users": ["ada", "alan", "grace", "hopper"],
        "threads": ["tides"],
        "thread": out["thread"],
        "post": "published",
        "spec": 80,
        "vote": "denied",
        "receipt": "join",
        "refused": "window_open",
        "divest": 80,
        "totals": True,
        "search": True,
    }
    assert len(out["thread"]) == 3  # type: ignore[arg-type]


def test_a_remote_socket_needs_a_token(tmp_path: Path) -> None:
    """Beyond loopback (Starlette's test client is host ``testclient``) a socket without a
    token closes with 1008 ``remote_read``; with a user's ``?token=`` it streams."""
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    for c in community(tmp_path / "data"):
        thread = c.service.new_thread_body("tides")
        c.service.act(c.service.ledger.user(c.ids["ada"]), TxKind.THREAD, thread)  # type: ignore[arg-type]
        path = f"/api/v1/choir/threads/{thread['thread']}/events"
        with TestClient(c.app) as client:
            with client.websocket_connect(path) as ws, pytest.raises(WebSocketDisconnect) as info:
                ws.receive_json()
            assert info.value.code == 1008
            assert json.loads(info.value.reason)["error"]["code"] == "remote_read"
            with client.websocket_connect(f"{path}?token={c.tokens['grace']}") as ws:
                assert ws.receive_json()["type"] == "balance"
                assert ws.receive_json()["type"] == "resumed"
