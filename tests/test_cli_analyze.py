"""`becomingone analyze` end to end: the installed command on the example, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from becomingone.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "buried.csv"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "becomingone.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_example_collapses_only_where_the_signal_is(tmp_path):
    """With the band-pass, the example collapses in one episode inside 20-40 s and dissipates
    elsewhere; --plot writes a PNG."""
    png = tmp_path / "a.png"
    proc = _run("analyze", str(EXAMPLE), "--band", "3", "8", "--json", "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "signal" and doc["dt"] == pytest.approx(0.01)
    assert len(doc["episodes"]) == 1
    ep = doc["episodes"][0]
    assert 20.0 <= ep["start"] <= 24.0 and 38.0 <= ep["end"] <= 42.0
    assert doc["collapses"] > 0 and doc["dissipations"] > doc["collapses"]
    assert png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_band_the_buried_signal_does_not_collapse():
    """Without the band-pass the noise hides the oscillation: every evaluation dissipates."""
    proc = _run("analyze", str(EXAMPLE), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["collapses"] == 0


def test_text_report_lists_timeline_and_episodes(capsys):
    """The human report shows settings, a timeline with states and the episode."""
    assert main(["analyze", str(EXAMPLE), "--band", "3", "8", "--rows", "12"]) == 0
    out = capsys.readouterr().out
    assert "band=3-8 Hz" in out and "COLLAPSE" in out and "dissipate" in out
    assert "collapse episodes:" in out and "resonance map peak" in out


def test_text_file_analysis(tmp_path, capsys):
    """A text file is read one message per line and analysed with the lexical embedding."""
    f = tmp_path / "chat.txt"
    f.write_text("\n".join(f"message number {i} about topic {i % 3}" for i in range(40)))
    code = main(
        ["analyze", str(f), "--embedding", "lexical", "--lag", "3", "--window", "12", "--json"]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "text" and doc["embedding"] == "lexical" and doc["channels"] == 384
    assert all(0.0 <= e["coherence"] <= 1.0 for e in doc["evaluations"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["analyze", "/nonexistent.csv"], "no such file"),
        (["analyze", str(EXAMPLE), "--window", "-1"], "window"),
        (["analyze", str(EXAMPLE), "--window", "0.05", "--lag", "0.2"], "window"),
        (["analyze", str(EXAMPLE), "--window", "100"], "fewer than one window needs"),
        (["analyze", str(EXAMPLE), "--band", "8", "3"], "band"),
        (["analyze", str(EXAMPLE), "--dt", "0.5"], "disagrees"),
        (["analyze", str(EXAMPLE), "--threshold", "2"], "threshold"),
    ],
)
def test_bad_input_exits_2_with_a_named_error(args, needle):
    """Bad files and values exit with status 2 and a one-line error naming the problem."""
    proc = _run(*args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_csv_without_time_needs_dt(tmp_path):
    """A CSV without a time column asks for --dt, and works with it."""
    f = tmp_path / "x.csv"
    f.write_text("\n".join(str(i % 7) for i in range(400)))
    assert "pass --dt" in _run("analyze", str(f)).stderr
    assert _run("analyze", str(f), "--dt", "0.01", "--kind", "phase").returncode == 0


def test_every_subcommand_has_help():
    """Each registered subcommand answers --help with its description."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:
        with pytest.raises(SystemExit) as info:
            parser.parse_args([name, "--help"])
        assert info.value.code == 0


def test_config_file_supplies_engine_settings_and_flags_win(tmp_path, capsys):
    """--config takes lag, I_c and the window from becomingone.yaml; an explicit flag wins."""
    cfg = tmp_path / "b.yaml"
    cfg.write_text(
        "becomingone:\n  kairos:\n    tau_scale: 0.2\n    threshold: 0.9\n"
        "  emissary:\n    tau_max: 3.0\n"
    )
    assert main(["analyze", str(EXAMPLE), "--config", str(cfg), "--lag", "0.1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["lag"], doc["window"], doc["threshold"]) == (0.1, 3.0, 0.9)
    bad = tmp_path / "bad.yaml"
    bad.write_text("becomingone:\n  kairos:\n    omega: .nan\n")
    proc = _run("analyze", str(EXAMPLE), "--config", str(bad))
    assert proc.returncode == 2 and "omega" in proc.stderr


def test_shipped_chat_example_resonates_during_the_back_and_forth(capsys):
    """examples/chat.txt collapses exactly while the two lines alternate (lexical fallback)."""
    chat = ROOT / "examples" / "chat.txt"
    args = ["analyze", str(chat), "--lag", "2", "--window", "8", "--hop", "1", "--json"]
    assert main([*args, "--embedding", "lexical"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(e["start"], e["end"]) for e in doc["episodes"]] == [(22.0, 35.0)]
