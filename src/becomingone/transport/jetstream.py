"""JetStream adapters of the storage protocols: a compare-and-set record on a KV bucket, an
append-only log on a one-subject stream and protocol state in one KV record, behind the same
synchronous interfaces as the SQLite and in-memory adapters.

Rule: the storage protocols are synchronous, so a :class:`JetStreamConnection` runs one asyncio
loop and one ``nats-py`` client on a background thread and every call blocks on it with a bound
(the JetStream request timeout plus a margin). Arguments are checked before anything is sent;
NATS errors are translated at this boundary: a lost compare-and-set into
:class:`~becomingone.errors.CasConflict`, everything else into
:class:`~becomingone.errors.StorageError`. Writes are never retried: a timeout leaves the
outcome unknown and says so.

Semantics that differ from the bare KV API, and how they are mapped:

- A revision is the bucket stream's sequence, so it grows across keys and deletes (as the
  protocol asks). A delete writes a tombstone (``KV-Operation: DEL``) whose sequence is the
  key's last subject sequence; KV's ``update(last=tombstone)`` would succeed on a deleted key.
  The protocol says a deleted key has no revision, so ``update`` and ``delete`` refuse unless
  the message at ``expected_revision`` is a live value of that key. This check is race-free: a
  sequence names one message forever, so if that message is a tombstone or another key's, no
  later state of the key can carry that revision. For the same reason the adapter remembers
  (boundedly) the revisions it has itself seen as live values (returned by ``create``,
  ``update`` and ``get``) and checks only other revisions with one extra request, so a
  read-modify-write loop costs one request per write. (A bucket deleted and re-created under a
  running adapter restarts its sequences: open a new adapter after that.)
- The ``actual`` revision of a :class:`~becomingone.errors.CasConflict` is read after the
  refused write, so under contention it may already be newer than the one that won.
- Reads go to the stream leader (no direct get), so a read after a write sees it on a
  replicated (R3) bucket too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import ssl
import struct
import threading
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.js import api

from becomingone.certs import TlsFiles
from becomingone.errors import BecomingOneError, CasConflict, InputError, StorageError
from becomingone.memory._checks import (
    check_bytes,
    check_index,
    check_key,
    check_limit,
    check_revision,
)
from becomingone.memory.protocols import Versioned

__all__ = [
    "JetStreamAppendLog",
    "JetStreamCasRecord",
    "JetStreamConnection",
    "JetStreamProtocolState",
    "kv_entries",
    "log_stream",
    "log_subject",
]

T = TypeVar("T")

#: Bucket and stream names: what JetStream accepts in both.
_NAME = re.compile(r"[-_A-Za-z0-9]{1,200}")
#: JetStream's "wrong last sequence" API error codes (per stream and per subject).
_WRONG_LAST = frozenset({10071, 10164})
#: Requests in flight at once when a read fetches many entries.
_READ_WINDOW = 256
#: Revisions a CasRecord remembers having seen as live values (oldest forgotten first).
_SEEN_MAX = 4096
_KV_OP = "KV-Operation"
_EXPECTED_LAST = "Nats-Expected-Last-Sequence"
_EXPECTED_LAST_SUBJECT = "Nats-Expected-Last-Subject-Sequence"


def _check_name(value: object, parameter: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InputError(
            parameter, f"must be 1-200 of [-_A-Za-z0-9] (a stream name), got {value!r}"
        )
    return value


def _check_timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 600:
        raise InputError("timeout", f"must be a number of seconds in (0, 600], got {value!r}")
    return float(value)


def _check_replicas(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise InputError("replicas", f"must be an integer in 1..5, got {value!r}")
    return value


def log_stream(name: str) -> str:
    """The stream of the append log ``name`` (unless given another)."""
    return f"LOG_{name}"


def log_subject(stream: str) -> str:
    """The one subject of the append-log stream ``stream`` (``LOG_<name>`` by default)."""
    return f"becomingone.log.{stream}"


def _servers(value: object) -> list[str]:
    urls = value.split(",") if isinstance(value, str) else value
    if not isinstance(urls, list | tuple) or not urls:
        raise InputError("servers", f"must be nats:// URLs, got {value!r}")
    for url in urls:
        if not isinstance(url, str) or not re.fullmatch(r"(nats|tls)://[^\s,/]+", url.strip()):
            raise InputError("servers", f"must be nats://HOST:PORT URLs, got {url!r}")
    return [str(u).strip() for u in urls]


async def kv_entries(kv: Any, timeout: float) -> list[Any]:
    """Every current entry of the KV bucket ``kv`` (the last value or delete marker of each
    key), complete as of the call.

    Reads until the entry at the stream's last sequence (taken first) has arrived, instead of
    stopping at nats.py's end-of-replay marker: that marker can come before entries already
    in flight (nats.py issue 842), and a read that stopped there missed keys.
    """
    state = (await kv.status()).stream_info.state
    if not state.messages:
        return []
    watcher = await kv.watchall()
    entries: list[Any] = []
    newest = 0
    try:
        while newest < state.last_seq:
            entry = await watcher.updates(timeout=timeout)
            if entry is not None:
                entries.append(entry)
                newest = max(newest, entry.revision or 0)
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()
    return entries


class JetStreamConnection:
    """One ``nats-py`` connection and its asyncio loop on a daemon thread.

    Parameters
    ----------
    servers
        ``nats://HOST:PORT`` URLs (a list, or one string with commas), tried in the given order
        on connect and reconnect.
    timeout
        Seconds a JetStream request may take; every blocking call waits at most this plus one
        second. The 0.5–5 s range suits loopback and a LAN.
    tls
        For servers started with TLS: a client context, or the files to build one from
        (:meth:`~becomingone.certs.TlsFiles.named`, checked before connecting; an ``admin``
        certificate to write buckets, since a ``node`` one may only read JetStream).

    Several adapters may share one connection; an adapter given URLs opens (and closes) its own.
    The server's permission violations on it are kept in ``denied``; a request that times out
    after one says it was refused, naming the subject.
    ``js`` is the ``nats-py`` JetStream context, for administration outside the protocols.
    """

    def __init__(
        self,
        servers: str | Sequence[str],
        *,
        timeout: float = 5.0,
        tls: ssl.SSLContext | TlsFiles | None = None,
    ) -> None:
        urls = _servers(servers)
        self.timeout = _check_timeout(timeout)
        if isinstance(tls, TlsFiles):
            tls = tls.client_context()
        elif tls is not None and not isinstance(tls, ssl.SSLContext):
            raise InputError(
                "tls", f"must be an ssl.SSLContext or TlsFiles, got {type(tls).__name__}"
            )
        self._tls = tls
        #: Permission violations the server reported on this connection (newest last).
        self.denied: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="becomingone-jetstream", daemon=True
        )
        self._thread.start()
        self._closed = False
        try:
            self._nc = self.run(self._connect(urls), "connect to " + ",".join(urls))
        except BaseException:
            self._stop_loop()
            raise
        self.js = self._nc.jetstream(timeout=self.timeout)

    async def _connect(self, urls: list[str]) -> Any:
        async def quiet(exc: Exception) -> None:
            text = str(exc)
            if "permissions violation" in text.lower():
                self.denied.append(text.removeprefix("nats: "))

        return await nats.connect(
            urls,
            connect_timeout=max(1, round(self.timeout)),
            dont_randomize=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            error_cb=quiet,
            tls=self._tls,
        )

    def run(self, coroutine: Coroutine[Any, Any, T], what: str) -> T:
        """Run ``coroutine`` on the connection's loop and wait for it (bounded).

        ``what`` names the operation in a :class:`~becomingone.errors.StorageError`.
        """
        if self._closed:
            coroutine.close()
            raise StorageError(f"jetstream: {what}: the connection is closed")
        denied = len(self.denied)
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(self.timeout + 1.0)
        except BecomingOneError:
            raise
        except (TimeoutError, concurrent.futures.TimeoutError) as err:
            future.cancel()
            late = f"no answer in time ({self.timeout:g} s a request)"
            if len(self.denied) > denied:  # the server refused the request: say so
                late = f"refused by the server ({self.denied[-1]})"
            raise StorageError(f"jetstream: {what}: {late}") from err
        except (nats.errors.Error, OSError) as err:
            raise StorageError(f"jetstream: {what}: {err}") from err

    def close(self) -> None:
        """Close the connection and stop the loop's thread (idempotent)."""
        if self._closed:
            return
        try:
            self.run(self._nc.close(), "close")
        except StorageError:
            pass
        finally:
            self._closed = True
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._closed = True
        with contextlib.suppress(BaseException):
            asyncio.run_coroutine_threadsafe(_cancel_tasks(), self._loop).result(self.timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=self.timeout + 1.0)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> JetStreamConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _cancel_tasks() -> None:
    """Cancel every other task of the running loop and wait for them to finish."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class _Adapter:
    """Owns its connection when given URLs; shares it when given a :class:`JetStreamConnection`."""

    def __init__(
        self, servers: str | Sequence[str] | JetStreamConnection, timeout: float | None
    ) -> None:
        if isinstance(servers, JetStreamConnection):
            if timeout is not None:
                raise InputError("timeout", "is the shared connection's: set it there")
            self.connection, self._owned = servers, False
        else:
            self.connection = JetStreamConnection(
                servers, timeout=5.0 if timeout is None else timeout
            )
            self._owned = True

    def _open(self, coroutine: Coroutine[Any, Any, T], what: str) -> T:
        try:
            return self.connection.run(coroutine, what)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection if this adapter opened it."""
        if self._owned:
            self.connection.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wrong_last(err: nats.js.errors.APIError) -> bool:
    return err.err_code in _WRONG_LAST


