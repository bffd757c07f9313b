"""What another process writes reaches a running Choir service, on SQLite and on PostgreSQL:
:meth:`ChoirService.poll` folds the records another connection appended (their events, with
the text from the outbox), :meth:`ChoirService.follow` writes them into the store, and a local
write after a foreign one folds the foreign one first, in chain order. `choir up`'s follower loop
says a record it cannot fold once and goes on."""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from becomingone.api.choir import ChoirService
from becomingone.choir import ChoirHome, TxKind
from becomingone.commands._choir_up import NOTIFY_FALLBACK_S, POLL_S, _follow_ledger
from becomingone.ingest.text import lexical_embedding
from tests.choir.pgserver import PgServer


def test_poll_and_follow_take_in_another_connections_writes(
    backend: Callable[[], str], tmp_path: Path
) -> None:
    where = backend()
    home = ChoirHome(tmp_path, ledger_url=where if where.startswith("postgresql://") else None)
    service = ChoirService(home, embed=(lexical_embedding, "lexical"))
    try:
        ada, _ = service.add_user("ada")
        thread = service.new_thread_body("Tides")
        service.act(ada, TxKind.THREAD, thread)
        assert service.poll() == []
        other = home.open(now=time.time())  # another process's connection to the ledger

        def foreign_post(text: str) -> str:
            body = service.message_body(thread["thread"], text, None)
            home.outbox.put(body["message"], text)  # what `choir post` does, in its order
            home.act(other, "ada", TxKind.POST, body, now=time.time())
            return str(body["message"])

        try:
            first = foreign_post("the ebb runs out past the bar")
            events = service.poll()
            assert [e.type for e in events] == ["message"]
            assert events[0].data["text"] == "the ebb runs out past the bar"
            assert events[0].data["id"] == first and "client_id" not in events[0].data
            assert service.poll() == []  # folded once
            assert service.store is not None and service.store.get_messages([first]) == []
            service.follow()
            [stored] = service.store.get_messages([first])
            assert stored.text == "the ebb runs out past the bar"
            assert home.outbox.get(first) is None
            second = foreign_post("and floods back at noon")
        finally:
            other.close()
        own = service.message_body(thread["thread"], "a post of this process", None)
        receipt, made = service.act(ada, TxKind.POST, own, text="a post of this process")
        assert [(e.type, e.data["id"]) for e in made] == [
            ("message", second),
            ("message", own["message"]),
        ]
        assert made[0].seq + 1 == made[1].seq == receipt.seq
        ids = [second, str(own["message"])]
        assert sorted(m.message_id for m in service.store.get_messages(ids)) == sorted(ids)
        assert service.ledger.verify().ok
    finally:
        service.close()


async def test_the_follower_says_a_bad_record_once_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`choir up`'s follower on a chain row that does not decode: one line on stderr however
    many polls see it, the loop still running; once the row is gone, another connection's
    post reaches a subscriber of the thread."""
    home = ChoirHome(tmp_path)
    service = ChoirService(home, embed=(lexical_embedding, "lexical"))
    stop = asyncio.Event()
    follower = asyncio.ensure_future(_follow_ledger(service, stop))
    try:
        ada, _ = await asyncio.to_thread(service.add_user, "ada")
        thread = service.new_thread_body("Tides")
        await asyncio.to_thread(service.act, ada, TxKind.THREAD, thread)
        sub, _ = service.subscribe(thread["thread"], after=10**6)
        db = sqlite3.connect(home.ledger_path)
        with db:
            (seq,) = db.execute("SELECT MAX(seq) + 1 FROM choir_chain").fetchone()
            row = (seq, "meso", 0.0, "choir.post", "not json", "0", "0", "x", b"")
            db.execute("INSERT INTO choir_chain VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        await asyncio.sleep(10 * POLL_S)
        assert not follower.done()
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("becomingone choir up: following the ledger:")
        with db:
            db.execute("DELETE FROM choir_chain WHERE seq = ?", (seq,))
        db.close()
        other = home.open(now=time.time())
        try:
            body = service.message_body(thread["thread"], "past the bar", None)
            home.outbox.put(body["message"], "past the bar")
            home.act(other, "ada", TxKind.POST, body, now=time.time())
        finally:
            other.close()
        event = await asyncio.wait_for(sub.queue.get(), 30)
        assert (event.type, event.data["text"]) == ("message", "past the bar")
    finally:
        stop.set()
        await asyncio.wait_for(follower, 30)
        service.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_postgres_append_wakes_the_follower_by_notify(
    pg_server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On PostgreSQL `choir up`'s follower LISTENs: a post another connection commits reaches
    a subscriber of the thread in well under the old 0.2 s poll (median of 8 posts under
    0.1 s) and never waits for the 5 s fallback look (each under 1 s). When the listening
    connection is killed, the follower says so once and polls: the next post still arrives."""
    url = pg_server.create_database()
    home = ChoirHome(tmp_path, ledger_url=url)
    service = ChoirService(home, embed=(lexical_embedding, "lexical"))
    stop = asyncio.Event()
    follower = asyncio.ensure_future(_follow_ledger(service, stop))
    other = home.open(now=time.time())
    try:
        ada, _ = await asyncio.to_thread(service.add_user, "ada")
        thread = service.new_thread_body("Tides")
        await asyncio.to_thread(service.act, ada, TxKind.THREAD, thread)
        sub, _ = service.subscribe(thread["thread"], after=10**6)
        await asyncio.sleep(0.5)  # the follower has looked and now waits for a notification

        def foreign_post(text: str) -> float:
            body = service.message_body(thread["thread"], text, None)
            home.outbox.put(body["message"], text)
            home.act(other, "ada", TxKind.POST, body, now=time.time())
            return time.perf_counter()  # committed (and notified)

        latencies = []
        for i in range(8):
            committed = await asyncio.to_thread(foreign_post, f"tide {i} turns")
            event = await asyncio.wait_for(sub.queue.get(), NOTIFY_FALLBACK_S + 10)
            latencies.append(time.perf_counter() - committed)
            assert (event.type, event.data["text"]) == ("message", f"tide {i} turns")
            await asyncio.sleep(0.05)
        assert max(latencies) < 1.0, latencies
        assert statistics.median(latencies) < 0.1, latencies
        with capsys.disabled():
            print(f"\nNOTIFY to event: {sorted(round(x * 1000, 1) for x in latencies)} ms")
        with psycopg.connect(url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
            ).fetchall()
        assert killed == [(True,)]
        await asyncio.to_thread(foreign_post, "after the listener")
        event = await asyncio.wait_for(sub.queue.get(), 10 * POLL_S + 5)
        assert event.data["text"] == "after the listener"
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "following the ledger: StorageError" in err[0], err
    finally:
        other.close()
        stop.set()
        await asyncio.wait_for(follower, 30)
        service.close()
