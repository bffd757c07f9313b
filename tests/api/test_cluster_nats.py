"""The cluster API of a NATS cluster: frames made from what an observer hears (node statuses),
with the schema of the in-process cluster's, and `becomingone cluster --bus nats --serve` end to
end with a real nats-server and node processes, stopped by PID."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from becomingone.api import PREFIX, CellClient, ServedCluster
from becomingone.api.schemas import ClusterFrame
from becomingone.errors import InputError
from becomingone.runtime import LocalCluster, build_supervisors
from becomingone.runtime.node import CellReading, NodeStatus
from becomingone.runtime.observer import ClusterObserver
from becomingone.transport import MemoryBus
from becomingone.transport.natsd import NatsServers
from tests.api.browserhelpers import free_port
from tests.api.test_events import take

CLI = [sys.executable, "-m", "becomingone.cli"]


READING = CellReading(master=0.5, emissary=0.25, sync=0.75, outcome="hold", collapses=2)


def status(
    node: str,
    *,
    at: float,
    theta: float,
    seq: int,
    rejected: int = 0,
    cell: CellReading | None = None,
) -> NodeStatus:
    """A node's status message as a node publishes it once per tick."""
    return NodeStatus(
        node=node,
        kind="full",
        time=at,
        theta=theta,
        frequency=1.0,
        stable=True,
        epoch=1,
        seq=seq,
        members=3,
        heard=2,
        c_seen=0.9,
        accepted=10 * seq,
        rejected={"bad_signature": rejected} if rejected else {},
        t_sync=0.6 + 0.0j,
        cell=cell,
    )


class Inbox:
    """Stands in for the observer's subscription: the status messages queued since the last
    drain (the in-memory bus has no wildcard subjects)."""

    def __init__(self) -> None:
        self.queue: list[bytes] = []

    def drain(self) -> list[bytes]:
        out, self.queue = self.queue, []
        return out


def observe(ticks: int) -> tuple[ServedCluster, ClusterObserver]:
    """Three nodes' statuses, one round per tick of 0.1 s of a fake clock, measured by an
    observer and recorded by a served cluster; node n-2 rejects one more packet every tick,
    node n-1 (a full node) carries its cell's reading."""
    now = [1_000.0]
    obs = ClusterObserver(
        MemoryBus().connect("observer"), cluster="c", peer_timeout=1.0, clock=lambda: now[0]
    )
    inbox = Inbox()
    obs._sub = inbox  # type: ignore[assignment]
    served = ServedCluster("c", "mesh", threshold=0.95)
    for tick in range(ticks):
        for i, node in enumerate(("n-0", "n-1", "n-2")):
            doc = status(
                node,
                at=now[0],
                theta=0.1 * i,
                seq=tick,
                rejected=tick * (i == 2),
                cell=READING if i == 1 else None,
            )
            inbox.queue.append(json.dumps(doc.to_json()).encode())
        now[0] += 0.1
        report = obs.step()
        served.record_heard(report, obs.live(report.time), obs.rejected())
    return served, obs


async def test_an_observed_frame_has_the_in_process_frames_schema() -> None:
    """A frame made from heard statuses has exactly the keys of an in-process cluster's frame
    (cluster level and per cell) and validates as the API's ClusterFrame; θ is the observer's
    carried phase, |T_sync|² the status's, rejections the status totals, Master/Emissary/Sync
    those of a full node's reading, and what a status does not carry is null."""
    served, obs = observe(4)
    frame = served.latest()
    assert frame is not None and frame["tick"] == 3
    local = ServedCluster("local", "mesh", threshold=0.95)
    async with LocalCluster(build_supervisors(2, "mesh", seed=1), MemoryBus()) as cluster:
        await cluster.run(1, 0.05, on_tick=lambda r: local.record(r, cluster.members))
    reference = local.latest()
    assert reference is not None
    assert frame.keys() == reference.keys()
    assert frame["members"][0].keys() == reference["members"][0].keys()
    ClusterFrame.model_validate(frame)
    assert [m["name"] for m in frame["members"]] == ["n-0", "n-1", "n-2"]
    assert [m["theta"] for m in frame["members"]] == list(obs.history[-1].thetas)
    assert all(m["t_sync_sq"] == pytest.approx(0.36) for m in frame["members"])
    assert [m["rejected"] for m in frame["members"]] == [0, 0, 3]
    assert frame["rejected"] == 3 and frame["rejected_by_reason"] == {"bad_signature": 3}
    assert all(m["phase_error"] is None and m["glyphs"] is None for m in frame["members"])
    assert [m["sync"] for m in frame["members"]] == [None, 0.75, None]
    full = frame["members"][1]
    assert (full["master"], full["emissary"], full["outcome"], full["collapses"]) == (
        0.5,
        0.25,
        "hold",
        2,
    )


