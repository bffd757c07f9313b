"""Choir ledger throughput: signed transactions per second with the invariant checked.

Each round is three transactions on one thread — a co-author's post, an outsider's spec
(stake 50) and the co-author's vote that decides it (denied: stake to the thread). Clients
sign beforehand; the timed part is what a server does with each one: parse the JSON and verify
the actor's signature, then one database transaction that runs the rules, writes the effects
and a signed chain record and head, and checks treasury + Σ wallets + Σ threads + Σ escrow =
supply before it commits. The rate window is one second so the price stays at S0/2 however
rich the thread grows (the price formula is not what is measured).

Baselines, measured in the same run: the same number of bare SQLite write transactions (BEGIN
IMMEDIATE, one INSERT, COMMIT; WAL, synchronous=NORMAL like the ledger) and the ledger's
crypto alone (verify a transaction, sign a chain record and head). The ratio columns are each rate
over the bare-transaction rate and over the crypto-alone rate (the ceiling). PostgreSQL runs
on a throwaway server started for the run (initdb + pg_ctl on a loopback port, fsync on,
stopped by PID), TCP on 127.0.0.1: once as configured (each commit waits for its WAL fsync)
and once with ``synchronous_commit=off`` ("pg async": the analogue of SQLite's
``synchronous=NORMAL``, where a crash of the machine may lose the last commits but never
leaves one half-applied).

The content store (``--no-store`` skips it): sentence embeddings per second of the MiniLM
model of the ``text`` extra with one torch thread, one sentence per call (batch 1) and 32 per
call (batch 32), against the lexical fallback in the same run; local-mode Qdrant writes one
point per call against one batch, on the run's disk; and priors search (top 5 among published
messages, a status filter) p50/p99 over N stored messages (100 000; ``--quick``: 5 000)
against a NumPy brute-force dot product over the same matrix (local mode runs the first 20
queries only above 10 000 messages: it takes seconds per query there). The stored vectors are
precomputed random unit vectors of the model's size (a seeded normal sample, normalised):
search cost depends on their number and size, not their meaning, and embedding 100 000 texts
would take ten minutes. They are loaded in batches of 1000 into a local-mode store on tmpfs
(``/dev/shm`` when there is one; local mode commits per point, which on disk would take 10-30
minutes), and, when ``qdrant-edge-py`` is installed, into a qdrant-edge shard (Qdrant's
embedded engine: a keyword index on status, HNSW built by ``optimize``) searched with the same
queries, as it comes, with ``hnsw_ef=512`` and exact; recall@5 is against the exact top 5
(random vectors are HNSW's worst case: every point is nearly as far as every other). Then the
same through Choir's default content store, :class:`EdgeStore` (the adapter ``choir up``
opens, on the run's disk): ``put_messages`` in batches of 1000 and ``search`` (exact).

Vote-to-event latency over a thread's WebSocket (``--no-ws`` skips it): ``choir up``'s app
served on a loopback port by a thread of its own, N subscribers on the thread's WebSocket
(8; ``--quick``: 2), and V votes (200; ``--quick``: 30), each a deny of a fresh pending spec
POSTed by the co-author: the latency is from just before the POST to each subscriber's
receiving the ``vote`` frame; p50/p99 over every (vote, subscriber), and the p99 of the slowest
subscriber per vote. Baseline in the same run: the POST's own round trip (the vote committed
and answered), so the ratio is what the event path adds on top of the write.

Run: ``.venv/bin/python bench/choir.py [--quick] [--rounds N] [--no-postgres] [--no-store]
[--no-ws] [--subscribers N] [--votes N] [--json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.choir.pgserver

from tests.choir.helpers import Community
from tests.choir.pgserver import find_bin, start_postgres

from becomingone.choir import (
    Ledger,
    PostgresLedger,
    Rules,
    SqliteLedger,
    Transaction,
    TxKind,
    content_hash,
)
from becomingone.choir.edge import EdgeStore
from becomingone.choir.store import PUBLISHED, QdrantStore, StoredMessage
from becomingone.ingest.text import EMBEDDING_DIM, embed_messages, model_available
from becomingone.keys import NodeKey
from becomingone.witnessing import Level, WitnessChain

RULES = Rules(join_grant=10_000_000, rate_window=1.0)
KEY = NodeKey.from_seed(b"\x05" * 32)


def round_docs(c: Community, rounds: int) -> list[dict[str, Any]]:
    """The signed transactions of ``rounds`` rounds, as the JSON a client would send."""
    docs = []
    for i in range(rounds):
        post = {"thread": "t1", "message": f"m{i}", "content_hash": content_hash(f"note {i}")}
        spec = {"thread": "t1", "spec": f"s{i}", "content_hash": content_hash(f"s{i}"), "stake": 50}
        docs += [
            c.tx("ada", TxKind.POST, post).to_json(),
            c.tx("bob", TxKind.SUBMIT, spec).to_json(),
            c.tx("ada", TxKind.VOTE, {"spec": f"s{i}", "approve": False}).to_json(),
        ]
    return docs


def ledger_rate(ledger: Ledger, rounds: int) -> tuple[float, bool]:
    """Transactions/s the ledger accepts (parse + verify the signature + apply + commit) over
    ``rounds`` rounds of post + submit + vote; and the final chain and invariant check."""
    c = Community(ledger, now=1_000.0)
    c.join("ada", "bob")
    c.thread("ada")
    docs = round_docs(c, rounds)
    start = time.perf_counter()
    for i, doc in enumerate(docs):
        ledger.submit(Transaction.from_json(doc), now=1_000.0 + i * 0.001)
    elapsed = time.perf_counter() - start
    ok = ledger.verify().ok and ledger.totals().ok
    return len(docs) / elapsed, ok


def bare_sqlite_rate(path: Path, n: int) -> float:
    """Write transactions/s of one INSERT each (the ledger's pragmas)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)")
    start = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, ?)", (i, "x" * 400))
        db.execute("COMMIT")
    rate = n / (time.perf_counter() - start)
    db.close()
    return rate


