"""Golden-ratio consensus: quorum 1/φ, signed proposals and votes, every rejection counted,
partition safety, and decisions that survive a restart on the append-only log."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.cluster import (
    QUORUM,
    ConsensusBook,
    Decision,
    Outcome,
    Proposal,
    Vote,
    passes,
    verify_decision,
)
from becomingone.errors import InputError, IntegrityError, ProtocolError
from becomingone.keys import NodeKey
from becomingone.memory import MemoryAppendLog, SqliteAppendLog
from tests.cluster.partifact_helpers import make_keys, public

KEYS = make_keys(8)
VALIDATORS = ("c01", "c02", "c03", "c04", "c05")


def _proposal(eligible: tuple[str, ...] = VALIDATORS, subject: str = "s", **kw: object) -> Proposal:
    fields: dict[str, object] = {
        "kind": "intent",
        "subject": subject,
        "payload": {"what": "probe"},
        "proposer": "c00",
        "created": 0.0,
        "deadline": 1.0,
        "eligible": eligible,
    }
    fields.update(kw)
    return Proposal.create(KEYS[str(fields["proposer"])], **fields)


def _vote(p: Proposal, voter: str, yes: bool = True, at: float = 0.1) -> Vote:
    return Vote.create(KEYS[voter], proposal_id=p.id, voter=voter, yes=yes, at=at)


def _book(p: Proposal | None = None) -> ConsensusBook:
    book = ConsensusBook(public(KEYS))
    if p is not None:
        book.open(p, now=0.0)
    return book


@pytest.mark.parametrize("n", range(1, 40))
def test_quorum_is_the_least_count_at_or_above_one_over_phi(n: int) -> None:
    """passes(yes, n) is true exactly from ceil(n/φ) yes votes on."""
    need = math.ceil(n * QUORUM - 1e-9)
    assert passes(need, n) and not passes(need - 1, n)


def test_passes_at_quorum_and_records() -> None:
    """5 validators: 3 yes do not pass (0.6 < 0.618), the 4th does; the decision lists them."""
    p = _proposal()
    book = _book(p)
    for v in VALIDATORS[:3]:
        assert book.cast(_vote(p, v), now=0.2) is None
    d = book.cast(_vote(p, VALIDATORS[3]), now=0.3)
    assert d is not None and d.outcome is Outcome.PASSED and d.yes == 4 and d.decided_at == 0.3
    assert book.tally(p.id) == (4, 0, 5)


def test_rejected_as_soon_as_quorum_is_impossible() -> None:
    """With 5 eligible, 2 no votes leave at most 3 yes (< 1/φ): rejected at once."""
    p = _proposal()
    book = _book(p)
    assert book.cast(_vote(p, "c01", yes=False), now=0.1) is None
    d = book.cast(_vote(p, "c02", yes=False), now=0.1)
    assert d is not None and d.outcome is Outcome.REJECTED


def test_expires_at_deadline() -> None:
    """A proposal short of quorum expires when now reaches its deadline, not before."""
    p = _proposal()
    book = _book(p)
    book.cast(_vote(p, "c01"), now=0.5)
    assert book.tick(0.99) == []
    [d] = book.tick(1.0)
    assert d.outcome is Outcome.EXPIRED and d.yes == 1


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            lambda p: Vote(proposal_id=p.id, voter="c01", yes=True, at=0.1, signature=bytes(64)),
            "forged",
        ),
        (
            lambda p: Vote.create(KEYS["c02"], proposal_id=p.id, voter="c01", yes=True, at=0.1),
            "forged",
        ),
        (lambda p: _vote(p, "c06"), "not_validator"),
        (lambda p: _vote(p, "c00"), "not_validator"),
        (
            lambda p: Vote.create(KEYS["c01"], proposal_id="ffff", voter="c01", yes=True, at=0.1),
            "unknown_proposal",
        ),
    ],
)
def test_bad_votes_are_rejected_and_counted(make: object, reason: str) -> None:
    """Forged (bad or someone else's signature), non-validator and unknown-proposal votes
    raise ProtocolError with the reason, are counted, and change no tally."""
    p = _proposal()
    book = _book(p)
    with pytest.raises(ProtocolError) as err:
        book.cast(make(p), now=0.2)  # type: ignore[operator]
    assert err.value.reason == reason
    assert book.rejected == {reason: 1}
    assert book.tally(p.id) == (0, 0, 5)


def test_double_vote_rejected() -> None:
    """A second vote by the same validator (even flipping yes to no) is refused as double."""
    p = _proposal()
    book = _book(p)
    book.cast(_vote(p, "c01"), now=0.1)
    with pytest.raises(ProtocolError, match="double"):
        book.cast(_vote(p, "c01", yes=False, at=0.2), now=0.2)
    assert book.rejected["double"] == 1 and book.tally(p.id) == (1, 0, 5)


def test_late_vote_rejected() -> None:
    """A vote arriving at or after the deadline is refused as late (open or expired)."""
    p = _proposal()
    book = _book(p)
    with pytest.raises(ProtocolError, match="late"):
        book.cast(_vote(p, "c01", at=0.5), now=1.0)
    book.tick(2.0)
    with pytest.raises(ProtocolError, match="late"):
        book.cast(_vote(p, "c02", at=0.5), now=2.0)
    assert book.rejected["late"] == 2


def test_vote_after_decision_is_closed() -> None:
    """A vote on a decided proposal before its deadline is refused as closed."""
    p = _proposal(eligible=("c01",))
    book = _book(p)
    assert book.cast(_vote(p, "c01"), now=0.1) is not None
    with pytest.raises(ProtocolError, match="closed"):
        book.cast(_vote(p, "c01"), now=0.2)


def test_conflicting_yes_rejected() -> None:
    """A validator backing one proposal of a subject cannot back another one of it."""
    a, b = _proposal(subject="x"), _proposal(subject="x", payload={"what": "other"})
    book = _book(a)
    book.open(b, now=0.0)
    book.cast(_vote(a, "c01"), now=0.1)
    with pytest.raises(ProtocolError, match="conflicting"):
        book.cast(_vote(b, "c01"), now=0.1)
    book.cast(_vote(b, "c01", yes=False), now=0.1)  # a no is allowed
    assert book.rejected == {"conflicting": 1}


def test_forged_late_and_duplicate_proposals_rejected() -> None:
    """Proposals with a bad signature, past their deadline or already known are refused."""
    p = _proposal()
    book = _book()
    forged = Proposal(**{**_fields(p), "signature": bytes(64)})
    with pytest.raises(ProtocolError, match="forged"):
        book.open(forged, now=0.0)
    with pytest.raises(ProtocolError, match="late"):
        book.open(p, now=1.0)
    book.open(p, now=0.0)
    with pytest.raises(ProtocolError, match="double"):
        book.open(p, now=0.0)
    assert book.rejected == {"forged": 1, "late": 1, "double": 1}


def _fields(p: Proposal) -> dict[str, object]:
    return {
        "kind": p.kind,
        "subject": p.subject,
        "payload": p.payload,
        "proposer": p.proposer,
        "created": p.created,
        "deadline": p.deadline,
        "eligible": p.eligible,
    }


@pytest.mark.parametrize(
    ("change", "parameter"),
    [
        ({"deadline": 0.0}, "deadline"),
        ({"eligible": ()}, "eligible"),
        ({"eligible": ("b", "a")}, "eligible"),
        ({"kind": ""}, "kind"),
        ({"payload": {"x": object()}}, "payload"),
        ({"created": float("inf")}, "created"),
    ],
)
def test_proposal_validates_on_construction(change: dict[str, object], parameter: str) -> None:
    """A malformed proposal raises InputError naming the field."""
    with pytest.raises(InputError) as err:
        Proposal(**{**_fields(_proposal()), **change})  # type: ignore[arg-type]
    assert err.value.parameter == parameter


def test_entry_round_trip_and_verification() -> None:
    """A decision's log entry reads back equal and verifies; a tampered one does not."""
    p = _proposal()
    book = _book(p)
    for v in VALIDATORS[:4]:
        d = book.cast(_vote(p, v), now=0.2)
    assert d is not None
    back = Decision.from_entry(d.to_entry())
    assert back == d
    verify_decision(back, public(KEYS))
    flipped = Decision(proposal=p, outcome=Outcome.PASSED, votes=d.votes[:3], decided_at=0.2)
    with pytest.raises(IntegrityError, match="outcome"):
        verify_decision(flipped, public(KEYS), index=7)
    other = make_keys(8, prefix="c")
    other["c01"] = NodeKey.from_seed(bytes(32))
    with pytest.raises(IntegrityError, match="c01"):
        verify_decision(back, public(other))
    with pytest.raises(InputError, match="entry"):
        Decision.from_entry(b"{}")


@pytest.mark.parametrize("adapter", ["memory", "sqlite"])
def test_decisions_survive_a_restart(adapter: str, tmp_path: Path) -> None:
    """Decisions appended to the log are read back by a new book after a restart, and votes
    on them are then refused (no proposal is decided twice)."""
    log = (
        MemoryAppendLog()
        if adapter == "memory"
        else SqliteAppendLog(tmp_path / "c.db", "consensus")
    )
    p = _proposal()
    book = _book(p)
    for v in VALIDATORS[:4]:
        d = book.cast(_vote(p, v), now=0.2)
    assert d is not None
    log.append(d.to_entry(), expected_last=0)
    if adapter == "sqlite":
        log.close()  # type: ignore[union-attr]
        log = SqliteAppendLog(tmp_path / "c.db", "consensus")
    fresh = _book()
    for entry in log.read():
        decision = Decision.from_entry(entry)
        verify_decision(decision, public(KEYS))
        fresh.restore(decision)
    assert fresh.decided[p.id] == d
    with pytest.raises(ProtocolError, match="closed"):
        fresh.cast(_vote(p, "c05"), now=0.3)


@given(n=st.integers(1, 30), data=st.data())
def test_two_sides_of_a_partition_never_both_pass(n: int, data: st.DataObject) -> None:
    """Split the eligible set into two disjoint sides, each with its own book, every voter
    voting yes on its side's proposal: at most one of the two conflicting proposals passes."""
    eligible = tuple(f"v{i:02d}" for i in range(n))
    keys = {v: NodeKey.from_seed(bytes([i + 1]) * 32) for i, v in enumerate(eligible)}
    keys["p"] = NodeKey.from_seed(bytes([99]) * 32)
    pub = {c: k.public_bytes for c, k in keys.items()}
    side = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    passed = 0
    for s, what in ((True, "a"), (False, "b")):
        book = ConsensusBook(pub)
        p = Proposal.create(
            keys["p"],
            kind="command",
            subject="slot",
            payload={"what": what},
            proposer="p",
            created=0.0,
            deadline=1.0,
            eligible=eligible,
        )
        book.open(p, now=0.0)
        for v, mine in zip(eligible, side, strict=True):
            if mine is s and p.id in book.open_proposals:
                d = book.cast(
                    Vote.create(keys[v], proposal_id=p.id, voter=v, yes=True, at=0.1), 0.1
                )
                passed += d is not None and d.passed
    assert passed <= 1


def test_old_decisions_are_forgotten_after_keep_decided() -> None:
    """tick forgets a decision keep_decided seconds after its deadline (memory stays bounded):
    a vote on it is then unknown_proposal instead of late, and its backers are free again."""
    p = _proposal(eligible=("c01",), subject="x")
    book = ConsensusBook(public(KEYS), keep_decided=10.0)
    book.open(p, now=0.0)
    assert book.cast(_vote(p, "c01"), now=0.1) is not None
    book.tick(10.9)
    assert p.id in book.decided
    book.tick(11.1)
    assert p.id not in book.decided and book._backing == {}
    with pytest.raises(ProtocolError, match="unknown_proposal"):
        book.cast(_vote(p, "c01"), now=11.2)
    with pytest.raises(InputError, match="keep_decided"):
        ConsensusBook({}, keep_decided=-1.0)
