"""Eight processes on one ledger, and ``kill -9`` in the middle of a transaction.

On SQLite (one file) and PostgreSQL: six processes spend three wallets (two processes per
wallet, so each wallet is raced) while two co-authors vote; no wallet pays twice, the
invariant holds and a sequential replay of the chain gives the same balances. A writer killed
with SIGKILL inside a transaction, or at a random moment, leaves the ledger before or after
that transaction, never between: the chain verifies and the invariant holds.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from becomingone.choir import SpecStatus, thread_account
from tests.choir.conftest import open_ledger
from tests.choir.helpers import Community, replay
from tests.choir.workers import NOW, RULES, pause_in_commit, spender, voter, write_forever

SPAWN = multiprocessing.get_context("spawn")
SPENDERS = ["sam", "sue", "sid"]
ATTEMPTS, STAKE = 8, 100  # two processes x 8 x 100 = 1600 > the 1000 grant: 10 succeed


def setup(where: str) -> Community:
    """Thread t1 of ada and bob, three spenders and kim joined."""
    c = Community(open_ledger(where, rules=RULES), now=NOW)
    c.join("ada", "bob", "kim", *SPENDERS)
    c.thread("ada")
    c.vote("ada", c.submit("bob", stake=50), True)
    return c


def wait_for(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} did not appear in {seconds} s"
        time.sleep(0.01)


def assert_sound(c: Community) -> None:
    """Chain verified, invariant held, and a replay of the chain gives the same accounts."""
    report = c.ledger.verify()
    assert report.ok, str(report)
    assert c.ledger.totals().ok
    fresh = replay(c.ledger, RULES)
    assert fresh.accounts() == c.ledger.accounts()
    fresh.close()


def test_eight_processes_never_double_spend(backend: Callable[[], str]) -> None:
    """6 spenders (2 per wallet) and 2 voters at once: each wallet pays exactly 10 stakes."""
    where = backend()
    c = setup(where)
    out, done = SPAWN.Queue(), SPAWN.Event()
    spenders = [
        SPAWN.Process(target=spender, args=(where, n, f"{n}{k}", ATTEMPTS, STAKE, out))
        for n in SPENDERS
        for k in range(2)
    ]
    voters = [
        SPAWN.Process(target=voter, args=(where, n, done, out, 120.0)) for n in ("ada", "bob")
    ]
    for p in spenders + voters:
        p.start()
    results = [out.get(timeout=180) for _ in spenders]
    done.set()
    results += [out.get(timeout=180) for _ in voters]
    for p in spenders + voters:
        p.join(timeout=30)
        assert p.exitcode == 0
    accepted = {n: sum(len(r[1]) for r in results if r[0] == n) for n in SPENDERS}
    assert accepted == {n: 10 for n in SPENDERS}
    errors = [e for r in results if r[0] in SPENDERS for e in r[2]]
    assert len(errors) == 18 and all("insufficient funds" in e for e in errors)
    assert all(c.wallet(n) == 0 for n in SPENDERS)
    specs = [s for s in c.ledger.specs() if s.author != c.id("bob")]
    assert len(specs) == 30 and {s.status for s in specs} == {SpecStatus.DENIED}
    assert c.ledger.balance(thread_account("t1")) == 30 * STAKE
    assert_sound(c)
    c.ledger.close()


def test_kill_inside_a_transaction_leaves_it_unwritten(
    backend: Callable[[], str], tmp_path: Path
) -> None:
    """SIGKILL while a spec's writes wait for COMMIT: afterwards the spec, its escrow and its
    chain record are absent, and the next transaction goes through."""
    where = backend()
    c = setup(where)
    before = (c.ledger.accounts(), len(c.ledger.records()))
    marker = tmp_path / "in-transaction"
    child = SPAWN.Process(target=pause_in_commit, args=(where, str(marker)))
    child.start()
    wait_for(marker, 60)
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    assert (c.ledger.accounts(), len(c.ledger.records())) == before
    assert c.ledger.spec("doomed") is None
    c.submit("kim", stake=100, spec="after")
    assert c.wallet("kim") == 900
    assert_sound(c)
    c.ledger.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_kill_at_a_random_moment_leaves_a_whole_ledger(
    backend: Callable[[], str], tmp_path: Path, seed: int
) -> None:
    """A writer SIGKILLed at a random moment: every stored record is whole (chain, head and
    invariant verify) and the posts stored are exactly those the chain records."""
    where = backend()
    c = setup(where)
    marker = tmp_path / "writing"
    child = SPAWN.Process(target=write_forever, args=(where, str(marker)))
    child.start()
    wait_for(marker, 60)
    time.sleep(random.Random(seed).uniform(0.05, 0.5))
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join(timeout=30)
    posts = [r for r in c.ledger.records() if r.kind == "choir.post"]
    assert len(posts) >= 1
    assert_sound(c)
    c.post("ada", text="after the crash")
    assert c.ledger.verify().ok
    c.ledger.close()
