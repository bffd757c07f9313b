"""The exception tree of BecomingONE: every error the package raises on purpose is here.

Rule: library code raises only these (or translates a library's error into one of them with
``raise ... from exc``); only the API layer maps them to HTTP statuses.

::

    BecomingOneError                 root of everything raised on purpose
    ├── InputError (ValueError)      the caller passed bad arguments or bad data (local misuse,
    │   │                            a bad file, a bad CLI value); carries ``parameter``
    │   └── ConfigError              a configuration file or override is invalid; carries ``path``
    ├── ProtocolError                a remote peer sent something invalid (packets, messages);
    │                                carries ``reason`` (a short counted code)
    ├── IntegrityError               stored or witnessed data failed verification; carries
    │                                ``index`` (the first bad record)
    ├── StorageError                 a storage backend failed (disk, database)
    │   └── CasConflict              a compare-and-set precondition did not hold (a stale
    │                                revision, a key that exists, a log that moved on); carries
    │                                ``key``, ``expected`` and ``actual``
    └── TransportError               a bus connection failed or was used after close
"""

from __future__ import annotations

__all__ = [
    "BecomingOneError",
    "CasConflict",
    "ConfigError",
    "InputError",
    "IntegrityError",
    "ProtocolError",
    "StorageError",
    "TransportError",
]


class BecomingOneError(Exception):
    """Root of every error BecomingONE raises on purpose."""


class InputError(BecomingOneError, ValueError):
    """The caller gave a bad argument or bad data.

    ``parameter`` names what was wrong (for example ``"dt"`` or ``"phi"``).
    """

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        self.message = message
        super().__init__(f"{parameter}: {message}")


class ConfigError(InputError):
    """A configuration value is invalid; ``path`` is the dotted key (``becomingone.kairos.dt``)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(path, message)


class ProtocolError(BecomingOneError):
    """A remote peer sent something invalid; ``reason`` is the counted rejection code."""

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        self.message = message or reason
        super().__init__(f"{reason}: {self.message}" if message else reason)


class IntegrityError(BecomingOneError):
    """Stored or witnessed data failed verification; ``index`` is the first bad record."""

    def __init__(self, index: int | None, message: str) -> None:
        self.index = index
        self.message = message
        where = f"record {index}: " if index is not None else ""
        super().__init__(f"{where}{message}")


class StorageError(BecomingOneError):
    """A storage backend failed (disk full, database locked, unreadable file)."""


class CasConflict(StorageError):
    """A compare-and-set write lost: the stored revision was not the one the caller expected.

    ``key`` names the record (or log); ``expected`` is the revision (or last index) the caller
    assumed and ``actual`` the one stored (``None`` when the key does not exist; for a create,
    ``expected`` is ``None`` and ``actual`` the existing revision). ``what`` names the number in
    the message (``"last index"`` for a log). Nothing was written; re-read and retry, or give up.
    """

    def __init__(
        self, key: str, expected: int | None, actual: int | None, *, what: str = "revision"
    ) -> None:
        self.key = key
        self.expected = expected
        self.actual = actual
        want = "absent" if expected is None else f"{what} {expected}"
        have = "absent" if actual is None else f"{what} {actual}"
        super().__init__(f"{key}: expected {want}, found {have}")


class TransportError(BecomingOneError):
    """A bus connection failed or was used after it was closed."""
