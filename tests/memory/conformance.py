"""Storage conformance: the adapters of every storage protocol, as pytest fixtures.

Each fixture below is parametrised over every adapter of its protocol (``memory``, ``sqlite``,
and ``jetstream`` for the compare-and-set record, the append log and protocol state, against
the test process's shared ``nats-server`` from ``tests/natshelpers.py``), so every test in
``tests/memory/test_conformance.py`` and ``test_state_machines.py`` runs against all of them.
A factory takes the test's ``tmp_path`` (a file-backed adapter puts its database there) and
the keyword arguments of the test (``retention``); a JetStream adapter gets a bucket or stream
of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from becomingone import memory as m
from becomingone.keys import NodeKey
from becomingone.transport import JetStreamAppendLog, JetStreamCasRecord, JetStreamProtocolState
from becomingone.witnessing import Level, WitnessChain, WitnessRecord
from tests.natshelpers import shared_server, unique_name

Factory = Callable[..., Any]

DB = "store.sqlite3"

WITNESS_LOGS: dict[str, Factory] = {
    "memory": lambda tmp: m.MemoryWitnessLog(),
    "sqlite": lambda tmp: m.SqliteWitnessLog(tmp / DB),
}
SIGNATURE_STORES: dict[str, Factory] = {
    "memory": lambda tmp, **kw: m.MemorySignatureStore(**kw),
    "sqlite": lambda tmp, **kw: m.SqliteSignatureStore(tmp / DB, **kw),
}
COHERENCE_HISTORIES: dict[str, Factory] = {
    "memory": lambda tmp, **kw: m.MemoryCoherenceHistory(**kw),
    "sqlite": lambda tmp, **kw: m.SqliteCoherenceHistory(tmp / DB, **kw),
}
PROTOCOL_STATES: dict[str, Factory] = {
    "memory": lambda tmp: m.MemoryProtocolState(),
    "sqlite": lambda tmp: m.SqliteProtocolState(tmp / DB),
    "jetstream": lambda tmp: JetStreamProtocolState(shared_server().url, unique_name("state")),
}
CAS_RECORDS: dict[str, Factory] = {
    "memory": lambda tmp, **kw: m.MemoryCasRecord(),
    "sqlite": lambda tmp, **kw: m.SqliteCasRecord(tmp / DB, **kw),
    "jetstream": lambda tmp, **kw: JetStreamCasRecord(
        shared_server().url, **{"bucket": unique_name("kv"), **kw}
    ),
}
APPEND_LOGS: dict[str, Factory] = {
    "memory": lambda tmp, **kw: m.MemoryAppendLog(**kw),
    "sqlite": lambda tmp, **kw: m.SqliteAppendLog(tmp / DB, **kw),
    "jetstream": lambda tmp, **kw: JetStreamAppendLog(
        shared_server().url, **kw, stream=unique_name("log")
    ),
}

KEY = NodeKey.from_seed(bytes(range(32)))


def maker(table: dict[str, Factory]) -> Callable[..., Any]:
    """A fixture parametrised over ``table``: the factory bound to the test's ``tmp_path``."""

    @pytest.fixture(params=sorted(table))
    def fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
        made: list[Any] = []

        def make(**kw: Any) -> Any:
            made.append(table[request.param](tmp_path, **kw))
            return made[-1]

        yield make
        for store in made:
            if hasattr(store, "close"):
                store.close()

    return fixture


make_witness_log = maker(WITNESS_LOGS)
make_signature_store = maker(SIGNATURE_STORES)
make_coherence_history = maker(COHERENCE_HISTORIES)
make_protocol_state = maker(PROTOCOL_STATES)
make_cas_record = maker(CAS_RECORDS)
make_append_log = maker(APPEND_LOGS)


def chain_batches(sizes: list[int]) -> list[tuple[list[WitnessRecord], Any]]:
    """Signed batches of witness records (one chain) with the head after each batch."""
    chain = WitnessChain(KEY)
    out = []
    for b, size in enumerate(sizes):
        records = [
            chain.append(Level.MICRO, "k", {"b": b, "i": i}, now=b + i / 10) for i in range(size)
        ]
        out.append((records, chain.head()))
        chain.commit()
    return out
