"""Fixtures of the API tests: a real cell on a temporary data dir, its app, an httpx client
on the ASGI transport, a write token and a clock the rate-limit tests can move."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from becomingone.api import (
    PREFIX,
    ApiSettings,
    EventHub,
    ServedCell,
    SignalInbox,
    TokenStore,
    attach_events,
    create_app,
)
from becomingone.runtime.cell import Cell
from becomingone.runtime.sources import synthetic_phase
from tests.helpers import small_config


@dataclass
class Clock:
    """A monotonic clock the test moves by hand (seconds)."""

    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Served:
    """A running cell behind an app, with what the tests poke at."""

    cell: Cell
    inbox: SignalInbox
    hub: EventHub
    tokens: TokenStore
    token: str
    clock: Clock
    client: httpx.AsyncClient
    served: ServedCell


async def ingest(cell: Cell, batches: int, size: int = 50) -> None:
    """Feed ``batches`` batches of the synthetic stream to ``cell``."""
    for _ in range(batches):
        start = cell.samples
        await cell.ingest(synthetic_phase(start, size, dt=cell.dt), now=1_000.0 + start * cell.dt)


def client_for(app: object, host: str = "127.0.0.1") -> httpx.AsyncClient:
    """An httpx client calling ``app`` in process, as a client at ``host``."""
    transport = httpx.ASGITransport(app=app, client=(host, 50_000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url=f"http://test{PREFIX}")


async def serve_cell(tmp_path: Path, settings: ApiSettings) -> AsyncIterator[Served]:
    """A cell with 6 batches ingested, served with ``settings``."""
    cell = Cell(small_config(), tmp_path / "data")
    inbox = SignalInbox(cell.channels, max_batches=settings.inbox_batches)
    hub = EventHub()
    attach_events(cell, hub)
    await ingest(cell, 6)
    tokens = TokenStore(cell.data_dir)
    token = tokens.create("test")
    served = ServedCell.live(cell, inbox)
    clock = Clock()
    app = create_app(served, settings, tokens=tokens, hub=hub, clock=clock)
    async with client_for(app) as client:
        yield Served(cell, inbox, hub, tokens, token, clock, client, served)
    served.close()
    tokens.close()
    await cell.aclose()


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Served]:
    """A running cell behind the default settings (small inbox, low rate limit)."""
    settings = ApiSettings(
        rate_per_second=2.0,
        rate_burst=3,
        inbox_batches=4,
        max_samples=500,
        max_body_bytes=4096,
        max_points=50,
        max_page=20,
    )
    async for served in serve_cell(tmp_path, settings):
        yield served
