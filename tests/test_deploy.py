"""The files under deploy/ run what they say: every ``becomingone`` command line in a systemd
unit and in the Containerfile parses with the CLI's own argparse (real flags, real choices),
``systemd-analyze verify`` accepts each unit with its executables pointed at this machine's
(and refuses a broken one), and nats-server accepts the cluster config with real certificates
(``nats-server -t``)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from becomingone.certs import init_ca, issue_certificate
from becomingone.cli import build_parser
from becomingone.config import load_config
from becomingone.transport.natsd import find_nats_server

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))
BECOMINGONE = Path(sys.executable).with_name("becomingone")


def unit_values(path: Path) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file by key (a key may repeat), comments skipped."""
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def check_cli(argv: list[str]) -> None:
    """The CLI's parser accepts ``argv`` (argparse exits on an unknown flag or choice)."""
    args = build_parser().parse_args(argv)
    assert callable(args.handler)


def test_the_units_are_there() -> None:
    """The cell, node and nats-server units exist (the tests below are not vacuous)."""
    names = {p.name for p in UNITS}
    assert names == {
        "becomingone-cell.service",
        "becomingone-node@.service",
        "becomingone-nats.service",
    }


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_exec_start_uses_real_flags(unit: Path) -> None:
    """Each unit has one ExecStart; a ``becomingone`` one parses with the CLI (``%i`` as a
    node name), a nats-server one reads the deployed config."""
    (exec_start,) = unit_values(unit)["ExecStart"]
    argv = shlex.split(exec_start.replace("%i", "m1"))
    if argv[0].endswith("/becomingone"):
        check_cli(argv[1:])
    else:
        assert argv[0].endswith("/nats-server")
        assert argv[1:] == ["-c", "/etc/becomingone/nats-server.conf"]


def test_a_wrong_flag_would_be_caught() -> None:
    """The check above fails on a flag the CLI does not have."""
    with pytest.raises(SystemExit):
        check_cli(["node", "--bus", "tls://10.0.0.1:4222", "--tls-cert", "x"])


def _runnable_copy(unit: Path, into: Path, executable: str | None = None) -> Path:
    """The unit with its executables pointed at this machine's and no User/Group (the
    ``becomingone`` account does not exist here); a template is instantiated as ``@m1``."""
    text = unit.read_text()
    text = text.replace("/opt/becomingone/venv/bin/becomingone", executable or str(BECOMINGONE))
    text = text.replace("/usr/local/bin/nats-server", str(find_nats_server()))
    text = re.sub(r"^(User|Group)=.*\n", "", text, flags=re.M)
    target = into / unit.name.replace("@.", "@m1.")
    target.write_text(text)
    return target


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    """``systemd-analyze verify`` exits 0 on the unit, and 1 once its executable is missing."""
    assert BECOMINGONE.exists()
    good = _runnable_copy(unit, tmp_path)
    run = subprocess.run(
        ["systemd-analyze", "verify", str(good)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    bad = _runnable_copy(unit, broken, executable="/nonexistent/becomingone")
    bad.write_text(bad.read_text().replace(str(find_nats_server()), "/nonexistent/nats-server"))
    run = subprocess.run(
        ["systemd-analyze", "verify", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode != 0


def test_the_small_device_config_loads() -> None:
    """deploy/becomingone-small.yaml is a valid config that shortens the Master's window."""
    config = load_config(DEPLOY / "becomingone-small.yaml")
    assert config.master.tau_max == 600.0
    assert config.master.tau_max < load_config(None).master.tau_max


def _json_array(containerfile: str, instruction: str) -> list[str]:
    match = re.search(rf"^{instruction} (\[.*\])$", containerfile, re.M)
    assert match is not None, instruction
    value: list[str] = json.loads(match.group(1))
    return value


def test_containerfile_commands_parse_with_the_cli() -> None:
    """ENTRYPOINT is ``becomingone``; the default CMD and the documented ``podman run``
    command (the comment at the top) parse with the CLI; every COPY source exists."""
    text = (DEPLOY / "Containerfile").read_text()
    assert _json_array(text, "ENTRYPOINT") == ["becomingone"]
    check_cli(_json_array(text, "CMD"))
    run = " ".join(
        line.lstrip("# ").rstrip("\\ ") for line in text.splitlines() if line.startswith("#  ")
    )
    words = shlex.split(run[run.index("podman run") :])
    check_cli(words[words.index("becomingone") + 1 :])
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (DEPLOY.parent / source).exists(), source


def test_nats_server_accepts_the_cluster_config(tmp_path: Path) -> None:
    """``nats-server -t`` validates deploy/nats-server.conf with real certificates (made by
    ``becomingone.certs``) in place of /etc/becomingone/certs, and rejects it without them."""
    certs = tmp_path / "certs"
    init_ca(certs)
    issue_certificate(certs, "nats", server=True, hosts=("10.0.0.1", "10.0.0.2", "10.0.0.3"))
    text = (DEPLOY / "nats-server.conf").read_text()
    conf = tmp_path / "nats.conf"
    conf.write_text(
        text.replace("/etc/becomingone/certs", str(certs)).replace(
            "/var/lib/becomingone", str(tmp_path / "var")
        )
    )
    server = str(find_nats_server())
    ok = subprocess.run([server, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    conf.write_text(text.replace("/etc/becomingone/certs", str(tmp_path / "none")))
    bad = subprocess.run(
        [server, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode != 0
