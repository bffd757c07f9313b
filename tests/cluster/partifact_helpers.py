"""Helpers for the partifact tests: deterministic keys, a cluster driven to Ø2Ø1, and one
consensus round (the proposer signs, every listed validator votes)."""

from __future__ import annotations

from collections.abc import Iterable

from becomingone.cluster import Decision, PartifactCluster, Proposal, Vote
from becomingone.keys import NodeKey


def make_keys(n: int, prefix: str = "c") -> dict[str, NodeKey]:
    """``n`` deterministic keys named ``c00``, ``c01``, ..."""
    return {f"{prefix}{i:02d}": NodeKey.from_seed(bytes([i + 1]) * 32) for i in range(n)}


def public(keys: dict[str, NodeKey]) -> dict[str, bytes]:
    """Cell → public key."""
    return {c: k.public_bytes for c, k in keys.items()}


def ignite(pc: PartifactCluster, cells: Iterable[str], now: float, c: float = 0.9) -> float:
    """Feed collapses until every cell in ``cells`` is Ø2Ø1; returns the time after."""
    cells = list(cells)
    for _ in range(pc.policy.m):
        for cell in cells:
            pc.observe(cell, collapsed=True, c_cluster=c, now=now)
        now += 0.1
    return now


def awaken(pc: PartifactCluster, cells: Iterable[str], now: float) -> float:
    """One collapse each (Ø1Ø2) at a low C so nobody ignites; returns the time after."""
    for cell in cells:
        pc.observe(cell, collapsed=True, c_cluster=0.1, now=now)
    return now + 0.1


def proposal(
    pc: PartifactCluster,
    keys: dict[str, NodeKey],
    now: float,
    *,
    kind: str = "intent",
    payload: dict[str, object] | None = None,
    proposer: str | None = None,
    subject: str | None = None,
    ttl: float = 1.0,
) -> Proposal:
    """A proposal signed by ``proposer`` (default: the cluster's) for the current Validators."""
    who = proposer or pc.proposer(now)
    assert who is not None
    return Proposal.create(
        keys[who],
        kind=kind,
        subject=subject or f"{kind}@{now}",
        payload=payload if payload is not None else {"what": "probe"},
        proposer=who,
        created=now,
        deadline=now + ttl,
        eligible=pc.validators(),
    )


def vote(keys: dict[str, NodeKey], p: Proposal, voter: str, yes: bool, at: float) -> Vote:
    """``voter``'s signed vote on ``p``."""
    return Vote.create(keys[voter], proposal_id=p.id, voter=voter, yes=yes, at=at)


def decide(
    pc: PartifactCluster, keys: dict[str, NodeKey], p: Proposal, now: float
) -> Decision | None:
    """Open ``p`` and let every eligible validator vote its ``judge`` verdict; settle it."""
    pc.propose(p, now)
    for v in p.eligible:
        d = pc.vote(vote(keys, p, v, pc.judge(v, p), now), now)
        if d is not None:
            pc.settle(d)
            return d
    return None
