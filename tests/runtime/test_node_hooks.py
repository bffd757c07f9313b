"""The ``role.*`` and ``proposal.*`` hooks of ``becomingone node --roles`` processes: each node
fires the events that concern its own cell on that cell's hooks (named in its config) and
witnesses them, as the in-process cluster does for its cells. Real node processes on a real
``nats-server``; every wait bounded; every process stopped by pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from becomingone.config import load_config
from becomingone.runtime.cell import Cell
from becomingone.transport.natsd import NatsServers
from tests.runtime.test_node_metrics import nodes, start_node  # noqa: F401 (the fixture)

pytestmark = pytest.mark.timeout(180)

NAMES = ["cell-0000", "cell-0001", "cell-0002"]
CONFIG = """becomingone:
  hooks:
    role.changed: ['tests.runtime.hookfns:to_file']
    proposal.opened: ['tests.runtime.hookfns:to_file']
    proposal.decided: ['tests.runtime.hookfns:to_file']
"""


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_each_node_fires_and_witnesses_the_events_of_its_own_cell(
    tmp_path: Path,
    nodes: tuple[NatsServers, dict[str, subprocess.Popen[bytes]]],  # noqa: F811
) -> None:
    """Three ``--roles`` nodes with role/proposal hooks: each node's hook log holds a
    ``role.changed`` for its own cell and none for another; the Genesis' log holds its intents'
    ``proposal.opened`` and ``proposal.decided`` with itself as proposer; after SIGTERM each
    cell's chain verifies and carries the same events as MICRO records."""
    servers, procs = nodes
    base = tmp_path / "nodes"
    base.mkdir()
    config = tmp_path / "hooks.yaml"
    config.write_text(CONFIG)
    logs = {name: tmp_path / f"{name}.hooks.jsonl" for name in NAMES}
    for name in NAMES:
        env = {**os.environ, "BECOMINGONE_HOOK_LOG": str(logs[name])}
        extra = ["--join", "--roles", "--config", str(config)]
        procs[name] = start_node(base, servers.urls, name, extra, env)

    def decided_somewhere() -> bool:
        return any(
            e["event"] == "proposal.decided" for name in NAMES for e in read_events(logs[name])
        )

    deadline = time.monotonic() + 90
    while not (decided_somewhere() and all(read_events(logs[n]) for n in NAMES)):
        for name, proc in procs.items():
            assert proc.poll() is None, (base / f"{name}.log").read_text()[-2000:]
        assert time.monotonic() < deadline, {n: read_events(logs[n])[:5] for n in NAMES}
        time.sleep(0.25)
    for proc in procs.values():
        proc.send_signal(signal.SIGTERM)
    assert {name: proc.wait(timeout=20) for name, proc in procs.items()} == dict.fromkeys(procs, 0)
    proposers = set()
    for name in NAMES:
        events = read_events(logs[name])
        roles = [e["payload"] for e in events if e["event"] == "role.changed"]
        assert roles and all(p["cell"] == name for p in roles), events
        opened = [e["payload"] for e in events if e["event"].startswith("proposal.")]
        assert all(p["proposer"] == name for p in opened), opened
        if opened:
            proposers.add(name)
        cell = Cell(load_config(config), base / name)
        try:
            assert cell.verify_chain().ok
            kinds = [r.kind for r in cell.memory.witnesses()]
        finally:
            cell.close()
        assert kinds.count("role.changed") == len(roles)
        assert kinds.count("proposal.opened") == sum(
            e["event"] == "proposal.opened" for e in events
        )
    assert proposers, "no node fired a proposal hook"
