"""A write's follow-up checks only what it changed, and a thread's coherence is cached: after
any random sequence of posts, specs, votes and closes the store equals the full check's view
and the cached coherence equals a fresh computation; the store reads of one write do not grow
with the thread's size."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from becomingone.api.choir import ChoirService
from becomingone.choir import ChoirHome, ContentStore, TxKind, User, drift, expected
from becomingone.errors import InputError
from becomingone.ingest.text import lexical_embedding
from tests.api.choirhelpers import ManualClock

pytestmark = pytest.mark.timeout(300)

_WORDS = ("river", "stone", "light", "song", "wind", "field", "night", "bread", "salt", "wave")


def _text(i: int) -> str:
    return " ".join(_WORDS[(i * k) % len(_WORDS)] for k in (1, 3, 7)) + f" {i}"


def _service(data_dir: Path) -> tuple[ChoirService, ManualClock, list[User], str]:
    """ada (who opens a thread), grace and alan on lexical embeddings; and the thread id."""
    clock = ManualClock()
    service = ChoirService(ChoirHome(data_dir), embed=(lexical_embedding, "lexical"), clock=clock)
    users = [service.add_user(name)[0] for name in ("ada", "grace", "alan")]
    body = service.new_thread_body("t")
    service.act(users[0], TxKind.THREAD, body)
    return service, clock, users, str(body["thread"])


def _apply(
    service: ChoirService, clock: ManualClock, users: list[User], thread: str, op: tuple[Any, ...]
) -> None:
    """One step: post, submit, vote or close (a refused one is fine: nothing changes)."""
    kind, who, n = op
    user = users[who]
    try:
        if kind == "post":
            body = service.message_body(thread, _text(n), None)
            service.act(user, TxKind.POST, body, text=_text(n))
        elif kind == "submit":
            stake = service.ledger.price(thread, now=clock())
            body = service.message_body(thread, _text(n), max(stake, 1))
            service.act(user, TxKind.SUBMIT, body, text=_text(n))
        elif kind in ("approve", "deny"):
            specs = service.ledger.specs(thread=thread)
            if specs:
                spec = specs[n % len(specs)]
                service.act(user, TxKind.VOTE, {"spec": spec.id, "approve": kind == "approve"})
        else:  # close, after the window
            clock.now += service.ledger.rules.vote_window + 1
            specs = service.ledger.specs(thread=thread)
            if specs:
                service.act(user, TxKind.CLOSE, {"spec": specs[n % len(specs)].id})
    except InputError:
        pass


_OPS = st.tuples(
    st.sampled_from(["post", "post", "post", "submit", "approve", "deny", "close"]),
    st.integers(0, 2),
    st.integers(0, 50),
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(_OPS, min_size=10, max_size=30))
def test_incremental_follow_and_cached_coherence_equal_the_full_computation(
    ops: list[tuple[Any, ...]],
) -> None:
    """After every step the whole store has no drift from the ledger (the full check finds
    nothing the per-write check missed) and the cached coherence equals a fresh one."""
    with tempfile.TemporaryDirectory() as d:
        service, clock, users, thread = _service(Path(d))
        try:
            assert service.store is not None
            for op in ops:
                _apply(service, clock, users, thread, op)
                want = expected(service.ledger)
                found = drift(want, service.store.messages(), service.store.threads())
                assert found == [], (op, found)
                assert service.coherence(thread) == service.compute_coherence(thread), op
        finally:
            service.close()


class CountingStore:
    """A content store that counts its read calls and the messages they returned."""

    _READS = ("messages", "get_messages", "vectors", "threads", "thread", "search")

    def __init__(self, inner: ContentStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.rows = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in self._READS:
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            out = attr(*args, **kwargs)
            self.rows += len(out) if isinstance(out, Sequence) else int(out is not None)
            return out

        return counted


def _reads_of_one_write_each(size: int) -> list[tuple[dict[str, int], int]]:
    """The store reads of a post, a spec and its approving vote after ``size`` posts."""
    with tempfile.TemporaryDirectory() as d:
        service, clock, users, thread = _service(Path(d))
        try:
            for i in range(size):
                _apply(service, clock, users, thread, ("post", 0, i))
            counting = CountingStore(service.store)  # type: ignore[arg-type]
            service.store = counting  # type: ignore[assignment]
            out: list[tuple[dict[str, int], int]] = []
            for op in (("post", 0, 900), ("submit", 1, 901), ("approve", 0, 0)):
                counting.calls.clear()
                counting.rows = 0
                _apply(service, clock, users, thread, op)
                out.append((dict(counting.calls), counting.rows))
            assert service.ledger.specs(thread=thread)[0].status.value == "approved"
            return out
        finally:
            service.close()


def test_store_reads_per_write_do_not_grow_with_the_thread() -> None:
    """A post, a spec and a vote read the same calls and rows with 3 or 40 messages before."""
    small, large = _reads_of_one_write_each(3), _reads_of_one_write_each(40)
    assert small == large
    assert all(rows <= 2 for _, rows in large), large


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[ChoirService, ManualClock, list[User], str]]:
    """A service with a thread (closed at the end)."""
    service, clock, users, thread = _service(tmp_path / "data")
    try:
        yield service, clock, users, thread
    finally:
        service.close()


def test_coherence_is_recomputed_when_a_message_is_published(
    pair: tuple[ChoirService, ManualClock, list[User], str],
) -> None:
    """A read leaves the cached coherence as it is; after new posts it equals a fresh one."""
    service, clock, users, thread = pair
    for i in range(12):
        _apply(service, clock, users, thread, ("post", 0, i))
    first = service.coherence(thread)
    assert first is not None and service.coherence(thread) == first
    for i in range(12, 16):
        _apply(service, clock, users, thread, ("post", 0, i * 7))
    assert service.coherence(thread) == service.compute_coherence(thread)
