"""``becomingone cluster --metrics`` and ``--serve``: what listens beside a running cluster
(``--serve`` also beside an observed NATS cluster, which has no in-process members).

Rule: context managers that start a listener when their flag was given and stop it on the way
out (by the same object that started it); the API package is imported only when serving.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from becomingone.config import CellConfig, ClusterConfig
from becomingone.runtime import ClusterMember
from becomingone.runtime.cell_member import CellMember
from becomingone.runtime.glyph_migrate import GlyphMigrator
from becomingone.runtime.metrics import serve_metrics
from becomingone.runtime.partifacts import PartifactDriver

if TYPE_CHECKING:
    from becomingone.api.cluster import ServedCluster

__all__ = ["metrics_server", "served_cluster"]


@contextlib.contextmanager
def metrics_server(listen: tuple[str, int] | None, registry: CollectorRegistry) -> Iterator[None]:
    """With ``--metrics``: prometheus_client's server for ``registry`` while the cluster runs."""
    if listen is None:
        yield
        return
    with serve_metrics(registry, *listen) as server:
        print(f"becomingone cluster: metrics at {server.url}", file=sys.stderr, flush=True)
        yield


@contextlib.asynccontextmanager
async def served_cluster(
    args: argparse.Namespace,
    config: CellConfig,
    settings: ClusterConfig,
    members: Sequence[ClusterMember] = (),
    migrator: GlyphMigrator | None = None,
    registry: CollectorRegistry | None = None,
    driver: PartifactDriver | None = None,
) -> AsyncIterator[ServedCluster | None]:
    """With ``--serve``: the cluster API (and ``/metrics`` of ``registry``) listening while the
    cluster runs (None without); full cells get the glyph routes, ``--roles`` (a ``driver``)
    the roles and proposal routes, and ``--data-dir`` keeps the write tokens. Without
    ``members`` (a cluster of node processes) the app is read-only."""
    if args.listen is None:
        yield None
        return
    from becomingone.api import PREFIX, ApiServer, ApiSettings, ServedCluster, create_app
    from becomingone.api.settings import api_tls
    from becomingone.api.tokens import TokenStore
    from becomingone.runtime.glyph_desk import GlyphDesk
    from becomingone.runtime.proposal_desk import ProposalDesk

    full = [m for m in members if isinstance(m, CellMember)]
    desk = GlyphDesk(full) if full else None
    served = ServedCluster(
        settings.name,
        settings.topology,
        threshold=config.kairos.threshold,
        desk=desk,
        cells=args.nodes,
        partifacts=ProposalDesk(driver, desk) if driver is not None else None,
    )
    if migrator is not None:
        served.extra = lambda: {"migrations": dict(migrator.row())}
    writes = full or driver is not None
    tokens = TokenStore(args.data_dir) if args.data_dir is not None and writes else None
    app = create_app(
        None,
        ApiSettings.from_config(config.api),
        tokens=tokens,
        cluster=served,
        registry=registry,
    )
    server = ApiServer(app, *args.listen, tls=api_tls(config.api))
    await server.start()
    print(
        f"becomingone cluster: API at {server.url}{PREFIX}/cluster "
        f"(docs {server.url}{PREFIX}/docs)\n"
        f"becomingone cluster: dashboard at {server.url}/",
        file=sys.stderr,
        flush=True,
    )
    try:
        yield served
    finally:
        await server.aclose()
        if tokens is not None:
            tokens.close()
