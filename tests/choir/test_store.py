"""The content store (Qdrant local mode) and its reconciliation with the ledger.

Checks the adapter round trip (payload, vectors, status, search filters), that a second real
process on the same directory gets one clear error, and that drift between the ledger and the
store (missing, extra, changed content, status, co-authors) is found and repaired from the
outbox. Embeddings here are the lexical ones (fast, deterministic); the CLI tests use the model.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from becomingone.choir import (
    PUBLISHED,
    DriftKind,
    Expected,
    Outbox,
    QdrantStore,
    SqliteLedger,
    StoredMessage,
    StoredThread,
    TxKind,
    content_hash,
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


@pytest.fixture
def store(tmp_path: Path) -> Iterator[QdrantStore]:
    """A local-mode store in a temporary directory, closed afterwards."""
    s = QdrantStore(path=tmp_path / "store", dim=EMBEDDING_DIM)
    try:
        yield s
    finally:
        s.close()


def test_round_trip_status_search_and_delete(store: QdrantStore) -> None:
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


def test_threads_writing_and_reading_at_once_lose_nothing(store: QdrantStore) -> None:
    """The API serves the store from a thread pool: 3 writers and 3 readers at once keep
    every message and raise nothing (unserialized, local mode lost about a third of the
    points and raised IndexError)."""
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
    assert len(store.messages()) == 180


def test_bad_vectors_and_k_are_refused(store: QdrantStore) -> None:
    """A vector of the wrong size or with NaN, or k < 1, is an InputError naming it."""
    with pytest.raises(InputError, match="vector"):
        store.put_messages([(message("m"), np.zeros(3))])
    with pytest.raises(InputError, match="vector"):
        store.put_messages([(message("m"), np.full(EMBEDDING_DIM, np.nan))])
    with pytest.raises(InputError, match=r"^k:"):
        store.search(np.ones(EMBEDDING_DIM), k=0, statuses=[PUBLISHED])


def test_a_second_process_on_the_same_directory_gets_one_clear_error(tmp_path: Path) -> None:
    """While this process holds the local store, a real second process opening it gets a
    StorageError saying it is open in another process (one line, no traceback)."""
    path = tmp_path / "store"
    held = QdrantStore(path=path, dim=4)
    code = (
        "import sys; from pathlib import Path\n"
        "from becomingone.choir import QdrantStore\n"
        "from becomingone.errors import StorageError\n"
        "try:\n"
        f"    QdrantStore(path=Path({str(path)!r}), dim=4)\n"
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
    again = QdrantStore(path=path, dim=4)  # released: opens again
    again.close()


def test_a_store_of_another_vector_size_is_refused(tmp_path: Path) -> None:
    """Reopening a store with another dimension is a StorageError, not silent mixing."""
    QdrantStore(path=tmp_path / "s", dim=4).close()
    with pytest.raises(StorageError, match="size 4, not 8"):
        QdrantStore(path=tmp_path / "s", dim=8)


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


def test_reconcile_fills_the_store_then_finds_nothing(tmp_path: Path, store: QdrantStore) -> None:
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
    tmp_path: Path, store: QdrantStore
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
def test_repair_makes_any_drift_vanish(store: QdrantStore, tmp_path: Path, sides: Any) -> None:
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
