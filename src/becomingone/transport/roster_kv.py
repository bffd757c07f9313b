"""The roster of a cluster in a JetStream KV bucket: read it, watch it, and (admins) write it.

Rule: one bucket per cluster, ``roster_<cluster>``; a key is a node id (a ``:`` in the id is
stored as ``=``, which KV keys allow and node ids never hold), its value the node's Ed25519
public key as 64 hex digits. With TLS on, the servers let only an ``admin`` certificate write
the bucket (:mod:`becomingone.transport.natsd`); a node's write is refused by the server, and
this module turns the server's permission violation into a :class:`TransportError` at once
instead of waiting for the request to time out. Without TLS the bucket is not protected:
whoever reaches the servers may write it (development on one machine; :data:`DEV_MODE_WARNING`).

:class:`RosterBucket` reads and writes on a connection of its own (``becomingone roster``,
``node --join``); :class:`RosterWatch` feeds a running node from a KV watch on the node's bus:
every add, replacement and removal arrives live, and the node picks it up at its next tick
(the ``changed()``/``read()`` interface of the roster file). An entry that is not a valid
member (a bad key, or a key another member holds) is skipped and counted in ``bad_entries``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import api

from becomingone.certs import TlsFiles
from becomingone.errors import InputError, TransportError
from becomingone.keys import PUBLIC_KEY_BYTES
from becomingone.sync.roster import NODE_ID_PATTERN, KeyRoster
from becomingone.transport.jetstream import kv_entries
from becomingone.transport.nats import NatsBus, connect_nats
from becomingone.transport.natsd import JS_DOMAIN

__all__ = [
    "DEV_MODE_WARNING",
    "RosterBucket",
    "RosterWatch",
    "decode_member",
    "roster_bucket",
]

T = TypeVar("T")

#: Bucket names: what JetStream accepts.
_BUCKET = re.compile(r"[-_A-Za-z0-9]{1,200}")
#: Versions of each key the bucket keeps (the last few rotations, for audit).
HISTORY = 5
#: What the CLI prints when the roster is written without TLS.
DEV_MODE_WARNING = (
    "warning: no TLS: the roster bucket is not protected (development mode); anyone who "
    "reaches the servers may change it"
)


class _NoBucket(TransportError):
    """The roster bucket does not exist."""


def roster_bucket(cluster: str) -> str:
    """The KV bucket holding ``cluster``'s roster (``roster_<cluster>``)."""
    name = f"roster_{cluster}"
    if not _BUCKET.fullmatch(name):
        raise InputError(
            "cluster", f"{cluster!r} cannot name a KV bucket (letters, digits, '-', '_')"
        )
    return name


def _kv_key(node_id: str) -> str:
    if not isinstance(node_id, str) or not NODE_ID_PATTERN.match(node_id):
        raise InputError("name", f"must be 1-64 of [A-Za-z0-9._:-], got {node_id!r}")
    return node_id.replace(":", "=")