def test_a_cell_reading_survives_the_status_message() -> None:
    """A status with a cell reading parses back to the same reading; one without the `cell`
    key (a node of an earlier version) parses with none; a reading out of range is an
    InputError naming `status` (the observer counts it as bad_status)."""
    with_cell = status("n-1", at=5.0, theta=0.2, seq=1, cell=READING)
    assert NodeStatus.from_bytes(json.dumps(with_cell.to_json()).encode()) == with_cell
    doc = status("n-0", at=5.0, theta=0.2, seq=1).to_json()
    del doc["cell"]
    assert NodeStatus.from_bytes(json.dumps(doc).encode()).cell is None
    for bad in ({**READING.to_json(), "sync": 1.5}, {**READING.to_json(), "collapses": -1},
                {"master": 0.1}, [1, 2]):  # fmt: skip
        doc["cell"] = bad
        with pytest.raises(InputError, match="status"):
            NodeStatus.from_bytes(json.dumps(doc).encode())


async def test_observed_times_count_from_the_first_tick() -> None:
    """A frame's time is seconds since the first recorded tick (as for the in-process
    cluster), not the observer's wall clock; ticks are numbered from 0."""
    served, _ = observe(3)
    assert [f["tick"] for f in served.frames] == [0, 1, 2]
    assert [f["time"] for f in served.frames] == pytest.approx([0.0, 0.1, 0.2])


def test_an_observer_keeps_a_bounded_history_and_counts_on() -> None:
    """With keep=K the observer holds fewer than 2K tick reports yet numbers ticks on
    (0, 1, 2, ...: a node's view runs for days); restart() counts from 0 again; keep=0 is an
    InputError naming `keep`."""
    obs = ClusterObserver(MemoryBus().connect("o"), cluster="c", peer_timeout=1.0, keep=3)
    obs._sub = Inbox()  # type: ignore[assignment]
    ticks = [obs.step().tick for _ in range(20)]
    assert ticks == list(range(20)) and 3 <= len(obs.history) < 6
    assert [r.tick for r in obs.history] == list(range(20 - len(obs.history), 20))
    obs.restart()
    assert obs.history == [] and obs.step().tick == 0
    with pytest.raises(InputError, match="keep"):
        ClusterObserver(MemoryBus().connect("o"), cluster="c", peer_timeout=1.0, keep=0)


def test_cells_before_the_first_frame_are_the_configured_ones() -> None:
    """Before any tick, describe() gives the cells the cluster was started with (node
    processes not heard yet), after a tick the cells in the newest frame; a negative count
    is an InputError naming `cells`."""
    served = ServedCluster("c", "mesh", threshold=0.95, cells=4)
    assert served.describe()["cells"] == 4 and served.describe()["ticks"] == 0
    assert observe(1)[0].describe()["cells"] == 3
    with pytest.raises(InputError, match="cells"):
        ServedCluster("c", "mesh", threshold=0.95, cells=-1)


async def test_statuses_that_do_not_match_the_report_are_refused() -> None:
    """record_heard with a different number of statuses than the report has phases is an
    InputError naming `heard`, and nothing is recorded."""
    served, obs = observe(1)
    report = obs.step()
    with pytest.raises(InputError, match="heard"):
        served.record_heard(report, obs.live(report.time)[:1], obs.rejected())
    assert len(served.frames) == 1


def _get(url: str) -> Any:
    return httpx.get(url, timeout=2.0).json()


def _children(pid: int) -> set[int]:
    """PIDs of the direct children of ``pid`` (pgrep -P)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return {int(p) for p in out.stdout.split()}


def _alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` that still exist (signal 0: a check, nothing is sent)."""
    alive = set()
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.add(pid)
    return alive


