"""The cluster API: frames of a real in-process cluster, history, the tick stream with resume,
and `becomingone cluster --serve` end to end."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from becomingone.api import PREFIX, ApiServer, ApiSettings, CellClient, ServedCluster, create_app
from becomingone.errors import InputError
from becomingone.runtime import LocalCluster, build_supervisors, subject_for
from becomingone.transport import MemoryBus
from tests.api.conftest import client_for
from tests.api.test_e2e import free_port
from tests.api.test_events import take

CLI = [sys.executable, "-m", "becomingone.cli"]


async def run_cluster(
    served: ServedCluster, ticks: int, n: int = 6, *, garbage: int = 0
) -> LocalCluster:
    """Run a mesh of ``n`` CPS cells for ``ticks`` ticks of virtual time, every tick handed to
    ``served``; ``garbage`` undecodable packets are sent to cell 1 before the first tick."""
    cells = build_supervisors(n, "mesh", alpha=0.2, seed=3)
    bus = MemoryBus(maxsize=1024)
    async with LocalCluster(cells, bus) as cluster:
        if garbage:
            conn = bus.connect("intruder")
            for _ in range(garbage):
                await conn.publish(subject_for("local", cells[1].node_id), b"\x00not a packet")
        await cluster.run(ticks, 0.05, on_tick=lambda r: served.record(r, cluster.members))
        return cluster


async def test_a_frame_has_the_cluster_and_every_cell() -> None:
    """Each tick becomes one frame: the tick report's C, band and T_global, rejections by
    reason summed over the cells, and one row per cell with its θ and CPS state; a CPS-only
    cell has no transducer values."""
    served = ServedCluster("local", "mesh", threshold=0.95)
    cluster = await run_cluster(served, 40, garbage=2)
    frame = served.latest()
    assert frame is not None and frame["tick"] == 39 and len(served.frames) == 40
    last = cluster.history[-1]
    assert frame["c_cluster"] == last.c_cluster and frame["band"] == last.band.value
    assert [m["name"] for m in frame["members"]] == [m.node_id for m in cluster.members]
    assert [m["theta"] for m in frame["members"]] == list(last.thetas)
    assert frame["rejected"] == 2 and sum(frame["rejected_by_reason"].values()) == 2
    assert frame["members"][1]["rejected"] == 2 and frame["members"][0]["rejected"] == 0
    assert all(m["master"] is None and m["sync"] is None for m in frame["members"])
    assert served.describe()["ticks"] == 40 and served.describe()["cells"] == 6


async def test_frames_kept_are_bounded_and_replay_says_what_was_lost() -> None:
    """Only the newest ``keep`` frames are kept; a replay after a kept tick is complete, one
    from before the oldest kept frame says it is not."""
    served = ServedCluster("local", "mesh", threshold=0.95, keep=10)
    await run_cluster(served, 25)
    assert [f["tick"] for f in served.frames] == list(range(15, 25))
    events, complete = served.replay(20)
    assert [e.seq for e in events] == [21, 22, 23, 24] and complete
    events, complete = served.replay(3)
    assert [e.seq for e in events] == list(range(15, 25)) and not complete
    with pytest.raises(InputError, match="keep"):
        ServedCluster("local", "mesh", threshold=0.95, keep=0)


async def test_routes_answer_from_the_frames() -> None:
    """GET /cluster, /cluster/members/NAME and /cluster/history (downsampled with every=,
    bounded by limit=) answer from the kept frames; an unknown cell is a 404 with the error
    body; a cluster-only app has no cell routes."""
    served = ServedCluster("local", "mesh", threshold=0.95)
    app = create_app(None, ApiSettings(), cluster=served)
    async with client_for(app) as client:
        empty = (await client.get("/cluster")).json()
        assert empty["frame"] is None and empty["cluster"]["ticks"] == 0
        await run_cluster(served, 30)
        now = (await client.get("/cluster")).json()
        assert now["frame"]["tick"] == 29 and len(now["frame"]["members"]) == 6
        name = now["frame"]["members"][2]["name"]
        one = (await client.get(f"/cluster/members/{name}")).json()
        assert one == now["frame"]["members"][2]
        missing = await client.get("/cluster/members/nobody")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_cell"
        history = (await client.get("/cluster/history?since=4&every=5&limit=3")).json()
        assert [p["tick"] for p in history["points"]] == [5, 10, 15]
        assert "members" not in history["points"][0] and history["kept_from"] == 0
        bad = await client.get("/cluster/history?every=0")
        assert bad.status_code == 422
        assert (await client.get("/node")).status_code == 404


def test_an_app_needs_a_cell_or_a_cluster() -> None:
    """create_app with no cell, cluster or Choir is refused, naming the argument."""
    with pytest.raises(InputError, match="a cell, a cluster or a Choir; got none"):
        create_app(None, ApiSettings())


@pytest.fixture
async def served_server() -> AsyncIterator[tuple[ServedCluster, ApiServer]]:
    """A cluster API (no cluster running yet) on a free loopback port."""
    served = ServedCluster("local", "mesh", threshold=0.95)
    server = ApiServer(create_app(None, ApiSettings(), cluster=served), "127.0.0.1", 0)
    await server.start()
    try:
        yield served, server
    finally:
        await server.aclose()


async def test_the_tick_stream_goes_live_then_resumes(
    served_server: tuple[ServedCluster, ApiServer],
) -> None:
    """A client gets `resumed`, then one cluster.tick per tick with seq = tick and the whole
    frame; a client resuming after tick S gets S+1.. once, in order, then live ticks."""
    served, server = served_server
    client = CellClient(server.url)
    stream = client.cluster_events()
    assert (await take(stream, 1))[0]["type"] == "resumed"
    await run_cluster(served, 5)
    ticks = await take(stream, 5)
    assert [t["seq"] for t in ticks] == [0, 1, 2, 3, 4]
    assert all(t["type"] == "cluster.tick" for t in ticks)
    assert len(ticks[0]["data"]["members"]) == 6
    await stream.aclose()  # type: ignore[attr-defined]
    resumed = client.cluster_events(since=2)
    got = await take(resumed, 3)
    assert [m["seq"] for m in got] == [3, 4, 4] and got[-1]["type"] == "resumed"
    assert got[-1]["data"] == {"replayed": 2, "complete": True}
    await resumed.aclose()  # type: ignore[attr-defined]
    client.close()


async def test_a_bad_since_closes_the_stream_with_the_error_body(
    served_server: tuple[ServedCluster, ApiServer],
) -> None:
    """since=abc is refused: the socket closes with 1008 and the error body names `since`."""
    import websockets

    _, server = served_server
    url = "ws" + server.url.removeprefix("http") + f"{PREFIX}/cluster/events?since=abc"
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "since" in closed.value.rcvd.reason


def _get(url: str) -> Any:
    return httpx.get(url, timeout=2.0).json()


def test_cluster_serve_end_to_end() -> None:
    """`becomingone cluster --serve` on a free port: the API answers while the cluster runs,
    its cells phase-lock until the band reaches SHARED as seen through GET /cluster, and the
    process ends by itself after --duration (stopped by PID if not)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}{PREFIX}"
    proc = subprocess.Popen(
        [*CLI, "cluster", "--nodes", "8", "--topology", "mesh", "--alpha", "0.3", "--duration",
         "40", "--serve", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        band, deadline = None, time.monotonic() + 60
        while band != "SHARED" and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                frame = _get(f"{url}/cluster")["frame"]
                band = frame and frame["band"]
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert band == "SHARED"
        info = _get(f"{url}/cluster")["cluster"]
        assert info["cells"] == 8 and info["ticks_to_band"]["SHARED"] is not None
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.stderr is not None
    assert f"API at http://127.0.0.1:{port}{PREFIX}/cluster" in proc.stderr.read()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--serve", "99999"], "--serve"),
        (["--serve", "10.1.2.3:8787"], "not a loopback address"),
    ],
)
def test_cluster_serve_bad_input_is_one_line(flags: list[str], message: str) -> None:
    """A bad --serve (port, non-loopback host) exits 2 with one line naming it."""
    done = subprocess.run(
        [*CLI, "cluster", "--nodes", "2", "--duration", "1", *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