def decode_member(key: str, value: bytes) -> tuple[str, bytes]:
    """``(node id, public key)`` of one bucket entry; :class:`InputError` if it is none."""
    node_id = key.replace("=", ":")
    if not NODE_ID_PATTERN.match(node_id):
        raise InputError("roster", f"key {key!r} is not a node id")
    try:
        public = bytes.fromhex(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        public = b""
    if len(public) != PUBLIC_KEY_BYTES:
        raise InputError("roster", f"value of {node_id!r} is not {PUBLIC_KEY_BYTES} bytes in hex")
    return node_id, public


class RosterBucket:
    """A cluster's roster bucket on a connection of its own (open with :meth:`connect`).

    Writes raise :class:`TransportError` when the server refuses them (a node certificate:
    ``permission denied``); :class:`InputError` for a bad name or key.
    """

    def __init__(self, client: Client, cluster: str, *, timeout: float) -> None:
        self.client = client
        self.cluster = cluster
        self.bucket = roster_bucket(cluster)
        self.timeout = timeout
        self.tls = False
        self._js = client.jetstream(timeout=timeout)
        self._denied: asyncio.Queue[str] = asyncio.Queue()

    @classmethod
    async def connect(
        cls,
        urls: str | Sequence[str],
        *,
        cluster: str,
        tls: TlsFiles | ssl.SSLContext | None = None,
        timeout: float = 5.0,
        name: str = "roster",
    ) -> RosterBucket:
        """Connect to ``urls`` (as :func:`connect_nats`) for the roster of ``cluster``."""
        roster_bucket(cluster)
        bus = await connect_nats(urls, name=name, tls=tls, max_reconnect_attempts=2)
        out = cls(bus.client, cluster, timeout=timeout)
        out.tls = tls is not None
        bus.on_error(out._on_error)
        return out

    def _on_error(self, exc: Exception) -> None:
        text = str(exc)
        if "permissions violation" in text.lower():
            self._denied.put_nowait(text.removeprefix("nats: "))

    async def _guarded(self, operation: Awaitable[T], what: str) -> T:
        """Run ``operation``; a permission violation reported meanwhile ends it at once."""
        while not self._denied.empty():
            self._denied.get_nowait()
        work = asyncio.ensure_future(operation)
        denied = asyncio.ensure_future(self._denied.get())
        try:
            async with asyncio.timeout(self.timeout + 1.0):
                done, _ = await asyncio.wait({work, denied}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise TransportError(f"roster {self.bucket}: {what}: no answer in time") from None
        finally:
            for task in (work, denied):
                task.cancel()
        if denied in done and work not in done:
            raise TransportError(
                f"roster {self.bucket}: {what}: refused by the server ({denied.result()}); "
                "only an admin certificate (certs issue NAME --admin) may write the roster"
            )
        try:
            return work.result()
        except nats.js.errors.BucketNotFoundError:
            raise _NoBucket(
                f"roster {self.bucket}: no such bucket on the servers: an admin creates it "
                "with `becomingone roster add`"
            ) from None
        except (nats.errors.Error, OSError) as exc:
            raise TransportError(f"roster {self.bucket}: {what}: {exc or type(exc)}") from exc

    async def _kv(self, *, create: bool, replicas: int = 1) -> Any:
        """The bucket (created first when ``create`` and it is absent)."""
        try:
            return await self._guarded(self._js.key_value(self.bucket), "open")
        except _NoBucket:
            if not create:
                raise
        config = api.KeyValueConfig(
            bucket=self.bucket,
            history=HISTORY,
            replicas=replicas,
            description=f"roster of cluster {self.cluster}: node id -> Ed25519 public key (hex)",
        )
        return await self._guarded(self._js.create_key_value(config), "create")

    async def members(self) -> KeyRoster:
        """The roster now (empty when the bucket does not exist yet)."""
        try:
            kv = await self._kv(create=False)
        except _NoBucket:
            return KeyRoster()
        entries = await self._guarded(_read_all(kv, self.timeout), "read")
        roster, _ = _apply(KeyRoster(), entries)
        return roster

    async def put(self, node_id: str, public_key: bytes, *, replicas: int = 1) -> bytes | None:
        """Set ``node_id``'s key (creating the bucket if needed); returns the key it replaced."""
        key = _kv_key(node_id)
        if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_BYTES:
            raise InputError("pub", f"must be a {PUBLIC_KEY_BYTES}-byte Ed25519 public key")
        current = await self.members()
        holder = current.node_of(public_key)
        if holder is not None and holder != node_id:
            raise InputError("pub", f"this key is already {holder!r}'s (one identity per cell)")
        kv = await self._kv(create=True, replicas=replicas)
        await self._guarded(kv.put(key, public_key.hex().encode()), f"put {node_id}")
        return current.get(node_id)

    async def join(self, node_id: str, public_key: bytes) -> KeyRoster:
        """Add ``node_id`` unless present with this key; a name held by another key is an
        :class:`InputError` (``--name``). Returns the roster after the change."""
        current = await self.members()
        held = current.get(node_id)
        if held == public_key:
            return current
        if held is not None:
            raise InputError("--name", f"{node_id!r} is in {self.bucket} with another key")
        await self.put(node_id, public_key)
        return current.with_member(node_id, public_key)

    async def remove(self, node_id: str) -> bytes:
        """Remove ``node_id``; returns its key. :class:`InputError` if it is not a member."""
        key = _kv_key(node_id)
        current = await self.members()
        if node_id not in current:
            raise InputError("name", f"{node_id!r} is not in {self.bucket}")
        kv = await self._kv(create=False)
        await self._guarded(kv.delete(key), f"remove {node_id}")
        return current[node_id]

    async def aclose(self) -> None:
        """Close the connection."""
        with contextlib.suppress(nats.errors.Error):
            await self.client.close()


async def _read_all(kv: Any, timeout: float) -> list[Any]:
    """Every current entry of ``kv``, complete (see :func:`kv_entries`)."""
    return await kv_entries(kv, timeout)


def _apply(roster: KeyRoster, entries: Sequence[Any]) -> tuple[KeyRoster, int]:
    """``roster`` after the KV ``entries`` (puts and deletes); also how many were bad."""
    members: dict[str, bytes] = dict(roster)
    bad = 0
    for entry in entries:
        if entry.operation in ("DEL", "PURGE"):
            members.pop(entry.key.replace("=", ":"), None)
            continue
        try:
            node_id, public = decode_member(entry.key, entry.value or b"")
            roster_after = KeyRoster({**members, node_id: public})
        except InputError:
            bad += 1
            continue
        members = dict(roster_after)
    return KeyRoster(members), bad


class RosterWatch:
    """A running node's roster, fed by a KV watch on its bus (``changed()``/``read()``).

    :meth:`start` binds the bucket, reads every current member and keeps watching; each
    change marks the roster changed for the node's next tick.
    """

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.bucket = roster_bucket(cluster)
        self.bad_entries = 0
        #: The JetStream domain the bucket was read through (None: the local ``$JS.API``).
        self.domain: str | None = None
        self._roster = KeyRoster()
        self._changed = True
        self._watcher: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def where(self) -> str:
        """Where the roster lives, for messages."""
        return f"the roster bucket {self.bucket}"

    async def start(self, bus: NatsBus, *, timeout: float = 5.0) -> KeyRoster:
        """Read the bucket and start watching it; :class:`TransportError` if it is absent."""
        try:
            async with asyncio.timeout(timeout + 1.0):
                try:
                    kv = await bus.client.jetstream(timeout=timeout).key_value(self.bucket)
                except nats.js.errors.ServiceUnavailableError:
                    # no JetStream answers $JS.API here: behind a relay (a leaf server), the
                    # cluster's JetStream answers under its domain across the leaf link
                    js = bus.client.jetstream(timeout=timeout, domain=JS_DOMAIN)
                    kv = await js.key_value(self.bucket)
                    self.domain = JS_DOMAIN
                self._watcher = await kv.watchall()
                entries = []
                while (entry := await self._watcher.updates(timeout=timeout)) is not None:
                    entries.append(entry)
        except nats.js.errors.BucketNotFoundError:
            raise TransportError(
                f"no roster bucket {self.bucket} on the servers: an admin creates it with "
                "`becomingone roster add NAME --pub node.pub`"
            ) from None
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            raise TransportError(f"cannot read {self.where}: {exc or type(exc)}") from exc
        self._take(entries)
        self._task = asyncio.create_task(self._follow(), name=f"watch {self.bucket}")
        return self._roster

    def _take(self, entries: Sequence[Any]) -> None:
        roster, bad = _apply(self._roster, entries)
        self.bad_entries += bad
        if roster != self._roster:
            self._roster, self._changed = roster, True

    async def _follow(self) -> None:
        async for entry in self._watcher:
            if entry is not None:
                self._take([entry])

    def changed(self) -> bool:
        """True the first time and whenever the roster changed since the last call."""
        out, self._changed = self._changed, False
        return out

    def read(self) -> KeyRoster:
        """The roster as last heard."""
        return self._roster

    async def aclose(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()
