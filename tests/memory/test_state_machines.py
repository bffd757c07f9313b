"""Stateful tests: CasRecord and AppendLog against a plain dict / list model, for every adapter.

Hypothesis drives random sequences of creates, updates, deletes (with right, stale and random
revisions) and appends (with and without expected-last, right or wrong) and reads; after each
step the adapter must agree with the model. One machine class per protocol, instantiated once
per adapter of the conformance tables.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from becomingone.errors import CasConflict
from tests.memory.conformance import APPEND_LOGS, CAS_RECORDS, Factory

KEYS = st.sampled_from(["a", "b", "glyph.7"])
VALUES = st.binary(max_size=6)
SETTINGS = settings(max_examples=25, stateful_step_count=25, deadline=None)


class _Machine(RuleBasedStateMachine):
    """Owns a temporary directory for file-backed adapters; closes the store at the end."""

    factory: ClassVar[Factory]
    store: Any

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="bo-sm-"))

    def teardown(self) -> None:
        if hasattr(self.store, "close"):
            self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class CasMachine(_Machine):
    """A CasRecord against ``{key: (value, revision)}`` and the largest revision handed out."""

    def __init__(self) -> None:
        super().__init__()
        self.store = self.factory(self.dir)
        self.model: dict[str, tuple[bytes, int]] = {}
        self.top = 0

    def _won(self, key: str, value: bytes, revision: int) -> None:
        assert revision > self.top, "revisions must grow across keys and deletes"
        self.top = revision
        self.model[key] = (value, revision)

    @rule(key=KEYS, value=VALUES)
    def create(self, key: str, value: bytes) -> None:
        if key in self.model:
            with pytest.raises(CasConflict):
                self.store.create(key, value)
        else:
            self._won(key, value, self.store.create(key, value))

    @rule(key=KEYS, value=VALUES, guess=st.integers(1, 40), right=st.booleans())
    def update(self, key: str, value: bytes, guess: int, right: bool) -> None:
        expected = self.model[key][1] if right and key in self.model else guess
        if key in self.model and self.model[key][1] == expected:
            self._won(key, value, self.store.update(key, value, expected))
        else:
            with pytest.raises(CasConflict):
                self.store.update(key, value, expected)

    @rule(key=KEYS, guess=st.integers(1, 40), right=st.booleans())
    def delete(self, key: str, guess: int, right: bool) -> None:
        expected = self.model[key][1] if right and key in self.model else guess
        if key in self.model and self.model[key][1] == expected:
            self.store.delete(key, expected)
            del self.model[key]
        else:
            with pytest.raises(CasConflict):
                self.store.delete(key, expected)

    @invariant()
    def agrees(self) -> None:
        for key in ("a", "b", "glyph.7"):
            assert self.store.get(key) == self.model.get(key)


class LogMachine(_Machine):
    """An AppendLog against a list of entries (index i + 1 is list position i)."""

    def __init__(self) -> None:
        super().__init__()
        self.store = self.factory(self.dir)
        self.model: list[bytes] = []

    @rule(entry=VALUES)
    def append(self, entry: bytes) -> None:
        self.model.append(entry)
        assert self.store.append(entry) == len(self.model)

    @rule(entry=VALUES, guess=st.integers(0, 30), right=st.booleans())
    def append_expecting(self, entry: bytes, guess: int, right: bool) -> None:
        expected = len(self.model) if right else guess
        if expected == len(self.model):
            self.model.append(entry)
            assert self.store.append(entry, expected_last=expected) == len(self.model)
        else:
            with pytest.raises(CasConflict):
                self.store.append(entry, expected_last=expected)

    @rule(start=st.integers(1, 12), limit=st.none() | st.integers(0, 6))
    def read(self, start: int, limit: int | None) -> None:
        end = None if limit is None else start - 1 + limit
        assert self.store.read(start, limit) == self.model[start - 1 : end]

    @invariant()
    def agrees(self) -> None:
        assert self.store.last_index() == len(self.model)


def for_adapter(machine: type[_Machine], table: dict[str, Factory], name: str) -> Any:
    """The TestCase of ``machine`` bound to adapter ``name`` of ``table``."""
    bound = type(f"{machine.__name__}_{name}", (machine,), {"factory": staticmethod(table[name])})
    case = bound.TestCase
    case.settings = SETTINGS
    return case


TestCasMemory = for_adapter(CasMachine, CAS_RECORDS, "memory")
TestCasSqlite = for_adapter(CasMachine, CAS_RECORDS, "sqlite")
TestLogMemory = for_adapter(LogMachine, APPEND_LOGS, "memory")
TestLogSqlite = for_adapter(LogMachine, APPEND_LOGS, "sqlite")
TestCasJetstream = for_adapter(CasMachine, CAS_RECORDS, "jetstream")
TestLogJetstream = for_adapter(LogMachine, APPEND_LOGS, "jetstream")


def test_every_adapter_has_a_machine() -> None:
    """A new adapter in the conformance tables needs its state-machine TestCase here too."""
    names = {n.removeprefix("TestCas").lower() for n in globals() if n.startswith("TestCas")}
    assert names == set(CAS_RECORDS)
    names = {n.removeprefix("TestLog").lower() for n in globals() if n.startswith("TestLog")}
    assert names == set(APPEND_LOGS)
