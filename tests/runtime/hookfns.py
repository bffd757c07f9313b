"""Hook handlers named in config by the tests (``tests.runtime.hookfns:...``)."""

from __future__ import annotations

from typing import Any

from becomingone.runtime import HookCall, Veto

SEEN: list[tuple[str, dict[str, Any]]] = []


def record(event: HookCall) -> None:
    """Remember every event."""
    SEEN.append((event.name, dict(event.payload)))


def veto_everything(event: HookCall) -> Veto:
    """Veto whatever it is registered for."""
    return Veto(reason=f"no {event.name}")


def explode(event: HookCall) -> None:
    """Always fail."""
    raise RuntimeError(f"boom on {event.name}")


def glyph_fails(glyph: Any, context: Any, deadline: float) -> Any:
    """A glyph handler that always raises (``glyphs.kinds.fails``)."""
    raise RuntimeError(f"{glyph.id} failed in cycle {context.cycle}")


async def glyph_hangs(glyph: Any, context: Any, deadline: float) -> Any:
    """A glyph handler that outlives any deadline (``glyphs.kinds.hangs``)."""
    import asyncio

    await asyncio.sleep(3600)


def to_file(event: HookCall) -> None:
    """Append the event as one JSON line to the file ``$BECOMINGONE_HOOK_LOG`` names (for
    hooks of node processes, which a test reads back)."""
    import json
    import os

    with open(os.environ["BECOMINGONE_HOOK_LOG"], "a") as out:
        out.write(json.dumps({"event": event.name, "payload": dict(event.payload)}) + "\n")
