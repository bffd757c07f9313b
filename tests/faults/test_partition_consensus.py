"""A network partition cut through NATS under five ``node --roles --serve`` processes: the
consensus never passes two conflicting proposals, and after the heal every node converges on
the one log.

Three ``nats-server`` processes whose routes all run through loopback TCP proxies the test
owns (:class:`~tests.natshelpers.TcpProxy`, one per ordered pair of servers: every
server solicits each other one through its own proxy; each server advertises a
route address nothing listens on, so no implicit route learned by gossip can bypass a proxy —
checked on every server's ``/routez``). The consensus log is the cluster's JetStream stream,
created with 3 replicas (a Raft group over the three servers) before the nodes start. Every
wait is bounded; every process started is stopped by pid and checked gone.
"""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from becomingone.cluster import Decision, RolePlan
from becomingone.errors import StorageError
from becomingone.runtime.launcher import node_name
from becomingone.runtime.node_partifacts import consensus_log_name
from becomingone.transport.jetstream import JetStreamAppendLog
from becomingone.transport.natsd import NatsServers
from tests.helpers import gone
from tests.natshelpers import TcpProxy, route_links, routed_to
from tests.runtime.test_node_partifacts import RoleFleet, chain, formed, wait_for
from tests.transport.test_jetstream_cluster import retried

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: node → the server (index) it connects to, and only to: two on n1, two on n2, one on n3,
#: round robin (the low names tend to take the Genesis, Validator and Integrator roles, so
#: they land on different servers). The cut isolates n1 or n2 (whichever splits the
#: proposers, below), so one side is 3 nodes on two servers and the other 2 on one.
HOMES = {node_name(0): 0, node_name(1): 1, node_name(2): 2, node_name(3): 0, node_name(4): 1}
#: Formations at most, each on fresh servers, until the roles allow a cut with a proposer on
#: each side and the Validator with the majority (:func:`choose_cut`).
TRIES = 4
#: Seconds the roles and term must stay unchanged before the cut.
STEADY = 2.0
#: Seconds from the cut until each side has proposed its plan and seen it decided in its own
#: view (genesis_timeout 1 s + a vote's deadline 2 s + ticks; the majority's log may first
#: elect a new stream leader when it was on the cut server: 4–6 s in test_server_faults.py).
CUT_BOUND = 20.0
#: Seconds from the heal until every node has applied the same log.
CONVERGE_BOUND = 30.0


@pytest.fixture
def black_hole() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a socket bound but not listening: a connection there is refused,
    and no other program can take the port while the test runs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"


def all_through_proxies(servers: NatsServers, proxies: dict[tuple[int, int], TcpProxy]) -> None:
    """Every route of every server is a proxy's: its remote port is a proxy's (the server
    connected to the proxy) or a port a proxy opened upstream (the proxy connected to it). A
    direct route would show the other server's cluster port or a port of its own. (A server
    lists a route as soon as it accepts it, a moment before the proxy notes its upstream
    port, so this is asked again for up to 5 s; nats-server 2.15 reports ``did_solicit`` true
    on both ends of a configured route, so that flag does not tell the two apart.)"""
    cluster = {s.cluster_port for s in servers.specs}

    def strays() -> list[tuple[str, str, int]]:
        ports = {p.port for p in proxies.values()}
        ports |= set().union(*(p.upstream_ports for p in proxies.values()))
        out = []
        for spec in servers.specs:
            links = route_links(spec.monitor_port)
            assert links, f"{spec.name} has no route"
            out += [(spec.name, r, p) for r, _, p in links if p not in ports or p in cluster]
        return out

    try:
        wait_for(lambda: not strays(), 5.0, "every route through a proxy")
    except AssertionError:
        raise AssertionError(f"routes not through a proxy: {strays()}") from None


def wait_routes(servers: NatsServers, want: list[set[str]], seconds: float = 15.0) -> float:
    """Wait until server i routes to exactly ``want[i]``; seconds it took."""
    start = time.monotonic()
    monitors = [s.monitor_port for s in servers.specs]
    wait_for(lambda: [routed_to(m) for m in monitors] == want, seconds, f"routes {want}")
    return time.monotonic() - start


