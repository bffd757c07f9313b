"""The sans-IO cell core: the effects it yields for a batch, and how it takes the answers.

No data dir, no SQLite, no event loop: a plain loop answers the core's effects, which is the
point — the same decisions run under any driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from becomingone.cell import (
    CellCore,
    Commit,
    CoreSettings,
    FireHook,
    HookOutcome,
    Ingest,
    IngestOutcome,
    VerifyRecent,
)
from becomingone.errors import InputError, StorageError
from becomingone.keys import NodeKey
from becomingone.runtime.sources import synthetic_phase
from becomingone.sync.layer import DissipationReason, SyncLayer
from becomingone.transducers import EmissaryTransducer, MasterTransducer
from becomingone.witnessing import GENESIS_HASH, VerifyReport, WitnessChain, verify
from tests.helpers import small_config

Answer = Callable[[Any], Any]


KEY = NodeKey.generate()


def make_core(listening: tuple[str, ...] = (), meta_interval: float = 1000.0) -> CellCore:
    """A core with the small test config, the test key and an empty chain."""
    cfg = small_config()
    return CellCore(
        master=MasterTransducer.from_config(cfg),
        emissary=EmissaryTransducer.from_config(cfg),
        sync=SyncLayer(threshold=cfg.kairos.threshold, phase_threshold=cfg.sync.phase_threshold),
        chain=WitnessChain(KEY),
        settings=CoreSettings(
            meta_interval=meta_interval, meta_window=50, signature_interval=1e9, max_log=10**9
        ),
        listening=listening,
    )


def run(steps: Ingest, answer: Answer | None = None) -> tuple[list[Any], IngestOutcome]:
    """Drive the generator: ``answer(effect)`` for each effect (None for commits)."""
    effects: list[Any] = []
    reply: Any = None
    while True:
        try:
            effect = steps.send(reply)
        except StopIteration as done:
            return effects, done.value
        effects.append(effect)
        reply = answer(effect) if answer is not None else None


def feed_until_collapse(core: CellCore, answer: Answer | None = None) -> list[Any]:
    """Feed synthetic batches until one collapses; the effects of that batch."""
    for i in range(0, 3000, 50):
        effects, outcome = run(core.ingest(synthetic_phase(i, 50, dt=0.01), now=i * 0.01), answer)
        if outcome.decision is not None and outcome.decision.collapsed:
            return effects
        if any(isinstance(e, FireHook) and e.event == "collapse" for e in effects):
            return effects
    raise AssertionError("the synthetic rhythm never collapsed")


def test_no_hooks_one_commit_per_batch_with_the_chain_head() -> None:
    """Without listeners a batch yields exactly one Commit; its head covers its records and
    the records verify as a chain from genesis."""
    core = make_core()
    stored: list[Any] = []
    for i in range(0, 500, 50):
        effects, outcome = run(core.ingest(synthetic_phase(i, 50, dt=0.01), now=float(i)))
        assert [type(e) for e in effects] == [Commit]
        commit = effects[0]
        assert commit.head.count == core.chain.count
        assert commit.samples is not None and len(commit.samples) == 50
        assert outcome.decision is not None
        stored.extend(commit.records)
    report = verify(iter(stored), KEY.public_bytes, prev_hash=GENESIS_HASH)
    assert report.ok and report.checked == len(stored)
    assert core.counts["collapses"] + core.counts["dissipations"] == 10


def test_before_collapse_veto_turns_the_collapse_into_a_dissipation() -> None:
    """A FireHook for `collapse` is yielded only to a listener; answering with a veto makes the
    batch dissipate (reason vetoed), counts the veto and witnesses no macro record."""
    core = make_core(listening=("before_collapse",))

    def veto(effect: Any) -> Any:
        return HookOutcome(vetoed=True) if isinstance(effect, FireHook) else None

    effects = feed_until_collapse(core, veto)
    fires = [e for e in effects if isinstance(e, FireHook)]
    assert [f.event for f in fires] == ["collapse"]
    assert set(fires[0].payload) >= {"phi_extracted", "frequency_hz", "coherence"}
    commit = effects[-1]
    assert isinstance(commit, Commit)
    assert "collapse" not in [r.kind for r in commit.records]
    assert core.counts["vetoed"] == 1 and core.counts["collapses"] == 0
    micro = next(r for r in commit.records if r.kind == "ingest")
    assert DissipationReason.VETOED.value in micro.payload


def test_hook_failures_become_witness_records() -> None:
    """Failures the driver reports for a hook are witnessed as `hook.failed` in the same
    commit and counted."""
    core = make_core(listening=("signal.received",))
    failure = {"event": "signal.received", "hook": "h", "error": "boom", "disabled": False}

    def fail(effect: Any) -> Any:
        return HookOutcome(failures=(failure,)) if isinstance(effect, FireHook) else None

    effects, _ = run(core.ingest(synthetic_phase(0, 50, dt=0.01), now=0.0), fail)
    commit = effects[-1]
    assert "hook.failed" in [r.kind for r in commit.records]
    assert core.counts["hook_failures"] == 1


def test_storage_error_rolls_the_chain_back() -> None:
    """When the driver throws the storage error into the core, the chain forgets the pending
    records and the error propagates; the next batch continues from the committed head."""
    core = make_core()
    run(core.ingest(synthetic_phase(0, 50, dt=0.01), now=0.0))
    before = (core.chain.count, core.chain.last_hash)
    steps = core.ingest(synthetic_phase(50, 50, dt=0.01), now=1.0)
    effect = next(steps)
    assert isinstance(effect, Commit) and core.chain.count > before[0]
    with pytest.raises(StorageError):
        steps.throw(StorageError("disk full"))
    assert (core.chain.count, core.chain.last_hash) == before


def test_meta_self_check_asks_the_driver_to_verify() -> None:
    """After meta_interval wall seconds the core yields VerifyRecent and witnesses the report
    it gets back at meta level."""
    core = make_core(meta_interval=1.0)
    run(core.ingest(synthetic_phase(0, 10, dt=0.01), now=0.0))
    report = VerifyReport(ok=True, checked=7)

    def answer(effect: Any) -> Any:
        return report if isinstance(effect, VerifyRecent) else None

    effects, _ = run(core.ingest(synthetic_phase(10, 10, dt=0.01), now=2.0), answer)
    assert isinstance(effects[0], VerifyRecent) and effects[0].window == 50
    meta = [r for r in effects[-1].records if r.kind == "verify"]
    assert len(meta) == 1 and '"checked":7' in meta[0].payload
    assert core.chain_ok is True


def test_unreadable_batch_raises_before_any_effect() -> None:
    """A batch that cannot be read as numbers is an InputError from ingest() itself."""
    core = make_core()
    with pytest.raises(InputError, match="samples"):
        core.ingest(["a", "b"], now=0.0)
    with pytest.raises(InputError, match="shape"):
        core.ingest(np.ones((4, 3)), now=0.0)
    assert core.chain.count == 0
