"""Tests of hooks: event names, sync and async handlers, vetoes, isolation of failures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from becomingone.errors import ConfigError, InputError
from becomingone.runtime import Cell, HookCall, HookRegistry, Veto
from becomingone.runtime.sources import synthetic_phase
from tests.helpers import small_config
from tests.runtime import hookfns


async def test_sync_and_async_handlers_run_in_order() -> None:
    """Sync and async handlers of an event run in registration order with the payload."""
    reg = HookRegistry()
    seen: list[str] = []

    async def later(e: HookCall) -> None:
        await asyncio.sleep(0)
        seen.append(f"async {e.payload['x']}")

    reg.on("collapse", lambda e: seen.append(f"sync {e.payload['x']}"))
    reg.on("collapse", later)
    result = await reg.fire("collapse", 1.0, {"x": 7})
    assert seen == ["sync 7", "async 7"] and result.veto is None and result.failures == ()


async def test_before_hook_vetoes() -> None:
    """A before_* handler returning False or Veto stops the event's handlers."""
    reg = HookRegistry()
    ran: list[str] = []
    reg.on("before_realign", lambda e: False)
    reg.on("realign", lambda e: ran.append("x"))
    result = await reg.fire("realign", 0.0, {})
    assert result.veto is not None and ran == []
    reg2 = HookRegistry()
    reg2.on("before_collapse", lambda e: Veto(reason="not now"))
    assert (await reg2.fire("collapse", 0.0, {})).veto == Veto(reason="not now")


async def test_failures_are_isolated_and_disable_the_handler() -> None:
    """A raising or hanging handler is reported, others still run, and it is disabled after 3."""
    reg = HookRegistry(timeout=0.05, max_failures=3)
    ran: list[int] = []

    async def hang(e: HookCall) -> None:
        await asyncio.sleep(10)

    reg.on("witness", hookfns.explode, name="explode")
    reg.on("witness", hang, name="hang")
    reg.on("witness", lambda e: ran.append(1))
    for i in range(4):
        result = await reg.fire("witness", float(i), {})
        if i < 3:
            assert [f.hook for f in result.failures] == ["explode", "hang"]
            assert "timed out" in result.failures[1].error
            assert result.failures[0].disabled is (i == 2)
    assert ran == [1, 1, 1, 1]
    assert result.failures == ()  # both disabled after three failures


async def test_failing_before_hook_does_not_veto() -> None:
    """A before_* handler that raises does not veto (fail-open) and is reported."""
    reg = HookRegistry()
    reg.on("before_collapse", hookfns.explode)
    result = await reg.fire("collapse", 0.0, {})
    assert result.veto is None and len(result.failures) == 1


def test_unknown_events_and_bad_targets() -> None:
    """Unknown event names and unimportable module:function targets are refused, named."""
    with pytest.raises(InputError):
        HookRegistry().on("collapsed", print)
    with pytest.raises(ConfigError) as err:
        HookRegistry.from_config({"collapse": ["tests.runtime.hookfns:nope"]})
    assert err.value.path == "becomingone.hooks.collapse[0]"
    with pytest.raises(ConfigError):
        HookRegistry.from_config({"collapse": ["no_such_module_x:f"]})


async def test_cell_hooks_from_config(tmp_path: Path) -> None:
    """Config-named hooks see collapses (with the action), dissipations, realigns, witnesses;
    a failing hook is witnessed and the cell goes on; a vetoed collapse is a dissipation."""
    hookfns.SEEN.clear()
    hooks = {
        "collapse": ["tests.runtime.hookfns:record"],
        "realign": ["tests.runtime.hookfns:record"],
        "witness": ["tests.runtime.hookfns:record"],
        "dissipate": ["tests.runtime.hookfns:explode"],
    }
    cell = Cell(small_config(hooks=hooks), tmp_path)
    for i in range(0, 1200, 50):
        status = await cell.ingest(synthetic_phase(i, 50, dt=0.01), now=time.time())
    names = {n for n, _ in hookfns.SEEN}
    assert {"collapse", "realign", "witness"} <= names
    action = next(p for n, p in hookfns.SEEN if n == "collapse")
    assert set(action) == {"time", "phi_extracted", "frequency_hz", "coherence"}
    assert action["frequency_hz"] == pytest.approx(1.0)
    assert status.hook_failures == 3  # explode disabled after three
    kinds = [r.kind for r in cell.memory.witnesses()]
    assert kinds.count("hook.failed") == 3
    assert cell.verify_chain().ok
    cell.close()
    vetoing = Cell(
        small_config(hooks={"before_collapse": ["tests.runtime.hookfns:veto_everything"]}),
        tmp_path / "v",
    )
    for i in range(0, 400, 50):
        status = await vetoing.ingest(synthetic_phase(i, 50, dt=0.01), now=0.0)
    assert status.collapses == 0 and status.vetoed > 0
    assert status.dissipations == 8
    vetoing.close()


async def test_before_signal_veto_drops_the_batch(tmp_path: Path) -> None:
    """Vetoing signal.received keeps the batch out of the engines, witnessed as vetoed."""
    reg = HookRegistry()
    reg.on("before_signal.received", lambda e: e.payload["n"] != 7)
    cell = Cell(small_config(), tmp_path, hooks=reg)
    await cell.ingest(synthetic_phase(0, 7, dt=0.01), now=0.0)
    assert cell.samples == 0 and cell.counts["vetoed"] == 1
    await cell.ingest(synthetic_phase(0, 8, dt=0.01), now=0.0)
    assert cell.samples == 8
    assert [r.kind for r in cell.memory.witnesses()][:1] == ["signal.vetoed"]
    cell.close()


async def test_hook_event_enum_is_the_one_list() -> None:
    """Config validation and the registry accept exactly the HookEvent names (and before_*)."""
    from becomingone.config import CellConfig
    from becomingone.events import HookEvent

    names = [e.value for e in HookEvent]
    assert names == [
        "cluster.collapse",
        "collapse",
        "dissipate",
        "glyph.fired",
        "glyph.migrate",
        "glyph.migrated",
        "proposal.decided",
        "proposal.opened",
        "realign",
        "role.changed",
        "role.transfer",
        "signal.received",
        "witness",
    ]
    target = "tests.runtime.hookfns:record"
    hooks = {n: [target] for n in names} | {f"before_{n}": [target] for n in names}
    assert CellConfig(hooks=hooks).hooks == hooks
    with pytest.raises(ValueError, match="known: " + ", ".join(names)):
        CellConfig(hooks={"glyph.moved": [target]})
    reg = HookRegistry()
    seen: list[str] = []
    reg.on(HookEvent.SIGNAL_RECEIVED, lambda e: seen.append(e.name))
    reg.on("before_signal.received", lambda e: seen.append(e.name))
    await reg.fire(HookEvent.SIGNAL_RECEIVED, 0.0, {})
    await reg.fire("signal.received", 0.0, {})
    assert seen == ["before_signal.received", "signal.received"] * 2
    with pytest.raises(InputError, match="known: " + ", ".join(names)):
        await reg.fire("collapsed", 0.0, {})
