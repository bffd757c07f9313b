"""``/api/v1/cluster/glyphs``: the glyphs of a served cluster — list, submit, cancel.

Rule: mounted only beside a cluster of full cells (``cluster --cells full --serve``); every
change goes through the cluster's :class:`~becomingone.runtime.GlyphDesk` on the driver's
event loop, so the handlers are ``async def`` and never run beside a tick in a thread. Writes
need a token (``cluster --data-dir D`` keeps them; ``becomingone tokens create NAME
--data-dir D``). A glyph moving between two cells cannot be cancelled: 409, retry.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status

from becomingone.api.cluster import ServedCluster
from becomingone.api.deps import Cluster, Reader, Writer
from becomingone.api.errors import ApiProblem, responses
from becomingone.api.routers.node import READ_STATUSES
from becomingone.api.schemas import GlyphCreate, GlyphList, GlyphPublic
from becomingone.runtime.glyph_desk import (
    GlyphBusy,
    GlyphDesk,
    GlyphExists,
    UnknownCell,
    UnknownGlyph,
)

__all__ = ["WRITE_STATUSES", "describe_kinds", "router"]

#: What a write can answer besides success: no or a bad token, revoked, read-only, too large,
#: invalid, rate-limited, a storage failure.
WRITE_STATUSES = (401, 403, 405, 413, 422, 429, 503)

router = APIRouter(prefix="/cluster/glyphs", tags=["glyphs"])

_ID = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.=-]+$")


async def _desk(cluster: Cluster) -> GlyphDesk:
    if cluster.desk is None:  # the routes are only mounted when there is a desk
        raise ApiProblem(404, "no_glyphs", "this cluster runs no glyphs (start it --cells full)")
    return cluster.desk


Desk = Annotated[GlyphDesk, Depends(_desk)]


@router.get("", responses=responses(*READ_STATUSES))
async def glyphs(desk: Desk, _: Reader) -> GlyphList:
    """Every glyph with its owner, by id."""
    rows = desk.glyphs()
    return GlyphList(count=len(rows), glyphs=[GlyphPublic(**r) for r in rows])


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=responses(404, 409, *WRITE_STATUSES)
)
async def submit(body: GlyphCreate, desk: Desk, _: Writer) -> GlyphPublic:
    """Run a new glyph on the named cell or the least-loaded one (422 a bad glyph, 404 an
    unknown cell, 409 an id already in the cluster)."""
    fields = body.model_dump(exclude={"cell"}, exclude_none=True)
    try:
        return GlyphPublic(**desk.submit(fields, body.cell))
    except UnknownCell as exc:
        raise ApiProblem(404, "unknown_cell", str(exc), field="cell") from None
    except GlyphExists as exc:
        raise ApiProblem(409, "glyph_exists", str(exc), field="id") from None


@router.delete("/{glyph_id}", responses=responses(404, 409, *WRITE_STATUSES))
async def cancel(
    glyph_id: Annotated[str, _ID], desk: Desk, cluster: Cluster, _: Writer
) -> GlyphPublic:
    """End a glyph on its owner, witnessed (404 unknown; 409 while it moves between cells)."""
    try:
        return GlyphPublic(**await desk.cancel(glyph_id, _now(cluster)))
    except UnknownGlyph as exc:
        raise ApiProblem(404, "unknown_glyph", str(exc), field="glyph_id") from None
    except GlyphBusy as exc:
        raise ApiProblem(409, "glyph_moving", str(exc), field="glyph_id") from None


def _now(cluster: ServedCluster) -> float:
    """Cluster time of the newest tick (0 before the first)."""
    last = cluster.latest()
    return float(last["time"]) if last else 0.0


def describe_kinds(document: dict[str, Any], kinds: list[str]) -> None:
    """Make the OpenAPI ``GlyphCreate.kind`` the cluster's kinds (an app's own document)."""
    if kinds:
        schema = document["components"]["schemas"]["GlyphCreate"]["properties"]["kind"]
        schema["enum"] = list(kinds)
