"""The partifact routes of a served `cluster --roles` (ASGI, real in-process cells): roles and
the lifecycle, propose, vote as a cell until a proposal passes (yes / eligible ≥ 1/φ), the
consensus' refusals as 409s with its reasons, and glyph writes becoming proposals once the
cluster is AUTONOMOUS (applied at once below it)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from becomingone.api import ApiSettings, ServedCluster, TokenStore, create_app
from becomingone.cluster import Decision, LifecycleStage, Role
from becomingone.config.schema import BecomingOneConfig
from becomingone.runtime import (
    ClusterMember,
    GlyphDesk,
    LocalCluster,
    PartifactDriver,
    PartifactTick,
    ProposalDesk,
    build_supervisors,
)
from becomingone.runtime.cell_member import CellMember, build_cell_members
from becomingone.runtime.proposal_desk import needed
from becomingone.transport import MemoryBus
from tests.api.conftest import client_for

pytestmark = pytest.mark.timeout(300)

TICK = 0.05
PROBE = {"kind": "probe", "payload": {"probe": "loadavg"}, "energy": 50.0, "lifetime": 100}


@dataclass
class Roles:
    """A served `--roles` cluster the test ticks by hand."""

    cluster: LocalCluster
    driver: PartifactDriver
    served: ServedCluster
    client: httpx.AsyncClient
    auth: dict[str, str]
    tick: int = 0

    async def advance(
        self, ticks: int, until: Callable[[PartifactTick], bool] | None = None
    ) -> PartifactTick:
        """Up to ``ticks`` ticks (stopping once ``until`` holds); the last partifact tick."""
        last = None
        for _ in range(ticks):
            report = await self.cluster.step(self.tick * TICK)
            self.tick += 1
            last = self.driver.step(report)
            self.served.record(report, self.cluster.members)
            if until is not None and until(last):
                break
        assert last is not None
        return last

    async def to_stage(self, stage: LifecycleStage, limit: int = 1500) -> None:
        """Tick until the lifecycle is at ``stage`` (fails after ``limit`` ticks)."""
        last = await self.advance(limit, lambda t: t.lifecycle.stage is stage)
        assert last.lifecycle.stage is stage, last.lifecycle.stage

    def holders(self, role: Role) -> list[str]:
        """The cells holding ``role``, sorted."""
        return sorted(c for c, r in self.driver.cluster.roles.items() if r is role)


@contextlib.asynccontextmanager
async def serve_roles(
    members: Sequence[ClusterMember], keys: dict[str, object], tmp_path: Path
) -> AsyncIterator[Roles]:
    """``members`` under a partifact driver, served with a write token."""
    driver = PartifactDriver(members, keys, genesis_timeout=1.0, vote_seconds=0.5)  # type: ignore[arg-type]
    full = [m for m in members if isinstance(m, CellMember)]
    desk = GlyphDesk(full) if full else None
    served = ServedCluster(
        "local", "mesh", threshold=0.95, desk=desk, partifacts=ProposalDesk(driver, desk)
    )
    tokens = TokenStore(tmp_path / "tokens")
    auth = {"Authorization": f"Bearer {tokens.create('ops')}"}
    app = create_app(None, ApiSettings(rate_burst=1000), tokens=tokens, cluster=served)
    try:
        async with (
            LocalCluster(members, MemoryBus(maxsize=4096)) as cluster,
            client_for(app) as client,
        ):
            yield Roles(cluster, driver, served, client, auth)
    finally:
        tokens.close()


@pytest.fixture
async def cps(tmp_path: Path) -> AsyncIterator[Roles]:
    """Eight CPS-only cells (1 Genesis, 2 Validators when formed)."""
    cells = build_supervisors(8, "mesh", alpha=0.3, seed=3)
    async with serve_roles(cells, {c.node_id: c.key for c in cells}, tmp_path) as roles:
        yield roles


@pytest.fixture
async def full(tmp_path: Path) -> AsyncIterator[Roles]:
    """Five full cells (glyphs), closed and verified at the end."""
    config = BecomingOneConfig.model_validate({}).becomingone
    sups = build_supervisors(5, "mesh", seed=2, spread=0.05, alpha=0.3)
    members = build_cell_members(sups, tmp_path, config, seed=2, wait_runs=True)
    try:
        keys = {m.node_id: m.supervisor.key for m in members}
        async with serve_roles(members, keys, tmp_path) as roles:
            yield roles
    finally:
        assert all(m.close() for m in members)


async def test_roles_show_the_lifecycle_its_conditions_and_every_cell(cps: Roles) -> None:
    """Before a tick the cluster is pre_cluster with no roles; at AUTONOMOUS every condition
    is there with its measured value and met, each cell has its state and role, and the
    validators listed are the Validator role holders; the tick frame carries the same."""
    doc = (await cps.client.get("/cluster/roles")).json()
    assert doc["lifecycle"] == "pre_cluster" and doc["genesis"] is None
    assert all(c["role"] is None and c["state"] == "Ø1(Ø2)" for c in doc["cells"].values())
    await cps.to_stage(LifecycleStage.AUTONOMOUS)
    doc = (await cps.client.get("/cluster/roles")).json()
    assert doc["lifecycle"] == "autonomous" and doc["term"] >= 1
    assert doc["genesis"] == cps.holders(Role.GENESIS)[0]
    assert doc["validators"] == cps.holders(Role.VALIDATOR) and len(doc["validators"]) == 2
    assert len(doc["cells"]) == 8 and doc["cells"][doc["genesis"]]["state"] == "Ø2Ø1"
    assert doc["conditions"]["role_ratio"]["value"] == pytest.approx(5 / 3)
    assert all(c["met"] for c in doc["conditions"].values()) and len(doc["conditions"]) == 12
    frame = cps.served.latest()
    assert frame is not None and frame["partifacts"]["lifecycle"] == "autonomous"
    assert frame["partifacts"]["cells"] == doc["cells"]


async def test_propose_then_vote_as_validators_until_it_passes(cps: Roles) -> None:
    """A text proposal opens with the current Validators eligible and needs 2 of 2; the
    driver does not vote on it; a Validator's yes counts (still open), an Executor's vote is
    refused (not_validator), a second vote by the same cell is refused (double), and the
    other Validator's yes passes it: recorded in the log, listed as passed, the
    proposal.opened and proposal.decided events go out on the tick stream."""
    await cps.to_stage(LifecycleStage.AUTONOMOUS)
    answer = await cps.client.post(
        "/cluster/proposals", json={"text": "add a cell"}, headers=cps.auth
    )
    assert answer.status_code == 201, answer.text
    p = answer.json()
    v1, v2 = cps.holders(Role.VALIDATOR)
    assert (p["kind"], p["status"], p["operator"], p["payload"]) == (
        "command",
        "open",
        True,
        {"what": "add a cell"},
    )
    assert (
        p["eligible"] == [v1, v2]
        and p["needed"] == 2
        and p["proposer"] == cps.holders(Role.GENESIS)[0]
    )
    await cps.advance(1)  # an operator's proposal goes out with the next tick
    events = cps.served.latest()["partifacts"]["events"]  # type: ignore[index]
    assert {"event": "proposal.opened", "id": p["id"], "kind": "command"}.items() <= next(
        e for e in events if e.get("id") == p["id"]
    ).items()
    await cps.advance(4)
    listed = (await cps.client.get("/cluster/proposals", params={"operator": True})).json()
    assert [q["id"] for q in listed["proposals"]] == [p["id"]] and listed["count"] == 1
    assert (await cps.client.get(f"/cluster/proposals/{p['id']}")).json()["votes"] == []

    url = f"/cluster/proposals/{p['id']}/votes"
    first = await cps.client.post(url, json={"cell": v1, "vote": "yes"}, headers=cps.auth)
    assert (
        first.status_code == 200 and first.json()["status"] == "open" and first.json()["yes"] == 1
    )
    executor = cps.holders(Role.EXECUTOR)[0]
    bad = await cps.client.post(url, json={"cell": executor, "vote": "yes"}, headers=cps.auth)
    assert bad.status_code == 409 and bad.json()["error"]["code"] == "not_validator"
    again = await cps.client.post(url, json={"cell": v1, "vote": "no"}, headers=cps.auth)
    assert again.status_code == 409 and again.json()["error"]["code"] == "double"
    done = await cps.client.post(url, json={"cell": v2, "vote": "yes"}, headers=cps.auth)
    body = done.json()
    assert body["status"] == "passed" and body["yes"] == 2 and body["decided_at"] is not None
    assert body["executed"] == {"ok": True, "detail": "recorded"}
    assert [v["voter"] for v in body["votes"]] == [v1, v2]
    last = Decision.from_entry(cps.driver.log.read()[-1])
    assert last.proposal.id == p["id"] and last.passed
    closed = await cps.client.post(url, json={"cell": v2, "vote": "yes"}, headers=cps.auth)
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "closed"
    await cps.advance(1)
    events = cps.served.latest()["partifacts"]["events"]  # type: ignore[index]
    assert {"event": "proposal.decided", "id": p["id"], "outcome": "passed"}.items() <= next(
        e for e in events if e.get("id") == p["id"]
    ).items()


async def test_a_no_rejects_and_the_deadline_expires(cps: Roles) -> None:
    """With 2 eligible, one no makes the quorum unreachable: rejected at once. A proposal
    nobody votes on expires at its deadline, and a vote after it is refused as late."""
    await cps.to_stage(LifecycleStage.ACTIVE)
    v1, _v2 = cps.holders(Role.VALIDATOR)
    p = (await cps.client.post("/cluster/proposals", json={"text": "no"}, headers=cps.auth)).json()
    url = f"/cluster/proposals/{p['id']}/votes"
    no = await cps.client.post(url, json={"cell": v1, "vote": "no"}, headers=cps.auth)
    assert no.json()["status"] == "rejected" and no.json()["no"] == 1
    assert cps.served.partifacts is not None
    cps.served.partifacts.vote_seconds = 0.2
    q = (
        await cps.client.post("/cluster/proposals", json={"text": "late"}, headers=cps.auth)
    ).json()
    assert q["deadline"] == pytest.approx(q["created"] + 0.2)
    await cps.advance(6)
    assert (await cps.client.get(f"/cluster/proposals/{q['id']}")).json()["status"] == "expired"
    late = await cps.client.post(
        f"/cluster/proposals/{q['id']}/votes", json={"cell": v1, "vote": "yes"}, headers=cps.auth
    )
    assert late.status_code == 409 and late.json()["error"]["code"] == "late"


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/cluster/proposals", {"text": "x", "glyph": PROBE}, 422, "invalid"),
        ("/cluster/proposals", {"text": "x", "glyph": None}, 422, "invalid"),
        ("/cluster/proposals", {}, 422, "invalid"),
        ("/cluster/proposals", {"text": "  "}, 422, "invalid"),
        ("/cluster/proposals", {"glyph": PROBE}, 422, "invalid"),  # CPS cells run no glyphs
        (
            "/cluster/proposals/0123456789abcdef/votes",
            {"cell": "cell-0001", "vote": "yes"},
            404,
            "unknown_proposal",
        ),
        ("/cluster/proposals/XYZ/votes", {"cell": "cell-0001", "vote": "yes"}, 422, "invalid"),
        (
            "/cluster/proposals/0123456789abcdef/votes",
            {"cell": "cell-0001", "vote": "maybe"},
            422,
            "invalid",
        ),
    ],
)
async def test_bad_requests_are_one_error_each(
    cps: Roles, path: str, body: dict[str, object], status: int, code: str
) -> None:
    """Both or neither of text and glyph, a blank text, a glyph on CPS cells, an unknown
    proposal, a malformed id or vote: each one error body with its status and code."""
    await cps.to_stage(LifecycleStage.ACTIVE)
    answer = await cps.client.post(path, json=body, headers=cps.auth)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


async def test_refusals_before_formation_without_token_and_unknown_cell(cps: Roles) -> None:
    """Before there are Validators a proposal is refused (409 no_quorum); writes need a
    token (401); a vote as a cell the cluster does not have is 409 unknown_cell; an unknown
    proposal id reads as 404."""
    early = await cps.client.post("/cluster/proposals", json={"text": "x"}, headers=cps.auth)
    assert early.status_code == 409 and early.json()["error"]["code"] == "no_quorum"
    assert (await cps.client.post("/cluster/proposals", json={"text": "x"})).status_code == 401
    await cps.to_stage(LifecycleStage.ACTIVE)
    p = (await cps.client.post("/cluster/proposals", json={"text": "x"}, headers=cps.auth)).json()
    who = await cps.client.post(
        f"/cluster/proposals/{p['id']}/votes",
        json={"cell": "nobody", "vote": "yes"},
        headers=cps.auth,
    )
    assert who.status_code == 409 and who.json()["error"]["code"] == "unknown_cell"
    missing = await cps.client.get("/cluster/proposals/0123456789abcdef")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_proposal"


def test_needed_is_the_golden_quorum() -> None:
    """needed(n) is the least yes count with yes / n ≥ 1/φ."""
    from becomingone.cluster import passes

    for n in range(1, 70):
        k = needed(n)
        assert passes(k, n) and not passes(k - 1, n)


async def test_glyph_writes_apply_below_autonomous_and_become_proposals_at_it(
    full: Roles,
) -> None:
    """Below AUTONOMOUS a glyph submit applies at once (201). At AUTONOMOUS a submit answers
    202 with a glyph.submit proposal and the glyph does not run; the Validator's yes passes
    it and the glyph runs; a cancel is likewise 202 and ends the glyph only when it passes;
    cancelling an unknown glyph is still 404."""
    await full.to_stage(LifecycleStage.ACTIVE)
    direct = await full.client.post(
        "/cluster/glyphs", json={**PROBE, "id": "now"}, headers=full.auth
    )
    assert direct.status_code == 201 and direct.json()["id"] == "now"
    await full.to_stage(LifecycleStage.AUTONOMOUS)
    answer = await full.client.post(
        "/cluster/glyphs", json={**PROBE, "id": "later"}, headers=full.auth
    )
    assert answer.status_code == 202, answer.text
    p = answer.json()
    assert (p["kind"], p["status"], p["subject"]) == ("glyph.submit", "open", "glyph.submit-later")
    desk = full.served.desk
    assert desk is not None

    def ids() -> list[str]:
        return [g["id"] for g in desk.glyphs()]

    assert "later" not in ids()
    (validator,) = full.holders(Role.VALIDATOR)
    passed = await full.client.post(
        f"/cluster/proposals/{p['id']}/votes",
        json={"cell": validator, "vote": "yes"},
        headers=full.auth,
    )
    assert passed.json()["status"] == "passed" and passed.json()["executed"]["ok"] is True
    assert "later" in ids()
    cancel = await full.client.delete("/cluster/glyphs/later", headers=full.auth)
    assert cancel.status_code == 202 and cancel.json()["kind"] == "glyph.cancel"
    assert "later" in ids()
    c = cancel.json()
    ended = await full.client.post(
        f"/cluster/proposals/{c['id']}/votes",
        json={"cell": validator, "vote": "yes"},
        headers=full.auth,
    )
    assert ended.json()["status"] == "passed" and ended.json()["executed"]["ok"] is True
    assert "later" not in ids()
    unknown = await full.client.delete("/cluster/glyphs/nobody", headers=full.auth)
    assert unknown.status_code == 404
