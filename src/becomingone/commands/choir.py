"""``becomingone choir up|users|token|threads|specs|post|submit|vote|close|divest|balance|check|
search``.

Rule: argument handling and printing only; the ledger, the rules and the keys are
:mod:`becomingone.choir` (:class:`~becomingone.choir.ChoirHome` opens the data dir's ledger, or
a PostgreSQL one with ``--ledger URL``). Every action is signed with the acting user's key
(``--as NAME``, created here by ``users add``, which also prints the user's bearer token for
the API; ``token NAME`` makes another). ``up`` serves the Choir
(:mod:`becomingone.commands._choir_up`). The ledger keeps each message's hash; its text
and embedding go to the content store after the ledger commits
(:mod:`becomingone.commands._choir_store`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from becomingone.choir import (
    TREASURY,
    ChoirHome,
    Ledger,
    SpecStatus,
    TxKind,
    check_id,
    check_user_name,
    content_hash,
    new_id,
    wallet,
)
from becomingone.commands._choir_store import (
    StoreSession,
    check,
    search,
    thread_coherence,
    write_message,
)
from becomingone.commands._choir_up import DEFAULT_CHOIR_PORT, run_choir_up
from becomingone.commands.up import data_dir_arg
from becomingone.config import load_config
from becomingone.errors import InputError

__all__ = ["register"]

Handler = Callable[[argparse.Namespace, ChoirHome, Ledger, float], Any]


def _common(p: argparse.ArgumentParser, *, actor: bool = False) -> None:
    if actor:
        p.add_argument("--as", dest="actor", required=True, metavar="NAME", help="acting user")
    p.add_argument("--data-dir", help="data dir (default: memory.path or ~/.becomingone)")
    p.add_argument("--config", type=Path, help="becomingone.yaml")
    p.add_argument("--ledger", metavar="URL", help="a postgresql:// ledger instead of SQLite")
    p.add_argument("--store", metavar="URL", help="a Qdrant server instead of the local store")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``choir`` and its subcommands."""
    p = sub.add_parser("choir", help="Choir: users, threads, specs, votes and balances")
    inner = p.add_subparsers(dest="choir_command", metavar="ACTION")
    inner.required = True
    users = inner.add_parser("users", help="list users, or `users add NAME`")
    users.add_argument("action", nargs="?", choices=["list", "add"], default="list")
    users.add_argument("name", nargs="?", help="the new user's name (with add)")
    _common(users)
    token = inner.add_parser("token", help="a new API bearer token for user NAME (shown once)")
    token.add_argument("name", help="a user created here (choir users add)")
    _common(token)
    up = inner.add_parser("up", help="serve the Choir API, its WebSocket and web UI")
    up.add_argument(
        "--serve",
        default=f"127.0.0.1:{DEFAULT_CHOIR_PORT}",
        metavar="HOST:PORT",
        help=f"where to listen (default 127.0.0.1:{DEFAULT_CHOIR_PORT}; port 0: a free one)",
    )
    up.add_argument(
        "--demo",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="make a demo community the first time and print a login link per demo user",
    )
    _common(up)
    up.set_defaults(handler=_run_up)
    threads = inner.add_parser("threads", help="list threads, or `threads create TITLE --as NAME`")
    threads.add_argument("action", nargs="?", choices=["list", "create"], default="list")
    threads.add_argument("title", nargs="?", help="the new thread's title (with create)")
    threads.add_argument("--as", dest="actor", metavar="NAME", help="creator (with create)")
    _common(threads)
    specs = inner.add_parser("specs", help="list specs (pending ones unless --all)")
    specs.add_argument("--thread", help="only this thread")
    specs.add_argument("--all", action="store_true", help="decided specs too")
    _common(specs)
    post = inner.add_parser("post", help="post TEXT to THREAD as a co-author")
    post.add_argument("thread")
    post.add_argument("text")
    _common(post, actor=True)
    submit = inner.add_parser("submit", help="submit TEXT to THREAD as a spec with a stake")
    submit.add_argument("thread")
    submit.add_argument("text")
    submit.add_argument("--stake", type=int, help="CHOIR in escrow (default: the price now)")
    _common(submit, actor=True)
    vote = inner.add_parser("vote", help="approve or deny SPEC as a co-author")
    vote.add_argument("spec")
    vote.add_argument("choice", choices=["approve", "deny"])
    _common(vote, actor=True)
    close = inner.add_parser("close", help="settle SPEC once its window is over (or all voted)")
    close.add_argument("spec")
    _common(close, actor=True)
    divest = inner.add_parser("divest", help="leave THREAD with its balance / co-authors")
    divest.add_argument("thread")
    _common(divest, actor=True)
    balance = inner.add_parser("balance", help="a user's wallet, or every total and the invariant")
    balance.add_argument("name", nargs="?", help="user (default: the ledger's totals)")
    _common(balance)
    check_p = inner.add_parser("check", help="compare the content store with the ledger")
    check_p.add_argument("--repair", action="store_true", help="make the store follow the ledger")
    _common(check_p)
    search_p = inner.add_parser("search", help="published messages nearest TEXT in meaning")
    search_p.add_argument("text")
    search_p.add_argument("--thread", help="only this thread")
    search_p.add_argument("-k", type=int, default=5, help="how many (default 5)")
    _common(search_p)
    every = (
        users,
        token,
        threads,
        specs,
        post,
        submit,
        vote,
        close,
        divest,
        balance,
        check_p,
        search_p,
    )
    for parser in every:
        parser.set_defaults(handler=_run)


