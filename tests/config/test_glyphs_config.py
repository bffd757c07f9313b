"""The ``glyphs:`` config section: defaults, strict types, bad targets and argvs named."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from becomingone.cli import main
from becomingone.config import BecomingOneConfig, GlyphsConfig


def test_defaults_allow_no_commands() -> None:
    """With no file: built-in kinds only, entry points on, an empty command allowlist."""
    cfg = BecomingOneConfig().becomingone.glyphs
    assert cfg == GlyphsConfig()
    assert cfg.command.allowlist == [] and cfg.entry_points and cfg.timeout == 2.0


@pytest.mark.parametrize(
    ("glyphs", "where"),
    [
        ({"kinds": {"Bad": "m:f"}}, "glyphs.kinds"),
        ({"kinds": {"ok": "no-colon"}}, "glyphs.kinds"),
        ({"callables": {"f": "m:"}}, "glyphs.callables"),
        ({"command": {"allowlist": [[]]}}, "glyphs.command.allowlist"),
        ({"command": {"allowlist": [["ls", ""]]}}, "glyphs.command.allowlist"),
        ({"command": {"timeout": 0}}, "glyphs.command.timeout"),
        ({"timeout": "2"}, "glyphs.timeout"),
        ({"failure_cost": -1.0}, "glyphs.failure_cost"),
        ({"takeover": 0}, "glyphs.takeover"),
        ({"takeover": float("inf")}, "glyphs.takeover"),
        ({"entry_points": "yes"}, "glyphs.entry_points"),
        ({"unknown": 1}, "glyphs.unknown"),
    ],
)
def test_bad_values_are_named(glyphs: dict[str, object], where: str) -> None:
    """Each bad glyphs: value fails validation at its dotted key."""
    with pytest.raises(ValidationError) as info:
        BecomingOneConfig.model_validate({"becomingone": {"glyphs": glyphs}})
    assert where in str(info.value)


def test_config_check_imports_glyph_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`becomingone config check` imports glyphs.kinds and glyphs.callables like a cell:
    exit 0 when they import, 2 with the key of each one that does not (or takes a built-in)."""
    good = tmp_path / "good.yaml"
    good.write_text(
        "becomingone:\n  glyphs:\n    kinds: {twice: 'tests.cluster.glyphfns:double'}\n"
        "    callables: {add: 'tests.cluster.glyphfns:add'}\n"
    )
    assert main(["config", "check", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "becomingone:\n  glyphs:\n    kinds: {probe: 'tests.cluster.glyphfns:double',"
        " gone: 'tests.nowhere:f'}\n    callables: {add: 'tests.cluster.glyphfns:nope'}\n"
    )
    assert main(["config", "check", str(bad)]) == 2
    out = capsys.readouterr().out
    assert "becomingone.glyphs.kinds.probe: 'probe' is a built-in kind" in out
    assert "becomingone.glyphs.kinds.gone: cannot import" in out
    assert "becomingone.glyphs.callables.add:" in out
