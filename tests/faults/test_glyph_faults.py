"""Glyphs across node processes over NATS: ownership on a JetStream KV revision, migrations,
``kill -9`` of the source or the target at every step boundary.

Real ``nats-server`` and three ``becomingone node --glyphs --serve`` processes. A node arms a
crash point through its crash file (``BECOMINGONE_GLYPH_CRASH_FILE``, read only when set): at
the named step of a migration it SIGKILLs itself. After each crash the node is restarted on
its data dir and the test asserts, from the KV records, the nodes' glyph routes and the nodes'
SQLite fire logs: every record owned (no offer left open), each glyph scheduled by exactly one
node and that node the record's owner, no glyph lost, no (glyph, cycle) fired twice in the
union of the fire logs. Every wait bounded; every pid started stopped and checked gone.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from becomingone.api.tokens import TokenStore
from becomingone.cluster import OwnerRecord, OwnerState
from becomingone.memory.store import DB_NAME, TemporalMemory
from becomingone.runtime.fire_log import FIRE_LOG_NAME, read_fires
from becomingone.runtime.launcher import NodeProcesses, node_name
from becomingone.runtime.node_glyphs import CRASH_ENV, glyph_bucket
from becomingone.transport.jetstream import JetStreamCasRecord
from becomingone.transport.natsd import NatsServers
from tests.faults.helpers import CLI, FLAGS, gone, locked, observe

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

#: (whose process dies, at which step): every boundary between two steps of a migration.
CASES = [
    ("source", "offer"),  # record offered, packet sent; the source dies before any answer
    ("target", "accept"),  # target verified the packet, dies before its commit
    ("target", "commit"),  # record owned by the target, dies before it schedules the glyph
    ("target", "run"),  # target schedules it, dies before telling the source
    ("source", "drop"),  # the source dropped its held copy, dies after
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GlyphFleet:
    """Three ``node --glyphs --serve`` processes on one server, each with a token and a crash
    file; started, killed and restarted by their own pids."""

    def __init__(self, base: Path, urls: list[str], flags: tuple[str, ...] = ()) -> None:
        self.launcher = NodeProcesses(base, urls, (*FLAGS, "--glyphs", *flags))
        self.base = base
        self.names = [node_name(i) for i in range(3)]
        self.ports = {n: _port() for n in self.names}
        self.tokens: dict[str, str] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started: list[int] = []
        for name in self.names:  # a data dir with its key and a write token, before the node
            store = TokenStore(self._dir(name))
            self.tokens[name] = store.create("test")
            store.close()

    def _dir(self, name: str) -> Path:
        path = self.base / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def crash_file(self, name: str) -> Path:
        """The file that arms ``name``'s crash point."""
        return self.base / f"{name}.crash"

    def start(self, name: str) -> None:
        """Start (or restart) ``name``."""
        cmd = [*self.launcher.command(name), "--serve", f"127.0.0.1:{self.ports[name]}"]
        env = {**os.environ, CRASH_ENV: str(self.crash_file(name))}
        with open(self.base / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        self.procs[name] = proc
        self.started.append(proc.pid)

    def url(self, name: str) -> str:
        """``http://127.0.0.1:PORT`` of ``name``'s API."""
        return f"http://127.0.0.1:{self.ports[name]}"

    def call(self, name: str, method: str = "GET", body: Any = None, path: str = "") -> Any:
        """A request to ``name``'s glyph routes (JSON); None when the node does not answer."""
        req = urllib.request.Request(
            f"{self.url(name)}/api/v1/cluster/glyphs{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.tokens[name]}",
                "Content-Type": "application/json",
            },
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=5.0) as reply:
                return json.loads(reply.read())
        except (OSError, urllib.error.HTTPError):
            return None

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every node started, SIGKILL after 30 s; asserts every pid is gone."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        codes: dict[str, int | None] = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait(timeout=10)
        assert all(gone(pid) for pid in self.started), self.started
        return codes


