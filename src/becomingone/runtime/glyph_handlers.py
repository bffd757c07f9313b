"""The built-in glyph kinds — ``probe``, ``command`` and ``python`` — and the registry a cell
builds from its ``glyphs:`` config.

Rule: every handler does its I/O with a bound: a deadline (seconds on :func:`time.monotonic`)
it never outlives, a loopback-only URL, an exact-match argv allowlist, a cap on the output it
reads. Each returns ``(value, cost)``; the cost of a built-in run is :data:`RUN_COST` work units.
Failures raise (``InputError`` for a bad payload, ``OSError``/``TimeoutError`` for the world);
the :class:`~becomingone.runtime.glyph_runner.GlyphRunner` counts them.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from becomingone.cluster import Glyph, HandlerContext, HandlerRegistry, resolve_target
from becomingone.cluster.handlers import is_async
from becomingone.config import GlyphsConfig
from becomingone.errors import ConfigError, InputError

__all__ = [
    "RUN_COST",
    "CommandHandler",
    "ProbeHandler",
    "PythonHandler",
    "build_registry",
    "check_glyphs",
]

#: Energy one run of a built-in kind spends (work units).
RUN_COST = 1.0
#: Largest HTTP response a latency probe reads (bytes).
MAX_HTTP_BYTES = 1_048_576


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed before the run started")
    return left


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"payload.{key}", f"must be a non-empty string, got {value!r}")
    return value


def loopback_url(url: str) -> tuple[str, int, str]:
    """(host, port, request target) of an ``http://`` URL on a loopback address; else
    ``InputError`` ("payload.url"). ``localhost`` counts as loopback."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or 80
    except ValueError:
        raise InputError("payload.url", f"bad port in {url!r}") from None
    if parts.scheme != "http":
        raise InputError("payload.url", f"must be an http:// URL, got {url!r}")
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if not loopback:
        raise InputError("payload.url", f"{host!r} is not a loopback address")
    target = parts.path or "/"
    return host, port, target + (f"?{parts.query}" if parts.query else "")


async def http_latency(url: str, deadline: float) -> float:
    """Seconds from connecting to the end of a ``GET url`` response (status 2xx/3xx)."""
    host, port, target = loopback_url(url)
    start = time.monotonic()

    async def fetch() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            writer.write(request.encode("ascii"))
            await writer.drain()
            head, size = b"", 0
            while chunk := await reader.read(65536):  # to the end of the response
                size += len(chunk)
                if size > MAX_HTTP_BYTES:
                    raise OSError(f"{url}: response larger than {MAX_HTTP_BYTES} bytes")
                head = head or chunk
            return head
        finally:
            writer.close()

    data = await asyncio.wait_for(fetch(), timeout=_remaining(deadline))
    elapsed = time.monotonic() - start
    status = data.split(b"\r\n", 1)[0].split(b" ")
    if len(status) < 2 or not status[0].startswith(b"HTTP/") or not status[1].isdigit():
        raise OSError(f"{url}: not an HTTP response")
    code = int(status[1])
    if not 200 <= code < 400:
        raise OSError(f"{url}: HTTP {code}")
    return elapsed


class ProbeHandler:
    """``probe``: sample one number for the cell's own KAIROS engine.

    Payload ``{"probe": "loadavg"}`` (1-minute load average), ``{"probe": "file_size",
    "path": "/abs/path"}`` (bytes) or ``{"probe": "http_latency", "url":
    "http://127.0.0.1:8080/health"}`` (seconds; loopback only). The value is a float.
    """

    async def __call__(self, glyph: Glyph, context: HandlerContext, deadline: float) -> Any:
        payload = glyph.payload
        what = _text(payload, "probe")
        if what == "loadavg":
            return float(os.getloadavg()[0]), RUN_COST
        if what == "file_size":
            path = _text(payload, "path")
            if not os.path.isabs(path):
                raise InputError("payload.path", f"must be an absolute path, got {path!r}")
            return float(os.stat(path).st_size), RUN_COST
        if what == "http_latency":
            return await http_latency(_text(payload, "url"), deadline), RUN_COST
        raise InputError(
            "payload.probe", f"unknown probe {what!r}; known: loadavg, file_size, http_latency"
        )


