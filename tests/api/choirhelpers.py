"""Helpers of the Choir API tests: a service on a temporary data dir with lexical embeddings
(fast, deterministic), its app, and a community of three users with their tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from becomingone.api import ApiSettings, create_app
from becomingone.api.choir import ChoirService
from becomingone.choir import ChoirHome, Rules
from becomingone.ingest.text import lexical_embedding


@dataclass
class ManualClock:
    """The ledger's clock, moved by hand (seconds)."""

    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Community:
    """A served Choir: its service, app, clock and the tokens of ada, grace and alan."""

    service: ChoirService
    app: FastAPI
    clock: ManualClock
    tokens: dict[str, str]
    ids: dict[str, str]

    def auth(self, name: str) -> dict[str, str]:
        """The Authorization header of ``name``."""
        return {"Authorization": f"Bearer {self.tokens[name]}"}


def community(
    data_dir: Path,
    *,
    settings: ApiSettings | None = None,
    rules: Rules | None = None,
    names: tuple[str, ...] = ("ada", "grace", "alan"),
) -> Iterator[Community]:
    """A Choir with ``names`` joined, served by an app (closed at the end)."""
    clock = ManualClock()
    home = ChoirHome(data_dir, rules=rules)
    service = ChoirService(home, embed=(lexical_embedding, "lexical"), clock=clock)
    try:
        tokens, ids = {}, {}
        for name in names:
            user, token = service.add_user(name)
            tokens[name], ids[name] = token, user.id
        app = create_app(None, settings or ApiSettings(), choir=service)
        yield Community(service, app, clock, tokens, ids)
    finally:
        service.close()
