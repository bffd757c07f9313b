"""The typed events of a served cluster (ASGI and a real server, real in-process cells): the
roles, the lifecycle and an operator's proposal with its votes and decision; glyphs
submitted, moved by a migration, fired (one summary per tick) and ended; every one with the
tick as its seq, filtered by ``types``, kept for a resuming client (in memory; ``complete``
false once one it asked for was evicted), and the typed client resuming without loss or
repeats."""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.api import (
    ApiServer,
    ApiSettings,
    CellClient,
    EventType,
    ServedCluster,
    StreamEvent,
    create_app,
)
from becomingone.api.cluster_events import ClusterEvents, DeskGlyphs, HeardGlyphs, HeardRoles
from becomingone.cluster import Glyph, LifecycleStage
from becomingone.config.schema import BecomingOneConfig
from becomingone.errors import InputError
from becomingone.runtime import build_supervisors
from becomingone.runtime.cell_member import build_cell_members
from becomingone.runtime.glyph_migrate import GlyphMigrator
from becomingone.runtime.node import NodeStatus
from becomingone.runtime.status_glyphs import status_glyphs
from tests.api.test_proposals_api import PROBE, Roles, serve_roles

pytestmark = pytest.mark.timeout(300)

TYPED = frozenset(EventType) - {EventType.CLUSTER_TICK}


@pytest.fixture
async def full(tmp_path: Path) -> AsyncIterator[tuple[Roles, GlyphMigrator]]:
    """Five full cells under roles, with the glyph migrator the served cluster runs."""
    config = BecomingOneConfig.model_validate({}).becomingone
    sups = build_supervisors(5, "mesh", seed=2, spread=0.05, alpha=0.3)
    members = build_cell_members(sups, tmp_path, config, seed=2, wait_runs=True)
    try:
        keys = {m.node_id: m.supervisor.key for m in members}
        async with serve_roles(members, keys, tmp_path) as roles:
            yield roles, GlyphMigrator(members)
    finally:
        assert all(m.close() for m in members)


async def advance(roles: Roles, migrator: GlyphMigrator, ticks: int) -> None:
    """``ticks`` ticks as `cluster --serve` runs them: cluster, migrator, driver, frame."""
    for _ in range(ticks):
        report = await roles.cluster.step(roles.tick * 0.05)
        roles.tick += 1
        await migrator.step(report.c_cluster, report.band, report.time)
        roles.driver.step(report)
        roles.served.record(report, roles.cluster.members)


def typed(served: ServedCluster, kind: EventType, **match: Any) -> list[StreamEvent]:
    """The kept events of ``kind`` whose data has every ``match`` item."""
    return [
        e
        for e in served.events
        if e.type is kind and all(e.data.get(k) == v for k, v in match.items())
    ]


async def test_roles_lifecycle_and_an_operators_proposal_become_events(
    full: tuple[Roles, GlyphMigrator],
) -> None:
    """Every cell's first role is a role.assigned; each stage the lifecycle reaches is a
    lifecycle.changed naming the previous one, with every condition; an operator's proposal
    is opened, each vote carries the tally after it, and the pass is decided — in order, at
    the tick after the API call, and the tally agrees with the proposal route's."""
    roles, migrator = full
    await roles.to_stage(LifecycleStage.ACTIVE)
    served = roles.served
    assigned = {e.data["cell"]: e.data["role"] for e in typed(served, EventType.ROLE_ASSIGNED)}
    now = {c: r.value for c, r in roles.driver.cluster.roles.items()}
    changed = typed(served, EventType.ROLE_CHANGED)
    for e in changed:  # replay the changes over the first assignments
        assert assigned[e.data["cell"]] == e.data["from"]
        assigned[e.data["cell"]] = e.data["to"]
    assert {c: r for c, r in assigned.items() if r is not None} == now
    stages = [
        (e.data["previous"], e.data["stage"])
        for e in served.events
        if e.type == "lifecycle.changed"
    ]
    walked = [s for p, s in stages if p != s]
    assert walked[:2] == ["pre_cluster", "forming"] and walked[-1] == "active"
    last_life = typed(served, EventType.LIFECYCLE_CHANGED)[-1].data
    assert set(last_life["conditions"]) == set(
        roles.driver.history[-1].lifecycle.to_json()["conditions"]
    )  # type: ignore[call-overload]

    answer = await roles.client.post(
        "/cluster/proposals", json={"text": "add a cell"}, headers=roles.auth
    )
    pid = answer.json()["id"]
    tick = roles.tick
    await advance(roles, migrator, 1)
    (opened,) = typed(served, EventType.PROPOSAL_OPENED, id=pid)
    assert opened.seq == tick and opened.data["kind"] == "command"
    voters = answer.json()["eligible"][: answer.json()["needed"]]
    url = f"/cluster/proposals/{pid}/votes"
    for voter in voters:
        vote = {"cell": voter, "vote": "yes"}
        assert (await roles.client.post(url, json=vote, headers=roles.auth)).status_code == 200
        await advance(roles, migrator, 1)
    tallies = [
        (e.data["votes"], e.data["yes"], e.data["no"])
        for e in typed(served, EventType.PROPOSAL_VOTE, id=pid)
    ]
    assert tallies == [([{"voter": v, "yes": True}], i + 1, 0) for i, v in enumerate(voters)]
    (decided,) = typed(served, EventType.PROPOSAL_DECIDED, id=pid)
    assert decided.data["outcome"] == "passed" and decided.data["yes"] == len(voters)
    vote_seq = typed(served, EventType.PROPOSAL_VOTE, id=pid)[-1].seq
    assert opened.seq < vote_seq == decided.seq == roles.tick - 1
    route = (await roles.client.get(f"/cluster/proposals/{pid}")).json()
    assert (route["yes"], route["no"], route["status"]) == (len(voters), 0, "passed")


