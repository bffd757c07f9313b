"""``/api/v1/cluster/roles`` and ``/api/v1/cluster/proposals``: the partifact consensus of a
served ``cluster --roles`` — roles and lifecycle, proposals, propose, vote as a cell.

Rule: mounted only beside a ``--roles`` cluster (or node, or a witness node's read-only view
of the consensus, whose writes answer 405 ``read_only``); every call goes through the cluster's
:class:`~becomingone.runtime.ProposalDesk` on the driver's event loop (``async def``
handlers, between ticks). Writes need a token. Trust model: all cells live in the cluster's one
process and their keys with them, so the holder of a write token may vote as any of its cells;
the consensus still refuses a cell that is not an eligible Validator (409 ``not_validator``;
a cell the cluster does not have: 409 ``unknown_cell``),
a second vote (409 ``double``), a late one (409 ``late``) and one on a decided proposal (409
``closed``). Times are cluster seconds (those of the newest tick). A body that is not UTF-8
JSON is 400.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from becomingone.api.deps import Cluster, Reader, State, Writer
from becomingone.api.errors import ApiProblem, responses
from becomingone.api.routers.glyphs import WRITE_STATUSES, cluster_now
from becomingone.api.routers.node import READ_STATUSES
from becomingone.api.schemas import (
    ProposalGlyph,
    ProposalList,
    ProposalPublic,
    ProposalText,
    RolesPublic,
    VoteCreate,
)
from becomingone.runtime.glyph_desk import UnknownCell
from becomingone.runtime.proposal_desk import ProposalDesk, ProposalRefused, UnknownProposal

__all__ = ["refused", "router"]

router = APIRouter(prefix="/cluster", tags=["partifacts"])

_ID = Path(min_length=16, max_length=16, pattern=r"^[0-9a-f]{16}$")


async def _desk(cluster: Cluster) -> ProposalDesk:
    if cluster.partifacts is None:  # the routes are only mounted when there is a desk
        raise ApiProblem(404, "no_roles", "this cluster runs no roles (start it --roles)")
    return cluster.partifacts


Desk = Annotated[ProposalDesk, Depends(_desk)]


def refused(exc: ProposalRefused) -> ApiProblem:
    """The 409 of a refusal by the consensus, its reason as the code."""
    return ApiProblem(409, exc.reason, str(exc))


@router.get("/roles", responses=responses(*READ_STATUSES))
async def roles(desk: Desk, api: State, _: Reader) -> RolesPublic:
    """The lifecycle stage and each condition with its measured value, the term, the
    Genesis, the Validators and every cell's state and role; ``writable`` is false on a
    read-only view (a witness node's), where proposing and voting answer 405."""
    return RolesPublic.model_validate({**desk.roles(), "writable": not api.settings.read_only})


@router.get("/proposals", responses=responses(422, *READ_STATUSES))
async def proposals(
    desk: Desk,
    _: Reader,
    operator: Annotated[bool, Query(description="only those proposed through the API")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ProposalList:
    """Open and decided proposals with their votes, newest first (decided ones are forgotten
    a minute after their deadline; the log keeps them)."""
    rows = desk.proposals(operator_only=operator, limit=limit)
    return ProposalList(count=len(rows), proposals=[ProposalPublic(**r) for r in rows])


@router.get("/proposals/{proposal_id}", responses=responses(404, 422, *READ_STATUSES))
async def proposal(proposal_id: Annotated[str, _ID], desk: Desk, _: Reader) -> ProposalPublic:
    """One proposal with its votes (404: unknown or forgotten)."""
    try:
        return ProposalPublic(**desk.proposal(proposal_id))
    except UnknownProposal as exc:
        raise ApiProblem(404, "unknown_proposal", str(exc), field="proposal_id") from None


@router.post(
    "/proposals",
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 404, 409, *WRITE_STATUSES),
)
async def propose(
    body: ProposalText | ProposalGlyph, desk: Desk, cluster: Cluster, _: Writer
) -> ProposalPublic:
    """Put a text (``command``) or a glyph (``glyph.submit``) to the Validators, signed by
    the current proposer; it stays open 300 cluster seconds (409 ``no_quorum`` before the
    cluster has a proposer and Validators; 422 a bad glyph or a cluster without glyphs; 404
    an unknown cell)."""
    now = cluster_now(cluster)
    try:
        if isinstance(body, ProposalText):
            return ProposalPublic(**desk.propose_text(body.text, now))
        fields = body.glyph.model_dump(exclude={"cell"}, exclude_none=True)
        return ProposalPublic(**desk.propose_glyph(fields, now, body.glyph.cell))
    except ProposalRefused as exc:
        raise refused(exc) from None
    except UnknownCell as exc:
        raise ApiProblem(404, "unknown_cell", str(exc), field="cell") from None


@router.post("/proposals/{proposal_id}/votes", responses=responses(400, 404, 409, *WRITE_STATUSES))
async def vote(
    proposal_id: Annotated[str, _ID],
    body: VoteCreate,
    desk: Desk,
    cluster: Cluster,
    _: Writer,
) -> ProposalPublic:
    """Vote yes or no as ``cell`` (its key signs the vote in the cluster process); the
    proposal after the vote — a pass executes it (404 unknown proposal; 409 a cell the
    cluster does not have, ``unknown_cell``, or the consensus' refusal: ``not_validator``,
    ``double``, ``late``, ``closed``, ``conflicting``)."""
    try:
        row = await desk.vote(proposal_id, body.cell, body.vote == "yes", cluster_now(cluster))
    except UnknownProposal as exc:
        raise ApiProblem(404, "unknown_proposal", str(exc), field="proposal_id") from None
    except UnknownCell as exc:  # the proposal exists; this cell cannot vote on it
        raise ApiProblem(409, "unknown_cell", str(exc), field="cell") from None
    except ProposalRefused as exc:
        raise refused(exc) from None
    return ProposalPublic(**row)