def _run_up(args: argparse.Namespace) -> int:
    _check(args)
    return run_choir_up(args)


def _run(args: argparse.Namespace) -> int:
    _check(args)
    config = load_config(args.config)
    data_dir = data_dir_arg(args.data_dir, config)
    home = ChoirHome(data_dir, ledger_url=args.ledger, store_engine=config.choir.store_engine)
    if _reads_only(args) and args.ledger is None and not home.ledger_path.exists():
        raise InputError(
            "--data-dir",
            f"no Choir in {data_dir} yet (pass the --data-dir that holds one,"
            " or start one with `becomingone choir users add NAME`)",
        )
    now = time.time()
    ledger = home.open(now=now)
    args.session = StoreSession(home, args.store)
    try:
        if args.choir_command not in _LEDGER_ONLY:  # a held store refuses before any write,
            args.session.open_for(write=not _reads_only(args))  # unless `choir up` holds it
        result = _HANDLERS[args.choir_command](args, home, ledger, now)
    finally:
        args.session.close()
        ledger.close()
    if args.json:
        print(json.dumps(result))
    elif args.choir_command in _RENDER:
        print("\n".join(_RENDER[args.choir_command](result)))
    else:
        for line in result if isinstance(result, list) else [result]:
            print(line if isinstance(line, str) else _text(line))
    return 1 if args.choir_command == "check" and not result["ok"] else 0


def _check(args: argparse.Namespace) -> None:
    """Bad arguments are refused before the data dir is touched."""
    if args.ledger is not None and not args.ledger.startswith(("postgresql://", "postgres://")):
        raise InputError("--ledger", f"must be a postgresql:// URL, got {args.ledger!r}")
    if args.store is not None and not args.store.startswith(("http://", "https://")):
        raise InputError("--store", f"must be an http(s):// Qdrant URL, got {args.store!r}")
    if getattr(args, "k", None) is not None and not 1 <= args.k <= 1000:
        raise InputError("-k", f"must be in 1..1000, got {args.k}")
    if getattr(args, "actor", None) is not None:
        check_user_name(args.actor, "--as")
    command, action = args.choir_command, getattr(args, "action", None)
    if (command == "users" and action == "add") or command == "token":
        check_user_name(args.name or "", "name")
    if command == "threads" and action == "create" and (not args.title or not args.actor):
        raise InputError("title", "threads create needs TITLE and --as NAME")
    for name in ("thread", "spec"):
        value = getattr(args, name, None)
        if value is not None:
            check_id(value, name)
    if command in ("post", "submit", "search") and not args.text.strip():
        raise InputError("text", "must not be empty")
    if getattr(args, "stake", None) is not None and args.stake <= 0:
        raise InputError("--stake", f"must be a positive integer, got {args.stake}")


