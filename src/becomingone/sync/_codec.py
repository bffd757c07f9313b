"""Canonical JSON bytes for protocol state values (CPS, network stability).

Rule: one encoding for every sans-IO state value: UTF-8 JSON with sorted keys, no spaces and no
NaN or infinity, tagged with a ``format`` name and an integer ``version``. Reading checks the
tag, every field's type, and that the bytes are exactly what writing the value back gives, so
``to_bytes(from_bytes(b)) == b``. Errors are ``InputError`` naming ``state``. No I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from becomingone.errors import InputError

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)


def _refuse_constant(name: str) -> float:
    raise InputError("state", f"non-finite number {name} in state bytes")


def dump(kind: str, version: int, body: Mapping[str, Any]) -> bytes:
    """``body`` tagged with ``format`` and ``version`` as canonical JSON bytes."""
    try:
        return _ENCODER.encode({"format": kind, "version": version, **body}).encode("utf-8")
    except ValueError as exc:
        raise InputError("state", f"cannot encode a non-finite value: {exc}") from None


def load(kind: str, version: int, data: bytes, check: Callable[[Fields], Any]) -> Any:
    """Parse bytes written by :func:`dump`; ``check`` builds the value from the fields."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InputError("state", f"expected bytes, got {type(data).__name__}")
    try:
        doc = json.loads(bytes(data).decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError("state", f"not {kind} state bytes: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != kind:
        raise InputError("state", f"not {kind} state bytes (format tag missing or different)")
    if doc.get("version") != version:
        raise InputError("state", f"{kind} version {doc.get('version')!r} is not {version}")
    return check(Fields(kind, doc))


class Fields:
    """Typed access to one parsed JSON object; each getter raises ``InputError`` (``state``)."""

    def __init__(self, where: str, doc: Mapping[str, Any]) -> None:
        self.where = where
        self.doc = doc

    def _get(self, name: str) -> Any:
        if name not in self.doc:
            raise InputError("state", f"{self.where}: field {name!r} is missing")
        return self.doc[name]

    def _bad(self, name: str, what: str) -> InputError:
        return InputError("state", f"{self.where}: {name} must be {what}")

    def integer(self, name: str) -> int:
        """A non-negative integer below 2**64."""
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
            raise self._bad(name, "an integer in [0, 2**64)")
        return value

    def number(self, name: str) -> float:
        """A finite number."""
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(name, "a number")
        if not math.isfinite(value):
            raise self._bad(name, "finite")
        return float(value)

    def opt_number(self, name: str) -> float | None:
        """A finite number or null."""
        return None if self._get(name) is None else self.number(name)

    def flag(self, name: str) -> bool:
        """true or false."""
        value = self._get(name)
        if not isinstance(value, bool):
            raise self._bad(name, "true or false")
        return value

    def text(self, name: str) -> str:
        """A string."""
        value = self._get(name)
        if not isinstance(value, str):
            raise self._bad(name, "a string")
        return value

    def hex(self, name: str) -> bytes:
        """Bytes written as lowercase hex."""
        text = self.text(name)
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise self._bad(name, "hex digits") from None

    def rows(self, name: str) -> list[Fields]:
        """A list of objects."""
        value = self._get(name)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._bad(name, "a list of objects")
        return [Fields(f"{self.where}.{name}", v) for v in value]

    def obj(self, name: str) -> Fields:
        """A nested object."""
        value = self._get(name)
        if not isinstance(value, dict):
            raise self._bad(name, "an object")
        return Fields(f"{self.where}.{name}", value)
