"""``/api/v1/node``: who the cell is, its config (secrets redacted) and its running state.

Rule: identity and config do no I/O, so their handlers are ``async def`` and run on the event
loop; state may read a stopped cell's database, so it stays a plain function (a worker thread).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from becomingone.api.deps import Cell, Reader, State
from becomingone.api.errors import responses
from becomingone.api.schemas import NodePublic, NodeState

__all__ = ["READ_STATUSES", "router"]

#: What every read can answer besides 200: a remote read without a token, a storage failure.
READ_STATUSES = (403, 503)

router = APIRouter(prefix="/node", tags=["node"], responses=responses(*READ_STATUSES))


@router.get("")
async def identity(cell: Cell, _: Reader) -> NodePublic:
    """Name, public key, data dir, whether the cell runs."""
    return NodePublic(**cell.identity())


@router.get("/config")
async def config(cell: Cell, _: Reader) -> dict[str, Any]:
    """The cell's configuration as JSON; secret values are shown as "***"."""
    return cell.redacted_config()


@router.get("/state")
def state(cell: Cell, api: State, _: Reader) -> NodeState:
    """Samples, witness records, counts, the inbox and this API's error counts."""
    return NodeState(**cell.state(), api_errors=dict(api.errors))