async def test_glyphs_submitted_migrated_fired_and_ended(
    full: tuple[Roles, GlyphMigrator],
) -> None:
    """Three glyphs submitted to one cell are glyph.submitted at that owner; once the
    cluster is SHARED the migrator spreads them and each move is a glyph.migrated whose
    ``from``/``to`` match the owners the glyph route shows; runs are summed per tick (never
    more than one glyph.fired per tick, its counts the runs the cells counted), and a cancel
    is a glyph.ended with reason ``cancelled`` at the last owner."""
    roles, migrator = full
    served = roles.served
    await advance(roles, migrator, 2)
    ids = [f"move-{i}" for i in range(3)]
    for gid in ids:
        body = {**PROBE, "id": gid, "cell": "cell-0000"}
        assert (
            await roles.client.post("/cluster/glyphs", json=body, headers=roles.auth)
        ).status_code == 201
    await advance(roles, migrator, 1)
    for gid in ids:
        (sub,) = typed(served, EventType.GLYPH_SUBMITTED, id=gid)
        assert sub.data["owner"] == "cell-0000" and sub.data["kind"] == "probe"
    for _ in range(60):
        if typed(served, EventType.GLYPH_MIGRATED):
            break
        await advance(roles, migrator, 10)
    moves = [e for e in typed(served, EventType.GLYPH_MIGRATED) if e.data["id"] in ids]
    assert moves, "no glyph migrated in 600 ticks"
    owner = {gid: "cell-0000" for gid in ids}
    for e in moves:
        assert e.data["from"] == owner[e.data["id"]] != e.data["to"]
        owner[e.data["id"]] = e.data["to"]
    listed = (await roles.client.get("/cluster/glyphs")).json()["glyphs"]
    assert {g["id"]: g["owner"] for g in listed if g["id"] in ids} == owner
    fired = typed(served, EventType.GLYPH_FIRED)
    assert fired and len({e.seq for e in fired}) == len(fired)
    total = sum(m.glyphs.counts["fired"] for m in roles.cluster.members)  # type: ignore[attr-defined]
    assert sum(e.data["fires"] for e in fired) == total
    assert all(sum(e.data["by_cell"].values()) == e.data["fires"] for e in fired)

    gone = ids[0]
    assert (
        await roles.client.delete(f"/cluster/glyphs/{gone}", headers=roles.auth)
    ).status_code == 200
    await advance(roles, migrator, 1)
    (ended,) = typed(served, EventType.GLYPH_ENDED, id=gone)
    assert ended.data["reason"] == "cancelled" and ended.data["owner"] == owner[gone]


async def test_replay_filters_orders_and_says_when_events_were_evicted(
    full: tuple[Roles, GlyphMigrator],
) -> None:
    """A replay after tick S holds the frames and typed events after S that the filter asks
    for, each tick's frame first, in the order sent live; with a ring too small for them
    ``complete`` is false for a resume before the evicted ones and true after them."""
    roles, migrator = full
    served = roles.served
    await roles.to_stage(LifecycleStage.FORMING)
    await advance(roles, migrator, 3)
    since = roles.tick - 4
    got, complete = served.replay(since)
    assert complete and got[0].type is EventType.CLUSTER_TICK and got[0].seq == since + 1
    assert [e.seq for e in got] == sorted(e.seq for e in got)
    frames = [e.seq for e in got if e.type is EventType.CLUSTER_TICK]
    assert frames == list(range(since + 1, roles.tick))
    only, _ = served.replay(-1, frozenset({EventType.ROLE_ASSIGNED}))
    assert only and all(e.type is EventType.ROLE_ASSIGNED for e in only)
    assert len(only) == len(roles.driver.cluster.roles)

    served.events = deque(served.events, maxlen=2)
    await advance(roles, migrator, 20)
    assert served.events_lost_through >= 0
    _, complete = served.replay(-1, TYPED)
    assert not complete
    _, complete = served.replay(served.events_lost_through, TYPED)
    assert complete


