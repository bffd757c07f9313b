"""The key roster: who is a member of a cluster (node id → Ed25519 public key).

Rule: a roster is an immutable, validated value. Node ids follow the SSEP id pattern, every key
is 32 bytes and no two members share a key (one identity per cell, DESIGN.md §5). Changes make
a new roster (:meth:`KeyRoster.with_member`, :meth:`KeyRoster.without_member`); its canonical
bytes and digest let cells agree on one membership. No I/O: later issues distribute it.

Canonical bytes (big-endian), members in ascending id order::

    b"B1ROSTER" | u8 version=1 | u32 count | count × (u8 len + node_id (ASCII) | 32-byte key)
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType

from becomingone.errors import InputError
from becomingone.keys import PUBLIC_KEY_BYTES

__all__ = ["NODE_ID_PATTERN", "KeyRoster"]

#: Node ids and cluster names: 1–64 of ``[A-Za-z0-9._:-]`` (ASCII, so one byte per char).
NODE_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_MAGIC = b"B1ROSTER"
_VERSION = 1
_HEAD = struct.Struct(">8sBI")


def _check_member(node_id: object, key: object) -> tuple[str, bytes]:
    if not isinstance(node_id, str) or not NODE_ID_PATTERN.match(node_id):
        raise InputError("roster", f"node id {node_id!r} must be 1-64 of [A-Za-z0-9._:-]")
    if not isinstance(key, bytes | bytearray) or len(key) != PUBLIC_KEY_BYTES:
        raise InputError("roster", f"key of {node_id!r} must be {PUBLIC_KEY_BYTES} bytes")
    return node_id, bytes(key)


class KeyRoster(Mapping[str, bytes]):
    """An immutable membership: node id → Ed25519 public key (32 bytes).

    A read-only ``Mapping``, so code that took a plain dict of keys takes a roster unchanged.

    Examples
    --------
    >>> r = KeyRoster({"b": bytes(32), "a": bytes([1]) * 32})
    >>> list(r), r.node_of(bytes(32))
    (['a', 'b'], 'b')
    >>> KeyRoster.from_bytes(r.to_bytes()) == r
    True
    """

    __slots__ = ("_by_key", "_key_of", "_members")

    def __init__(self, members: Mapping[str, bytes] | None = None) -> None:
        checked = dict(_check_member(n, k) for n, k in (members or {}).items())
        by_key: dict[bytes, str] = {}
        for node_id in sorted(checked):
            other = by_key.setdefault(checked[node_id], node_id)
            if other != node_id:
                raise InputError("roster", f"{other!r} and {node_id!r} share one public key")
        members = {n: checked[n] for n in sorted(checked)}
        self._members = MappingProxyType(members)
        self._key_of = members.get  # the plain dict's own lookup, behind the read-only proxy
        self._by_key = MappingProxyType(by_key)

    @classmethod
    def of(cls, keys: Mapping[str, bytes]) -> KeyRoster:
        """``keys`` as a roster (a roster is returned as is; a plain mapping is validated)."""
        return keys if isinstance(keys, KeyRoster) else cls(keys)

    # Mapping ---------------------------------------------------------------------------------

    def __getitem__(self, node_id: str) -> bytes:
        return self._members[node_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._members

    def get(self, node_id: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        """The key of ``node_id``, or ``default`` (one dict lookup: receivers call it per
        packet)."""
        return self._members.get(node_id, default)

    @property
    def key_of(self) -> Callable[[str], bytes | None]:
        """``node_id → key or None`` as the underlying dict's own ``get`` (a C call, for code
        that looks up every packet's signer; the roster stays read-only through it)."""
        return self._key_of

    def __len__(self) -> int:
        return len(self._members)

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"KeyRoster({len(self)} members, digest {self.digest[:16]})"

    # Lookups and changes ---------------------------------------------------------------------

    def node_of(self, public_key: bytes) -> str | None:
        """The member holding ``public_key``, or ``None``."""
        return self._by_key.get(bytes(public_key))

    def with_member(self, node_id: str, public_key: bytes) -> KeyRoster:
        """A roster with ``node_id`` added (or its key replaced by ``public_key``)."""
        return KeyRoster({**self._members, node_id: public_key})

    def without_member(self, node_id: str) -> KeyRoster:
        """A roster without ``node_id``; ``InputError`` if it is not a member."""
        if node_id not in self._members:
            raise InputError("node_id", f"{node_id!r} is not a member")
        return KeyRoster({n: k for n, k in self._members.items() if n != node_id})

    # Canonical form --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Canonical bytes (the module docstring gives the layout)."""
        parts = [_HEAD.pack(_MAGIC, _VERSION, len(self._members))]
        for node_id, key in self._members.items():
            raw = node_id.encode("ascii")
            parts += [bytes([len(raw)]), raw, key]
        return b"".join(parts)

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical bytes, hex: equal digests mean equal memberships."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyRoster:
        """Parse canonical bytes; ``InputError`` naming ``roster`` for anything else."""
        data = bytes(data)
        if len(data) < _HEAD.size:
            raise InputError("roster", "bytes are truncated")
        magic, version, count = _HEAD.unpack_from(data)
        if magic != _MAGIC:
            raise InputError("roster", "not roster bytes (bad magic)")
        if version != _VERSION:
            raise InputError("roster", f"version {version} is not supported (this reads 1)")
        members, pos = {}, _HEAD.size
        for _ in range(count):
            size = data[pos] if pos < len(data) else 0
            end = pos + 1 + size + PUBLIC_KEY_BYTES
            if size == 0 or end > len(data):
                raise InputError("roster", "bytes are truncated or hold an empty node id")
            node_id = data[pos + 1 : pos + 1 + size].decode("ascii", errors="replace")
            if node_id in members:
                raise InputError("roster", f"node id {node_id!r} appears twice")
            members[node_id] = data[end - PUBLIC_KEY_BYTES : end]
            pos = end
        if pos != len(data):
            raise InputError("roster", "trailing bytes after the last member")
        roster = cls(members)
        if roster.to_bytes() != data:
            raise InputError("roster", "bytes are not canonical (members out of order)")
        return roster
