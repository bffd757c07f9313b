"""Logs: ``logging.format: structured`` writes one JSON object per line with time (ISO-8601
UTC), level, cell, event and the witness seq; ``witness_logs`` mirrors every stored witness
record; one setup, replaced (never doubled) when called again; bad settings name the key."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from becomingone.config import load_config
from becomingone.errors import ConfigError
from becomingone.runtime import Cell, StructuredFormatter, TextFormatter, setup_logging
from becomingone.runtime.logs import LOGGER
from becomingone.runtime.sources import synthetic_phase
from tests.helpers import small_config

CLI = [sys.executable, "-m", "becomingone.cli"]
CONFIG = """\
becomingone:
  name: logged
  master: {tau_max: 30.0, witness_interval: 5.0}
  witnessing: {meta_interval: 1.0, meta_window: 50}
  logging: {format: structured, witness_logs: true}
"""


@pytest.mark.timeout(120)
def test_up_writes_json_lines_that_mirror_the_chain(tmp_path: Path) -> None:
    """`up` with structured logs and witness_logs: every stderr line is a JSON object with the
    fields; the mirrored records are exactly the stored chain (seq 0..n-1, level, kind, hash
    prefix), which `witness verify` accepts."""
    config = tmp_path / "cell.yaml"
    config.write_text(CONFIG)
    data = tmp_path / "d"
    run = subprocess.run(
        [*CLI, "up", "--config", str(config), "--data-dir", str(data), "--duration", "3"],
        capture_output=True,
        text=True,
        timeout=100,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stderr.splitlines()]
    assert lines
    for line in lines:
        assert {"time", "level", "cell", "event", "logger", "message"} <= set(line)
        stamp = datetime.fromisoformat(line["time"])
        assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
        assert abs((datetime.now(UTC) - stamp).total_seconds()) < 120
        assert line["cell"] == "logged"
    mirrored = [line for line in lines if line["event"] == "witness"]
    shown = subprocess.run(
        [*CLI, "witness", "show", "--data-dir", str(data), "--json", "-n", "100000"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    stored = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [m["seq"] for m in mirrored] == [r["seq"] for r in stored] == list(range(len(stored)))
    for m, r in zip(mirrored, stored, strict=True):
        assert (m["witness_level"], m["kind"], m["hash"]) == (r["level"], r["kind"], r["hash"][:16])
    assert {"micro", "meso", "macro", "meta"} <= {m["witness_level"] for m in mirrored}
    verify = subprocess.run(
        [*CLI, "witness", "verify", "--data-dir", str(data), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0 and json.loads(verify.stdout)["checked"] == len(stored)


async def test_witness_logs_off_mirrors_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With ``witness_logs`` off (the default) a cell logs no witness records."""
    cell = Cell(small_config(), tmp_path / "cell")
    try:
        with caplog.at_level(logging.INFO, logger="becomingone.witness"):
            await cell.ingest(synthetic_phase(0, 200, dt=cell.dt), now=1.0)
        assert cell.chain.count > 0
        assert not [r for r in caplog.records if r.name == "becomingone.witness"]
    finally:
        cell.close()


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "becomingone.cell", logging.WARNING, "f.py", 1, "hi %s", ("x",), None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_structured_line_fields_and_defaults() -> None:
    """A record without extras gets the default cell and its logger as the event; extras are
    kept, made JSON-able; the seq appears only when it is an integer."""
    fmt = StructuredFormatter("c0")
    plain = json.loads(fmt.format(_record()))
    assert plain["cell"] == "c0" and plain["event"] == "becomingone.cell"
    assert plain["level"] == "WARNING" and plain["message"] == "hi x" and "seq" not in plain
    assert plain["time"].endswith("Z") and len(plain["time"]) == len("2026-01-01T00:00:00.000Z")
    rich = json.loads(fmt.format(_record(cell="c7", event="glyph.fired", seq=4, odd={1: {2}})))
    assert (rich["cell"], rich["event"], rich["seq"]) == ("c7", "glyph.fired", 4)
    assert rich["odd"] == {"1": "{2}"}
    assert list(rich)[:5] == ["time", "level", "cell", "event", "seq"]


def test_text_lines_name_the_cell() -> None:
    """Text lines carry ``[cell]`` before the message when the record names a cell."""
    fmt = TextFormatter()
    assert "becomingone.cell: [c7] hi x" in fmt.format(_record(cell="c7"))
    assert "becomingone.cell: hi x" in fmt.format(_record())


def test_setup_replaces_its_handler(tmp_path: Path) -> None:
    """Calling the setup twice leaves one handler (no doubled lines); a file gets the lines."""
    root = logging.getLogger(LOGGER)
    saved = root.handlers[:], root.level
    try:
        setup_logging(fmt="structured", cell="a")
        setup_logging(fmt="structured", cell="b", file=tmp_path / "logs" / "cell.log")
        assert len(root.handlers) == 1
        logging.getLogger("becomingone.cell").warning("once", extra={"event": "test"})
        root.handlers[0].flush()
        lines = (tmp_path / "logs" / "cell.log").read_text().splitlines()
        assert [json.loads(line)["cell"] for line in lines] == ["b"]
    finally:
        for h in root.handlers[:]:
            root.removeHandler(h)
            h.close()
        root.handlers[:], root.level = saved[0], saved[1]


def test_logging_settings_from_file_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment overrides the file's logging keys; a bad format names its key."""
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    monkeypatch.setenv("BECOMINGONE__LOGGING__FORMAT", "text")
    monkeypatch.setenv("BECOMINGONE__LOGGING__WITNESS_LOGS", "false")
    config = load_config(path)
    assert (config.logging.format, config.logging.witness_logs) == ("text", False)
    monkeypatch.setenv("BECOMINGONE__LOGGING__FORMAT", "xml")
    with pytest.raises(ConfigError, match=r"logging\.format"):
        load_config(path)
