"""Golden-ratio consensus (WSP 28 §3.3, §5.1 FUNCTION_MESH): propose → validate → execute →
record, with signed proposals and votes.

Rule: sans-IO. :class:`ConsensusBook` takes signed values and a ``now`` and returns
:class:`Decision` values; it reads no clock and writes no store. The driver executes a passed
decision and appends :meth:`Decision.to_entry` to an append-only log (``memory.AppendLog``:
in-memory, SQLite; JetStream across processes); :meth:`Decision.from_entry` reads it back and
:func:`verify_decision` re-checks every signature in it.

- A proposal names its eligible voters (the validators when it was made) and a deadline; it
  passes iff yes / eligible ≥ 1/φ (:data:`QUORUM`) before the deadline, is rejected as soon
  as enough no votes make that impossible, and expires at the deadline otherwise.
- Votes are rejected and counted by reason (:class:`VoteReject`): a bad signature
  (``forged``), a second vote on one proposal (``double``), a yes on a second proposal of a
  subject the voter already backs (``conflicting``), arrival after the deadline (``late``),
  a voter not in the eligible set (``not_validator``), an unknown or already decided
  proposal. Because 1/φ > ½, two disjoint parts of one eligible set never both reach quorum.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from becomingone.cluster.partifact import QUORUM
from becomingone.errors import InputError, IntegrityError, ProtocolError
from becomingone.keys import NodeKey, verify_signature

__all__ = [
    "MAX_PROPOSAL_BYTES",
    "ConsensusBook",
    "Decision",
    "Outcome",
    "Proposal",
    "Vote",
    "VoteReject",
    "passes",
    "verify_decision",
]

#: Largest canonical proposal body accepted (bytes).
MAX_PROPOSAL_BYTES = 65_536


def passes(yes: int, eligible: int) -> bool:
    """True iff ``yes`` of ``eligible`` votes reach the quorum 1/φ.

    >>> passes(3, 5), passes(4, 5), passes(2, 3)
    (False, True, True)
    """
    return eligible > 0 and yes >= QUORUM * eligible - 1e-12


class Outcome(enum.StrEnum):
    """How a proposal ended."""

    PASSED = "passed"
    REJECTED = "rejected"  #: enough no votes that the quorum cannot be reached
    EXPIRED = "expired"  #: the deadline came first


class VoteReject(enum.StrEnum):
    """Why a vote (or proposal) was refused: the counted reasons."""

    FORGED = "forged"
    DOUBLE = "double"
    CONFLICTING = "conflicting"
    LATE = "late"
    NOT_VALIDATOR = "not_validator"
    UNKNOWN_PROPOSAL = "unknown_proposal"
    CLOSED = "closed"
    BAD_PROPOSAL = "bad_proposal"


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _check_time(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(name, f"must be a finite number of seconds, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """An action intent put to the validators (signed by ``proposer``).

    ``kind`` says what executing it does (``roles``, ``failover``, ``intent``, ``command``);
    proposals with the same ``subject`` conflict (a validator backs at most one of them).
    ``eligible`` is the sorted set of validators that may vote. ``id`` is derived from the
    signed body, so two different proposals never share one.
    """

    kind: str
    subject: str
    payload: Mapping[str, Any]
    proposer: str
    created: float
    deadline: float
    eligible: tuple[str, ...]
    signature: bytes = b""
    _id: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("kind", "subject", "proposer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or len(value) > 200:
                raise InputError(name, f"must be a non-empty string of <= 200 chars, got {value!r}")
        _check_time("created", self.created)
        _check_time("deadline", self.deadline)
        if self.deadline <= self.created:
            raise InputError(
                "deadline", f"must be after created ({self.created}), got {self.deadline}"
            )
        if not self.eligible or list(self.eligible) != sorted(set(self.eligible)):
            raise InputError("eligible", "must be a non-empty sorted tuple of distinct cell ids")
        if not isinstance(self.payload, Mapping):
            raise InputError("payload", "must be a JSON object")
        try:
            body = self.body()
        except (TypeError, ValueError) as exc:
            raise InputError("payload", f"is not JSON: {exc}") from None
        if len(body) > MAX_PROPOSAL_BYTES:
            raise InputError("payload", f"is {len(body)} bytes; at most {MAX_PROPOSAL_BYTES}")
        object.__setattr__(self, "_id", hashlib.sha256(body).hexdigest()[:16])

    def body(self) -> bytes:
        """The canonical bytes the proposer signs (everything but the signature)."""
        return _canonical(
            {
                "kind": self.kind,
                "subject": self.subject,
                "payload": dict(self.payload),
                "proposer": self.proposer,
                "created": self.created,
                "deadline": self.deadline,
                "eligible": list(self.eligible),
            }
        )

    @property
    def id(self) -> str:
        """16 hex digits of the SHA-256 of the signed body (computed once)."""
        return self._id

    @classmethod
    def create(cls, key: NodeKey, **fields: Any) -> Proposal:
        """A proposal with ``fields``, signed by ``key`` (the proposer's)."""
        unsigned = cls(**fields)
        return cls(**fields, signature=key.sign(unsigned.body()))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (signature as hex)."""
        return {**json.loads(self.body()), "id": self.id, "signature": self.signature.hex()}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Proposal:
        """The inverse of :meth:`to_json` (``InputError`` on a malformed document)."""
        try:
            return cls(
                kind=doc["kind"],
                subject=doc["subject"],
                payload=doc["payload"],
                proposer=doc["proposer"],
                created=doc["created"],
                deadline=doc["deadline"],
                eligible=tuple(doc["eligible"]),
                signature=bytes.fromhex(doc["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError("proposal", f"malformed: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Vote:
    """One validator's signed yes or no on one proposal, cast at ``at`` (seconds)."""

    proposal_id: str
    voter: str
    yes: bool
    at: float
    signature: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.proposal_id, str) or not self.proposal_id:
            raise InputError("proposal_id", "must be a non-empty string")
        if not isinstance(self.voter, str) or not self.voter:
            raise InputError("voter", "must be a non-empty string")
        if not isinstance(self.yes, bool):
            raise InputError("yes", f"must be a bool, got {self.yes!r}")
        _check_time("at", self.at)

    def body(self) -> bytes:
        """The canonical bytes the voter signs."""
        return _canonical(
            {"proposal": self.proposal_id, "voter": self.voter, "yes": self.yes, "at": self.at}
        )

    @classmethod
    def create(cls, key: NodeKey, **fields: Any) -> Vote:
        """A vote with ``fields``, signed by ``key`` (the voter's)."""
        unsigned = cls(**fields)
        return cls(**fields, signature=key.sign(unsigned.body()))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (signature as hex)."""
        return {"voter": self.voter, "yes": self.yes, "at": self.at, "sig": self.signature.hex()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """How a proposal ended, with the votes that decided it (what the log records)."""

    proposal: Proposal
    outcome: Outcome
    votes: tuple[Vote, ...]
    decided_at: float

    @property
    def yes(self) -> int:
        """Yes votes counted."""
        return sum(v.yes for v in self.votes)

    @property
    def passed(self) -> bool:
        """True iff the proposal passed."""
        return self.outcome is Outcome.PASSED

    def to_entry(self) -> bytes:
        """Canonical bytes for the append-only log."""
        return _canonical(
            {
                "proposal": self.proposal.to_json(),
                "outcome": self.outcome.value,
                "votes": [v.to_json() for v in self.votes],
                "decided_at": self.decided_at,
            }
        )

    @classmethod
    def from_entry(cls, entry: bytes) -> Decision:
        """A decision from its log entry (``InputError`` on a malformed entry)."""
        try:
            doc = json.loads(entry)
            proposal = Proposal.from_json(doc["proposal"])
            votes = tuple(
                Vote(
                    proposal_id=proposal.id,
                    voter=v["voter"],
                    yes=v["yes"],
                    at=v["at"],
                    signature=bytes.fromhex(v["sig"]),
                )
                for v in doc["votes"]
            )
            return cls(
                proposal=proposal,
                outcome=Outcome(doc["outcome"]),
                votes=votes,
                decided_at=doc["decided_at"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError("entry", f"not a decision record: {exc}") from None


def verify_decision(
    decision: Decision, keys: Mapping[str, bytes], *, index: int | None = None
) -> None:
    """Raise :class:`IntegrityError` unless every signature in ``decision`` verifies with
    ``keys`` (cell → public key), the voters are distinct and eligible, and a pass has quorum."""
    p = decision.proposal
    if not verify_signature(keys.get(p.proposer, b""), p.body(), p.signature):
        raise IntegrityError(index, f"proposal {p.id}: bad signature by {p.proposer}")
    seen = set()
    for v in decision.votes:
        if v.voter in seen or v.voter not in p.eligible:
            raise IntegrityError(index, f"proposal {p.id}: vote by {v.voter} not allowed")
        if not verify_signature(keys.get(v.voter, b""), v.body(), v.signature):
            raise IntegrityError(index, f"proposal {p.id}: bad vote signature by {v.voter}")
        seen.add(v.voter)
    if decision.passed != passes(decision.yes, len(p.eligible)):
        raise IntegrityError(index, f"proposal {p.id}: outcome does not match its votes")


@dataclass(slots=True)
class _Open:
    proposal: Proposal
    votes: dict[str, Vote] = field(default_factory=dict)

    @property
    def yes(self) -> int:
        return sum(v.yes for v in self.votes.values())

    @property
    def no(self) -> int:
        return len(self.votes) - self.yes


class ConsensusBook:
    """Open proposals, their votes and the decisions, for one cluster view.

    ``keys`` maps every known cell to its Ed25519 public key (the roster); signatures are
    checked against it. Refused proposals and votes are counted in :attr:`rejected` by reason
    and raise :class:`~becomingone.errors.ProtocolError` with that reason.

    Examples
    --------
    >>> k = {c: NodeKey.from_seed(bytes([i]) * 32) for i, c in enumerate("abc")}
    >>> book = ConsensusBook({c: key.public_bytes for c, key in k.items()})
    >>> p = Proposal.create(k["a"], kind="intent", subject="s", payload={}, proposer="a",
    ...                     created=0.0, deadline=1.0, eligible=("b", "c"))
    >>> book.open(p, now=0.0)
    >>> book.cast(Vote.create(k["b"], proposal_id=p.id, voter="b", yes=True, at=0.1), now=0.1)
    >>> book.cast(Vote.create(k["c"], proposal_id=p.id, voter="c", yes=True, at=0.2), now=0.2)
    Decision(...)
    """

    def __init__(self, keys: Mapping[str, bytes], *, keep_decided: float = 60.0) -> None:
        if not keep_decided >= 0:
            raise InputError("keep_decided", f"must be >= 0 seconds, got {keep_decided!r}")
        self.keys = dict(keys)
        self.keep_decided = keep_decided
        self.open_proposals: dict[str, _Open] = {}
        self.decided: dict[str, Decision] = {}
        self.rejected: Counter[str] = Counter()
        self._backing: dict[tuple[str, str], str] = {}  # (voter, subject) → proposal id

    def _refuse(self, reason: VoteReject, message: str) -> ProtocolError:
        self.rejected[reason.value] += 1
        return ProtocolError(reason.value, message)

    def open(self, proposal: Proposal, now: float) -> None:
        """Accept a signed proposal for voting (refused: forged, late, or already known)."""
        _check_time("now", now)
        pid = proposal.id
        if not verify_signature(
            self.keys.get(proposal.proposer, b""), proposal.body(), proposal.signature
        ):
            raise self._refuse(VoteReject.FORGED, f"proposal {pid}: bad signature")
        if pid in self.open_proposals or pid in self.decided:
            raise self._refuse(VoteReject.DOUBLE, f"proposal {pid} is already known")
        if now >= proposal.deadline:
            raise self._refuse(VoteReject.LATE, f"proposal {pid} arrived after its deadline")
        self.open_proposals[pid] = _Open(proposal)

    def cast(self, vote: Vote, now: float) -> Decision | None:
        """Count one signed vote; the decision if this vote decided the proposal."""
        _check_time("now", now)
        entry = self._check_vote(vote, now)
        entry.votes[vote.voter] = vote
        if vote.yes:
            self._backing[(vote.voter, entry.proposal.subject)] = vote.proposal_id
        return self._decide_if_settled(entry, now)

    def _check_vote(self, vote: Vote, now: float) -> _Open:
        pid = vote.proposal_id
        entry = self.open_proposals.get(pid)
        if entry is None:
            done = self.decided.get(pid)
            if done is None:
                raise self._refuse(VoteReject.UNKNOWN_PROPOSAL, f"no proposal {pid}")
            if now >= done.proposal.deadline:
                raise self._refuse(VoteReject.LATE, f"proposal {pid} is past its deadline")
            raise self._refuse(VoteReject.CLOSED, f"proposal {pid} is already decided")
        if now >= entry.proposal.deadline:
            raise self._refuse(VoteReject.LATE, f"proposal {pid} is past its deadline")
        if vote.voter not in entry.proposal.eligible:
            raise self._refuse(VoteReject.NOT_VALIDATOR, f"{vote.voter} may not vote on {pid}")
        if not verify_signature(self.keys.get(vote.voter, b""), vote.body(), vote.signature):
            raise self._refuse(VoteReject.FORGED, f"vote by {vote.voter} on {pid}: bad signature")
        if vote.voter in entry.votes:
            raise self._refuse(VoteReject.DOUBLE, f"{vote.voter} already voted on {pid}")
        backed = self._backing.get((vote.voter, entry.proposal.subject))
        if vote.yes and backed is not None and backed != pid:
            raise self._refuse(
                VoteReject.CONFLICTING, f"{vote.voter} already backs {backed} on this subject"
            )
        return entry

    def _decide_if_settled(self, entry: _Open, now: float) -> Decision | None:
        n = len(entry.proposal.eligible)
        if passes(entry.yes, n):
            return self._close(entry, Outcome.PASSED, now)
        if not passes(n - entry.no, n):
            return self._close(entry, Outcome.REJECTED, now)
        return None

    def _close(self, entry: _Open, outcome: Outcome, now: float) -> Decision:
        p = entry.proposal
        del self.open_proposals[p.id]
        if outcome is not Outcome.PASSED:  # a failed proposal frees its backers
            for voter in entry.votes:
                if self._backing.get((voter, p.subject)) == p.id:
                    del self._backing[(voter, p.subject)]
        decision = Decision(
            proposal=p,
            outcome=outcome,
            votes=tuple(sorted(entry.votes.values(), key=lambda v: v.voter)),
            decided_at=now,
        )
        self.decided[p.id] = decision
        return decision

    def tick(self, now: float) -> list[Decision]:
        """Expire every open proposal whose deadline has come (oldest first), and forget
        decisions whose deadline is more than ``keep_decided`` seconds past (a vote on one
        is then refused as ``unknown_proposal`` rather than ``late``)."""
        _check_time("now", now)
        due = [e for e in self.open_proposals.values() if now >= e.proposal.deadline]
        due.sort(key=lambda e: (e.proposal.deadline, e.proposal.id))
        out = [self._close(e, Outcome.EXPIRED, now) for e in due]
        self._forget(now - self.keep_decided)
        return out

    def _forget(self, before: float) -> None:
        old = [pid for pid, d in self.decided.items() if d.proposal.deadline < before]
        for pid in old:
            subject = self.decided.pop(pid).proposal.subject
            for key in [k for k, v in self._backing.items() if v == pid and k[1] == subject]:
                del self._backing[key]

    def tally(self, proposal_id: str) -> tuple[int, int, int]:
        """(yes, no, eligible) of an open or decided proposal (``InputError`` if unknown)."""
        entry = self.open_proposals.get(proposal_id)
        if entry is not None:
            return entry.yes, entry.no, len(entry.proposal.eligible)
        done = self.decided.get(proposal_id)
        if done is None:
            raise InputError("proposal_id", f"no proposal {proposal_id!r}")
        return done.yes, len(done.votes) - done.yes, len(done.proposal.eligible)

    def restore(self, decision: Decision) -> None:
        """Know ``decision`` from the log (after a restart): votes on it are refused."""
        self.open_proposals.pop(decision.proposal.id, None)
        self.decided[decision.proposal.id] = decision
        if decision.passed:
            for v in decision.votes:
                if v.yes:
                    self._backing[(v.voter, decision.proposal.subject)] = decision.proposal.id
