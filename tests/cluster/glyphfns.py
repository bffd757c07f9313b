"""Glyph handlers and callables named by the tests (``tests.cluster.glyphfns:...``)."""

from __future__ import annotations

import asyncio
from typing import Any

from becomingone.cluster import Glyph, HandlerContext, HandlerResult

NOT_CALLABLE = 42


def double(glyph: Glyph, context: HandlerContext, deadline: float) -> tuple[Any, float]:
    """A plain handler: twice ``payload["x"]``, cost 0.5."""
    return 2 * glyph.payload["x"], 0.5


async def slow(glyph: Glyph, context: HandlerContext, deadline: float) -> HandlerResult:
    """An async handler that sleeps ``payload["seconds"]``."""
    await asyncio.sleep(glyph.payload["seconds"])
    return HandlerResult(value="slept", cost=1.0)


def broken(glyph: Glyph, context: HandlerContext, deadline: float) -> Any:
    """A handler that always raises."""
    raise RuntimeError("handler exploded\nwith a second line")


def bad_shape(glyph: Glyph, context: HandlerContext, deadline: float) -> Any:
    """A handler that returns neither a HandlerResult nor (value, cost)."""
    return "just a value"


def add(a: float, b: float = 0.0) -> float:
    """A plain callable for the python kind."""
    return a + b


async def async_add(a: float, b: float = 0.0) -> float:
    """An async callable for the python kind."""
    await asyncio.sleep(0)
    return a + b


async def nap(seconds: float) -> str:
    """An async callable that sleeps."""
    await asyncio.sleep(seconds)
    return "awake"


def fail() -> None:
    """A callable that raises."""
    raise ValueError("no")
