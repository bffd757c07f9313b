"""A throwaway PostgreSQL server for tests and benchmarks: Debian's binaries, never a mock.

Rule: :func:`start_postgres` runs ``initdb`` and ``pg_ctl start`` (as the ``postgres`` user when
we are root: initdb refuses root) on a free loopback port with its socket in a fresh temporary
directory; :meth:`PgServer.stop` stops exactly that server, by the PID in its
``postmaster.pid``, and removes the directory. Nothing else is touched.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PgServer", "find_bin", "start_postgres"]


def find_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb`` and ``pg_ctl``."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """One running throwaway server: ``url(db)`` connects to database ``db`` over TCP."""

    root: Path
    port: int
    pid: int

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL for ``database`` (user ``postgres``, trust auth, loopback)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """Create a fresh, empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown of this server (SIGINT to its postmaster PID), then remove its dir."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(self.pid):
            time.sleep(0.05)
        if _alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def start_postgres(*, fsync: bool = False) -> PgServer:
    """initdb + pg_ctl start on a free loopback port; raises ``RuntimeError`` if it fails."""
    bin_dir = find_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (scripts/install-system.sh adds it)")
    root = Path(tempfile.mkdtemp(prefix="becomingone-pg-"))
    root.chmod(0o755)
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
        os.chown(sock, entry.pw_uid, entry.pw_gid)
    run = {"check": True, "capture_output": True, "timeout": 120}
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
        subprocess.run(_as_postgres([*initdb, "--no-sync", "-E", "UTF8"]), **run)  # type: ignore[call-overload]
        port = _free_port()
        opts = f"-p {port} -k {sock} -h 127.0.0.1 -c fsync={'on' if fsync else 'off'}"
        ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log")]
        subprocess.run(_as_postgres([*ctl, "-w", "-t", "60", "start"]), **run)  # type: ignore[call-overload]
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        log = (root / "log").read_text(errors="replace")[-2000:] if (root / "log").exists() else ""
        pidfile = data / "postmaster.pid"
        if pidfile.exists():
            PgServer(root=root, port=0, pid=int(pidfile.read_text().split()[0])).stop()
        shutil.rmtree(root, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        raise RuntimeError(f"cannot start PostgreSQL: {exc} {detail!r} {log}") from exc
    return PgServer(root=root, port=port, pid=pid)
