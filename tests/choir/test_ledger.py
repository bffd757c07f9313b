"""The ledger conformance suite: every Choir rule, on the SQLite and the PostgreSQL adapter.

Each test takes ``make_ledger`` (parametrised over both adapters in conftest.py) and checks one
rule of DESIGN.md §7 through the public ``Ledger`` protocol: balances, co-authors, spec states,
the chain and the invariant, and the one-line error a refused transaction gets.
"""

from __future__ import annotations

import concurrent.futures
import threading

import pytest

from becomingone.choir import (
    TOTAL_SUPPLY,
    TREASURY,
    Rules,
    SpecStatus,
    TxKind,
    escrow,
    thread_account,
)
from becomingone.choir import sql as choir_sql
from becomingone.choir.model import Mint
from becomingone.errors import InputError, IntegrityError
from becomingone.keys import NodeKey
from tests.choir.conftest import MakeLedger, location
from tests.choir.helpers import Community

GRANT = 1_000
DAY = 86_400.0


def community(make_ledger: MakeLedger, *names: str, **rules: object) -> Community:
    """A fresh ledger with ``names`` joined."""
    c = Community(make_ledger(rules=Rules(**rules)))  # type: ignore[arg-type]
    c.join(*names)
    return c


def with_coauthors(make_ledger: MakeLedger, *names: str) -> Community:
    """Thread t1 whose co-authors are ``names`` (the first creates it, each next one is
    approved in by everyone before), plus an outsider ``zed``; thread balance stays 0."""
    c = community(make_ledger, *names, "zed")
    c.thread(names[0])
    for i, name in enumerate(names[1:], start=1):
        spec = c.submit(name, stake=50 * i)
        for voter in names[:i]:
            c.vote(voter, spec, True)
    assert c.ledger.thread("t1").coauthors == tuple(sorted(c.id(n) for n in names))
    return c


def test_genesis_mints_the_supply_into_the_treasury_once(make_ledger: MakeLedger) -> None:
    """A new ledger holds TOTAL_SUPPLY in the treasury; reopening it does not mint again."""
    ledger = make_ledger()
    assert ledger.balance(TREASURY) == TOTAL_SUPPLY
    again = make_ledger(location(ledger))
    assert again.totals().total == TOTAL_SUPPLY and len(again.records()) == 1
    assert again.verify().ok


def test_a_ledger_opened_with_another_key_is_refused(make_ledger: MakeLedger) -> None:
    """The chain is signed by one key: opening the store with another names the parameter."""
    ledger = make_ledger()
    with pytest.raises(InputError, match="public_key: the ledger was created with"):
        make_ledger(location(ledger), key=NodeKey.from_seed(b"\x01" * 32))


def test_a_ledger_opened_with_other_rules_is_refused(make_ledger: MakeLedger) -> None:
    """A ledger keeps the rules it was created with: another join grant or window is refused."""
    ledger = make_ledger()
    with pytest.raises(InputError, match="join_grant: the ledger was created with 1000, not 5"):
        make_ledger(location(ledger), rules=Rules(join_grant=5))
    with pytest.raises(InputError, match=r"vote_window: the ledger was created with 604800\.0"):
        make_ledger(location(ledger), rules=Rules(vote_window=60.0))


def test_join_grants_from_the_treasury(make_ledger: MakeLedger) -> None:
    """Joining moves the grant from the treasury; a second join or a taken name is refused."""
    c = community(make_ledger, "ada", join_grant=GRANT)
    assert c.wallet("ada") == GRANT
    assert c.ledger.balance(TREASURY) == TOTAL_SUPPLY - GRANT
    with pytest.raises(InputError, match="already joined"):
        c.join("ada")
    with pytest.raises(InputError, match="name: 'ada' is taken"):
        c.do("bob", TxKind.JOIN, {"name": "ada"})
    assert c.ledger.user_named("ada").id == c.id("ada")


def test_unknown_user_is_refused(make_ledger: MakeLedger) -> None:
    """A key that never joined cannot open a thread."""
    c = community(make_ledger)
    with pytest.raises(InputError, match="actor: unknown user"):
        c.thread("ghost")


def test_a_replayed_id_is_a_no_op(make_ledger: MakeLedger) -> None:
    """The same signed transaction twice: applied once, the second receipt says replayed."""
    c = community(make_ledger, "ada", "bob")
    c.thread("ada")
    tx = c.tx(
        "bob", TxKind.SUBMIT, {"thread": "t1", "spec": "s", "content_hash": "a" * 64, "stake": 60}
    )
    first = c.ledger.submit(tx, now=c.now)
    second = c.ledger.submit(tx, now=c.now + 5)
    assert not first.replayed and second.replayed and second.seq == first.seq
    assert c.wallet("bob") == GRANT - 60 and len(c.ledger.records()) == 5


