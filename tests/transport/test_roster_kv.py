"""The roster in a JetStream KV bucket on real nats-server processes: with TLS only an admin
certificate writes it (the server refuses a node's write, at once, and the roster is unchanged),
nodes read and watch it live; without TLS anyone may write (development mode). Also the user
permissions natsd writes, and JetStreamConnection over TLS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from becomingone.certs import TlsFiles, init_ca, issue_certificate
from becomingone.errors import InputError, StorageError, TransportError
from becomingone.keys import NodeKey
from becomingone.sync.roster import KeyRoster
from becomingone.transport import JetStreamCasRecord, JetStreamConnection, connect_nats
from becomingone.transport.natsd import NatsServers
from becomingone.transport.roster_kv import RosterBucket, RosterWatch, decode_member

pytestmark = pytest.mark.timeout(120)


def pub(seed: int) -> bytes:
    """A reproducible Ed25519 public key."""
    return NodeKey.from_seed(bytes([seed]) * 32).public_bytes


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cluster CA with the server certificate, an admin ``admin`` and nodes ``n1``, ``n2``."""
    folder = tmp_path_factory.mktemp("certs")
    init_ca(folder)
    issue_certificate(folder, "nats", server=True)
    issue_certificate(folder, "admin", admin=True)
    issue_certificate(folder, "n1")
    issue_certificate(folder, "n2")
    return folder


@pytest.fixture(scope="module")
def tls_server(certs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServers]:
    """One nats-server requiring client certificates, users mapped by role."""
    with NatsServers(
        tmp_path_factory.mktemp("nats-roster"), tls=TlsFiles.named(certs, "nats")
    ) as servers:
        yield servers


def test_config_maps_roles_to_users(tls_server: NatsServers) -> None:
    """The client tls block maps certificates to users (verify_and_map), the route block only
    verifies; the node user's publish list has no $KV and no stream-changing API."""
    text = Path(tls_server.specs[0].config).read_text()
    assert "verify_and_map: true" in text
    assert '"urn:becomingone:role:admin"' in text and '"urn:becomingone:role:node"' in text
    node = text[text.index('user: "urn:becomingone:role:node"') :]
    assert "$KV" not in node and "STREAM.CREATE" not in node and "STREAM.DELETE" not in node
    assert '"ssep.>"' in node and "STREAM.UPDATE" not in node and "PURGE" not in node


async def test_admin_writes_nodes_read_and_are_refused(
    certs: Path, tls_server: NatsServers
) -> None:
    """An admin adds two members; a node certificate reads them, but its put (a new member, and
    a replaced key) is refused by the server within a second, naming the permission; the roster
    is unchanged afterwards."""
    admin = await RosterBucket.connect(
        tls_server.urls, cluster="perm", tls=TlsFiles.named(certs, "admin")
    )
    node = await RosterBucket.connect(
        tls_server.urls, cluster="perm", tls=TlsFiles.named(certs, "n1")
    )
    try:
        assert await admin.put("n1", pub(1)) is None
        assert await admin.put("n2", pub(2)) is None
        expected = KeyRoster({"n1": pub(1), "n2": pub(2)})
        assert await node.members() == expected
        for name, key in (("evil", pub(9)), ("n2", pub(9))):
            start = time.monotonic()
            with pytest.raises(TransportError, match=r"refused by the server.*permissions"):
                await node.put(name, key)
            assert time.monotonic() - start < 2.0
        with pytest.raises(TransportError, match="refused by the server"):
            await node.remove("n1")
        assert await admin.members() == expected
    finally:
        await admin.aclose()
        await node.aclose()


async def test_a_node_cannot_delete_the_bucket(certs: Path, tls_server: NatsServers) -> None:
    """A node certificate's request to delete the roster's stream is a permission violation
    reported by the server (counted in the connection's errors); the bucket stays."""
    admin = await RosterBucket.connect(
        tls_server.urls, cluster="keep", tls=TlsFiles.named(certs, "admin")
    )
    bus = await connect_nats(tls_server.urls, name="n1", tls=TlsFiles.named(certs, "n1"))
    seen: list[Exception] = []
    bus.on_error(seen.append)
    try:
        await admin.put("n1", pub(1))
        js = bus.client.jetstream(timeout=1.0)
        with pytest.raises(Exception):  # noqa: B017 - the request times out after the violation
            await js.delete_key_value("roster_keep")
        assert any("permissions violation" in str(e) for e in seen)
        assert bus.stats["errors"] >= 1
        assert await admin.members() == KeyRoster({"n1": pub(1)})
    finally:
        await bus.aclose()
        await admin.aclose()


