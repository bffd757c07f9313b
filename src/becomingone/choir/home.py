"""A Choir's home in a data dir: the ledger key, users' keys and the ledger connection.

Rule: owns the files under ``<data dir>/choir/`` — ``ledger.key`` (signs the chain),
``ledger.sqlite3`` (the default ledger), ``users/<name>.key`` (the keys of users created
here), the content store — ``store-edge/`` (qdrant-edge, the default) or ``store/`` (Qdrant's
local mode) — ``outbox/`` (texts waiting for the store) and ``up.json`` (the pid and URL of the
``choir up`` serving the data dir, which holds the store) — and opens the ledger (SQLite
there, or PostgreSQL when a URL is given) and the store (the engine ``store_engine`` names, or
a Qdrant server by URL). ``store-engine`` names the engine that opened the data dir last; the
other engine's store is copied into this one's when they differ, either way. The rules and
the storage live elsewhere; this is what the CLI and the API call.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from becomingone.choir.edge import EdgeStore, edge_available
from becomingone.choir.ledger import Ledger
from becomingone.choir.model import User
from becomingone.choir.postgres import PostgresLedger
from becomingone.choir.reconcile import Embed, Outbox
from becomingone.choir.rules import Rules
from becomingone.choir.sqlite import SqliteLedger
from becomingone.choir.store import ContentStore, QdrantStore, copy_store
from becomingone.choir.tx import Transaction, TxKind
from becomingone.errors import InputError, StorageError
from becomingone.ingest.text import EMBEDDING_DIM, embed_messages, model_available
from becomingone.keys import NodeKey

__all__ = ["STORE_ENGINES", "ChoirHome", "check_id", "check_user_name", "embedder"]

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: The content-store engines of ``choir.store_engine`` (``auto``: edge when installed).
STORE_ENGINES = ("auto", "edge", "local")


def check_id(value: str, parameter: str) -> str:
    """``value`` if it is a valid thread, spec or message id, else ``InputError`` naming it."""
    if not _NAME.fullmatch(value):
        raise InputError(parameter, f"must be an id of 1-64 of A-Z a-z 0-9 . _ -, got {value!r}")
    return value


def check_user_name(name: str, parameter: str = "name") -> str:
    """``name`` if it is 1-64 of ``A-Z a-z 0-9 _ . -``, else ``InputError`` naming it."""
    if not _NAME.fullmatch(name):
        raise InputError(parameter, f"must be 1-64 of A-Z a-z 0-9 _ . -, got {name!r}")
    return name


class ChoirHome:
    """The Choir files of ``data_dir``; ``ledger_url`` (``postgresql://...``) moves the ledger.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     home = ChoirHome(Path(d))
    ...     ledger = home.open(now=0.0)
    ...     user = home.add_user(ledger, "ada", now=0.0)
    ...     print(user.name, ledger.balance(f"wallet:{user.id}"))
    ...     ledger.close()
    ada 1000
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        ledger_url: str | None = None,
        rules: Rules | None = None,
        store_engine: str = "auto",
    ) -> None:
        if store_engine not in STORE_ENGINES:
            raise InputError(
                "store_engine", f"must be one of {', '.join(STORE_ENGINES)}, got {store_engine!r}"
            )
        self.root = data_dir / "choir"
        self.ledger_url = ledger_url
        self.rules = rules or Rules()
        self.store_engine = store_engine

    def open(self, *, now: float) -> Ledger:
        """Open (and on first use create) the ledger."""
        key = NodeKey.load_or_create(self.root / "ledger.key")
        if self.ledger_url:
            return PostgresLedger(self.ledger_url, key, rules=self.rules, now=now)
        return SqliteLedger(self.ledger_path, key, rules=self.rules, now=now)

    @property
    def ledger_path(self) -> Path:
        """The SQLite ledger's file (``ledger.sqlite3``; created by the first :meth:`open`)."""
        return self.root / "ledger.sqlite3"

    def engine(self, url: str | None = None) -> str:
        """The engine :meth:`open_store` opens: ``"server"`` (``url``), ``"edge"`` or
        ``"local"`` (``auto``: edge when ``qdrant-edge-py`` is installed)."""
        if url is not None:
            return "server"
        if self.store_engine == "auto":
            return "edge" if edge_available() else "local"
        return self.store_engine

    def open_store(self, url: str | None = None) -> ContentStore:
        """Open the content store: the Qdrant server at ``url``, else the engine's directory
        (``store-edge/`` or ``store/``). ``store-engine`` names the engine that opened the data
        dir last: when the other engine did and its directory exists, its content is copied
        into this engine's (into ``<dir>.partial/``, which replaces ``<dir>/`` when complete),
        so switching engines either way loses nothing. A data dir from before the marker with
        only the other directory is copied too; with both, ``edge`` takes ``store-edge/`` (the
        copy made from ``store/``) and ``local`` is refused, naming the way out."""
        engine = self.engine(url)
        if engine == "server":
            return QdrantStore(url=url, dim=EMBEDDING_DIM)
        other = "local" if engine == "edge" else "edge"
        here, there = self._store_dir(engine), self._store_dir(other)
        last = self._last_engine()
        if there.exists() and last is None and here.exists() and engine == "local":
            raise StorageError(
                f"content store: {here} and {there} both exist and neither is marked current"
                f" ({self.root / 'store-engine'} is missing): open once with store_engine: edge"
                f" to keep {there.name}/ (then local copies it back), or remove {there} to keep"
                f" {here.name}/"
            )
        if there.exists() and (last == other or (last is None and not here.exists())):
            partial = here.with_name(here.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)  # a copy cut short: start again
            source = self._open_engine(other, there)
            try:
                target = self._open_engine(engine, partial)
                try:
                    copy_store(source, target)
                finally:
                    target.close()
            finally:
                source.close()
            shutil.rmtree(here, ignore_errors=True)  # the other engine's writes came after it
            partial.rename(here)
        store = self._open_engine(engine, here)
        if last != engine:
            marker = self.root / "store-engine"
            marker.with_suffix(".tmp").write_text(engine, encoding="utf-8")
            marker.with_suffix(".tmp").replace(marker)
        return store

    def _store_dir(self, engine: str) -> Path:
        return self.root / ("store-edge" if engine == "edge" else "store")

    def _last_engine(self) -> str | None:
        try:
            last = (self.root / "store-engine").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return last if last in ("edge", "local") else None

    @staticmethod
    def _open_engine(engine: str, path: Path) -> ContentStore:
        if engine == "edge":
            return EdgeStore(path=path, dim=EMBEDDING_DIM)
        return QdrantStore(path=path, dim=EMBEDDING_DIM)

    @property
    def _serving_path(self) -> Path:
        return self.root / "up.json"

    def mark_serving(self, url: str) -> None:
        """Say (in ``up.json``) that this process serves the data dir at ``url``."""
        tmp = self._serving_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "url": url}), encoding="utf-8")
        tmp.replace(self._serving_path)

    def unmark_serving(self) -> None:
        """Remove ``up.json`` if this process wrote it."""
        found = self._read_serving()
        if found is not None and found[0] == os.getpid():
            self._serving_path.unlink(missing_ok=True)

    def _read_serving(self) -> tuple[int, str] | None:
        try:
            data = json.loads(self._serving_path.read_text(encoding="utf-8"))
            return int(data["pid"]), str(data["url"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def server(self) -> tuple[int, str] | None:
        """The pid and URL of the live ``choir up`` serving this data dir, if any (a marker
        left by a killed server names a pid that is gone, and is ignored)."""
        found = self._read_serving()
        if found is None:
            return None
        try:
            os.kill(found[0], 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
        return found

    @property
    def outbox(self) -> Outbox:
        """Texts written before their ledger transaction, removed once the store has them."""
        return Outbox(self.root / "outbox")

    def _key_path(self, name: str) -> Path:
        return self.root / "users" / f"{check_user_name(name)}.key"

    def key(self, name: str, parameter: str = "--as") -> NodeKey:
        """The key of user ``name`` created in this data dir."""
        path = self._key_path(check_user_name(name, parameter))
        if not path.exists():
            raise InputError(parameter, f"no user {name!r} in {self.root} (choir users add)")
        return NodeKey.load(path)

    def add_user(self, ledger: Ledger, name: str, *, now: float) -> User:
        """Create a key for ``name`` here and join the ledger with it."""
        path = self._key_path(name)
        if path.exists() or ledger.user_named(name) is not None:
            raise InputError("name", f"{name!r} is taken")
        key = NodeKey.generate()
        key.save(path)  # first: a joined user whose key was lost could never act
        try:
            ledger.submit(Transaction.sign(key, TxKind.JOIN, {"name": name}), now=now)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        user = ledger.user(key.id)
        assert user is not None
        return user

    def act(
        self, ledger: Ledger, name: str, kind: TxKind, body: dict[str, object], *, now: float
    ) -> Transaction:
        """Sign ``kind`` with ``body`` as ``name`` and submit it; the transaction."""
        tx = Transaction.sign(self.key(name), kind, body)
        ledger.submit(tx, now=now)
        return tx


def embedder() -> tuple[Embed, str]:
    """The sentence-embedding function and its name: ``"model"`` (MiniLM, the ``text`` extra)
    when installed, else ``"lexical"`` (shared words, not meaning)."""
    if model_available():
        return (lambda texts: embed_messages(texts, backend="model")), "model"
    return (lambda texts: embed_messages(texts, backend="lexical")), "lexical"