def test_a_reused_id_with_other_content_is_refused(make_ledger: MakeLedger) -> None:
    """An id names one transaction: other content under it is an error, nothing changes."""
    c = community(make_ledger, "ada")
    c.do("ada", TxKind.THREAD, {"thread": "t1", "title": "one"}, tx_id="x1")
    with pytest.raises(InputError, match="id: x1 was used by a different transaction"):
        c.do("ada", TxKind.THREAD, {"thread": "t2", "title": "two"}, tx_id="x1")
    assert [t.id for t in c.ledger.threads()] == ["t1"]


def test_a_thread_starts_empty_with_its_creator(make_ledger: MakeLedger) -> None:
    """The creator is the first co-author, the balance 0 and the price S0/2 = 50."""
    c = community(make_ledger, "ada")
    c.thread("ada", title="on time")
    t = c.ledger.thread("t1")
    assert (t.title, t.coauthors, t.balance) == ("on time", (c.id("ada"),), 0)
    assert c.ledger.price("t1", now=c.now) == 50
    with pytest.raises(InputError, match="thread: thread t1 exists"):
        c.thread("ada")


def test_unknown_thread_is_refused_everywhere(make_ledger: MakeLedger) -> None:
    """Post, submit, divest and price on a thread that does not exist name the thread."""
    c = community(make_ledger, "ada")
    for act in (
        lambda: c.post("ada", "nope"),
        lambda: c.submit("ada", "nope", stake=60),
        lambda: c.divest("ada", "nope"),
        lambda: c.ledger.price("nope", now=0.0),
    ):
        with pytest.raises(InputError, match="thread: unknown thread nope"):
            act()


def test_coauthors_post_freely_and_others_cannot(make_ledger: MakeLedger) -> None:
    """A co-author's post costs nothing; anyone else is told to submit a spec."""
    c = community(make_ledger, "ada", "bob")
    c.thread("ada")
    c.post("ada")
    c.post("ada")
    assert c.wallet("ada") == GRANT and c.ledger.totals().ok
    with pytest.raises(InputError, match="actor: bob is not a co-author of t1: submit a spec"):
        c.post("bob")


def test_submit_moves_the_stake_into_escrow(make_ledger: MakeLedger) -> None:
    """A spec's stake leaves the wallet for the spec's escrow account; the spec is pending."""
    c = community(make_ledger, "ada", "bob")
    c.thread("ada")
    spec = c.submit("bob", stake=70)
    assert c.wallet("bob") == GRANT - 70 and c.ledger.balance(escrow(spec)) == 70
    assert c.ledger.totals().escrow == 70
    assert c.ledger.spec(spec).status is SpecStatus.PENDING
    assert c.ledger.spec(spec).deadline == c.now + 7 * DAY


def test_submit_refusals(make_ledger: MakeLedger) -> None:
    """Below the price, beyond the wallet, by a co-author: refused, nothing moves."""
    c = community(make_ledger, "ada", "bob")
    c.thread("ada")
    with pytest.raises(InputError, match="stake: 49 is below the thread's price 50"):
        c.submit("bob", stake=49)
    with pytest.raises(
        InputError, match=r"stake: insufficient funds: wallet:\w+ has 1000, needs 1001"
    ):
        c.submit("bob", stake=GRANT + 1)
    with pytest.raises(InputError, match="ada is a co-author of t1: post instead"):
        c.submit("ada", stake=60)
    assert c.wallet("bob") == GRANT and c.ledger.specs() == []


def test_unanimous_approval_publishes_and_splits_the_stake(make_ledger: MakeLedger) -> None:
    """All co-authors approve: published, author joins, stake split equally, remainder to the
    thread."""
    c = with_coauthors(make_ledger, "ada", "bob")
    ada, bob = c.wallet("ada"), c.wallet("bob")
    spec = c.submit("zed", stake=101)
    c.vote("ada", spec, True)
    assert c.ledger.spec(spec).status is SpecStatus.PENDING
    receipt = c.vote("bob", spec, True)
    assert c.ledger.spec(spec).status is SpecStatus.APPROVED
    assert (c.wallet("ada") - ada, c.wallet("bob") - bob) == (50, 50)
    assert c.ledger.balance(thread_account("t1")) == 1
    assert c.id("zed") in c.ledger.thread("t1").coauthors
    assert c.ledger.balance(escrow(spec)) == 0 and c.ledger.totals().escrow == 0
    assert any(type(e).__name__ == "PutMessage" for e in receipt.effects)


