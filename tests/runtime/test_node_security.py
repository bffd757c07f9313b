"""Node processes over mutual TLS with the roster in JetStream KV, on real ``nats-server`` and
``becomingone node`` processes: an admin writes the roster, nodes watch it live, a removed
node's packets are rejected as ``unknown_signer``, a rotated key's old packets are refused, a
node certificate cannot write the roster, and a node without a certificate exits in one line.

Every process is started here (servers by :class:`NatsServers`, nodes by ``subprocess``) and
stopped by pid; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from becomingone.certs import TlsFiles, init_ca, issue_certificate
from becomingone.config import CellConfig
from becomingone.core.phase import CoherenceBand
from becomingone.errors import TransportError
from becomingone.runtime.cell import Cell
from becomingone.runtime.observer import ClusterObserver
from becomingone.sync.roster import KeyRoster
from becomingone.transport import connect_nats
from becomingone.transport.natsd import NatsServers
from becomingone.transport.roster_kv import RosterBucket
from tests.helpers import gone

pytestmark = pytest.mark.timeout(180)

TICK = 0.05
FLAGS = ["--topology", "mesh", "--tick", "50", "--alpha", "0.3", "--json"]
NAMES = ["a", "b", "c"]


def public_key(data_dir: Path) -> bytes:
    """Create (or open) the cell of ``data_dir`` and return its public key."""
    cell = Cell(CellConfig(), data_dir)
    try:
        return cell.key.public_bytes
    finally:
        cell.close()


class Nodes:
    """``becomingone node`` processes on a KV roster, with certificates; stopped by pid."""

    def __init__(self, base: Path, urls: list[str], certs: Path) -> None:
        self.base, self.urls, self.certs = base, urls, certs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *extra: str) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "becomingone.cli", "node", "--bus", ",".join(self.urls)]
        cmd += ["--name", name, "--data-dir", str(self.base / name), "--certs", str(self.certs)]
        with open(self.base / f"{name}.log", "ab") as log:
            proc = subprocess.Popen([*cmd, *FLAGS, *extra], stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def stop(self) -> dict[str, int]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return {name: p.returncode for name, p in self.procs.items()}


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[tuple[NatsServers, Nodes, Path]]:
    """A CA with server, admin, observer and node certificates; one TLS server; a launcher."""
    certs = tmp_path / "certs"
    init_ca(certs)
    issue_certificate(certs, "nats", server=True)
    issue_certificate(certs, "admin", admin=True)
    for name in ["observer", *NAMES]:
        issue_certificate(certs, name)
    with NatsServers(tmp_path, tls=TlsFiles.named(certs, "nats")) as servers:
        nodes = Nodes(tmp_path, servers.urls, certs)
        try:
            yield servers, nodes, certs
        finally:
            nodes.stop()
            assert all(gone(p.pid) for p in nodes.procs.values())
    assert all(gone(pid) for pid in servers.pids)


async def until(obs: ClusterObserver, check: Callable[[], bool], seconds: float) -> float:
    """Step the observer every tick until ``check()``; seconds it took, or fail."""
    start = time.monotonic()
    for _ in range(int(seconds / TICK) + 1):
        obs.step()
        if check():
            return time.monotonic() - start
        await asyncio.sleep(TICK)
    seen = {n: (s.members, dict(s.rejected)) for n, s in obs.latest.items()}
    raise AssertionError(f"not reached within {seconds} s: {obs.history[-1:]}, nodes {seen}")


async def test_tls_nodes_lock_and_follow_the_kv_roster(
    secure: tuple[NatsServers, Nodes, Path],
) -> None:
    """Three node processes with certificates, on a roster an admin wrote, reach SHARED. A node
    certificate's write to the roster is refused by the server and changes nothing. The admin
    removes c: a and b see 2 members at once (watch) and reject c's packets as unknown_signer
    (c, valid certificate, keeps sending on the last roster it was in). Rotation: the admin
    puts c back with a new key while the old c still runs: its packets are now refused as
    bad_signature; the old c stops, the new c (new data dir, new certificate) starts and the
    three lock again with nothing of the new c rejected."""
    servers, nodes, certs = secure
    admin = await RosterBucket.connect(
        servers.urls, cluster="local", tls=TlsFiles.named(certs, "admin")
    )
    bus = await connect_nats(servers.urls, name="obs", tls=TlsFiles.named(certs, "observer"))
    obs = ClusterObserver(bus, cluster="local", peer_timeout=1.0)
    await obs.start()
    try:
        keys = {name: public_key(nodes.base / name) for name in NAMES}
        for name in NAMES:
            await admin.put(name, keys[name])
        for name in NAMES:
            nodes.start(name)
        await until(obs, lambda: len(obs.live(time.time())) == 3, 60)
        took = await until(obs, lambda: obs.history[-1].band is CoherenceBand.SHARED, 30)
        print(f"3 TLS processes on a KV roster: SHARED {took:.2f} s after all were heard")
        assert obs.rejected() == {}

        intruder = await RosterBucket.connect(
            servers.urls, cluster="local", tls=TlsFiles.named(certs, "a")
        )
        try:
            with pytest.raises(TransportError, match="refused by the server"):
                await intruder.put("evil", bytes(range(32)))
        finally:
            await intruder.aclose()
        assert await admin.members() == KeyRoster(keys)

        await admin.remove("c")
        await until(
            obs,
            lambda: all(
                obs.latest[n].members == 2 and obs.latest[n].rejected.get("unknown_signer", 0) > 0
                for n in ("a", "b")
            ),
            10,
        )
        assert obs.latest["c"].members == 3  # c keeps the last roster it was in
        assert all(p.poll() is None for p in nodes.procs.values())

        rotated = public_key(nodes.base / "c2")
        await admin.put("c", rotated)
        await until(
            obs,
            lambda: all(
                obs.latest[n].members == 3 and obs.latest[n].rejected.get("bad_signature", 0) > 0
                for n in ("a", "b")
            ),
            10,
        )
        nodes.procs["c"].terminate()
        assert nodes.procs["c"].wait(timeout=15) == 0
        issue_certificate(certs, "c", force=True)
        stopped = time.time()
        await until(obs, lambda: all(obs.latest[n].time > stopped + 0.2 for n in ("a", "b")), 5)
        before = {n: dict(obs.latest[n].rejected) for n in ("a", "b")}
        old_epoch = obs.latest["c"].epoch
        nodes.start("c", "--data-dir", str(nodes.base / "c2"))
        await until(obs, lambda: obs.latest["c"].epoch > old_epoch, 60)
        first = obs.latest["c"].time
        await until(
            obs,
            lambda: all(obs.latest[n].heard == 2 and obs.latest[n].time > first for n in NAMES),
            30,
        )
        await until(obs, lambda: obs.history[-1].band is CoherenceBand.SHARED, 30)
        after = {n: dict(obs.latest[n].rejected) for n in ("a", "b")}
        assert after == before  # nothing of the new c rejected
    finally:
        await bus.aclose()
        await admin.aclose()
    codes = nodes.stop()
    assert codes == {"a": 0, "b": 0, "c": 0}


def run_node(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``becomingone node`` to the end, bounded in time."""
    cmd = [sys.executable, "-m", "becomingone.cli", "node", "--bus", url, "--duration", "1"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60)


