"""The HTTP + WebSocket API of a cell or a cluster (FastAPI) and its typed client.

Rule: the top layer beside ``commands``: it reads a cell through its read-only store and
writes only through the running cell's inbox; only this layer maps errors to HTTP statuses,
always as the one error body ``{"error": {"code", "message", "field"}}`` (docs/api.md).
"""

from becomingone.api.app import PREFIX, attach_events, create_app
from becomingone.api.cell import ServedCell, redact
from becomingone.api.client import ApiError, CellClient
from becomingone.api.cluster import ServedCluster
from becomingone.api.errors import ApiProblem, ErrorBody, ErrorDetail
from becomingone.api.events import EventHub, EventType, StreamEvent, Subscriber, events_of
from becomingone.api.inbox import SignalInbox, merge_sources
from becomingone.api.server import ApiServer
from becomingone.api.settings import DEFAULT_HOST, DEFAULT_PORT, ApiSettings, parse_listen
from becomingone.api.tokens import TokenBucket, TokenInfo, TokenStore

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "PREFIX",
    "ApiError",
    "ApiProblem",
    "ApiServer",
    "ApiSettings",
    "CellClient",
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