def test_denied_without_approvals_sends_the_stake_to_the_thread(make_ledger: MakeLedger) -> None:
    """Every voter denies: the whole stake goes to the thread; the author stays outside."""
    c = with_coauthors(make_ledger, "ada", "bob")
    spec = c.submit("zed", stake=90)
    c.vote("ada", spec, False)
    c.vote("bob", spec, False)
    assert c.ledger.spec(spec).status is SpecStatus.DENIED
    assert c.ledger.balance(thread_account("t1")) == 90
    assert c.id("zed") not in c.ledger.thread("t1").coauthors


def test_mixed_votes_send_the_approved_share_to_the_treasury(make_ledger: MakeLedger) -> None:
    """1 of 3 approves: stake × 1/3 (floor) to the treasury, the rest to the thread."""
    c = with_coauthors(make_ledger, "ada", "bob", "cy")
    treasury = c.ledger.balance(TREASURY)
    spec = c.submit("zed", stake=100)
    c.vote("ada", spec, True)
    c.vote("bob", spec, False)
    c.vote("cy", spec, False)
    assert c.ledger.spec(spec).status is SpecStatus.MIXED
    assert c.ledger.balance(TREASURY) - treasury == 33
    assert c.ledger.balance(thread_account("t1")) == 67


def test_expired_without_votes_is_refunded(make_ledger: MakeLedger) -> None:
    """No votes in the window: closing before the deadline is refused, after it refunds."""
    c = with_coauthors(make_ledger, "ada")
    spec = c.submit("zed", stake=80)
    with pytest.raises(InputError, match=f"spec: spec {spec} is open for votes until"):
        c.close("ada", spec)
    c.now += 7 * DAY
    c.close("zed", spec)
    assert c.ledger.spec(spec).status is SpecStatus.EXPIRED and c.wallet("zed") == GRANT


def test_a_closed_window_decides_on_the_votes_cast(make_ledger: MakeLedger) -> None:
    """One of two co-authors approved and the other stayed silent: approved at close."""
    c = with_coauthors(make_ledger, "ada", "bob")
    spec = c.submit("zed", stake=60)
    c.vote("ada", spec, True)
    c.now += 7 * DAY + 1
    c.close("ada", spec)
    assert c.ledger.spec(spec).status is SpecStatus.APPROVED


def test_vote_refusals(make_ledger: MakeLedger) -> None:
    """Non-co-author, double vote, after the window, unknown and decided specs: refused."""
    c = with_coauthors(make_ledger, "ada", "bob")
    c.join("eve")
    spec = c.submit("zed", stake=60)
    with pytest.raises(InputError, match="eve is not a co-author of t1: cannot vote"):
        c.vote("eve", spec, True)
    c.vote("ada", spec, False)
    with pytest.raises(InputError, match=f"ada already voted on spec {spec}"):
        c.vote("ada", spec, True)
    with pytest.raises(InputError, match="spec: unknown spec nope"):
        c.vote("ada", "nope", True)
    c.now += 7 * DAY
    with pytest.raises(InputError, match=f"spec: vote after the window: spec {spec} closed"):
        c.vote("bob", spec, True)
    c.close("bob", spec)
    with pytest.raises(InputError, match=f"spec {spec} is already denied"):
        c.vote("bob", spec, True)


def test_an_author_never_votes_on_their_own_spec(make_ledger: MakeLedger) -> None:
    """zed, approved into the thread by one spec, cannot vote on a second one still pending,
    and that spec is decided without waiting for zed's vote."""
    c = with_coauthors(make_ledger, "ada")
    first, second = c.submit("zed", stake=60), c.submit("zed", stake=60)
    c.vote("ada", first, True)
    assert c.id("zed") in c.ledger.thread("t1").coauthors
    with pytest.raises(InputError, match=f"zed cannot vote on their own spec {second}"):
        c.vote("zed", second, True)
    c.vote("ada", second, False)
    assert c.ledger.spec(second).status is SpecStatus.DENIED