def steady(f: RoleFleet) -> dict[str, dict[str, Any]]:
    """The rows once every node agrees on a Genesis and one term, Validators hold votes, and
    no node's role or term changed for :data:`STEADY` seconds."""
    seen: list[tuple[float, Any]] = []

    def check() -> dict[str, dict[str, Any]] | None:
        rows = formed(f)
        if rows is None or len(rows) != len(HOMES) or len({r["term"] for r in rows.values()}) > 1:
            seen.clear()
            return None
        key = sorted((n, r["role"], r["term"]) for n, r in rows.items())
        if not seen or seen[-1][1] != key:
            seen[:] = [(time.monotonic(), key)]
        return rows if time.monotonic() - seen[0][0] >= STEADY else None

    return wait_for(check, 90, "roles formed and steady on every node")


def _plan(payload: dict[str, Any]) -> str:
    """A role plan's roles, as one comparable string."""
    return json.dumps(payload["roles"], sort_keys=True)


def choose_cut(rows: dict[str, dict[str, Any]]) -> int | None:
    """The server (n1 or n2) to isolate so that the Genesis and the Integrator are on
    different sides (each side has a proposer) and the Validator is with the majority; None
    if neither does. (With the Validator on the minority side, that side's Validator often
    loses its state in the cut and the side *forms* instead of proposing — a decision queued
    for the log, not opened in any view, so nothing shows the side's plan before the heal.)"""
    role = {n: r["role"] for n, r in rows.items()}
    holders = {n for n, r in role.items() if r in {"genesis", "integrator"}}
    for server in (0, 1):
        alone = {n for n, s in HOMES.items() if s == server}
        validator_out = all(role[n] != "validator" for n in alone)
        if len(holders) == 2 and len(alone & holders) == 1 and validator_out:
            return server
    return None


def plans_of(f: RoleFleet, name: str, subject: str) -> list[dict[str, Any]]:
    """The proposals of ``subject`` in ``name``'s view (its API), newest first."""
    status, listed = f.call(name, "/proposals?limit=1000")
    assert status == 200, (name, status, listed)
    return [p for p in listed["proposals"] if p["subject"] == subject]


def test_partition_passes_at_most_one_of_two_conflicting_plans(
    tmp_path: Path, black_hole: str
) -> None:
    """Five nodes form (one Genesis, one Validator, one Integrator, two Executors); then one
    server is cut from the other two: a minority side of 2 nodes on that server, a majority
    of 3 on the two others, chosen so that each side has a proposer (the Genesis on one, the
    Integrator — the proposer while the Genesis is silent — on the other). Each side then
    proposes a new role plan for the next term, ``roles-<term+1>``: the same subject, plans
    that differ (each drops the cells it no longer hears).

    What keeps two of them from both passing is the log, not the vote alone. A side holding
    the one Validator passes its plan by the quorum (yes / eligible ≥ 1/φ); the other holds 0
    of 1 eligible votes and its plans expire. But a view whose Validator has lost its state
    (the cut shakes the phase lock) has no Validators and *forms* — it records a plan it
    alone was eligible for — and that needs no vote, so both sides can pass a plan of the
    same term in their own views. Neither is decided until it is on the log, and the log is
    a JetStream stream with 3 replicas: the minority's server is 1 of 3, no Raft majority,
    so the minority's nodes can neither append nor read it (counted as ``log.errors`` in
    their status rows), its views stay at the old term, and nothing it proposed during the
    cut is on the log before the heal. Healed, its queued decisions go after the majority's;
    a passed plan of a term the log already decided is dropped (counted ``log.stale``).

    Asserted: every node applies the same log after the heal (the same Genesis and term,
    each node's memory digest the stream's hash chain at its head); in the log, at most one
    plan of ``roles-<term+1>`` passed, no subject and no term passed twice, and no entry
    the minority proposed during the cut precedes the heal."""
    for attempt in range(TRIES):
        if partition_once(tmp_path / f"try{attempt}", black_hole):
            return
        print(f"try {attempt}: forming again")
    raise AssertionError(f"no formation in {TRIES} split the proposers over a cut")


