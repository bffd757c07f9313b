"""Deployment profiles: what one ``becomingone up`` process costs on a single pinned core.

The small profile starts ``python -m becomingone.cli up --json`` on the synthetic 100 Hz source
as a child process pinned to one core (``os.sched_setaffinity`` before ``exec``), and measures
it the way the kernel accounts for it: user + system CPU seconds and the peak resident set size
(``ru_maxrss``) from ``wait4``, and the steady-state CPU between the first and the last status
line from ``/proc/<pid>/stat``. Nothing is estimated; no psutil.

Rule: this module starts and waits for exactly the one child it spawns (killed by its pid if it
overruns), and never judges by a figure it did not measure; :class:`Budget` says what a
Pi-Zero-class device can hold (< 10 % of one core, < 150 MB RSS, issue 13).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from becomingone.errors import InputError, StorageError

__all__ = [
    "CLK_TCK",
    "LARGEST_CLUSTER",
    "Budget",
    "SmallProfile",
    "cluster_bench_argv",
    "pick_core",
    "process_cpu_seconds",
    "run_small_profile",
]

#: Clock ticks per second of ``/proc/<pid>/stat``'s utime and stime.
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: The largest case of ``bench/nats_cluster.py`` (its ``FULL`` list ends with it).
LARGEST_CLUSTER = "64:fractal"
#: Seconds a child may take beyond its ``--duration`` (start-up, the final chain check).
GRACE_SECONDS = 120.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """What the small profile must stay under: CPU % of one core and peak RSS in MB."""

    cpu_percent: float = 10.0
    rss_mb: float = 150.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SmallProfile:
    """The measured cost of one cell run on one core.

    ``cpu_percent`` is user + system CPU of the whole run (start-up and imports included)
    over its wall time, in % of one core; ``steady_cpu_percent`` the same between the first
    and the last status line (the cell running, start-up excluded; ``None`` if fewer than
    two lines arrived). ``rss_mb`` is the peak resident set size (``ru_maxrss``).
    """

    duration: float
    core: int
    wall_seconds: float
    cpu_seconds: float
    cpu_percent: float
    steady_cpu_percent: float | None
    rss_mb: float
    samples: int
    exit_code: int

    def verdicts(self, budget: Budget) -> dict[str, bool]:
        """PASS (True) or MISS (False) per budget: ``cpu`` and ``rss``."""
        return {"cpu": self.cpu_percent < budget.cpu_percent, "rss": self.rss_mb < budget.rss_mb}


def pick_core() -> int:
    """The highest-numbered core this process may run on (the one to pin the child to)."""
    return max(os.sched_getaffinity(0))


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime: fields 14, 15


def _command(python: str, data_dir: Path, duration: float) -> list[str]:
    cell = ["up", "--data-dir", str(data_dir), "--duration", repr(duration), "--json"]
    return [python, "-m", "becomingone.cli", *cell]


def run_small_profile(
    *,
    duration: float = 60.0,
    core: int | None = None,
    python: str = sys.executable,
    extra_args: Sequence[str] = (),
) -> SmallProfile:
    """Run ``becomingone up`` on the synthetic 100 Hz source for ``duration`` seconds, pinned
    to ``core`` (default :func:`pick_core`), in a fresh data dir, and measure it.

    Raises
    ------
    InputError
        ``duration`` is not > 0, or ``core`` is not one this process may use.
    StorageError
        The child failed (its last stderr line is in the message).
    """
    if not duration > 0:
        raise InputError("--duration", f"must be > 0 seconds, got {duration}")
    allowed = os.sched_getaffinity(0)
    core = pick_core() if core is None else core
    if core not in allowed:
        raise InputError("--core", f"core {core} is not one of {sorted(allowed)}")
    with tempfile.TemporaryDirectory(prefix="becomingone-small-") as tmp:
        argv = _command(python, Path(tmp) / "cell", duration) + list(extra_args)
        with open(Path(tmp) / "stderr", "w+b") as err:
            result = _measure(argv, core, duration, err)
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-1:]
    if result.exit_code != 0:
        why = tail[0] if tail else "no message"
        raise StorageError(f"the profiled cell exited with {result.exit_code}: {why}")
    return result


def _samples(line: bytes, previous: int) -> int:
    """The ``samples`` count of one ``up --json`` status line (else ``previous``)."""
    try:
        status = json.loads(line)
    except ValueError:
        return previous
    if not isinstance(status, dict) or "samples" not in status:
        return previous
    return int(status["samples"])


def _measure(argv: list[str], core: int, duration: float, err: BinaryIO) -> SmallProfile:
    """Spawn ``argv`` pinned to ``core``, follow its status lines, reap it with ``wait4``."""
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=err,
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),
    )
    watchdog = threading.Timer(duration + GRACE_SECONDS, proc.kill)
    watchdog.start()
    first: tuple[float, float] | None = None
    last: tuple[float, float] | None = None
    samples = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            samples = _samples(line, samples)
            mark = (time.monotonic(), process_cpu_seconds(proc.pid))
            first = first or mark
            last = mark
        _, wait_status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(wait_status)
    finally:
        watchdog.cancel()
        if proc.returncode is None:  # not reaped: an error on our side
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    cpu = usage.ru_utime + usage.ru_stime
    steady = None
    if first is not None and last is not None and last[0] > first[0]:
        steady = 100.0 * (last[1] - first[1]) / (last[0] - first[0])
    return SmallProfile(
        duration=duration,
        core=core,
        wall_seconds=wall,
        cpu_seconds=cpu,
        cpu_percent=100.0 * cpu / wall,
        steady_cpu_percent=steady,
        rss_mb=usage.ru_maxrss / 1024.0,
        samples=samples,
        exit_code=proc.returncode,
    )


def cluster_bench_argv(*, quick: bool, python: str = sys.executable) -> list[str]:
    """The command of the cluster profile: ``bench/nats_cluster.py`` of this checkout on its
    largest case (64 fractal node processes at 10 Hz), or its ``--quick`` case.

    Raises
    ------
    StorageError
        This is an installed package without the repository's ``bench/`` directory.
    """
    script = Path(__file__).resolve().parents[3] / "bench" / "nats_cluster.py"
    if not script.is_file():
        raise StorageError(f"{script} not found: the cluster profile runs from a source checkout")
    return [python, str(script)] + (["--quick"] if quick else ["--cases", LARGEST_CLUSTER])