def crypto_rate(n: int) -> float:
    """The ledger's signatures alone: verify a transaction, sign its chain record and head."""
    user = NodeKey.from_seed(b"\x06" * 32)
    chain = WitnessChain(KEY)
    body = {"thread": "t1", "message": "m", "content_hash": content_hash("x")}
    docs = [Transaction.sign(user, TxKind.POST, body, tx_id=f"x{i}").to_json() for i in range(n)]
    start = time.perf_counter()
    for i, doc in enumerate(docs):
        tx = Transaction.from_json(doc)  # verifies the actor's signature
        chain.append(Level.MESO, "choir.post", tx.to_json(), now=float(i))
        chain.head()
    return n / (time.perf_counter() - start)


def _sentences(n: int) -> list[str]:
    words = [
        "tide",
        "moon",
        "bread",
        "harbour",
        "storm",
        "window",
        "field",
        "theta",
        "phase",
        "choir",
        "voice",
        "light",
    ]
    return [" ".join(words[(i * k) % len(words)] for k in range(1, 9)) + f" {i}" for i in range(n)]


def embed_rates(n: int) -> dict[str, float]:
    """Sentences per second: the model (if installed; loaded before timing) one sentence per
    call (batch 1) and 32 per call (batch 32), with one torch thread; the lexical baseline."""
    texts = _sentences(n)
    out: dict[str, float] = {}
    t = time.perf_counter()
    embed_messages(texts, backend="lexical")
    out["lexical embeddings/s"] = n / (time.perf_counter() - t)
    if model_available():
        import torch  # one thread: two collapse when another process holds a core

        before = torch.get_num_threads()
        torch.set_num_threads(1)
        embed_messages(texts[:2], backend="model")  # load the model outside the timing
        for batch in (1, 32):
            t = time.perf_counter()
            for start in range(0, n, batch):
                embed_messages(texts[start : start + batch], backend="model")
            out[f"model embeddings/s, batch {batch}"] = n / (time.perf_counter() - t)
        torch.set_num_threads(before)
    return out