async def test_a_full_queue_drops_the_oldest_typed_events_and_counts_them(
    full: tuple[Roles, GlyphMigrator],
) -> None:
    """A cluster subscriber with a queue of 3 keeps the newest 3 of everything offered to it
    (frames and typed events alike, in the order sent) and counts every other one as dropped;
    one filtered to role.assigned is offered nothing else."""
    roles, _ = full
    served = roles.served
    everything = served.subscribe(3)
    assigned = served.subscribe(100, types=frozenset({EventType.ROLE_ASSIGNED}))
    start = len(served.events)
    await roles.to_stage(LifecycleStage.FORMING)
    typed_now = list(served.events)[start:]
    offered = roles.tick + len(typed_now)  # one frame per tick, plus the typed events
    assert everything.dropped == offered - 3
    last_tick = [e for e in typed_now if e.seq == roles.tick - 1]
    sent_last = [EventType.CLUSTER_TICK] + [e.type for e in last_tick]
    assert [e.type for e in everything.queue] == sent_last[-3:]
    assert assigned.dropped == 0
    assert [e.data for e in assigned.queue] == [
        e.data for e in typed_now if e.type is EventType.ROLE_ASSIGNED
    ]


async def test_the_stream_filters_by_type_with_the_tick_as_seq(
    full: tuple[Roles, GlyphMigrator],
) -> None:
    """Over a real socket: ``types=role.assigned,lifecycle.changed`` gives exactly the kept
    events of those types, in order, with the tick as seq; a resume after tick S replays
    those after S before ``resumed``; an unknown type closes the socket (1008)."""
    import websockets

    roles, _ = full
    app = create_app(None, ApiSettings(), cluster=roles.served)
    server = ApiServer(app, "127.0.0.1", 0)
    await server.start()
    wanted = ("role.assigned", "lifecycle.changed")
    try:
        client = CellClient(server.url)
        stream = client.cluster_events(wanted)
        assert (await anext(stream))["type"] == "resumed"
        await roles.to_stage(LifecycleStage.FORMING)
        want = [e for e in roles.served.events if e.type in wanted]
        got = [await anext(stream) for _ in want]
        assert [(m["type"], m["seq"], m["data"]) for m in got] == [
            (e.type.value, e.seq, dict(e.data)) for e in want
        ]
        await stream.aclose()  # type: ignore[attr-defined]
        since = want[-1].seq - 1
        again = client.cluster_events(wanted, since=since)
        tail = [e for e in want if e.seq > since]
        replay = [await anext(again) for _ in range(len(tail) + 1)]
        assert [m["seq"] for m in replay[:-1]] == [e.seq for e in tail]
        assert replay[-1]["type"] == "resumed" and replay[-1]["data"]["complete"]
        await again.aclose()  # type: ignore[attr-defined]
        url = "ws" + server.url.removeprefix("http") + "/api/v1/cluster/events?types=glyph.nope"
        async with websockets.connect(url) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "glyph.nope" in closed.value.rcvd.reason
        client.close()
    finally:
        await server.aclose()


async def test_the_client_resumes_a_tick_it_got_in_part_without_loss_or_repeats() -> None:
    """A stream that drops the connection after the first of tick 3's three events: the
    client reconnects with ``since=2`` (the tick before the one it got in part), skips the
    event of tick 3 it had, and yields the rest once — every event exactly once, in order."""
    import websockets

    events = [(2, "a"), (3, "b"), (3, "c"), (3, "d"), (4, "e")]
    asked: list[str] = []

    async def handler(ws: Any) -> None:
        query = ws.request.path.partition("?")[2]
        asked.append(query)
        since = int(dict(p.split("=") for p in query.split("&") if p).get("since", "-1"))
        rest = [(s, n) for s, n in events if s > since]
        if len(asked) == 1:
            rest = rest[:2]  # (2, a), (3, b): then the connection is lost
        for seq, name in rest:
            await ws.send(json.dumps({"type": "glyph.fired", "seq": seq, "data": {"n": name}}))
        if len(asked) == 1:
            await ws.close()
            return
        await ws.send(json.dumps({"type": "resumed", "seq": 4, "data": {}, "dropped": 0}))
        await ws.wait_closed()

    async with websockets.serve(handler, "127.0.0.1", 0) as fake:
        port = next(iter(fake.sockets)).getsockname()[1]
        client = CellClient(f"http://127.0.0.1:{port}")
        stream = client.events(reconnects=1, retry_seconds=0.01, path="/x")
        got = [await anext(stream) for _ in range(6)]
        await stream.aclose()  # type: ignore[attr-defined]
        client.close()
    assert [m["data"].get("n") for m in got] == ["a", "b", "c", "d", "e", None]
    assert asked == ["", "since=2"]


