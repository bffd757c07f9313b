"""Read routes of the API on a running cell (httpx on the ASGI transport): node, config,
state, coherence now and history, witness verify, pages and single records, and the error
body of every refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from becomingone.api import ApiSettings, ServedCell, create_app, redact
from becomingone.api.routers.coherence import downsample
from becomingone.memory.store import Coherence, CoherencePoint
from becomingone.witnessing import Level, WitnessRecord
from tests.api.conftest import Served, client_for, ingest
from tests.helpers import small_config, sql


def one_error(body: dict[str, Any], code: str) -> dict[str, Any]:
    """The error body has exactly the documented shape, the given code and a one-line message."""
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "field"}
    assert error["code"] == code, body
    assert error["message"] and "\n" not in error["message"]
    return error


async def test_node_identity_config_and_state(live: Served) -> None:
    """/node names the cell and its key; /node/config is the config; /node/state the counts."""
    node = (await live.client.get("/node")).json()
    assert node["running"] is True
    assert node["public_key"] == live.cell.key.public_bytes.hex()
    config = (await live.client.get("/node/config")).json()
    assert config["kairos"]["dt"] == 0.01 and config["api"]["allow_remote"] is False
    state = (await live.client.get("/node/state")).json()
    assert state["samples"] == live.cell.samples == 300
    assert state["witnessed"] == live.cell.chain.count
    assert state["counts"]["collapses"] == live.cell.counts["collapses"]


def test_redact_hides_secret_looking_keys_at_any_depth() -> None:
    """Keys naming a password, token, secret or private key are shown as ***, lists too."""
    config = {
        "name": "c",
        "nats": [{"url": "u", "password": "p"}],
        "api_token": "t",
        "tls": {"private_key": "k", "cert_file": "c.pem"},
    }
    assert redact(config) == {
        "name": "c",
        "nats": [{"url": "u", "password": "***"}],
        "api_token": "***",
        "tls": {"private_key": "***", "cert_file": "c.pem"},
    }


async def test_coherence_now_is_the_newest_decision(live: Served) -> None:
    """/coherence/now is the newest ingest record's decision (its seq and stream time)."""
    now = (await live.client.get("/coherence/now")).json()
    newest = [r for r in live.cell.memory.witnesses() if r.kind == "ingest"][-1]
    assert now["seq"] == newest.seq and now["t"] == pytest.approx(newest.data()["t"])
    assert now["outcome"] in ("collapse", "dissipate") and 0 <= now["sync"] <= 1


def _counting_reads(served: ServedCell) -> list[int]:
    """Count the witness records ``served`` decodes from now on (one entry per read)."""
    reads: list[int] = []
    original = served.memory.witnesses

    def witnesses(*, start: int = 0, limit: int | None = None) -> Iterator[WitnessRecord]:
        reads.append(0)
        for record in original(start=start, limit=limit):
            reads[-1] += 1
            yield record

    served.memory.witnesses = witnesses  # type: ignore[method-assign]
    return reads


async def test_coherence_now_reads_only_the_newest_records_of_a_long_chain(
    live: Served,
) -> None:
    """With a chain of thousands of records whose newest is an ingest, /coherence/now decodes a
    few records, not the newest 1024 (it used to decode 1024 on every call)."""
    await ingest(live.cell, 1100, size=2)
    newest = [r for r in live.cell.memory.witnesses() if r.kind == "ingest"][-1]
    assert newest.seq > live.cell.chain.count - 16 and live.cell.chain.count > 1100
    reads = _counting_reads(live.served)
    assert (await live.client.get("/coherence/now")).json()["seq"] == newest.seq
    assert sum(reads) <= 16, reads


async def test_coherence_now_finds_an_ingest_behind_many_other_records(live: Served) -> None:
    """The newest ingest is found behind hundreds of newer non-ingest records (the scan widens
    page by page), and a cell whose newest 1024 records hold no ingest answers 404 no_data."""
    newest = (await live.client.get("/coherence/now")).json()
    for i in range(300):
        await live.cell.witness(Level.META, "note", {"i": i}, now=2_000.0 + i)
    assert (await live.client.get("/coherence/now")).json() == newest
    for i in range(1024):
        await live.cell.witness(Level.META, "note", {"i": i}, now=3_000.0 + i)
    answer = await live.client.get("/coherence/now")
    assert answer.status_code == 404
    one_error(answer.json(), "no_data")


