"""Fixtures of the Choir tests: a throwaway PostgreSQL server and a ledger per adapter.

``make_ledger`` is parametrised over ``sqlite`` and ``postgres``: every test that takes it runs
against both adapters (the conformance suite). The PostgreSQL server is started once per
session (initdb + pg_ctl, see ``pgserver.py``) and stopped by PID at the end.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from becomingone.choir import Ledger, PostgresLedger, Rules, SqliteLedger
from becomingone.keys import NodeKey
from tests.api.browserhelpers import free_port
from tests.choir.pgserver import PgServer, find_bin, start_postgres

REPO = Path(__file__).resolve().parents[2]

LEDGER_KEY = NodeKey.from_seed(b"\x07" * 32)
MakeLedger = Callable[..., Ledger]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL server for the session (skipped if it is not installed)."""
    if find_bin() is None:
        pytest.skip("PostgreSQL is not installed: run scripts/install-system.sh")
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """A function returning a fresh store location for the parametrised adapter."""
    if request.param == "sqlite":
        counter = iter(range(1_000_000))
        return lambda: str(tmp_path / f"ledger{next(counter)}.sqlite3")
    server: PgServer = request.getfixturevalue("pg_server")
    return server.create_database


def open_ledger(where: str, **kwargs: Any) -> Ledger:
    """Open the ledger at ``where`` (a file path or a postgresql:// URL) with the test key."""
    kwargs.setdefault("now", 0.0)
    key = kwargs.pop("key", LEDGER_KEY)
    if where.startswith("postgresql://"):
        return PostgresLedger(where, key, **kwargs)
    return SqliteLedger(where, key, **kwargs)


@pytest.fixture
def make_ledger(backend: Callable[[], str]) -> Iterator[MakeLedger]:
    """``make_ledger(where=None, rules=..., ...)``: a ledger (a fresh store unless ``where``)."""
    opened: list[Ledger] = []

    def make(where: str | None = None, *, rules: Rules | None = None, **kwargs: Any) -> Ledger:
        ledger = open_ledger(where or backend(), rules=rules or Rules(), **kwargs)
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


def location(ledger: Ledger) -> str:
    """Where ``ledger`` lives (to open a second connection to it)."""
    if isinstance(ledger, PostgresLedger):
        return ledger.url
    assert isinstance(ledger, SqliteLedger)
    return str(ledger.path)


@pytest.fixture
def qdrant_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a Qdrant REST double (``qdrant_double.py``: a test double of the server's
    REST API over qdrant-client's local mode, not a Qdrant server) on a free loopback port,
    started as a process and stopped by its PID."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "qdrant-double.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.choir.qdrant_double",
                str(tmp_path / "qdrant"),
                f"{port}",
            ],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                ended = f"the Qdrant double ended with {proc.returncode}"
                raise RuntimeError(f"{ended}: {log.read_text()}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Qdrant double did not answer on {url}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