def _text(row: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v}" for k, v in row.items())


def _users(args: argparse.Namespace, home: ChoirHome, ledger: Ledger, now: float) -> Any:
    if args.action == "add":
        user = home.add_user(ledger, args.name, now=now)
        row = {"name": user.name, "id": user.id, "wallet": ledger.balance(wallet(user.id))}
        return row | {"token": _token(args, home, ledger, now)}
    return [
        {"name": u.name, "id": u.id, "wallet": ledger.balance(wallet(u.id))} for u in ledger.users()
    ]


def _token(args: argparse.Namespace, home: ChoirHome, ledger: Ledger, now: float) -> Any:
    from becomingone.api.choir import issue_token, user_tokens  # the API's token store

    tokens = user_tokens(home)
    try:
        return issue_token(tokens, home, ledger, args.name)
    finally:
        tokens.close()


def _new_token(args: argparse.Namespace, home: ChoirHome, ledger: Ledger, now: float) -> Any:
    return {"name": args.name, "token": _token(args, home, ledger, now)}


def _threads(args: argparse.Namespace, home: ChoirHome, ledger: Ledger, now: float) -> Any:
    if args.action == "create":
        thread_id = new_id()[:12]
        body = {"thread": thread_id, "title": args.title}
        home.act(ledger, args.actor, TxKind.THREAD, body, now=now)
        args.session.follow(ledger, thread_id)
        return {"thread": thread_id, "title": args.title, "price": ledger.price(thread_id, now=now)}
    names = {u.id: u.name for u in ledger.users()}
    return [
        {
            "thread": t.id,
            "title": t.title,
            "coauthors": sorted(names.get(c, c) for c in t.coauthors),
            "balance": t.balance,
            "price": ledger.price(t.id, now=now),
            "pending": len(ledger.specs(thread=t.id, status=SpecStatus.PENDING)),
            "coherence": thread_coherence(args.session, t.id),
        }
        for t in ledger.threads()
    ]


def _specs(args: argparse.Namespace, home: ChoirHome, ledger: Ledger, now: float) -> Any:
    names = {u.id: u.name for u in ledger.users()}
    status = None if args.all else SpecStatus.PENDING
    return [
        {
            "spec": s.id,
            "thread": s.thread,
            "author": names.get(s.author, s.author),
            "stake": s.stake,
            "status": s.status.value,
            "votes": {names.get(v, v): "approve" if a else "deny" for v, a in s.votes},
            "closes_in_s": max(0, round(s.deadline - now)),
        }
        for s in ledger.specs(thread=args.thread, status=status)
    ]


def _post(args: argparse.Namespace, home: ChoirHome, ledger: Ledger, now: float) -> Any:
    message = new_id()[:12]
    digest = content_hash(args.text)
    body = {"thread": args.thread, "message": message, "content_hash": digest}
    write_message(args.session, ledger, args.actor, TxKind.POST, body, args.text, now=now)
    return {
        "message": message,
        "thread": args.thread,
        "content_hash": digest,
        "embedding": _embedding(args),
    }


def _submit(args: argparse.Namespace, home: ChoirHome, ledger: Ledger, now: float) -> Any:
    spec = new_id()[:12]
    stake = args.stake if args.stake is not None else ledger.price(args.thread, now=now)
    body: dict[str, object] = {
        "thread": args.thread,
        "spec": spec,
        "content_hash": content_hash(args.text),
    }
    body["stake"] = stake
    write_message(args.session, ledger, args.actor, TxKind.SUBMIT, body, args.text, now=now)
    return {
        "spec": spec,
        "thread": args.thread,
        "stake": stake,
        "status": "pending",
        "embedding": _embedding(args),
    }


def _embedding(args: argparse.Namespace) -> str | None:
    """Which embeddings the store got: None when the serving `choir up` embeds the text."""
    return None if args.session.served_by is not None else args.session.embedding