def _stored(i: int) -> StoredMessage:
    status = PUBLISHED if i % 4 else "pending"
    return StoredMessage(
        thread_id=f"t{i % 50}",
        message_id=f"m{i}",
        author="a",
        content_hash="0" * 64,
        status=status,
        created_at=float(i),
        text=f"message {i}",
    )


def _unit_vectors(n: int) -> NDArray[np.float64]:
    """``n`` random unit vectors of the model's size (seeded): search cost depends on their
    number and size, not their meaning."""
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(n, EMBEDDING_DIM))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def write_rates(tmp: Path, vectors: NDArray[np.float64]) -> dict[str, float]:
    """Local-mode writes on the data dir's disk: one point per call against one batch."""
    store = QdrantStore(path=tmp / "writes", dim=EMBEDDING_DIM)
    single = min(len(vectors) // 2, 200)
    out: dict[str, float] = {}
    t = time.perf_counter()
    for i in range(single):
        store.put_messages([(_stored(i), vectors[i])])
    out["store writes/s, one per call"] = single / (time.perf_counter() - t)
    t = time.perf_counter()
    store.put_messages([(_stored(i), vectors[i]) for i in range(single, 2 * single)])
    out["store writes/s, one batch"] = single / (time.perf_counter() - t)
    store.close()
    return out


def _ms(values: list[float]) -> tuple[float, float]:
    return 1000 * float(np.percentile(values, 50)), 1000 * float(np.percentile(values, 99))


def search_rates(
    where: Path, disk: Path, vectors: NDArray[np.float64], queries: int
) -> dict[str, float]:
    """Priors search (top 5, status filter) in local-mode Qdrant loaded in batches of 1000
    under ``where`` (tmpfs when there is one: local mode commits per point), against NumPy
    brute force over the same matrix; and, if qdrant-edge is installed, a bare qdrant-edge
    shard (under ``where``) and Choir's :class:`EdgeStore` adapter (under ``disk``)."""
    n = len(vectors)
    store = QdrantStore(path=where / "search", dim=EMBEDDING_DIM)
    out: dict[str, float] = {}
    t = time.perf_counter()
    for start in range(0, n, 1000):
        stop = min(n, start + 1000)
        store.put_messages([(_stored(i), vectors[i]) for i in range(start, stop)])
    out["local mode load s"] = time.perf_counter() - t
    qs = np.random.default_rng(11).normal(size=(queries, EMBEDDING_DIM))
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    published = np.array([i % 4 != 0 for i in range(n)])
    lat, brute, truth = [], [], []
    slow = queries if n <= 10_000 else min(queries, 20)  # local mode: seconds per query here
    for j, q in enumerate(qs):
        if j < slow:
            t = time.perf_counter()
            store.search(q, k=5, statuses=[PUBLISHED, "approved"])
            lat.append(time.perf_counter() - t)
        t = time.perf_counter()
        scores = np.where(published, vectors @ q, -np.inf)
        truth.append(set(np.argpartition(-scores, 5)[:5].tolist()))
        brute.append(time.perf_counter() - t)
    store.close()
    out["local mode queries"] = float(slow)
    out["local mode search p50 ms"], out["local mode search p99 ms"] = _ms(lat)
    out["numpy brute p50 ms"], out["numpy brute p99 ms"] = _ms(brute)
    try:
        import qdrant_edge  # noqa: F401
    except ImportError:
        return out
    out.update(edge_rates(where / "edge", vectors, qs, truth))
    out.update(adapter_rates(disk / "edge-store", vectors, qs, truth))
    return out


def adapter_rates(
    where: Path, vectors: NDArray[np.float64], qs: NDArray[np.float64], truth: list[set[int]]
) -> dict[str, float]:
    """Choir's content store as ``choir up`` opens it by default (:class:`EdgeStore`, on the
    run's disk): loaded through ``put_messages`` in batches of 1000, searched through
    ``ContentStore.search`` (exact, payloads decoded into hits); recall@5 against the exact
    top 5."""
    store = EdgeStore(path=where, dim=EMBEDDING_DIM)
    out: dict[str, float] = {}
    t = time.perf_counter()
    for start in range(0, len(vectors), 1000):
        stop = min(len(vectors), start + 1000)
        store.put_messages([(_stored(i), vectors[i]) for i in range(start, stop)])
    out["edge store load s"] = time.perf_counter() - t
    lat, hits = [], 0
    for q, exact in zip(qs, truth, strict=True):
        t = time.perf_counter()
        found = store.search(q, k=5, statuses=[PUBLISHED, "approved"])
        lat.append(time.perf_counter() - t)
        hits += len(exact & {int(h.message.message_id[1:]) for h in found})
    store.close()
    out["edge store search p50 ms"], out["edge store search p99 ms"] = _ms(lat)
    out["edge store recall@5"] = hits / (5 * len(qs))
    return out


def edge_rates(
    where: Path, vectors: NDArray[np.float64], qs: NDArray[np.float64], truth: list[set[int]]
) -> dict[str, float]:
    """The same search in a qdrant-edge shard: a keyword index on status, batches of 1000,
    then ``optimize`` (which builds the HNSW index past its threshold); recall@5 against the
    exact top 5."""
    import qdrant_edge as qe

    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=EMBEDDING_DIM, distance=qe.Distance.Cosine)
    )
    shard = qe.EdgeShard.create(str(where), config)
    out: dict[str, float] = {}
    t = time.perf_counter()
    shard.update(qe.UpdateOperation.create_field_index("status", qe.PayloadSchemaType.Keyword))
    for start in range(0, len(vectors), 1000):
        points = [
            qe.Point(id=i, vector=vectors[i].tolist(), payload={"status": _stored(i).status})
            for i in range(start, min(len(vectors), start + 1000))
        ]
        shard.update(qe.UpdateOperation.upsert_points(points))
    shard.flush()
    out["edge load s"] = time.perf_counter() - t
    t = time.perf_counter()
    shard.optimize()
    out["edge optimize s"] = time.perf_counter() - t
    out["edge indexed vectors"] = float(shard.info().indexed_vectors_count)
    match = qe.MatchAny(any=[PUBLISHED, "approved"])
    flt = qe.Filter(must=[qe.FieldCondition(key="status", match=match)])
    modes = {
        "": None,
        " ef 512": qe.SearchParams(hnsw_ef=512),
        " exact": qe.SearchParams(exact=True),
    }
    for mode, params in modes.items():
        lat, hits = [], 0
        for q, exact in zip(qs, truth, strict=True):
            request = qe.QueryRequest(
                limit=5, query=qe.Query.Nearest(q.tolist()), filter=flt, params=params
            )
            t = time.perf_counter()
            found = shard.query(request)
            lat.append(time.perf_counter() - t)
            hits += len(exact & {int(p.id) for p in found})
        out[f"edge{mode} search p50 ms"], out[f"edge{mode} search p99 ms"] = _ms(lat)
        out[f"edge{mode} recall@5"] = hits / (5 * len(qs))
    shard.close()
    return out


