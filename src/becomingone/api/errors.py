"""The API's one error body and the only place errors become HTTP statuses.

Rule: handlers raise :class:`ApiProblem` (or let a ``becomingone.errors`` type escape); the
handlers installed by :func:`install_error_handlers` turn every error into the one documented
body ``{"error": {"code", "message", "field"}}`` and count it by code. ``InputError`` → 422,
``IntegrityError`` → 409, any other ``BecomingOneError`` → 503; FastAPI's validation errors →
422 naming the first bad field; an unknown route → 404.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from becomingone.errors import BecomingOneError, InputError, IntegrityError

__all__ = [
    "ApiProblem",
    "ErrorBody",
    "ErrorDetail",
    "error_response",
    "install_error_handlers",
    "responses",
]

#: What each status means in this API (the description OpenAPI shows for it).
STATUS_TEXT: dict[int, str] = {
    400: "Malformed request (bad JSON or CSV, wrong content type)",
    401: "Missing or unknown bearer token",
    403: "Token revoked, or a read from beyond loopback without a token",
    404: "No such resource",
    405: "Writes are refused by a read-only server",
    409: "The witness chain failed verification",
    413: "Request body larger than the limit",
    422: "Well-formed but invalid input (names the field)",
    429: "Rate limit of the token exceeded (see Retry-After)",
    503: "The cell cannot take it now (queue full, storage failed)",
}


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``code``, a one-line ``message``, the ``field`` at fault."""

    code: str = Field(description="Stable machine-readable code, e.g. 'bad_json', 'rate_limited'")
    message: str = Field(description="One line for a person")
    field: str | None = Field(default=None, description="The parameter or body field at fault")


class ErrorBody(BaseModel):
    """The one error body of every status >= 400."""

    error: ErrorDetail


class ApiProblem(Exception):
    """An error answer: HTTP ``status``, ``code``, one-line ``message``, the ``field`` at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry documenting ``statuses`` with the error body."""
    return {s: {"model": ErrorBody, "description": STATUS_TEXT[s]} for s in statuses}


def error_response(problem: ApiProblem) -> JSONResponse:
    """The JSON response of ``problem``."""
    body = ErrorBody(
        error=ErrorDetail(code=problem.code, message=problem.message, field=problem.field)
    )
    return JSONResponse(body.model_dump(), status_code=problem.status, headers=problem.headers)


def _problem_of(exc: Exception) -> ApiProblem:
    """The answer for an exception that reached the app's edge."""
    if isinstance(exc, ApiProblem):
        return exc
    if isinstance(exc, InputError):
        return ApiProblem(422, "invalid", exc.message, field=exc.parameter)
    if isinstance(exc, IntegrityError):
        return ApiProblem(409, "integrity", str(exc))
    if isinstance(exc, BecomingOneError):
        return ApiProblem(503, "unavailable", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        return ApiProblem(exc.status_code, code, str(exc.detail), headers=headers)
    raise TypeError(exc)  # pragma: no cover - only registered types arrive here


def _validation_problem(exc: RequestValidationError) -> ApiProblem:
    """422 naming the first bad field (``query.limit``, ``body.samples``)."""
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = " ".join(str(first.get("msg", "invalid request")).split())
    return ApiProblem(422, "invalid", message, field=where or None)


def _allowed(request: Request) -> str:
    """Every method the app serves on this path (Starlette names only the first route's when
    a path has one route per method)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in ("DELETE", "GET", "PATCH", "POST", "PUT")
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI, counts: Counter[str]) -> None:
    """Make every error of ``app`` the one error body; count each answer by ``code``."""

    async def answer(request: Request, exc: Exception) -> JSONResponse:
        problem = (
            _validation_problem(exc)
            if isinstance(exc, RequestValidationError)
            else _problem_of(exc)
        )
        if problem.code == "method_not_allowed":
            problem.headers["Allow"] = _allowed(request)
        counts[problem.code] += 1
        return error_response(problem)

    for kind in (ApiProblem, BecomingOneError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(kind, answer)
