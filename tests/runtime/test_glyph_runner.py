"""Built-in glyph kinds end to end (a real subprocess, a real loopback HTTP server, real files)
and the runner's isolation: errors and timeouts are counted and charged, never raised."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from becomingone.cluster import Fire, Glyph, GlyphScheduler, HandlerRegistry
from becomingone.config import GlyphsConfig
from becomingone.errors import ConfigError
from becomingone.runtime import GlyphRunner, RunOutcome, build_registry
from tests.cluster import glyphfns

PY = sys.executable


def fire(kind: str, payload: dict[str, object], gid: str = "g") -> Fire:
    """A firing of a fresh glyph in cycle 7."""
    return Fire(glyph=Glyph(id=gid, kind=kind, payload=payload), cycle=7, lateness=0.01)


def runner(timeout: float = 5.0, **config: object) -> GlyphRunner:
    """A runner over the built-in kinds with the given glyphs: config."""
    cfg = GlyphsConfig.model_validate({"entry_points": False, **config})
    return GlyphRunner(build_registry(cfg), cell="c1", timeout=timeout, failure_cost=2.0)


async def test_probe_loadavg_and_file_size(tmp_path: Path) -> None:
    """loadavg gives the 1-minute load (a float ≥ 0); file_size gives a real file's bytes."""
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 1234)
    r = runner()
    load = await r.run(fire("probe", {"probe": "loadavg"}))
    assert load.ok and isinstance(load.value, float) and load.value >= 0 and load.cost == 1.0
    size = await r.run(fire("probe", {"probe": "file_size", "path": str(path)}))
    assert size.ok and size.value == 1234.0
    missing = await r.run(fire("probe", {"probe": "file_size", "path": str(tmp_path / "no")}))
    assert not missing.ok and "FileNotFoundError" in (missing.error or "")
    relative = await r.run(fire("probe", {"probe": "file_size", "path": "data.bin"}))
    assert not relative.ok and "payload.path" in (relative.error or "")
    unknown = await r.run(fire("probe", {"probe": "cpu"}))
    assert not unknown.ok and "unknown probe 'cpu'" in (unknown.error or "")


