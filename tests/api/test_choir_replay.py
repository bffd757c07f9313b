"""Property: a thread's events are a function of the ledger's chain. For random sequences of
posts, specs, votes, closes (with time passing) and divests — refused ones included — the
events made live equal the thread's stored history, a new service on the same data dir
replays exactly those events (``client_id`` aside: it is not in the chain), seqs never go
back, each spec is decided at most once, and the supply invariant holds."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from becomingone.api.choir import ChoirService
from becomingone.choir import ChoirHome, Rules, TxKind
from becomingone.errors import InputError
from becomingone.ingest.text import lexical_embedding
from tests.api.choirhelpers import ManualClock

pytestmark = pytest.mark.timeout(600)

NAMES = ("ada", "grace", "alan", "edsger")
ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["post", "submit", "vote", "close", "divest", "wait"]),
        st.integers(0, len(NAMES) - 1),
        st.integers(0, 5),
        st.booleans(),
    ),
    min_size=1,
    max_size=25,
)


def frames(service: ChoirService) -> list[dict[str, Any]]:
    """Every stored event of every thread, without client ids."""
    out = []
    for thread in sorted(service.events):
        for event in service.events[thread]:
            frame = event.frame()
            frame["data"] = {k: v for k, v in frame["data"].items() if k != "client_id"}
            out.append(frame)
    return out


def run(service: ChoirService, clock: ManualClock, actions: list[Any]) -> list[Any]:
    """Apply ``actions`` (refusals skipped); the events made live."""
    users = {n: service.add_user(n)[0] for n in NAMES}
    body = service.new_thread_body("t")
    made = service.act(users["ada"], TxKind.THREAD, body)[1]
    thread, specs = body["thread"], []
    for i, (kind, who, pick, flag) in enumerate(actions):
        user = users[NAMES[who]]
        clock.now += 1.0
        try:
            if kind == "post":
                tx = service.message_body(thread, f"post {i}", None)
                made += service.act(user, TxKind.POST, tx, text=f"post {i}", client_id=f"c{i}")[1]
            elif kind == "submit":
                tx = service.message_body(thread, f"spec {i}", 50 + pick)
                made += service.act(user, TxKind.SUBMIT, tx, text=f"spec {i}")[1]
                specs.append(tx["spec"])
            elif kind in ("vote", "close") and specs:
                spec = specs[pick % len(specs)]
                if kind == "vote":
                    made += service.act(user, TxKind.VOTE, {"spec": spec, "approve": flag})[1]
                else:
                    made += service.act(user, TxKind.CLOSE, {"spec": spec})[1]
            elif kind == "divest":
                made += service.act(user, TxKind.DIVEST, {"thread": thread})[1]
            elif kind == "wait":
                clock.now += 3_000.0 if flag else 30.0
        except InputError:
            pass
    return made


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(actions=ACTIONS)
def test_events_are_the_chain(actions: list[Any]) -> None:
    """Live events = stored history = a restarted service's replay; invariant holds."""
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock()
        rules = Rules(vote_window=5_000.0)
        home = ChoirHome(Path(tmp), rules=rules)
        service = ChoirService(home, embed=(lexical_embedding, "lexical"), clock=clock)
        try:
            made = run(service, clock, actions)
            assert [e.frame() for e in made] == [
                e.frame() for t in sorted(service.events) for e in service.events[t]
            ]
            live = frames(service)
            assert service.ledger.totals().ok
        finally:
            service.close()
        again = ChoirService(
            ChoirHome(Path(tmp), rules=rules), embed=(lexical_embedding, "lexical"), clock=clock
        )
        try:
            assert frames(again) == live
        finally:
            again.close()
    seqs = [f["seq"] for f in live]
    assert seqs == sorted(seqs)
    decided = [f["data"]["id"] for f in live if f["type"] in ("approved", "denied", "expired")]
    assert len(decided) == len(set(decided))
