"""Choir ledger throughput: signed transactions per second with the invariant checked.

Each round is three transactions on one thread — a co-author's post, an outsider's spec
(stake 50) and the co-author's vote that decides it (denied: stake to the thread). Clients
sign beforehand; the timed part is what a server does with each one: parse the JSON and verify
the actor's signature, then one database transaction that runs the rules, writes the effects
and a signed chain record and head, and checks treasury + Σ wallets + Σ threads + Σ escrow =
supply before it commits. The rate window is one second so the price stays at S0/2 however
rich the thread grows (the price formula is not what is measured).

Baselines, measured in the same run: the same number of bare SQLite write transactions (BEGIN
IMMEDIATE, one INSERT, COMMIT; WAL, synchronous=NORMAL like the ledger) and the ledger's
crypto alone (verify a transaction, sign a chain record and head). The ratio columns are each rate
over the bare-transaction rate and over the crypto-alone rate (the ceiling). PostgreSQL runs
on a throwaway server started for the run (initdb + pg_ctl on a loopback port, fsync on,
stopped by PID), TCP on 127.0.0.1: once as configured (each commit waits for its WAL fsync)
and once with ``synchronous_commit=off`` ("pg async": the analogue of SQLite's
``synchronous=NORMAL``, where a crash of the machine may lose the last commits but never
leaves one half-applied).

Run: ``.venv/bin/python bench/choir.py [--quick] [--rounds N] [--no-postgres] [--json]``
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.choir.pgserver

from tests.choir.helpers import Community
from tests.choir.pgserver import find_bin, start_postgres

from becomingone.choir import (
    Ledger,
    PostgresLedger,
    Rules,
    SqliteLedger,
    Transaction,
    TxKind,
    content_hash,
)
from becomingone.keys import NodeKey
from becomingone.witnessing import Level, WitnessChain

RULES = Rules(join_grant=10_000_000, rate_window=1.0)
KEY = NodeKey.from_seed(b"\x05" * 32)


def round_docs(c: Community, rounds: int) -> list[dict[str, Any]]:
    """The signed transactions of ``rounds`` rounds, as the JSON a client would send."""
    docs = []
    for i in range(rounds):
        post = {"thread": "t1", "message": f"m{i}", "content_hash": content_hash(f"note {i}")}
        spec = {"thread": "t1", "spec": f"s{i}", "content_hash": content_hash(f"s{i}"), "stake": 50}
        docs += [
            c.tx("ada", TxKind.POST, post).to_json(),
            c.tx("bob", TxKind.SUBMIT, spec).to_json(),
            c.tx("ada", TxKind.VOTE, {"spec": f"s{i}", "approve": False}).to_json(),
        ]
    return docs


def ledger_rate(ledger: Ledger, rounds: int) -> tuple[float, bool]:
    """Transactions/s the ledger accepts (parse + verify the signature + apply + commit) over
    ``rounds`` rounds of post + submit + vote; and the final chain and invariant check."""
    c = Community(ledger, now=1_000.0)
    c.join("ada", "bob")
    c.thread("ada")
    docs = round_docs(c, rounds)
    start = time.perf_counter()
    for i, doc in enumerate(docs):
        ledger.submit(Transaction.from_json(doc), now=1_000.0 + i * 0.001)
    elapsed = time.perf_counter() - start
    ok = ledger.verify().ok and ledger.totals().ok
    return len(docs) / elapsed, ok


def bare_sqlite_rate(path: Path, n: int) -> float:
    """Write transactions/s of one INSERT each (the ledger's pragmas)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)")
    start = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, ?)", (i, "x" * 400))
        db.execute("COMMIT")
    rate = n / (time.perf_counter() - start)
    db.close()
    return rate


def crypto_rate(n: int) -> float:
    """The ledger's signatures alone: verify a transaction, sign its chain record and head."""
    user = NodeKey.from_seed(b"\x06" * 32)
    chain = WitnessChain(KEY)
    body = {"thread": "t1", "message": "m", "content_hash": content_hash("x")}
    docs = [Transaction.sign(user, TxKind.POST, body, tx_id=f"x{i}").to_json() for i in range(n)]
    start = time.perf_counter()
    for i, doc in enumerate(docs):
        tx = Transaction.from_json(doc)  # verifies the actor's signature
        chain.append(Level.MESO, "choir.post", tx.to_json(), now=float(i))
        chain.head()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred transactions")
    parser.add_argument("--rounds", type=int, help="rounds of 3 transactions (default 1000)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rounds = args.rounds or (100 if args.quick else 1000)
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bare = bare_sqlite_rate(Path(tmp) / "bare.sqlite3", 3 * rounds)
        rows["crypto only"] = crypto_rate(3 * rounds)
        rows["bare sqlite tx"] = bare
        ledger = SqliteLedger(Path(tmp) / "ledger.sqlite3", KEY, rules=RULES, now=0.0)
        rows["ledger sqlite"], ok = ledger_rate(ledger, rounds)
        ledger.close()
        checks = {"sqlite": ok}
    if not args.no_postgres and find_bin() is not None:
        server = start_postgres(fsync=True)
        try:
            pg = PostgresLedger(server.create_database(), KEY, rules=RULES, now=0.0)
            rows["ledger postgresql"], checks["postgresql"] = ledger_rate(pg, rounds)
            pg.close()
            # The analogue of SQLite's synchronous=NORMAL: commit without waiting for fsync.
            url = server.create_database() + "?options=-c%20synchronous_commit%3Doff"
            pg = PostgresLedger(url, KEY, rules=RULES, now=0.0)
            rows["ledger pg async"], checks["pg async"] = ledger_rate(pg, rounds)
            pg.close()
        finally:
            server.stop()
    if args.json:
        print(json.dumps({"rounds": rounds, "tx_per_s": rows, "verified": checks}))
        return
    print(f"{3 * rounds} transactions per store ({rounds} rounds of post + submit + vote)")
    crypto = rows["crypto only"]
    print(f"{'':20} {'tx/s':>10} {'x bare sqlite tx':>17} {'x crypto only':>14}")
    for name, rate in rows.items():
        print(f"{name:20} {rate:10.0f} {rate / bare:17.3f} {rate / crypto:14.3f}")
    print("chain and invariant verified after the run:", checks)


if __name__ == "__main__":
    main()
