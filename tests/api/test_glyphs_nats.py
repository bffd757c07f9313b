"""A NATS cluster's glyphs in the API of one of its nodes, end to end: a real nats-server and
three ``becomingone node --glyphs --serve`` processes (started and stopped by their PIDs).
Glyphs submitted to one node spread by migration; another node's cluster event stream shows
each one submitted and moved (from the glyph lists in the statuses it hears), and its
``GET /cluster/glyphs`` and ``glyph list --url`` show every glyph of the cluster with its
owner from the ownership records, its own marked; its frames carry glyph counts only. A
``node --kind witness --glyphs --serve`` lists the same glyphs from the records, none its own."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from becomingone.api import CellClient
from becomingone.cluster import OwnerRecord
from becomingone.runtime.node_glyphs import glyph_bucket
from becomingone.transport.jetstream import JetStreamCasRecord
from becomingone.transport.natsd import NatsServers
from tests.api.browserhelpers import free_port
from tests.faults.helpers import CLI, gone
from tests.faults.test_glyph_faults import GlyphFleet, _heard_rows, _spread, _submit, _wait

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

TYPES = ("glyph.submitted", "glyph.migrated")


async def _glyph_events(url: str) -> list[dict[str, Any]]:
    """Every glyph.submitted and glyph.migrated event the node at ``url`` keeps (the replay
    up to its ``resumed`` marker; bounded in time)."""
    client = CellClient(url)
    stream = client.cluster_events(TYPES, since=-1)
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


def _serving(url: str) -> bool:
    """True once the node at ``url`` serves a cluster frame (its event baseline is taken)."""
    try:
        with CellClient(url, timeout=2.0) as client:
            return client.cluster().frame is not None
    except Exception:  # not listening yet, or no cluster served yet
        return False


def _start_witness(fleet: GlyphFleet, port: int) -> subprocess.Popen[bytes]:
    """A witness node of the fleet's cluster (no glyphs of its own) serving on ``port`` (with
    the fleet's ``--glyphs``: it lists the cluster's glyphs from the ownership records)."""
    cmd = fleet.launcher.command("witness-0", "witness")
    assert "--glyphs" in cmd
    with open(fleet.base / "witness.log", "ab") as log:
        proc = subprocess.Popen(
            [*cmd, "--serve", f"127.0.0.1:{port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    fleet.procs["witness-0"] = proc
    fleet.started.append(proc.pid)
    return proc


def _last_owner(events: list[dict[str, Any]]) -> dict[str, str]:
    """Each glyph's owner after the events, in order."""
    out: dict[str, str] = {}
    for e in events:
        out[e["data"]["id"]] = e["data"].get("to", e["data"].get("owner"))
    return out


def _owners(kv: JetStreamCasRecord, ids: set[str]) -> dict[str, str]:
    out = {}
    for gid in ids:
        got = kv.get(f"glyph.{gid}")
        assert got is not None, gid
        out[gid] = OwnerRecord.from_bytes(got.value).owner
    return out


def test_a_nodes_event_stream_and_list_show_the_clusters_glyphs(tmp_path: Path) -> None:
    """Three glyphs submitted to node 0 end on three nodes; node 2's event stream has each
    submitted by node 0 once, and migrations whose last destination per glyph is its owner in
    the KV record (the in-process event code path fed by heard statuses); node 2's glyph list
    has all three with their KV owners, exactly its own marked mine, and `glyph list --url`
    prints them with one line marked as this node's. A witness node serving the same cluster
    (no glyphs of its own) hears the same glyphs end at the same owners, and its glyph list
    (route and `glyph list --url`) has the three with their KV owners, none marked its own."""
    with NatsServers(tmp_path / "nats", servers=1) as servers:
        fleet = GlyphFleet(tmp_path / "nodes", servers.urls)
        kv = JetStreamCasRecord(servers.urls, glyph_bucket("local"))
        first, viewer = fleet.names[0], fleet.names[2]
        try:
            for name in fleet.names:
                fleet.start(name)
            witness = f"http://127.0.0.1:{free_port()}"
            _start_witness(fleet, int(witness.rsplit(":", 1)[1]))
            # a served view takes the glyphs it hears at its first frame as already there (no
            # glyph.submitted for them): both viewers must serve before anything is submitted
            _wait(lambda: _serving(fleet.url(viewer)) and _serving(witness), 60, "viewers up")
            ids = {f"g{i}" for i in range(3)}
            for i, gid in enumerate(sorted(ids)):
                _submit(fleet, first, gid, (i + 0.5) / 8)
            _wait(lambda: _spread(fleet, kv, ids) == 3, 150, "one glyph per node")
            owners = _owners(kv, ids)

            def moved_to_owners(url: str) -> list[dict[str, Any]] | None:
                # each glyph's last event names its KV owner, and the glyphs that left node 0
                # arrived there by a migration (a node hears statuses at their own pace: wait)
                events = asyncio.run(_glyph_events(url))
                last = {e["data"]["id"]: e["data"]["to"] for e in events if "to" in e["data"]}
                moved = {g: o for g, o in owners.items() if o != first}
                return events if last == moved and _last_owner(events) == owners else None

            events = _wait(lambda: moved_to_owners(fleet.url(viewer)), 30, "migrations heard")
            seen = _wait(lambda: moved_to_owners(witness), 30, "migrations heard by the witness")
            assert _last_owner(seen) == _last_owner(events) == owners
            submitted = [e["data"] for e in events if e["type"] == "glyph.submitted"]
            assert sorted((d["id"], d["owner"]) for d in submitted) == [
                (g, first) for g in sorted(ids)
            ]
            moves = [e for e in events if e["type"] == "glyph.migrated"]
            assert len(moves) >= 2 and all(e["data"]["from"] != e["data"]["to"] for e in moves)
            first_seen = {
                e["data"]["id"]: e["seq"] for e in events if e["type"] == "glyph.submitted"
            }
            assert all(e["seq"] > first_seen[e["data"]["id"]] for e in moves)
            heard = _wait(lambda: _heard_rows(fleet, viewer), 30, "glyph rows in frames")
            counts = {"glyphs", "fires", "failed", "ended", "energy", "value", "kairos", "rejected"}
            assert all(row.keys() == counts for row in heard.values())  # no lists in frames
            listing = fleet.call(viewer)
            assert listing is not None and listing["count"] == 3
            rows = {g["id"]: (g["owner"], g["mine"]) for g in listing["glyphs"]}
            assert rows == {g: (o, o == viewer) for g, o in owners.items()}
            printed = subprocess.run(
                [*CLI, "glyph", "list", "--url", fleet.url(viewer)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert printed.returncode == 0 and "3 glyphs" in printed.stdout, printed
            assert printed.stdout.count("*this node") == 1, printed.stdout
            with CellClient(witness) as client:  # the witness: every glyph, none its own
                listed = client.glyphs()
            assert {g.id: (g.owner, g.mine) for g in listed.glyphs} == {
                g: (o, False) for g, o in owners.items()
            }
            at_witness = subprocess.run(
                [*CLI, "glyph", "list", "--url", witness],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert at_witness.returncode == 0 and "3 glyphs" in at_witness.stdout, at_witness
            assert "*this node" not in at_witness.stdout, at_witness.stdout
            print("\n" + "\n".join(json.dumps(e) for e in events) + "\n" + printed.stdout)
        finally:
            kv.close()
            codes = fleet.stop()
    assert all(gone(pid) for pid in servers.pids)
    assert set(codes) == {*fleet.names, "witness-0"}