def test_divest_pays_balance_over_n_and_leaves(make_ledger: MakeLedger) -> None:
    """A co-author of 2 takes floor(balance / 2) and is no longer a co-author."""
    c = with_coauthors(make_ledger, "ada", "bob")
    spec = c.submit("zed", stake=91)
    c.vote("ada", spec, False)
    c.vote("bob", spec, False)
    before = c.wallet("bob")
    c.divest("bob")
    assert c.wallet("bob") - before == 45 and c.ledger.balance(thread_account("t1")) == 46
    assert c.ledger.thread("t1").coauthors == (c.id("ada"),)
    with pytest.raises(InputError, match="bob is not a co-author of t1"):
        c.divest("bob")
    c.divest("ada")
    assert c.ledger.balance(thread_account("t1")) == 0 and c.ledger.thread("t1").coauthors == ()
    assert c.ledger.price("t1", now=c.now) == 50 and c.ledger.totals().ok


def test_the_price_rises_with_the_thread_balance(make_ledger: MakeLedger) -> None:
    """A richer thread (higher temperature) costs more; the ledger's price is the formula's."""
    c = with_coauthors(make_ledger, "ada")
    cheap = c.ledger.price("t1", now=c.now)
    spec = c.submit("zed", stake=500)
    c.vote("ada", spec, False)
    assert c.ledger.price("t1", now=c.now) > cheap
    with pytest.raises(InputError, match="stake: 60 is below the thread's price"):
        c.submit("zed", stake=60)


def test_a_broken_invariant_rolls_the_transaction_back(
    make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rules that would mint from nothing: the check inside the transaction refuses it, and
    neither the effects nor the chain record are stored."""
    c = community(make_ledger, "ada")
    before = (c.ledger.accounts(), len(c.ledger.records()))
    real = choir_sql.apply

    def minting(*args: object, **kwargs: object) -> list[object]:
        return [*real(*args, **kwargs), Mint(account="wallet:x", amount=1)]  # type: ignore[arg-type]

    monkeypatch.setattr(choir_sql, "apply", minting)
    with pytest.raises(IntegrityError, match="invariant broken, rolled back"):
        c.thread("ada")
    assert (c.ledger.accounts(), len(c.ledger.records())) == before
    assert c.ledger.thread("t1") is None and c.ledger.verify().ok


def test_the_chain_verifies_and_names_a_tampered_record(make_ledger: MakeLedger) -> None:
    """Every transaction is a signed chain record; editing one stored payload is caught there."""
    c = with_coauthors(make_ledger, "ada", "bob")
    report = c.ledger.verify()
    assert report.ok and report.checked == len(c.ledger.records()) == 7
    assert [r.kind for r in c.ledger.records()][:3] == ["choir.genesis", "choir.join", "choir.join"]
    ledger = c.ledger
    with ledger._transaction() as db:  # type: ignore[attr-defined]
        db.run("UPDATE choir_chain SET payload = replace(payload, 'a thread', 'b thread')")
    bad = ledger.verify()
    assert not bad.ok and bad.first_bad == 4 and "changed" in bad.reason


def test_two_connections_see_one_ledger(make_ledger: MakeLedger) -> None:
    """A second ledger object on the same store sees the first one's writes and vice versa."""
    c = community(make_ledger, "ada")
    other = Community(make_ledger(location(c.ledger)))
    other.join("bob")
    c.thread("ada")
    assert c.wallet("bob") == GRANT and other.ledger.thread("t1") is not None
    assert c.ledger.totals() == other.ledger.totals()


def test_one_transaction_sent_by_eight_connections_at_once_applies_once(
    make_ledger: MakeLedger,
) -> None:
    """Eight connections submit the same signed spec at the same moment (a client retrying
    through several servers): one receipt applies it, seven say replayed, the stake is taken
    once."""
    c = community(make_ledger, "ada", "bob")
    c.thread("ada")
    body = {"thread": "t1", "spec": "s", "content_hash": "b" * 64, "stake": 70}
    tx = c.tx("bob", TxKind.SUBMIT, body)
    ledgers = [make_ledger(location(c.ledger)) for _ in range(8)]
    gate = threading.Barrier(len(ledgers))

    def send(ledger: object) -> bool:
        gate.wait(timeout=30)
        return ledger.submit(tx, now=c.now).replayed  # type: ignore[attr-defined]

    with concurrent.futures.ThreadPoolExecutor(len(ledgers)) as pool:
        replayed = list(pool.map(send, ledgers))
    assert sorted(replayed) == [False] + [True] * 7
    assert c.wallet("bob") == GRANT - 70 and c.ledger.verify().ok
