"""Glyphs of a served cluster: the desk (list, submit to the least-loaded cell, cancel with a
witness record, refusals), the routes with tokens, and `becomingone glyph submit|list|cancel|
top` against a real `cluster --cells full --serve` process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from becomingone.api import ApiSettings, ServedCluster, TokenStore, create_app
from becomingone.cluster import Glyph
from becomingone.config.schema import BecomingOneConfig, CellConfig
from becomingone.errors import InputError
from becomingone.runtime import (
    GlyphBusy,
    GlyphDesk,
    GlyphExists,
    UnknownCell,
    UnknownGlyph,
    build_supervisors,
)
from becomingone.runtime.cell_member import CellMember, build_cell_members
from tests.api.conftest import client_for
from tests.api.test_e2e import CLI, free_port

pytestmark = pytest.mark.timeout(180)

PROBE = {"kind": "probe", "payload": {"probe": "loadavg"}, "energy": 50.0, "lifetime": 100}


def _config() -> CellConfig:
    small = {"master": {"tau_max": 10.0, "witness_interval": 5.0}}
    return BecomingOneConfig.model_validate({"becomingone": small}).becomingone


@pytest.fixture
def members(tmp_path: Path) -> Iterator[list[CellMember]]:
    """Three full cells on their own data dirs (closed at the end)."""
    sups = build_supervisors(3, "mesh", seed=5, spread=0.0)
    built = build_cell_members(sups, tmp_path, _config(), seed=5, wait_runs=True)
    yield built
    for m in built:
        m.close()


def test_submit_goes_to_the_least_loaded_cell(members: list[CellMember]) -> None:
    """With cell 0 loaded, new glyphs go to the lightest cell (ties by node id); a named cell
    gets it instead; the list shows every glyph with its owner, by id."""
    desk = GlyphDesk(members)
    members[0].glyphs.submit(Glyph(id="heavy", **{**PROBE, "energy": 900.0}))
    first = desk.submit({**PROBE, "id": "a"})
    second = desk.submit({**PROBE, "id": "b"})
    named = desk.submit({**PROBE, "id": "c"}, cell=members[0].node_id)
    assert first["owner"] == members[1].node_id and second["owner"] == members[2].node_id
    assert named["owner"] == members[0].node_id
    drawn = desk.submit(PROBE)
    assert drawn["id"].startswith("g-") and len(drawn["id"]) == 14
    listed = desk.glyphs()
    assert [g["id"] for g in listed] == sorted(["heavy", "a", "b", "c", drawn["id"]])
    assert all(g["state"] == "scheduled" for g in listed)


@pytest.mark.parametrize(
    ("fields", "cell", "error"),
    [
        ({**PROBE, "id": "dup"}, None, GlyphExists),
        ({**PROBE, "kind": "nope"}, None, "kind"),
        ({**PROBE, "theta": 1.0}, None, "theta"),
        ({**PROBE, "owner": "cell-0001"}, None, "owner"),
        ({**PROBE, "epoch": 3}, None, "epoch"),
        (PROBE, "nobody", UnknownCell),
    ],
)
def test_a_bad_submission_is_refused_naming_the_field(
    members: list[CellMember], fields: dict[str, Any], cell: str | None, error: Any
) -> None:
    """A duplicate id (anywhere in the cluster) and an unknown cell have errors of their own;
    an unknown kind, θ out of range and fields the cluster sets are InputErrors naming the
    field; nothing was added."""
    desk = GlyphDesk(members)
    members[2].glyphs.submit(Glyph(id="dup", **PROBE))
    expected = InputError if isinstance(error, str) else error
    with pytest.raises(expected) as refused:
        desk.submit(fields, cell)
    if isinstance(error, str):
        assert refused.value.parameter == error
    assert [g["id"] for g in desk.glyphs()] == ["dup"]
    assert desk.kinds == ["command", "probe", "python"]


def test_cancel_ends_the_glyph_on_its_owner_witnessed(members: list[CellMember]) -> None:
    """Cancel removes the glyph from its owner and writes `glyph.ended` (reason cancelled) on
    the owner's chain; an unknown id and a glyph in flight are refused."""
    desk = GlyphDesk(members)
    owned = desk.submit({**PROBE, "id": "x"})
    owner = next(m for m in members if m.node_id == owned["owner"])
    last = asyncio.run(desk.cancel("x", 1.0))
    assert last["state"] == "cancelled" and "x" not in owner.glyphs.scheduler
    ended = [r for r in owner.cell.memory.witnesses() if r.kind == "glyph.ended"]
    assert json.loads(ended[-1].payload)["reason"] == "cancelled"
    again = asyncio.run(desk.cancel("x", 1.0))  # idempotent: the final state, no new record
    assert (again["state"], again["reason"]) == ("ended", "cancelled")
    assert len([r for r in owner.cell.memory.witnesses() if r.kind == "glyph.ended"]) == len(ended)
    with pytest.raises(UnknownGlyph):
        asyncio.run(desk.cancel("never", 1.0))
    desk.submit({**PROBE, "id": "y"}, cell=members[0].node_id)
    members[0].glyphs.hold("y")  # a migration took it out to offer it
    with pytest.raises(GlyphBusy):
        asyncio.run(desk.cancel("y", 1.0))
    assert [g["state"] for g in desk.glyphs()] == ["held"]


