"""The ``glyphs:`` config section: defaults, strict types, bad targets and argvs named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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
        ({"entry_points": "yes"}, "glyphs.entry_points"),
        ({"unknown": 1}, "glyphs.unknown"),
    ],
)
def test_bad_values_are_named(glyphs: dict[str, object], where: str) -> None:
    """Each bad glyphs: value fails validation at its dotted key."""
    with pytest.raises(ValidationError) as info:
        BecomingOneConfig.model_validate({"becomingone": {"glyphs": glyphs}})
    assert where in str(info.value)