def print_store(rows: dict[str, float], n: int) -> None:
    """The content-store figures with their in-run baselines."""
    print(f"content store: {n} stored messages (3 of 4 published), top-5 search")
    for name, value in rows.items():
        print(f"  {name:34} {value:10.2f}")
    if "model embeddings/s, batch 32" in rows:
        ratio = rows["model embeddings/s, batch 32"] / rows["model embeddings/s, batch 1"]
        print(f"  model batch 32 / batch 1: {ratio:.2f}x")
    if "store writes/s, one per call" in rows:
        one, batch = rows["store writes/s, one per call"], rows["store writes/s, one batch"]
        print(f"  batched / per-call writes: {batch / one:.1f}x")
    b50 = rows["numpy brute p50 ms"]
    print(
        f"  local mode search p50 / numpy brute p50: {rows['local mode search p50 ms'] / b50:.1f}x"
    )
    for mode in ("", " ef 512", " exact", " store"):
        if f"edge{mode} search p50 ms" in rows:
            ratio = rows[f"edge{mode} search p50 ms"] / b50
            print(f"  edge{mode} search p50 / numpy brute p50: {ratio:.2f}x")


class _Served(threading.Thread):
    """``choir up``'s app on a free loopback port, on this thread's own event loop."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(daemon=True)
        from becomingone.api import ApiSettings, create_app
        from becomingone.api.choir import ChoirService
        from becomingone.choir import ChoirHome
        from becomingone.ingest.text import lexical_embedding

        home = ChoirHome(data_dir, rules=RULES)
        self.service = ChoirService(home, embed=(lexical_embedding, "lexical"))
        settings = ApiSettings(rate_per_second=1e6, rate_burst=1_000_000)
        self.app = create_app(None, settings, choir=self.service)
        self.ready = threading.Event()
        self.url = ""

    def run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from becomingone.api import ApiServer

        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        async with ApiServer(self.app, "127.0.0.1", 0) as server:
            self.url = server.url
            self.ready.set()
            await self.stop.wait()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.join(timeout=15)
        self.service.close()


def _quantiles(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


async def _one_vote(
    http: Any, url: str, spec: str, auth: dict[str, str], sockets: list[Any]
) -> tuple[float, list[float]]:
    """POST a deny of ``spec``: (its round trip, each socket's time to the vote frame)."""
    t0 = time.perf_counter()

    async def seen(ws: Any) -> float:
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "vote" and frame["data"]["spec_id"] == spec:
                return time.perf_counter() - t0

    async def answered() -> float:
        (await http.post(url, json={"choice": "deny"}, headers=auth)).raise_for_status()
        return time.perf_counter() - t0

    post, *got = await asyncio.gather(answered(), *(seen(ws) for ws in sockets))
    return post, list(got)


async def _ws_run(url: str, auth: dict[str, dict[str, str]], subscribers: int, votes: int) -> Any:
    import httpx
    import websockets

    api = f"{url}/api/v1/choir"
    async with httpx.AsyncClient(timeout=30) as http:
        thread = (
            await http.post(f"{api}/threads", json={"title": "bench"}, headers=auth["ada"])
        ).json()
        ws_url = "ws" + api.removeprefix("http") + f"/threads/{thread['id']}/events"
        sockets = [await websockets.connect(ws_url) for _ in range(subscribers)]
        for ws in sockets:  # up to the resumed marker
            while json.loads(await ws.recv())["type"] != "resumed":
                pass
        each, slowest, posts = [], [], []
        try:
            for i in range(votes):
                r = await http.post(
                    f"{api}/threads/{thread['id']}/specs",
                    json={"text": f"spec {i}"},
                    headers=auth["bob"],
                )
                spec = r.json()["id"]
                post, got = await _one_vote(
                    http, f"{api}/specs/{spec}/votes", spec, auth["ada"], sockets
                )
                posts.append(post)
                each += got
                slowest.append(max(got))
        finally:
            for ws in sockets:
                await ws.close()
    return {
        "event": _quantiles(each),
        "slowest subscriber": _quantiles(slowest),
        "POST round trip": _quantiles(posts),
    }


def ws_latency(tmp: Path, subscribers: int, votes: int) -> dict[str, dict[str, float]]:
    """Vote-to-event latency over the WebSocket, and the POST round trip (the baseline)."""
    served = _Served(tmp / "ws")
    auth = {}
    for name in ("ada", "bob"):
        _, token = served.service.add_user(name)
        auth[name] = {"Authorization": f"Bearer {token}"}
    served.start()
    served.ready.wait(30)
    try:
        return asyncio.run(_ws_run(served.url, auth, subscribers, votes))  # type: ignore[no-any-return]
    finally:
        served.close()


def print_ws(rows: dict[str, dict[str, float]], subscribers: int, votes: int) -> None:
    base = rows["POST round trip"]
    print(f"vote-to-event latency over the WebSocket ({votes} votes, {subscribers} subscribers)")
    print(f"{'':20} {'p50 ms':>8} {'p99 ms':>8} {'p50 x POST':>11} {'p99 x POST':>11}")
    for name, q in rows.items():
        p50, p99 = q["p50_ms"], q["p99_ms"]
        x50, x99 = p50 / base["p50_ms"], p99 / base["p99_ms"]
        print(f"{name:20} {p50:8.2f} {p99:8.2f} {x50:11.2f} {x99:11.2f}")


def _fast_dir() -> str | None:
    """tmpfs (``/dev/shm``) when there is one, else the default temporary directory."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred transactions")
    parser.add_argument("--rounds", type=int, help="rounds of 3 transactions (default 1000)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-store", action="store_true", help="skip the content store")
    parser.add_argument("--messages", type=int, help="stored messages (default 100000)")
    parser.add_argument("--no-ws", action="store_true", help="skip the WebSocket latency")
    parser.add_argument("--subscribers", type=int, help="WebSocket subscribers (default 8)")
    parser.add_argument("--votes", type=int, help="votes timed over the WebSocket (default 200)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    subscribers = args.subscribers or (2 if args.quick else 8)
    votes = args.votes or (30 if args.quick else 200)
    ws: dict[str, dict[str, float]] = {}
    rounds = args.rounds or (100 if args.quick else 1000)
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bare = bare_sqlite_rate(Path(tmp) / "bare.sqlite3", 3 * rounds)
        rows["crypto only"] = crypto_rate(3 * rounds)
        rows["bare sqlite tx"] = bare
        ledger = SqliteLedger(Path(tmp) / "ledger.sqlite3", KEY, rules=RULES, now=0.0)
        rows["ledger sqlite"], ok = ledger_rate(ledger, rounds)
        ledger.close()
        checks = {"sqlite": ok}
        n = args.messages or (5_000 if args.quick else 100_000)
        store: dict[str, float] = {}
        if not args.no_store:
            store = embed_rates(64 if args.quick else 512)
            vectors = _unit_vectors(n)
            store.update(write_rates(Path(tmp), vectors))
            with tempfile.TemporaryDirectory(dir=_fast_dir()) as fast:
                queries = 50 if args.quick else 500
                store.update(search_rates(Path(fast), Path(tmp), vectors, queries))
        if not args.no_ws:
            ws = ws_latency(Path(tmp), subscribers, votes)
    if not args.no_postgres and find_bin() is not None:
        server = start_postgres(fsync=True)
        try:
            pg = PostgresLedger(server.create_database(), KEY, rules=RULES, now=0.0)
            rows["ledger postgresql"], checks["postgresql"] = ledger_rate(pg, rounds)
            pg.close()
            # The analogue of SQLite's synchronous=NORMAL: commit without waiting for fsync.
            url = server.create_database() + "?options=-c%20synchronous_commit%3Doff"
            pg = PostgresLedger(url, KEY, rules=RULES, now=0.0)
            rows["ledger pg async"], checks["pg async"] = ledger_rate(pg, rounds)
            pg.close()
        finally:
            server.stop()
    if args.json:
        doc = {"rounds": rounds, "tx_per_s": rows, "verified": checks, "store": store, "ws": ws}
        print(json.dumps(doc))
        return
    print(f"{3 * rounds} transactions per store ({rounds} rounds of post + submit + vote)")
    crypto = rows["crypto only"]
    print(f"{'':20} {'tx/s':>10} {'x bare sqlite tx':>17} {'x crypto only':>14}")
    for name, rate in rows.items():
        print(f"{name:20} {rate:10.0f} {rate / bare:17.3f} {rate / crypto:14.3f}")
    print("chain and invariant verified after the run:", checks)
    if store:
        print_store(store, n)
    if ws:
        print_ws(ws, subscribers, votes)


if __name__ == "__main__":
    main()