async def test_routes_need_a_token_and_map_refusals(
    members: list[CellMember], tmp_path: Path
) -> None:
    """GET lists; POST (201) and DELETE need a token; a bad glyph is 422, a second cancel
    answers the final state, an unknown id 404, a glyph in flight 409, all with the one error
    body; without a desk the routes are absent."""
    tokens = TokenStore(tmp_path / "tokens")
    token = tokens.create("ops")
    served = ServedCluster("local", "mesh", threshold=0.95, desk=GlyphDesk(members))
    app = create_app(None, ApiSettings(), tokens=tokens, cluster=served)
    auth = {"Authorization": f"Bearer {token}"}
    async with client_for(app) as client:
        assert (await client.post("/cluster/glyphs", json=PROBE)).status_code == 401
        made = await client.post("/cluster/glyphs", json={**PROBE, "id": "k"}, headers=auth)
        assert made.status_code == 201 and made.json()["owner"].startswith("cell-")
        bad = await client.post("/cluster/glyphs", json={**PROBE, "energy": -1}, headers=auth)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "body.energy"
        extra = await client.post("/cluster/glyphs", json={**PROBE, "x": 1}, headers=auth)
        assert extra.status_code == 422
        again = await client.post("/cluster/glyphs", json={**PROBE, "id": "k"}, headers=auth)
        assert again.status_code == 409 and again.json()["error"]["code"] == "glyph_exists"
        nocell = await client.post("/cluster/glyphs", json={**PROBE, "cell": "x"}, headers=auth)
        assert nocell.status_code == 404 and nocell.json()["error"]["field"] == "cell"
        options = await client.options("/cluster/glyphs")
        assert options.status_code == 405 and options.headers["allow"] == "GET, POST"
        kinds = app.openapi()["components"]["schemas"]["GlyphCreate"]["properties"]["kind"]
        assert kinds["enum"] == ["command", "probe", "python"]
        listed = (await client.get("/cluster/glyphs")).json()
        assert listed["count"] == 1 and listed["glyphs"][0]["id"] == "k"
        assert (await client.delete("/cluster/glyphs/k")).status_code == 401
        gone = await client.delete("/cluster/glyphs/k", headers=auth)
        assert gone.status_code == 200 and gone.json()["state"] == "cancelled"
        again = await client.delete("/cluster/glyphs/k", headers=auth)
        assert again.status_code == 200 and again.json()["state"] == "ended"
        missing = await client.delete("/cluster/glyphs/never", headers=auth)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_glyph"
        await client.post("/cluster/glyphs", json={**PROBE, "id": "m"}, headers=auth)
        owner = next(m for m in members if m.glyphs.holds("m"))
        owner.glyphs.hold("m")
        moving = await client.delete("/cluster/glyphs/m", headers=auth)
        assert moving.status_code == 409 and moving.json()["error"]["code"] == "glyph_moving"
    plain = create_app(None, ApiSettings(), cluster=ServedCluster("l", "mesh", threshold=0.9))
    async with client_for(plain) as client:
        assert (await client.get("/cluster/glyphs")).status_code == 404
    tokens.close()


def _glyph(url: str, *args: str, token: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BECOMINGONE_TOKEN": token}
    return subprocess.run(
        [*CLI, "glyph", *args, "--url", url],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_glyph_cli_on_a_running_cluster(tmp_path: Path) -> None:
    """`cluster --cells full --serve --data-dir D` with a token made by `tokens create`:
    submit lands on a cell, list shows it, top --json follows ticks with per-cell glyph rows,
    cancel ends it; without the token a submit is refused with one line (exit 1)."""
    data = tmp_path / "cluster"
    made = subprocess.run(
        [*CLI, "tokens", "create", "ops", "--data-dir", str(data)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    token = made.stdout.strip()
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "cluster", "--cells", "full", "--nodes", "3", "--topology", "mesh",
         "--duration", "120", "--data-dir", str(data), "--serve", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"{url}/api/v1/cluster/glyphs", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the cluster API did not come up"
            time.sleep(0.2)
        refused = _glyph(url, "submit", "probe", "--payload", '{"probe": "loadavg"}')
        assert refused.returncode == 1 and "401" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        sent = _glyph(url, "submit", "probe", "--payload", '{"probe": "loadavg"}', "--id",
                      "load", "--theta", "0.5", "--json", token=token)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["owner"].startswith("cell-")
        listed = json.loads(_glyph(url, "list", "--json").stdout)
        assert [g["id"] for g in listed["glyphs"]] == ["load"]
        top = _glyph(url, "top", "--duration", "2", "--json")
        rows = [json.loads(line) for line in top.stdout.splitlines()]
        assert top.returncode == 0 and len(rows) >= 3
        assert sum(c["glyphs"] for c in rows[-1]["cells"].values()) == 1
        assert [r["tick"] for r in rows] == sorted(r["tick"] for r in rows)
        gone = _glyph(url, "cancel", "load", token=token)
        assert gone.returncode == 0 and gone.stdout.startswith("cancelled load")
        assert json.loads(_glyph(url, "list", "--json").stdout)["count"] == 0
        bad = _glyph(url, "submit", "probe", "--payload", "[1]", token=token)
        assert bad.returncode == 2 and "--payload" in bad.stderr
    finally:
        proc.kill()
        proc.wait(timeout=30)