def _stop(proc: subprocess.Popen[str], children: set[int]) -> None:
    """After a failure too: SIGTERM the command (it stops what it started), SIGKILL it after
    60 s, then SIGKILL those of its children (collected while it ran) still there."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=30)
    for pid in _alive(children):
        os.kill(pid, signal.SIGKILL)


async def _live_ticks(url: str, since: int, n: int) -> tuple[list[int], list[dict[str, Any]]]:
    """Resume the tick stream after tick ``since``: the seqs replayed before ``resumed``, then
    the next ``n`` live messages (bounded in time)."""
    client = CellClient(url)
    stream = client.cluster_events(since=since)
    replayed: list[int] = []
    try:
        async with asyncio.timeout(20):
            async for message in stream:
                if message["type"] == "resumed":
                    break
                replayed.append(message["seq"])
        return replayed, await take(stream, n)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        client.close()


@pytest.mark.timeout(180)
def test_nats_cluster_serve_end_to_end() -> None:
    """`cluster --bus nats --nodes 4 --serve PORT` (a real nats-server and four node
    processes): GET /cluster shows the band reach SHARED with 4 members, the WebSocket stream
    resumed after that tick replays the ticks since, then delivers the following ticks live,
    in order, each a frame of 4 members, and SIGTERM ends the run with exit 0, the
    summary printed and every process it started gone."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*CLI, "cluster", "--bus", "nats", "--nodes", "4", "--alpha", "0.3", "--duration",
         "120", "--json", "--serve", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    children: set[int] = set()
    try:
        frame: dict[str, Any] | None = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            children |= _children(proc.pid)
            try:
                frame = _get(f"{url}{PREFIX}/cluster")["frame"]
            except httpx.HTTPError:
                frame = None
            if frame and frame["band"] == "SHARED" and len(frame["members"]) == 4:
                break
            time.sleep(0.3)
        assert frame is not None and frame["band"] == "SHARED", frame
        assert sorted(m["name"] for m in frame["members"]) == [f"cell-000{i}" for i in range(4)]
        assert all(m["sync"] is not None for m in frame["members"])  # full nodes say
        info = _get(f"{url}{PREFIX}/cluster")["cluster"]
        assert info["cells"] == 4 and info["ticks_to_band"]["SHARED"] is not None
        replayed, live = asyncio.run(_live_ticks(url, frame["tick"], 3))
        assert replayed == list(range(frame["tick"] + 1, frame["tick"] + 1 + len(replayed)))
        assert [m["type"] for m in live] == ["cluster.tick"] * 3
        seqs = [m["seq"] for m in live]
        assert seqs == list(range(frame["tick"] + 1 + len(replayed), seqs[0] + 3))
        assert all(len(m["data"]["members"]) == 4 for m in live)
        assert len(children) >= 5  # the nats-server and four nodes
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        leftover = _alive(children)  # before _stop would kill them
    finally:
        _stop(proc, children)
    assert proc.returncode == 0, err
    assert "stopped by a signal" in err and f"API at {url}{PREFIX}/cluster" in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["summary"] is True and summary["band"] == "SHARED"
    assert not leftover, f"processes the cluster started are still running: {leftover}"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_nats_cluster_glyphs_serve_migrations_to_glyph_top() -> None:
    """`cluster --bus nats --nodes 4 --glyphs 8 --serve PORT`: once glyphs have moved, the
    served frames carry ``migrations`` summed from the nodes' statuses (as an in-process
    served cluster's frames do), the members their glyph rows with the probes' ``kairos``,
    and ``glyph top`` prints the count in its title."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*CLI, "cluster", "--bus", "nats", "--nodes", "4", "--glyphs", "8", "--alpha", "0.3",
         "--duration", "60", "--serve", f"127.0.0.1:{port}"],  # no --json: a full pipe blocks
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    children: set[int] = set()
    try:
        frame: dict[str, Any] | None = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            children |= _children(proc.pid)
            try:
                frame = _get(f"{url}{PREFIX}/cluster")["frame"]
            except httpx.HTTPError:
                frame = None
            if frame and (frame.get("migrations") or {}).get("migrations", 0) >= 1:
                break
            time.sleep(0.3)
        assert frame is not None and frame["migrations"]["migrations"] >= 1, frame
        assert frame["migrations"]["offered"] >= frame["migrations"]["migrations"]
        rows = [m["glyphs"] for m in frame["members"]]
        assert all(r is not None and "kairos" in r for r in rows), rows
        top = subprocess.run(
            [*CLI, "glyph", "top", "--duration", "2", "--url", url],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert top.returncode == 0, top.stderr
        shown = int(top.stdout.split("migrations ")[1].split()[0])
        assert shown >= frame["migrations"]["migrations"], top.stdout
        assert "|T|²" in top.stdout
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        _stop(proc, children)
    assert proc.returncode == 0
    assert not _alive(children)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--serve", "10.1.2.3:8787"], "not a loopback address"),
        (["--serve", "99999"], "--serve"),
    ],
)
def test_nats_cluster_serve_bad_input_is_one_line(flags: list[str], message: str) -> None:
    """A bad --serve with --bus nats exits 2 with one line naming it, before any server or
    node starts."""
    done = subprocess.run(
        [*CLI, "cluster", "--bus", "nats", "--nodes", "2", "--duration", "1", *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServers]:
    """One nats-server for the node tests, stopped by pid at the end."""
    with NatsServers(tmp_path_factory.mktemp("srv"), servers=1) as servers:
        yield servers


def _popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.timeout(150)
def test_a_witness_and_a_full_node_serve_the_cluster_they_hear(
    tmp_path: Path, nats_server: NatsServers
) -> None:
    """`node --kind witness --serve PORT` beside two full nodes: GET /cluster shows exactly the
    two nodes (a witness publishes no status: it is not a member) with their
    Master/Emissary/Sync, the band reaches SHARED, a write is refused (no write route), and
    SIGTERM stops the witness with exit 0 after it printed the view's URL. Full node `a`
    serves its own view with --serve too, which lists both nodes (it hears its own status)."""
    roster = str(tmp_path / "roster.json")
    common = ["node", "--bus", nats_server.urls[0], "--roster", roster, "--alpha", "0.3"]
    port, full_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}{PREFIX}"
    procs = [
        _popen(*common, "--name", "a", "--data-dir", str(tmp_path / "a"), "--join",
               "--serve", f"127.0.0.1:{full_port}"),
        _popen(*common, "--name", "b", "--data-dir", str(tmp_path / "b"), "--join"),
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not Path(roster).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        witness = _popen(
            *common, "--kind", "witness", "--data-dir", str(tmp_path / "w"),
            "--serve", f"127.0.0.1:{port}",
        )  # fmt: skip
        procs.append(witness)
        frame: dict[str, Any] | None = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), [p.communicate()[1] for p in procs]
            try:
                frame = _get(f"{url}/cluster")["frame"]
            except httpx.HTTPError:
                frame = None
            names = sorted(m["name"] for m in frame["members"]) if frame else []
            if frame and frame["band"] == "SHARED" and names == ["a", "b"]:
                break
            time.sleep(0.3)
        assert frame is not None and frame["band"] == "SHARED", frame
        assert sorted(m["name"] for m in frame["members"]) == ["a", "b"]
        assert all(m["sync"] is not None for m in frame["members"])
        mine = _get(f"http://127.0.0.1:{full_port}{PREFIX}/cluster")["frame"]
        assert sorted(m["name"] for m in mine["members"]) == ["a", "b"]  # it hears itself too
        write = httpx.post(f"{url}/signals", json={"samples": [[1.0]]}, timeout=2.0)
        assert write.status_code in (404, 405)
        witness.send_signal(signal.SIGTERM)
        _, err = witness.communicate(timeout=30)
        assert witness.returncode == 0, err
        assert f"cluster view at {url}/cluster" in err
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--serve", "10.1.2.3:8787"], "not a loopback address"),
        (["--kind", "relay", "--serve", "8787"], "--serve: a relay hears no cluster"),
    ],
)
def test_node_serve_bad_input_is_one_line(flags: list[str], message: str) -> None:
    """A bad node --serve (a non-loopback host; a relay, which hears no cluster) exits 2 with
    one line naming it, before connecting."""
    done = subprocess.run(
        [*CLI, "node", "--bus", "nats://127.0.0.1:1", *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
