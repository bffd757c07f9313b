"""HTTPS when the config says so (`api.tls_dir`): `up --serve` answers only TLS clients that
trust the cluster CA, the event stream runs over wss, `witness verify --url https://... --ca`
works; a bad certificate setting is refused before anything starts or is written."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from becomingone.api import CellClient
from becomingone.certs import init_ca, issue_certificate
from becomingone.errors import InputError, TransportError
from tests.api.test_e2e import CLI, free_port
from tests.api.test_events import take

pytestmark = pytest.mark.timeout(120)


def tls_config(tmp_path: Path, name: str = "api") -> tuple[Path, Path]:
    """A CA with a server certificate `api` and a node certificate `n1`; a config serving
    HTTPS with certificate ``name``. Returns (config file, CA certificate)."""
    certs = tmp_path / "certs"
    init_ca(certs)
    issue_certificate(certs, "api", server=True)
    issue_certificate(certs, "n1")
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"becomingone:\n  api:\n    tls_dir: {certs}\n    tls_name: {name}\n")
    return config, certs / "ca.crt"


@pytest.fixture
def https_cell(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`up --serve` with TLS on a free port, stopped by PID: (https URL, CA certificate)."""
    config, ca = tls_config(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "up", "--config", str(config), "--data-dir", str(tmp_path / "data"),
         "--serve", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    try:
        with CellClient(url, ca=ca) as probe:
            end = time.monotonic() + 60.0
            while True:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                try:
                    probe.node()
                    break
                except TransportError:
                    assert time.monotonic() < end, "the HTTPS API did not come up"
                    time.sleep(0.1)
        yield url, ca
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_https_answers_clients_that_trust_the_ca(https_cell: tuple[str, Path]) -> None:
    """A client trusting the cluster CA reads the cell; one trusting only the system store
    is refused by certificate verification; plain HTTP on the port gets no answer."""
    url, ca = https_cell
    with CellClient(url, ca=ca) as client:
        assert client.node().running and client.verify().ok
    with CellClient(url) as system, pytest.raises(TransportError, match="CERTIFICATE_VERIFY"):
        system.node()
    with pytest.raises(httpx.HTTPError):
        httpx.get(url.replace("https", "http") + "/api/v1/node", timeout=5.0)


async def test_the_event_stream_runs_over_wss(https_cell: tuple[str, Path]) -> None:
    """The event stream of an https API is reached over wss with the same CA."""
    url, ca = https_cell
    client = CellClient(url, ca=ca)
    stream = client.events(types=["tick"])
    first = await take(stream, 2)
    assert first[0]["type"] == "resumed" and first[1]["type"] == "tick"
    await stream.aclose()  # type: ignore[attr-defined]
    client.close()
    await asyncio.sleep(0)


def test_witness_verify_over_https(https_cell: tuple[str, Path]) -> None:
    """`witness verify --url https://... --ca ca.crt` verifies; without --ca it fails with
    one line naming the certificate check."""
    url, ca = https_cell
    ok = subprocess.run(
        [*CLI, "witness", "verify", "--url", url, "--ca", str(ca)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0 and "chain verified" in ok.stdout, ok.stderr
    bad = subprocess.run(
        [*CLI, "witness", "verify", "--url", url], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("command", "name", "message"),
    [
        (["up", "--serve", "0"], "n1", "not server"),
        (["cluster", "--nodes", "2", "--serve", "0"], "n1", "not server"),
        (["serve", "--listen", "0"], "missing", "missing.crt"),
    ],
)
def test_a_bad_certificate_setting_is_refused_first(
    tmp_path: Path, command: list[str], name: str, message: str
) -> None:
    """A node (client) certificate or a missing one as the API's: exit 2, one line naming
    it, and no data dir created."""
    config, _ = tls_config(tmp_path, name)
    data = tmp_path / "data"
    done = subprocess.run(
        [*CLI, *command, "--config", str(config), "--data-dir", str(data), "--duration", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not data.exists()


def test_a_bad_ca_file_is_an_input_error(tmp_path: Path) -> None:
    """CellClient(ca=...) with a file that is not a certificate names `ca`."""
    junk = tmp_path / "ca.crt"
    junk.write_text("not a certificate")
    with pytest.raises(InputError, match="ca"):
        CellClient("https://127.0.0.1:1", ca=junk)
