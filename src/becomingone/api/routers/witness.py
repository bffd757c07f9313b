"""``/api/v1/witness``: verify the whole chain; records by page; one record by seq."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from becomingone.api.deps import Cell, Reader, Settings
from becomingone.api.errors import ApiProblem, responses
from becomingone.api.routers.node import READ_STATUSES
from becomingone.api.schemas import RecordPage, RecordPublic, VerifyPublic
from becomingone.api.settings import MAX_INDEX, MAX_PAGE
from becomingone.errors import InputError
from becomingone.witnessing import WitnessRecord

__all__ = ["router"]

router = APIRouter(prefix="/witness", tags=["witness"], responses=responses(*READ_STATUSES))


def _public(record: WitnessRecord) -> RecordPublic:
    return RecordPublic(**record.summary())


@router.get("/verify")
async def verify(cell: Cell, _: Reader) -> VerifyPublic:
    """SQLite's integrity check, then the whole stored chain walked against the signed head
    (``ok`` needs both; a bad chain names its first bad record)."""
    report, integrity = await run_in_threadpool(cell.verify_chain)
    return VerifyPublic(
        ok=report.ok and integrity == "ok",
        integrity=integrity,
        chain_ok=report.ok,
        checked=report.checked,
        first_bad=report.first_bad,
        reason=report.reason or None,
    )


@router.get("/records", responses=responses(422))
def records(
    cell: Cell,
    settings: Settings,
    _: Reader,
    start: Annotated[
        int, Query(ge=0, le=MAX_INDEX, description="Position of the first record")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Records in the page")] = 100,
) -> RecordPage:
    """Stored witness records in chain order, one page."""
    if limit > settings.max_page:
        raise InputError("limit", f"at most {settings.max_page}, got {limit}")
    page, total = cell.records(start, limit)
    after = start + len(page)
    return RecordPage(
        total=total,
        start=start,
        records=[_public(r) for r in page],
        next=after if after < total else None,
    )


@router.get("/records/{seq}", responses=responses(404, 422))
def record(cell: Cell, _: Reader, seq: Annotated[int, Path(ge=0, le=MAX_INDEX)]) -> RecordPublic:
    """The record with this seq (404 if the chain is shorter)."""
    page, _total = cell.records(seq, 1)
    if not page or page[0].seq != seq:
        raise ApiProblem(404, "not_found", f"no witness record {seq}", field="seq")
    return _public(page[0])