class CommandHandler:
    """``command``: run ``payload["argv"]`` if it equals an allowlisted argv exactly.

    No shell; stdin is ``/dev/null``; stdout and stderr are read together and digested
    (SHA-256) up to ``max_output`` bytes — more, or a run past ``timeout`` or the deadline,
    kills the process. Value: ``{"exit_code", "output_sha256", "output_bytes"}``.
    """

    def __init__(
        self, *, allowlist: Sequence[Sequence[str]], timeout: float, max_output: int
    ) -> None:
        self.allowlist = frozenset(tuple(argv) for argv in allowlist)
        self.timeout = timeout
        self.max_output = max_output

    async def __call__(self, glyph: Glyph, context: HandlerContext, deadline: float) -> Any:
        argv = glyph.payload.get("argv")
        if not isinstance(argv, tuple) or not all(isinstance(a, str) for a in argv):
            raise InputError("payload.argv", f"must be a list of strings, got {argv!r}")
        if argv not in self.allowlist:
            raise InputError("payload.argv", f"{list(argv)!r} is not in glyphs.command.allowlist")
        limit = min(self.timeout, _remaining(deadline))
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            digest, size = await asyncio.wait_for(self._digest(proc), timeout=limit)
            code = await asyncio.wait_for(proc.wait(), timeout=max(limit, 0.001))
        except TimeoutError:
            raise TimeoutError(f"{argv[0]} ran longer than {limit:.3g} s; killed") from None
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        value = {"exit_code": code, "output_sha256": digest, "output_bytes": size}
        return value, RUN_COST

    async def _digest(self, proc: asyncio.subprocess.Process) -> tuple[str, int]:
        assert proc.stdout is not None
        h, size = hashlib.sha256(), 0
        while chunk := await proc.stdout.read(65536):
            size += len(chunk)
            if size > self.max_output:
                raise OSError(f"output exceeds {self.max_output} bytes; killed")
            h.update(chunk)
        return h.hexdigest(), size


class PythonHandler:
    """``python``: call a registered callable, ``payload = {"callable": name, "args": [...],
    "kwargs": {...}}``; its return value is the glyph's value. Async callables are awaited;
    plain ones run in a worker thread (so they cannot block the cell's loop)."""

    def __init__(self, callables: Mapping[str, Callable[..., Any]] | None = None) -> None:
        self.callables: dict[str, Callable[..., Any]] = dict(callables or {})

    def register(self, name: str, fn: Callable[..., Any]) -> None:
        """Make ``fn`` callable by python glyphs as ``name``."""
        if not callable(fn):
            raise InputError("fn", f"{name!r} is not callable")
        self.callables[name] = fn

    async def __call__(self, glyph: Glyph, context: HandlerContext, deadline: float) -> Any:
        payload = glyph.payload
        name = _text(payload, "callable")
        fn = self.callables.get(name)
        if fn is None:
            known = ", ".join(sorted(self.callables)) or "none"
            raise InputError("payload.callable", f"unknown callable {name!r}; known: {known}")
        args = payload.get("args", ())
        kwargs = payload.get("kwargs", {})
        if not isinstance(args, tuple) or not isinstance(kwargs, Mapping):
            raise InputError("payload", "args must be a list and kwargs an object")
        call = fn(*args, **kwargs) if is_async(fn) else asyncio.to_thread(fn, *args, **kwargs)
        value = await asyncio.wait_for(call, timeout=_remaining(deadline))
        return value, RUN_COST


def build_registry(config: GlyphsConfig | None = None) -> HandlerRegistry:
    """The kinds of a cell: the built-ins, then entry points (``config.entry_points``), then
    ``config.kinds``. ``ConfigError`` names a bad target or a clash."""
    config = config or GlyphsConfig()
    registry = HandlerRegistry()
    registry.register("probe", ProbeHandler(), source="built-in")
    cmd = config.command
    command = CommandHandler(
        allowlist=cmd.allowlist, timeout=cmd.timeout, max_output=cmd.max_output
    )
    registry.register("command", command, source="built-in")
    python = PythonHandler(
        {
            name: resolve_target(target, path=f"becomingone.glyphs.callables.{name}")
            for name, target in config.callables.items()
        }
    )
    registry.register("python", python, source="built-in")
    if config.entry_points:
        registry.load_entry_points()
    registry.load_targets(config.kinds)
    return registry


def check_glyphs(config: GlyphsConfig) -> list[ConfigError]:
    """Import every ``module:function`` of the section (as :func:`build_registry` would) and
    load the entry points; one ``ConfigError`` per problem, its ``path`` the key
    (``becomingone.glyphs.kinds.<kind>``) or the entry point."""
    problems = []
    builtin = {"probe", "command", "python"}
    for section, targets in (("kinds", config.kinds), ("callables", config.callables)):
        for name, target in targets.items():
            path = f"becomingone.glyphs.{section}.{name}"
            try:
                resolve_target(target, path=path)
            except ConfigError as exc:
                problems.append(exc)
            if section == "kinds" and name in builtin:
                problems.append(ConfigError(path, f"{name!r} is a built-in kind"))
    if config.entry_points:
        try:
            build_registry(GlyphsConfig())  # the built-ins and the installed entry points
        except ConfigError as exc:
            problems.append(exc)
    return problems