class _Glyphs:
    """The parts of a cell's glyphs ClusterEvents reads: scheduled, held, runs, ended."""

    def __init__(self) -> None:
        self.scheduled: dict[str, Glyph] = {}
        self.held: dict[str, Glyph] = {}
        self.counts: Counter[str] = Counter()
        self.finished: dict[str, tuple[Glyph, str]] = {}
        self.scheduler = self

    def glyphs(self) -> list[Glyph]:
        return list(self.scheduled.values())

    def __contains__(self, glyph_id: str) -> bool:
        return glyph_id in self.scheduled

    def row(self) -> dict[str, Any]:
        energy = sum(g.energy for g in self.scheduled.values())
        n, fired, ended = len(self.scheduled), self.counts["fired"], len(self.finished)
        return {"glyphs": n, "fires": fired, "failed": 0, "ended": ended, "energy": energy,
                "value": None}  # fmt: skip


def _by_id(events: list[StreamEvent]) -> list[StreamEvent]:
    """Events in a canonical order (the order within a tick is not part of the contract)."""
    return sorted(events, key=lambda e: (e.type.value, str(e.data.get("id"))))


def heard(cells: dict[str, _Glyphs]) -> list[NodeStatus]:
    """Each cell's status as a node process publishes it, through its JSON bytes."""
    out = []
    for name, g in cells.items():
        doc = NodeStatus(node=name, kind="full", time=1.0, theta=0.0, frequency=1.0,
                         stable=True, epoch=1, seq=1, members=3, heard=2, c_seen=1.0,
                         accepted=0, glyphs=status_glyphs(g)).to_json()  # type: ignore[arg-type]  # fmt: skip
        out.append(NodeStatus.from_bytes(json.dumps(doc).encode()))
    return out


CELLS = ["a", "b", "c"]
#: One step of a cluster's glyphs between two ticks.
STEPS = st.one_of(
    st.tuples(st.just("submit"), st.integers(0, 5), st.sampled_from(CELLS)),
    st.tuples(st.just("move"), st.integers(0, 5), st.sampled_from(CELLS)),
    st.tuples(st.just("hold"), st.integers(0, 5), st.sampled_from(CELLS)),
    st.tuples(st.just("end"), st.integers(0, 5), st.sampled_from(CELLS)),
    st.tuples(st.just("fire"), st.integers(0, 3), st.sampled_from(CELLS)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(STEPS, max_size=4), min_size=1, max_size=12))
