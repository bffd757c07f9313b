"""Bearer tokens for writes: created once, stored only as a hash, revocable; and rate limits.

Rule: a token is ``bo1_`` + 32 random bytes (URL-safe base64); only its SHA-256 is stored, as
an entry of the append-only log ``api.tokens`` in the cell's ``memory.sqlite3`` (``created``
and ``revoked`` events, JSON), so the token list is the fold of that log and revoking is one
more entry. A token is shown once, at creation. :class:`TokenBucket` is the per-token rate
limit: sans-IO, time arrives as ``now`` (seconds, monotonic).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path

from becomingone.errors import CasConflict, InputError
from becomingone.memory.sqlite import SqliteAppendLog
from becomingone.memory.store import DB_NAME

__all__ = [
    "TOKEN_LOG",
    "TOKEN_PREFIX",
    "TokenBucket",
    "TokenInfo",
    "TokenStore",
    "check_token_name",
    "hash_token",
]

#: Name of the append-only log that holds token events.
TOKEN_LOG = "api.tokens"
#: Every token starts with this (so a leaked one is easy to find in logs and files).
TOKEN_PREFIX = "bo1_"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def hash_token(token: str) -> str:
    """Hex SHA-256 of a token (what is stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenInfo:
    """A token as listed: its name, creation time, revocation time (None: valid); no secret."""

    name: str
    created_at: float
    revoked_at: float | None = None
    sha256: str = ""

    @property
    def active(self) -> bool:
        """True until revoked."""
        return self.revoked_at is None


def check_token_name(name: str) -> None:
    """``InputError`` (parameter ``name``) unless ``name`` is 1-64 of A-Z a-z 0-9 _ . -."""
    if not _NAME.match(name):
        raise InputError("name", f"{name!r}: use 1-64 of A-Z a-z 0-9 _ . -")


class TokenStore:
    """The tokens of one data dir (``DATA_DIR/memory.sqlite3``, log :data:`TOKEN_LOG`).

    Reads fold the log once and again only when it grew, so checking a token on every write
    costs one ``MAX(idx)`` query.
    """

    def __init__(self, data_dir: Path) -> None:
        self.log = SqliteAppendLog(Path(data_dir) / DB_NAME, TOKEN_LOG)
        self._seen = 0
        self._tokens: dict[str, TokenInfo] = {}

    def close(self) -> None:
        """Close the database connection."""
        self.log.close()

    def _fold(self) -> dict[str, TokenInfo]:
        last = self.log.last_index()
        if last != self._seen:
            for raw in self.log.read(self._seen + 1):
                self._apply(json.loads(raw))
            self._seen = last
        return self._tokens

    def _apply(self, event: dict[str, object]) -> None:
        name = str(event["name"])
        at = float(str(event["at"]))
        if event["op"] == "created":
            self._tokens[name] = TokenInfo(name=name, created_at=at, sha256=str(event["sha256"]))
        elif event["op"] == "revoked" and name in self._tokens:
            self._tokens[name] = replace(self._tokens[name], revoked_at=at)

    def list(self) -> list[TokenInfo]:
        """Every token ever created (revoked ones too), by name."""
        return sorted(self._fold().values(), key=lambda t: t.name)

    def create(self, name: str, *, now: float | None = None) -> str:
        """A new token named ``name``; returns the token (the only time it is shown).

        Raises ``InputError`` (parameter ``name``) for a bad or already used name.
        """
        check_token_name(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        event = {
            "op": "created",
            "name": name,
            "sha256": hash_token(token),
            "at": time.time() if now is None else now,
        }
        self._append(name, event, exists_ok=False)
        return token

    def revoke(self, name: str, *, now: float | None = None) -> None:
        """Revoke ``name``; ``InputError`` if there is no such active token."""
        info = self._fold().get(name)
        if info is None or not info.active:
            raise InputError("name", f"no active token named {name!r}")
        event = {"op": "revoked", "name": name, "at": time.time() if now is None else now}
        self._append(name, event, exists_ok=True)

    def _append(self, name: str, event: dict[str, object], *, exists_ok: bool) -> None:
        """Append ``event`` iff no one else wrote in between (else re-check and retry)."""
        for _ in range(10):
            known = self._fold()
            if not exists_ok and name in known:
                raise InputError(
                    "name", f"a token named {name!r} exists (revoke it or pick another)"
                )
            try:
                self.log.append(json.dumps(event).encode(), expected_last=self._seen)
                return
            except CasConflict:
                continue
        raise InputError("name", "the token list kept changing; try again")  # pragma: no cover

    def check(self, token: str) -> TokenInfo | None:
        """The token's entry (maybe revoked) or None when no token has this value."""
        digest = hash_token(token)
        for info in self._fold().values():
            if hmac.compare_digest(info.sha256, digest):
                return info
        return None


@dataclass(slots=True)
class TokenBucket:
    """``burst`` requests at once, refilled at ``rate`` per second (sans-IO: pass ``now``).

    >>> b = TokenBucket(rate=1.0, burst=2, level=2.0, at=0.0)
    >>> b.take(0.0), b.take(0.0), b.take(0.0), round(b.wait(0.0), 3), b.take(1.0)
    (True, True, False, 1.0, True)
    """

    rate: float
    burst: int
    level: float
    at: float

    def _refill(self, now: float) -> None:
        self.level = min(float(self.burst), self.level + max(0.0, now - self.at) * self.rate)
        self.at = max(self.at, now)

    def take(self, now: float) -> bool:
        """Spend one request if the bucket holds one."""
        self._refill(now)
        if self.level >= 1.0:
            self.level -= 1.0
            return True
        return False

    def wait(self, now: float) -> float:
        """Seconds until one request is available again."""
        self._refill(now)
        return max(0.0, (1.0 - self.level) / self.rate)
