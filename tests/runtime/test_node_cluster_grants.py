"""``node --glyphs`` and ``node --roles`` over mutual TLS, on a real ``nats-server`` started
with a cluster grant (``nats up --tls --cluster local``) and node certificates bound to that
cluster (``certs issue N --cluster local``): three glyph nodes migrate glyphs (offer, accept,
CAS on the KV record), three role nodes form and decide a proposal, and a bound node's
credentials cannot write another cluster's glyph bucket or consensus log (the server refuses:
the permission violation is reported to the client and counted).

Every process is started here and stopped by pid; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from becomingone.certs import TlsFiles, init_ca, issue_certificate
from becomingone.cluster import Decision, OwnerRecord
from becomingone.runtime.launcher import node_name
from becomingone.runtime.node_glyphs import glyph_bucket
from becomingone.runtime.node_grants import cluster_grant
from becomingone.runtime.node_partifacts import consensus_log_name
from becomingone.transport import connect_nats
from becomingone.transport.jetstream import (
    JetStreamAppendLog,
    JetStreamCasRecord,
    JetStreamConnection,
    log_stream,
    log_subject,
)
from becomingone.transport.natsd import NatsServers
from tests.api.browserhelpers import free_port
from tests.faults.test_glyph_faults import GlyphFleet, _fires, _spread, _submit, _wait
from tests.helpers import gone
from tests.runtime.test_node_partifacts import RoleFleet, wait_for

pytestmark = [pytest.mark.slow]

CLUSTER = "local"


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[tuple[NatsServers, Path]]:
    """A CA; a server, an admin and three node certificates bound to ``local`` plus one
    unbound; one TLS server granting ``local``; stopped by pid."""
    certs = tmp_path / "certs"
    init_ca(certs)
    issue_certificate(certs, "nats", server=True)
    issue_certificate(certs, "admin", admin=True)
    for i in range(3):
        issue_certificate(certs, node_name(i), cluster=CLUSTER)
    issue_certificate(certs, "witness-0", cluster=CLUSTER)
    issue_certificate(certs, "plain")
    tls = TlsFiles.named(certs, "nats")
    with NatsServers(tmp_path, tls=tls, grants=[cluster_grant(CLUSTER)]) as servers:
        yield servers, certs
    assert all(gone(pid) for pid in servers.pids)


def _violations(servers: NatsServers) -> int:
    """Publish permission violations the server logged."""
    return sum(
        Path(spec.log).read_text(errors="replace").count("Publish Violation")
        for spec in servers.specs
    )


@pytest.mark.timeout(120)
def test_tls_glyph_nodes_migrate_glyphs(secure: tuple[NatsServers, Path], tmp_path: Path) -> None:
    """Three ``node --glyphs --certs`` processes (bound certificates, a roster file): two
    glyphs submitted to one node end on two nodes, each owned by exactly its record's owner
    after offer → accept → CAS, with epoch ≥ 1 (moved), no (glyph, cycle) fired twice, no
    migration packet refused, and no permission violation at the server."""
    servers, certs = secure
    fleet = GlyphFleet(tmp_path / "nodes", servers.urls)
    fleet.launcher.extra += ["--certs", str(certs)]
    admin = JetStreamConnection(servers.urls, tls=TlsFiles.named(certs, "admin"))
    try:
        for name in fleet.names:
            fleet.start(name)
        first = fleet.names[0]
        ids = {"g0", "g1"}
        for i, gid in enumerate(sorted(ids)):
            _submit(fleet, first, gid, (i + 0.5) / 4)
        submitted = time.monotonic()
        kv = JetStreamCasRecord(admin, glyph_bucket(CLUSTER))
        _wait(lambda: _spread(fleet, kv, ids) == 2, 60, "two glyphs on two nodes")
        print(f"TLS glyph nodes: 2 glyphs on 2 nodes {time.monotonic() - submitted:.1f} s after")
        records = {}
        for gid in ids:
            got = kv.get(f"glyph.{gid}")
            assert got is not None, gid
            records[gid] = OwnerRecord.from_bytes(got.value)
        assert len({r.owner for r in records.values()}) == 2
        assert any(r.epoch >= 1 and r.owner != first for r in records.values()), records
        # the spread can finish before either glyph's first cycle came round: wait for a fire
        _wait(lambda: bool(_fires(fleet)), 30, "a glyph fired")
        fires = _fires(fleet)
        assert len({(g, c) for g, c, _ in fires}) == len(fires)
        lists = {n: fleet.call(n) for n in fleet.names}
        assert all(doc is not None for doc in lists.values())
    finally:
        fleet.stop()
        admin.close()
    for name in fleet.names:
        log = (fleet.base / f"{name}.log").read_text(errors="replace")
        rows = [json.loads(x) for x in log.splitlines() if x.startswith("{")]
        assert rows and rows[-1]["rejected"] == {}, log[-2000:]
    assert _violations(servers) == 0


def _roles(f: RoleFleet) -> dict[str, dict[str, Any]] | None:
    """Every node's row once all agree on one Genesis, a Validator and the log's head (three
    cells stay FORMING: the redundancy rule wants two in each state's roles)."""
    rows = f.rows()
    if set(rows) != set(f.names) or len({(r["genesis"], r["head"]) for r in rows.values()}) != 1:
        return None
    roles = [r["role"] for r in rows.values()]
    return rows if "genesis" in roles and "validator" in roles else None


@pytest.mark.timeout(120)
def test_tls_role_nodes_form_and_decide(secure: tuple[NatsServers, Path], tmp_path: Path) -> None:
    """Three ``node --roles --certs`` processes form (one Genesis, a Validator, the lifecycle
    active) and a text proposed through the Genesis node's API passes; its decision is on the
    consensus log (read with the admin certificate), and the server logged no violation. A
    ``--roles`` witness with a certificate bound to the cluster serves the same Genesis and
    the text passed from its read-only view."""
    servers, certs = secure
    f = RoleFleet(tmp_path / "nodes", servers.urls, count=3, extra=("--certs", str(certs)))
    port = free_port()
    witness: subprocess.Popen[bytes] | None = None
    try:
        started = time.monotonic()
        f.start_all()
        cmd = [*f.launcher.command("witness-0", "witness"), "--serve", f"127.0.0.1:{port}"]
        with open(tmp_path / "witness-0.log", "ab") as out:
            witness = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        rows = wait_for(lambda: _roles(f), 60, "roles assigned on every node")
        print(f"TLS role nodes: formed {time.monotonic() - started:.1f} s after start")
        genesis = next(iter(rows.values()))["genesis"]
        genesis, doc = wait_for(
            lambda: f.propose(genesis, "hello over mutual TLS"), 15, "a proposer took the text"
        )
        pid = doc["id"]

        def settled() -> dict[str, object] | None:
            code, d = f.call(genesis, f"/proposals/{pid}")
            assert code == 200, (code, d)
            return d if d["status"] != "open" else None

        assert wait_for(settled, 30, "the text decided")["status"] == "passed"

        def seen() -> dict[str, Any] | None:
            code, doc = _get(f"http://127.0.0.1:{port}/api/v1/cluster/proposals/{pid}")
            return doc if code == 200 and doc["status"] == "passed" else None

        assert wait_for(seen, 30, "the text at the witness")["proposer"] == genesis
        code, roles = _get(f"http://127.0.0.1:{port}/api/v1/cluster/roles")
        assert code == 200 and roles["genesis"] == genesis, (code, roles)
    finally:
        if witness is not None:
            witness.terminate()
            witness.wait(timeout=30)
            assert gone(witness.pid)
        f.stop()
    admin = JetStreamConnection(servers.urls, tls=TlsFiles.named(certs, "admin"))
    try:
        log = JetStreamAppendLog(admin, consensus_log_name(CLUSTER))
        decided = [Decision.from_entry(e) for e in log.read()]
    finally:
        admin.close()
    assert [d.passed for d in decided if d.proposal.id == pid] == [True]
    assert _violations(servers) == 0


def _get(url: str) -> tuple[int, Any]:
    """``(status, JSON)`` of a GET, without a proxy (0 when nothing answers yet)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5.0) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")
    except OSError:
        return 0, None


@pytest.mark.timeout(60)
def test_a_witness_with_an_unbound_certificate_is_refused_in_one_line(
    secure: tuple[NatsServers, Path], tmp_path: Path
) -> None:
    """``node --kind witness --roles --serve --certs`` with a certificate not bound to the
    cluster (the servers would refuse it ``partifacts.local``): one line naming what to do,
    exit 1, before it serves anything."""
    servers, certs = secure
    f = RoleFleet(tmp_path / "nodes", servers.urls, count=1, extra=("--certs", str(certs)))
    cmd = [*f.launcher.command("witness-0", "witness"), "--cert", "plain", "--serve", "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=50)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "plain.crt is not bound to cluster local" in lines[0], lines
    assert "certs issue NAME --cluster local" in lines[0], lines


async def _write(certs: Path, servers: NatsServers, cert: str, cluster: str) -> list[str]:
    """As ``cert``: put ``glyph.x`` in ``cluster``'s glyph bucket and append to its consensus
    log (both exist); the permission violations the server reported to this client."""
    bus = await connect_nats(servers.urls, name=cert, tls=TlsFiles.named(certs, cert))
    seen: list[Exception] = []
    bus.on_error(seen.append)
    js = bus.client.jetstream(timeout=1.0)
    try:
        kv = await js.key_value(glyph_bucket(cluster))  # reading is every node's
        with contextlib.suppress(Exception):  # a refused write times out after the violation
            await kv.put("glyph.x", cert.encode())
        with contextlib.suppress(Exception):
            await js.publish(log_subject(log_stream(consensus_log_name(cluster))), b"entry")
    finally:
        await bus.aclose()
    return [str(e) for e in seen if "permissions violation" in str(e).lower()]


@pytest.mark.timeout(60)
async def test_bound_node_cannot_write_another_clusters_bucket_or_log(
    secure: tuple[NatsServers, Path],
) -> None:
    """A node certificate bound to ``local`` writes its own cluster's glyph bucket and
    consensus log; its writes to those of cluster ``other`` are refused by the server (a
    permission violation each, reported to the client and logged) and change nothing; an
    unbound node certificate's writes to ``local``'s are refused the same way."""
    servers, certs = secure
    admin = JetStreamConnection(servers.urls, tls=TlsFiles.named(certs, "admin"))
    try:
        records = {c: JetStreamCasRecord(admin, glyph_bucket(c)) for c in (CLUSTER, "other")}
        logs = {c: JetStreamAppendLog(admin, consensus_log_name(c)) for c in (CLUSTER, "other")}
        before = _violations(servers)
        bound = node_name(0)
        assert await _write(certs, servers, bound, CLUSTER) == []
        refused = await _write(certs, servers, bound, "other")
        assert len(refused) == 2 and "glyphs_other" in refused[0], refused
        refused = await _write(certs, servers, "plain", CLUSTER)
        assert len(refused) == 2 and "log_consensus_local" in refused[1], refused
        assert _violations(servers) - before == 4
        mine = records[CLUSTER].get("glyph.x")
        assert mine is not None and mine.value == bound.encode()
        assert records["other"].get("glyph.x") is None
        assert logs[CLUSTER].read() == [b"entry"] and logs["other"].last_index() == 0
    finally:
        admin.close()