async def test_node_not_in_the_roster_or_without_bucket(
    secure: tuple[NatsServers, Nodes, Path],
) -> None:
    """With a valid certificate, a node whose cluster has no roster bucket exits 1 saying an
    admin creates it; once the bucket holds only a, node b exits 2 naming its public key (what
    the admin adds); neither writes a traceback."""
    servers, nodes, certs = secure
    flags = ["--name", "b", "--data-dir", str(nodes.base / "b"), "--certs", str(certs)]
    run = run_node(servers.urls[0], *flags)
    assert run.returncode == 1 and "no roster bucket roster_local" in run.stderr
    admin = await RosterBucket.connect(
        servers.urls, cluster="local", tls=TlsFiles.named(certs, "admin")
    )
    try:
        await admin.put("a", public_key(nodes.base / "a"))
    finally:
        await admin.aclose()
    run = run_node(servers.urls[0], *flags)
    key = public_key(nodes.base / "b").hex()
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"becomingone node: error: --roster: 'b' is not in the roster bucket roster_local with its "
        f"key {key}"
    ]


def test_node_without_certificate_exits_in_one_line(
    secure: tuple[NatsServers, Nodes, Path],
) -> None:
    """A node given no client certificate against the TLS servers exits 1 with one line on
    stderr saying the server requires TLS with a client certificate (no traceback)."""
    servers, nodes, _ = secure
    for url in (servers.urls[0], servers.urls[0].replace("tls://", "nats://")):
        run = run_node(url, "--name", "a", "--data-dir", str(nodes.base / "plain"))
        assert run.returncode == 1, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in run.stderr
        assert "requires TLS with a client certificate, and none was given" in lines[0]


