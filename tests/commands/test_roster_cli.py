"""``becomingone roster add|remove|list`` against real servers: an admin certificate writes
(add, replace, remove), a node certificate's write is one line and exit 1 with the roster
unchanged, without TLS every write warns that the roster is unprotected, and bad input is one
line and exit 2. Also ``cluster --tls`` on the in-process bus is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from becomingone.certs import TlsFiles, init_ca, issue_certificate
from becomingone.cli import main
from becomingone.keys import NodeKey, write_public_key
from becomingone.transport.natsd import NatsServers

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA with the server certificate, the admin ``admin`` and a node ``n1``."""
    folder = tmp_path_factory.mktemp("certs")
    init_ca(folder)
    issue_certificate(folder, "nats", server=True)
    issue_certificate(folder, "admin", admin=True)
    issue_certificate(folder, "n1")
    return folder


@pytest.fixture(scope="module")
def tls_url(certs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of one TLS server for the module."""
    with NatsServers(tmp_path_factory.mktemp("nats"), tls=TlsFiles.named(certs, "nats")) as s:
        yield s.urls[0]


def roster(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``becomingone roster ARGS`` in this process: (status, stdout, stderr)."""
    status = main(["roster", *args])
    out, err = capsys.readouterr()
    return status, out, err


def key_hex(seed: int) -> str:
    return NodeKey.from_seed(bytes([seed]) * 32).public_bytes.hex()


def test_admin_adds_replaces_lists_and_removes(
    certs: Path, tls_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the admin certificate (the default --cert): add from a node.pub file, add again
    (unchanged), replace the key (rotation), list (text and JSON), remove; no warning."""
    common = ["--bus", tls_url, "--certs", str(certs), "--cluster", "cli"]
    pub = tmp_path / "node.pub"
    write_public_key(pub, bytes.fromhex(key_hex(1)))
    assert roster(capsys, "add", "a", "--pub", str(pub), *common) == (
        0,
        f"added a {key_hex(1)} to roster_cli\n",
        "",
    )
    assert roster(capsys, "add", "a", "--pub", key_hex(1), *common)[1].startswith("a ")
    status, out, _ = roster(capsys, "add", "a", "--pub", key_hex(2), *common)
    assert (status, out) == (0, f"replaced a {key_hex(1)} -> {key_hex(2)} in roster_cli\n")
    roster(capsys, "add", "b", "--pub", key_hex(3), *common)
    assert roster(capsys, "list", *common)[1] == f"a  {key_hex(2)}\nb  {key_hex(3)}\n"
    doc = json.loads(roster(capsys, "list", "--json", *common)[1])
    assert doc == {"bucket": "roster_cli", "members": {"a": key_hex(2), "b": key_hex(3)}}
    assert roster(capsys, "remove", "b", *common)[:2] == (
        0,
        f"removed b {key_hex(3)} from roster_cli\n",
    )
    assert roster(capsys, "list", *common)[1] == f"a  {key_hex(2)}\n"


def test_node_certificate_cannot_write(
    certs: Path, tls_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A node certificate may list but not add or remove: one line naming the permission,
    exit 1, and the roster is as before."""
    admin = ["--bus", tls_url, "--certs", str(certs), "--cluster", "perm"]
    node = [*admin, "--cert", "n1"]
    assert roster(capsys, "add", "a", "--pub", key_hex(1), *admin)[0] == 0
    for args in (["add", "x", "--pub", key_hex(5)], ["remove", "a"]):
        status, out, err = roster(capsys, *args, *node)
        assert status == 1 and out == ""
        assert err.count("\n") == 1 and "refused by the server" in err
        assert "permissions violation" in err
    assert roster(capsys, "list", *node) == (0, f"a  {key_hex(1)}\n", "")


def test_without_tls_writes_warn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On a server without TLS a write works and warns on stderr that the roster is not
    protected (development mode); a list does not warn."""
    with NatsServers(tmp_path) as servers:
        common = ["--bus", servers.urls[0]]
        status, out, err = roster(capsys, "add", "a", "--pub", key_hex(1), *common)
        assert status == 0 and out == f"added a {key_hex(1)} to roster_local\n"
        assert "not protected (development mode)" in err
        assert roster(capsys, "list", *common) == (0, f"a  {key_hex(1)}\n", "")


def test_bad_input_is_one_line(
    certs: Path, tls_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --pub that is neither hex nor a file, a bad key file, a bad name, a non-member to
    remove, --cert without --certs, a missing admin certificate and a cluster that cannot name
    a bucket: one line each, exit 2."""
    (tmp_path / "bad.pub").write_text("zz\n")
    common = ["--bus", tls_url, "--certs", str(certs), "--cluster", "bad"]
    cases = [
        (["add", "a", "--pub", "nothex", *common], "--pub: neither 64 hex digits nor a file"),
        (["add", "a", "--pub", str(tmp_path / "bad.pub"), *common], "--pub:"),
        (["add", "a b", "--pub", key_hex(1), *common], "name:"),
        (["remove", "ghost", *common], "'ghost' is not in roster_bad"),
        (["list", "--bus", tls_url, "--cert", "n1"], "--cert: only with --certs"),
        (["list", *common, "--cert", "nobody"], "nobody.crt does not exist"),
        (["list", "--bus", tls_url, "--cluster", "a.b"], "cluster: 'a.b' cannot name"),
    ]
    for args, message in cases:
        status, out, err = roster(capsys, *args)
        assert (status, out) == (2, ""), (args, err)
        assert err.count("\n") == 1 and message in err, (args, err)


def test_cluster_tls_needs_the_nats_bus(capsys: pytest.CaptureFixture[str]) -> None:
    """``cluster --tls`` on the in-process bus is one line, exit 2."""
    assert main(["cluster", "--tls", "--nodes", "2", "--duration", "1"]) == 2
    assert "--tls: is for --bus nats" in capsys.readouterr().err