def _wait(check: Any, seconds: float, what: str) -> Any:
    """Poll ``check()`` every 0.25 s until truthy; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(0.25)


def _submit(fleet: GlyphFleet, name: str, glyph_id: str, theta: float) -> None:
    body = {
        "id": glyph_id,
        "kind": "probe",
        "payload": {"probe": "loadavg"},
        "theta": theta,
        "energy": 1000,
        "lifetime": 100000,
    }
    got = _wait(lambda: fleet.call(name, "POST", body), 30, f"submit {glyph_id} to {name}")
    assert got["owner"] == name, got


def _state(
    fleet: GlyphFleet, kv: JetStreamCasRecord, names: list[str] | None = None
) -> dict[str, Any] | None:
    """Records and who schedules what, if every node of ``names`` (default: all) answers;
    else None."""
    lists = {n: fleet.call(n) for n in names or fleet.names}
    if any(v is None for v in lists.values()):
        return None
    records = {}
    listed = kv.keys()
    for key in [k for k in listed if k.startswith("glyph.")]:  # not cycle.anchor
        got = kv.get(key)
        if got is not None:
            records[key.removeprefix("glyph.")] = OwnerRecord.from_bytes(got.value)
    holders: dict[str, list[tuple[str, str]]] = {}
    for node, doc in lists.items():
        for g in doc["glyphs"]:
            if g["mine"]:  # the node's own desk (the rest of its list are the records)
                holders.setdefault(g["id"], []).append((node, g["state"]))
    return {"records": records, "holders": holders}


def _settled(
    fleet: GlyphFleet, kv: JetStreamCasRecord, ids: set[str], names: list[str] | None = None
) -> dict[str, Any] | None:
    """The state once every glyph is owned and scheduled by exactly its record's owner (one
    of ``names``, default all nodes)."""
    st = _state(fleet, kv, names)
    if st is None or set(st["records"]) != ids or set(st["holders"]) != ids:
        return None
    for gid, rec in st["records"].items():
        if rec.state is not OwnerState.OWNED:
            return None
        if st["holders"][gid] != [(rec.owner, "scheduled")]:
            return None
    return st


def _heard_rows(fleet: GlyphFleet, name: str) -> dict[str, Any] | None:
    """The glyph row of every member in ``name``'s cluster view (from the statuses it hears),
    once it has one for each node; else None."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{fleet.url(name)}/api/v1/cluster", timeout=5.0) as reply:
            frame = json.loads(reply.read())["frame"]
    except (OSError, ValueError, KeyError):
        return None
    rows = {m["name"]: m["glyphs"] for m in frame["members"] if m["glyphs"] is not None}
    return rows if set(rows) == set(fleet.names) else None


def _spread(fleet: GlyphFleet, kv: JetStreamCasRecord, ids: set[str]) -> int:
    """How many nodes own glyphs once settled (0 while not settled)."""
    st = _settled(fleet, kv, ids)
    return 0 if st is None else len({r.owner for r in st["records"].values()})


def _fires(fleet: GlyphFleet) -> list[tuple[str, int, str]]:
    out: list[tuple[str, int, str]] = []
    for name in fleet.names:
        path = fleet.base / name / FIRE_LOG_NAME
        if path.exists():
            out += read_fires(path)
    return out


