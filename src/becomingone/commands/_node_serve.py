"""``becomingone node --serve``: the read-only view of its cluster a node serves, from what it
hears.

Rule: on the node's own bus connection, a
:class:`~becomingone.runtime.observer.ClusterObserver` (``status.<cluster>.*``) is stepped once
per cluster tick and every report, with the statuses it measured, becomes a frame of a
:class:`~becomingone.api.ServedCluster` behind the API app (cluster routes and the dashboard,
no write route — unless the node runs glyphs: then its cell's glyph desk is mounted too; or
roles (``--roles``): then the roles and proposal routes of its partifact view; writes take a
token of the node's data dir; a witness given ``listing`` mounts only the glyph list; a
witness given an ``observer`` — a :class:`~becomingone.runtime.node_partifacts.NodePartifacts`
without a key, ``node --kind witness --roles`` — mounts the roles and proposal routes of that
read-only view, stepped here once per cluster tick with the C the observer measured, and every
write answers 405 ``read_only``). The role, lifecycle and proposal events of the stream come
from the node's (or the witness's observer) partifact view, or — without one — from the
partifact rows of the statuses heard. The context manager stops the
ticker task and the server it started, before the node closes its connection; the API package
is imported only when serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from becomingone.config import CellConfig, ClusterConfig
from becomingone.runtime.glyph_desk import GlyphDesk
from becomingone.runtime.node_partifacts import NodePartifacts
from becomingone.runtime.observer import ClusterObserver
from becomingone.runtime.proposal_desk import ProposalDesk
from becomingone.transport.base import Bus

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from becomingone.api.cluster import ServedCluster

__all__ = ["OBSERVER_KEEP", "WITNESS_READ_ONLY", "cluster_view"]

#: Tick reports the node's observer keeps (the frames themselves are the ServedCluster's).
OBSERVER_KEEP = 64
#: What a write to a witness's view of the consensus answers (405 ``read_only``).
WITNESS_READ_ONLY = (
    "a witness node serves a read-only view of the consensus (it holds no key of the "
    "cluster): propose and vote through a node --roles --serve"
)
#: The roster an observer's view takes its members from (cell → public key).
Roster = Callable[[], Mapping[str, bytes]]


def cluster_view(
    listen: tuple[str, int] | None,
    config: CellConfig,
    settings: ClusterConfig,
    who: str,
    *,
    desk: GlyphDesk | None = None,
    tokens: Path | None = None,
    partifacts: ProposalDesk | None = None,
    listing: Callable[[], list[dict[str, Any]]] | None = None,
    observer: tuple[NodePartifacts, Roster] | None = None,
) -> Callable[[Bus, CollectorRegistry | None], AbstractAsyncContextManager[ServedCluster]] | None:
    """With ``--serve`` (``listen``): what serves the cluster view on a node's connection
    (None without); ``who`` prefixes the line that gives the URLs. With ``desk`` (a node
    running glyphs) the glyph routes are mounted, writes checked against the tokens of the
    data dir ``tokens``, and ``listing`` (the cluster's glyphs from the ownership records)
    answers ``GET /cluster/glyphs``. With ``partifacts`` (a ``node --roles``) the roles and
    proposal routes of the node's own view are mounted too; with ``observer`` (a witness's
    keyless view and the roster it takes members from) those of that view, read-only."""
    if listen is None:
        return None

    def view(
        bus: Bus, metrics: CollectorRegistry | None = None
    ) -> AbstractAsyncContextManager[ServedCluster]:
        return _serve_view(
            bus, listen, config, settings, who, desk, tokens, partifacts, listing, metrics, observer
        )

    return view


@contextlib.asynccontextmanager
async def _serve_view(
    bus: Bus,
    listen: tuple[str, int],
    config: CellConfig,
    settings: ClusterConfig,
    who: str,
    desk: GlyphDesk | None,
    tokens_dir: Path | None,
    partifacts: ProposalDesk | None = None,
    listing: Callable[[], list[dict[str, Any]]] | None = None,
    metrics: CollectorRegistry | None = None,
    observer: tuple[NodePartifacts, Roster] | None = None,
) -> AsyncIterator[ServedCluster]:
    from becomingone.api import PREFIX, ApiServer, ApiSettings, ServedCluster, create_app
    from becomingone.api.settings import api_tls
    from becomingone.api.tokens import TokenStore

    obs = ClusterObserver(
        bus,
        cluster=settings.name,
        peer_timeout=settings.peer_timeout,
        ring=settings.topology == "ring",
        threshold=config.kairos.threshold,
        keep=OBSERVER_KEEP,
    )
    await obs.start()
    api = ApiSettings.from_config(config.api)
    if observer is not None:
        partifacts = ProposalDesk(observer[0], clock=time.time)
        api = dataclasses.replace(api, read_only=True, read_only_reason=WITNESS_READ_ONLY)
        await observer[0].start(bus)
    served = ServedCluster(
        settings.name,
        settings.topology,
        threshold=config.kairos.threshold,
        desk=desk,
        partifacts=partifacts,
    )
    served.listing = listing
    writes = desk is not None or (partifacts is not None and observer is None)
    tokens = TokenStore(tokens_dir) if writes and tokens_dir is not None else None
    app = create_app(
        None,
        api,
        tokens=tokens,
        cluster=served,
        registry=metrics,
    )
    server = ApiServer(app, *listen, tls=api_tls(config.api))
    try:
        await server.start()
    except BaseException:
        if tokens is not None:
            tokens.close()
        if observer is not None:
            await observer[0].aclose()
        raise
    print(
        f"{who}: cluster view at {server.url}{PREFIX}/cluster, dashboard at {server.url}/",
        file=sys.stderr,
        flush=True,
    )
    task = asyncio.create_task(_tick(obs, served, settings.tick, observer))
    try:
        yield served
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.aclose()
        if tokens is not None:
            tokens.close()
        if observer is not None:
            await observer[0].aclose()


async def _tick(
    obs: ClusterObserver,
    served: ServedCluster,
    tick: float,
    observer: tuple[NodePartifacts, Roster] | None = None,
) -> None:
    """Step the observer every ``tick`` seconds and record each report, until cancelled;
    a witness's view of the consensus steps first (with the C the report measured), so
    the frame carries its tick."""
    start = time.monotonic()
    i = 0
    while True:
        report = obs.step()
        if observer is not None:
            view, roster = observer
            c = report.c_cluster if math.isfinite(report.c_cluster) else 0.0
            await view.step(report.time, collapsed=False, c_cluster=c, roster=roster())
        served.record_heard(report, obs.live(report.time), obs.rejected())
        i += 1
        late = time.monotonic() - (start + i * tick)
        if late > tick:  # fell behind (a busy machine): skip the missed ticks, do not burst
            i += int(late / tick)
        await asyncio.sleep(max(0.0, start + i * tick - time.monotonic()))
