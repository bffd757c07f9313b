"""``becomingone node --kind full --roles --glyphs``: one cell runs its glyphs and the partifact
protocol side by side. Real node processes on a real ``nats-server``; every wait bounded;
every process stopped by pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from becomingone.cluster import TaskEntry, TaskEvent
from becomingone.keys import NodeKey
from becomingone.runtime.node_partifacts import consensus_log_name
from becomingone.transport.jetstream import JetStreamAppendLog, JetStreamConnection
from becomingone.transport.natsd import NatsServers
from tests.commands.test_metrics_cli import free_port
from tests.helpers import gone
from tests.runtime.test_node_metrics import nodes, scrape_until, start_node  # noqa: F401
from tests.runtime.test_node_partifacts import RoleFleet, formed, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NAMES = ["cell-0000", "cell-0001", "cell-0002"]
ALLOW_TRUE = """becomingone:
  glyphs:
    command:
      allowlist: [["true"]]
"""


def last_status(path: Path) -> dict[str, Any]:
    """The last whole JSON line a node printed (one being written is skipped)."""
    for line in reversed(path.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                return dict(json.loads(line))
    raise AssertionError(f"{path}: no status line yet")


def test_a_full_node_runs_roles_and_glyphs_together(
    tmp_path: Path,
    nodes: tuple[NatsServers, dict[str, subprocess.Popen[bytes]]],  # noqa: F811
) -> None:
    """Three ``--kind full --roles --glyphs`` nodes: the first one's metrics show its glyph
    runner and its consensus (a decision passed) at once, both peers heard; after SIGTERM
    every node exits 0 and its summary carries both its ``glyphs`` and its ``partifacts`` row
    (a role held, the log read), its chain verified."""
    servers, procs = nodes
    base = tmp_path / "nodes"
    port = free_port()
    for i, name in enumerate(NAMES):
        extra = ["--kind", "full", "--join", "--roles", "--glyphs"]
        if i == 0:
            extra += ["--metrics", f"127.0.0.1:{port}"]
        procs[name] = start_node(base, servers.urls, name, extra)
    cell = f'cell="{NAMES[0]}"'
    got = scrape_until(
        f"http://127.0.0.1:{port}/metrics",
        lambda v: (
            v.get('becomingone_consensus_decisions_total{cluster="local",outcome="passed"}', 0) >= 1
            and f"becomingone_glyphs{{{cell}}}" in v
        ),
        procs,
        90,
    )
    assert got[f"becomingone_glyphs{{{cell}}}"] == 0  # no glyph submitted: none owned
    assert sum(v for k, v in got.items() if k.startswith("becomingone_roles{")) >= 1

    def all_read_the_log() -> bool:  # each view's log task runs beside its ticks
        logs = [base / f"{name}.log" for name in NAMES]
        return all(p.exists() and '"partifacts"' in p.read_text() for p in logs) and all(
            last_status(p)["partifacts"]["head"] >= 1 for p in logs
        )

    wait_for(all_read_the_log, 30, "every node's view read the log")
    for proc in procs.values():
        proc.send_signal(signal.SIGTERM)
    assert {name: proc.wait(timeout=20) for name, proc in procs.items()} == dict.fromkeys(procs, 0)
    roles = set()
    for name in NAMES:
        summary = last_status(base / f"{name}.log")
        assert summary["summary"] and summary["chain_verified"], summary
        assert summary["glyphs"]["failed"] == 0, summary["glyphs"]
        row = summary["partifacts"]
        assert row["head"] >= 1 and row["genesis"] in NAMES, row
        roles.add(row["role"])
    assert "genesis" in roles, roles


#: Five full nodes running roles and glyphs (``--serve`` each, a token each).
EXTRA = ("--kind", "full", "--glyphs", "--tick", "100")


def proposals(fleet: RoleFleet, name: str) -> list[dict[str, Any]]:
    """The proposals ``name``'s view lists (none while its API is not up)."""
    code, doc = fleet.call(name, "/proposals?limit=100")
    return list(doc["proposals"]) if code == 200 else []


def finished(fleet: RoleFleet, state: str) -> dict[str, Any] | None:
    """Every view's proposals and the id of a task every view lists in ``state`` (None
    before there is one)."""
    views = {name: proposals(fleet, name) for name in fleet.names}
    done = [
        {p["id"] for p in rows if p["task"] and p["task"]["state"] == state}
        for rows in views.values()
    ]
    common = set(done[0]).intersection(*done[1:])
    return {"views": views, "id": sorted(common)[0]} if common else None


