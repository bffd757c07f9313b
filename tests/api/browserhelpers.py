"""Helpers of the dashboard's browser tests and bench: Debian's Chromium through Playwright
(never a downloaded browser), and `becomingone` server processes on free loopback ports,
each stopped by its own PID."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: Debian's chromium (installed by scripts/install-system.sh); Playwright launches this one.
CHROMIUM = Path("/usr/bin/chromium")
CLI = [sys.executable, "-m", "becomingone.cli"]
OUT = Path(__file__).resolve().parents[2] / "out" / "dashboard"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """One `becomingone <args> --serve 127.0.0.1:PORT` process, restartable on the same port."""

    args: list[str]
    port: int = field(default_factory=free_port)
    #: The option that takes the address (`serve` calls it --listen).
    flag: str = "--serve"
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, seconds: float = 60.0) -> ServerProcess:
        """Start the process and wait (bounded) until its OpenAPI document answers 200 (a cell
        and a cluster app both have one; a cluster app has no /node)."""
        out = self.log.open("ab") if self.log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [*CLI, *self.args, self.flag, f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.args[0]} ended with {self.proc.returncode}; see {self.log}"
                )
            try:
                if httpx.get(f"{self.url}/api/v1/openapi.json", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the API of {self.args[0]} did not come up on {self.url}")

    def stop(self, seconds: float = 20.0) -> int | None:
        """SIGTERM this process by its PID, wait for it (SIGKILL after ``seconds``)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait(timeout=seconds)
