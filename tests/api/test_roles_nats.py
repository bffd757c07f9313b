"""A NATS cluster's roles, lifecycle and proposals in the API and the dashboard of its nodes,
end to end: a real nats-server, five ``becomingone node --roles --serve`` processes and a
``node --kind witness --serve`` on free loopback ports (started and stopped by their PIDs).

A text proposed through the Genesis node's API is voted by the Validator nodes and decided on
the consensus log; the Genesis node's cluster event stream carries ``role.assigned`` for every
node (the roles the nodes report), ``lifecycle.changed`` with its conditions and the text's
``proposal.opened``, ``proposal.vote`` and ``proposal.decided`` (the in-process event code
path, fed by the node's own partifact view); a Validator node's stream has the same proposal
events. The witness, which holds no partifact view, shows each node's role and the lifecycle
stage from the statuses it hears. In Debian's Chromium the Genesis node's dashboard lists the
five nodes with their roles and the lifecycle stage, and a proposal made through the API goes
from open to passed in the page. Screenshot in out/dashboard/.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from becomingone.api import CellClient
from becomingone.transport.natsd import NatsServers
from tests.api.browserhelpers import CHROMIUM, OUT, free_port
from tests.helpers import gone
from tests.runtime.test_node_partifacts import RoleFleet, formed, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROLE_TYPES = ("role.assigned", "role.changed", "lifecycle.changed")
PROPOSAL_TYPES = ("proposal.opened", "proposal.vote", "proposal.decided")


class Cluster:
    """The fleet, its witness's URL and the roles the nodes agreed on."""

    def __init__(self, fleet: RoleFleet, witness: str, rows: dict[str, dict[str, Any]]) -> None:
        self.fleet, self.witness, self.rows = fleet, witness, rows
        self.genesis = str(next(iter(rows.values()))["genesis"])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.fleet.ports[name]}"

    def propose(self, text: str) -> str:
        """Propose ``text`` through the Genesis node's API; its id."""
        status, doc = self.fleet.call(self.genesis, "/proposals", {"text": text})
        assert status == 201, (status, doc)
        return str(doc["id"])

    def decided(self, pid: str) -> dict[str, Any]:
        """The proposal once the Genesis node's view has decided it (bounded)."""

        def settled() -> dict[str, Any] | None:
            code, doc = self.fleet.call(self.genesis, f"/proposals/{pid}")
            assert code == 200, (code, doc)
            return doc if doc["status"] != "open" else None

        return dict(wait_for(settled, 30, f"proposal {pid} decided"))