def test_cluster_command_with_tls(tmp_path: Path) -> None:
    """``cluster --bus nats --tls`` makes a CA and certificates for the run, starts a TLS
    server that maps certificates to users, writes the nodes' keys to the KV roster with its
    admin certificate (no roster file, no ``--roster``: the nodes read the bucket), and its two
    node processes lock (SHARED) with nothing rejected; nothing it started is left running."""
    cli = [sys.executable, "-m", "becomingone.cli", "cluster", "--bus", "nats", "--tls"]
    flags = ["--nodes", "2", "--duration", "2", "--tick", "50", "--alpha", "0.3", "--json"]
    run = subprocess.run(
        [*cli, *flags, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.splitlines()[-1])
    assert summary["summary"] and summary["band"] == "SHARED" and summary["rejected"] == {}
    names = {p.stem for p in (tmp_path / "certs").glob("*.crt")}
    assert names == {"ca", "nats", "observer", "admin", "cell-0000", "cell-0001"}
    assert "verify_and_map: true" in (tmp_path / "nats" / "n1.conf").read_text()
    assert "2 node keys written to roster_local (KV, admin certificate)" in run.stderr
    assert not (tmp_path / "nodes" / "roster.json").exists()
    for name in ("cell-0000", "cell-0001"):
        lines = (tmp_path / "nodes" / f"{name}.log").read_text().splitlines()
        last = json.loads(lines[-1])
        assert last["summary"] and last["chain_verified"] and last["members"] == 2
        assert "not protected" not in "".join(lines)


async def test_without_tls_join_writes_the_kv_roster(tmp_path: Path) -> None:
    """Development mode (no TLS): ``node --join`` without ``--roster`` adds the node to the KV
    roster itself and warns on stderr that the roster is unprotected; a witness on the KV
    roster reads the same member."""
    with NatsServers(tmp_path) as servers:
        url = servers.urls[0]
        run = run_node(url, "--name", "a", "--data-dir", str(tmp_path / "a"), "--join")
        assert run.returncode == 0, run.stderr
        assert "not protected (development mode)" in run.stderr
        bucket = await RosterBucket.connect(servers.urls, cluster="local")
        try:
            assert await bucket.members() == KeyRoster({"a": public_key(tmp_path / "a")})
        finally:
            await bucket.aclose()
        witness = ["--name", "w", "--kind", "witness", "--data-dir", str(tmp_path / "w")]
        run = run_node(url, *witness, "--json")
        assert run.returncode == 0, run.stderr
        summary = json.loads(run.stdout.splitlines()[-1])
        assert summary["members"] == 1 and summary["chain_verified"]