async def test_watch_follows_adds_replacements_and_removals(
    certs: Path, tls_server: NatsServers
) -> None:
    """A node's RosterWatch (on its own bus, node certificate) starts with the current members
    and sees an add, a key replaced and a removal live; a bad entry written by the admin is
    skipped and counted."""
    admin = await RosterBucket.connect(
        tls_server.urls, cluster="live", tls=TlsFiles.named(certs, "admin")
    )
    bus = await connect_nats(tls_server.urls, name="n1", tls=TlsFiles.named(certs, "n1"))
    watch = RosterWatch("live")
    try:
        await admin.put("n1", pub(1))
        assert await watch.start(bus) == KeyRoster({"n1": pub(1)})
        assert watch.changed() and not watch.changed()

        async def becomes(expected: dict[str, bytes]) -> None:
            for _ in range(100):
                if watch.changed() and watch.read() == KeyRoster(expected):
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"roster {dict(watch.read())} never became {expected}")

        await admin.put("n2", pub(2))
        await becomes({"n1": pub(1), "n2": pub(2)})
        await admin.put("n2", pub(3))
        await becomes({"n1": pub(1), "n2": pub(3)})
        await admin.remove("n1")
        await becomes({"n2": pub(3)})
        kv = await admin.client.jetstream().key_value("roster_live")
        await kv.put("bad", b"not hex")
        for _ in range(100):
            if watch.bad_entries:
                break
            await asyncio.sleep(0.02)
        assert watch.bad_entries == 1 and watch.read() == KeyRoster({"n2": pub(3)})
    finally:
        await watch.aclose()
        await bus.aclose()
        await admin.aclose()


async def test_watch_of_a_missing_bucket_says_who_creates_it(
    certs: Path, tls_server: NatsServers
) -> None:
    """A node whose cluster has no roster bucket gets one TransportError saying an admin
    creates it."""
    bus = await connect_nats(tls_server.urls, name="n1", tls=TlsFiles.named(certs, "n1"))
    try:
        with pytest.raises(TransportError, match=r"no roster bucket roster_none.*roster add"):
            await RosterWatch("none").start(bus)
    finally:
        await bus.aclose()


async def test_join_and_bad_input(certs: Path, tls_server: NatsServers) -> None:
    """join adds a new name, keeps the same (name, key), refuses a name held by another key and
    a key another member holds; removing a non-member, a bad name or a short key is an
    InputError."""
    admin = await RosterBucket.connect(
        tls_server.urls, cluster="join", tls=TlsFiles.named(certs, "admin")
    )
    try:
        await admin.join("a:1", pub(1))
        assert await admin.join("a:1", pub(1)) == KeyRoster({"a:1": pub(1)})
        with pytest.raises(InputError, match="another key"):
            await admin.join("a:1", pub(2))
        with pytest.raises(InputError, match="already 'a:1'"):
            await admin.put("b", pub(1))
        with pytest.raises(InputError, match="not in roster_join"):
            await admin.remove("b")
        with pytest.raises(InputError, match="name"):
            await admin.put("bad name", pub(3))
        with pytest.raises(InputError, match="pub"):
            await admin.put("c", b"short")
    finally:
        await admin.aclose()


def test_decode_member() -> None:
    """A bucket entry decodes to (node id, key), '=' back to ':'; anything else is an
    InputError naming the roster."""
    assert decode_member("a=1", pub(1).hex().encode()) == ("a:1", pub(1))
    for key, value in (("a", b"zz"), ("a", pub(1).hex().encode()[:-2]), ("a b", b"00" * 32)):
        with pytest.raises(InputError, match="roster"):
            decode_member(key, value)


def test_jetstream_connection_over_tls(certs: Path, tls_server: NatsServers) -> None:
    """JetStreamConnection takes TLS files: with the admin certificate a CAS record works;
    with a node certificate creating a bucket is refused (a StorageError naming the server's
    permission violation, bounded in time)."""
    with JetStreamConnection(tls_server.urls, tls=TlsFiles.named(certs, "admin")) as conn:
        record = JetStreamCasRecord(conn, bucket="tls_cas")
        rev = record.create("k", b"v")
        assert record.get("k").revision == rev
    start = time.monotonic()
    with (
        pytest.raises(StorageError, match=r"refused by the server \(permissions violation"),
        JetStreamConnection(tls_server.urls, tls=TlsFiles.named(certs, "n1"), timeout=1.0) as c,
    ):
        JetStreamCasRecord(c, bucket="tls_cas_node")
    assert time.monotonic() - start < 10.0
    with pytest.raises(InputError, match="tls"):
        JetStreamConnection(tls_server.urls, tls="certs")  # type: ignore[arg-type]


async def test_without_tls_anyone_writes(tmp_path: Path) -> None:
    """Development mode: on a server without TLS any client writes the roster."""
    with NatsServers(tmp_path) as servers:
        bucket = await RosterBucket.connect(servers.urls, cluster="dev")
        try:
            assert await bucket.put("n1", pub(1)) is None
            assert await bucket.members() == KeyRoster({"n1": pub(1)})
        finally:
            await bucket.aclose()
