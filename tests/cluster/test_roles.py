"""Roles and the §5.2 signal authority: the router sends exactly what the table allows."""

from __future__ import annotations

import itertools

import pytest

from becomingone.cluster import (
    AUTHORITY,
    ROLE_STATE,
    ConsensusBook,
    PartifactState,
    Proposal,
    Role,
    Signal,
    SignalKind,
    SignalRouter,
)
from becomingone.errors import InputError, ProtocolError
from tests.cluster.partifact_helpers import make_keys, public, vote

S = PartifactState
#: The §5.2 matrix read by hand (independent of AUTHORITY's encoding): sender → kind → targets.
PLAIN = {
    "genesis": {"intent": "e", "proposal": "v", "phase_sync": "gevi", "role_transfer": "gevi"},
    "executor": {"result": "v", "intent": "e", "phase_sync": "ei", "role_transfer": "gevi"},
    "validator": {"vote": "gvi", "verdict": "i", "phase_sync": "vig", "role_transfer": "gevi"},
    "integrator": {
        "record": "gevi",
        "phase_sync": "gevi",
        "proposal": "v",
        "role_transfer": "gevi",
    },
}


def _router() -> tuple[SignalRouter, dict[str, Role | None], dict[str, PartifactState]]:
    roles: dict[str, Role | None] = {r.value[0]: r for r in Role}
    states = {c: S.OPERATIONAL for c in roles}
    return SignalRouter(lambda: roles, lambda: states, ConsensusBook({})), roles, states


@pytest.mark.parametrize(
    ("sender", "kind", "receiver"), list(itertools.product(Role, SignalKind, Role))
)
def test_router_follows_the_authority_matrix(
    sender: Role, kind: SignalKind, receiver: Role
) -> None:
    """Every (sender, kind, receiver) is routed iff the hand-read §5.2 matrix allows it."""
    router, _, _ = _router()
    allowed = receiver.value[0] in PLAIN[sender.value].get(kind.value, "")
    assert ((sender, kind) in AUTHORITY and receiver in AUTHORITY[(sender, kind)]) == allowed
    sig = Signal(kind=kind, source=sender.value[0], target=receiver.value[0])
    assert (router.emit_signal(sig) is not None) == allowed
    assert sum(router.refused.values()) == (0 if allowed else 1)


def test_refusals_are_counted_by_reason() -> None:
    """Unknown ends, a cell without a role and a cell below its role's state are refused,
    each under its own reason."""
    router, roles, states = _router()
    roles["x"], states["x"] = None, S.AWAKENED
    states["e"] = S.DORMANT
    send = router.emit_signal
    assert send(Signal(kind="intent", source="z", target="e")) is None
    assert send(Signal(kind="intent", source="g", target="z")) is None
    assert send(Signal(kind="phase_sync", source="x", target="g")) is None
    assert send(Signal(kind="intent", source="g", target="e")) is None
    assert dict(router.refused) == {
        "unknown_source": 1,
        "unknown_target": 1,
        "no_role": 1,
        "state_below_role": 1,
    }
    assert router.routed == {}


def test_role_states() -> None:
    """Genesis and Validator need Ø2Ø1; Executor and Integrator need Ø1Ø2; WSP phases 2..−1."""
    assert {r: s.value for r, s in ROLE_STATE.items()} == {
        Role.GENESIS: "Ø2Ø1",
        Role.VALIDATOR: "Ø2Ø1",
        Role.EXECUTOR: "Ø1Ø2",
        Role.INTEGRATOR: "Ø1Ø2",
    }
    assert [r.wsp for r in Role] == [2, 1, 0, -1]


def test_validate_consensus_routes_votes() -> None:
    """validate_consensus counts a validator's vote; an executor's vote is refused as
    not_validator before the book sees it; a forged vote counts as a bad vote."""
    keys = make_keys(4)
    roles: dict[str, Role | None] = {
        "c00": Role.GENESIS,
        "c01": Role.VALIDATOR,
        "c02": Role.VALIDATOR,
        "c03": Role.EXECUTOR,
    }
    states = {c: S.OPERATIONAL for c in roles}
    book = ConsensusBook(public(keys))
    router = SignalRouter(lambda: roles, lambda: states, book)
    p = Proposal.create(
        keys["c00"],
        kind="intent",
        subject="s",
        payload={"what": "x"},
        proposer="c00",
        created=0.0,
        deadline=1.0,
        eligible=("c01", "c02"),
    )
    book.open(p, 0.0)
    assert router.validate_consensus(vote(keys, p, "c01", True, 0.1), 0.1, target="c00") is None
    with pytest.raises(ProtocolError, match="not_validator"):
        router.validate_consensus(vote(keys, p, "c03", True, 0.1), 0.1, target="c00")
    forged = vote(keys, p, "c02", True, 0.1)
    forged = type(forged)(proposal_id=p.id, voter="c02", yes=True, at=0.1, signature=bytes(64))
    with pytest.raises(ProtocolError, match="forged"):
        router.validate_consensus(forged, 0.1, target="c00")
    d = router.validate_consensus(vote(keys, p, "c02", True, 0.2), 0.2, target="c00")
    assert d is not None and d.passed
    assert book.rejected == {"not_validator": 1, "forged": 1}
    assert router.refused == {"not_authorized": 1, "bad_vote": 1}


def test_signal_validates() -> None:
    """An unknown kind or an empty end raises InputError naming it."""
    with pytest.raises(InputError, match="kind"):
        Signal(kind="shout", source="a", target="b")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="target"):
        Signal(kind="intent", source="a", target="")
