"""The content store and its reconciliation with the ledger: one conformance suite, run against
both on-disk adapters — qdrant-client's local mode (:class:`QdrantStore`) and qdrant-edge
(:class:`EdgeStore`) — and, where a test takes ``store``, against :class:`QdrantStore` by URL
(remote mode) served by the Qdrant REST double of ``qdrant_double.py`` (not a Qdrant server).

Checks the adapter round trip (payload, vectors, status, search filters), writers and readers
in threads at once, reopening after close, that a second real process on the same directory
gets one clear error, and that drift between the ledger and the store (missing, extra, changed
content, status, co-authors) is found and repaired from the outbox. Embeddings here are the
lexical ones (fast, deterministic); the CLI tests use the model.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from becomingone.choir import (
    PUBLISHED,
    ContentStore,
    DriftKind,
    EdgeStore,
    Expected,
    Outbox,
    QdrantStore,
    SqliteLedger,
    StoredMessage,
    StoredThread,
    TxKind,
    content_hash,
    copy_store,
    drift,
    expected,
    reconcile,
    repair,
)
from becomingone.errors import InputError, StorageError
from becomingone.ingest.text import EMBEDDING_DIM, lexical_embedding
from becomingone.keys import NodeKey
from tests.choir.helpers import Community

REPO = Path(__file__).resolve().parents[2]


def message(
    mid: str, *, thread: str = "t1", status: str = PUBLISHED, text: str = "x"
) -> StoredMessage:
    """A stored message with the hash of its text."""
    return StoredMessage(
        thread_id=thread,
        message_id=mid,
        author="a",
        content_hash=content_hash(text),
        status=status,
        created_at=1.0,
        text=text,
    )


#: The on-disk adapters of the protocol, by engine name (as ``choir.store_engine`` names them).
ADAPTERS: dict[str, type[QdrantStore] | type[EdgeStore]] = {
    "local": QdrantStore,
    "edge": EdgeStore,
}


def open_store(engine: str, path: Path, dim: int = EMBEDDING_DIM) -> ContentStore:
    """The ``engine`` adapter on ``path``."""
    return ADAPTERS[engine](path=path, dim=dim)


@pytest.fixture(params=sorted(ADAPTERS))
def engine(request: pytest.FixtureRequest) -> str:
    """Each adapter in turn."""
    return str(request.param)


@pytest.fixture(params=[*sorted(ADAPTERS), "url"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContentStore]:
    """A store of each adapter in a temporary directory, and ``url``: :class:`QdrantStore`'s
    remote mode against the Qdrant REST double (``qdrant_double.py``); closed afterwards."""
    if request.param == "url":
        s: ContentStore = QdrantStore(url=request.getfixturevalue("qdrant_url"), dim=EMBEDDING_DIM)
    else:
        s = open_store(request.param, tmp_path / "store")
    try:
        yield s
    finally:
        s.close()


def test_round_trip_status_search_and_delete(store: ContentStore) -> None:
    """Messages come back with their payload; search filters by status and thread; status and
    delete change what is found."""
    texts = ["the tide rises at night", "bread and butter", "the moon pulls the tide"]
    items = [message(f"m{i}", text=t, thread="t1" if i < 2 else "t2") for i, t in enumerate(texts)]
    vectors = lexical_embedding(texts)
    store.put_messages(list(zip(items, vectors, strict=True)))
    assert [m.message_id for m in store.messages()] == ["m0", "m1", "m2"]
    assert [m.message_id for m in store.messages(thread="t2")] == ["m2"]
    hits = store.search(lexical_embedding(["tide"])[0], k=2, statuses=[PUBLISHED])
    assert {h.message.message_id for h in hits} == {"m0", "m2"}
    only_t1 = store.search(lexical_embedding(["tide"])[0], k=5, statuses=[PUBLISHED], thread="t1")
    assert {h.message.message_id for h in only_t1} == {"m0", "m1"}
    store.set_status("m0", "pending")
    hits = store.search(lexical_embedding(["tide"])[0], k=5, statuses=[PUBLISHED])
    assert "m0" not in {h.message.message_id for h in hits}
    store.delete_messages(["m2"])
    assert [m.message_id for m in store.messages()] == ["m0", "m1"]
    np.testing.assert_allclose(store.vectors(["m1"])[0], vectors[1], atol=1e-6)
    store.put_thread(StoredThread(thread_id="t1", coauthors=("b", "a")))
    assert store.threads() == [StoredThread(thread_id="t1", coauthors=("a", "b"))]


def test_threads_writing_and_reading_at_once_lose_nothing(store: ContentStore) -> None:
    """The API serves the store from a thread pool: 3 writers and 3 readers at once keep
    every message and status change and raise nothing (unserialized, local mode lost about a
    third of the points and raised IndexError; edge needs no Python-side lock)."""
    errors: list[str] = []
    rng = np.random.default_rng(0)
    vectors = rng.random((3 * 60, EMBEDDING_DIM))

    def write(w: int) -> None:
        try:
            for i in range(60):
                m = message(f"m{w}-{i}", thread=f"t{i % 3}")
                store.put_messages([(m, vectors[w * 60 + i])])
                if i % 5 == 0:
                    store.set_status(m.message_id, "pending")
        except Exception as exc:
            errors.append(repr(exc))

    def read() -> None:
        try:
            for _ in range(60):
                store.messages(thread="t1")
                store.search(vectors[0], k=3, statuses=[PUBLISHED])
        except Exception as exc:
            errors.append(repr(exc))

    workers = [threading.Thread(target=write, args=(w,)) for w in range(3)]
    workers += [threading.Thread(target=read) for _ in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in workers)
    assert errors == []
    stored = store.messages()
    assert len(stored) == 180
    assert sum(m.status == "pending" for m in stored) == 3 * 12  # every set_status kept


def test_times_come_back_exactly(store: ContentStore) -> None:
    """A created_at of 17 significant digits (a time.time()) is given back bit for bit, so the
    ledger and the store agree (qdrant-edge rounds payload floats to 16 digits)."""
    when = [1796241789.8651633, 123456789.12345679, 0.1, 1.0]
    items = [
        (replace(message(f"m{i}"), created_at=t), np.ones(EMBEDDING_DIM))
        for i, t in enumerate(when)
    ]
    store.put_messages(items)
    assert [m.created_at for m in store.messages()] == sorted(when)
    assert sorted(m.created_at for m in store.get_messages(["m0", "m1"])) == sorted(when[:2])
    hits = store.search(np.ones(EMBEDDING_DIM), k=4, statuses=[PUBLISHED])
    assert sorted(h.message.created_at for h in hits) == sorted(when)


def test_bad_vectors_and_k_are_refused(store: ContentStore) -> None:
    """A vector of the wrong size or with NaN, or k < 1, is an InputError naming it."""
    with pytest.raises(InputError, match="vector"):
        store.put_messages([(message("m"), np.zeros(3))])
    with pytest.raises(InputError, match="vector"):
        store.put_messages([(message("m"), np.full(EMBEDDING_DIM, np.nan))])
    with pytest.raises(InputError, match=r"^k:"):
        store.search(np.ones(EMBEDDING_DIM), k=0, statuses=[PUBLISHED])


def test_a_second_process_on_the_same_directory_gets_one_clear_error(
    tmp_path: Path, engine: str
) -> None:
    """While this process holds the store, a real second process opening it gets a
    StorageError saying it is open in another process (one line, no traceback)."""
    path = tmp_path / "store"
    held = open_store(engine, path, dim=4)
    code = (
        "import sys; from pathlib import Path\n"
        "from becomingone.choir import EdgeStore, QdrantStore\n"
        "from becomingone.errors import StorageError\n"
        "try:\n"
        f"    {ADAPTERS[engine].__name__}(path=Path({str(path)!r}), dim=4)\n"
        "except StorageError as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
        )
    finally:
        held.close()
    assert done.returncode == 3, done.stderr
    assert "is open in another process" in done.stdout
    assert len(done.stdout.strip().splitlines()) == 1
    again = open_store(engine, path, dim=4)  # released: opens again
    again.close()


def test_a_store_of_another_vector_size_is_refused(tmp_path: Path, engine: str) -> None:
    """Reopening a store with another dimension is a StorageError, not silent mixing."""
    open_store(engine, tmp_path / "s", dim=4).close()
    with pytest.raises(StorageError, match="size 4, not 8"):
        open_store(engine, tmp_path / "s", dim=8)


def test_everything_is_there_after_close_and_reopen(tmp_path: Path, engine: str) -> None:
    """Messages (payload, status, vectors), deletions and thread views written before close
    are what a new instance on the same directory finds; searching it gives the same hits."""
    path = tmp_path / "store"
    items = [message(f"m{i}", thread=f"t{i % 3}", text=f"note {i}") for i in range(60)]
    vectors = np.random.default_rng(3).normal(size=(60, EMBEDDING_DIM))  # no ties in search
    first = open_store(engine, path)
    first.put_messages(list(zip(items, vectors, strict=True)))
    first.set_status("m4", "pending")
    first.delete_messages(["m5"])
    first.put_thread(StoredThread(thread_id="t1", coauthors=("b", "a")))
    query = vectors[7] + vectors[10]
    before = first.search(query, k=5, statuses=[PUBLISHED], thread="t1")
    assert {h.message.message_id for h in before[:2]} == {"m7", "m10"}
    kept = first.messages()
    first.close()
    again = open_store(engine, path)
    try:
        assert again.messages() == kept and len(kept) == 59
        assert {m.message_id: m.status for m in again.messages()}["m4"] == "pending"
        assert again.get_messages(["m5"]) == []
        unit = vectors[7] / np.linalg.norm(vectors[7])  # cosine: both engines normalise
        np.testing.assert_allclose(again.vectors(["m7"])[0], unit, atol=1e-6)
        assert again.threads() == [StoredThread(thread_id="t1", coauthors=("a", "b"))]
        after = again.search(query, k=5, statuses=[PUBLISHED], thread="t1")
        assert [h.message for h in after] == [h.message for h in before]
    finally:
        again.close()


def test_unknown_ids_are_left_out_or_named(store: ContentStore) -> None:
    """Unknown ids: get_messages and thread leave them out, deletes ignore them, and
    set_status and vectors raise an InputError naming them (the store unchanged)."""
    store.put_messages([(message("m1"), np.ones(EMBEDDING_DIM))])
    assert store.get_messages(["nope", "m1"]) == [message("m1")]
    assert store.thread("nope") is None
    store.delete_messages(["nope"])
    store.delete_threads(["nope"])
    with pytest.raises(InputError, match="not in the content store: nope"):
        store.set_status("nope", "approved")
    with pytest.raises(InputError, match="not in the content store: nope"):
        store.vectors(["m1", "nope"])
    assert store.messages() == [message("m1")]


def test_copy_store_moves_a_local_store_into_edge(tmp_path: Path) -> None:
    """copy_store carries every message, vector and thread view from local mode into edge
    (in batches), and both answer a search alike."""
    items = [message(f"m{i}", thread=f"t{i % 2}", text=f"line {i}") for i in range(27)]
    vectors = np.random.default_rng(5).normal(size=(27, EMBEDDING_DIM))  # no ties in search
    local = QdrantStore(path=tmp_path / "local", dim=EMBEDDING_DIM)
    edge = EdgeStore(path=tmp_path / "edge", dim=EMBEDDING_DIM)
    try:
        local.put_messages(list(zip(items, vectors, strict=True)))
        local.put_thread(StoredThread(thread_id="t0", coauthors=("a",)))
        assert copy_store(local, edge, batch=10) == 27
        assert edge.messages() == local.messages() and edge.threads() == local.threads()
        ids = [m.message_id for m in items]
        np.testing.assert_allclose(edge.vectors(ids), local.vectors(ids), atol=1e-6)
        query = vectors[3] - vectors[4]
        got = [h.message.message_id for h in edge.search(query, k=4, statuses=[PUBLISHED])]
        want = [h.message.message_id for h in local.search(query, k=4, statuses=[PUBLISHED])]
        assert got == want
    finally:
        local.close()
        edge.close()


def community(tmp_path: Path) -> tuple[Community, Outbox]:
    """ada's thread t1 with a post p1 (text in the outbox) and bob's pending spec s1."""
    ledger = SqliteLedger(tmp_path / "l.sqlite3", NodeKey.from_seed(b"\x01" * 32), now=0.0)
    c = Community(ledger)
    box = Outbox(tmp_path / "outbox")
    c.join("ada", "bob")
    c.thread("ada")
    box.put("p1", "first light")
    c.do(
        "ada",
        TxKind.POST,
        {"thread": "t1", "message": "p1", "content_hash": content_hash("first light")},
    )
    box.put("s1", "s1")  # Community.submit hashes the spec id as its text
    c.submit("bob", spec="s1")
    return c, box


def test_reconcile_fills_the_store_then_finds_nothing(tmp_path: Path, store: ContentStore) -> None:
    """An empty store misses both messages and the thread; reconcile writes them from the
    outbox (emptying it); a second comparison finds no drift."""
    c, box = community(tmp_path)
    found, report = reconcile(c.ledger, store, box, lexical_embedding)
    kinds = sorted(d.kind.value for d in found)
    assert kinds == ["coauthors", "missing", "missing"]
    assert not report.unfixable and len(report.fixed) == 3
    assert box.ids() == []
    by_id = {m.message_id: m for m in store.messages()}
    assert by_id["p1"].text == "first light" and by_id["p1"].status == PUBLISHED
    assert by_id["s1"].status == "pending"
    assert drift(expected(c.ledger), store.messages(), store.threads()) == []


def test_drift_in_status_content_coauthors_and_extras_is_repaired(
    tmp_path: Path, store: ContentStore
) -> None:
    """After the spec is approved (the store not told), a message's text is changed and a
    stray message and thread are added, drift names each and repair restores equality."""
    c, box = community(tmp_path)
    reconcile(c.ledger, store, box, lexical_embedding)
    c.vote("ada", "s1", True)  # approved; bob becomes a co-author
    tampered = message("p1", text="something else")
    stray = message("zz", thread="t9")
    store.put_messages([(m, lexical_embedding([m.text])[0]) for m in (tampered, stray)])
    store.put_thread(StoredThread(thread_id="t9", coauthors=("x",)))
    found = drift(expected(c.ledger), store.messages(), store.threads())
    assert {(d.kind, d.message_id) for d in found} == {
        (DriftKind.CONTENT, "p1"),
        (DriftKind.STATUS, "s1"),
        (DriftKind.COAUTHORS, None),
        (DriftKind.EXTRA, "zz"),
        (DriftKind.EXTRA_THREAD, None),
    }
    _, report = reconcile(c.ledger, store, box, lexical_embedding)
    # p1's right text is gone (outbox emptied, store text wrong): reported, not invented
    assert [(d.kind, d.message_id) for d in report.unfixable] == [(DriftKind.CONTENT, "p1")]
    box.put("p1", "first light")
    found, report = reconcile(c.ledger, store, box, lexical_embedding)
    assert [(d.kind, d.message_id) for d in found] == [(DriftKind.CONTENT, "p1")]
    assert not report.unfixable
    assert drift(expected(c.ledger), store.messages(), store.threads()) == []
    [view] = store.threads()
    assert set(view.coauthors) == {c.id("ada"), c.id("bob")}


_TEXTS = st.sampled_from(["a", "b", "c", "d"])
_STATUS = st.sampled_from([PUBLISHED, "pending", "approved", "denied"])


@st.composite
def _sides(draw: st.DrawFn) -> tuple[Expected, list[StoredMessage], list[StoredThread]]:
    """A ledger view and a store that differs from it at random (or not at all)."""
    ids = draw(st.lists(st.sampled_from(["m1", "m2", "m3", "m4"]), unique=True, max_size=4))
    want = {
        i: message(
            i, thread=draw(st.sampled_from(["t1", "t2"])), status=draw(_STATUS), text=draw(_TEXTS)
        )
        for i in ids
    }
    threads = {t: StoredThread(thread_id=t, coauthors=("a",)) for t in ("t1", "t2")}
    have: list[StoredMessage] = []
    for m in want.values():
        change = draw(st.sampled_from(["same", "drop", "status", "text"]))
        if change == "same":
            have.append(m)
        elif change == "status":
            have.append(message(m.message_id, thread=m.thread_id, status="mixed", text=m.text))
        elif change == "text":
            have.append(message(m.message_id, thread=m.thread_id, status=m.status, text="zz"))
    if draw(st.booleans()):
        have.append(message("stray"))
    stored_threads = [
        StoredThread(thread_id=t, coauthors=("a",) if draw(st.booleans()) else ("b",))
        for t in threads
    ]
    return Expected(messages=want, threads=threads), have, stored_threads


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sides=_sides())
def test_repair_makes_any_drift_vanish(store: ContentStore, tmp_path: Path, sides: Any) -> None:
    """For random differences between a ledger view and the store: drift is empty exactly
    when they agree, and repair (texts in the outbox) leaves no drift."""
    want, have, views = sides
    store.delete_messages([m.message_id for m in store.messages()])
    store.delete_threads([t.thread_id for t in store.threads()])
    store.put_messages([(m, lexical_embedding([m.text])[0]) for m in have])
    for view in views:
        store.put_thread(view)
    box = Outbox(tmp_path / "box")
    for m in want.messages.values():
        box.put(m.message_id, m.text)
    stored = store.messages()
    found = drift(want, stored, store.threads())
    agree = {m.message_id: m for m in have} == want.messages and all(
        v.coauthors == ("a",) for v in views
    )
    assert (found == []) == agree
    report = repair(found, want, stored, store, box, lexical_embedding)
    assert not report.unfixable
    assert drift(want, store.messages(), store.threads()) == []


def test_choir_commands_and_check_through_a_store_url(
    qdrant_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """`becomingone choir ... --store URL` (qdrant-client's remote mode, against the REST
    double): a post's text reaches the remote store, `check` finds no drift; a status changed
    behind the ledger's back is reported (exit 1), `check --repair` repairs it, and the next
    `check` is clean."""
    from becomingone.cli import main

    monkeypatch.setattr("becomingone.choir.home.model_available", lambda: False)
    where = ["--data-dir", str(tmp_path / "data"), "--store", qdrant_url]

    def choir(*args: str) -> tuple[int, Any]:
        status = main(["choir", *args, *where, "--json"])
        out = capsys.readouterr().out
        return status, json.loads(out) if out.strip() else None

    assert choir("users", "add", "ada")[0] == 0
    status, made = choir("threads", "create", "Tides", "--as", "ada")
    assert status == 0
    status, post = choir("post", made["thread"], "the ebb runs out", "--as", "ada")
    assert status == 0
    remote = QdrantStore(url=qdrant_url, dim=EMBEDDING_DIM)
    try:
        [stored] = remote.get_messages([post["message"]])
        assert (stored.text, stored.status) == ("the ebb runs out", PUBLISHED)
        assert choir("check")[0] == 0
        remote.set_status(post["message"], "denied")
        status, report = choir("check")
        assert status == 1 and [d["kind"] for d in report["drift"]] == ["status"], report
        assert choir("check", "--repair")[0] == 0
        assert choir("check")[0] == 0
        assert remote.get_messages([post["message"]])[0].status == PUBLISHED
    finally:
        remote.close()
