"""``becomingone node`` and ``becomingone cluster --bus nats`` as real subprocesses on a real
``nats-server``: bad input is one line with exit 2, a node and a witness stop cleanly on
SIGTERM with verified chains, the launcher leaves no process behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from becomingone.transport.natsd import NatsServers

CLI = [sys.executable, "-m", "becomingone.cli"]

pytestmark = pytest.mark.timeout(120)


def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run one command to completion (bounded)."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServers]:
    """One nats-server for the module, stopped by pid at the end."""
    with NatsServers(tmp_path_factory.mktemp("srv"), servers=1) as servers:
        yield servers


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--kind", "relay"], "--roster"),
        (["--kind", "witness", "--join"], "--join"),
        (["--name", "bad name"], "--name"),
        (["--tick", "0"], "--tick"),
        (["--alpha", "1.5"], "--alpha"),
        (["--start-at", "nan"], "--start-at"),
        (["--glyphs", "--kind", "light"], "--glyphs"),
        (["--glyphs", "--source", "synthetic"], "--glyphs"),
        (["--glyphs", "--certs", "/nonexistent"], "/nonexistent/ca.crt"),
        (["--glyph-takeover", "5"], "--glyph-takeover"),
        (["--glyphs", "--glyph-takeover", "0"], "--glyph-takeover"),
        (["--glyphs", "--glyph-takeover", "nan"], "--glyph-takeover"),
        (["--glyphs", "--kind", "witness"], "--glyphs"),
        (["--roles", "--kind", "witness"], "--roles"),
        (["--roles", "--certs", "/nonexistent"], "/nonexistent/ca.crt"),
        (["--roles", "--genesis-timeout", "0"], "--genesis-timeout"),
        (["--roles", "--genesis-timeout", "inf"], "--genesis-timeout"),
        (["--roles", "--glyphs", "--kind", "light"], "--glyphs"),
        (["--roles", "--glyphs", "--source", "synthetic"], "--glyphs"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, extra: list[str], flag: str) -> None:
    """Each bad flag is refused before anything starts: exit 2, one line naming the flag."""
    done = run(
        "node", "--bus", "nats://127.0.0.1:1", "--roster", str(tmp_path / "r.json"),
        "--data-dir", str(tmp_path / "n"), *extra,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], done.stderr


def test_relay_needs_a_leafnode_url(tmp_path: Path) -> None:
    """A relay with a URL that is not a leafnode URL exits 2 naming --bus (nothing started);
    one given --roster exits 2 naming it (a relay is not a member)."""
    done = run(
        "node", "--kind", "relay", "--bus", "nats-leaf://127.0.0.1:1", "--roster", "r.json",
        "--data-dir", str(tmp_path / "r"),
    )  # fmt: skip
    assert done.returncode == 2 and "--roster" in done.stderr, done.stderr
    done = run("node", "--kind", "relay", "--bus", "http://h:1", "--data-dir", str(tmp_path / "r"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "--bus" in lines[0], done.stderr


def test_unknown_name_without_join_is_refused(tmp_path: Path, server: NatsServers) -> None:
    """A node not in the roster file (and not joining) exits 2 naming --roster."""
    done = run(
        "node", "--bus", server.urls[0], "--roster", str(tmp_path / "r.json"),
        "--data-dir", str(tmp_path / "n"), "--duration", "1",
    )  # fmt: skip
    assert done.returncode == 2 and "--roster" in done.stderr, done.stderr


def test_node_and_witness_stop_on_sigterm(tmp_path: Path, server: NatsServers) -> None:
    """Two full nodes and a witness: JSON status lines while running; SIGTERM stops each with
    exit 0 and a summary line whose chain verified; the witness accepted the nodes' packets
    (no copies: each has one receiver) and wrote signed records that ``witness verify`` accepts."""
    roster = str(tmp_path / "roster.json")
    common = ["--bus", server.urls[0], "--roster", roster, "--json", "--tick", "50"]
    procs = [
        subprocess.Popen(
            [*CLI, "node", *common, "--name", n, "--data-dir", str(tmp_path / n), "--join"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in ("a", "b")
    ]
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "roster.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        witness = subprocess.Popen(
            [*CLI, "node", *common, "--kind", "witness", "--data-dir", str(tmp_path / "w")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(witness)
        for p in procs:  # the first status line of each (bounded by the deadline)
            assert p.stdout is not None
            assert json.loads(p.stdout.readline())["node"]
        time.sleep(2.0)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        outs = [p.communicate(timeout=30) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["summary"] and summary["chain_verified"]
    w = json.loads(outs[2][0].strip().splitlines()[-1])
    # two nodes: each packet has one receiver, so the witness hears no copies
    assert w["kind"] == "witness" and w["accepted"] > 10 and w["copies"] == 0
    assert w["records"] >= 1 and w["rejected"] == {}
    nodes = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs[:2]]
    assert all(n["members"] == 2 and n["heard"] == 1 for n in nodes)
    done = run("witness", "verify", "--data-dir", str(tmp_path / "w"), "--json")
    assert done.returncode == 0, done.stderr


SUMMARY_KEYS = {
    "summary", "ticks", "ticks_to_band", "c_cluster", "r", "band", "rejected", "twisted", "bus",
}  # fmt: skip


@pytest.mark.parametrize("servers", [1, 3])
def test_cluster_bus_nats_json(tmp_path: Path, servers: int) -> None:
    """``cluster --bus nats --nodes 3 --json`` on 1 server and on a routed cluster of 3 (one
    node per server): one row per tick from the observer, a summary of the same shape reaching
    SHARED with nothing rejected; the node processes and the servers are gone after (the data
    dir holds their logs and no state file of a running server)."""
    done = run(
        "cluster", "--bus", "nats", "--nodes", "3", "--duration", "3", "--alpha", "0.3",
        "--json", "--data-dir", str(tmp_path), "--servers", str(servers),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    summary = rows[-1]
    assert set(summary) >= SUMMARY_KEYS, sorted(summary)
    assert len(list((tmp_path / "nats").glob("n*.conf"))) == servers
    assert summary["summary"] and len(rows) - 1 == summary["ticks"] == 60
    assert summary["ticks_to_band"]["SHARED"] is not None and summary["rejected"] == {}
    assert summary["bus"]["status"] >= 3 * 5  # each node at least every STATUS_PERIOD (3 s)
    assert all(len(r["t_global"]) == 2 and 0 <= r["t_global_sq"] <= 1 for r in rows[:-1])
    assert summary["cluster_collapses"] == sum(r["cluster_collapse"] for r in rows[:-1])
    assert sorted(p.name for p in (tmp_path / "nodes").glob("*.log")) == [
        "cell-0000.log",
        "cell-0001.log",
        "cell-0002.log",
    ]
    assert not (tmp_path / "nats" / "state.json").exists()


def test_nodes_spread_over_the_servers(tmp_path: Path) -> None:
    """The launcher gives node i every URL starting at server i mod the server count, so a
    node fails over to the next server; --servers is refused on the in-process bus."""
    from becomingone.runtime.launcher import NodeProcesses

    procs = NodeProcesses(tmp_path, ["nats://a:1", "nats://b:2", "nats://c:3"])
    firsts = [procs.command(f"n{i}", server=i)[5] for i in range(4)]
    assert firsts == [
        "nats://a:1,nats://b:2,nats://c:3",
        "nats://b:2,nats://c:3,nats://a:1",
        "nats://c:3,nats://a:1,nats://b:2",
        "nats://a:1,nats://b:2,nats://c:3",
    ]
    done = run("cluster", "--nodes", "2", "--servers", "3", "--duration", "0.1")
    assert done.returncode == 2 and "--servers" in done.stderr, done.stderr
    done = run("cluster", "--bus", "nats", "--nodes", "2", "--servers", "0")
    assert done.returncode == 2 and "--servers" in done.stderr, done.stderr


def test_cluster_bus_nats_refuses_fast(tmp_path: Path) -> None:
    """--fast is virtual time, which node processes cannot follow: exit 2 naming it."""
    done = run("cluster", "--bus", "nats", "--nodes", "2", "--fast")
    assert done.returncode == 2 and "--fast" in done.stderr, done.stderr


def test_live_view_lists_the_nodes_heard() -> None:
    """The terminal view of ``cluster --bus nats`` shows the observer's line and one table row
    per node heard (θ, f, heard, C seen, stable, rejected)."""
    import io

    from rich.console import Console

    from becomingone.commands._nats_cluster import _view
    from becomingone.runtime.node import NodeStatus
    from becomingone.runtime.observer import ClusterObserver
    from becomingone.transport import MemoryBus

    class Sub:
        subject = "status.t.*"

        def __init__(self, queue: list[bytes]) -> None:
            self.queue = queue

        def drain(self) -> list[bytes]:
            out, self.queue = self.queue, []
            return out

    obs = ClusterObserver(
        MemoryBus().connect("o"), cluster="t", peer_timeout=1.0, clock=lambda: 10.0
    )
    statuses = [
        NodeStatus(
            node=n, kind="full", time=10.0, theta=t, frequency=1.0, stable=True, epoch=1,
            seq=1, members=2, heard=1, c_seen=0.99, accepted=5, rejected={"replay": 1},
        )
        for n, t in (("a", 0.1), ("b", 0.12))
    ]  # fmt: skip
    obs._sub = Sub([json.dumps(s.to_json()).encode() for s in statuses])  # type: ignore[assignment]
    report = obs.step()
    console = Console(file=io.StringIO(), width=100)
    console.print(_view(report, obs))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "nodes heard 2" in text and "band SHARED" in text and "rejected 2" in text
    assert "│ a " in text and "│ b " in text and "0.9900" in text
    assert "|T_global|² 0.0000  I_c 0.95  cluster collapses 0" in text