@pytest.fixture
async def http_server() -> AsyncIterator[int]:
    """A real HTTP server on a free loopback port: /ok sends its headers at once and its
    body 50 ms later (so latency must wait for the end); any other path answers 500."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ")[1]
        status = b"200 OK" if path == b"/ok" else b"500 Internal Server Error"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"hi")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()


async def test_probe_http_latency_on_loopback(http_server: int) -> None:
    """The latency of a loopback GET is measured to the end of the response (≥ the server's
    50 ms pause before the body); a 500 fails;
    a non-loopback URL is refused before any connection."""
    r = runner()
    ok = await r.run(
        fire("probe", {"probe": "http_latency", "url": f"http://127.0.0.1:{http_server}/ok"})
    )
    assert ok.ok and 0.05 <= ok.value < 2.0, ok
    bad = await r.run(
        fire("probe", {"probe": "http_latency", "url": f"http://localhost:{http_server}/x"})
    )
    assert not bad.ok and "HTTP 500" in (bad.error or "")
    far = await r.run(fire("probe", {"probe": "http_latency", "url": "http://192.0.2.1/"}))
    assert not far.ok and "not a loopback address" in (far.error or "")
    assert r.by_kind["probe"]["errors"] == 2 and r.by_kind["probe"]["ok"] == 1


async def test_probe_http_latency_connection_refused(unused_tcp_port: int) -> None:
    """A closed loopback port is an error outcome, not an exception."""
    out = await runner().run(
        fire("probe", {"probe": "http_latency", "url": f"http://127.0.0.1:{unused_tcp_port}/"})
    )
    assert not out.ok and out.cost == 2.0


async def test_command_runs_an_allowlisted_argv_and_digests_output() -> None:
    """An allowlisted argv runs: exit code and SHA-256 of its output are the value; a
    non-zero exit is a value too; an argv not on the list does not run."""
    hello = [PY, "-c", "print('hello')"]
    exit3 = [PY, "-c", "import sys; sys.exit(3)"]
    r = runner(command={"allowlist": [hello, exit3]})
    out = await r.run(fire("command", {"argv": hello}))
    assert out.ok and out.value == {
        "exit_code": 0,
        "output_sha256": hashlib.sha256(b"hello\n").hexdigest(),
        "output_bytes": 6,
    }
    three = await r.run(fire("command", {"argv": exit3}))
    assert three.ok and three.value["exit_code"] == 3
    other = await r.run(fire("command", {"argv": [PY, "-c", "print('x')"]}))
    assert not other.ok and "not in glyphs.command.allowlist" in (other.error or "")


async def test_command_timeout_kills_the_process(tmp_path: Path) -> None:
    """A command past its timeout is killed (its pid is gone) and counted as a timeout."""
    pidfile = tmp_path / "pid"
    argv = [
        PY,
        "-c",
        f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(30)",
    ]
    r = runner(command={"allowlist": [argv], "timeout": 1.0})
    start = time.monotonic()
    out = await r.run(fire("command", {"argv": argv}))
    assert not out.ok and out.timed_out and time.monotonic() - start < 10
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert r.counts["timeouts"] == 1


async def test_command_output_cap() -> None:
    """Output beyond max_output kills the command and fails the run."""
    argv = [PY, "-c", "print('x' * 5000)"]
    r = runner(command={"allowlist": [argv], "max_output": 1000})
    out = await r.run(fire("command", {"argv": argv}))
    assert not out.ok and "exceeds 1000 bytes" in (out.error or "")


async def test_python_kind_calls_registered_callables() -> None:
    """Config-named callables run (plain in a thread, async awaited); errors, unknown names
    and overruns are failed outcomes."""
    r = runner(
        timeout=0.5,
        callables={
            "add": "tests.cluster.glyphfns:add",
            "async_add": "tests.cluster.glyphfns:async_add",
            "nap": "tests.cluster.glyphfns:nap",
            "fail": "tests.cluster.glyphfns:fail",
        },
    )
    assert (await r.run(fire("python", {"callable": "add", "args": [1, 2]}))).value == 3
    out = await r.run(fire("python", {"callable": "async_add", "args": [1], "kwargs": {"b": 4}}))
    assert out.value == 5
    failed = await r.run(fire("python", {"callable": "fail"}))
    assert not failed.ok and failed.error == "ValueError: no"
    unknown = await r.run(fire("python", {"callable": "zzz"}))
    assert "unknown callable 'zzz'" in (unknown.error or "")
    slow = await r.run(fire("python", {"callable": "nap", "args": [5]}))
    assert slow.timed_out and slow.elapsed < 3


async def test_runner_isolates_handler_errors_and_bad_results() -> None:
    """A raising handler, a bad return shape and an unknown kind become failed outcomes with
    one-line errors, counted per kind and charged the failure cost."""
    reg = HandlerRegistry()
    reg.register("broken", glyphfns.broken)
    reg.register("shape", glyphfns.bad_shape)
    reg.register("slow", glyphfns.slow)
    r = GlyphRunner(reg, cell="c1", timeout=0.2, failure_cost=0.25)
    outs = [
        await r.run(fire("broken", {})),
        await r.run(fire("shape", {})),
        await r.run(fire("missing", {})),
        await r.run(fire("slow", {"seconds": 5})),
    ]
    assert [o.ok for o in outs] == [False] * 4
    assert outs[0].error == "RuntimeError: handler exploded with a second line"
    assert "result" in (outs[1].error or "") and "unknown glyph kind" in (outs[2].error or "")
    assert outs[3].timed_out and outs[3].error == "timed out after 0.2 s"
    assert {o.cost for o in outs} == {0.25}
    assert r.counts == {"runs": 4, "errors": 3, "timeouts": 1}


async def test_settle_spends_costs_and_ends_a_failing_glyph() -> None:
    """settle() runs the fires of a tick and reports costs: a glyph that always fails spends
    failure_cost per cycle and ends with End(ENERGY)."""
    reg = HandlerRegistry()
    reg.register("broken", glyphfns.broken)
    reg.register("double", glyphfns.double)
    r = GlyphRunner(reg, cell="c1", timeout=1.0, failure_cost=1.0)
    s = GlyphScheduler(kinds=reg.kinds)
    s.add(Glyph(id="bad", kind="broken", theta=0.5, energy=2.0, lifetime=10))
    s.add(Glyph(id="ok", kind="double", payload={"x": 1}, theta=0.5, energy=2.0, lifetime=10))
    ends = []
    outcomes: list[RunOutcome] = []
    for k in range(3):
        outs, after = await r.settle(s, s.advance_to(k + 0.6))
        outcomes += outs
        ends += after
    assert [e.glyph.id for e in ends] == ["bad"]
    assert s.glyph("ok").energy == pytest.approx(0.5)
    assert sum(o.ok for o in outcomes) == 3


def test_build_registry_from_config() -> None:
    """The built-ins plus config kinds; a bad callable target names its key."""
    reg = build_registry(
        GlyphsConfig.model_validate({"kinds": {"twice": "tests.cluster.glyphfns:double"}})
    )
    assert {"probe", "command", "python", "twice"} <= reg.kinds
    assert reg.source("probe") == "built-in"
    with pytest.raises(ConfigError) as info:
        build_registry(GlyphsConfig.model_validate({"callables": {"x": "tests.nope:f"}}))
    assert info.value.path == "becomingone.glyphs.callables.x"
