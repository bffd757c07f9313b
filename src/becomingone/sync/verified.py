"""A per-process memo of Ed25519 verifications and packet parses, bounded and counted.

Rule: a cache never changes a decision, it only saves repeating one. A verification result is
stored under the exact bytes of (public key, signature, signed message) — a dict compares the
whole key on a hash match, so unlike a digest no collision can ever stand in for a changed
byte: a changed byte (in the body, the signature or the key) is a different entry and is
verified afresh; bad results are cached as bad. Signatures this process makes itself may be
recorded as good (:meth:`VerifyCache.sign`): Ed25519 signing is deterministic and correct, so
verifying them again here would only repeat a known result; a receiver still looks them up
under the key *its* roster holds for the sender. A parse is stored under the exact wire bytes,
and only successful parses are kept, so malformed bytes are parsed — and rejected — every time.
Both memos are least-recently-used and hold at most ``maxsize`` entries each. A third memo,
:attr:`VerifyCache.vetted`, remembers for wire bytes whose parse and verification the batch path
has done which key verified them and with what result, so the next receiver of the same bytes
finds both with one lookup (the caller then moves both memos' entries to their ends and counts
a parse hit and a verification hit, exactly as :meth:`VerifyCache.parse` and
:meth:`VerifyCache.verify` would: :meth:`VerifyCache.shortcut`). Everything that
decides *acceptance per receiver* (cluster, roster, clock skew, replay) stays in
:class:`~becomingone.sync.ssep.PacketValidator`, so rejection counters are the same with or
without a cache. No I/O, no clocks, no threads (share one instance per event loop, e.g. every
supervisor of a :class:`~becomingone.runtime.LocalCluster`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from becomingone.errors import InputError
from becomingone.keys import NodeKey, verify_signature

__all__ = ["DEFAULT_CACHE_SIZE", "CacheStats", "VerifyCache"]

#: Entries per memo by default: a tick of a 2000-cell fractal or a 256-cell mesh sends fewer
#: distinct packets than this; an entry costs ~0.5 KiB (the parsed packet and its bytes), so
#: a full cache holds ~8 MiB per memo.
DEFAULT_CACHE_SIZE = 16_384

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStats:
    """Counters of a :class:`VerifyCache` (verifications and parses)."""

    hits: int
    misses: int
    signed: int
    parse_hits: int
    parse_misses: int
    size: int
    maxsize: int

    def to_json(self) -> dict[str, int]:
        """A JSON-ready dict."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "signed": self.signed,
            "parse_hits": self.parse_hits,
            "parse_misses": self.parse_misses,
            "size": self.size,
            "maxsize": self.maxsize,
        }


