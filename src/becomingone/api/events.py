"""The event stream: every event is derived from one witness record, live or replayed.

Rule: :func:`events_of` is the one mapping from a witness record to stream events — a
``witness`` event for every record, plus ``tick`` for an ``ingest`` record, ``collapse`` for a
``collapse`` record, ``dissipate`` for an ``ingest`` record whose outcome is dissipate and, for
a record of a witnessed glyph, role or proposal kind (:data:`WITNESSED_TYPES`: ``glyph.fired``,
``glyph.migrated``, ``glyph.ended``, ``role.changed``, ``proposal.opened``,
``proposal.decided``), the typed event of that name with the record's payload — so
a client resuming from the stored chain sees exactly what a live client saw. Each event
carries the record's ``seq``, the resume token. :class:`EventHub` fans events out to
subscribers, each with a bounded queue that drops its oldest event when full and counts the
drops. No I/O here.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from becomingone.errors import InputError
from becomingone.witnessing import WitnessRecord

__all__ = [
    "WITNESSED_TYPES",
    "EventHub",
    "EventType",
    "StreamEvent",
    "Subscriber",
    "events_of",
    "parse_types",
]


class EventType(enum.StrEnum):
    """The kinds of event on ``/api/v1/events``."""

    TICK = "tick"
    COLLAPSE = "collapse"
    DISSIPATE = "dissipate"
    WITNESS = "witness"
    #: One tick of a served cluster (``/api/v1/cluster/events``; ``seq`` is the tick).
    CLUSTER_TICK = "cluster.tick"
    #: A glyph appeared in the cluster (cluster stream only: submissions are not witnessed).
    GLYPH_SUBMITTED = "glyph.submitted"
    #: Glyph runs: one summary per tick on the cluster stream, one per run on a cell's.
    GLYPH_FIRED = "glyph.fired"
    #: A glyph runs on another cell now.
    GLYPH_MIGRATED = "glyph.migrated"
    #: A glyph ended (energy, lifetime, cancelled).
    GLYPH_ENDED = "glyph.ended"
    #: A cell without a role got one (cluster stream).
    ROLE_ASSIGNED = "role.assigned"
    #: A cell's role changed.
    ROLE_CHANGED = "role.changed"
    #: The lifecycle stage or the set of its conditions that hold changed (cluster stream).
    LIFECYCLE_CHANGED = "lifecycle.changed"
    #: A proposal was put to the Validators.
    PROPOSAL_OPENED = "proposal.opened"
    #: Votes on one proposal in one tick, with its tally after them (cluster stream).
    PROPOSAL_VOTE = "proposal.vote"
    #: A proposal passed, failed or expired.
    PROPOSAL_DECIDED = "proposal.decided"


#: The witness record kinds a cell writes that also become a typed event of the same name.
WITNESSED_TYPES = {
    t.value: t
    for t in (
        EventType.GLYPH_FIRED,
        EventType.GLYPH_MIGRATED,
        EventType.GLYPH_ENDED,
        EventType.ROLE_CHANGED,
        EventType.PROPOSAL_OPENED,
        EventType.PROPOSAL_DECIDED,
    )
}


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEvent:
    """One event: its ``type``, the ``seq`` of the witness record it comes from, its data."""

    type: EventType
    seq: int
    data: Mapping[str, Any]

    def as_json(self, dropped: int) -> dict[str, Any]:
        """The message sent to a client, with the client's drop count so far."""
        return {
            "type": self.type.value,
            "seq": self.seq,
            "data": dict(self.data),
            "dropped": dropped,
        }


def events_of(record: WitnessRecord | Mapping[str, Any]) -> list[StreamEvent]:
    """The events of one witness record (a record or its ``summary()`` dict)."""
    summary = record.summary() if isinstance(record, WitnessRecord) else dict(record)
    seq, kind = int(summary["seq"]), str(summary["kind"])
    payload = summary.get("payload") or {}
    out = [StreamEvent(type=EventType.WITNESS, seq=seq, data=summary)]
    if kind == "ingest":
        out.append(StreamEvent(type=EventType.TICK, seq=seq, data=payload))
        if payload.get("outcome") == "dissipate":
            out.append(StreamEvent(type=EventType.DISSIPATE, seq=seq, data=payload))
    elif kind == "collapse":
        out.append(StreamEvent(type=EventType.COLLAPSE, seq=seq, data=payload))
    elif kind in WITNESSED_TYPES:
        out.append(StreamEvent(type=WITNESSED_TYPES[kind], seq=seq, data=payload))
    return out


def parse_types(text: str | None) -> frozenset[EventType]:
    """The event types a ``types=tick,collapse`` filter names (None or empty: all).

    >>> sorted(parse_types("tick,collapse"))
    [<EventType.COLLAPSE: 'collapse'>, <EventType.TICK: 'tick'>]
    """
    if not text:
        return frozenset(EventType)
    try:
        return frozenset(EventType(t.strip()) for t in text.split(",") if t.strip())
    except ValueError:
        known = ", ".join(t.value for t in EventType)
        raise InputError("types", f"{text!r}: known types are {known}") from None


@dataclass(slots=True, eq=False)
class Subscriber:
    """One client's queue: at most ``size`` events, the oldest dropped (and counted) beyond."""

    types: frozenset[EventType]
    size: int
    after: int = -1
    dropped: int = 0
    queue: deque[StreamEvent] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: StreamEvent) -> None:
        """Queue ``event`` if the filter wants it and it is newer than ``after``."""
        if event.type not in self.types or event.seq <= self.after:
            return
        if len(self.queue) >= self.size:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(event)
        self.ready.set()

    async def next(self) -> StreamEvent:
        """The oldest queued event (waits for one)."""
        while not self.queue:
            self.ready.clear()
            await self.ready.wait()
        return self.queue.popleft()


class EventHub:
    """Fans events out to every :class:`Subscriber`; ``published`` counts records seen."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.published = 0

    def subscribe(self, types: Iterable[EventType], size: int, after: int = -1) -> Subscriber:
        """A new subscriber for ``types`` with a queue of ``size`` (events after seq ``after``)."""
        sub = Subscriber(types=frozenset(types), size=size, after=after)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Stop delivering to ``sub``."""
        self.subscribers.discard(sub)

    def publish_record(self, record: WitnessRecord | Mapping[str, Any]) -> None:
        """Deliver the events of one witness record to every subscriber."""
        self.published += 1
        if not self.subscribers:
            return
        for event in events_of(record):
            for sub in self.subscribers:
                sub.offer(event)