async def test_access_checks_take_no_worker_thread(
    live: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dependencies that only look at the app's state run on the event loop; only blocking
    work takes a worker thread: none for /node (no I/O), two for /coherence/now (its database
    read, then FastAPI's check of a plain handler's answer), one for a write (the token check).
    Before, every dependency took one more: 5, 5 and 4."""
    hops: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(repr(func)[:80])
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    auth = {"Authorization": f"Bearer {live.token}"}
    for method, path, expected in (("GET", "/node", 0), ("GET", "/coherence/now", 2)):
        hops.clear()
        assert (await live.client.request(method, path)).status_code == 200
        assert len(hops) == expected, (path, hops)
    hops.clear()
    answer = await live.client.post("/signals", json={"samples": [0.1]}, headers=auth)
    assert answer.status_code == 202 and len(hops) == 1, hops


async def test_coherence_history_is_bounded_and_downsampled(live: Served) -> None:
    """History over the stored range has at most `points` points whose n sum to the stored
    count; asking for more than the app's limit is a 422 naming `points`."""
    body = (await live.client.get("/coherence/history", params={"start": 0, "points": 2})).json()
    assert body["stored"] == 6 and len(body["points"]) == 2
    assert sum(p["n"] for p in body["points"]) == 6
    all_points = (await live.client.get("/coherence/history", params={"start": 0})).json()
    assert len(all_points["points"]) == 6
    too_many = await live.client.get("/coherence/history", params={"points": 51})
    assert too_many.status_code == 422
    assert one_error(too_many.json(), "invalid")["field"] == "points"
    backwards = await live.client.get("/coherence/history", params={"start": 5, "end": 1})
    assert backwards.status_code == 200 and backwards.json()["points"] == []
    endless = await live.client.get("/coherence/history", params={"start": "nan"})
    assert endless.status_code == 422
    bad = await live.client.get("/coherence/history", params={"points": "many"})
    assert bad.status_code == 422 and one_error(bad.json(), "invalid")["field"] == "query.points"


def test_downsample_matches_a_plain_weighted_mean() -> None:
    """Each bucket is the n-weighted mean of the points in it (compared with a slow sum)."""
    pts = [
        CoherencePoint(
            t=float(t),
            coherence=Coherence(master=t / 10, emissary=0.5, sync=0.25, delta_phase=0.0),
            phase=0.0,
            n=1 + t % 3,
        )
        for t in range(10)
    ]
    out = downsample(pts, 0.0, 10.0, 3)
    assert len(out) == 3
    first = [p for p in pts if p.t < 10 / 3]
    weight = sum(p.n for p in first)
    assert out[0].n == weight
    assert out[0].master == pytest.approx(sum(p.coherence.master * p.n for p in first) / weight)


async def test_witness_verify_pages_and_records(live: Served) -> None:
    """verify walks the whole chain; pages chain to the end; a record by seq; 404 beyond."""
    report = (await live.client.get("/witness/verify")).json()
    assert report == {
        "ok": True,
        "integrity": "ok",
        "chain_ok": True,
        "checked": live.cell.chain.count,
        "first_bad": None,
        "reason": None,
    }
    seen, start = [], 0
    while start is not None:
        page = (
            await live.client.get("/witness/records", params={"start": start, "limit": 7})
        ).json()
        seen += [r["seq"] for r in page["records"]]
        start = page["next"]
    assert seen == list(range(live.cell.chain.count))
    one = (await live.client.get("/witness/records/2")).json()
    assert one["seq"] == 2 and len(one["signature"]) == 128
    missing = await live.client.get("/witness/records/999999")
    assert missing.status_code == 404 and one_error(missing.json(), "not_found")["field"] == "seq"
    huge = await live.client.get(f"/witness/records/{2**70}")  # beyond SQLite's integers
    assert huge.status_code == 422 and one_error(huge.json(), "invalid")["field"] == "path.seq"
    big = await live.client.get("/witness/records", params={"limit": 21})
    assert big.status_code == 422 and one_error(big.json(), "invalid")["field"] == "limit"


async def test_verify_names_a_tampered_record(live: Served) -> None:
    """A record changed in the database makes /witness/verify answer ok false with its seq."""
    sql(live.cell.memory.path, "UPDATE witness SET payload = '{}' WHERE seq = 3")
    report = (await live.client.get("/witness/verify")).json()
    assert report["ok"] is False and report["first_bad"] == 3
    assert report["chain_ok"] is False and report["integrity"] == "ok"


async def test_unknown_route_and_wrong_method_use_the_error_body(live: Served) -> None:
    """An unknown path is 404 and a wrong method 405, both with the one error body."""
    missing = await live.client.get("/nothing")
    assert missing.status_code == 404
    one_error(missing.json(), "not_found")
    wrong = await live.client.delete("/node")
    assert wrong.status_code == 405
    one_error(wrong.json(), "method_not_allowed")


async def test_reads_from_beyond_loopback_need_a_token(live: Served) -> None:
    """A client at a non-loopback address gets 403 without a token and 200 with one."""
    app = live.client._transport.app  # type: ignore[attr-defined]
    async with client_for(app, host="192.0.2.7") as remote:
        refused = await remote.get("/node")
        assert refused.status_code == 403
        one_error(refused.json(), "remote_read")
        ok = await remote.get("/node", headers={"Authorization": f"Bearer {live.token}"})
        assert ok.status_code == 200


async def test_a_stopped_cell_is_served_read_only(tmp_path: Path) -> None:
    """`serve`'s app on a closed data dir reads the history; every write answers 405."""
    from becomingone.runtime.cell import Cell

    cell = Cell(small_config(), tmp_path / "data")
    await ingest(cell, 3)
    count = cell.chain.count
    await cell.aclose()
    served = ServedCell.stopped(small_config(), tmp_path / "data")
    app = create_app(served, ApiSettings(read_only=True))
    try:
        async with client_for(app) as client:
            assert (await client.get("/node")).json()["running"] is False
            assert (await client.get("/node/state")).json()["witnessed"] == count
            assert (await client.get("/witness/verify")).json()["ok"] is True
            assert (await client.get("/coherence/now")).status_code == 200
            post = await client.post("/signals", json={"samples": [0.1]})
            assert post.status_code == 405 and post.headers["allow"] == ""
            one_error(post.json(), "read_only")
    finally:
        served.close()


async def test_no_decision_yet_is_404(tmp_path: Path) -> None:
    """A new cell has no decision: /coherence/now is 404 with code no_data."""
    from becomingone.runtime.cell import Cell

    cell = Cell(small_config(), tmp_path / "data")
    await cell.aclose()
    served = ServedCell.stopped(small_config(), tmp_path / "data")
    try:
        async with client_for(create_app(served, ApiSettings(read_only=True))) as client:
            answer = await client.get("/coherence/now")
            assert answer.status_code == 404
            one_error(answer.json(), "no_data")
    finally:
        served.close()


async def test_concurrent_reads_share_one_connection_safely(live: Served) -> None:
    """Many reads at once (FastAPI runs them in worker threads on one read connection) all
    answer 200 with consistent pages: no 'transaction within a transaction'."""
    import asyncio

    async def page(start: int) -> int:
        answer = await live.client.get("/witness/records", params={"start": start, "limit": 5})
        assert answer.status_code == 200, answer.text
        return int(answer.json()["total"])

    calls = [page(i % 10) for i in range(60)]
    calls += [live.client.get("/coherence/now") for _ in range(20)]  # type: ignore[misc]
    results = await asyncio.gather(*calls)
    assert all(r == live.cell.chain.count for r in results[:60])
    assert all(r.status_code == 200 for r in results[60:])  # type: ignore[union-attr]