async def test_kill9_at_every_migration_step(tmp_path: Path) -> None:
    """For each step boundary of a migration between node processes, the source or the
    target is SIGKILLed there (its crash point) and restarted; afterwards every glyph has one
    record, owned (no open offer), scheduled by exactly that owner and by no other node, none
    is lost, and the union of the three SQLite fire logs has no (glyph, cycle) twice — while
    every glyph keeps firing. Also checks that the migrations did happen (glyphs on every
    node), that `glyph list --url` works against a node, that a node's cluster view carries
    every node's glyph row (from their statuses), and that a cancel through a node's
    API ends the glyph and deletes its record."""
    with NatsServers(tmp_path / "nats", servers=1) as servers:
        fleet = GlyphFleet(tmp_path / "nodes", servers.urls)
        kv = JetStreamCasRecord(servers.urls, glyph_bucket("local"))
        bus = None
        try:
            for name in fleet.names:
                fleet.start(name)
            bus, obs = await observe(servers.urls)
            await locked(obs, fleet.names)
            ids = {f"g{i}" for i in range(3)}
            for i, gid in enumerate(sorted(ids)):
                _submit(fleet, fleet.names[0], gid, (i + 0.5) / 8)
            _wait(lambda: _spread(fleet, kv, ids) == 3, 60, "one glyph per node")
            st = _wait(lambda: _settled(fleet, kv, ids), 60, "first spread")
            print("\nthree glyphs submitted to one node: one per node")
            listed = subprocess.run(
                [*CLI, "glyph", "list", "--url", fleet.url(fleet.names[1])],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert listed.returncode == 0 and "3 glyphs" in listed.stdout, listed
            assert listed.stdout.count("*this node") == 1, listed.stdout
            rows = _wait(lambda: _heard_rows(fleet, fleet.names[2]), 30, "glyph rows heard")
            assert {n: r["glyphs"] for n, r in rows.items()} == dict.fromkeys(fleet.names, 1)
            for k, (role, step) in enumerate(CASES):
                source = fleet.names[k % 3]
                others = [n for n in fleet.names if n != source]
                armed = [source] if role == "source" else others
                for name in armed:
                    fleet.crash_file(name).write_text(step)
                count = Counter(r.owner for r in st["records"].values())
                extra = max(count[n] for n in others) - count[source] + 3  # beyond the band
                new = {f"c{k}-{j}" for j in range(extra)}
                for j, gid in enumerate(sorted(new)):
                    _submit(fleet, source, gid, (0.3 * j + 0.1 * k + 0.05) % 1.0)
                ids |= new
                died = _wait(
                    lambda armed=armed: [n for n in armed if fleet.procs[n].poll() is not None],
                    60,
                    f"{role} killed at {step}",
                )
                for name in armed:
                    fleet.crash_file(name).unlink(missing_ok=True)
                assert fleet.procs[died[0]].returncode == -9
                fleet.start(died[0])
                st = _wait(lambda ids=ids: _settled(fleet, kv, ids), 90, f"settled after {step}")
                fires = _fires(fleet)
                twice = [key for key, n in Counter((g, c) for g, c, _ in fires).items() if n > 1]
                assert not twice, (role, step, twice)
                print(
                    f"{role} kill -9 at {step}: {died[0]} restarted; "
                    f"{len(st['records'])} glyphs, one owner each, {len(fires)} fires, 0 twice"
                )
            time.sleep(3)
            fires = _fires(fleet)
            fired = {g for g, _, _ in fires}
            assert fired == ids, ids - fired  # every glyph ran somewhere, none lost
            assert max(Counter((g, c) for g, c, _ in fires).values()) == 1
            for name in fleet.names:  # no node even tried to fire a (glyph, cycle) it had
                assert "fire log has" not in (fleet.base / f"{name}.log").read_text()
            gone_id, owner = next((g, r.owner) for g, r in sorted(st["records"].items()))
            ended = fleet.call(owner, "DELETE", None, f"/{gone_id}")
            assert ended is not None and ended["state"] == "cancelled", ended
            assert kv.get(f"glyph.{gone_id}") is None  # an ended glyph's record is deleted
            assert _wait(lambda: _settled(fleet, kv, ids - {gone_id}), 30, "after the cancel")
        finally:
            if bus is not None:
                await bus.aclose()
            kv.close()
            codes = fleet.stop()
    assert all(gone(pid) for pid in servers.pids)
    assert set(codes) == set(fleet.names)


#: The takeover timeout the takeover test runs its nodes with (s; the default is 15).
TAKEOVER = 4.0


async def test_kill9_owner_not_restarted_its_glyphs_are_taken_over_once(tmp_path: Path) -> None:
    """Six glyphs spread over three nodes; the owner of some is SIGKILLed and not restarted.
    Within the takeover timeout plus a few seconds every glyph has one record owned by a live
    node, at a newer epoch for the dead node's, scheduled by exactly that node; none is lost
    (each keeps firing) and the union of the fire logs has no (glyph, cycle) twice. The taker's
    chain witnesses ``glyph.takeover``. The dead node restarted afterwards schedules none of
    the glyphs it lost, and still nothing fires twice."""
    flags = ("--glyph-takeover", str(TAKEOVER))
    with NatsServers(tmp_path / "nats", servers=1) as servers:
        fleet = GlyphFleet(tmp_path / "nodes", servers.urls, flags)
        kv = JetStreamCasRecord(servers.urls, glyph_bucket("local"))
        bus = None
        try:
            for name in fleet.names:
                fleet.start(name)
            bus, obs = await observe(servers.urls)
            await locked(obs, fleet.names)
            ids = {f"g{i}" for i in range(6)}
            for i, gid in enumerate(sorted(ids)):
                _submit(fleet, fleet.names[0], gid, (i + 0.5) / 6)
            _wait(lambda: _spread(fleet, kv, ids) == 3, 60, "glyphs on every node")
            st = _wait(lambda: _settled(fleet, kv, ids), 30, "spread settled")
            owners = Counter(r.owner for r in st["records"].values())
            victim = min(owners, key=lambda n: (-owners[n], n))  # the one that owns the most
            lost = {g: r.epoch for g, r in st["records"].items() if r.owner == victim}
            assert lost, st["records"]
            live = [n for n in fleet.names if n != victim]
            fleet.procs[victim].kill()
            killed = time.monotonic()
            assert fleet.procs[victim].wait(timeout=10) == -9
            st = _wait(
                lambda: _settled(fleet, kv, ids, live), TAKEOVER + 20, "taken over by live nodes"
            )
            took = time.monotonic() - killed
            for gid, epoch in lost.items():
                rec = st["records"][gid]
                assert rec.owner in live and rec.epoch == epoch + 1, (gid, rec)
            before = {g for g, _, _ in _fires(fleet) if g in lost}
            count = len(_fires(fleet))
            _wait(lambda: len(_fires(fleet)) > count + 2 * len(ids), 20, "glyphs fire on")
            after = Counter(g for g, _, n in _fires(fleet) if n != victim)
            assert set(lost) <= set(after) and before <= set(lost)
            said = f"over from {victim} (silent"  # the taker's log line, not a migration's
            takers = {n: (fleet.base / f"{n}.log").read_text().count(said) for n in live}
            assert sum(takers.values()) == len(lost), takers
            print(
                f"\n{victim} kill -9 (not restarted): {len(lost)} of its glyphs taken over in "
                f"{took:.1f} s (takeover timeout {TAKEOVER} s) by {takers}"
            )
            fleet.start(victim)
            st = _wait(lambda: _settled(fleet, kv, ids), 60, "the old owner restarted")
            assert all(st["records"][g].owner in live for g in lost)
            time.sleep(2)
            fires = _fires(fleet)
            twice = [key for key, n in Counter((g, c) for g, c, _ in fires).items() if n > 1]
            assert not twice, twice
            assert {g for g, _, _ in fires} == ids  # none lost
            for name in fleet.names:  # no node even tried to fire a (glyph, cycle) it had
                assert "fire log has" not in (fleet.base / f"{name}.log").read_text()
            print(
                f"{victim} restarted: schedules none of them; {len(ids)} glyphs, one owner "
                f"each, {len(fires)} fires, 0 twice"
            )
        finally:
            if bus is not None:
                await bus.aclose()
            kv.close()
            fleet.stop()
    assert all(gone(pid) for pid in servers.pids)
    witnessed = []
    for name in live:
        memory = TemporalMemory.open_read_only(fleet.base / name / DB_NAME)
        try:
            records = [r for r in memory.witnesses() if r.kind == "glyph.takeover"]
            witnessed += [json.loads(r.payload) for r in records]
        finally:
            memory.close()
    assert sorted(p["glyph"] for p in witnessed) == sorted(lost)
    assert all(p["from"] == victim for p in witnessed)
