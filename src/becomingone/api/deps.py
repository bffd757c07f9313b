"""FastAPI dependencies in one place: the served cell, the settings, read and write access.

Rule: every route takes what it needs through these ``Annotated`` aliases; access rules live
here only. The dependencies that only look at the request and the app's state are
``async def``, so they run on the event loop instead of taking a worker thread each (FastAPI
runs every plain ``def`` dependency in its thread pool); those that read the database stay
plain functions or hand that read to a thread. Writes need ``Authorization: Bearer <token>``
of an active token and spend one unit of that token's
:class:`~becomingone.api.tokens.TokenBucket`; a read-only server answers 405 to every write
before looking at the token. Reads are open from loopback clients (and from anywhere when
``public_reads``); others need a valid token.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool

from becomingone.api.cell import ServedCell
from becomingone.api.cluster import ServedCluster
from becomingone.api.errors import ApiProblem
from becomingone.api.events import EventHub
from becomingone.api.settings import ApiSettings, is_loopback
from becomingone.api.tokens import TokenBucket, TokenInfo, TokenStore

__all__ = ["ApiState", "Cell", "Cluster", "Hub", "Reader", "Settings", "Writer", "api_state"]


@dataclass(slots=True, kw_only=True)
class ApiState:
    """Everything one app holds: the cell and/or the cluster, settings, tokens, the hub,
    buckets, counts and the Prometheus registry of ``/metrics`` (None: no metrics)."""

    cell: ServedCell | None
    settings: ApiSettings
    tokens: TokenStore | None
    hub: EventHub
    clock: Callable[[], float]
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    cluster: ServedCluster | None = None
    metrics: CollectorRegistry | None = None


async def api_state(request: Request) -> ApiState:
    """The app's :class:`ApiState`."""
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(api_state)]


async def _cell(state: State) -> ServedCell:
    if state.cell is None:  # the cell routes are only mounted when there is a cell
        raise ApiProblem(404, "no_cell", "this server serves a cluster, not one cell")
    return state.cell


async def _cluster(state: State) -> ServedCluster:
    if state.cluster is None:  # the cluster routes are only mounted when there is a cluster
        raise ApiProblem(404, "no_cluster", "this server serves one cell, not a cluster")
    return state.cluster


async def _settings(state: State) -> ApiSettings:
    return state.settings


async def _hub(state: State) -> EventHub:
    return state.hub


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem(
            401,
            "unauthorized",
            "send Authorization: Bearer <token>",
            field="Authorization",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def _token(state: ApiState, request: Request) -> TokenInfo:
    """The active token of the request (401 unknown, 403 revoked)."""
    token = _bearer(request)
    if state.tokens is None:
        raise ApiProblem(
            401,
            "unauthorized",
            "this server keeps no tokens (a cluster keeps them in its --data-dir)",
            field="Authorization",
            headers={"WWW-Authenticate": "Bearer"},
        )
    info = state.tokens.check(token)
    if info is None:
        raise ApiProblem(
            401,
            "unauthorized",
            "unknown token",
            field="Authorization",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not info.active:
        raise ApiProblem(
            403, "token_revoked", f"token {info.name!r} was revoked", field="Authorization"
        )
    return info


def _writer(state: State, request: Request) -> TokenInfo:
    """405 on a read-only server; else an active token with rate left (429 otherwise)."""
    if state.settings.read_only:
        raise ApiProblem(
            405,
            "read_only",
            state.settings.read_only_reason,
            headers={"Allow": ""},
        )
    info = _token(state, request)
    s, now = state.settings, state.clock()
    bucket = state.buckets.setdefault(
        info.name,
        TokenBucket(rate=s.rate_per_second, burst=s.rate_burst, level=s.rate_burst, at=now),
    )
    if not bucket.take(now):
        wait = bucket.wait(now)
        raise ApiProblem(
            429,
            "rate_limited",
            f"token {info.name!r} is over {s.rate_per_second:g} writes/s "
            f"(burst {s.rate_burst}); retry in {wait:.2f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    return info


async def _reader(state: State, request: Request) -> None:
    """Reads: open from loopback or when ``public_reads``; else an active token (checked in
    a worker thread: it reads the token log)."""
    host = request.client.host if request.client else ""
    if state.settings.public_reads or is_loopback(host):
        return
    try:
        await run_in_threadpool(_token, state, request)
    except ApiProblem as exc:
        raise ApiProblem(
            403,
            "remote_read",
            f"reads from {host} need a token ({exc.message})",
            field="Authorization",
        ) from None


Cell = Annotated[ServedCell, Depends(_cell)]
Cluster = Annotated[ServedCluster, Depends(_cluster)]
Settings = Annotated[ApiSettings, Depends(_settings)]
Hub = Annotated[EventHub, Depends(_hub)]
Writer = Annotated[TokenInfo, Depends(_writer)]
Reader = Annotated[None, Depends(_reader)]