class JetStreamCasRecord(_Adapter):
    """A :class:`~becomingone.memory.protocols.CasRecord` on the JetStream KV bucket ``bucket``
    (created with history 1 and ``replicas`` copies if it does not exist).

    The revision of a record is the sequence of its message in the bucket's stream
    (``KV_<bucket>``); see the module docstring for how deletes are mapped.
    """

    def __init__(
        self,
        servers: str | Sequence[str] | JetStreamConnection,
        bucket: str = "kv",
        *,
        replicas: int = 1,
        timeout: float | None = None,
    ) -> None:
        self.bucket = _check_name(bucket, "bucket")
        self.stream = f"KV_{bucket}"
        replicas = _check_replicas(replicas)
        super().__init__(servers, timeout)
        self._js = self.connection.js
        self._seen: dict[int, str] = {}  # revision -> subject; touched on the loop thread only
        self._open(self._ensure(replicas), f"open bucket {bucket}")

    async def _ensure(self, replicas: int) -> None:
        try:
            await self._js.key_value(self.bucket)
        except nats.js.errors.BucketNotFoundError:
            await self._js.create_key_value(bucket=self.bucket, history=1, replicas=replicas)

    def _subject(self, key: str) -> str:
        return f"$KV.{self.bucket}.{key}"

    def get(self, key: str) -> Versioned | None:
        """(value, revision) or ``None``."""
        subject = self._subject(check_key(key))
        return self.connection.run(self._live(subject), f"get {key}")

    def create(self, key: str, value: bytes) -> int:
        """Store a new key (also one that was deleted)."""
        subject, value = self._subject(check_key(key)), check_bytes(value, "value")
        return self.connection.run(self._create(key, subject, value), f"create {key}")

    def update(self, key: str, value: bytes, expected_revision: int) -> int:
        """Replace a key at ``expected_revision``."""
        subject, value = self._subject(check_key(key)), check_bytes(value, "value")
        expected = check_revision(expected_revision)
        return self.connection.run(self._write(key, subject, value, expected, {}), f"update {key}")

    def delete(self, key: str, expected_revision: int) -> None:
        """Remove a key at ``expected_revision`` (a tombstone with a new revision)."""
        subject, expected = self._subject(check_key(key)), check_revision(expected_revision)
        tombstone = {_KV_OP: "DEL"}
        self.connection.run(self._write(key, subject, b"", expected, tombstone), f"delete {key}")

    def keys(self) -> list[str]:
        """The keys that hold a value now, sorted (not part of the protocol: a node lists the
        glyph records it may own when it starts)."""
        return self.connection.run(self._keys(), "list keys")

    async def _keys(self) -> list[str]:
        kv = await self._js.key_value(self.bucket)
        entries = await kv_entries(kv, self.connection.timeout)
        return sorted(e.key for e in entries if e.operation not in ("DEL", "PURGE"))

    async def _last(self, subject: str) -> tuple[api.RawStreamMsg, bool] | None:
        """The key's last message and whether it is a live value (not a tombstone)."""
        try:
            msg = await self._js.get_msg(self.stream, subject=subject)
        except nats.js.errors.NotFoundError:
            return None
        return msg, _is_value(msg)

    async def _live(self, subject: str) -> Versioned | None:
        last = await self._last(subject)
        if last is None or not last[1]:
            return None
        return Versioned(last[0].data or b"", self._saw(int(last[0].seq or 0), subject))

    def _saw(self, revision: int, subject: str) -> int:
        """Remember that ``revision`` is a live value of ``subject``; return it."""
        self._seen[revision] = subject
        if len(self._seen) > _SEEN_MAX:
            del self._seen[next(iter(self._seen))]
        return revision

    async def _actual(self, subject: str) -> int | None:
        live = await self._live(subject)
        return None if live is None else live.revision

    async def _publish(self, subject: str, value: bytes, headers: dict[str, str]) -> int | None:
        """The new revision, or ``None`` when the expected last sequence did not hold."""
        try:
            ack = await self._js.publish(subject, value, headers=headers)
        except nats.js.errors.APIError as err:
            if _wrong_last(err):
                return None
            raise
        return int(ack.seq)

    async def _create(self, key: str, subject: str, value: bytes) -> int:
        expected = 0
        for _ in range(8):
            headers = {_EXPECTED_LAST_SUBJECT: str(expected)}
            revision = await self._publish(subject, value, headers)
            if revision is not None:
                return self._saw(revision, subject)
            last = await self._last(subject)
            if last is not None and last[1]:
                raise CasConflict(key, None, int(last[0].seq or 0))
            expected = 0 if last is None else int(last[0].seq or 0)
        raise StorageError(f"jetstream: create {key}: the key kept changing under contention")

    async def _write(
        self, key: str, subject: str, value: bytes, expected: int, headers: dict[str, str]
    ) -> int:
        if self._seen.get(expected) != subject and not await self._is_live(subject, expected):
            raise CasConflict(key, expected, await self._actual(subject))
        revision = await self._publish(
            subject, value, {**headers, _EXPECTED_LAST_SUBJECT: str(expected)}
        )
        if revision is None:
            raise CasConflict(key, expected, await self._actual(subject))
        return revision if headers else self._saw(revision, subject)

    async def _is_live(self, subject: str, revision: int) -> bool:
        """Whether the message at ``revision`` is a live value of ``subject``."""
        try:
            msg = await self._js.get_msg(self.stream, seq=revision)
        except nats.js.errors.NotFoundError:
            return False
        return msg.subject == subject and _is_value(msg)


