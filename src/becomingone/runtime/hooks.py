"""Event-named hooks of a cell (after OpenClaw): one per :class:`~becomingone.events.HookEvent`
(``signal.received``, ``collapse``, ``dissipate``, ``realign``, ``witness``), each with a
``before_*`` variant that may veto.

Rule: a hook can never hurt the cell. Handlers (sync or async, registered in code or named in
config as ``module:function``) get one :class:`HookCall`; an exception or a timeout is caught
and returned as a :class:`HookFailure` for the cell to witness, and a handler that fails
``max_failures`` times in a row is disabled. A ``before_*`` handler vetoes by returning ``False``
or a :class:`Veto`; a failing ``before_*`` handler does not veto.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from becomingone.errors import ConfigError
from becomingone.events import HookEvent, parse_hook_event

__all__ = [
    "HookCall",
    "HookEvent",
    "HookFailure",
    "HookRegistry",
    "HookResult",
    "Veto",
    "check_hooks",
    "resolve_hook",
]

Handler = Callable[["HookCall"], Any | Awaitable[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class HookCall:
    """What a handler receives: the event ``name``, stream ``time`` (s) and a JSON-able payload."""

    name: str
    time: float
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Veto:
    """Returned by a ``before_*`` handler to stop the event, with a reason."""

    reason: str = "vetoed"


@dataclass(frozen=True, slots=True, kw_only=True)
class HookFailure:
    """A handler raised or timed out; ``disabled`` when it has now been switched off."""

    event: str
    hook: str
    error: str
    disabled: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class HookResult:
    """Outcome of firing one event: a veto (for ``before_*``) and any failures."""

    veto: Veto | None = None
    failures: tuple[HookFailure, ...] = ()


@dataclass(slots=True)
class _Entry:
    name: str
    fn: Handler
    failures: int = 0
    disabled: bool = False


def _check_event(event: str) -> str:
    """The registry key of ``event`` (a :class:`HookEvent` or its ``before_`` name)."""
    base, before = parse_hook_event(str(event))
    return f"before_{base.value}" if before else base.value


def resolve_hook(target: str, *, path: str = "hook") -> Handler:
    """Import ``module:function``; raises ``ConfigError`` at ``path`` if it cannot."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(path, f"{target!r} is not 'module:function'")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        why = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line, whatever it says
        raise ConfigError(path, f"cannot import {module_name!r}: {why}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(path, f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(path, f"{target!r} is not callable")
    handler: Handler = obj
    return handler


def check_hooks(hooks: Mapping[str, Sequence[str]]) -> list[ConfigError]:
    """Import every configured ``module:function`` (as :meth:`HookRegistry.from_config` would);
    one ``ConfigError`` per bad hook, its ``path`` the key (``becomingone.hooks.collapse[1]``)."""
    problems = []
    for event, targets in hooks.items():
        for i, target in enumerate(targets):
            try:
                resolve_hook(target, path=f"becomingone.hooks.{event}[{i}]")
            except ConfigError as exc:
                problems.append(exc)
    return problems


class HookRegistry:
    """Handlers by event name; :meth:`fire` runs them in registration order."""

    def __init__(self, *, timeout: float = 2.0, max_failures: int = 3) -> None:
        self._hooks: dict[str, list[_Entry]] = {}
        self.timeout = timeout
        self.max_failures = max_failures

    @classmethod
    def from_config(cls, hooks: Mapping[str, Sequence[str]]) -> HookRegistry:
        """Registry with the config's ``event: [module:function, ...]`` handlers."""
        registry = cls()
        for event, targets in hooks.items():
            for i, target in enumerate(targets):
                path = f"becomingone.hooks.{event}[{i}]"
                registry.on(event, resolve_hook(target, path=path), name=target)
        return registry

    def on(self, event: str, fn: Handler, *, name: str | None = None) -> None:
        """Register ``fn`` for ``event`` (for example ``"collapse"`` or ``"before_collapse"``)."""
        label = name or str(getattr(fn, "__qualname__", repr(fn)))
        self._hooks.setdefault(_check_event(event), []).append(_Entry(label, fn))

    def has(self, event: str) -> bool:
        """True iff an enabled handler is registered for ``event``."""
        return any(not e.disabled for e in self._hooks.get(event, ()))

    async def fire(self, event: str, time: float, payload: Mapping[str, Any]) -> HookResult:
        """Run ``before_<event>`` handlers (stopping at a veto); if none vetoed, run ``event``'s.

        Returns the veto (if any) and every failure; never raises for a handler's error.
        """
        event = _check_event(event)
        failures: list[HookFailure] = []
        before = f"before_{event}"
        for entry in self._live(before):
            out = await self._call(entry, HookCall(name=before, time=time, payload=payload))
            if isinstance(out, HookFailure):
                failures.append(out)
            elif out is False or isinstance(out, Veto):
                veto = out if isinstance(out, Veto) else Veto(reason=f"{entry.name} vetoed")
                return HookResult(veto=veto, failures=tuple(failures))
        for entry in self._live(event):
            out = await self._call(entry, HookCall(name=event, time=time, payload=payload))
            if isinstance(out, HookFailure):
                failures.append(out)
        return HookResult(failures=tuple(failures))

    def _live(self, event: str) -> list[_Entry]:
        return [e for e in self._hooks.get(event, ()) if not e.disabled]

    async def _call(self, entry: _Entry, event: HookCall) -> Any:
        try:
            out = entry.fn(event)
            if inspect.isawaitable(out):
                out = await asyncio.wait_for(out, timeout=self.timeout)
        except Exception as exc:
            entry.failures += 1
            entry.disabled = entry.failures >= self.max_failures
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if isinstance(exc, TimeoutError):
                error = f"timed out after {self.timeout} s"
            return HookFailure(
                event=event.name, hook=entry.name, error=error, disabled=entry.disabled
            )
        entry.failures = 0
        return out
