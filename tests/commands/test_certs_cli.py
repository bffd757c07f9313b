"""``becomingone certs init|issue|list`` and ``becomingone nats up --tls``: real certificates in
tmp dirs, real detached servers a client reaches with its node certificate, and one line on
stderr (exit 2 for bad input, 1 for an unusable place) for every bad invocation."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from becomingone.certs import TlsFiles, init_ca, issue_certificate
from becomingone.cli import main
from becomingone.transport import connect_nats
from becomingone.transport.natsd import read_state

pytestmark = pytest.mark.timeout(120)


def certs(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``becomingone certs ARGS`` in this process: (status, stdout, stderr)."""
    status = main(["certs", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_init_issue_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """init, issue (a server and a node) and list --json: three valid certificates of the
    right kinds and usages; every key file 0600, every certificate 0644; keys never printed."""
    folder = str(tmp_path / "certs")
    assert certs(capsys, "init", "--dir", folder)[0] == 0
    status, out, _ = certs(
        capsys, "issue", "nats", "--server", "--host", "10.1.2.3", "--dir", folder
    )
    assert status == 0 and "serverAuth,clientAuth" in out
    status, out, _ = certs(capsys, "issue", "n1", "--days", "30", "--dir", folder)
    assert status == 0 and "CN=n1" in out and "PRIVATE KEY" not in out
    status, out, _ = certs(capsys, "list", "--json", "--dir", folder)
    rows = [json.loads(line) for line in out.splitlines()]
    assert status == 0
    assert [(r["name"], r["kind"], r["usage"], r["state"]) for r in rows] == [
        ("ca", "ca", "ca", "valid"),
        ("n1", "node", "clientAuth", "valid"),
        ("nats", "server", "serverAuth,clientAuth", "valid"),
    ]
    for path in (tmp_path / "certs").iterdir():
        want = 0o600 if path.suffix == ".key" else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == want, path


def test_list_table_and_expired(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The list table shows subject, usage, not-after, state and the SHA-256 fingerprint;
    with an expired certificate in the directory it exits 1."""
    now = dt.datetime.now(dt.UTC)
    init_ca(tmp_path, now=now - dt.timedelta(days=9))
    issue_certificate(tmp_path, "old", days=1, now=now - dt.timedelta(days=3))
    status, out, _ = certs(capsys, "list", "--dir", str(tmp_path))
    header, ca_row, old_row = out.splitlines()
    assert header.split()[:3] == ["NAME", "KIND", "USAGE"] and "SHA-256" in header
    assert "CN=becomingone cluster CA" in ca_row and " valid " in ca_row
    assert old_row.startswith("old ") and " expired " in old_row
    assert len(old_row.split()[-1]) == 64
    assert status == 1


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["init", "--dir", "{ca}"], 2, "a CA exists in"),
        (["init", "--dir", "{file}/certs"], 1, "StorageError: cannot create"),
        (["init", "--dir", ""], 2, "--dir: must not be empty"),
        (["init", "--days", "0", "--dir", "{empty}"], 2, "days: must be an integer from 1"),
        (["issue", "n1", "--dir", "{empty}"], 2, "no cluster CA in"),
        (["issue", "../n1", "--dir", "{ca}"], 2, "name: must be 1-63 letters"),
        (["issue", "ca", "--dir", "{ca}"], 2, "'ca' is the cluster CA's name"),
        (["issue", "n1", "--days", "x", "--dir", "{ca}"], 2, "--days: must be an integer"),
        (["issue", "n1", "--host", "h", "--dir", "{ca}"], 2, "only a --server"),
        (["list", "--dir", "{empty}"], 2, "no cluster CA in"),
    ],
)
def test_bad_input_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    status: int,
    message: str,
) -> None:
    """Bad values and unusable directories: one line on stderr naming the problem, exit 2
    (bad input) or 1 (the place cannot be written), and no new files."""
    (tmp_path / "file").write_text("")
    (tmp_path / "empty").mkdir()
    init_ca(tmp_path / "ca")
    places = {"ca": tmp_path / "ca", "file": tmp_path / "file", "empty": tmp_path / "empty"}
    code, out, err = certs(capsys, *(a.format(**places) for a in args))
    assert (code, out) == (status, "")
    assert message in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == ["ca.crt", "ca.key"]
    assert list((tmp_path / "empty").iterdir()) == []


def run_nats(*args: str) -> subprocess.CompletedProcess[str]:
    """Run one ``becomingone nats`` command as a subprocess (at most 60 s)."""
    command = [sys.executable, "-m", "becomingone.cli", "nats", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir with certificates in ``certs/``; servers a failed test left running from it
    are killed by pid."""
    init_ca(tmp_path / "certs")
    issue_certificate(tmp_path / "certs", "nats", server=True)
    issue_certificate(tmp_path / "certs", "n1")
    yield tmp_path
    for spec in read_state(tmp_path / "nats"):
        cmdline = Path(f"/proc/{spec.pid}/cmdline")
        if cmdline.exists() and str(tmp_path).encode() in cmdline.read_bytes():
            os.kill(spec.pid, signal.SIGKILL)


async def round_trip(urls: list[str], files: TlsFiles) -> bytes:
    """Connect with ``files``, publish one message to ourselves and return it."""
    bus = await connect_nats(urls, name="n1", tls=files)
    try:
        sub = await bus.subscribe("ssep.demo.n1")
        await bus.publish("ssep.demo.n1", b"hello")
        return await sub.next_msg(timeout=5)
    finally:
        await bus.aclose()


def test_nats_up_tls(data_dir: Path) -> None:
    """nats up --tls (certificates from DATA_DIR/certs) prints tls:// URLs; a node with its
    certificate round-trips a message; status shows them running; down stops them."""
    up = run_nats("up", "--tls", "--servers", "3", "--data-dir", str(data_dir))
    assert up.returncode == 0, up.stderr
    urls = up.stdout.split()
    assert len(urls) == 3 and all(u.startswith("tls://127.0.0.1:") for u in urls)
    try:
        files = TlsFiles.named(data_dir / "certs", "n1")
        assert asyncio.run(round_trip(urls, files)) == b"hello"
        status = run_nats("status", "--data-dir", str(data_dir))
        assert status.returncode == 0 and status.stdout.count(" running") == 3
    finally:
        down = run_nats("down", "--data-dir", str(data_dir))
    assert down.returncode == 0 and down.stdout.count(" stopped") == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls", "--certs", "{data}/nowhere"], "--certs: no server certificate"),
        (["--certs", "{data}/certs"], "--certs: only with --tls"),
        (["--tls", "--certs", "{data}/node"], "nats.crt is a node certificate"),
    ],
)
def test_nats_up_tls_bad_input(data_dir: Path, args: list[str], message: str) -> None:
    """nats up with no server certificate, --certs without --tls, or a node certificate where a
    server one belongs: exit 2 with one line, and nothing started."""
    node = data_dir / "node"  # the node certificate n1 under the server's name
    node.mkdir()
    for source, target in (("ca.crt", "ca.crt"), ("n1.crt", "nats.crt"), ("n1.key", "nats.key")):
        (node / target).write_bytes((data_dir / "certs" / source).read_bytes())
        (node / target).chmod(0o600)
    up = run_nats("up", *(a.format(data=data_dir) for a in args), "--data-dir", str(data_dir))
    assert up.returncode == 2 and message in up.stderr
    assert len(up.stderr.splitlines()) == 1 and not read_state(data_dir / "nats")


def test_issue_admin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """issue --admin makes an admin client certificate (list shows its kind); --admin with
    --server is one line, exit 2."""
    folder = str(tmp_path / "certs")
    certs(capsys, "init", "--dir", folder)
    status, out, _ = certs(capsys, "issue", "boss", "--admin", "--dir", folder)
    assert status == 0 and "(admin: clientAuth)" in out
    status, out, _ = certs(capsys, "list", "--json", "--dir", folder)
    kinds = {json.loads(line)["name"]: json.loads(line)["kind"] for line in out.splitlines()}
    assert kinds == {"ca": "ca", "boss": "admin"}
    status, _, err = certs(capsys, "issue", "x", "--admin", "--server", "--dir", folder)
    assert status == 2 and err.count("\n") == 1 and "either --server or --admin" in err
