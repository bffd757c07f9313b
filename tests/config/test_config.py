"""Tests of the becomingone.yaml schema, loading, environment overrides and `config check`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from becomingone.cli import main
from becomingone.config import BecomingOneConfig, CellConfig, check_config, load_config
from becomingone.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_file_is_the_embedded_default() -> None:
    """config/becomingone.yaml validates and equals the embedded defaults (it documents them)."""
    shipped = load_config(ROOT / "config" / "becomingone.yaml", environ={})
    assert shipped == load_config(None, environ={})
    assert check_config(ROOT / "config" / "becomingone.yaml", {}) == []


def test_defaults_follow_the_design() -> None:
    """Defaults: ω = 0, I_c = 0.95, a slow hour-long Master and a ~1 s Emissary."""
    c = CellConfig()
    assert c.kairos.omega == 0.0 and c.kairos.threshold == 0.95
    assert c.master.tau_max == 3600.0 and c.emissary.tau_max == 1.0
    assert c.kairos.step == 0.01


def test_sample_rate_sets_dt_and_must_agree(tmp_path: Path) -> None:
    """sample_rate: 50 gives dt = 0.02; a dt that disagrees with sample_rate is an error."""
    f = tmp_path / "c.yaml"
    f.write_text("becomingone:\n  kairos: {sample_rate: 50}\n")
    assert load_config(f, environ={}).kairos.step == pytest.approx(0.02)
    f.write_text("becomingone:\n  kairos: {sample_rate: 50, dt: 0.01}\n")
    issues = check_config(f, {})
    assert [i.path for i in issues] == ["becomingone.kairos"]
    assert "disagree" in issues[0].reason


def test_environment_overrides_win(tmp_path: Path) -> None:
    """BECOMINGONE__KAIROS__OMEGA=2.0 overrides the file; nested keys work too."""
    f = tmp_path / "c.yaml"
    f.write_text("becomingone:\n  kairos: {omega: 1.0}\n")
    env = {"BECOMINGONE__KAIROS__OMEGA": "2.0", "BECOMINGONE__MEMORY__RETENTION__SIGNATURES": "5"}
    c = load_config(f, environ=env)
    assert c.kairos.omega == 2.0 and c.memory.retention.signatures == 5


def test_bad_environment_override_names_its_key() -> None:
    """A bad override fails with the dotted path of the key it set."""
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={"BECOMINGONE__KAIROS__DT": "-1"})
    assert err.value.path == "becomingone.kairos.dt"


def test_check_reports_every_bad_key(tmp_path: Path) -> None:
    """Every bad key is reported with its path and reason, not only the first."""
    f = tmp_path / "bad.yaml"
    f.write_text(
        yaml.safe_dump(
            {
                "becomingone": {
                    "name": "bad name!",
                    "kairos": {"dt": -1, "omegaa": 3, "threshold": 1.5},
                    "sync": {"phase_threshold": "wide"},
                    "memory": {"retention": {"signatures": 0}},
                    "hooks": {"collapsed": ["x:y"], "collapse": ["nocolon"]},
                    "extra": 1,
                }
            }
        )
    )
    issues = {i.path: i.reason for i in check_config(f, {})}
    assert set(issues) == {
        "becomingone.name",
        "becomingone.kairos.dt",
        "becomingone.kairos.omegaa",
        "becomingone.kairos.threshold",
        "becomingone.sync.phase_threshold",
        "becomingone.memory.retention.signatures",
        "becomingone.hooks.collapsed",
        "becomingone.hooks.collapse",
        "becomingone.extra",
    }
    assert issues["becomingone.kairos.omegaa"] == "unknown key"
    assert "greater than 0" in issues["becomingone.kairos.dt"]


def test_cross_field_rules_name_the_key(tmp_path: Path) -> None:
    """A window shorter than the lag, or an Emissary longer than the Master, names the key."""
    f = tmp_path / "c.yaml"
    f.write_text("becomingone:\n  kairos: {tau_scale: 2.0}\n  emissary: {tau_max: 1.0}\n")
    assert [i.path for i in check_config(f, {})] == ["becomingone.emissary.tau_max"]
    f.write_text("becomingone:\n  master: {tau_max: 10}\n  emissary: {tau_max: 20}\n")
    assert [i.path for i in check_config(f, {})] == ["becomingone.emissary.tau_max"]


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    """A missing file or broken YAML is one issue naming the file, with the line for YAML."""
    missing = tmp_path / "nope.yaml"
    assert check_config(missing, {})[0].path == str(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("becomingone:\n  kairos: [1, 2\n")
    issue = check_config(broken, {})[0]
    assert issue.path == f"{broken}:3:1" and "line 2, column 11" in issue.reason


def test_cli_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`becomingone config check` exits 0 on a good file, 2 with one line per bad key."""
    good = tmp_path / "good.yaml"
    good.write_text("becomingone:\n  name: x\n")
    assert main(["config", "check", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("becomingone:\n  kairos: {dt: 0}\n  master: {tau_max: -3}\n")
    assert main(["config", "check", str(bad)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert any("becomingone.kairos.dt" in line for line in out)
    assert any("becomingone.master.tau_max" in line for line in out)


def test_model_round_trips_through_yaml() -> None:
    """`config show` output (a YAML dump of the model) loads back to the same config."""
    c = CellConfig()
    text = yaml.safe_dump({"becomingone": c.model_dump(mode="json")})
    assert BecomingOneConfig.model_validate(yaml.safe_load(text)).becomingone == c


def test_retention_maps_onto_the_memory_value() -> None:
    """config's retention section becomes memory's plain Retention value with the same fields."""
    from becomingone.memory import Retention

    cfg = load_config(None, environ={"BECOMINGONE__MEMORY__RETENTION__SIGNATURES": "5"})
    assert cfg.memory.retention.to_retention() == Retention(signatures=5)


def test_a_lag_of_zero_samples_is_refused(tmp_path: Path) -> None:
    """kairos.tau_scale that rounds to 0 samples at the configured dt is an error naming both
    numbers (a cell with L = 0 would collapse on any stream); one sample is fine."""
    f = tmp_path / "c.yaml"
    f.write_text("becomingone:\n  kairos: {dt: 1.0, tau_scale: 0.1}\n")
    issues = check_config(f, {})
    assert [i.path for i in issues] == ["becomingone.kairos"]
    assert "0.1 s is 0 samples at dt = 1 s" in issues[0].reason
    f.write_text("becomingone:\n  kairos: {dt: 1.0, tau_scale: 1.0}\n")
    assert load_config(f, environ={}).kairos.tau_scale == 1.0
