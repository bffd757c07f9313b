"""``/api/v1/cluster/glyphs``: the glyphs of a served cluster — list, submit, cancel.

Rule: mounted only beside a cluster of full cells (``cluster --cells full --serve``) — the
list alone (:data:`list_router`) also beside a cluster whose glyph list is read from the
ownership records without a desk of its own (``node --kind witness --glyphs --serve``); every
change goes through the cluster's :class:`~becomingone.runtime.GlyphDesk` on the driver's
event loop, so the handlers are ``async def`` and never run beside a tick in a thread. Writes
need a token (``cluster --data-dir D`` keeps them; ``becomingone tokens create NAME
--data-dir D``). A glyph moving between two cells cannot be cancelled: 409, retry. When the
cluster also runs roles (``--roles``) and its lifecycle is AUTONOMOUS, a submit or a cancel is
not applied: it becomes a proposal the Validators decide (202 with the proposal; oversight is
feedback only), carried out when it passes; below AUTONOMOUS it applies at once.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status
from fastapi.responses import JSONResponse

from becomingone.api.cluster import ServedCluster
from becomingone.api.deps import Cluster, Reader, Writer
from becomingone.api.errors import ApiProblem, responses
from becomingone.api.routers.node import READ_STATUSES
from becomingone.api.schemas import GlyphCreate, GlyphList, GlyphPublic, ProposalPublic
from becomingone.runtime.glyph_desk import (
    GlyphBusy,
    GlyphDesk,
    GlyphExists,
    UnknownCell,
    UnknownGlyph,
)
from becomingone.runtime.proposal_desk import ProposalDesk, ProposalRefused

__all__ = ["WRITE_STATUSES", "cluster_now", "describe_kinds", "list_router", "router"]

#: What a write can answer besides success: no or a bad token, revoked, read-only, too large,
#: invalid, rate-limited, a storage failure.
WRITE_STATUSES = (401, 403, 405, 413, 422, 429, 503)

router = APIRouter(prefix="/cluster/glyphs", tags=["glyphs"])
#: ``GET /cluster/glyphs`` (mounted beside a desk or a cluster's ``listing``).
list_router = APIRouter(prefix="/cluster/glyphs", tags=["glyphs"])

_ID = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.=-]+$")


async def _desk(cluster: Cluster) -> GlyphDesk:
    if cluster.desk is None:  # the routes are only mounted when there is a desk
        raise ApiProblem(404, "no_glyphs", "this cluster runs no glyphs (start it --cells full)")
    return cluster.desk


Desk = Annotated[GlyphDesk, Depends(_desk)]

#: The answer of a write turned into a proposal (an AUTONOMOUS cluster).
PROPOSED: dict[int | str, dict[str, Any]] = {
    202: {
        "model": ProposalPublic,
        "description": "AUTONOMOUS: not applied but proposed to the Validators",
    }
}


def _governing(cluster: ServedCluster) -> ProposalDesk | None:
    """The proposal desk when operator commands must become proposals (AUTONOMOUS)."""
    desk = cluster.partifacts
    return desk if desk is not None and desk.governs() else None


def _proposed(row: dict[str, Any]) -> JSONResponse:
    return JSONResponse(ProposalPublic(**row).model_dump(mode="json"), status_code=202)


@list_router.get("", responses=responses(*READ_STATUSES))
async def glyphs(cluster: Cluster, _: Reader) -> GlyphList:
    """Every glyph with its owner, by id (a node process: every glyph of its cluster from the
    ownership records, ``mine`` marking its own; a witness: none is its own)."""
    listing = cluster.listing or (await _desk(cluster)).glyphs
    rows = listing()
    return GlyphList(count=len(rows), glyphs=[GlyphPublic(**r) for r in rows])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={**PROPOSED, **responses(404, 409, *WRITE_STATUSES)},
    response_model=GlyphPublic,
)
async def submit(
    body: GlyphCreate, desk: Desk, cluster: Cluster, _: Writer
) -> GlyphPublic | JSONResponse:
    """Run a new glyph on the named cell or the least-loaded one (422 a bad glyph, 404 an
    unknown cell, 409 an id already in the cluster); AUTONOMOUS: 202, proposed instead (409
    ``no_quorum`` when it cannot be)."""
    fields = body.model_dump(exclude={"cell"}, exclude_none=True)
    try:
        governing = _governing(cluster)
        if governing is not None:
            return _proposed(governing.propose_glyph(fields, cluster_now(cluster), body.cell))
        return GlyphPublic(**desk.submit(fields, body.cell))
    except ProposalRefused as exc:
        raise ApiProblem(409, exc.reason, str(exc)) from None
    except UnknownCell as exc:
        raise ApiProblem(404, "unknown_cell", str(exc), field="cell") from None
    except GlyphExists as exc:
        raise ApiProblem(409, "glyph_exists", str(exc), field="id") from None


@router.delete(
    "/{glyph_id}",
    responses={**PROPOSED, **responses(404, 409, *WRITE_STATUSES)},
    response_model=GlyphPublic,
)
async def cancel(
    glyph_id: Annotated[str, _ID], desk: Desk, cluster: Cluster, _: Writer
) -> GlyphPublic | JSONResponse:
    """End a glyph on its owner, witnessed; a glyph that has already ended answers its final
    state (``ended`` with the reason), so a cancel is idempotent (404 an id the cluster never
    ran or has forgotten; 409 while it moves between cells); AUTONOMOUS: 202, proposed
    instead (404 unknown now; 409 ``no_quorum``)."""
    try:
        governing = _governing(cluster)
        if governing is not None:
            if not any(g["id"] == glyph_id for g in desk.glyphs()):
                raise UnknownGlyph(f"no cell owns glyph {glyph_id!r}")
            return _proposed(governing.propose_cancel(glyph_id, cluster_now(cluster)))
        return GlyphPublic(**await desk.cancel(glyph_id, cluster_now(cluster)))
    except ProposalRefused as exc:
        raise ApiProblem(409, exc.reason, str(exc)) from None
    except UnknownGlyph as exc:
        raise ApiProblem(404, "unknown_glyph", str(exc), field="glyph_id") from None
    except GlyphBusy as exc:
        raise ApiProblem(409, "glyph_moving", str(exc), field="glyph_id") from None


def cluster_now(cluster: ServedCluster) -> float:
    """Cluster time of the newest tick (0 before the first)."""
    last = cluster.latest()
    return float(last["time"]) if last else 0.0


def describe_kinds(document: dict[str, Any], kinds: list[str]) -> None:
    """Make the OpenAPI ``GlyphCreate.kind`` the cluster's kinds (an app's own document)."""
    if kinds:
        schema = document["components"]["schemas"]["GlyphCreate"]["properties"]["kind"]
        schema["enum"] = list(kinds)
