"""The append-only, Ed25519-signed hash chain: appending and verifying.

Rule: :class:`WitnessChain` is the only writer of records; it is sans-IO (the caller stores what
it returns, then calls :meth:`WitnessChain.commit`, or :meth:`WitnessChain.rollback` if storing
failed). :func:`verify` walks records in stored order and names the first bad one: a changed
byte, a removed or reordered record, a bad signature, a missing tail.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from becomingone.keys import NodeKey, key_id, verify_signature
from becomingone.witnessing.record import (
    GENESIS_HASH,
    ChainHead,
    Level,
    WitnessRecord,
    canonical_payload,
    head_message,
    record_hash,
)

__all__ = ["VerifyReport", "WitnessChain", "verify"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    """Result of :func:`verify`: ``first_bad`` is the seq of the first bad record, if any."""

    ok: bool
    checked: int
    first_bad: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"chain verified: {self.checked} records"
        return f"record {self.first_bad}: {self.reason} (checked {self.checked})"


class WitnessChain:
    """Appends signed records after ``(count, last_hash)``: the head of a stored chain."""

    def __init__(self, key: NodeKey, *, count: int = 0, last_hash: str = GENESIS_HASH) -> None:
        self._key = key
        self._committed = (count, last_hash)
        self._count, self._last = count, last_hash

    @property
    def count(self) -> int:
        """Records in the chain, pending ones included."""
        return self._count

    @property
    def last_hash(self) -> str:
        """Hash of the newest record (``GENESIS_HASH`` for an empty chain)."""
        return self._last

    @property
    def signer(self) -> str:
        """Key id of this chain's signer."""
        return self._key.id

    def append(
        self, level: Level, kind: str, payload: Mapping[str, Any], *, now: float
    ) -> WitnessRecord:
        """Sign and link a new record at time ``now`` (seconds); the caller stores it."""
        text = canonical_payload(payload)
        digest = record_hash(
            seq=self._count,
            level=level.value,
            time=now,
            kind=kind,
            payload=text,
            prev_hash=self._last,
            signer=self._key.id,
        )
        record = WitnessRecord(
            seq=self._count,
            level=level.value,
            time=float(now),
            kind=kind,
            payload=text,
            prev_hash=self._last,
            hash=digest,
            signer=self._key.id,
            signature=self._key.sign(bytes.fromhex(digest)),
        )
        self._count += 1
        self._last = digest
        return record

    def head(self) -> ChainHead:
        """A signed head for the chain as it is now (pending records included)."""
        sig = self._key.sign(head_message(self._count, self._last))
        return ChainHead(count=self._count, hash=self._last, signature=sig)

    def commit(self) -> None:
        """The pending records are stored: they become the rollback point."""
        self._committed = (self._count, self._last)

    def rollback(self) -> None:
        """Storing failed: forget the pending records."""
        self._count, self._last = self._committed


def _check(record: WitnessRecord, seq: int, prev: str, public_key: bytes) -> str:
    if record.seq != seq:
        return f"expected record {seq} here, found record {record.seq} (removed or reordered)"
    if record.prev_hash != prev:
        return "prev_hash does not match the previous record's hash"
    if not hmac.compare_digest(record.computed_hash(), record.hash):
        return "content does not match its hash (changed)"
    if record.signer != key_id(public_key):
        return f"signed by {record.signer}, expected {key_id(public_key)}"
    try:
        digest = bytes.fromhex(record.hash)
    except ValueError:
        return "hash is not hex"
    if not verify_signature(public_key, digest, record.signature):
        return "bad signature"
    return ""


def verify(
    records: Iterable[WitnessRecord],
    public_key: bytes,
    *,
    start: int = 0,
    prev_hash: str = GENESIS_HASH,
    head: ChainHead | None = None,
) -> VerifyReport:
    """Walk ``records`` (stored order) from seq ``start`` after ``prev_hash``.

    With ``head`` (the stored signed head) the walk must also end exactly at the head: a
    removed tail or a forged head is reported. The first problem stops the walk.
    """
    seq, prev, checked = start, prev_hash, 0
    for record in records:
        reason = _check(record, seq, prev, public_key)
        if reason:
            return VerifyReport(ok=False, checked=checked, first_bad=seq, reason=reason)
        seq, prev, checked = seq + 1, record.hash, checked + 1
    if head is None:
        return VerifyReport(ok=True, checked=checked)
    if not verify_signature(public_key, head_message(head.count, head.hash), head.signature):
        return VerifyReport(ok=False, checked=checked, first_bad=seq, reason="bad head signature")
    if head.count > seq:
        return VerifyReport(
            ok=False,
            checked=checked,
            first_bad=seq,
            reason=f"missing: the signed head says the chain has {head.count} records",
        )
    if head.count < seq or head.hash != prev:
        bad = head.count if head.count < seq else seq - 1
        reason = "records beyond the signed head" if head.count < seq else "head hash mismatch"
        return VerifyReport(ok=False, checked=checked, first_bad=bad, reason=reason)
    return VerifyReport(ok=True, checked=checked)
