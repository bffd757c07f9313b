"""`becomingone analyze` on real data: time columns and their units, detrending, the lag that
rounds to 0 samples, the dominant frequency and the collapse rule it names (issue 7 §5, §3)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from becomingone.cli import main

ROOT = Path(__file__).resolve().parents[2]
SUNSPOTS = ROOT / "examples" / "sunspots.csv"  # yearly sunspot numbers 1700-2008 (NOAA)
CHAT = ROOT / "examples" / "chat.txt"


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["analyze", *args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _error(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["analyze", *args])
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return code, err


def test_yearly_file_default_lag_is_refused_naming_both_numbers(capsys):
    """The default lag of 0.1 on yearly data is 0 samples: exit 2 with both numbers and units,
    instead of |T̂|² = 1 in every window."""
    code, err = _error(capsys, str(SUNSPOTS))
    assert code == 2
    assert "--lag 0.1 years is 0 samples at dt = 1 year" in err and "--lag 1" in err


def test_text_at_one_message_per_sample_refuses_the_default_lag(capsys):
    """Text is one message per second; the default 0.1 s lag rounds to 0 samples: exit 2."""
    code, err = _error(capsys, str(CHAT), "--embedding", "lexical")
    assert code == 2 and "--lag 0.1 s is 0 samples at dt = 1 s" in err


def test_sunspot_cycle_is_eleven_years_in_the_files_own_unit(capsys):
    """The `YEAR` column gives dt = 1 year and is no channel; the report gives the dominant
    frequency from the mean phase velocity in cycles per year: the 11-year solar cycle."""
    doc = _json(capsys, str(SUNSPOTS), "--lag", "3", "--window", "44", "--band", "0.05", "0.125")
    assert (doc["dt"], doc["time_unit"], doc["time_column"]) == (1.0, "year", "YEAR")
    assert doc["channels"] == 1 and doc["samples"] == 309
    freq = doc["dominant_frequency"]
    assert freq["unit"] == "cycles per year"
    assert freq["frequency"] == pytest.approx(0.0915, abs=0.002)
    assert 10.5 < freq["period"] < 11.5
    assert doc["evaluations"][0]["t"] >= 1700.0
    assert main(["analyze", str(SUNSPOTS), "--lag", "3", "--window", "44", "--band", "0.05",
                 "0.125"]) == 0  # fmt: skip
    assert "dominant frequency 0.0915 /year, period 10.9 years" in capsys.readouterr().out


def test_without_detrending_the_sunspot_phase_means_nothing(capsys):
    """Sunspot numbers sit on a large mean: without removing it the analytic signal hardly
    turns (a period of centuries); with the default mean removal it is near 11 years."""
    raw = _json(capsys, str(SUNSPOTS), "--lag", "3", "--window", "44", "--detrend", "none")
    demeaned = _json(capsys, str(SUNSPOTS), "--lag", "3", "--window", "44")
    assert raw["dominant_frequency"]["period"] > 100
    assert 9 < demeaned["dominant_frequency"]["period"] < 14
    assert (raw["detrend"], demeaned["detrend"]) == ("none", "mean")


def test_offset_signal_collapses_only_once_the_mean_is_removed(tmp_path, capsys):
    """1000 + sin(2π·5t) + noise: the de-meaned phase collapses, the raw one never does."""
    t = np.arange(3000) * 0.01
    x = 1000 + np.sin(2 * np.pi * 5 * t) + 0.05 * np.random.default_rng(1).normal(size=t.size)
    f = tmp_path / "offset.csv"
    f.write_text("time,volts\n" + "".join(f"{a:.2f},{b:.6f}\n" for a, b in zip(t, x)))
    args = (str(f), "--lag", "0.05", "--threshold", "0.9")
    assert _json(capsys, *args)["collapses"] > 0
    assert _json(capsys, *args, "--detrend", "none")["collapses"] == 0


def test_iso_dates_become_days_and_never_a_channel(tmp_path, capsys):
    """A `Date` column of ISO days is the time axis (unit days, origin the first date)."""
    days = np.arange(400)
    f = tmp_path / "daily.csv"
    start = np.datetime64("2023-01-01")
    rows = [f"{start + int(d)},{np.sin(2 * np.pi * d / 7):.6f}\n" for d in days]
    f.write_text("Date,visits\n" + "".join(rows))
    doc = _json(capsys, str(f), "--lag", "2", "--window", "56")
    assert (doc["channels"], doc["time_unit"], doc["time_origin"]) == (1, "day", "2023-01-01")
    assert doc["dominant_frequency"]["period"] == pytest.approx(7.0, rel=0.02)


def test_time_column_flag_names_a_column_or_none(tmp_path, capsys):
    """--time-column NAME picks the clock; --time-column none keeps `t` as a data channel."""
    t = np.arange(500) * 0.01
    f = tmp_path / "two.csv"
    f.write_text("t,clock,x\n" + "".join(f"{a:.2f},{2 * a:.2f},{np.sin(9 * a):.5f}\n" for a in t))
    picked = _json(capsys, str(f), "--time-column", "clock", "--lag", "0.1")
    assert picked["channels"] == 2 and picked["dt"] == pytest.approx(0.02)
    kept = _json(capsys, str(f), "--time-column", "none", "--dt", "0.01", "--kind", "phase")
    assert kept["channels"] == 3 and kept["time_column"] is None
    code, err = _error(capsys, str(f), "--time-column", "when")
    assert code == 2 and "no column named 'when'" in err


def test_collapse_rule_is_named_in_header_and_json(capsys):
    """The report says which rule its COLLAPSE column uses: one engine, |T|^2 >= I_c."""
    doc = _json(capsys, str(SUNSPOTS), "--lag", "3", "--window", "44")
    assert doc["rule"] == "single-engine |T|^2 >= I_c"
    assert main(["analyze", str(SUNSPOTS), "--lag", "3", "--window", "44", "--rows", "3"]) == 0
    header = capsys.readouterr().out.splitlines()[:3]
    assert header[2].startswith("collapse rule: single-engine |T|^2 >= I_c")
    assert "not the cell's Master+Emissary Sync-layer rule" in header[2]


def test_text_reports_no_frequency(capsys):
    """Embedding channels are not angles: text gives no dominant frequency."""
    doc = _json(capsys, str(CHAT), "--embedding", "lexical", "--lag", "2", "--window", "8")
    assert doc["dominant_frequency"] is None and doc["time_unit"] == "s"


def test_sync_rule_runs_the_cells_master_and_emissary(capsys):
    """--rule sync collapses by the Sync layer: the 10 s Master must fill with the buried 5 Hz
    oscillation too, so the episode starts seconds after the single-engine one; the JSON names
    the rule, the Master window and the phase threshold."""
    example = str(ROOT / "examples" / "buried.csv")
    single = _json(capsys, example, "--band", "3", "8")
    sync = _json(capsys, example, "--band", "3", "8", "--rule", "sync", "--master-window", "10")
    assert sync["rule"] == "sync-layer |T_sync|^2 >= I_c and delta_phase < phase_threshold"
    assert (sync["master_window"], sync["phase_threshold"]) == (10.0, 0.1)
    assert "master_window" not in single
    [first], [late] = single["episodes"], sync["episodes"]
    assert late["start"] > first["start"] + 3.0 and abs(late["end"] - first["end"]) < 1.0
    assert all(e["coherence"] >= 0.95 for e in sync["evaluations"] if e["collapsed"])


def test_sync_rule_takes_master_window_from_the_config(tmp_path, capsys):
    """With --config, the Master window is master.tau_max and Δ_phase bound sync.phase_threshold."""
    cfg = tmp_path / "b.yaml"
    cfg.write_text(
        "becomingone:\n  kairos:\n    tau_scale: 0.1\n  master:\n    tau_max: 6.0\n"
        "  emissary:\n    tau_max: 2.0\n  sync:\n    phase_threshold: 0.2\n"
    )
    example = str(ROOT / "examples" / "buried.csv")
    doc = _json(capsys, example, "--config", str(cfg), "--rule", "sync", "--band", "3", "8")
    assert (doc["master_window"], doc["window"], doc["phase_threshold"]) == (6.0, 2.0, 0.2)
