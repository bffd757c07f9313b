"""`becomingone propose | proposals | vote` against a real `cluster --roles --serve --data-dir`
process (stopped by its PID): propose, see it listed, vote as the Validators until it passes,
a non-Validator's and a second vote refused with one line each, bad input exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from becomingone.commands.proposals import proposal_line
from tests.api.test_e2e import CLI, free_port

pytestmark = pytest.mark.timeout(240)


def run(url: str, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """One CLI call against ``url`` (bounded), with ``token`` in BECOMINGONE_TOKEN."""
    env = {k: v for k, v in os.environ.items() if k != "BECOMINGONE_TOKEN"}
    if token is not None:
        env["BECOMINGONE_TOKEN"] = token
    return subprocess.run(
        [*CLI, *args, "--url", url], capture_output=True, text=True, timeout=60, env=env
    )


def wait_for_validators(proc: subprocess.Popen[str], url: str, seconds: float = 90.0) -> dict:
    """Poll GET /cluster/roles until two Validators hold their role (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            doc = httpx.get(f"{url}/api/v1/cluster/roles", timeout=1).json()
            if len(doc.get("validators", [])) == 2:
                return doc  # type: ignore[no-any-return]
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    pytest.fail("the cluster formed no Validators in time")


def test_propose_list_and_vote_until_it_passes(tmp_path: Path) -> None:
    """Eight CPS cells with roles: `propose TEXT` opens a command needing 2 of 2 Validators;
    `proposals --json` lists it; `vote ID yes --as V1` leaves it open; an Executor's vote and
    V1's second vote are refused (exit 1, one line naming not_validator / double); `vote ID
    yes --as V2` passes it and `proposals` shows it passed and recorded; without a token a
    proposal is refused (401); a malformed id, a missing text, text and --glyph together, a
    bad glyph field or payload is exit 2; a glyph on CPS cells is refused by the server (422,
    exit 1)."""
    data = tmp_path / "cluster"
    made = subprocess.run(
        [*CLI, "tokens", "create", "ops", "--data-dir", str(data)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    token = made.stdout.strip()
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "cluster", "--nodes", "8", "--roles", "--alpha", "0.3", "--duration", "180",
         "--data-dir", str(data), "--serve", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        roles = wait_for_validators(proc, url)
        v1, v2 = roles["validators"]
        executor = next(c for c, r in roles["cells"].items() if r["role"] == "executor")
        anonymous = run(url, "propose", "no token")
        assert anonymous.returncode == 1 and "401" in anonymous.stderr
        made = run(url, "propose", "add a ninth cell", "--json", token=token)
        assert made.returncode == 0, made.stderr
        p = json.loads(made.stdout)
        assert (p["kind"], p["status"], p["needed"], p["eligible"]) == (
            "command", "open", 2, [v1, v2]
        )  # fmt: skip
        listed = json.loads(run(url, "proposals", "--json").stdout)
        assert [q["id"] for q in listed["proposals"]] == [p["id"]]
        first = run(url, "vote", p["id"], "yes", "--as", v1, token=token)
        assert first.returncode == 0 and " open " in first.stdout, first.stderr
        for cell, reason in ((executor, "not_validator"), (v1, "double")):
            refused = run(url, "vote", p["id"], "no", "--as", cell, token=token)
            assert refused.returncode == 1 and f"409 {reason}" in refused.stderr
            assert len(refused.stderr.strip().splitlines()) == 1
        last = run(url, "vote", p["id"], "yes", "--as", v2, "--json", token=token)
        done = json.loads(last.stdout)
        assert done["status"] == "passed" and done["yes"] == 2 and done["executed"]["ok"]
        shown = run(url, "proposals")
        assert shown.returncode == 0 and f"{p['id']}  passed" in shown.stdout
        assert "→ done: recorded" in shown.stdout
        for args in (
            ["vote", "nothex", "yes", "--as", v1],
            ["propose"],
            ["propose", "x", "--glyph", "probe"],
            ["propose", "--glyph", "probe", "--theta", "2"],
            ["propose", "--glyph", "probe", "--payload", "[1]"],
        ):
            bad = run(url, *args, token=token)
            assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, args
        cps_glyph = run(url, "propose", "--glyph", "probe", token=token)
        assert cps_glyph.returncode == 1 and "422 invalid: this cluster runs no glyphs" in (
            cps_glyph.stderr
        )
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_a_proposal_line_names_its_task() -> None:
    """A delegated proposal's line ends with its task's state and Executor, and a failed
    run's reason; a proposal without a task has no task part."""
    row = {
        "id": "ab", "status": "passed", "kind": "command", "yes": 1, "no": 0, "needed": 1,
        "eligible": ["v"], "proposer": "g", "payload": {"what": "ls /"}, "executed": None,
        "task": {"state": "rejected", "executor": "e", "ok": False, "result": "not allowed"},
    }  # fmt: skip
    assert proposal_line(row).endswith("ls /  task rejected on e (not allowed)")
    ran = {**row, "task": {**row["task"], "state": "recorded", "ok": True, "result": "9f"}}
    assert proposal_line(ran).endswith("ls /  task recorded on e")
    assert "task" not in proposal_line({**row, "task": None})
