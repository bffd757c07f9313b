"""The glyph handler registry: kinds from code, config targets and real entry points."""

from __future__ import annotations

from pathlib import Path

import pytest

from becomingone.cluster import (
    Glyph,
    GlyphScheduler,
    HandlerContext,
    HandlerRegistry,
    HandlerResult,
    as_result,
)
from becomingone.errors import ConfigError, InputError
from tests.cluster import glyphfns


def test_register_get_and_unknown_kind_names_the_known() -> None:
    """A registered kind is found; an unknown one raises InputError("kind") listing kinds."""
    r = HandlerRegistry()
    r.register("double", glyphfns.double)
    assert r.get("double") is glyphfns.double and "double" in r and not r.is_async("double")
    with pytest.raises(InputError) as info:
        r.get("nope")
    assert info.value.parameter == "kind" and "known: double" in str(info.value)
    with pytest.raises(InputError):
        r.check(Glyph(id="g", kind="nope"))
    assert r.check(Glyph(id="g", kind="double")).kind == "double"


@pytest.mark.parametrize(("kind", "handler"), [("Bad", glyphfns.double), ("ok", 3)])
def test_register_rejects_bad_names_and_non_callables(kind: str, handler: object) -> None:
    """Kind names follow the glyph's kind syntax; handlers must be callable."""
    with pytest.raises(InputError):
        HandlerRegistry().register(kind, handler)  # type: ignore[arg-type]


def test_duplicate_kind_is_rejected_naming_the_first_source() -> None:
    """A kind cannot be registered twice; the error says who has it."""
    r = HandlerRegistry()
    r.register("slow", glyphfns.slow, source="built-in")
    assert r.is_async("slow")
    with pytest.raises(InputError, match="already registered by built-in"):
        r.register("slow", glyphfns.double)


def test_as_result_and_cost_validation() -> None:
    """(value, cost) pairs become HandlerResults; bad shapes and costs are InputErrors."""
    assert as_result(("v", 2)) == HandlerResult(value="v", cost=2.0)
    with pytest.raises(InputError) as info:
        as_result("v")
    assert info.value.parameter == "result"
    for cost in (-1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(InputError) as info:
            HandlerResult(value=None, cost=cost)  # type: ignore[arg-type]
        assert info.value.parameter == "cost"


def test_config_targets_load_and_fail_with_the_key() -> None:
    """module:function targets import; a bad one is a ConfigError at glyphs.kinds.<kind>."""
    r = HandlerRegistry()
    r.load_targets({"double": "tests.cluster.glyphfns:double"})
    ctx = HandlerContext(cell="c", cycle=0, lateness=0.0)
    assert r.get("double")(Glyph(id="g", kind="double", payload={"x": 2}), ctx, 0.0) == (4, 0.5)
    for target, why in [
        ("tests.cluster.missing_module:f", "cannot import"),
        ("tests.cluster.glyphfns:nothing", "has no attribute"),
        ("tests.cluster.glyphfns:NOT_CALLABLE", "not callable"),
        ("no-colon", "not 'module:function'"),
    ]:
        with pytest.raises(ConfigError, match=why) as info:
            HandlerRegistry().load_targets({"k": target})
        assert info.value.path == "becomingone.glyphs.kinds.k"


def write_dist(root: Path, name: str, entries: str) -> None:
    """An installed distribution (a .dist-info directory) with entry points, under root."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[becomingone.glyphs]\n{entries}\n")


def test_entry_points_are_discovered_from_installed_distributions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distribution on sys.path declaring becomingone.glyphs entry points adds its kinds."""
    write_dist(tmp_path, "glyph_plugin", "twice = tests.cluster.glyphfns:double")
    monkeypatch.syspath_prepend(str(tmp_path))
    r = HandlerRegistry()
    assert r.load_entry_points() == ["twice"]
    assert r.get("twice") is glyphfns.double
    assert r.source("twice") == "entry point twice = tests.cluster.glyphfns:double"


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ("gone = tests.cluster.no_such_module:f", "cannot load"),
        ("probe = tests.cluster.glyphfns:double", "already registered"),
    ],
)
def test_broken_or_clashing_entry_points_fail_naming_the_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entries: str, why: str
) -> None:
    """An entry point that cannot load, or takes a built-in's kind, is a ConfigError."""
    write_dist(tmp_path, "bad_plugin", entries)
    monkeypatch.syspath_prepend(str(tmp_path))
    r = HandlerRegistry()
    r.register("probe", glyphfns.double, source="built-in")
    with pytest.raises(ConfigError, match=why) as info:
        r.load_entry_points()
    assert info.value.path.startswith("entry point ")


def test_scheduler_accepts_only_registered_kinds() -> None:
    """A scheduler built with the registry's kinds rejects a glyph of an unknown kind."""
    r = HandlerRegistry()
    r.register("double", glyphfns.double)
    s = GlyphScheduler(kinds=r.kinds)
    s.add(Glyph(id="a", kind="double"))
    with pytest.raises(InputError, match="unknown kind 'other'"):
        s.add(Glyph(id="b", kind="other"))
