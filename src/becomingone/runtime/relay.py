"""A relay node (DESIGN.md §10): a NATS leaf node that bridges a site into the cluster.

Rule: the relay moves no packet itself — NATS does. It runs its site's leaf server
(:class:`~becomingone.transport.natsleaf.LeafServer`, linked to the cluster's leafnode
listeners), keeps it running (a server that exits is started again on the same ports, so the
site's URL stays valid, and counted), and once a second reads the link's state from the leaf
server and publishes it, with its own client connection to the site server, as JSON on::

    relay.<cluster>.<relay>    RelayStatus: site URL, leaf server pid, link up/down, hub,
                               messages and bytes in (from the cluster) and out (to it)

A subject of its own, so observers of ``status.<cluster>.*`` never mistake a relay for a cell.
Site nodes connect to the relay's site URL and keep their subjects (``ssep.<cluster>.<node>``,
``status.<cluster>.<node>``). A message crosses the link only when the other side has a
subscriber for its subject: in a fractal topology whose site cells are one aligned group of
the plan (their names sort together), only the group head's packets to and from its parent
level cross, so the relay carries the site's regional field (docs/nats.md, Relay nodes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from becomingone.errors import InputError, TransportError
from becomingone.transport.base import Bus
from becomingone.transport.natsleaf import LeafLink, LeafServer

__all__ = ["Relay", "RelayStatus", "relay_subject"]

#: Seconds between two status messages of a relay.
RELAY_INTERVAL = 1.0


def relay_subject(cluster: str, name: str) -> str:
    """The subject a relay publishes its status on."""
    return f"relay.{cluster}.{name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayStatus:
    """What a relay publishes once a second (JSON on :func:`relay_subject`).

    ``url`` is the site's client URL, ``pid`` the leaf server's, ``link`` the link to the
    cluster; ``links`` counts the times the relay saw the link come up, ``restarts`` the times
    it started its leaf server again.
    """

    node: str
    time: float
    url: str
    pid: int | None
    link: LeafLink
    links: int
    restarts: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "node": self.node,
            "kind": "relay",
            "time": round(self.time, 6),
            "url": self.url,
            "pid": self.pid,
            "link": self.link.to_json(),
            "links": self.links,
            "restarts": self.restarts,
        }

    @classmethod
    def from_bytes(cls, data: bytes) -> RelayStatus:
        """Parse a relay status; ``InputError`` naming ``status`` for anything else."""
        try:
            doc = json.loads(data)
            link = dict(doc["link"])
            return cls(
                node=str(doc["node"]),
                time=float(doc["time"]),
                url=str(doc["url"]),
                pid=None if doc["pid"] is None else int(doc["pid"]),
                link=LeafLink(
                    up=bool(link["up"]),
                    hub=None if link["hub"] is None else str(link["hub"]),
                    rtt=None if link["rtt"] is None else str(link["rtt"]),
                    **{k: int(link[k]) for k in ("in_msgs", "out_msgs", "in_bytes", "out_bytes")},
                ),
                links=int(doc["links"]),
                restarts=int(doc["restarts"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise InputError("status", f"not a relay status message: {exc}") from None


class Relay:
    """Supervises a started :class:`LeafServer` and reports its link (see module doc)."""

    def __init__(
        self,
        name: str,
        *,
        cluster: str,
        leaf: LeafServer,
        interval: float = RELAY_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not interval > 0:
            raise InputError("interval", f"must be > 0 seconds, got {interval!r}")
        self.name = name
        self.cluster = cluster
        self.leaf = leaf
        self.interval = interval
        self.clock = clock
        self.links = 0
        self.restarts = 0
        self._was_up = False

    async def check(self) -> RelayStatus:
        """Start the leaf server again if it exited; read the link; the status now."""
        # Both calls block for a few ms on loopback, in this thread on purpose: the leaf server
        # is started with a pre-exec hook, which must not run while other threads exist.
        if not self.leaf.running():
            self.leaf.stop()  # reap it
            self.leaf.start()  # same ports: the site URL stays
            self.restarts += 1
        link = self.leaf.link()
        if link.up and not self._was_up:
            self.links += 1
        self._was_up = link.up
        return RelayStatus(
            node=self.name,
            time=self.clock(),
            url=self.leaf.url,
            pid=self.leaf.pid,
            link=link,
            links=self.links,
            restarts=self.restarts,
        )

    async def run(
        self,
        bus: Bus,
        *,
        duration: float | None,
        stop: asyncio.Event,
        on_second: Callable[[RelayStatus], None] | None = None,
    ) -> RelayStatus:
        """Check and publish every ``interval`` until ``stop`` or ``duration``; last status."""
        started = time.monotonic()
        subject = relay_subject(self.cluster, self.name)
        status = await self.check()
        while True:
            with contextlib.suppress(TransportError):  # the site server restarting
                await bus.publish(subject, json.dumps(status.to_json()).encode())
            if on_second is not None:
                on_second(status)
            left = None if duration is None else started + duration - time.monotonic()
            if stop.is_set() or (left is not None and left <= 0):
                return status
            wait = self.interval if left is None else min(self.interval, left)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
            status = await self.check()
