"""Glyph handlers: the call shape every kind implements, and the registry of kinds.

Rule: a kind exists iff it is registered here — in code, from the ``becomingone.glyphs`` entry
point group, or as a ``module:function`` name in config — and the scheduler and the runner both
ask this registry, so they cannot disagree. A handler is called as
``handler(glyph, context, deadline)`` and returns a :class:`HandlerResult` or a
``(value, cost)`` pair, directly or as an awaitable. This module never calls a handler (that is
:class:`becomingone.runtime.GlyphRunner`); loading a kind imports its module, nothing more.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Protocol

from becomingone.cluster.glyph import _KIND, Glyph
from becomingone.errors import ConfigError, InputError

__all__ = [
    "ENTRY_POINT_GROUP",
    "GlyphHandler",
    "HandlerContext",
    "HandlerRegistry",
    "HandlerResult",
    "as_result",
    "resolve_target",
]

#: The entry point group that installed packages use to add glyph kinds (name = kind).
ENTRY_POINT_GROUP = "becomingone.glyphs"


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerContext:
    """What a handler learns about the firing: the running cell's node id, the cycle and how
    late (cycles after θ) it fired."""

    cell: str
    cycle: int
    lateness: float


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerResult:
    """A handler's answer: a JSON-able ``value`` (what is witnessed; a probe's number) and the
    ``cost`` it spends from the glyph's energy (finite, ≥ 0)."""

    value: Any
    cost: float

    def __post_init__(self) -> None:
        cost = self.cost
        if isinstance(cost, bool) or not isinstance(cost, int | float):
            raise InputError("cost", f"must be a number, got {cost!r}")
        if not (math.isfinite(cost) and cost >= 0.0):
            raise InputError("cost", f"must be finite and >= 0, got {cost!r}")
        object.__setattr__(self, "cost", float(cost))


class GlyphHandler(Protocol):
    """``handler(glyph, context, deadline)``: run one firing by ``deadline`` (seconds on
    :func:`time.monotonic`); return a :class:`HandlerResult`, a ``(value, cost)`` pair, or an
    awaitable of either. Raising is allowed: the runner counts it and charges a failure cost."""

    def __call__(self, glyph: Glyph, context: HandlerContext, deadline: float) -> Any: ...


def as_result(out: object) -> HandlerResult:
    """A handler's return value as a :class:`HandlerResult` (``InputError`` "result" if it is
    neither that nor a ``(value, cost)`` pair)."""
    if isinstance(out, HandlerResult):
        return out
    if isinstance(out, tuple) and len(out) == 2:
        return HandlerResult(value=out[0], cost=out[1])
    raise InputError("result", f"a handler must return (value, cost), got {type(out).__name__}")


def resolve_target(target: str, *, path: str) -> Callable[..., Any]:
    """Import ``module:function`` (dotted attributes allowed); ``ConfigError`` at ``path``."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(path, f"{target!r} is not 'module:function'")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        why = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ConfigError(path, f"cannot import {module_name!r}: {why}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(path, f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(path, f"{target!r} is not callable")
    fn: Callable[..., Any] = obj
    return fn


def is_async(handler: Callable[..., Any]) -> bool:
    """True iff calling ``handler`` returns a coroutine (an ``async def`` or such ``__call__``)."""
    call = getattr(handler, "__call__", None)  # noqa: B004 - looking for an async __call__
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


@dataclass(frozen=True, slots=True)
class _Entry:
    handler: GlyphHandler
    source: str
    is_async: bool


class HandlerRegistry:
    """Glyph kinds and their handlers.

    >>> r = HandlerRegistry()
    >>> r.register("echo", lambda glyph, context, deadline: (dict(glyph.payload), 0.5))
    >>> sorted(r.kinds), r.source("echo")
    (['echo'], 'code')
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    @property
    def kinds(self) -> frozenset[str]:
        """Every registered kind."""
        return frozenset(self._entries)

    def __contains__(self, kind: object) -> bool:
        return kind in self._entries

    def register(self, kind: str, handler: GlyphHandler, *, source: str = "code") -> None:
        """Add ``kind``; ``InputError`` ("kind") for a bad name or one already registered."""
        if not isinstance(kind, str) or not _KIND.match(kind):
            raise InputError("kind", f"must be a lowercase name [a-z][a-z0-9_.-]*, got {kind!r}")
        if kind in self._entries:
            raise InputError("kind", f"{kind!r} is already registered by {self.source(kind)}")
        if not callable(handler):
            raise InputError("handler", f"the handler of {kind!r} is not callable")
        self._entries[kind] = _Entry(handler, source, is_async(handler))

    def get(self, kind: str) -> GlyphHandler:
        """The handler of ``kind``; ``InputError`` ("kind") listing the known kinds."""
        return self._entry(kind).handler

    def source(self, kind: str) -> str:
        """Where ``kind`` came from: ``code``, ``entry point NAME = VALUE`` or a config path."""
        return self._entry(kind).source

    def is_async(self, kind: str) -> bool:
        """True iff ``kind``'s handler is a coroutine function (else the runner uses a thread)."""
        return self._entry(kind).is_async

    def check(self, glyph: Glyph) -> Glyph:
        """``glyph`` if its kind is registered; else ``InputError`` ("kind")."""
        self._entry(glyph.kind)
        return glyph

    def load_targets(
        self, kinds: Mapping[str, str], *, path: str = "becomingone.glyphs.kinds"
    ) -> None:
        """Register ``kind: "module:function"`` pairs (from config); ``ConfigError`` naming the
        key (``becomingone.glyphs.kinds.<kind>``) if one cannot be imported or is taken."""
        for kind, target in kinds.items():
            where = f"{path}.{kind}"
            handler = resolve_target(target, path=where)
            try:
                self.register(kind, handler, source=where)
            except InputError as exc:
                raise ConfigError(where, exc.message) from None

    def load_entry_points(
        self,
        group: str = ENTRY_POINT_GROUP,
        *,
        found: Iterable[metadata.EntryPoint] | None = None,
    ) -> list[str]:
        """Register every entry point of ``group`` (name = kind); returns the kinds added.

        ``found`` replaces the installed entry points (for tests). A kind already registered
        (a built-in) is not replaced: ``ConfigError`` names the entry point.
        """
        points = list(metadata.entry_points(group=group) if found is None else found)
        added = []
        for point in sorted(points, key=lambda p: p.name):
            where = f"entry point {point.name} = {point.value}"
            try:
                handler = point.load()
            except Exception as exc:
                why = " ".join(f"{type(exc).__name__}: {exc}".split())
                raise ConfigError(where, f"cannot load: {why}") from exc
            try:
                self.register(point.name, handler, source=where)
            except InputError as exc:
                raise ConfigError(where, exc.message) from None
            added.append(point.name)
        return added

    def _entry(self, kind: str) -> _Entry:
        entry = self._entries.get(kind)
        if entry is None:
            known = ", ".join(sorted(self._entries)) or "none"
            raise InputError("kind", f"unknown glyph kind {kind!r}; known: {known}")
        return entry
