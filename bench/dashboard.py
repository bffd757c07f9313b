"""The dashboard's render rate in Debian's Chromium, with the page fed live cluster ticks.

A real ``becomingone cluster --serve`` process on a loopback port runs ``--nodes`` cells
(64 by default) and publishes one ``cluster.tick`` event per tick (10 ticks/s); the dashboard
draws every tick (phase circle, C_cluster, the picked cell's coherence) on animation frames.
In the page, ``requestAnimationFrame`` timestamps are recorded for ``--seconds``; a frame is
dropped when an interval spans more than 1.5 nominal frame intervals (each such interval
counts as round(interval / nominal) − 1 dropped frames). The nominal interval and the
baseline drop rate come from the same browser in the same run on a blank page (the
compositor's own jitter on this machine). The WebSocket frames the page received are counted,
so the figure says whether the page kept up with 10 ticks/s. ``--cell`` measures against one
cell (`up --serve`, synthetic source) instead; ``--roles`` runs full cells with roles
(``--cells full --roles``), so the glyph, roles and proposal views draw too (their events
arrive on the same stream).

Timing on a shared machine is noisy: figures are printed, nothing is asserted.
Run: ``.venv/bin/python bench/dashboard.py [--quick] [--nodes N] [--cell | --roles]``
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

CHROMIUM = "/usr/bin/chromium"
CLI = [sys.executable, "-m", "becomingone.cli"]
#: Records every animation frame's timestamp (ms) into window.__frames.
RAF_PROBE = """
window.__frames = [];
const __tick = (t) => { window.__frames.push(t); requestAnimationFrame(__tick); };
requestAnimationFrame(__tick);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameStats:
    """Frame intervals of one measured page."""

    frames: int
    seconds: float
    dropped: int
    p50_ms: float
    p99_ms: float
    worst_ms: float
    ws_messages: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(args: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start ``becomingone ARGS --serve 127.0.0.1:PORT``; wait (≤ 90 s) for its OpenAPI."""
    proc = subprocess.Popen(
        [*CLI, *args, "--serve", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    deadline = time.monotonic() + 90.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{args[0]} ended with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            url = f"http://127.0.0.1:{port}/api/v1/openapi.json"
            if httpx.get(url, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"the API did not come up on port {port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process by its PID; SIGKILL after 20 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def intervals(frames: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(frames)]


def measure(browser, url: str, seconds: float, nominal: float | None, warmup: float):  # type: ignore[no-untyped-def]
    """Open ``url``, wait ``warmup`` s, record frames for ``seconds``; (stats, nominal ms)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    received = [0]
    page.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda _: received.__setitem__(0, received[0] + 1)),
    )
    page.add_init_script(RAF_PROBE)
    page.goto(url)
    page.wait_for_timeout(warmup * 1000)
    page.evaluate("window.__frames = []")
    start_messages = received[0]
    page.wait_for_timeout(seconds * 1000)
    frames: list[float] = page.evaluate("window.__frames")
    messages = received[0] - start_messages
    page.close()
    gaps = sorted(intervals(frames))
    if not gaps:
        raise SystemExit(f"no animation frames on {url}")
    nominal = nominal or statistics.median(gaps)
    dropped = sum(max(0, round(g / nominal) - 1) for g in gaps if g > 1.5 * nominal)
    stats = FrameStats(
        frames=len(frames),
        seconds=(frames[-1] - frames[0]) / 1000.0,
        dropped=dropped,
        p50_ms=statistics.median(gaps),
        p99_ms=gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))],
        worst_ms=gaps[-1],
        ws_messages=messages,
    )
    return stats, nominal


def row(name: str, s: FrameStats, base: FrameStats) -> str:
    share = 100.0 * s.dropped / max(1, s.frames + s.dropped)
    return (
        f"    {name:<26}{s.frames:>7}{s.fps:>8.1f}{s.dropped:>9}{share:>8.2f}%"
        f"{s.p50_ms:>8.1f}{s.p99_ms:>8.1f}{s.worst_ms:>8.1f}{s.fps / base.fps:>8.2f}x"
        f"{s.ws_messages / s.seconds if s.seconds else 0:>9.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 cells, 5 s (seconds to run)")
    parser.add_argument("--nodes", type=int, default=None, help="cells (default 64; quick 16)")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds")
    parser.add_argument("--cell", action="store_true", help="one cell (up --serve) instead")
    parser.add_argument("--roles", action="store_true", help="full cells with --roles")
    args = parser.parse_args()
    nodes = args.nodes or (16 if args.quick else 64)
    seconds = args.seconds or (5.0 if args.quick else 20.0)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        port = free_port()
        if args.cell:
            what, server = "1 cell (up --serve)", ["up", "--data-dir", f"{tmp}/cell"]
        else:
            what = f"{nodes} cells (cluster --serve)"
            server = ["cluster", "--nodes", str(nodes), "--topology", "fractal", "--tick", "100"]
            server += ["--duration", str(int(2 * seconds + 120))]
            if args.roles:
                what = f"{nodes} full cells with roles (cluster --cells full --roles --serve)"
                server += ["--cells", "full", "--roles", "--data-dir", f"{tmp}/cluster"]
        proc = start_server(server, port, Path(tmp) / "server.log")
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            try:
                base, nominal = measure(browser, "data:text/html,<p>blank</p>", seconds, None, 1.0)
                dash, _ = measure(browser, f"http://127.0.0.1:{port}/", seconds, nominal, 3.0)
                version = browser.version
            finally:
                browser.close()
        finally:
            stop(proc)
    print(f"dashboard render rate: Chromium {version}, {what}, {seconds:g} s measured")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"    nominal frame interval {nominal:.2f} ms (median on the blank page)")
    print(f"    load average {load} on {os.cpu_count()} CPUs")
    print(
        f"    {'page':<26}{'frames':>7}{'fps':>8}{'dropped':>9}{'share':>9}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'worst':>8}{'fps/base':>9}{'ws msg/s':>9}"
    )
    print(row("blank page (baseline)", base, base))
    print(row("dashboard", dash, base))


if __name__ == "__main__":
    main()