def _start_witness(fleet: RoleFleet, port: int) -> subprocess.Popen[bytes]:
    """A witness node of the fleet's cluster (no roles of its own) serving on ``port``."""
    cmd = [a for a in fleet.launcher.command("witness-0", "witness") if a != "--roles"]
    with open(fleet.base / "witness-0.log", "ab") as log:
        return subprocess.Popen(
            [*cmd, "--serve", f"127.0.0.1:{port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s; gone by PID."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    assert gone(proc.pid), proc.pid


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A nats-server, five role nodes and a witness, every node serving; roles formed. All
    stopped by PID afterwards."""
    tmp = tmp_path_factory.mktemp("roles-nats")
    with NatsServers(tmp / "nats", servers=1) as servers:
        fleet = RoleFleet(tmp / "nodes", servers.urls)
        witness: subprocess.Popen[bytes] | None = None
        try:
            fleet.start_all()
            port = free_port()
            witness = _start_witness(fleet, port)
            rows = wait_for(lambda: formed(fleet), 120, "roles formed on every node")
            yield Cluster(fleet, f"http://127.0.0.1:{port}", rows)
        finally:
            if witness is not None:
                _stop(witness)
            fleet.stop()
    assert all(gone(pid) for pid in servers.pids)


async def _replay(url: str, types: tuple[str, ...]) -> list[dict[str, Any]]:
    """The kept events of ``types`` the node at ``url`` replays (up to its ``resumed``
    marker; bounded in time)."""
    client = CellClient(url)
    stream = client.cluster_events(types, since=-1)
    got: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(30):
            async for message in stream:
                if message["type"] == "resumed":
                    return got
                got.append(message)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        client.close()
    return got


def _roles(events: list[dict[str, Any]]) -> dict[str, str | None]:
    """Each cell's role after the role events, in order."""
    out: dict[str, str | None] = {}
    for e in events:
        if e["type"] == "role.assigned":
            out[e["data"]["cell"]] = e["data"]["role"]
        elif e["type"] == "role.changed":
            out[e["data"]["cell"]] = e["data"]["to"]
    return out


def _stage(events: list[dict[str, Any]]) -> str | None:
    stages = [e["data"]["stage"] for e in events if e["type"] == "lifecycle.changed"]
    return stages[-1] if stages else None


def _reported(cluster: Cluster) -> tuple[dict[str, str | None], str] | None:
    """The roles the live nodes report in their status lines and the Genesis's stage, once
    every node agrees on the Genesis (None before)."""
    rows = formed(cluster.fleet)
    if rows is None:
        return None
    return {n: r["role"] for n, r in rows.items()}, str(rows[cluster.genesis]["lifecycle"])


def test_a_nodes_event_stream_carries_roles_lifecycle_and_proposals(cluster: Cluster) -> None:
    """The Genesis node's stream: role events whose last role per node is the role every node
    reports, a lifecycle.changed with every condition, and the text's opened → vote(s) →
    decided (passed, with the tally the proposal route gives); a Validator node's stream has
    the same opened and decided. The witness's stream: each node's reported role and the
    stage, with no conditions and no proposal events."""
    pid = cluster.propose("events across processes")
    decided = cluster.decided(pid)
    assert decided["status"] == "passed", decided

    def agrees(url: str) -> list[dict[str, Any]] | None:
        events = asyncio.run(_replay(url, ROLE_TYPES))
        reported = _reported(cluster)
        if reported is None:
            return None
        roles, stage = reported
        return events if _roles(events) == roles and _stage(events) == stage else None

    events = wait_for(lambda: agrees(cluster.url(cluster.genesis)), 30, "roles in the stream")
    life = [e["data"] for e in events if e["type"] == "lifecycle.changed"]
    assert life[0]["previous"] is None and len(life[-1]["conditions"]) >= 5, life[-1]
    assert all({"met", "value"} <= c.keys() for c in life[-1]["conditions"].values())

    def about(url: str) -> list[dict[str, Any]] | None:
        got = asyncio.run(_replay(url, PROPOSAL_TYPES))
        mine = [e for e in got if e["data"]["id"] == pid]
        return mine if mine and mine[-1]["type"] == "proposal.decided" else None

    mine = wait_for(lambda: about(cluster.url(cluster.genesis)), 30, "the text's events")
    kinds = [e["type"] for e in mine]
    assert kinds[0] == "proposal.opened" and kinds[-1] == "proposal.decided", kinds
    assert "proposal.vote" in kinds, kinds
    assert mine[0]["data"] == {"id": pid, "kind": "command", "proposer": cluster.genesis}
    votes = [v for e in mine if e["type"] == "proposal.vote" for v in e["data"]["votes"]]
    validators = set(decided["eligible"])  # the Validators when it was proposed
    assert votes and {v["voter"] for v in votes} <= validators, votes
    end = mine[-1]["data"]
    assert end["outcome"] == "passed" and end["yes"] == decided["yes"], (end, decided)
    assert end["eligible"] == len(decided["eligible"])
    seqs = [e["seq"] for e in mine]
    assert seqs == sorted(seqs)
    validator = sorted(validators)[0]
    seen = wait_for(lambda: about(cluster.url(validator)), 30, "the text at a Validator")
    assert seen[0]["type"] == "proposal.opened" and seen[-1]["data"]["outcome"] == "passed"

    heard = wait_for(lambda: agrees(cluster.witness), 30, "roles heard by the witness")
    assert all(not e["data"]["conditions"] for e in heard if e["type"] == "lifecycle.changed")
    assert asyncio.run(_replay(cluster.witness, PROPOSAL_TYPES)) == []


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/install-system.sh)"
)
def test_the_dashboard_of_a_node_shows_roles_and_a_proposal_decided(cluster: Cluster) -> None:
    """The Genesis node's page lists the five nodes with the roles they report and the
    lifecycle stage; a text proposed through the API appears in the proposal list and is
    shown open, then passed (the statuses the row took, recorded in the page), and the
    console has no error."""
    playwright = pytest.importorskip("playwright.sync_api")
    from tests.api.test_dashboard_browser import open_page

    OUT.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page, errors = open_page(browser, cluster.url(cluster.genesis))
            page.wait_for_selector("#conn[data-state='live']")
            page.wait_for_selector("#roles li[data-role='genesis']")

            def shown() -> bool:
                reported = _reported(cluster)
                if reported is None:
                    return False
                roles, stage = reported
                rows = page.eval_on_selector_all(
                    "#roles li", "els => els.map(e => [e.dataset.cell, e.dataset.role])"
                )
                want = {n: r or "none" for n, r in roles.items()}
                return (
                    dict(rows) == want and page.get_attribute("#lifecycle", "data-stage") == stage
                )

            wait_for(shown, 30, "the nodes' roles and stage in the page")
            page.evaluate(
                """() => { window.__statuses = {};
                new MutationObserver(() => {
                  for (const li of document.querySelectorAll('#proposals li[data-id]')) {
                    const seen = window.__statuses[li.dataset.id] ||= [];
                    if (seen[seen.length - 1] !== li.dataset.status) seen.push(li.dataset.status);
                  }
                }).observe(document.querySelector('#proposals'),
                  {subtree: true, childList: true, attributes: true}); }"""
            )
            started = time.monotonic()
            pid = cluster.propose("shown in the page")
            row = f"#proposals li[data-id='{pid}']"
            page.wait_for_selector(f"{row}[data-status='passed']")
            assert time.monotonic() - started < 30
            statuses = page.evaluate(f"window.__statuses['{pid}']")
            assert statuses[0] == "open" and statuses[-1] == "passed", statuses
            assert cluster.decided(pid)["status"] == "passed"
            page.screenshot(path=str(OUT / "roles-nats.png"), full_page=True)
            page.close()
        finally:
            browser.close()
    assert errors == []
