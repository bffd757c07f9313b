"""The proposal desk of an in-process partifact cluster: what an operator may ask of its
consensus — read the roles and the proposals, propose, vote as a cell.

Rule: on the driver's event loop, between ticks (the API calls it; it never blocks), through
the :class:`~becomingone.runtime.PartifactDriver` only. Every cell lives in this one process,
so the desk holds their keys: a proposal is signed by the cluster's current proposer (the
Genesis, else the first Integrator) and a vote by the cell it is cast as. Whoever may call the
desk (the API: a write token) may therefore vote as any in-process cell; the consensus still
refuses a cell that is not an eligible Validator, a second vote and a late one, each with its
own reason. An operator's proposal is voted on by the operators only (the driver does not vote
on it) and stays open ``vote_seconds`` of cluster time. Proposals of one subject conflict (a
Validator backs at most one): two submissions of one glyph id do; a text or a cancel has a
subject of its own. Kinds: ``command`` (a text, recorded
when it passes), ``glyph.submit`` and ``glyph.cancel`` (executed on the
:class:`~becomingone.runtime.GlyphDesk` when they pass). In AUTONOMOUS the glyph routes turn
an operator's submit or cancel into such a proposal (:meth:`ProposalDesk.governs`).
"""

from __future__ import annotations

import itertools
import math
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from becomingone.cluster import (
    QUORUM,
    Decision,
    Delegation,
    Glyph,
    LifecycleStage,
    PartifactCluster,
    Proposal,
    Vote,
)
from becomingone.errors import BecomingOneError, InputError, ProtocolError
from becomingone.keys import NodeKey
from becomingone.runtime.glyph_desk import GlyphDesk, UnknownCell
from becomingone.runtime.partifacts import PartifactTick

__all__ = [
    "OPERATOR_KINDS",
    "ConsensusDriver",
    "ProposalDesk",
    "ProposalRefused",
    "UnknownProposal",
]

#: What an operator can propose.
OPERATOR_KINDS = ("command", "glyph.submit", "glyph.cancel")
#: Operator proposals whose execution result is kept (the newest).
_KEEP = 1000


class UnknownProposal(BecomingOneError):
    """The consensus knows no (or no longer any) proposal of that id."""


