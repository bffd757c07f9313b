"""Consensus metrics of a `--roles` cluster, scraped as text and parsed with prometheus_client's
parser: the lifecycle stage one-hot, roles by role, proposals by kind, decisions by outcome,
votes, refusals by reason and the decision-latency histogram; in process (ticked by hand) and
from a running `cluster --cells full --roles --serve --metrics` process (stopped by its PID)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest

from becomingone.api import TokenStore
from becomingone.cluster import LifecycleStage, Role
from becomingone.runtime import (
    DECISION_BUCKETS,
    DecisionLatency,
    LocalCluster,
    PartifactDriver,
    ProposalDesk,
    build_supervisors,
    cluster_registry,
)
from becomingone.transport import MemoryBus
from tests.api.test_e2e import CLI, free_port
from tests.runtime.test_metrics import scrape

TICK = 0.05


@given(st.lists(st.floats(min_value=-1.0, max_value=2000.0), max_size=60))
def test_latency_buckets_count_each_observation_once(seconds: list[float]) -> None:
    """Every latency lands in exactly one bucket: the first bound at or above it (+Inf past
    the last); a negative one counts as 0; the sum is the sum of the clamped latencies."""
    latency = DecisionLatency()
    for s in seconds:
        latency.observe(s)
    assert sum(latency.buckets) == len(seconds)
    clamped = [max(0.0, s) for s in seconds]
    assert latency.total == pytest.approx(sum(clamped))
    running = 0
    for bound, n in zip(DECISION_BUCKETS, latency.buckets, strict=False):
        running += n
        assert running == sum(1 for s in clamped if s <= bound)


def family(values: dict[str, float], prefix: str) -> dict[str, float]:
    """The samples of ``values`` whose key starts with ``prefix``."""
    return {k: v for k, v in values.items() if k.startswith(prefix)}


async def test_an_operator_proposal_is_counted_with_its_latency() -> None:
    """Eight CPS cells ticked to AUTONOMOUS: the stage gauge is one-hot on autonomous, the
    role gauges add up to the cells (one Genesis, two Validators), the driver's own proposals
    and votes are counted. A text proposed at t and passed by both Validators four ticks
    later adds one ``command`` proposal, one passed decision, two yes votes and a histogram
    observation of 0.2 s (in the 0.25 s bucket, not the 0.1 s one); a second vote is
    counted as refused (closed)."""
    cells = build_supervisors(8, "mesh", alpha=0.3, seed=3)
    driver = PartifactDriver(cells, {c.node_id: c.key for c in cells}, vote_seconds=0.5)
    desk = ProposalDesk(driver)
    async with LocalCluster(cells, MemoryBus(maxsize=4096)) as cluster:
        registry = cluster_registry(cluster, driver=driver)
        tick = 0
        for tick in range(1500):
            if driver.step(await cluster.step(tick * TICK)).lifecycle.stage is (
                LifecycleStage.AUTONOMOUS
            ):
                break
        assert driver.cluster.lifecycle.stage is LifecycleStage.AUTONOMOUS
        before = scrape(generate_latest(registry).decode())
        opened = tick * TICK
        p = desk.propose_text("add a cell", opened)
        for _ in range(4):
            tick += 1
            driver.step(await cluster.step(tick * TICK))
        v1, v2 = sorted(c for c, r in driver.cluster.roles.items() if r is Role.VALIDATOR)
        await desk.vote(p["id"], v1, True, tick * TICK)
        done = await desk.vote(p["id"], v2, True, tick * TICK)
        assert done["status"] == "passed"
        with pytest.raises(Exception, match="decided"):
            await desk.vote(p["id"], v2, True, tick * TICK)
        after = scrape(generate_latest(registry).decode())

    c = 'cluster="local"'
    stages = family(after, "becomingone_lifecycle_stage")
    assert len(stages) == len(LifecycleStage) and sum(stages.values()) == 1.0
    assert stages[f'becomingone_lifecycle_stage{{{c},stage="autonomous"}}'] == 1.0
    roles = family(after, "becomingone_roles")
    assert sum(roles.values()) == 8.0
    assert roles[f'becomingone_roles{{{c},role="genesis"}}'] == 1.0
    assert roles[f'becomingone_roles{{{c},role="validator"}}'] == 2.0
    assert before[f'becomingone_consensus_proposals_total{{{c},kind="intent"}}'] > 0
    command = f'becomingone_consensus_proposals_total{{{c},kind="command"}}'
    assert command not in before and after[command] == 1.0
    passed = f'becomingone_consensus_decisions_total{{{c},outcome="passed"}}'
    assert after[passed] >= before[passed] + 1
    assert after[passed] == driver.counts.decided["passed"]
    yes = f'becomingone_consensus_votes_total{{{c},vote="yes"}}'
    assert after[yes] >= before[yes] + 2 and after[yes] == driver.counts.votes["yes"]
    closed = f'becomingone_consensus_refused_total{{{c},reason="closed"}}'
    assert after[closed] == before.get(closed, 0.0) + 1
    h = 'becomingone_consensus_decision_seconds_{}{{cluster="local",kind="command"{}}}'
    assert after[h.format("count", "")] == 1.0
    assert after[h.format("sum", "")] == pytest.approx(4 * TICK)
    assert after[h.format("bucket", ',le="0.1"')] == 0.0
    assert after[h.format("bucket", ',le="0.25"')] == 1.0
    assert after[h.format("bucket", ',le="+Inf"')] == 1.0


def wait_for_validator(proc: subprocess.Popen[str], url: str, seconds: float = 90.0) -> str:
    """Poll GET /cluster/roles until a Validator holds its role (bounded); its name."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            doc = httpx.get(f"{url}/api/v1/cluster/roles", timeout=2).json()
            if doc.get("validators"):
                return str(doc["validators"][0])
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.3)
    pytest.fail("the cluster formed no Validator in time")


