"""Argument checks shared by every storage adapter, so all of them reject the same input.

Rule: each check returns the value (normalised) or raises ``InputError`` naming the parameter;
no adapter writes anything before its checks have passed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from becomingone.errors import InputError
from becomingone.memory.protocols import Signature
from becomingone.witnessing.record import ChainHead, WitnessRecord

__all__ = [
    "check_append",
    "check_bytes",
    "check_finite",
    "check_index",
    "check_key",
    "check_limit",
    "check_revision",
    "check_signatures",
]

#: Keys and names: the characters a JetStream KV key may hold, so every adapter accepts the same.
_KEY = re.compile(r"[-/_=.A-Za-z0-9]+")
_KEY_MAX = 255


def check_key(value: object, parameter: str = "key") -> str:
    """``value`` if it is a valid key or name (``[-/_=.A-Za-z0-9]``, 1–255 chars, no leading,
    trailing or doubled dot); else ``InputError`` naming ``parameter``.

    >>> check_key("glyph.7")
    'glyph.7'
    """
    if (
        not isinstance(value, str)
        or len(value) > _KEY_MAX
        or not _KEY.fullmatch(value)
        or value.startswith(".")
        or value.endswith(".")
        or ".." in value
    ):
        raise InputError(parameter, f"must be 1-{_KEY_MAX} of [-/_=.A-Za-z0-9], got {value!r}")
    return value


def check_bytes(value: object, parameter: str) -> bytes:
    """``value`` as ``bytes`` if it is bytes-like; else ``InputError`` naming ``parameter``."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InputError(parameter, f"must be bytes, got {type(value).__name__}")
    return bytes(value)


def check_limit(limit: object) -> int | None:
    """``limit`` if it is ``None`` or an int ≥ 0; else ``InputError``."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InputError("limit", f"must be None or an integer >= 0, got {limit!r}")
    return limit


def check_finite(value: object, parameter: str) -> float:
    """``value`` as a float if it is a finite real number; else ``InputError``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(parameter, f"must be a finite number, got {value!r}")
    return float(value)


def check_index(value: object, parameter: str, minimum: int) -> int:
    """``value`` if it is an int ≥ ``minimum``; else ``InputError`` naming ``parameter``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(parameter, f"must be an integer >= {minimum}, got {value!r}")
    return value


def check_revision(value: object) -> int:
    """A revision a caller expects: an int ≥ 1."""
    return check_index(value, "expected_revision", 1)


def check_append(
    records: Sequence[WitnessRecord], head: ChainHead, count: int
) -> list[WitnessRecord]:
    """``records`` as a list if they and ``head`` may follow ``count`` stored records."""
    records = list(records)
    for r in records:
        if not isinstance(r, WitnessRecord):
            raise InputError("records", f"must be WitnessRecord values, got {type(r).__name__}")
    if not isinstance(head, ChainHead):
        raise InputError("head", f"must be a ChainHead, got {type(head).__name__}")
    if head.count != count + len(records):
        raise InputError("head", f"count {head.count} != {count} stored + {len(records)} new")
    if records and head.hash != records[-1].hash:
        raise InputError("head", "hash is not the hash of the last new record")
    return records


def check_signatures(t: float, signatures: Mapping[str, tuple[int, bytes]]) -> list[Signature]:
    """The signatures of one ``put`` as values, validated."""
    t = check_finite(t, "t")
    out = []
    for role, item in dict(signatures).items():
        if not (isinstance(item, tuple) and len(item) == 2):
            raise InputError("signatures", f"{role!r}: must map to (samples, state bytes)")
        samples = check_index(item[0], "samples", 0)
        state = check_bytes(item[1], "state")
        out.append(Signature(transducer=check_key(role, "transducer"), t=t, samples=samples,
                             state=state))  # fmt: skip
    return out
