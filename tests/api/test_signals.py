"""POST /api/v1/signals: samples as JSON or CSV into the running cell's inbox; every bad input
(malformed, NaN, wrong width, huge body, no/unknown/revoked token, rate limit, full inbox)
gets its status and the one error body, is counted, and leaves the cell as it was."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from becomingone.api import merge_sources
from becomingone.runtime.cell import run_cell
from tests.api.conftest import Served
from tests.api.test_routes import one_error


def auth(served: Served) -> dict[str, str]:
    """The Authorization header of the fixture's token."""
    return {"Authorization": f"Bearer {served.token}"}


async def test_json_and_csv_samples_reach_the_cell(live: Served) -> None:
    """Posted JSON and CSV batches are queued whole, then ingested in order by run_cell
    through merge_sources: the cell's sample count grows by exactly what was posted."""
    before = live.cell.samples
    js = await live.client.post("/signals", json={"samples": [0.1, 0.2, 0.3]}, headers=auth(live))
    assert js.status_code == 202 and js.json() == {"accepted": 3, "queued_batches": 1}
    csv = await live.client.post(
        "/signals",
        content=b"# phase\n0.4\n0.5\n",
        headers=auth(live) | {"Content-Type": "text/csv"},
    )
    assert csv.status_code == 202 and csv.json()["accepted"] == 2
    stop = asyncio.Event()
    batches = merge_sources(None, live.inbox)
    task = asyncio.ensure_future(run_cell(live.cell, batches, stop=stop))
    for _ in range(200):
        if live.cell.samples == before + 5:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    await batches.aclose()  # type: ignore[attr-defined]
    assert live.cell.samples == before + 5
    state = (await live.client.get("/node/state")).json()
    assert state["inbox"] == {"queued": 0, "accepted_batches": 2, "accepted_samples": 5}


@pytest.mark.parametrize(
    ("body", "kind", "status", "code", "field"),
    [
        (b'{"samples": [0.1,', "application/json", 400, "bad_json", "body"),
        (b'{"samples": [NaN]}', "application/json", 422, "invalid", "samples[0]"),
        (b'{"samples": [1e999]}', "application/json", 422, "invalid", "samples[0]"),
        (b'{"samples": [[0.1, 0.2]]}', "application/json", 422, "invalid", "samples[0]"),
        (b'{"samples": ["x"]}', "application/json", 422, "invalid", "samples[0]"),
        (b'{"samples": []}', "application/json", 422, "invalid", "samples"),
        (b'{"rows": [1]}', "application/json", 400, "bad_json", "body"),
        (b"0.1\nabc\n", "text/csv", 400, "bad_csv", "line 2"),
        (b"0.1\nnan\n", "text/csv", 400, "bad_csv", "line 2"),
        (b"0.1\n1_000\n", "text/csv", 400, "bad_csv", "line 2"),
        (b"# phase\n0.1\n0.2 0.3\n", "text/csv", 422, "invalid", "row 2"),
        (b"0.1", "text/plain", 400, "bad_content_type", "Content-Type"),
    ],
)
async def test_bad_input_is_refused_with_one_error_body(
    live: Served, body: bytes, kind: str, status: int, code: str, field: str
) -> None:
    """Each malformed or invalid body gets its status, code and field; nothing is queued and
    the refusal is counted in /node/state."""
    answer = await live.client.post(
        "/signals", content=body, headers=auth(live) | {"Content-Type": kind}
    )
    assert answer.status_code == status, answer.text
    assert one_error(answer.json(), code)["field"] == field
    assert live.inbox.queue.qsize() == 0
    assert (await live.client.get("/node/state")).json()["api_errors"] == {code: 1}


async def test_too_many_rows_and_a_huge_body(live: Served) -> None:
    """More rows than max_samples is 422; a body over max_body_bytes is 413 (declared or
    streamed without a length)."""
    rows = await live.client.post("/signals", json={"samples": [0.1] * 501}, headers=auth(live))
    assert rows.status_code == 422 and "at most 500" in rows.json()["error"]["message"]
    huge = await live.client.post(
        "/signals", content=b"0.1\n" * 5000, headers=auth(live) | {"Content-Type": "text/csv"}
    )
    assert huge.status_code == 413
    one_error(huge.json(), "too_large")

    async def chunks():  # no Content-Length: the route counts while it reads
        for _ in range(5):
            yield b"0.1\n" * 300

    streamed = await live.client.post(
        "/signals", content=chunks(), headers=auth(live) | {"Content-Type": "text/csv"}
    )
    assert streamed.status_code == 413
    assert live.inbox.queue.qsize() == 0


async def test_tokens_missing_unknown_and_revoked(live: Served) -> None:
    """No token and an unknown token are 401 (with WWW-Authenticate); a revoked token 403."""
    body = {"samples": [0.1]}
    none = await live.client.post("/signals", json=body)
    assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer"
    one_error(none.json(), "unauthorized")
    wrong = await live.client.post(
        "/signals", json=body, headers={"Authorization": "Bearer bo1_not-a-token"}
    )
    assert wrong.status_code == 401
    live.tokens.revoke("test")
    revoked = await live.client.post("/signals", json=body, headers=auth(live))
    assert revoked.status_code == 403
    one_error(revoked.json(), "token_revoked")


async def test_rate_limit_is_a_token_bucket_per_token(live: Served) -> None:
    """burst 3 at 2/s: the 4th write at once is 429 with Retry-After 1; half a second later
    one more is allowed; another token has its own bucket."""
    body = {"samples": [0.1]}
    for _ in range(3):
        assert (
            await live.client.post("/signals", json=body, headers=auth(live))
        ).status_code == 202
        live.inbox.queue.get_nowait()
    limited = await live.client.post("/signals", json=body, headers=auth(live))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    one_error(limited.json(), "rate_limited")
    other = live.tokens.create("other")
    ok = await live.client.post("/signals", json=body, headers={"Authorization": f"Bearer {other}"})
    assert ok.status_code == 202
    live.clock.now += 0.5
    assert (await live.client.post("/signals", json=body, headers=auth(live))).status_code == 202


async def test_a_full_inbox_is_503_with_retry_after(live: Served) -> None:
    """With 4 batches waiting the 5th POST is 503 inbox_full with Retry-After."""
    live.clock.now = 0.0
    for i in range(4):
        live.clock.now += 10.0
        answer = await live.client.post("/signals", json={"samples": [i / 10]}, headers=auth(live))
        assert answer.status_code == 202
    live.clock.now += 10.0
    full = await live.client.post("/signals", json={"samples": [0.9]}, headers=auth(live))
    assert full.status_code == 503 and full.headers["retry-after"] == "1"
    one_error(full.json(), "inbox_full")


async def test_multichannel_rows(tmp_path) -> None:
    """With 2 channels a sample is a list of 2 numbers; a bare number is refused."""
    from becomingone.api.inbox import parse_csv, parse_json

    batch = parse_json(b'{"samples": [[0.1, 0.2], [0.3, 0.4]]}', 2, 10)
    assert batch.shape == (2, 2) and np.allclose(batch, [[0.1, 0.2], [0.3, 0.4]])
    assert parse_csv(b"0.1, 0.2\n0.3 0.4\n", 2, 10).shape == (2, 2)
    with pytest.raises(ValueError, match="list of 2 numbers"):
        parse_json(b'{"samples": [0.1]}', 2, 10)
    assert not math.isnan(float(batch.sum()))