def partition_once(base: Path, black_hole: str) -> bool:
    """Three servers routed through proxies, five nodes; False if the roles allow no cut
    with a proposer on each side (everything stopped), else the test run through."""
    servers: NatsServers | None = None

    def cluster_port(i: int) -> int:
        assert servers is not None
        port = servers.specs[i].cluster_port
        assert port is not None
        return port

    with contextlib.ExitStack() as stack:
        proxies = {
            (a, b): stack.enter_context(TcpProxy(functools.partial(cluster_port, b)))
            for a in range(3)
            for b in range(3)
            if a != b
        }
        routes: dict[str, list[str]] = {"n1": [], "n2": [], "n3": []}
        for (a, _), proxy in proxies.items():
            proxy.heal()
            routes[f"n{a + 1}"].append(f"nats-route://127.0.0.1:{proxy.port}")
        servers = NatsServers(
            base, servers=3, routes=routes, advertise=dict.fromkeys(routes, black_hole)
        )
        with servers:
            all_through_proxies(servers, proxies)
            name, deadline = consensus_log_name("local"), time.monotonic() + 20.0
            create = functools.partial(
                JetStreamAppendLog, servers.urls, name, replicas=3, timeout=1.0
            )
            retried(create, deadline).close()
            f = RoleFleet(base / "nodes", servers.urls)
            try:
                started = time.monotonic()
                for node, server in HOMES.items():
                    f.start(node, [servers.urls[server]])
                rows = steady(f)
                print(f"\nformed and steady in {time.monotonic() - started:.1f} s")
                alone = choose_cut(rows)
                if alone is not None:
                    cut_and_heal(servers, proxies, f, rows, alone)
                else:
                    print(
                        f"roles { ({n: r['role'] for n, r in rows.items()}) }: no cut splits them"
                    )
            finally:
                f.stop()
        assert all(gone(pid) for pid in servers.pids)
    return alone is not None