def _is_value(msg: api.RawStreamMsg) -> bool:
    """Whether a KV message holds a value (not a ``DEL`` or ``PURGE`` tombstone)."""
    return (msg.headers or {}).get(_KV_OP) not in ("DEL", "PURGE")


class JetStreamAppendLog(_Adapter):
    """An :class:`~becomingone.memory.protocols.AppendLog` on a JetStream stream with one subject.

    The index of an entry is its stream sequence; the stream (default ``LOG_<name>``, subject
    ``becomingone.log.<stream>``) is created with deletes and purges denied, so indexes stay
    gapless. ``name`` labels conflicts, like the other adapters.
    """

    def __init__(
        self,
        servers: str | Sequence[str] | JetStreamConnection,
        name: str = "log",
        *,
        stream: str | None = None,
        replicas: int = 1,
        timeout: float | None = None,
    ) -> None:
        self.name = check_key(name, "name")
        if stream is None:
            self.stream = _check_name(log_stream(name), "name")
        else:
            self.stream = _check_name(stream, "stream")
        self.subject = log_subject(self.stream)
        replicas = _check_replicas(replicas)
        super().__init__(servers, timeout)
        self._js = self.connection.js
        self._open(self._ensure(replicas), f"open stream {self.stream}")

    async def _ensure(self, replicas: int) -> None:
        try:
            info = await self._js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await self._js.add_stream(
                name=self.stream,
                subjects=[self.subject],
                num_replicas=replicas,
                deny_delete=True,
                deny_purge=True,
                discard=api.DiscardPolicy.NEW,
            )
            return
        if list(info.config.subjects or ()) != [self.subject]:
            raise StorageError(
                f"jetstream: stream {self.stream} exists with subjects "
                f"{info.config.subjects}, not [{self.subject}]"
            )

    def append(self, entry: bytes, *, expected_last: int | None = None) -> int:
        """Append one entry (iff the last index is ``expected_last``, when given)."""
        entry = check_bytes(entry, "entry")
        if expected_last is not None:
            check_index(expected_last, "expected_last", 0)
        return self.connection.run(self._append(entry, expected_last), f"append to {self.name}")

    def read(self, start: int = 1, limit: int | None = None) -> list[bytes]:
        """Entries from index ``start`` (fetched ``_READ_WINDOW`` requests at a time)."""
        start, limit = check_index(start, "start", 1), check_limit(limit)
        return self.connection.run(self._read(start, limit), f"read {self.name}")

    def last_index(self) -> int:
        """Newest index (0 when empty)."""
        return self.connection.run(self._last_index(), f"last index of {self.name}")

    async def _last_index(self) -> int:
        info = await self._js.stream_info(self.stream)
        return int(info.state.last_seq or 0)

    async def _append(self, entry: bytes, expected_last: int | None) -> int:
        headers = None if expected_last is None else {_EXPECTED_LAST: str(expected_last)}
        try:
            ack = await self._js.publish(self.subject, entry, headers=headers)
        except nats.js.errors.APIError as err:
            if expected_last is not None and _wrong_last(err):
                actual = await self._last_index()
                raise CasConflict(self.name, expected_last, actual, what="last index") from None
            raise
        return int(ack.seq)

    async def _read(self, start: int, limit: int | None) -> list[bytes]:
        last = await self._last_index()
        end = last if limit is None else min(last, start - 1 + limit)
        out: list[bytes] = []
        for first in range(start, end + 1, _READ_WINDOW):
            seqs = range(first, min(end, first + _READ_WINDOW - 1) + 1)
            msgs = await asyncio.gather(*(self._js.get_msg(self.stream, seq=s) for s in seqs))
            out += [m.data or b"" for m in msgs]
        return out