def _vote(args: argparse.Namespace, home: ChoirHome, ledger: Ledger, now: float) -> Any:
    body = {"spec": args.spec, "approve": args.choice == "approve"}
    home.act(ledger, args.actor, TxKind.VOTE, body, now=now)
    spec = ledger.spec(args.spec)
    assert spec is not None
    args.session.follow(ledger, spec.thread)
    return {"spec": spec.id, "vote": args.choice, "status": spec.status.value}


def _close(args: argparse.Namespace, home: ChoirHome, ledger: Ledger, now: float) -> Any:
    home.act(ledger, args.actor, TxKind.CLOSE, {"spec": args.spec}, now=now)
    spec = ledger.spec(args.spec)
    assert spec is not None
    args.session.follow(ledger, spec.thread)
    return {"spec": spec.id, "status": spec.status.value, "stake": spec.stake}


def _divest(args: argparse.Namespace, home: ChoirHome, ledger: Ledger, now: float) -> Any:
    user = home.key(args.actor)
    before = ledger.balance(wallet(user.id))
    home.act(ledger, args.actor, TxKind.DIVEST, {"thread": args.thread}, now=now)
    args.session.follow(ledger, args.thread)
    return {
        "thread": args.thread,
        "name": args.actor,
        "paid": ledger.balance(wallet(user.id)) - before,
    }


def _balance(args: argparse.Namespace, home: ChoirHome, ledger: Ledger, now: float) -> Any:
    if args.name is not None:
        user = ledger.user_named(check_user_name(args.name))
        if user is None:
            raise InputError("name", f"unknown user {args.name!r}")
        return {"name": user.name, "wallet": ledger.balance(wallet(user.id))}
    t = ledger.totals()
    return {
        "treasury": ledger.balance(TREASURY),
        "wallets": t.wallets,
        "threads": t.threads,
        "escrow": t.escrow,
        "total": t.total,
        "supply": t.supply,
        "invariant": "holds" if t.ok else "BROKEN",
    }


def _check_store(args: argparse.Namespace, home: ChoirHome, ledger: Ledger, now: float) -> Any:
    return check(args.session, ledger, repair=args.repair)


def _search(args: argparse.Namespace, home: ChoirHome, ledger: Ledger, now: float) -> Any:
    return search(args.session, ledger, args.text, thread=args.thread, k=args.k)


def _render_check(result: dict[str, Any]) -> list[str]:
    head = {k: result[k] for k in ("threads", "messages", "repaired", "ok")}
    lines = [_text({**head, "drift": len(result["drift"]), "remaining": len(result["remaining"])})]
    lines += [f"drift: {_text(d)}" for d in result["drift"]]
    if result["remaining"] != result["drift"]:  # after a repair: what it could not fix
        lines += [f"remaining: {_text(d)}" for d in result["remaining"]]
    return lines


def _render_search(result: dict[str, Any]) -> list[str]:
    return [
        f"{h['score']:.3f}  thread={h['thread']}  author={h['author']}  {h['text']}"
        for h in result["hits"]
    ] or ["no published message matches"]


#: Commands that never touch the content store.
_LEDGER_ONLY = frozenset({"users", "token", "specs", "balance"})
_READS_ONLY = frozenset({"specs", "balance", "check", "search"})


def _reads_only(args: argparse.Namespace) -> bool:
    """Whether the command only reads (then it must not create a Choir where there is none)."""
    command, action = args.choir_command, getattr(args, "action", None)
    return command in _READS_ONLY or (command in ("users", "threads") and action == "list")


_RENDER: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "check": _render_check,
    "search": _render_search,
}

_HANDLERS: dict[str, Handler] = {
    "users": _users,
    "token": _new_token,
    "threads": _threads,
    "specs": _specs,
    "post": _post,
    "submit": _submit,
    "vote": _vote,
    "close": _close,
    "divest": _divest,
    "balance": _balance,
    "check": _check_store,
    "search": _search,
}
