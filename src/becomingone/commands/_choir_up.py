"""``becomingone choir up``: serve a Choir (its API, WebSocket and web UI) until a signal.

Rule: startup and printing only. It opens the Choir home (the ledger, the content store and
the users' tokens) through :class:`~becomingone.api.choir.ChoirService`, brings the content
store up to the ledger (``choir check --repair``), with ``--demo`` makes a demo community
the first time (users ada, grace and alan; a thread; a post; a pending spec) and a fresh
login link per demo user every time, then serves on ``--serve`` until SIGINT or SIGTERM. The
URLs go to stdout, one per line (a script or a test reads them; with ``--json`` one JSON
object); notes go to stderr. While it
serves, ``<data dir>/choir/up.json`` names it, and it folds the ledger records another
process appended (``choir post`` from a shell writes the ledger and the outbox, and leaves the
store to this server) and pushes their events: every :data:`POLL_S` on SQLite; on PostgreSQL
as soon as the append's ``NOTIFY`` arrives (``LISTEN`` on a connection of its own), looking
anyway every :data:`NOTIFY_FALLBACK_S` in case a notification was lost (and every
:data:`POLL_S` again if the listening connection fails).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from typing import Any

from becomingone.choir import AppendListener, ChoirHome, PostgresLedger, SpecStatus, TxKind
from becomingone.commands.up import data_dir_arg
from becomingone.config import load_config

__all__ = ["DEFAULT_CHOIR_PORT", "DEMO_USERS", "NOTIFY_FALLBACK_S", "POLL_S", "run_choir_up"]

#: The demo community's users.
DEMO_USERS = ("ada", "grace", "alan")
#: Where ``choir up`` listens by default.
DEFAULT_CHOIR_PORT = 8795
#: Seconds between two looks for ledger records another process appended (SQLite).
POLL_S = 0.2
#: Seconds between two looks on PostgreSQL, where an append's NOTIFY wakes the follower.
NOTIFY_FALLBACK_S = 5.0
_DEMO_POSTS = (
    "Tides follow the moon: two highs and two lows a day.",
    "Spring tides come when the sun and the moon pull in line.",
)
_DEMO_SPEC = "Neap tides come when the sun and the moon pull at right angles."


def _demo(service: Any) -> list[tuple[str, str]]:
    """Make the demo community once; a fresh token for each demo user whose key is here."""
    from becomingone.api.choir import issue_token

    ledger = service.ledger
    if all(ledger.user_named(name) is None for name in DEMO_USERS):
        users = {name: service.add_user(name)[0] for name in DEMO_USERS}
        body = service.new_thread_body("Tides")
        service.act(users["ada"], TxKind.THREAD, body)
        thread = body["thread"]
        for text in _DEMO_POSTS:
            service.act(
                users["ada"], TxKind.POST, service.message_body(thread, text, None), text=text
            )
        stake = ledger.price(thread, now=service.clock())
        spec = service.message_body(thread, _DEMO_SPEC, stake)
        service.act(users["grace"], TxKind.SUBMIT, spec, text=_DEMO_SPEC)
    links = []
    for name in DEMO_USERS:
        if (
            ledger.user_named(name) is not None
            and (service.home.root / "users" / f"{name}.key").exists()
        ):
            links.append((name, issue_token(service.tokens, service.home, ledger, name)))
    return links


async def _follow_ledger(service: Any, stop: asyncio.Event) -> None:
    """Until ``stop``: fold what other processes appended, push its events, then the store.
    A failed look (a record that does not decode, a lost database connection) is said once
    on stderr and tried again at the next look: the server goes on serving."""
    said = ""

    def say(exc: Exception) -> None:
        nonlocal said
        if str(exc) != said:
            said = str(exc)
            print(
                f"becomingone choir up: following the ledger: {type(exc).__name__}: {exc}",
                file=sys.stderr,
                flush=True,
            )

    listener: AppendListener | None = None
    if isinstance(service.ledger, PostgresLedger):
        try:
            listener = await service.ledger.listen()
        except Exception as exc:
            say(exc)
    try:
        while not stop.is_set():
            try:
                events = await asyncio.to_thread(service.poll)
                if events:
                    service.publish(events)
                    await asyncio.to_thread(service.follow)
                said = ""
            except Exception as exc:
                say(exc)
            try:
                await _pause(listener, stop)
            except Exception as exc:  # the listening connection is lost: poll as on SQLite
                say(exc)
                assert listener is not None
                with contextlib.suppress(Exception):
                    await listener.close()
                listener = None
    finally:
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close()


async def _pause(listener: AppendListener | None, stop: asyncio.Event) -> None:
    """Until ``stop``, an append's notification (``listener``) or the interval, if sooner."""
    if listener is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_S)
        return
    woke = asyncio.ensure_future(listener.wait(NOTIFY_FALLBACK_S))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({woke, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not woke.done():  # stopping: the listener is closed next
        woke.cancel()
        with contextlib.suppress(BaseException):
            await woke
        return
    woke.result()  # a lost connection raises here


async def _serve(args: argparse.Namespace, service: Any, listen: tuple[str, int]) -> None:
    from becomingone.api import PREFIX, ApiServer, ApiSettings, create_app
    from becomingone.runtime.metrics import choir_registry

    config = load_config(args.config)
    settings = ApiSettings.from_config(config.api)
    registry = choir_registry(service.ledger, lambda: dict(service.transactions))
    app = create_app(None, settings, choir=service, registry=registry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    follower = asyncio.ensure_future(_follow_ledger(service, stop))
    try:
        async with ApiServer(app, *listen) as server:
            service.home.mark_serving(server.url)
            links = await asyncio.to_thread(_demo, service) if args.demo else []
            ui, api, docs = (
                f"{server.url}/choir/",
                f"{server.url}{PREFIX}/choir",
                f"{server.url}{PREFIX}/docs",
            )
            logins = {name: f"{ui}#token={token}" for name, token in links}
            if args.json:
                urls = {"ui": ui, "api": api, "docs": docs, "logins": logins}
                print(json.dumps(urls), flush=True)
            else:
                print(f"ui: {ui}", flush=True)
                print(f"api: {api} (docs {docs})", flush=True)
                for name, url in logins.items():
                    print(f"login {name}: {url}", flush=True)
            users, threads = len(service.ledger.users()), len(service.ledger.threads())
            pending = len(service.ledger.specs(status=SpecStatus.PENDING))
            print(
                f"becomingone choir up: {_count(users, 'user')}, {_count(threads, 'thread')},"
                f" {_count(pending, 'pending spec')}; stop with Ctrl-C",
                file=sys.stderr,
                flush=True,
            )
            await stop.wait()
    finally:
        stop.set()
        with contextlib.suppress(BaseException):
            await follower
        service.home.unmark_serving()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_choir_up(args: argparse.Namespace) -> int:
    """Handler of ``becomingone choir up``."""
    from becomingone.api.choir import ChoirService
    from becomingone.api.settings import parse_listen

    config = load_config(args.config)
    listen = parse_listen(args.serve, allow_remote=config.api.allow_remote)
    home = ChoirHome(
        data_dir_arg(args.data_dir, config),
        ledger_url=args.ledger,
        store_engine=config.choir.store_engine,
    )
    service = ChoirService(home, store_url=args.store)
    try:
        found, report = service.repair()
        print(
            f"becomingone choir up: check --repair: {len(found)} drift,"
            f" {len(report.fixed)} repaired, {len(report.unfixable)} unfixable"
            f" (embeddings: {service.embedding}, store: {home.engine(args.store)})",
            file=sys.stderr,
            flush=True,
        )
        asyncio.run(_serve(args, service, listen))
    finally:
        service.close()
    return 0


def _count(n: int, noun: str) -> str:
    """``"1 thread"``, ``"2 threads"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