#: An entry of :attr:`VerifyCache.vetted`: (parse, verification key (public key, signature,
#: message), result, the caller's facts).
Vetted = tuple[object, tuple[bytes, bytes, bytes], bool, object]


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

    __slots__ = (
        "_parsed",
        "_verified",
        "hits",
        "maxsize",
        "misses",
        "parse_hits",
        "parse_misses",
        "signed",
        "vetted",
    )

    def __init__(self, *, maxsize: int = DEFAULT_CACHE_SIZE) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise InputError("maxsize", f"must be an integer >= 1, got {maxsize!r}")
        self.maxsize = maxsize
        self.hits = self.misses = self.signed = self.parse_hits = self.parse_misses = 0
        self._verified: OrderedDict[tuple[bytes, bytes, bytes], bool] = OrderedDict()
        self._parsed: OrderedDict[bytes, object] = OrderedDict()
        #: wire bytes → (parse, verification key (public key, signature, message), result,
        #: the caller's facts about the parse) of packets the batch path parsed and verified:
        #: a shortcut to both memos, valid only while both entries are still there (oldest
        #: insertion evicted first, at most ``maxsize``).
        self.vetted: OrderedDict[bytes, Vetted] = OrderedDict()

    def __len__(self) -> int:
        """Entries in the verification memo."""
        return len(self._verified)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """Same result as :func:`~becomingone.keys.verify_signature`, computed once per
        distinct (public key, signature, message)."""
        key = (public_key, signature, message)
        memo = self._verified
        try:
            found = memo.get(key)
        except TypeError:  # an unhashable buffer (bytearray): use its bytes
            key = (bytes(public_key), bytes(signature), bytes(message))
            found = memo.get(key)
        if found is not None:
            self.hits += 1
            memo.move_to_end(key)
            return found
        self.misses += 1
        good = verify_signature(key[0], key[2], key[1])
        self._store(key, good)
        return good

    def verify_many(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        """:meth:`verify` of each (public key, message, signature) in order, in one call:
        the same memo operations, results and counters."""
        memo, out, hits = self._verified, [], 0
        get, touch = memo.get, memo.move_to_end
        for public_key, message, signature in items:
            key = (public_key, signature, message)
            try:
                found = get(key)
            except TypeError:  # an unhashable buffer: verify() takes its bytes
                found = None
            if found is None:
                out.append(self.verify(public_key, message, signature))
                continue
            hits += 1
            touch(key)
            out.append(found)
        self.hits += hits
        return out

    def sign(self, key: NodeKey, message: bytes) -> bytes:
        """``key.sign(message)``, recorded as verified: a receiver in this process that holds
        ``key``'s public key for the sender finds it here instead of verifying it again."""
        signature = key.sign(message)
        self.signed += 1
        self._store((key.public_bytes, signature, bytes(message)), True)
        return signature

    def vet(
        self,
        data: bytes,
        parsed: object,
        key: tuple[bytes, bytes, bytes],
        good: bool,
        facts: object = None,
    ) -> None:
        """Remember that ``data`` parsed to ``parsed`` and that its verification under ``key``
        (public key, signature, message) gave ``good``, with ``facts``: what the caller reads
        from the parse on every hit, computed once (see :attr:`vetted`)."""
        vetted = self.vetted
        vetted[data] = (parsed, key, good, facts)
        if len(vetted) > self.maxsize:
            vetted.popitem(last=False)  # O(1); next(iter(dict)) rescans deleted slots

    def shortcut(
        self,
    ) -> tuple[
        Callable[[bytes], Vetted | None],
        Callable[[bytes], None],
        Callable[[tuple[bytes, bytes, bytes]], None],
    ]:
        """(``vetted.get``, the parse memo's ``move_to_end``, the verification memo's
        ``move_to_end``), for a loop over a batch: an entry of :attr:`vetted` counts only if
        both memos still hold its parse and its verification — a ``move_to_end`` of a
        missing key raises ``KeyError`` before anything moves, and a parse moved before the
        verification was found missing is moved again by the caller's :meth:`parse`, the same
        end state. The caller adds the hits it took with :meth:`count_hits`."""
        return self.vetted.get, self._parsed.move_to_end, self._verified.move_to_end

    def count_hits(self, count: int) -> None:
        """Count ``count`` parse hits and as many verification hits (see :meth:`shortcut`)."""
        self.parse_hits += count
        self.hits += count

    def remember_parse(self, data: bytes, value: object) -> None:
        """Store ``value`` as the parse of ``data`` (the sender's own packet and its bytes,
        which the parser is tested to round-trip exactly), so in-process receivers skip it."""
        memo = self._parsed
        memo[data] = value
        memo.move_to_end(data)
        if len(memo) > self.maxsize:
            memo.popitem(last=False)

    def _store(self, key: tuple[bytes, bytes, bytes], good: bool) -> None:
        memo = self._verified
        memo[key] = good
        memo.move_to_end(key)
        if len(memo) > self.maxsize:
            memo.popitem(last=False)

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

    def parse_many(
        self, batch: Sequence[bytes], parser: Callable[[bytes], T], errors: type[E]
    ) -> list[T | E]:
        """:meth:`parse` of each item of ``batch`` in order, in one call: the same memo
        operations and counters; where ``parser`` raises ``errors``, the exception stands in
        the item's place (and, as in :meth:`parse`, nothing is cached for it)."""
        out: list[T | E] = []
        memo, hits = self._parsed, 0
        get, touch = memo.get, memo.move_to_end
        for data in batch:
            found = get(data) if type(data) is bytes else None
            if found is None:
                try:
                    out.append(self.parse(data, parser))
                except errors as exc:
                    out.append(exc)
                continue
            hits += 1
            touch(data)
            out.append(found)  # type: ignore[arg-type]  # the memo holds parser's values
        self.parse_hits += hits
        return out

    def stats(self) -> CacheStats:
        """Current counters."""
        return CacheStats(
            hits=self.hits,
            misses=self.misses,
            signed=self.signed,
            parse_hits=self.parse_hits,
            parse_misses=self.parse_misses,
            size=len(self._verified),
            maxsize=self.maxsize,
        )
