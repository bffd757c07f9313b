"""Settings of the HTTP API and where it may listen.

Rule: plain values, built once at the edge (:meth:`ApiSettings.from_config`); nothing here opens
a socket. A listen address beyond loopback is refused unless the cell's config allows it
(``api.allow_remote``), so a cell never serves its data to the network by accident. TLS
files named by ``api.tls_dir`` are checked here, before anything listens.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from becomingone.certs import CertKind, TlsFiles
from becomingone.config.schema import ApiConfig
from becomingone.errors import InputError

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_INDEX",
    "MAX_PAGE",
    "MAX_POINTS",
    "MAX_SAMPLES",
    "ApiSettings",
    "api_tls",
    "is_loopback",
    "parse_listen",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
#: Caps the OpenAPI document states (an app's settings may only lower them).
MAX_POINTS = 2_000
MAX_PAGE = 1_000
MAX_SAMPLES = 100_000
#: Largest seq or position a query may name (SQLite integers are 64-bit).
MAX_INDEX = 2**62


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiSettings:
    """Limits and switches of one API app (units in the names; see docs/api.md, Limits).

    ``read_only`` serves a stopped cell's history (or a witness node's view of the consensus):
    every write answers 405 with ``read_only_reason``. ``rate_per_second``
    and ``rate_burst`` are the token bucket of each write token; ``max_body_bytes`` bounds every
    request body; ``max_samples`` the rows of one POST; ``max_points`` a coherence history
    answer; ``max_page`` a page of witness records; ``event_queue`` each WebSocket client's
    queue (the oldest event is dropped beyond it); ``replay_limit`` the records a resuming
    client is sent from the stored history.
    """

    read_only: bool = False
    read_only_reason: str = "this server serves a stopped cell read-only"
    public_reads: bool = False
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576
    rate_per_second: float = 20.0
    rate_burst: int = 40
    max_samples: int = MAX_SAMPLES
    max_points: int = MAX_POINTS
    max_page: int = MAX_PAGE
    event_queue: int = 1_000
    replay_limit: int = 10_000
    inbox_batches: int = 64

    def __post_init__(self) -> None:
        for name in (
            "max_body_bytes",
            "rate_burst",
            "max_samples",
            "max_points",
            "max_page",
            "event_queue",
            "replay_limit",
            "inbox_batches",
        ):
            if getattr(self, name) < 1:
                raise InputError(name, f"must be >= 1, got {getattr(self, name)}")
        for name, cap in (
            ("max_samples", MAX_SAMPLES),
            ("max_points", MAX_POINTS),
            ("max_page", MAX_PAGE),
        ):
            if getattr(self, name) > cap:
                raise InputError(name, f"must be <= {cap}, got {getattr(self, name)}")
        if not self.rate_per_second > 0:
            raise InputError("rate_per_second", f"must be > 0, got {self.rate_per_second}")

    @classmethod
    def from_config(cls, config: ApiConfig, *, read_only: bool = False) -> ApiSettings:
        """The settings of a cell's ``api:`` section."""
        return cls(
            read_only=read_only,
            public_reads=config.public_reads,
            cors_origins=tuple(config.cors_origins),
            max_body_bytes=config.max_body_bytes,
            rate_per_second=config.rate_per_second,
            rate_burst=config.rate_burst,
        )


def api_tls(config: ApiConfig) -> TlsFiles | None:
    """The TLS files of the ``api:`` section (None: plain HTTP), checked now: the CA, a server
    certificate it signed and the matching key (an ``InputError`` names what is wrong)."""
    if config.tls_dir is None:
        return None
    files = TlsFiles.named(config.tls_dir, config.tls_name)
    files.check(kind=CertKind.SERVER)
    return files


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and the loopback addresses (127.0.0.0/8, ::1).

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_listen(
    spec: str, *, allow_remote: bool = False, parameter: str = "--serve"
) -> tuple[str, int]:
    """(host, port) of ``[HOST:]PORT`` (``[::1]:8787`` for IPv6); default host 127.0.0.1.

    Raises ``InputError`` (naming ``parameter``, default ``--serve``) for a bad port, or for a
    host beyond loopback unless ``allow_remote``.

    >>> parse_listen("8787"), parse_listen("localhost:9000"), parse_listen("[::1]:80")
    (('127.0.0.1', 8787), ('localhost', 9000), ('::1', 80))
    """
    host, sep, port_text = spec.strip().rpartition(":")
    if not sep:
        host = DEFAULT_HOST
    host = host.strip("[]") or DEFAULT_HOST
    try:
        port = int(port_text)
    except ValueError:
        raise InputError(parameter, f"{spec!r}: the port must be a number") from None
    if not 0 <= port <= 65535:
        raise InputError(parameter, f"{spec!r}: the port must be in 0..65535")
    if not allow_remote and not is_loopback(host):
        raise InputError(
            parameter,
            f"{host} is not a loopback address; set api.allow_remote: true in the config "
            "to listen beyond this machine",
        )
    return host, port
