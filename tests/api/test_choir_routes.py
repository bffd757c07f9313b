"""The Choir routes over HTTP (in process): every route answers its model; every refused
action answers the one error body with the status and the code naming the rule; tokens,
read access and pre-signed transactions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from becomingone.api import ApiSettings
from becomingone.choir import Rules, Transaction, TxKind, content_hash
from becomingone.keys import NodeKey
from tests.api.choirhelpers import Community, community
from tests.api.conftest import client_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def choir(tmp_path: Path) -> AsyncIterator[tuple[Community, httpx.AsyncClient]]:
    """ada, grace and alan in a Choir, with an in-process HTTP client from loopback."""
    for c in community(tmp_path / "data"):
        async with client_for(c.app) as http:
            yield c, http


async def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body of a response that must have ``status``."""
    assert response.status_code == status, response.text
    return response.json()


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error detail of a response that must be ``status`` with ``code``."""
    assert response.status_code == status, response.text
    detail: dict[str, Any] = response.json()["error"]
    assert detail["code"] == code, detail
    return detail


async def thread_with_spec(c: Community, http: httpx.AsyncClient) -> tuple[str, str]:
    """ada opens a thread; grace submits a spec to it at the price. (thread id, spec id)"""
    thread = await ok(
        await http.post("/choir/threads", json={"title": "tides"}, headers=c.auth("ada")), 201
    )
    spec = await ok(
        await http.post(
            f"/choir/threads/{thread['id']}/specs",
            json={"text": "the sun pulls too", "client_id": "opt-1"},
            headers=c.auth("grace"),
        ),
        201,
    )
    return thread["id"], spec["id"]


async def test_me_users_and_a_thread_lifecycle(choir: tuple[Community, httpx.AsyncClient]) -> None:
    """me, users, threads, a post, a spec, an approving vote (published, grace joins and ada
    gets the stake), the thread with its messages oldest first, totals and search."""
    c, http = choir
    me = await ok(await http.get("/choir/me", headers=c.auth("ada")))
    assert me == {"id": c.ids["ada"], "name": "ada", "wallet": 1000}
    names = [u["name"] for u in await ok(await http.get("/choir/users"))]
    assert names == ["ada", "alan", "grace"]
    thread = await ok(
        await http.post("/choir/threads", json={"title": "tides"}, headers=c.auth("ada")), 201
    )
    assert thread["coauthors"] == [c.ids["ada"]] and thread["balance"] == 0
    assert thread["coherence"] is None and thread["price"] >= 1
    tid = thread["id"]
    c.clock.now += 1
    post = await ok(
        await http.post(
            f"/choir/threads/{tid}/messages",
            json={"text": "the moon pulls the sea"},
            headers=c.auth("ada"),
        ),
        201,
    )
    assert (post["status"], post["author_name"], post["stake"]) == ("published", "ada", 0)
    c.clock.now += 1
    spec = await ok(
        await http.post(
            f"/choir/threads/{tid}/specs",
            json={"text": "and the sun", "stake": 100},
            headers=c.auth("grace"),
        ),
        201,
    )
    assert (spec["status"], spec["stake"], spec["closes_at"]) == (
        "pending",
        100,
        c.clock.now + Rules().vote_window,
    )
    vote = await ok(
        await http.post(
            f"/choir/specs/{spec['id']}/votes", json={"choice": "approve"}, headers=c.auth("ada")
        ),
        201,
    )
    assert (vote["status"], vote["voter"], vote["choice"]) == ("published", c.ids["ada"], "approve")
    detail = await ok(await http.get(f"/choir/threads/{tid}"))
    assert [m["text"] for m in detail["messages"]] == ["the moon pulls the sea", "and the sun"]
    assert detail["messages"][1]["votes"] == {"approve": [c.ids["ada"]], "deny": []}
    assert sorted(detail["coauthors"]) == sorted([c.ids["ada"], c.ids["grace"]])
    listed = await ok(await http.get("/choir/threads"))
    assert [t["id"] for t in listed] == [tid]
    assert (await ok(await http.get("/choir/me", headers=c.auth("ada"))))["wallet"] == 1100
    totals = await ok(await http.get("/choir/totals"))
    assert totals["invariant"] is True and totals["residual"] == 0
    assert totals["total"] == totals["supply"] == Rules().total_supply
    hits = await ok(await http.get("/choir/search", params={"q": "moon sea", "thread": tid}))
    assert hits[0]["message_id"] == post["id"] and hits[0]["score"] > 0


async def test_deny_close_and_divest(choir: tuple[Community, httpx.AsyncClient]) -> None:
    """A denied spec's stake goes to the thread; close after the window refunds an unvoted
    spec (expired); divest pays balance / co-authors and leaves."""
    c, http = choir
    tid, sid = await thread_with_spec(c, http)
    await ok(
        await http.post(
            f"/choir/specs/{sid}/votes", json={"choice": "deny"}, headers=c.auth("ada")
        ),
        201,
    )
    detail = await ok(await http.get(f"/choir/threads/{tid}"))
    stake = detail["messages"][0]["stake"]
    assert detail["messages"][0]["status"] == "denied" and detail["balance"] == stake
    spec2 = await ok(
        await http.post(
            f"/choir/threads/{tid}/specs", json={"text": "again"}, headers=c.auth("alan")
        ),
        201,
    )
    c.clock.now += Rules().vote_window + 1
    closed = await ok(await http.post(f"/choir/specs/{spec2['id']}/close", headers=c.auth("grace")))
    assert closed["message"]["status"] == "expired"
    assert (await ok(await http.get("/choir/me", headers=c.auth("alan"))))["wallet"] == 1000
    paid = await ok(await http.post(f"/choir/threads/{tid}/divest", headers=c.auth("ada")))
    assert paid["paid"] == stake and paid["user_id"] == c.ids["ada"]
    assert (await ok(await http.get(f"/choir/threads/{tid}")))["coauthors"] == []


async def test_each_rule_has_its_status_and_code(
    choir: tuple[Community, httpx.AsyncClient],
) -> None:
    """insufficient_funds, stake_below_price, not_coauthor, is_coauthor, own_spec,
    double_vote, window_open, window_closed, spec_decided: 409 naming the rule."""
    c, http = choir
    tid, sid = await thread_with_spec(c, http)
    spec_url = f"/choir/specs/{sid}"

    def post(who: str, body: dict[str, Any]) -> Any:
        return http.post(f"/choir/threads/{tid}/specs", json=body, headers=c.auth(who))

    error(await post("alan", {"text": "rich", "stake": 5000}), 409, "insufficient_funds")
    error(await post("alan", {"text": "cheap", "stake": 1}), 409, "stake_below_price")
    error(await post("ada", {"text": "mine"}), 409, "is_coauthor")
    error(
        await http.post(
            f"/choir/threads/{tid}/messages", json={"text": "hi"}, headers=c.auth("alan")
        ),
        409,
        "not_coauthor",
    )
    error(
        await http.post(f"{spec_url}/votes", json={"choice": "approve"}, headers=c.auth("alan")),
        409,
        "not_coauthor",
    )
    error(await http.post(f"{spec_url}/close", headers=c.auth("ada")), 409, "window_open")
    error(
        await http.post(f"/choir/threads/{tid}/divest", headers=c.auth("alan")), 409, "not_coauthor"
    )
    # grace submits a second spec; the first is approved (grace joins): she cannot vote on hers
    own = await ok(await post("grace", {"text": "second of mine"}), 201)
    await ok(
        await http.post(f"{spec_url}/votes", json={"choice": "approve"}, headers=c.auth("ada")), 201
    )
    error(
        await http.post(f"{spec_url}/votes", json={"choice": "deny"}, headers=c.auth("ada")),
        409,
        "spec_decided",
    )
    own_url = f"/choir/specs/{own['id']}/votes"
    own_vote = await http.post(own_url, json={"choice": "approve"}, headers=c.auth("grace"))
    error(own_vote, 409, "own_spec")
    # alan submits; ada votes twice; grace votes after the window
    spec2 = await ok(await post("alan", {"text": "third"}), 201)
    url2 = f"/choir/specs/{spec2['id']}/votes"
    await ok(await http.post(url2, json={"choice": "approve"}, headers=c.auth("ada")), 201)
    error(
        await http.post(url2, json={"choice": "approve"}, headers=c.auth("ada")), 409, "double_vote"
    )
    c.clock.now += Rules().vote_window + 1
    error(
        await http.post(url2, json={"choice": "deny"}, headers=c.auth("grace")),
        409,
        "window_closed",
    )


async def test_unknown_things_are_404_and_bad_input_422(
    choir: tuple[Community, httpx.AsyncClient],
) -> None:
    """An unknown thread or spec is 404 (its own code); malformed bodies and ids 422."""
    c, http = choir
    a = c.auth("ada")
    error(await http.get("/choir/threads/nope"), 404, "unknown_thread")
    error(
        await http.post("/choir/threads/nope/messages", json={"text": "x"}, headers=a),
        404,
        "unknown_thread",
    )
    error(
        await http.post("/choir/threads/nope/specs", json={"text": "x"}, headers=c.auth("alan")),
        404,
        "unknown_thread",
    )
    error(
        await http.post("/choir/specs/nope/votes", json={"choice": "approve"}, headers=a),
        404,
        "unknown_spec",
    )
    error(await http.post("/choir/specs/nope/close", headers=a), 404, "unknown_spec")
    error(await http.post("/choir/threads/nope/divest", headers=a), 404, "unknown_thread")
    error(
        await http.get("/choir/search", params={"q": "x", "thread": "nope"}), 404, "unknown_thread"
    )
    error(await http.post("/choir/threads", json={"title": ""}, headers=a), 422, "invalid")
    error(await http.post("/choir/threads", json={"title": "a\x01b"}, headers=a), 422, "invalid")
    tid, sid = await thread_with_spec(c, http)
    error(
        await http.post(f"/choir/threads/{tid}/messages", json={"text": "  "}, headers=a),
        422,
        "invalid",
    )
    error(
        await http.post(
            f"/choir/threads/{tid}/messages", json={"text": "x", "client_id": "a b"}, headers=a
        ),
        422,
        "invalid",
    )
    error(
        await http.post(f"/choir/specs/{sid}/votes", json={"choice": "maybe"}, headers=a),
        422,
        "invalid",
    )
    error(
        await http.post(
            f"/choir/threads/{tid}/specs", json={"text": "x", "stake": 0}, headers=c.auth("alan")
        ),
        422,
        "invalid",
    )
    error(await http.get("/choir/search", params={"q": " "}), 422, "invalid")
    error(await http.get("/choir/search", params={"q": "x", "k": 0}), 422, "invalid")
    error(await http.get("/choir/threads/a b"), 422, "invalid")


async def test_tokens_and_read_access(tmp_path: Path) -> None:
    """Writes need a user's token (401 without, with an unknown one, and for /me); a revoked
    token is refused; remote reads need a token; a read-only server answers 405."""
    for c in community(tmp_path / "data"):
        async with client_for(c.app) as http:
            error(await http.post("/choir/threads", json={"title": "t"}), 401, "unauthorized")
            bad = {"Authorization": "Bearer bo1_nope"}
            error(
                await http.post("/choir/threads", json={"title": "t"}, headers=bad),
                401,
                "unauthorized",
            )
            error(await http.get("/choir/me"), 401, "unauthorized")
            assert c.service.tokens is not None
            [info] = [t for t in c.service.tokens.list() if t.name.startswith(c.ids["alan"])]
            c.service.tokens.revoke(info.name)
            error(await http.get("/choir/me", headers=c.auth("alan")), 401, "unauthorized")
        async with client_for(c.app, host="10.1.2.3") as remote:
            error(await remote.get("/choir/users"), 403, "remote_read")
            assert (await remote.get("/choir/users", headers=c.auth("ada"))).status_code == 200
    for c in community(tmp_path / "ro", settings=ApiSettings(read_only=True)):
        async with client_for(c.app) as http:
            error(
                await http.post("/choir/threads", json={"title": "t"}, headers=c.auth("ada")),
                405,
                "read_only",
            )


async def test_rate_limit_per_user(tmp_path: Path) -> None:
    """A user over the write rate gets 429 with Retry-After; another user is not affected."""
    for c in community(tmp_path / "data", settings=ApiSettings(rate_per_second=0.01, rate_burst=2)):
        async with client_for(c.app) as http:
            for _ in range(2):
                await ok(
                    await http.post("/choir/threads", json={"title": "t"}, headers=c.auth("ada")),
                    201,
                )
            r = await http.post("/choir/threads", json={"title": "t"}, headers=c.auth("ada"))
            error(r, 429, "rate_limited")
            assert int(r.headers["Retry-After"]) >= 1
            await ok(
                await http.post("/choir/threads", json={"title": "t"}, headers=c.auth("grace")), 201
            )


async def test_pre_signed_transactions(choir: tuple[Community, httpx.AsyncClient]) -> None:
    """A user holding their own key joins and opens a thread with signed transactions; a
    replay of the same id is a no-op; a forged signature and a reused id are refused."""
    _, http = choir
    key = NodeKey.generate()
    join = Transaction.sign(key, TxKind.JOIN, {"name": "hopper"})
    first = await ok(await http.post("/choir/transactions", json=join.to_json()), 201)
    again = await ok(await http.post("/choir/transactions", json=join.to_json()), 201)
    assert (first["replayed"], again["replayed"], again["seq"]) == (False, True, first["seq"])
    thread = Transaction.sign(key, TxKind.THREAD, {"thread": "own1", "title": "mine"})
    await ok(await http.post("/choir/transactions", json=thread.to_json()), 201)
    assert (await ok(await http.get("/choir/threads/own1")))["coauthors"] == [key.id]
    forged = {**thread.to_json(), "body": {"thread": "own2", "title": "mine"}}
    error(await http.post("/choir/transactions", json=forged), 403, "bad_signature")
    extra = {**thread.to_json(), "body": {"thread": "own2", "title": "mine", "x": 1}}
    error(await http.post("/choir/transactions", json=extra), 422, "invalid")
    join2 = Transaction.sign(key, TxKind.JOIN, {"name": "hopper2"})
    error(await http.post("/choir/transactions", json=join2.to_json()), 409, "already_joined")
    taken = Transaction.sign(NodeKey.generate(), TxKind.JOIN, {"name": "ada"})
    error(await http.post("/choir/transactions", json=taken.to_json()), 409, "name_taken")
    again_thread = Transaction.sign(key, TxKind.THREAD, {"thread": "own1", "title": "x"})
    error(await http.post("/choir/transactions", json=again_thread.to_json()), 409, "exists")
    other = Transaction.sign(key, TxKind.THREAD, {"thread": "own3", "title": "x"}, tx_id=thread.id)
    error(await http.post("/choir/transactions", json=other.to_json()), 409, "id_conflict")
    post = Transaction.sign(
        key, TxKind.POST, {"thread": "own1", "message": "m1", "content_hash": content_hash("hi")}
    )
    error(await http.post("/choir/transactions", json=post.to_json()), 422, "invalid")
    wrong = post.to_json() | {"text": "hello"}
    error(await http.post("/choir/transactions", json=wrong), 403, "text_mismatch")
    await ok(await http.post("/choir/transactions", json=post.to_json() | {"text": "hi"}), 201)
    [message] = (await ok(await http.get("/choir/threads/own1")))["messages"]
    assert (message["text"], message["author"]) == ("hi", key.id)
    assert (await ok(await http.get("/choir/search", params={"q": "hi"})))[0]["message_id"] == "m1"
    stranger = Transaction.sign(NodeKey.generate(), TxKind.THREAD, {"thread": "t9", "title": "x"})
    error(await http.post("/choir/transactions", json=stranger.to_json()), 404, "unknown_user")


_RULED = {401, 404, 405, 409, 413, 422, 429, 503}
#: What each Choir route can answer (the tests above reach each error status).
CHOIR_EXPECTED = {
    ("get", "/api/v1/choir/me"): {200, 401, 503},
    ("get", "/api/v1/choir/users"): {200, 403, 503},
    ("get", "/api/v1/choir/threads"): {200, 403, 503},
    ("post", "/api/v1/choir/threads"): {201, 400, 401, 405, 413, 422, 429, 503},
    ("get", "/api/v1/choir/threads/{thread_id}"): {200, 403, 404, 422, 503},
    ("post", "/api/v1/choir/threads/{thread_id}/messages"): {201, 400} | _RULED,
    ("post", "/api/v1/choir/threads/{thread_id}/specs"): {201, 400} | _RULED,
    ("post", "/api/v1/choir/specs/{spec_id}/votes"): {201, 400} | _RULED,
    ("post", "/api/v1/choir/specs/{spec_id}/close"): {200} | _RULED,
    ("post", "/api/v1/choir/threads/{thread_id}/divest"): {200} | _RULED,
    ("post", "/api/v1/choir/transactions"): {201, 400, 403, 404, 405, 409, 413, 422, 429, 503},
    ("get", "/api/v1/choir/totals"): {200, 403, 503},
    ("get", "/api/v1/choir/search"): {200, 403, 404, 422, 503},
}


def test_openapi_lists_every_choir_route_and_status(tmp_path: Path) -> None:
    """A Choir app's document has exactly the Choir routes, each with every status it can
    answer, every error status with the one error body."""
    for c in community(tmp_path / "data"):
        document = c.app.openapi()
        found = {
            (method, path): {int(s) for s in op["responses"]}
            for path, item in document["paths"].items()
            for method, op in item.items()
        }
        assert found == CHOIR_EXPECTED
        for path, item in document["paths"].items():
            for op in item.values():
                for status, answer in op["responses"].items():
                    if int(status) >= 400:
                        ref = answer["content"]["application/json"]["schema"]["$ref"]
                        assert ref.endswith("/ErrorBody"), (path, status)


async def test_a_write_by_another_process_is_folded_before_the_next(
    choir: tuple[Community, httpx.AsyncClient],
) -> None:
    """A transaction written to the ledger behind the service's back (as another process
    sharing it would) gets its events, in chain order, when the service next writes."""
    c, http = choir
    tid, _ = await thread_with_spec(c, http)
    home = c.service.home
    c.service.ledger.submit(
        Transaction.sign(
            home.key("ada"),
            TxKind.POST,
            {"thread": tid, "message": "side", "content_hash": content_hash("x")},
        ),
        now=c.clock.now,
    )
    before = [e.seq for e in c.service.events[tid]]
    await ok(
        await http.post(
            f"/choir/threads/{tid}/messages", json={"text": "mine"}, headers=c.auth("ada")
        ),
        201,
    )
    events = c.service.events[tid]
    assert [e.type for e in events[len(before) :]] == ["message", "message"]
    assert events[-2].data["id"] == "side"
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)


async def test_metrics_of_a_choir_app(tmp_path: Path) -> None:
    """/metrics of a Choir app parses and shows the transactions by kind and a residual of 0."""
    from prometheus_client.parser import text_string_to_metric_families

    from becomingone.api import create_app
    from becomingone.runtime.metrics import choir_registry

    for c in community(tmp_path / "data"):
        registry = choir_registry(c.service.ledger, c.service.transactions.copy)
        app = create_app(None, ApiSettings(), choir=c.service, registry=registry)
        async with client_for(app) as http:
            await thread_with_spec(c, http)
            text = (await http.get("http://test/metrics")).text
        samples = {
            (s.name, tuple(s.labels.values())): s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
        }
        assert samples[("becomingone_choir_transactions_total", ("join",))] == 3
        assert samples[("becomingone_choir_transactions_total", ("submit",))] == 1
        assert samples[("becomingone_choir_invariant_checks_total", ())] == 6
        assert samples[("becomingone_choir_conservation_residual", ())] == 0
        assert samples[("becomingone_choir_balance", ("escrow",))] == 50
        assert samples[("becomingone_choir_pending_specs", ())] == 1