def cut_and_heal(
    servers: NatsServers,
    proxies: dict[tuple[int, int], TcpProxy],
    f: RoleFleet,
    rows: dict[str, dict[str, Any]],
    alone: int,
) -> None:
    """Cut server ``alone`` from the two others, check both sides, heal, converge."""
    term = rows[node_name(0)]["term"]
    subject = f"roles-{term + 1}"
    role = {n: r["role"] for n, r in rows.items()}
    minority = [n for n, s in HOMES.items() if s == alone]
    majority = [n for n in HOMES if n not in minority]
    validator = next(n for n, r in role.items() if r == "validator")
    print(
        f"term {term}: roles {role}; cut n{alone + 1}: minority {minority}, the Validator "
        f"with the {'minority' if validator in minority else 'majority'}"
    )
    links = [k for k in proxies if alone in k]
    for key in links:
        proxies[key].cut()
    cut = time.time()
    others = [i for i in range(3) if i != alone]
    want = [set() if i == alone else {f"n{others[others.index(i) - 1] + 1}"} for i in range(3)]
    wait_routes(servers, want)

    name = consensus_log_name("local")
    majority_urls = [servers.urls[i] for i in others]
    reader = retried(
        functools.partial(JetStreamAppendLog, majority_urls, name, timeout=1.0),
        time.monotonic() + 20,
    )

    def proposed() -> dict[str, list[tuple[str, str, int, str, str]]] | None:
        """Each side's plans of ``subject`` once both proposed one and the minority's log
        refused: the minority's from its nodes' views (its log does not answer), the
        majority's from the log through its servers (its views churn through terms fast)."""
        try:
            logged = [Decision.from_entry(e) for e in reader.read()]
        except StorageError as err:
            last["log"] = str(err)
            return None
        sides = {
            "minority": [
                (p["proposer"], p["status"], p["yes"], p["payload"].get("why"), _plan(p["payload"]))
                for n in minority
                for p in plans_of(f, n, subject)
                if p["proposer"] == n
            ],
            "majority": [
                (
                    d.proposal.proposer,
                    d.outcome.value,
                    d.yes,
                    d.proposal.payload.get("why"),
                    _plan(d.proposal.payload),
                )
                for d in logged
                if d.proposal.subject == subject and d.proposal.proposer in majority
            ],
        }
        # the minority's log refused (a node that only reads may wait on one long read)
        stuck = any(f.rows()[n]["log"]["errors"] > 0 for n in minority)
        last.update(sides=sides, stuck=stuck, log=len(logged))
        return sides if stuck and all(sides.values()) else None

    last: dict[str, Any] = {}
    try:
        sides = wait_for(proposed, CUT_BOUND, "each side proposed a plan of the subject")
        before_heal = retried(reader.last_index, time.monotonic() + 20)
    except AssertionError as err:
        roles = {n: (r["term"], r["role"], r["state"]) for n, r in f.rows().items()}
        raise AssertionError(f"{err}: last seen {last}; views {roles}") from None
    finally:
        reader.close()
    took = time.time() - cut
    plans = {k: {plan for *_, plan in v} for k, v in sides.items()}
    assert plans["minority"] != plans["majority"], plans  # conflicting: same subject, other plans
    rows = f.rows()
    # the minority's views applied nothing new: the old term, no head past the majority's log
    assert all(rows[n]["term"] == term and rows[n]["head"] <= before_heal for n in minority), {
        n: (rows[n]["term"], rows[n]["head"]) for n in minority
    }
    summary = {k: sorted(p[:4] for p in v) for k, v in sides.items()}
    errors = {n: rows[n]["log"]["errors"] for n in f.names}
    print(
        f"cut: after {took:.2f} s both sides proposed {subject}: {summary}; terms "
        f"{ {n: r['term'] for n, r in rows.items()} }; log errors {errors}; log at "
        f"{before_heal} entries"
    )

    for key in links:
        proxies[key].heal()
    healed, healed_at = time.time(), time.monotonic()
    routed = wait_routes(servers, [{f"n{j + 1}" for j in range(3) if j != i} for i in range(3)])
    all_through_proxies(servers, proxies)

    log = retried(
        functools.partial(JetStreamAppendLog, servers.urls, name, timeout=1.0), healed_at + 20
    )
    try:

        def converged() -> tuple[dict[str, dict[str, Any]], list[bytes]] | None:
            try:  # the stream may answer 503 for a moment while its Raft group rejoins
                rows, entries = f.rows(), log.read()
            except StorageError:
                return None
            digests = chain(entries)
            same = len({(r["genesis"], r["term"]) for r in rows.values()}) == 1
            ok = all(
                before_heal <= r["head"] < len(digests) and r["memory"] == digests[r["head"]]
                for r in rows.values()
            )
            return (rows, entries) if same and ok and len(rows) == len(HOMES) else None

        rows, entries = wait_for(converged, CONVERGE_BOUND, "every node on the same log")
        took = time.time() - healed
        print(
            f"healed: routes back after {routed:.2f} s, every node on one log after {took:.2f} "
            f"s (term {max(r['term'] for r in rows.values())})"
        )
        counted = {n: (r["log"], r["rejected"]) for n, r in rows.items()}
        print(f"healed: each node's log counts and refusals {counted}")
    finally:
        log.close()

    decisions = list(enumerate((Decision.from_entry(e) for e in entries), start=1))
    passes = Counter(d.proposal.subject for _, d in decisions if d.passed)
    assert max(passes.values()) == 1, passes
    terms = Counter(
        RolePlan.from_payload(d.proposal.payload).term
        for _, d in decisions
        if d.passed and d.proposal.kind == "roles"
    )
    assert max(terms.values()) == 1, terms
    early = [
        (i, d.proposal.proposer)
        for i, d in decisions
        if i <= before_heal and d.proposal.proposer in minority and d.proposal.created >= cut
    ]
    assert early == [], early  # the minority recorded nothing during the cut
    of_subject = [
        (i, d.proposal.proposer, d.outcome.value, d.yes)
        for i, d in decisions
        if d.proposal.subject == subject
    ]
    print(f"log: {len(entries)} entries ({before_heal} at the heal); {subject}: {of_subject}")
