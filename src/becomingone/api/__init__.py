"""The HTTP + WebSocket API of a cell, a cluster or a Choir (FastAPI) and its typed clients.

Rule: the top layer beside ``commands``: it reads a cell through its read-only store and
writes only through the running cell's inbox; only this layer maps errors to HTTP statuses,
always as the one error body ``{"error": {"code", "message", "field"}}`` (docs/api.md).

The names below are imported on first use (PEP 562), so ``becomingone.api.settings`` (what
``up`` needs to parse ``--serve``) does not load FastAPI for a cell that serves nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from becomingone.api.app import PREFIX, attach_events, create_app
    from becomingone.api.cell import ServedCell, redact
    from becomingone.api.choir import ChoirService
    from becomingone.api.client import ApiError, CellClient, ChoirClient
    from becomingone.api.cluster import ServedCluster
    from becomingone.api.cluster_events import ClusterEvents
    from becomingone.api.errors import ApiProblem, ErrorBody, ErrorDetail
    from becomingone.api.events import EventHub, EventType, StreamEvent, Subscriber, events_of
    from becomingone.api.inbox import SignalInbox, merge_sources
    from becomingone.api.server import ApiServer
    from becomingone.api.settings import DEFAULT_HOST, DEFAULT_PORT, ApiSettings, parse_listen
    from becomingone.api.tokens import TokenBucket, TokenInfo, TokenStore

#: Where each exported name lives (a module of this package).
_HOME: dict[str, str] = {
    "PREFIX": "app",
    "attach_events": "app",
    "create_app": "app",
    "ServedCell": "cell",
    "redact": "cell",
    "ApiError": "client",
    "CellClient": "client",
    "ChoirClient": "client",
    "ChoirService": "choir",
    "ServedCluster": "cluster",
    "ClusterEvents": "cluster_events",
    "ApiProblem": "errors",
    "ErrorBody": "errors",
    "ErrorDetail": "errors",
    "EventHub": "events",
    "EventType": "events",
    "StreamEvent": "events",
    "Subscriber": "events",
    "events_of": "events",
    "SignalInbox": "inbox",
    "merge_sources": "inbox",
    "ApiServer": "server",
    "DEFAULT_HOST": "settings",
    "DEFAULT_PORT": "settings",
    "ApiSettings": "settings",
    "parse_listen": "settings",
    "TokenBucket": "tokens",
    "TokenInfo": "tokens",
    "TokenStore": "tokens",
}

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "PREFIX",
    "ApiError",
    "ApiProblem",
    "ApiServer",
    "ApiSettings",
    "CellClient",
    "ChoirClient",
    "ChoirService",
    "ClusterEvents",
    "ErrorBody",
    "ErrorDetail",
    "EventHub",
    "EventType",
    "ServedCell",
    "ServedCluster",
    "SignalInbox",
    "StreamEvent",
    "Subscriber",
    "TokenBucket",
    "TokenInfo",
    "TokenStore",
    "attach_events",
    "create_app",
    "events_of",
    "merge_sources",
    "parse_listen",
    "redact",
]


def __getattr__(name: str) -> Any:
    """Import an exported name from its module on first use."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
