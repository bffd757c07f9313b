"""A NATS cluster's roles, lifecycle and proposals in the API and the dashboard of its nodes,
end to end: a real nats-server, five ``becomingone node --roles --serve`` processes and a
``node --kind witness --serve`` on free loopback ports (started and stopped by their PIDs).

A text proposed through the Genesis node's API is voted by the Validator nodes and decided on
the consensus log; the Genesis node's cluster event stream carries ``role.assigned`` for every
node (the roles the nodes report), ``lifecycle.changed`` with its conditions and the text's
``proposal.opened``, ``proposal.vote`` and ``proposal.decided`` (the in-process event code
path, fed by the node's own partifact view); a Validator node's stream has the same proposal
events. The witness, which holds no partifact view, shows each node's role and the lifecycle
stage from the statuses it hears; a witness started with ``--roles`` keeps a read-only view of
the consensus and serves the Genesis node's roles, stage and decided proposals, refusing
writes (405 ``read_only``), and its page shows the roles. In Debian's Chromium the Genesis
node's dashboard lists the
five nodes with their roles and the lifecycle stage, and a proposal made through the API goes
from open to passed in the page. Screenshot in out/dashboard/.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.error
import urllib.request
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
    """The fleet, its witnesses' URLs (``witness`` hears statuses only, ``observer`` runs
    ``--roles``: a read-only view of the consensus) and the roles the nodes agreed on."""

    def __init__(
        self, fleet: RoleFleet, witness: str, observer: str, rows: dict[str, dict[str, Any]]
    ) -> None:
        self.fleet, self.witness, self.observer, self.rows = fleet, witness, observer, rows
        self.genesis = str(next(iter(rows.values()))["genesis"])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.fleet.ports[name]}"

    def propose(self, text: str) -> str:
        """Propose ``text`` through the Genesis node's API; its id. Roles move while the
        module runs (a loaded machine, a new term), so a ``409 not_proposer`` is followed to
        the node it names, which is then taken as the Genesis (bounded)."""
        took = wait_for(lambda: self.fleet.propose(self.genesis, text), 15, "a proposer took it")
        self.genesis = took[0]
        return str(took[1]["id"])

    def decided(self, pid: str) -> dict[str, Any]:
        """The proposal once the Genesis node's view has decided it (bounded)."""

        def settled() -> dict[str, Any] | None:
            code, doc = self.fleet.call(self.genesis, f"/proposals/{pid}")
            assert code == 200, (code, doc)
            return doc if doc["status"] != "open" else None

        return dict(wait_for(settled, 30, f"proposal {pid} decided"))


def _start_witness(
    fleet: RoleFleet, port: int, name: str = "witness-0", roles: bool = False
) -> subprocess.Popen[bytes]:
    """A witness node of the fleet's cluster serving on ``port``: without ``roles`` no view
    of the consensus (roles from the statuses heard), with it ``--roles`` (an observer's)."""
    cmd = [a for a in fleet.launcher.command(name, "witness") if roles or a != "--roles"]
    with open(fleet.base / f"{name}.log", "ab") as log:
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
    """A nats-server, five role nodes and two witnesses (one with ``--roles``), every node
    serving; roles formed. All stopped by PID afterwards."""
    tmp = tmp_path_factory.mktemp("roles-nats")
    with NatsServers(tmp / "nats", servers=1) as servers:
        fleet = RoleFleet(tmp / "nodes", servers.urls)
        witnesses: list[subprocess.Popen[bytes]] = []
        try:
            fleet.start_all()
            ports = free_port(), free_port()
            witnesses.append(_start_witness(fleet, ports[0]))
            witnesses.append(_start_witness(fleet, ports[1], "witness-1", roles=True))
            rows = wait_for(lambda: formed(fleet), 120, "roles formed on every node")
            urls = [f"http://127.0.0.1:{p}" for p in ports]
            yield Cluster(fleet, urls[0], urls[1], rows)
        finally:
            for proc in witnesses:
                _stop(proc)
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


def _call(url: str, path: str, body: Any = None) -> tuple[int, Any]:
    """``(status, JSON)`` of a request under ``url``/api/v1/cluster (POST with ``body``, and a
    bearer token nobody created), without a proxy."""
    req = urllib.request.Request(
        f"{url}/api/v1/cluster{path}",
        method="GET" if body is None else "POST",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer not-a-token", "Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=5.0) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def _decided(url: str) -> dict[str, str]:
    """The decided proposals (id → outcome) the view at ``url`` still knows."""
    code, doc = _call(url, "/proposals?limit=1000")
    assert code == 200, (code, doc)
    return {p["id"]: p["status"] for p in doc["proposals"] if p["status"] != "open"}


