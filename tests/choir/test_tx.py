"""Signed transactions: canonical bytes, signatures, validation of every field, JSON."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.choir import Transaction, TxKind, content_hash
from becomingone.errors import InputError
from becomingone.keys import NodeKey

KEY = NodeKey.from_seed(b"\x02" * 32)
BODY = {"thread": "t1", "spec": "s1", "content_hash": content_hash("hi"), "stake": 60}


def test_the_body_is_read_only_after_signing() -> None:
    """The signed body cannot be changed afterwards (neither through the value nor through the
    dict it was built from)."""
    body = dict(BODY)
    tx = Transaction.sign(KEY, TxKind.SUBMIT, body)
    body["stake"] = 10**6
    assert tx.body["stake"] == 60
    with pytest.raises(TypeError):
        tx.body["stake"] = 10**6  # type: ignore[index]


def test_sign_and_round_trip() -> None:
    """A signed transaction survives to_json/from_json and names its actor by key id."""
    tx = Transaction.sign(KEY, TxKind.SUBMIT, BODY, tx_id="abc")
    again = Transaction.from_json(tx.to_json())
    assert again == tx and again.actor_id == KEY.id and again.digest() == tx.digest()


@given(st.sampled_from(["id", "body", "actor"]))
def test_any_changed_field_fails_the_signature(field: str) -> None:
    """Changing the id, the body or the actor of a signed transaction makes it invalid."""
    doc = Transaction.sign(KEY, TxKind.SUBMIT, BODY, tx_id="abc").to_json()
    doc[field] = {
        "id": "abd",
        "body": {**BODY, "stake": 61},
        "actor": NodeKey.from_seed(b"\x03" * 32).public_bytes.hex(),
    }[field]
    with pytest.raises(InputError, match="signature: does not verify"):
        Transaction.from_json(doc)


@pytest.mark.parametrize(
    ("kind", "body", "parameter"),
    [
        (TxKind.SUBMIT, {**BODY, "stake": 0}, "stake"),
        (TxKind.SUBMIT, {**BODY, "stake": 1.5}, "stake"),
        (TxKind.SUBMIT, {**BODY, "stake": True}, "stake"),
        (TxKind.SUBMIT, {**BODY, "content_hash": "xyz"}, "content_hash"),
        (TxKind.SUBMIT, {**BODY, "thread": "a b"}, "thread"),
        (TxKind.SUBMIT, {"thread": "t1"}, "body"),
        (TxKind.VOTE, {"spec": "s1", "approve": 1}, "approve"),
        (TxKind.THREAD, {"thread": "t", "title": "  "}, "title"),
        (TxKind.THREAD, {"thread": "t", "title": "a\nb"}, "title"),
        (TxKind.JOIN, {"name": "no spaces"}, "name"),
    ],
)
def test_bad_fields_are_refused_by_name(
    kind: TxKind, body: dict[str, object], parameter: str
) -> None:
    """Each malformed body field is refused with its name (amounts are positive ints only)."""
    with pytest.raises(InputError) as info:
        Transaction.sign(KEY, kind, body)
    assert info.value.parameter == parameter


def test_bad_envelopes_are_refused() -> None:
    """An unknown kind, a bad id, bad hex or extra keys are one-line input errors."""
    doc = Transaction.sign(KEY, TxKind.JOIN, {"name": "ada"}).to_json()
    for change, parameter in (
        ({"kind": "mint"}, "kind"),
        ({"actor": "zz"}, "actor"),
        ({"extra": 1}, "transaction"),
    ):
        with pytest.raises(InputError) as info:
            Transaction.from_json({**doc, **change})
        assert info.value.parameter == parameter
    with pytest.raises(InputError, match="id: must be"):
        Transaction.sign(KEY, TxKind.JOIN, {"name": "ada"}, tx_id="x" * 65)
    tx = Transaction.sign(KEY, TxKind.JOIN, {"name": "ada"})
    with pytest.raises(InputError, match="signature: must be 64 bytes"):
        dataclasses.replace(tx, signature=b"x")
