"""A cell's data dir is never shared, forked or silently extended when broken (in-process):
the writer lock, the key and its public half, and the chain check at start."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from becomingone.errors import InputError, IntegrityError, StorageError
from becomingone.keys import NodeKey, read_public_key, write_public_key
from becomingone.runtime import Cell
from becomingone.runtime.datadir import LOCK_NAME, DataDirLock
from becomingone.runtime.sources import synthetic_phase
from tests.helpers import small_config, sql


async def feed(cell: Cell, start: int, stop: int, step: int = 50, now: float = 0.0) -> None:
    """Feed synthetic samples start … stop−1 in batches."""
    for i in range(start, stop, step):
        await cell.ingest(synthetic_phase(i, min(step, stop - i), dt=0.01), now=now + i * 0.01)


async def a_cell_with_records(data: Path) -> None:
    """A closed cell in ``data`` with a few dozen witness records."""
    cell = Cell(small_config(), data)
    await feed(cell, 0, 600)
    cell.close()


# -- one writer per data dir -------------------------------------------------------------------


def test_second_writer_in_process_is_refused_naming_the_holder(tmp_path: Path) -> None:
    """While a cell holds a data dir, a second Cell on it fails at once with a one-line
    StorageError naming this process's pid; after close the dir opens again."""
    first = Cell(small_config(), tmp_path)
    with pytest.raises(StorageError) as err:
        Cell(small_config(), tmp_path)
    message = str(err.value)
    assert f"pid {os.getpid()}" in message and "in use" in message and "\n" not in message
    holder = json.loads((tmp_path / LOCK_NAME).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] and holder["command"]
    first.close()
    Cell(small_config(), tmp_path).close()


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    """DataDirLock: a second acquire fails while held, succeeds after release (idempotent)."""
    lock = DataDirLock.acquire(tmp_path)
    with pytest.raises(StorageError, match="in use"):
        DataDirLock.acquire(tmp_path)
    lock.release()
    lock.release()
    assert not lock.held
    with DataDirLock.acquire(tmp_path) as again:
        assert again.held


async def test_failed_open_releases_the_lock(tmp_path: Path) -> None:
    """A cell that refuses to start (here: a tampered chain) leaves the dir unlocked."""
    await a_cell_with_records(tmp_path)
    sql(tmp_path / "memory.sqlite3", "UPDATE witness SET payload = '{}' WHERE seq = 3")
    with pytest.raises(IntegrityError):
        Cell(small_config(), tmp_path)
    DataDirLock.acquire(tmp_path).release()


# -- identity: node.key and node.pub -----------------------------------------------------------


def test_public_key_is_written_beside_the_key(tmp_path: Path) -> None:
    """A new cell writes node.pub (64 hex digits + newline) matching node.key."""
    cell = Cell(small_config(), tmp_path)
    text = (tmp_path / "node.pub").read_text()
    assert len(text) == 65 and text.endswith("\n")
    assert read_public_key(tmp_path / "node.pub") == cell.key.public_bytes
    assert NodeKey.load(tmp_path / "node.key").public_bytes == cell.key.public_bytes
    cell.close()


async def test_missing_key_with_a_chain_is_refused(tmp_path: Path) -> None:
    """node.key gone but the dir holds a chain: refused with how to recover, no key made."""
    await a_cell_with_records(tmp_path)
    (tmp_path / "node.key").unlink()
    with pytest.raises(StorageError) as err:
        Cell(small_config(), tmp_path)
    message = str(err.value)
    assert "node.key is missing" in message and "backup" in message and "node.pub" in message
    assert not (tmp_path / "node.key").exists()


def test_missing_key_with_only_a_public_key_is_refused(tmp_path: Path) -> None:
    """Even before any record, a dir with node.pub but no node.key is an identity: refused."""
    Cell(small_config(), tmp_path).close()
    (tmp_path / "node.key").unlink()
    with pytest.raises(StorageError, match="missing"):
        Cell(small_config(), tmp_path)


