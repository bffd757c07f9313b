"""A per-process memo of Ed25519 verifications and packet parses, bounded and counted.

Rule: a cache never changes a decision, it only saves repeating one. A verification result is
stored under a BLAKE2b-256 digest of the exact public key, signature and signed bytes, so a
changed byte (in the body, the signature or the key) is a different entry and is verified
afresh; bad results are cached as bad. A parse is stored under the exact wire bytes (a dict
compares the whole key), and only successful parses are kept, so malformed bytes are parsed
— and rejected — every time. Both memos are least-recently-used and hold at most ``maxsize``
entries each. Everything that decides *acceptance per receiver* (cluster, roster, clock skew,
replay) stays in :class:`~becomingone.sync.ssep.PacketValidator`, so rejection counters are the
same with or without a cache. No I/O, no clocks, no threads (share one instance per event
loop, e.g. every supervisor of a :class:`~becomingone.runtime.LocalCluster`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from becomingone.errors import InputError
from becomingone.keys import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, verify_signature

__all__ = ["DEFAULT_CACHE_SIZE", "CacheStats", "VerifyCache"]

#: Entries per memo by default: a tick of a 2000-cell fractal or a 256-cell mesh sends fewer
#: distinct packets than this, and an entry of the verification memo costs ~150 bytes.
DEFAULT_CACHE_SIZE = 16_384

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStats:
    """Counters of a :class:`VerifyCache` (verifications and parses)."""

    hits: int
    misses: int
    parse_hits: int
    parse_misses: int
    size: int
    maxsize: int

    def to_json(self) -> dict[str, int]:
        """A JSON-ready dict."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "parse_hits": self.parse_hits,
            "parse_misses": self.parse_misses,
            "size": self.size,
            "maxsize": self.maxsize,
        }


class VerifyCache:
    """Bounded LRU memo of signature checks (and packet parses) shared by validators.

    Parameters
    ----------
    maxsize : entries kept in each memo (>= 1); the least recently used goes first.

    Examples
    --------
    >>> from becomingone.keys import NodeKey
    >>> key, cache = NodeKey.from_seed(b"k" * 32), VerifyCache(maxsize=8)
    >>> sig = key.sign(b"body")
    >>> cache.verify(key.public_bytes, b"body", sig), cache.verify(key.public_bytes, b"body", sig)
    (True, True)
    >>> cache.verify(key.public_bytes, b"bodY", sig)
    False
    >>> cache.stats().hits, cache.stats().misses
    (1, 2)
    """

    __slots__ = ("_parsed", "_verified", "hits", "maxsize", "misses", "parse_hits", "parse_misses")

    def __init__(self, *, maxsize: int = DEFAULT_CACHE_SIZE) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise InputError("maxsize", f"must be an integer >= 1, got {maxsize!r}")
        self.maxsize = maxsize
        self.hits = self.misses = self.parse_hits = self.parse_misses = 0
        self._verified: OrderedDict[bytes, bool] = OrderedDict()
        self._parsed: OrderedDict[bytes, object] = OrderedDict()

    def __len__(self) -> int:
        """Entries in the verification memo."""
        return len(self._verified)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """Same result as :func:`~becomingone.keys.verify_signature`, computed once per
        distinct (public key, signature, message)."""
        if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
            return False  # cheap and never cached: fixed lengths make the digest unambiguous
        digest = hashlib.blake2b(public_key + signature + message, digest_size=32).digest()
        memo = self._verified
        found = memo.get(digest)
        if found is not None:
            self.hits += 1
            memo.move_to_end(digest)
            return found
        self.misses += 1
        good = verify_signature(public_key, message, signature)
        memo[digest] = good
        if len(memo) > self.maxsize:
            memo.popitem(last=False)
        return good

    def parse(self, data: bytes, parser: Callable[[bytes], T]) -> T:
        """``parser(data)``, computed once per distinct ``data`` while it stays cached.

        ``parser`` must be a pure function of the bytes returning an immutable value; an
        exception it raises propagates and nothing is cached. Anything but ``bytes`` (e.g. a
        ``bytearray``) is passed to ``parser`` uncached.
        """
        if type(data) is not bytes:  # only immutable, hashable bytes are memo keys
            return parser(data)
        key = data
        memo = self._parsed
        found = memo.get(key)
        if found is not None:
            self.parse_hits += 1
            memo.move_to_end(key)
            return found  # type: ignore[return-value]
        self.parse_misses += 1
        value = parser(key)
        memo[key] = value
        if len(memo) > self.maxsize:
            memo.popitem(last=False)
        return value

    def stats(self) -> CacheStats:
        """Current counters."""
        return CacheStats(
            hits=self.hits,
            misses=self.misses,
            parse_hits=self.parse_hits,
            parse_misses=self.parse_misses,
            size=len(self._verified),
            maxsize=self.maxsize,
        )
