"""The async runner of glyph firings: one handler call per :class:`~becomingone.cluster.Fire`,
isolated, bounded in time and counted.

Rule: a handler can never hurt the cell. Its exception, a bad return value or a run past its
deadline becomes a failed :class:`RunOutcome` (counted per kind, charged ``failure_cost``);
nothing escapes :meth:`GlyphRunner.run`. Async handlers are awaited under
:func:`asyncio.wait_for`; plain functions run in a worker thread, and a thread that overruns is
abandoned (Python cannot stop it) — its result, if it ever comes, is ignored.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from becomingone.cluster import (
    Fire,
    GlyphScheduler,
    HandlerContext,
    HandlerRegistry,
    SchedulerEffect,
    as_result,
)
from becomingone.errors import InputError

__all__ = ["GlyphRunner", "RunOutcome"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    """One firing's outcome: its value and cost, or the one-line ``error`` (``timed_out`` when
    the deadline passed); ``elapsed`` wall seconds."""

    glyph_id: str
    kind: str
    cycle: int
    ok: bool
    value: Any
    cost: float
    elapsed: float
    error: str | None = None
    timed_out: bool = False


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())


class GlyphRunner:
    """Runs firings of one cell with ``registry``'s handlers.

    Parameters
    ----------
    registry : HandlerRegistry
        The kinds this cell runs.
    cell : str
        The cell's node id (in every :class:`~becomingone.cluster.HandlerContext`).
    timeout : float
        Seconds a run may take (the handler's deadline is now + timeout).
    failure_cost : float
        Energy a failed or timed-out run spends, so a glyph that always fails still ends.
    """

    def __init__(
        self,
        registry: HandlerRegistry,
        *,
        cell: str,
        timeout: float = 2.0,
        failure_cost: float = 1.0,
    ) -> None:
        if not timeout > 0:
            raise InputError("timeout", f"must be > 0, got {timeout!r}")
        if not failure_cost >= 0:
            raise InputError("failure_cost", f"must be >= 0, got {failure_cost!r}")
        self.registry = registry
        self.cell = cell
        self.timeout = float(timeout)
        self.failure_cost = float(failure_cost)
        self.counts: Counter[str] = Counter()
        self.by_kind: dict[str, Counter[str]] = {}

    async def run(self, fire: Fire) -> RunOutcome:
        """Run one firing; never raises for what the handler does."""
        glyph = fire.glyph
        context = HandlerContext(cell=self.cell, cycle=fire.cycle, lateness=fire.lateness)
        start = time.monotonic()
        deadline = start + self.timeout
        try:
            handler = self.registry.get(glyph.kind)
            if self.registry.is_async(glyph.kind):
                call = handler(glyph, context, deadline)
            else:
                call = asyncio.to_thread(handler, glyph, context, deadline)
            out = await asyncio.wait_for(call, timeout=self.timeout)
            if inspect.isawaitable(out):  # a plain function that returned an awaitable
                out = await asyncio.wait_for(out, timeout=max(deadline - time.monotonic(), 0.0))
            result = as_result(out)
        except TimeoutError as exc:
            error = _one_line(exc) if str(exc) else f"timed out after {self.timeout:g} s"
            return self._failed(fire, start, error, timed_out=True)
        except Exception as exc:
            return self._failed(fire, start, _one_line(exc))
        self._count(glyph.kind, "ok")
        return RunOutcome(
            glyph_id=glyph.id,
            kind=glyph.kind,
            cycle=fire.cycle,
            ok=True,
            value=result.value,
            cost=result.cost,
            elapsed=time.monotonic() - start,
        )

    async def settle(
        self, scheduler: GlyphScheduler, effects: Iterable[SchedulerEffect]
    ) -> tuple[list[RunOutcome], list[SchedulerEffect]]:
        """Run every :class:`Fire` in ``effects`` concurrently and report each cost to
        ``scheduler``; returns the outcomes and the effects the completions produced (ends)."""
        fires = [e for e in effects if isinstance(e, Fire)]
        outcomes = list(await asyncio.gather(*(self.run(f) for f in fires)))
        after: list[SchedulerEffect] = []
        for outcome in outcomes:
            after.extend(scheduler.complete(outcome.glyph_id, outcome.cycle, cost=outcome.cost))
        return outcomes, after

    def _failed(
        self, fire: Fire, start: float, error: str, *, timed_out: bool = False
    ) -> RunOutcome:
        self._count(fire.glyph.kind, "timeouts" if timed_out else "errors")
        return RunOutcome(
            glyph_id=fire.glyph.id,
            kind=fire.glyph.kind,
            cycle=fire.cycle,
            ok=False,
            value=None,
            cost=self.failure_cost,
            elapsed=time.monotonic() - start,
            error=error,
            timed_out=timed_out,
        )

    def _count(self, kind: str, what: str) -> None:
        self.counts["runs"] += 1
        self.counts[what] += 1
        per = self.by_kind.setdefault(kind, Counter())
        per["runs"] += 1
        per[what] += 1