@pytest.mark.timeout(240)
def test_a_running_cluster_counts_a_decided_proposal(tmp_path: Path) -> None:
    """`cluster --cells full --nodes 5 --roles --serve P --metrics Q`: a text proposed and
    passed through the API shows on both /metrics (the served app's and the metrics
    server's) as one ``command`` proposal with one histogram observation, the stage gauge is
    one-hot, the roles add up to five cells; a second vote shows as refused (closed)."""
    data = tmp_path / "cluster"
    store = TokenStore(data)
    token = store.create("ops")
    store.close()
    api, metrics = free_port(), free_port()
    proc = subprocess.Popen(
        [*CLI, "cluster", "--cells", "full", "--nodes", "5", "--roles", "--alpha", "0.3",
         "--spread", "0.05", "--duration", "200", "--data-dir", str(data),
         "--serve", f"127.0.0.1:{api}", "--metrics", f"127.0.0.1:{metrics}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{api}"
    auth = {"Authorization": f"Bearer {token}"}
    try:
        validator = wait_for_validator(proc, url)
        made = httpx.post(
            f"{url}/api/v1/cluster/proposals", json={"text": "drain a cell"}, headers=auth
        )
        assert made.status_code == 201, made.text
        votes = f"{url}/api/v1/cluster/proposals/{made.json()['id']}/votes"
        body = {"cell": validator, "vote": "yes"}
        done = httpx.post(votes, json=body, headers=auth, timeout=10)
        assert done.status_code == 200 and done.json()["status"] == "passed", done.text
        took = done.json()["decided_at"] - done.json()["created"]
        again = httpx.post(votes, json=body, headers=auth, timeout=10)
        assert again.status_code == 409
        # the passed text is a command: delegated to an Executor at the driver's next step
        assigned = 'becomingone_consensus_tasks_total{cluster="local",event="assigned"}'
        deadline = time.monotonic() + 20
        while (
            scrape(httpx.get(f"{url}/metrics", headers=auth, timeout=10).text).get(assigned, 0) < 1
        ):
            assert time.monotonic() < deadline, "no delegated task counted"
            time.sleep(0.2)
        texts = [
            httpx.get(f"{url}/metrics", headers=auth, timeout=10).text,
            httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=10).text,
        ]
    finally:
        proc.kill()
        proc.wait(timeout=30)
    c = 'cluster="local"'
    for text in texts:
        values = scrape(text)
        assert values[f'becomingone_consensus_proposals_total{{{c},kind="command"}}'] == 1.0
        assert values[f'becomingone_consensus_decisions_total{{{c},outcome="passed"}}'] >= 1
        assert values[f'becomingone_consensus_refused_total{{{c},reason="closed"}}'] >= 1
        assert values[f'becomingone_consensus_tasks_total{{{c},event="assigned"}}'] >= 1
        h = f'becomingone_consensus_decision_seconds_count{{{c},kind="command"}}'
        assert values[h] == 1.0
        # the cluster's clock moves by ticks: a vote in the proposal's own tick took 0 s
        spent = values[f'becomingone_consensus_decision_seconds_sum{{{c},kind="command"}}']
        assert took >= 0 and spent == pytest.approx(took)
        stages = family(values, "becomingone_lifecycle_stage")
        assert len(stages) == len(LifecycleStage) and sum(stages.values()) == 1.0
        assert sum(family(values, "becomingone_roles").values()) == 5.0
        assert 'becomingone_glyph_run_failures_total{cell="cell-0000",reason="error"}' in values
