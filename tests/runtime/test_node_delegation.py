"""``becomingone node --kind full --roles --glyphs``: one cell runs its glyphs and the partifact
protocol side by side. Real node processes on a real ``nats-server``; every wait bounded;
every process stopped by pid.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from becomingone.transport.natsd import NatsServers
from tests.commands.test_metrics_cli import free_port
from tests.runtime.test_node_metrics import nodes, scrape_until, start_node  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NAMES = ["cell-0000", "cell-0001", "cell-0002"]


def last_status(path: Path) -> dict[str, Any]:
    """The last JSON line a node printed."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def test_a_full_node_runs_roles_and_glyphs_together(
    tmp_path: Path,
    nodes: tuple[NatsServers, dict[str, subprocess.Popen[bytes]]],  # noqa: F811
) -> None:
    """Three ``--kind full --roles --glyphs`` nodes: the first one's metrics show its glyph
    runner and its consensus (a decision passed) at once; after SIGTERM every node exits 0
    and its summary carries both its ``glyphs`` and its ``partifacts`` row (a role held, the
    log read), its chain verified."""
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
