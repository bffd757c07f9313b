"""Hook handlers named in config by the tests (``tests.runtime.hookfns:...``)."""

from __future__ import annotations

from typing import Any

from becomingone.runtime import HookEvent, Veto

SEEN: list[tuple[str, dict[str, Any]]] = []


def record(event: HookEvent) -> None:
    """Remember every event."""
    SEEN.append((event.name, dict(event.payload)))


def veto_everything(event: HookEvent) -> Veto:
    """Veto whatever it is registered for."""
    return Veto(reason=f"no {event.name}")


def explode(event: HookEvent) -> None:
    """Always fail."""
    raise RuntimeError(f"boom on {event.name}")