def test_glyph_events_replayed_rebuild_the_owners(ticks: list[list[Any]]) -> None:
    """Whatever the cells' glyphs do between ticks (submit, a migration's hold then install
    elsewhere, end, runs), the glyph events of each tick applied to the previous owners give
    exactly the owners now; a glyph held by its source keeps that owner until installed; the
    fired summaries sum to the runs counted; each tick has at most one glyph.fired. The same
    cells seen through their status messages (the glyph lists of node processes, as JSON)
    give the same events, tick by tick."""
    cells = {c: _Glyphs() for c in CELLS}
    desk = SimpleNamespace(members={c: SimpleNamespace(glyphs=g) for c, g in cells.items()})
    source = ClusterEvents(DeskGlyphs(desk), None)  # type: ignore[arg-type]
    statuses = HeardGlyphs()
    statuses.update(heard(cells))
    observed = ClusterEvents(statuses, None)
    model: dict[str, str] = {}
    runs = fired = 0

    def owner_of(gid: str) -> str | None:
        held = next((c for c, g in cells.items() if gid in g.held), None)
        return next((c for c, g in cells.items() if gid in g.scheduled), held)

    for tick, steps in enumerate(ticks):
        for op, n, cell in steps:
            gid, here = f"g{n}", owner_of(f"g{n}")
            g = cells[cell]
            if op == "submit" and here is None:
                g.scheduled[gid] = Glyph(id=gid, kind="probe", energy=5.0)
            elif op == "hold" and here is not None and gid in cells[here].scheduled:
                cells[here].held[gid] = cells[here].scheduled.pop(gid)
            elif op == "move" and here is not None and here != cell:
                moving = cells[here].scheduled.pop(gid, None) or cells[here].held.pop(gid)
                g.scheduled[gid] = moving
            elif op == "end" and here is not None and gid in cells[here].scheduled:
                cells[here].finished[gid] = (cells[here].scheduled.pop(gid), "energy")
            elif op == "fire":
                g.counts["fired"] += n
                runs += n
        events = source.step(tick)
        statuses.update(heard(cells))
        assert _by_id(observed.step(tick)) == _by_id(events)
        assert all(e.seq == tick for e in events)
        assert sum(e.type is EventType.GLYPH_FIRED for e in events) <= 1
        for e in events:
            if e.type is EventType.GLYPH_SUBMITTED:
                assert e.data["id"] not in model
                model[e.data["id"]] = e.data["owner"]
            elif e.type is EventType.GLYPH_MIGRATED:
                assert model[e.data["id"]] == e.data["from"] != e.data["to"]
                model[e.data["id"]] = e.data["to"]
            elif e.type is EventType.GLYPH_ENDED:
                assert model.pop(e.data["id"]) == e.data["owner"]
                assert e.data["reason"] == "energy"
            elif e.type is EventType.GLYPH_FIRED:
                assert sum(e.data["by_cell"].values()) == e.data["fires"] > 0
                fired += e.data["fires"]
        now = {gid: owner_of(gid) for g in cells.values() for gid in [*g.scheduled, *g.held]}
        assert model == now
    assert fired == runs


def _role_status(name: str, row: dict[str, Any] | None, at: float = 1.0) -> NodeStatus:
    """A node status with partifact row ``row``, through its wire form (as a witness hears)."""
    doc = NodeStatus(node=name, kind="full", time=at, theta=0.0, frequency=1.0, stable=True,
                     epoch=1, seq=1, members=3, heard=2, c_seen=1.0, accepted=0,
                     partifacts=row).to_json()  # fmt: skip
    return NodeStatus.from_bytes(json.dumps(doc).encode())


def _prow(role: str | None, stage: str, genesis: str | None = "a") -> dict[str, Any]:
    """A node's partifact row (NodePartifacts.row's fields, memory and refusals included)."""
    return {"state": "Ø2Ø1", "role": role, "lifecycle": stage, "term": 2, "genesis": genesis,
            "head": 4, "memory": "0" * 16, "rejected": {"late": 1}}  # fmt: skip


def test_a_witness_turns_heard_partifact_rows_into_role_and_lifecycle_events() -> None:
    """The roles the statuses report become role.assigned, then role.changed; the lifecycle
    is the stage of the Genesis' view (not the majority's), with no conditions; a status
    without a row adds nothing; no proposal event ever (a status carries none)."""
    heard = HeardRoles()
    events = ClusterEvents(None, heard)
    heard.update([_role_status("x", None)], 0.5)
    assert events.step(0) == []
    rows = {"a": _prow("genesis", "active"), "b": _prow("validator", "forming")}
    rows["c"] = _prow(None, "forming")
    heard.update([_role_status(n, r) for n, r in rows.items()], 1.0)
    got = [(e.type.value, dict(e.data)) for e in events.step(1)]
    assert got == [
        ("role.assigned", {"cell": "a", "role": "genesis"}),
        ("role.assigned", {"cell": "b", "role": "validator"}),
        ("lifecycle.changed", {"stage": "active", "previous": None, "conditions": {}}),
    ]
    rows["b"] = _prow("integrator", "converging")
    heard.update([_role_status(n, r, 2.0) for n, r in rows.items()], 2.0)
    heard.update([_role_status(n, r, 2.1) for n, r in rows.items()], 2.1)  # two before a step
    assert [(e.type.value, e.seq, dict(e.data)) for e in events.step(2)] == [
        ("role.changed", 2, {"cell": "b", "from": "validator", "to": "integrator"})
    ]
    assert events.step(3) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("state", "awake"),
        ("role", "king"),
        ("lifecycle", "done"),
        ("term", -1),
        ("genesis", "bad id!"),
        ("head", "x"),
    ],
)
def test_a_status_with_a_bad_partifact_row_is_refused(field: str, value: Any) -> None:
    """One line naming the status, never a half-parsed row."""
    with pytest.raises(InputError, match="status"):
        _role_status("a", {**_prow("genesis", "active"), field: value})
