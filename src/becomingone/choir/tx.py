"""Choir transactions: frozen, validated values signed by their actor.

Rule: a :class:`Transaction` exists only if its fields are well formed and its actor's Ed25519
signature over its canonical bytes verifies; nothing here touches storage or clocks. The
canonical bytes are a domain tag and the sorted, space-free JSON of ``id, kind, actor, body``,
so one changed byte fails the signature. ``id`` is chosen by the client and makes a
transaction idempotent: the ledger applies an id once and treats a replay as a no-op.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from becomingone.choir.price import TOTAL_SUPPLY
from becomingone.errors import InputError
from becomingone.keys import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, NodeKey, key_id, verify_signature

__all__ = ["Transaction", "TxKind", "content_hash", "new_id"]

_DOMAIN = b"becomingone-choir-tx-v1\x00"
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HASH = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class TxKind(enum.Enum):
    """What a transaction does (DESIGN.md §7)."""

    GENESIS = "genesis"  # the ledger mints the total supply into the treasury
    JOIN = "join"  # a key becomes a user and receives the join grant
    THREAD = "thread"  # a user opens a thread and is its first co-author
    POST = "post"  # a co-author publishes a message
    SUBMIT = "submit"  # anyone else proposes a spec with a stake in escrow
    VOTE = "vote"  # a co-author approves or denies a pending spec
    CLOSE = "close"  # settle a spec whose window is over or whose co-authors all voted
    DIVEST = "divest"  # a co-author takes balance / N from the thread and leaves


def _check_int(name: str, value: Any) -> None:
    if type(value) is not int or not 0 < value <= TOTAL_SUPPLY:
        raise InputError(name, f"must be an integer in 1..{TOTAL_SUPPLY}, got {value!r}")


def _check_str(pattern: re.Pattern[str], what: str) -> Any:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise InputError(name, f"must be {what}, got {value!r}")

    return check


def _check_title(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InputError(name, "must be 1-200 characters, not blank")
    if any(ord(c) < 32 for c in value):
        raise InputError(name, "must not contain control characters")


def _check_bool(name: str, value: Any) -> None:
    if type(value) is not bool:
        raise InputError(name, f"must be true or false, got {value!r}")


_is_id = _check_str(_ID, "1-64 of A-Z a-z 0-9 . _ -")
_is_hash = _check_str(_HASH, "64 lowercase hex digits (SHA-256)")
_is_name = _check_str(_NAME, "1-64 of A-Z a-z 0-9 _ . -")

#: The body fields of each kind and how each is checked: one table, no scattered ``if``.
BODY: dict[TxKind, dict[str, Any]] = {
    TxKind.GENESIS: {"supply": _check_int},
    TxKind.JOIN: {"name": _is_name},
    TxKind.THREAD: {"thread": _is_id, "title": _check_title},
    TxKind.POST: {"thread": _is_id, "message": _is_id, "content_hash": _is_hash},
    TxKind.SUBMIT: {
        "thread": _is_id,
        "spec": _is_id,
        "content_hash": _is_hash,
        "stake": _check_int,
    },
    TxKind.VOTE: {"spec": _is_id, "approve": _check_bool},
    TxKind.CLOSE: {"spec": _is_id},
    TxKind.DIVEST: {"thread": _is_id},
}


def content_hash(text: str) -> str:
    """Hex SHA-256 of a message's UTF-8 text: what the ledger stores instead of the text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_id() -> str:
    """A fresh random transaction (or thread, message, spec) id: 32 hex digits."""
    return uuid.uuid4().hex


def _message(tx_id: str, kind: TxKind, actor: bytes, body: Mapping[str, Any]) -> bytes:
    doc = {"id": tx_id, "kind": kind.value, "actor": actor.hex(), "body": dict(body)}
    return _DOMAIN + _JSON.encode(doc).encode("utf-8")


@dataclass(frozen=True, slots=True, kw_only=True)
class Transaction:
    """One signed Choir transaction.

    Examples
    --------
    >>> key = NodeKey.from_seed(bytes(32))
    >>> tx = Transaction.sign(key, TxKind.JOIN, {"name": "ada"}, tx_id="t1")
    >>> tx.actor_id == key.id, Transaction.from_json(tx.to_json()) == tx
    (True, True)
    """

    id: str
    kind: TxKind
    actor: bytes
    body: Mapping[str, Any]
    signature: bytes
    #: The canonical bytes the signature covers, encoded once when the signature is checked.
    _signed: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _is_id("id", self.id)
        if not isinstance(self.kind, TxKind):
            raise InputError("kind", f"must be a TxKind, got {self.kind!r}")
        if not isinstance(self.actor, bytes) or len(self.actor) != PUBLIC_KEY_BYTES:
            raise InputError("actor", f"must be a {PUBLIC_KEY_BYTES}-byte Ed25519 public key")
        fields = BODY[self.kind]
        if not isinstance(self.body, Mapping) or set(self.body) != set(fields):
            got = sorted(self.body) if isinstance(self.body, Mapping) else self.body
            raise InputError("body", f"{self.kind.value} needs exactly {sorted(fields)}, got {got}")
        for name, check in fields.items():
            check(name, self.body[name])
        # A read-only copy: the body cannot change after the signature is checked.
        object.__setattr__(self, "body", MappingProxyType(dict(self.body)))
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_BYTES:
            raise InputError("signature", f"must be {SIGNATURE_BYTES} bytes")
        object.__setattr__(self, "_signed", _message(self.id, self.kind, self.actor, self.body))
        if not verify_signature(self.actor, self._signed, self.signature):
            raise InputError("signature", f"does not verify for {self.kind.value} {self.id}")

    @classmethod
    def sign(
        cls, key: NodeKey, kind: TxKind, body: Mapping[str, Any], *, tx_id: str | None = None
    ) -> Transaction:
        """A transaction of ``kind`` by ``key`` (a fresh random id unless ``tx_id``)."""
        tx_id = new_id() if tx_id is None else tx_id
        _is_id("id", tx_id)
        body = dict(body)
        signature = key.sign(_message(tx_id, kind, key.public_bytes, body))
        return cls(id=tx_id, kind=kind, actor=key.public_bytes, body=body, signature=signature)

    @property
    def actor_id(self) -> str:
        """Key id of the actor: the user id."""
        return key_id(self.actor)

    def message(self) -> bytes:
        """The canonical bytes the signature covers."""
        return self._signed

    def digest(self) -> str:
        """Hex SHA-256 of the canonical bytes: equal ids with unequal digests conflict."""
        return hashlib.sha256(self._signed).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (actor and signature as hex) that :meth:`from_json` reads back."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "actor": self.actor.hex(),
            "body": dict(self.body),
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, doc: Any) -> Transaction:
        """Parse and verify a transaction from :meth:`to_json` output (``InputError`` if bad)."""
        if not isinstance(doc, Mapping) or set(doc) != {"id", "kind", "actor", "body", "signature"}:
            raise InputError("transaction", "must have exactly id, kind, actor, body, signature")
        try:
            kind = TxKind(doc["kind"])
        except ValueError:
            raise InputError("kind", f"unknown transaction kind {doc['kind']!r}") from None
        return cls(
            id=doc["id"],
            kind=kind,
            actor=_hex("actor", doc["actor"]),
            body=doc["body"],
            signature=_hex("signature", doc["signature"]),
        )


def _hex(name: str, value: Any) -> bytes:
    try:
        return bytes.fromhex(value)
    except (TypeError, ValueError):
        raise InputError(name, "must be hex") from None