class ProposalRefused(BecomingOneError):
    """The consensus refused a proposal or a vote; ``reason`` is its counted reason
    (``not_validator``, ``double``, ``late``, ``closed``, ``conflicting``, ``no_quorum``...)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def needed(eligible: int) -> int:
    """Yes votes a proposal with ``eligible`` voters needs (yes / eligible ≥ 1/φ).

    >>> [needed(n) for n in (1, 2, 3, 5, 8)]
    [1, 2, 2, 4, 5]
    """
    return max(1, math.ceil(QUORUM * eligible - 1e-12))


class ConsensusDriver(Protocol):
    """What the desk drives: the in-process :class:`~becomingone.runtime.PartifactDriver`
    (every cell's key) or a node's :class:`~becomingone.runtime.node_partifacts.NodePartifacts`
    (its own key only)."""

    @property
    def cluster(self) -> PartifactCluster:
        """The partifact view."""

    @property
    def history(self) -> Sequence[PartifactTick]:
        """The last ticks, newest last."""

    @property
    def keys(self) -> Mapping[str, NodeKey]:
        """The private keys this process holds (by cell)."""

    @property
    def silent(self) -> Mapping[str, float | None]:
        """Cells not heard (silenced)."""

    @property
    def delegation(self) -> Delegation:
        """The delegated intents and commands (WSP 28 §5.3)."""

    def open_operator(self, proposal: Proposal, now: float) -> None:
        """Open a signed proposal."""

    def cast(self, vote: Vote, now: float) -> Decision | None:
        """Count one signed vote."""


class ProposalDesk:
    """Propose, vote and read the consensus of ``driver``'s cluster (``glyphs``: the glyph
    desk of full cells, which executes passed glyph proposals). With ``clock`` (a node's:
    its views run on the wall clock) the desk's times come from it, not from the callers'
    ``now``."""

    def __init__(
        self,
        driver: ConsensusDriver,
        glyphs: GlyphDesk | None = None,
        *,
        vote_seconds: float = 300.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not vote_seconds > 0:
            raise InputError("vote_seconds", f"must be > 0 seconds, got {vote_seconds!r}")
        self.driver = driver
        self.clock = clock
        self.glyphs = glyphs
        self.vote_seconds = vote_seconds
        #: Operator proposals (id → execution result, None until it passes), newest last.
        self.operator: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self._serial = itertools.count(1)

    # reading ----------------------------------------------------------------------------

    def governs(self) -> bool:
        """True in AUTONOMOUS: operator commands become proposals (oversight: feedback)."""
        return self.driver.cluster.lifecycle.stage is LifecycleStage.AUTONOMOUS

    def roles(self) -> dict[str, Any]:
        """The lifecycle stage and its conditions (measured values), the term, the Genesis,
        the Validators and each cell's state and role."""
        pc = self.driver.cluster
        last = self.driver.history[-1] if self.driver.history else None
        conditions = {} if last is None else last.lifecycle.to_json()["conditions"]
        return {
            "lifecycle": pc.lifecycle.stage.value,
            "term": pc.term,
            "genesis": pc.genesis,
            "validators": list(pc.validators()),
            "cells": {
                c: {"state": p.state.value, "role": r.value if (r := pc.roles.get(c)) else None}
                for c, p in sorted(pc.partifacts.items())
            },
            "conditions": conditions,
        }

    def proposals(self, *, operator_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        """Open and decided proposals the consensus still knows, newest first."""
        book = self.driver.cluster.book
        rows = [self._row(e.proposal, e.votes.values(), None) for e in book.open_proposals.values()]
        tasks = self._tasks()
        rows += [self._row(d.proposal, d.votes, d, tasks) for d in book.decided.values()]
        if operator_only:
            rows = [r for r in rows if r["operator"]]
        rows.sort(key=lambda r: (r["created"], r["id"]), reverse=True)
        return rows[:limit]

    def proposal(self, proposal_id: str) -> dict[str, Any]:
        """One proposal with its votes (:class:`UnknownProposal` if not known)."""
        book = self.driver.cluster.book
        entry = book.open_proposals.get(proposal_id)
        if entry is not None:
            return self._row(entry.proposal, entry.votes.values(), None)
        done = book.decided.get(proposal_id)
        if done is None:
            raise UnknownProposal(f"no proposal {proposal_id!r} (or it was forgotten)")
        return {
            **self._row(done.proposal, done.votes, done),
            "task": self._tasks().get(done.proposal.id),
        }

    def _tasks(self) -> dict[str, dict[str, Any]]:
        """Each task the delegation knows (open, or among the latest finished), by its id."""
        d = self.driver.delegation
        return {
            t.id: {
                "state": t.state.value,
                "executor": t.executor,
                "validator": t.validator,
                "integrator": t.integrator,
                "ok": t.ok,
                "result": t.result,
            }
            for t in [*d.done, *d.tasks.values()]
        }

    def _row(
        self,
        p: Proposal,
        votes: Any,
        decision: Decision | None,
        tasks: Mapping[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        listed = sorted(votes, key=lambda v: v.voter)
        yes = sum(v.yes for v in listed)
        return {
            "id": p.id,
            "kind": p.kind,
            "subject": p.subject,
            "payload": dict(p.payload),
            "proposer": p.proposer,
            "created": p.created,
            "deadline": p.deadline,
            "eligible": list(p.eligible),
            "status": "open" if decision is None else decision.outcome.value,
            "decided_at": None if decision is None else decision.decided_at,
            "yes": yes,
            "no": len(listed) - yes,
            "needed": needed(len(p.eligible)),
            "votes": [{"voter": v.voter, "yes": v.yes, "at": v.at} for v in listed],
            "operator": p.id in self.operator,
            "executed": self.operator.get(p.id),
            "task": None if tasks is None else tasks.get(p.id),
        }

    # proposing --------------------------------------------------------------------------

    def propose_text(self, text: str, now: float) -> dict[str, Any]:
        """Put ``text`` to the Validators as a ``command`` (delegated when it passes)."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("text", "must be a non-empty string")
        return self._propose("command", {"what": text}, f"command-{next(self._serial)}", now)

    def propose_glyph(
        self, fields: Mapping[str, Any], now: float, cell: str | None = None
    ) -> dict[str, Any]:
        """Propose running a glyph of ``fields`` (an id is drawn if missing) on ``cell`` or
        the least-loaded cell; checked now, submitted when it passes."""
        desk = self._glyph_desk()
        fields = dict(fields)
        fields.setdefault("id", f"g-{secrets.token_hex(6)}")
        glyph = Glyph(**fields)  # InputError for bad fields, now rather than at execution
        if desk.kinds and glyph.kind not in desk.kinds:
            raise InputError("kind", f"{glyph.kind!r} is not one of {', '.join(desk.kinds)}")
        if cell is not None and cell not in desk.members:
            raise UnknownCell(f"the cluster has no cell {cell!r}")
        payload = {"what": "glyph.submit", "glyph": fields, "cell": cell}
        return self._propose("glyph.submit", payload, f"glyph.submit-{glyph.id}", now)

    def propose_cancel(self, glyph_id: str, now: float) -> dict[str, Any]:
        """Propose ending glyph ``glyph_id`` (executed when it passes)."""
        self._glyph_desk()
        payload = {"what": "glyph.cancel", "glyph_id": glyph_id}
        subject = f"glyph.cancel-{glyph_id}-{next(self._serial)}"
        return self._propose("glyph.cancel", payload, subject, now)

    def _glyph_desk(self) -> GlyphDesk:
        if self.glyphs is None:
            raise InputError("glyph", "this cluster runs no glyphs (start it --cells full)")
        return self.glyphs

    def _propose(
        self, kind: str, payload: dict[str, Any], subject: str, now: float
    ) -> dict[str, Any]:
        d = self.driver
        now = now if self.clock is None else self.clock()
        proposer, eligible = d.cluster.proposer(now), d.cluster.validators()
        if proposer is None or proposer in d.silent or not eligible:
            stage = d.cluster.lifecycle.stage.value
            raise ProposalRefused(
                "no_quorum", f"no proposer and Validators yet (lifecycle {stage}); retry later"
            )
        if proposer not in d.keys:  # a node process holds its own key only
            raise ProposalRefused(
                "not_proposer", f"propose through the proposer's node, {proposer}"
            )
        p = Proposal.create(
            d.keys[proposer],
            kind=kind,
            subject=subject,
            payload=payload,
            proposer=proposer,
            created=now,
            deadline=now + self.vote_seconds,
            eligible=eligible,
        )
        try:
            d.open_operator(p, now)
        except ProtocolError as err:
            raise ProposalRefused(err.reason, err.message) from None
        self.operator[p.id] = None
        while len(self.operator) > _KEEP:
            self.operator.popitem(last=False)
        return self.proposal(p.id)

    # voting -----------------------------------------------------------------------------

    async def vote(self, proposal_id: str, cell: str, yes: bool, now: float) -> dict[str, Any]:
        """Cast ``cell``'s signed vote on ``proposal_id``; a pass executes the proposal.

        :class:`UnknownCell`, :class:`UnknownProposal`, or :class:`ProposalRefused` with the
        consensus' reason (``not_validator``, ``double``, ``late``, ``closed`` ...).
        """
        d = self.driver
        now = now if self.clock is None else self.clock()
        if cell not in d.keys:
            raise UnknownCell(f"the cluster has no cell {cell!r}")
        book = d.cluster.book
        if proposal_id not in book.open_proposals and proposal_id not in book.decided:
            raise UnknownProposal(f"no proposal {proposal_id!r} (or it was forgotten)")
        vote = Vote.create(d.keys[cell], proposal_id=proposal_id, voter=cell, yes=yes, at=now)
        try:
            decision = d.cast(vote, now)
        except ProtocolError as err:
            raise ProposalRefused(err.reason, err.message) from None
        if decision is not None and decision.passed and proposal_id in self.operator:
            self.operator[proposal_id] = await self._execute(decision.proposal, now)
        return self.proposal(proposal_id)

    async def _execute(self, p: Proposal, now: float) -> dict[str, Any]:
        """Do what a passed operator proposal says; the result (or why it failed)."""
        try:
            if p.kind == "glyph.submit" and self.glyphs is not None:
                glyph = self.glyphs.submit(p.payload["glyph"], p.payload.get("cell"))
                return {"ok": True, "detail": f"glyph {glyph['id']} on {glyph['owner']}"}
            if p.kind == "glyph.cancel" and self.glyphs is not None:
                glyph = await self.glyphs.cancel(str(p.payload["glyph_id"]), now)
                return {"ok": True, "detail": f"glyph {glyph['id']} cancelled"}
        except BecomingOneError as exc:
            return {"ok": False, "detail": str(exc)}
        return {"ok": True, "detail": "recorded"}
