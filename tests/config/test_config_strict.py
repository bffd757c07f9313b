"""Config strictness (issue 7 §6): one-line YAML errors with file:line:column, binary files,
strict scalar types (with YAML scalar rules for environment overrides), and `config check`
importing every hook."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from becomingone.cli import main
from becomingone.config import check_config, load_config
from becomingone.errors import ConfigError


def write(tmp_path: Path, text: str | bytes, name: str = "c.yaml") -> Path:
    """A config file holding ``text``."""
    f = tmp_path / name
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text)
    return f


def check_lines(f: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Exit status and stdout lines of `becomingone config check F`."""
    status = main(["config", "check", str(f)])
    return status, capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    ("text", "line", "column", "problem"),
    [
        ("becomingone:\n  kairos: [1, 2\n", 3, 1, "expected ',' or ']'"),
        ("becomingone:\n  kairos:\n    dt: 0.1\n   omega: 2\n", 4, 4, "expected <block end>"),
        ("becomingone:\n  name: 'unclosed\n", 3, 1, "found unexpected end of stream"),
        ("becomingone: {a: 1\n", 2, 1, "expected ',' or '}'"),
    ],
    ids=["flow-list", "indent", "quote", "flow-map"],
)
def test_yaml_syntax_error_is_one_line_naming_file_line_column(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    line: int,
    column: int,
    problem: str,
) -> None:
    """A YAML syntax error is ONE line: ``FILE:LINE:COLUMN: problem`` (check and load)."""
    f = write(tmp_path, text)
    status, out = check_lines(f, capsys)
    assert status == 2 and len(out) == 1, out
    assert out[0].startswith(f"{f}:{line}:{column}: ") and problem in out[0], out[0]
    with pytest.raises(ConfigError) as err:
        load_config(f, environ={})
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{f}:{line}:{column}: ")


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"becomingone:\x00\n",
        b"a: \x07\n",
    ],
    ids=["all-bytes", "png", "nul", "control"],
)
def test_binary_file_as_yaml_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes
) -> None:
    """A binary file given as the config is one line naming the file, exit 2, no traceback."""
    f = write(tmp_path, data)
    status, out = check_lines(f, capsys)
    assert status == 2 and len(out) == 1 and out[0].startswith(f"{f}:"), out
    assert "not a YAML text file" in out[0] or "not valid YAML" in out[0], out[0]
    assert main(["config", "show", str(f)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and str(f) in err[0], err


@pytest.mark.parametrize(
    ("yaml_text", "path"),
    [
        ("kairos: {threshold: true}", "becomingone.kairos.threshold"),
        ("kairos: {threshold: '0.9'}", "becomingone.kairos.threshold"),
        ("kairos: {channels: 2.0}", "becomingone.kairos.channels"),
        ("kairos: {channels: true}", "becomingone.kairos.channels"),
        ("memory: {retention: {signatures: '3'}}", "becomingone.memory.retention.signatures"),
        (
            "security: {strict_key_permissions: 'maybe'}",
            "becomingone.security.strict_key_permissions",
        ),
        ("name: 123", "becomingone.name"),
    ],
)
def test_strict_types_reject_coercions(tmp_path: Path, yaml_text: str, path: str) -> None:
    """A bool or a quoted number where a number goes (or a float for an int) is an error."""
    f = write(tmp_path, f"becomingone:\n  {yaml_text}\n")
    assert [i.path for i in check_config(f, {})] == [path]


def test_ints_for_floats_and_exponents_are_accepted(tmp_path: Path) -> None:
    """An int where a float goes is fine, and `1e-3` (YAML 1.2 float) is a number, not text."""
    f = write(tmp_path, "becomingone:\n  kairos: {dt: 1e-3, threshold: 1, omega: 2}\n")
    cfg = load_config(f, environ={})
    assert cfg.kairos.dt == 0.001 and cfg.kairos.threshold == 1.0 and cfg.kairos.omega == 2.0
    assert isinstance(cfg.kairos.threshold, float)


def test_environment_values_follow_yaml_scalar_rules(tmp_path: Path) -> None:
    """Env values are strings parsed as YAML scalars before strict validation."""
    env = {
        "BECOMINGONE__KAIROS__THRESHOLD": "0.9",
        "BECOMINGONE__KAIROS__DT": "2e-3",
        "BECOMINGONE__KAIROS__CHANNELS": "3",
        "BECOMINGONE__SECURITY__STRICT_KEY_PERMISSIONS": "false",
        "BECOMINGONE__MEMORY__PATH": str(tmp_path / "data"),
        "BECOMINGONE__NAME": "cell-7",
    }
    cfg = load_config(None, environ=env)
    assert cfg.kairos.threshold == 0.9 and cfg.kairos.dt == 0.002 and cfg.kairos.channels == 3
    assert cfg.security.strict_key_permissions is False and cfg.memory.path == tmp_path / "data"
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={"BECOMINGONE__KAIROS__THRESHOLD": "true"})
    assert err.value.path == "becomingone.kairos.threshold"
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={"BECOMINGONE__KAIROS__OMEGA": "[1, 2"})
    assert "\n" not in str(err.value) and err.value.path == "BECOMINGONE__KAIROS__OMEGA"


def test_config_check_imports_every_hook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`config check` imports each hook: one line per bad hook with its key path, exit 2."""
    f = write(
        tmp_path,
        "becomingone:\n  hooks:\n"
        "    collapse: ['tests.runtime.hookfns:record', 'no_such_module_x:f']\n"
        "    before_witness: ['tests.runtime.hookfns:SEEN', 'tests.runtime.hookfns:nope']\n",
    )
    status, out = check_lines(f, capsys)
    assert status == 2 and len(out) == 3, out
    assert re.fullmatch(
        rf"{re.escape(str(f))}: becomingone\.hooks\.collapse\[1\]: cannot import "
        r"'no_such_module_x'.*",
        out[0],
    ), out
    assert out[1].startswith(f"{f}: becomingone.hooks.before_witness[0]: ") and "callable" in out[1]
    assert out[2].startswith(f"{f}: becomingone.hooks.before_witness[1]: ") and "nope" in out[2]
    assert main(["config", "check", "--json", str(f)]) == 2
    paths = [i["path"] for i in json.loads(capsys.readouterr().out)]
    assert paths == [
        "becomingone.hooks.collapse[1]",
        "becomingone.hooks.before_witness[0]",
        "becomingone.hooks.before_witness[1]",
    ]
    good = write(tmp_path, "becomingone:\n  hooks: {collapse: ['tests.runtime.hookfns:record']}\n")
    assert check_lines(good, capsys) == (0, [f"{good}: ok"])
