"""Random users, threads, specs, votes, expiries and divestments against a plain model.

A ``RuleBasedStateMachine`` drives a real ledger and a dictionary model written independently
of the library's rules. After every step every balance, co-author set and spec status must
match, the supply invariant must hold, and the ledger must refuse exactly the transactions the
model refuses; any transaction of the chain sent again is a no-op. It runs on SQLite, and a
shorter run on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from becomingone.choir import TOTAL_SUPPLY, Ledger, Rules, SqliteLedger, Transaction, price
from becomingone.errors import InputError
from tests.choir.conftest import LEDGER_KEY
from tests.choir.helpers import Community
from tests.choir.pgserver import PgServer

NAMES = ["ada", "bob", "cy", "dee", "eve", "fay"]
THREADS = ["t1", "t1", "t1", "t2", "t3"]  # mostly the thread that exists
RULES = Rules(join_grant=1_000)
DAY = 86_400.0


class Model:
    """The rules of DESIGN.md §7 in plain dictionaries (no code shared with the library)."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.treasury = TOTAL_SUPPLY
        self.wallets: dict[str, int] = {}
        self.threads: dict[str, dict[str, Any]] = {}
        self.specs: dict[str, dict[str, Any]] = {}

    def price(self, tid: str) -> int:
        t = self.threads[tid]
        since = self.now - RULES.rate_window
        recent = sum(1 for at in t["messages"] if at >= since)
        return price(balance=t["balance"], coauthors=len(t["coauthors"]), messages=recent)

    def join(self, who: str) -> bool:
        if who in self.wallets or self.treasury < RULES.join_grant:
            return False
        self.treasury -= RULES.join_grant
        self.wallets[who] = RULES.join_grant
        return True

    def thread(self, who: str, tid: str) -> bool:
        if who not in self.wallets or tid in self.threads:
            return False
        self.threads[tid] = {"balance": 0, "coauthors": {who}, "messages": []}
        return True

    def post(self, who: str, tid: str) -> bool:
        t = self.threads.get(tid)
        if who not in self.wallets or t is None or who not in t["coauthors"]:
            return False
        t["messages"].append(self.now)
        return True

    def submit(self, who: str, tid: str, sid: str, stake: int) -> bool:
        t = self.threads.get(tid)
        if who not in self.wallets or t is None or who in t["coauthors"]:
            return False
        if stake < self.price(tid) or self.wallets[who] < stake:
            return False
        self.wallets[who] -= stake
        self.specs[sid] = {
            "thread": tid,
            "author": who,
            "stake": stake,
            "deadline": self.now + RULES.vote_window,
            "status": "pending",
            "votes": {},
        }
        return True

    def vote(self, who: str, sid: str, approve: bool) -> bool:
        s = self.specs.get(sid)
        if who not in self.wallets or s is None or s["status"] != "pending":
            return False
        t = self.threads[s["thread"]]
        if who not in t["coauthors"] or self.now >= s["deadline"] or who in s["votes"]:
            return False
        if who == s["author"]:
            return False
        s["votes"][who] = approve
        if self.all_voted(s):
            self.settle(s)
        return True

    def all_voted(self, s: dict[str, Any]) -> bool:
        """Every co-author but the spec's author has voted."""
        return self.threads[s["thread"]]["coauthors"] - {s["author"]} <= set(s["votes"])

    def close(self, who: str, sid: str) -> bool:
        s = self.specs.get(sid)
        if who not in self.wallets or s is None or s["status"] != "pending":
            return False
        if self.now < s["deadline"] and not self.all_voted(s):
            return False
        self.settle(s)
        return True

    def settle(self, s: dict[str, Any]) -> None:
        t, stake = self.threads[s["thread"]], s["stake"]
        yes = [v for v, a in s["votes"].items() if a]
        n = len(s["votes"])
        event(f"outcome {n and len(yes) * 3 // n}/3 of {n}")
        if n == 0:
            s["status"] = "expired"
            self.wallets[s["author"]] += stake
        elif len(yes) == n:
            s["status"] = "approved"
            for v in yes:
                self.wallets[v] += stake // n
            t["balance"] += stake - (stake // n) * n
            t["coauthors"].add(s["author"])
            t["messages"].append(self.now)
        elif not yes:
            s["status"] = "denied"
            t["balance"] += stake
        else:
            s["status"] = "mixed"
            self.treasury += stake * len(yes) // n
            t["balance"] += stake - stake * len(yes) // n

    def divest(self, who: str, tid: str) -> bool:
        t = self.threads.get(tid)
        if who not in self.wallets or t is None or who not in t["coauthors"]:
            return False
        event(f"divest of {len(t['coauthors'])}")
        share = t["balance"] // len(t["coauthors"])
        t["balance"] -= share
        self.wallets[who] += share
        t["coauthors"].discard(who)
        return True

    def balances(self) -> dict[str, int]:
        """Every non-zero balance by account name (user names for wallets)."""
        out = {"treasury": self.treasury}
        out.update({f"wallet:{w}": b for w, b in self.wallets.items()})
        out.update({f"thread:{t}": v["balance"] for t, v in self.threads.items()})
        out.update(
            {f"escrow:{i}": s["stake"] for i, s in self.specs.items() if s["status"] == "pending"}
        )
        return {k: v for k, v in out.items() if v}


class LedgerMachine(RuleBasedStateMachine):
    """Drives a ledger and the model with the same random transactions."""

    open_ledger: ClassVar[Callable[[], Ledger]]

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.c = Community(self.open_ledger(), now=self.model.now)
        self.n = 0

    def teardown(self) -> None:
        self.c.ledger.close()

    def check(self, allowed: bool, act: Callable[[], object]) -> None:
        """The ledger accepts iff the model did."""
        try:
            act()
        except InputError as exc:
            assert not allowed, f"ledger refused what the model allows: {exc}"
        else:
            assert allowed, "ledger accepted what the model refuses"

    @initialize()
    def community(self) -> None:
        """Every history starts with five users and thread t1 of ada and bob (bob's
        spec approved), so that the random steps reach votes and outcomes often."""
        for who in NAMES[:5]:
            self.check(self.model.join(who), lambda w=who: self.c.join(w))  # type: ignore[misc]
        self.check(self.model.thread("ada", "t1"), lambda: self.c.thread("ada", "t1"))
        self.submit("bob", "t1", 50)
        self.vote(pick=0, voter=0, approve=True, stray=False)

    @rule(who=st.sampled_from(NAMES))
    def join(self, who: str) -> None:
        self.check(self.model.join(who), lambda: self.c.join(who))

    @rule(who=st.sampled_from(NAMES), tid=st.sampled_from(THREADS))
    def thread(self, who: str, tid: str) -> None:
        self.check(self.model.thread(who, tid), lambda: self.c.thread(who, tid))

    @rule(who=st.sampled_from(NAMES), tid=st.sampled_from(THREADS))
    def post(self, who: str, tid: str) -> None:
        self.check(self.model.post(who, tid), lambda: self.c.post(who, tid))

    @rule(who=st.sampled_from(NAMES), tid=st.sampled_from(THREADS), stake=st.integers(1, 600))
    def submit(self, who: str, tid: str, stake: int) -> None:
        self.n += 1
        sid = f"s{self.n}"
        allowed = self.model.submit(who, tid, sid, stake)
        self.check(allowed, lambda: self.c.submit(who, tid, stake=stake, spec=sid))

    def pick_spec(self, pick: int, any_spec: bool) -> str:
        """Mostly a pending spec; sometimes any id, decided or unknown."""
        pending = sorted(i for i, s in self.model.specs.items() if s["status"] == "pending")
        if any_spec or not pending:
            return f"s{pick % (self.n + 1)}"
        return pending[pick % len(pending)]

    def pick_voter(self, sid: str, pick: int, stray: bool) -> str:
        """Mostly a co-author of the spec's thread; sometimes anyone."""
        spec = self.model.specs.get(sid)
        coauthors = sorted(self.model.threads[spec["thread"]]["coauthors"]) if spec else []
        return (
            coauthors[pick % len(coauthors)]
            if coauthors and not stray
            else NAMES[pick % len(NAMES)]
        )

    @rule(
        pick=st.integers(0, 50),
        voter=st.integers(0, 9),
        approve=st.booleans(),
        stray=st.sampled_from([False, False, False, True]),
    )
    def vote(self, pick: int, voter: int, approve: bool, stray: bool) -> None:
        sid = self.pick_spec(pick, stray)
        who = self.pick_voter(sid, voter, stray)
        self.check(self.model.vote(who, sid, approve), lambda: self.c.vote(who, sid, approve))

    @rule(who=st.sampled_from(NAMES), pick=st.integers(0, 50), stray=st.booleans())
    def close(self, who: str, pick: int, stray: bool) -> None:
        sid = self.pick_spec(pick, stray)
        self.check(self.model.close(who, sid), lambda: self.c.close(who, sid))

    @rule(who=st.sampled_from(NAMES), tid=st.sampled_from(THREADS))
    def divest(self, who: str, tid: str) -> None:
        self.check(self.model.divest(who, tid), lambda: self.c.divest(who, tid))

    @rule(pick=st.integers(0, 10_000))
    def replay(self, pick: int) -> None:
        """Any transaction of the chain sent again is a no-op (the invariants check nothing
        moved)."""
        records = self.c.ledger.records()
        record = records[pick % len(records)]
        receipt = self.c.ledger.submit(Transaction.from_json(record.data()), now=self.model.now)
        assert receipt.replayed and receipt.seq == record.seq

    @rule(seconds=st.sampled_from([0.5, 3_600.0, DAY, 3 * DAY, 7 * DAY]))
    def advance(self, seconds: float) -> None:
        self.model.now += seconds
        self.c.now = self.model.now

    @invariant()
    def balances_match(self) -> None:
        names = {self.c.id(n): n for n in NAMES}
        stored = {}
        for account in self.c.ledger.accounts():
            kind, _, ident = account.name.partition(":")
            name = f"wallet:{names[ident]}" if kind == "wallet" else account.name
            if account.balance:
                stored[name] = account.balance
        assert stored == self.model.balances()
        assert self.c.ledger.totals().ok

    @invariant()
    def threads_and_specs_match(self) -> None:
        for thread in self.c.ledger.threads():
            want = {self.c.id(n) for n in self.model.threads[thread.id]["coauthors"]}
            assert set(thread.coauthors) == want
        for spec in self.c.ledger.specs():
            assert spec.status.value == self.model.specs[spec.id]["status"]


def test_ledger_matches_the_model_on_sqlite() -> None:
    """SQLite: many random histories, the ledger equal to the model after every step."""
    LedgerMachine.open_ledger = staticmethod(  # type: ignore[assignment]
        lambda: SqliteLedger(":memory:", LEDGER_KEY, rules=RULES, now=0.0)
    )
    run_state_machine_as_test(
        LedgerMachine, settings=settings(max_examples=60, stateful_step_count=50)
    )


def test_ledger_matches_the_model_on_postgres(pg_server: PgServer) -> None:
    """PostgreSQL: a shorter run of the same machine, each history in a fresh database."""
    from becomingone.choir import PostgresLedger

    LedgerMachine.open_ledger = staticmethod(  # type: ignore[assignment]
        lambda: PostgresLedger(pg_server.create_database(), LEDGER_KEY, rules=RULES, now=0.0)
    )
    run_state_machine_as_test(
        LedgerMachine, settings=settings(max_examples=8, stateful_step_count=30)
    )


def test_the_machine_can_fail() -> None:
    """The model is not vacuous: a ledger granting 1 CHOIR less on join is caught."""
    LedgerMachine.open_ledger = staticmethod(  # type: ignore[assignment]
        lambda: SqliteLedger(":memory:", LEDGER_KEY, rules=Rules(join_grant=999), now=0.0)
    )
    try:
        run_state_machine_as_test(
            LedgerMachine, settings=settings(max_examples=20, stateful_step_count=5, database=None)
        )
    except AssertionError:
        return
    raise AssertionError("a wrong grant went unnoticed")
