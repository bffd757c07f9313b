"""Fixtures for transport tests: real ``nats-server`` processes started by the project.

Rule: servers come from :class:`~becomingone.transport.natsd.NatsServers` (free loopback ports,
a temporary data dir) and are stopped by pid when the module (or test) ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from becomingone.transport.natsd import NatsServers


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServers]:
    """One nats-server with JetStream for the whole test module."""
    with NatsServers(tmp_path_factory.mktemp("nats1"), servers=1) as servers:
        yield servers


@pytest.fixture
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServers]:
    """A fresh 3-server cluster for one test (fault tests kill its servers)."""
    with NatsServers(tmp_path_factory.mktemp("nats3"), servers=3) as servers:
        yield servers
