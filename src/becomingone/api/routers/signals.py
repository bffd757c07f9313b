"""``/api/v1/signals``: samples posted into the running cell, as JSON or CSV.

Rule: a body is read up to the app's ``max_body_bytes`` (413 beyond), parsed and validated in
full (400 malformed, 422 invalid: NaN, ±inf, wrong width, too many rows) before anything
reaches the cell; then it joins the cell's inbox whole (503 with Retry-After when the inbox is
full). Every refusal is counted by code in ``/node/state``'s ``api_errors``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from becomingone.api.deps import Cell, Settings, Writer
from becomingone.api.errors import ApiProblem, responses
from becomingone.api.inbox import CSV_NUMBER, CSV_SEPARATOR, parse_csv, parse_json
from becomingone.api.schemas import SignalsAccepted
from becomingone.api.settings import MAX_SAMPLES
from becomingone.errors import InputError

__all__ = ["csv_pattern", "read_body", "router", "signals_body"]

router = APIRouter(prefix="/signals", tags=["signals"])

_CSV_EXAMPLE = "0.10\n0.25\n0.40\n"


def csv_pattern(channels: int) -> str:
    r"""The regular expression of a CSV body for ``channels`` channels: lines of exactly that
    many numbers (separated by a comma or blanks), blank lines and ``#`` lines, at least one
    sample.

    >>> import re
    >>> bool(re.match(csv_pattern(2), "# t\n0.1, 2e-3\n\n-4 5\n"))
    True
    >>> [bool(re.match(csv_pattern(1), s)) for s in ("0.1\n0.2", "e2", "0.1 0.2", "\n")]
    [True, False, False, False]
    """
    data = rf"[ \t]*{CSV_NUMBER}(?:{CSV_SEPARATOR}{CSV_NUMBER}){{{channels - 1}}}[ \t]*"
    other = r"[ \t]*(?:#[^\n]*)?"
    line = rf"(?:{data}|{other})"
    return rf"^(?:{other}\r?\n)*{data}(?:\r?\n{line})*\r?\n?$"


def signals_body(channels: int, max_samples: int) -> dict[str, Any]:
    """The OpenAPI request body of POST /signals for a cell with ``channels`` channels: JSON
    ``{"samples": [...]}`` (numbers, or rows of exactly ``channels`` numbers) or CSV text."""
    sample: dict[str, Any] = {"type": "number"}
    if channels > 1:
        sample = {"type": "array", "items": sample, "minItems": channels, "maxItems": channels}
    samples = {"type": "array", "items": sample, "minItems": 1, "maxItems": max_samples}
    schema = {
        "type": "object",
        "properties": {"samples": samples},
        "required": ["samples"],
        "additionalProperties": False,
        "title": "SignalsCreate",
    }
    example = [[0.1] * channels] if channels > 1 else [0.1, 0.25, 0.4]
    csv = {"type": "string", "pattern": csv_pattern(channels)}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema, "example": {"samples": example}},
                "text/csv": {"schema": csv, "example": _CSV_EXAMPLE},
            },
        }
    }


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than ``limit`` bytes whatever Content-Length says."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiProblem(413, "too_large", f"body of {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiProblem(413, "too_large", f"body over the limit of {limit} bytes")
    return bytes(body)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=signals_body(1, MAX_SAMPLES),
    responses=responses(400, 401, 403, 405, 413, 422, 429, 503),
)
async def post_signals(
    request: Request, cell: Cell, settings: Settings, token: Writer
) -> SignalsAccepted:
    """Queue samples for the running cell (JSON {"samples": [...]} or text/csv)."""
    if cell.inbox is None:
        raise ApiProblem(
            405,
            "read_only",
            "this server serves a stopped cell read-only",
            headers={"Allow": ""},
        )
    body = await read_body(request, settings.max_body_bytes)
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind not in ("application/json", "text/csv"):
        raise ApiProblem(
            400, "bad_content_type", "send application/json or text/csv", field="Content-Type"
        )
    parse = parse_json if kind == "application/json" else parse_csv
    try:
        batch = parse(body, cell.inbox.channels, settings.max_samples)
    except InputError as exc:
        malformed = exc.parameter == "body" or exc.parameter.startswith("line ")
        code = ("bad_json" if kind == "application/json" else "bad_csv") if malformed else "invalid"
        raise ApiProblem(
            400 if malformed else 422, code, exc.message, field=exc.parameter
        ) from None
    if not cell.inbox.put(batch):
        raise ApiProblem(
            503,
            "inbox_full",
            "the cell's inbox is full; retry shortly",
            headers={"Retry-After": "1"},
        )
    return SignalsAccepted(accepted=len(batch), queued_batches=cell.inbox.queue.qsize())
