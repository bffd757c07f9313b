"""Process bodies for the Choir concurrency and crash tests (run with the ``spawn`` context).

Rule: each function opens its own ledger connection at ``where`` (a SQLite path or a
PostgreSQL URL), acts as named users, and reports through the queue or files it is given.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from becomingone.choir import Rules, SpecStatus
from becomingone.errors import InputError
from tests.choir.conftest import open_ledger
from tests.choir.helpers import Community

#: The rules of these tests: a one-second rate window keeps every thread's price at S0/2.
RULES = Rules(join_grant=1_000, rate_window=1.0)
NOW = 1_000.0


def spender(where: str, name: str, tag: str, attempts: int, stake: int, out: Any) -> None:
    """Submit ``attempts`` specs of ``stake`` as ``name``; put (name, accepted ids, errors)."""
    c = Community(open_ledger(where, rules=RULES), now=NOW)
    accepted, errors = [], []
    for i in range(attempts):
        try:
            accepted.append(c.submit(name, "t1", stake=stake, spec=f"{tag}-{i}"))
        except InputError as exc:
            errors.append(str(exc))
    c.ledger.close()
    out.put((name, accepted, errors))


def voter(where: str, name: str, done: Any, out: Any, timeout: float) -> None:
    """Deny every pending spec as ``name`` until the spenders are done and none is pending."""
    c = Community(open_ledger(where, rules=RULES), now=NOW)
    votes, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        finished = done.is_set()
        pending = c.ledger.specs(status=SpecStatus.PENDING)
        for spec in pending:
            try:
                c.vote(name, spec.id, False)
                votes += 1
            except InputError:
                pass  # the other voter decided it first, or this one voted already
        if finished and not pending:
            break
        time.sleep(0.005)
    c.ledger.close()
    out.put((name, votes, []))


def pause_in_commit(where: str, marker: str) -> None:
    """Submit one spec as ``kim`` whose transaction stops just before COMMIT (and waits to be
    killed), after writing ``marker``."""
    armed = False

    def hook() -> None:
        if armed:
            Path(marker).write_text("in transaction")
            time.sleep(120)

    ledger = open_ledger(where, rules=RULES, before_commit=hook)
    armed = True
    Community(ledger, now=NOW).submit("kim", "t1", stake=100, spec="doomed")


def write_forever(where: str, marker: str) -> None:
    """Post as ``ada`` in a tight loop (and say so in ``marker`` after the first commit)."""
    c = Community(open_ledger(where, rules=RULES), now=NOW)
    for i in range(100_000):
        c.post("ada", "t1", text=f"message {i}")
        if i == 0:
            Path(marker).write_text("writing")