def test_a_witness_with_roles_serves_the_consensus_read_only(cluster: Cluster) -> None:
    """``node --kind witness --roles --serve``: its GET /cluster/roles names the Genesis, the
    Validators, every node's role and the lifecycle stage the Genesis node's view gives; its
    /cluster/proposals lists the proposals the members decided with the same outcomes (a text
    proposed through the Genesis node among them, with the same tally and votes), its stream
    carries that text's opened and decided; a proposal or a vote posted to it is refused with
    the API's 405 ``read_only`` (it holds no key), and the members' decisions go on."""
    pid = cluster.propose("seen by the witness")
    decided = cluster.decided(pid)
    genesis = cluster.url(cluster.genesis)

    def same_roles() -> dict[str, Any] | None:
        code, mine = _call(cluster.observer, "/roles")
        assert code == 200, (code, mine)
        _, theirs = _call(genesis, "/roles")
        keys = ("genesis", "validators", "cells", "lifecycle", "term")
        return mine if all(mine[k] == theirs[k] for k in keys) else None

    roles = wait_for(same_roles, 30, "the witness's roles equal to the Genesis node's")
    assert roles["genesis"] == cluster.genesis and roles["validators"], roles
    assert set(roles["cells"]) == set(cluster.fleet.names), roles["cells"]
    assert len(roles["conditions"]) >= 5, roles["conditions"]
    assert roles["writable"] is False and _call(genesis, "/roles")[1]["writable"] is True

    def same_outcomes() -> tuple[dict[str, str], dict[str, str]] | None:
        mine, theirs = _decided(cluster.observer), _decided(genesis)
        both = mine.keys() & theirs.keys()
        if pid not in mine or len(both) < 3:
            return None
        same = {i: mine[i] for i in both} == {i: theirs[i] for i in both}
        return (mine, theirs) if same else None  # a decision a tick apart: ask again

    mine, _ = wait_for(same_outcomes, 30, "the members' decisions at the witness")
    assert mine[pid] == "passed"
    code, row = _call(cluster.observer, f"/proposals/{pid}")
    assert code == 200, (code, row)
    keys = ("kind", "subject", "proposer", "status", "yes", "no", "needed", "eligible", "votes")
    assert {k: row[k] for k in keys} == {k: decided[k] for k in keys}
    assert row["operator"] is False  # not proposed through this view's API
    unknown = "0" * 16
    assert _call(cluster.observer, f"/proposals/{unknown}")[0] == 404

    def events() -> list[dict[str, Any]] | None:
        got = [e for e in asyncio.run(_replay(cluster.observer, PROPOSAL_TYPES))]
        ours = [e["type"] for e in got if e["data"]["id"] == pid]
        return got if ours and ours[-1] == "proposal.decided" else None

    got = wait_for(events, 30, "the text's events at the witness")
    ours = [e["type"] for e in got if e["data"]["id"] == pid]
    assert ours[0] == "proposal.opened", ours

    before = set(_decided(genesis))
    for path, body in (
        ("/proposals", {"text": "from the witness"}),
        (f"/proposals/{pid}/votes", {"cell": cluster.genesis, "vote": "yes"}),
    ):
        code, doc = _call(cluster.observer, path, body)
        assert code == 405 and doc["error"]["code"] == "read_only", (path, code, doc)
        assert "witness" in doc["error"]["message"] and "node --roles" in doc["error"]["message"]
    listed = _call(genesis, "/proposals?limit=1000")[1]["proposals"]
    assert all(p["payload"].get("what") != "from the witness" for p in listed)
    wait_for(lambda: set(_decided(genesis)) - before, 30, "the members deciding on")


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/install-system.sh)"
)
def test_the_dashboard_of_a_witness_with_roles_shows_the_roles(cluster: Cluster) -> None:
    """The ``--roles`` witness's page lists the five nodes with the roles the Genesis node's
    view gives and the lifecycle stage, with its conditions; the console has no error."""
    playwright = pytest.importorskip("playwright.sync_api")
    from tests.api.test_dashboard_browser import open_page

    OUT.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page, errors = open_page(browser, cluster.observer)
            page.wait_for_selector("#conn[data-state='live']")
            page.wait_for_selector("#roles li[data-role='genesis']")

            def shown() -> bool:
                _, doc = _call(cluster.url(cluster.genesis), "/roles")
                rows = page.eval_on_selector_all(
                    "#roles li", "els => els.map(e => [e.dataset.cell, e.dataset.role])"
                )
                want = {n: c["role"] or "none" for n, c in doc["cells"].items()}
                stage = page.get_attribute("#lifecycle", "data-stage")
                return dict(rows) == want and stage == doc["lifecycle"]

            wait_for(shown, 30, "the Genesis node's roles and stage in the witness's page")
            assert page.eval_on_selector_all("#conditions li", "els => els.length") >= 5
            # a read-only view offers no vote: the token field is hidden and the page says why
            assert page.get_attribute("body", "data-writable") == "false"
            assert not page.is_visible("#vote-token")
            assert "read-only view" in page.inner_text("#vote-result")
            page.screenshot(path=str(OUT / "roles-witness.png"), full_page=True)
            page.close()
        finally:
            browser.close()
    assert errors == []


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/install-system.sh)"
)
def test_the_dashboard_of_a_node_shows_roles_and_a_proposal_decided(cluster: Cluster) -> None:
    """The Genesis node's page lists the five nodes with the roles they report and the
    lifecycle stage; a text proposed through the API appears in the proposal list and is
    shown passed (open first, unless both events fell in one drawn frame: the statuses the
    row took, recorded in the page), and the console has no error."""
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

            wait_for(shown, 60, "the nodes' roles and stage in the page")
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
            shown_as: list[tuple[str, list[str]]] = []
            for attempt in range(3):  # a loaded machine's Validator may miss the vote window
                pid = cluster.propose(f"shown in the page ({attempt})")
                row = f"#proposals li[data-id='{pid}']"
                page.wait_for_selector(f"{row}:not([data-status='open'])", timeout=60_000)
                status = cluster.decided(pid)["status"]
                statuses = page.evaluate(f"window.__statuses['{pid}']")
                shown_as.append((status, statuses))
                # the page shows what the node decided; it draws once per animation frame, so
                # on a loaded machine the decision (two node ticks after the opening) can fall
                # in the same frame as the opening and be drawn at once
                assert statuses[-1] == status and statuses[0] in ("open", status), shown_as
                if status == "passed":
                    break
            assert shown_as[-1][0] == "passed", shown_as
            page.screenshot(path=str(OUT / "roles-nats.png"), full_page=True)
            page.close()
        finally:
            browser.close()
    assert errors == []