def test_key_not_matching_public_key_is_refused(tmp_path: Path) -> None:
    """A node.key replaced by another key no longer matches node.pub: refused, both ids named."""
    cell = Cell(small_config(), tmp_path)
    old_id = cell.key.id
    cell.close()
    other = NodeKey.generate()
    (tmp_path / "node.key").unlink()
    other.save(tmp_path / "node.key")
    with pytest.raises(IntegrityError) as err:
        Cell(small_config(), tmp_path)
    assert old_id in str(err.value) and other.id in str(err.value)


async def test_old_dir_without_public_key_gets_one(tmp_path: Path) -> None:
    """A data dir from before node.pub existed starts and gains node.pub from its key."""
    await a_cell_with_records(tmp_path)
    (tmp_path / "node.pub").unlink()
    cell = Cell(small_config(), tmp_path)
    assert read_public_key(tmp_path / "node.pub") == cell.key.public_bytes
    cell.close()


# -- the chain is verified at start ------------------------------------------------------------


async def test_tampered_record_refuses_to_start(tmp_path: Path) -> None:
    """A changed payload in the resumed tail: IntegrityError naming that record, how to go on."""
    await a_cell_with_records(tmp_path)
    sql(tmp_path / "memory.sqlite3", "UPDATE witness SET payload = payload || ' ' WHERE seq = 7")
    with pytest.raises(IntegrityError) as err:
        Cell(small_config(), tmp_path)
    assert err.value.index == 7 and "--accept-broken-chain" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "attack",
    [
        "DELETE FROM chain_head",
        "DELETE FROM witness WHERE seq = (SELECT MAX(seq) FROM witness)",
        "UPDATE chain_head SET signature = zeroblob(64)",
    ],
)
async def test_broken_head_refuses_to_start(tmp_path: Path, attack: str) -> None:
    """A missing head, a removed last record or a forged head signature: refused."""
    await a_cell_with_records(tmp_path)
    sql(tmp_path / "memory.sqlite3", attack)
    with pytest.raises(IntegrityError):
        Cell(small_config(), tmp_path)


async def test_accepted_break_is_witnessed_first(tmp_path: Path) -> None:
    """With accept_broken_chain the cell starts; its first new record is a META
    chain.break_accepted naming the bad record and reason; it then ingests and closes."""
    await a_cell_with_records(tmp_path)
    db = tmp_path / "memory.sqlite3"
    before = sql(db, "SELECT COUNT(*) FROM witness")[0][0]
    sql(db, "UPDATE witness SET payload = '{}' WHERE seq = 7")
    cell = Cell(small_config(), tmp_path, accept_broken_chain=True)
    first = next(cell.memory.witnesses(start=before))
    assert (first.level, first.kind) == ("meta", "chain.break_accepted")
    assert first.data()["first_bad"] == 7 and "changed" in first.data()["reason"]
    await feed(cell, 600, 800, now=50.0)
    report = cell.verify_chain()
    assert not report.ok and report.first_bad == 7  # the break stays visible
    assert cell.chain.count == cell.memory.witness_count() > before + 1
    cell.close()


def test_public_key_file_round_trip_and_bad_content(tmp_path: Path) -> None:
    """write_public_key/read_public_key round-trip 32 bytes as hex; anything else is refused
    with the file named."""
    key = NodeKey.generate()
    write_public_key(tmp_path / "node.pub", key.public_bytes)
    assert read_public_key(tmp_path / "node.pub") == key.public_bytes
    (tmp_path / "bad.pub").write_text("zz" * 32)
    with pytest.raises(InputError, match=r"bad\.pub"):
        read_public_key(tmp_path / "bad.pub")
    with pytest.raises(InputError):
        write_public_key(tmp_path / "short.pub", b"\x00" * 31)
    with pytest.raises(StorageError):
        read_public_key(tmp_path / "missing.pub")