def one_story(views: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each finished task by id, asserting every view that lists it tells the same story."""
    finals: dict[str, set[str]] = {}
    for rows in views.values():
        for p in rows:
            task = p["task"]
            if task and task["state"] in ("recorded", "rejected"):
                finals.setdefault(p["id"], set()).add(json.dumps(task, sort_keys=True))
    assert finals and all(len(v) == 1 for v in finals.values()), finals
    return {pid: json.loads(next(iter(v))) for pid, v in finals.items()}


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[NatsServers, RoleFleet]]:
    """A nats-server and five ``--kind full --roles --glyphs --serve`` nodes (a config with
    ``true`` on the command allowlist), all stopped by pid afterwards."""
    config = tmp_path / "becomingone.yaml"
    config.write_text(ALLOW_TRUE)
    with NatsServers(tmp_path / "nats", servers=1) as servers:
        f = RoleFleet(tmp_path / "nodes", servers.urls, extra=(*EXTRA, "--config", str(config)))
        try:
            f.start_all()
            yield servers, f
        finally:
            f.stop()
    assert all(gone(pid) for pid in servers.pids)


def test_a_passed_intent_is_delegated_across_processes(
    fleet: tuple[NatsServers, RoleFleet],
) -> None:
    """Five ``--kind full --roles --glyphs --serve`` processes: a passed intent is assigned
    from the log, run as a glyph on the Executor's process, reported, validated and recorded
    by the holders of those roles, and every node lists the same task in the same final state
    with the same cells; a forged hand-over and an out-of-role one appended to the log are
    refused and counted on every node alike."""
    servers, f = fleet
    got = wait_for(lambda: finished(f, "recorded"), 90, "a task recorded in every view")
    task = one_story(got["views"])[got["id"]]
    assert task["ok"] is True and task["result"], task
    assert len({task["executor"], task["validator"], task["integrator"]}) == 3, task
    ran = f.base / f"{task['executor']}.log"  # its status lines come once a second
    wait_for(lambda: last_status(ran)["glyphs"]["fires"] >= 1, 10, "the Executor's glyph fired")

    async def forge() -> None:  # a stranger's signature; a member signing out of its role
        log = JetStreamAppendLog(JetStreamConnection(servers.urls), consensus_log_name("local"))
        try:
            stranger = TaskEntry.create(
                NodeKey.generate(), task=got["id"], event=TaskEvent.RECORD,
                by=task["integrator"], at=time.time(),
            )  # fmt: skip
            validator = NodeKey.load(f.base / task["validator"] / "node.key")
            out_of_role = TaskEntry.create(
                validator, task=got["id"], event=TaskEvent.RECORD,
                by=task["validator"], at=time.time(),
            )  # fmt: skip
            for entry in (stranger, out_of_role):
                await asyncio.to_thread(log.append, entry.to_entry())
        finally:
            log.connection.close()

    asyncio.run(forge())
    keys = ("refused_forged", "refused_not_assigned")

    def refused_everywhere() -> list[dict[str, int]] | None:
        rows = f.rows()
        counts = [rows[name]["tasks"] for name in f.names if name in rows]
        everywhere = len(counts) == len(f.names)
        return counts if everywhere and all(all(c.get(k) for k in keys) for c in counts) else None

    counts = wait_for(refused_everywhere, 30, "the forged entries refused in every view")
    assert {(c["refused_forged"], c["refused_not_assigned"]) for c in counts} == {(1, 1)}, counts


def test_a_passed_command_runs_on_the_executor_under_its_allowlist(
    fleet: tuple[NatsServers, RoleFleet],
) -> None:
    """Two texts proposed through the Genesis node's API pass and are delegated as
    ``command`` glyphs: ``true`` (on the nodes' allowlist) runs on the Executor, is accepted
    and recorded; ``ls /`` (not on it) fails there, its report carries why, and the Validator
    rejects it — the same story in every view, the rejection counted."""
    _, f = fleet
    rows = wait_for(lambda: formed(f), 90, "roles formed")
    genesis = str(next(iter(rows.values()))["genesis"])
    ids = {}
    for text in ("true", "ls /"):
        took = wait_for(lambda g=genesis, t=text: f.propose(g, t), 15, f"{text!r} proposed")
        genesis, ids[text] = took[0], took[1]["id"]

    def settled() -> dict[str, Any] | None:
        views = {name: proposals(f, name) for name in f.names}
        final = [
            {p["id"]: p["task"]["state"] for p in rows if p["task"] and p["id"] in ids.values()}
            for rows in views.values()
        ]
        want = {ids["true"]: "recorded", ids["ls /"]: "rejected"}
        return views if all(v == want for v in final) else None

    views = wait_for(settled, 60, "both commands settled in every view")
    stories = one_story(views)
    ran, refused = stories[ids["true"]], stories[ids["ls /"]]
    assert ran["ok"] is True and ran["result"], ran
    assert refused["ok"] is False and "allowlist" in refused["result"], refused
    counted = lambda: all(r["tasks"].get("rejected", 0) >= 1 for r in f.rows().values())  # noqa: E731
    wait_for(counted, 10, "the rejection counted in every node's status")