class JetStreamProtocolState:
    """A :class:`~becomingone.memory.protocols.ProtocolStateStore` in one record ``key`` of the
    KV bucket ``bucket``: every blob of one owner (a cell) in one value, so ``put_many`` is one
    compare-and-set and atomic. A write re-reads and retries when another writer got in first
    (last write wins per name, as the protocol says), at most 16 times.

    The value is the blobs sorted by name, each as a 2-byte name length, the name, a 4-byte value
    length and the value (big-endian). Several owners share a bucket under different keys.
    """

    ATTEMPTS = 16

    def __init__(
        self,
        servers: str | Sequence[str] | JetStreamConnection,
        bucket: str = "state",
        key: str = "protocol",
        *,
        replicas: int = 1,
        timeout: float | None = None,
    ) -> None:
        self.key = check_key(key)
        self._kv = JetStreamCasRecord(servers, bucket, replicas=replicas, timeout=timeout)
        self.connection = self._kv.connection

    def get(self, name: str) -> bytes | None:
        """The blob under ``name``."""
        return self._read()[0].get(check_key(name, "name"))

    def put(self, name: str, value: bytes) -> None:
        """Store one blob."""
        self.put_many({name: value})

    def put_many(self, blobs: Mapping[str, bytes]) -> None:
        """Store every blob in one compare-and-set, or none if one is invalid."""
        checked = {check_key(k, "name"): check_bytes(v, "value") for k, v in dict(blobs).items()}
        for _ in range(self.ATTEMPTS):
            stored, revision = self._read()
            value = _encode_blobs({**stored, **checked})
            try:
                if revision is None:
                    self._kv.create(self.key, value)
                else:
                    self._kv.update(self.key, value, revision)
                return
            except CasConflict:
                continue
        raise StorageError(f"jetstream: put {self.key}: lost {self.ATTEMPTS} races in a row")

    def names(self) -> list[str]:
        """Stored names, sorted."""
        return sorted(self._read()[0])

    def _read(self) -> tuple[dict[str, bytes], int | None]:
        record = self._kv.get(self.key)
        if record is None:
            return {}, None
        return _decode_blobs(record.value, f"{self._kv.bucket}/{self.key}"), record.revision

    def close(self) -> None:
        """Close the connection if this store opened it."""
        self._kv.close()

    def __enter__(self) -> JetStreamProtocolState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _encode_blobs(blobs: Mapping[str, bytes]) -> bytes:
    parts = []
    for name in sorted(blobs):
        raw = name.encode()
        parts += [
            struct.pack(">H", len(raw)),
            raw,
            struct.pack(">I", len(blobs[name])),
            blobs[name],
        ]
    return b"".join(parts)


def _decode_blobs(data: bytes, where: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    at = 0
    try:
        while at < len(data):
            (size,) = struct.unpack_from(">H", data, at)
            name = data[at + 2 : at + 2 + size].decode()
            at += 2 + size
            (size,) = struct.unpack_from(">I", data, at)
            out[name] = data[at + 4 : at + 4 + size]
            if len(out[name]) != size:
                raise ValueError("truncated value")
            at += 4 + size
    except (struct.error, UnicodeDecodeError, ValueError) as err:
        raise StorageError(f"jetstream: {where} is not protocol state ({err})") from None
    return out
