"""X.509 for the cluster: a cluster CA, server and node certificates, and loading them safely.

Rule: the only module that builds or checks certificates (with ``cryptography``). Every key is
ECDSA P-256 (what ``nats-server``'s Go TLS stack and Python's ``ssl`` both accept); keys are
written 0600 and certificates 0644, each atomically (a temporary file, fsync, rename). A file
that is missing, of the wrong kind, expired, or not signed by the cluster CA is an
:class:`~becomingone.errors.InputError` naming the file — found here, before any connection.

Layout of a certificates directory (default ``DATA_DIR/certs``, mode 0700)::

    ca.crt, ca.key          the cluster CA (``init``)
    NAME.crt, NAME.key      a node or an admin (clientAuth; CN = NAME) or a server (serverAuth
                            and clientAuth, for routes; SANs 127.0.0.1, ::1, localhost and hosts)

Roles: a client certificate carries its role as a URI SAN, ``urn:becomingone:role:node`` or
``urn:becomingone:role:admin`` (:data:`ROLE_URI`). The servers map a client to the NATS user
named by that URI (``verify_and_map``), and each user has its permissions
(:mod:`becomingone.transport.natsd`): the role is signed by the CA, so only whoever holds the CA
key makes an admin.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import os
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from becomingone.errors import InputError, StorageError

__all__ = [
    "CA_DAYS",
    "CA_NAME",
    "CLUSTER_URI_PREFIX",
    "NODE_DAYS",
    "ROLE_URI",
    "CertInfo",
    "CertKind",
    "TlsFiles",
    "check_name",
    "cluster_uri",
    "init_ca",
    "issue_certificate",
    "list_certificates",
    "load_certificate",
    "verify_certificate",
]

#: File stem of the cluster CA (``ca.crt``, ``ca.key``); no node may take this name.
CA_NAME = "ca"
#: Default validity of the CA, in days.
CA_DAYS = 3650
#: Default validity of a node or server certificate, in days.
NODE_DAYS = 365
_ORG = "becomingone"
_SKEW = dt.timedelta(minutes=5)  # not-before is set this far back (clocks of other machines)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
#: The URI SAN naming a client certificate's role, per role (the servers' user names).
ROLE_URI = {"node": "urn:becomingone:role:node", "admin": "urn:becomingone:role:admin"}
#: Prefix of the URI SAN binding a node certificate to one cluster (``certs issue --cluster``):
#: servers started for that cluster map it to a user that may also write the cluster's glyph
#: records and consensus log (:func:`cluster_uri`).
CLUSTER_URI_PREFIX = "urn:becomingone:cluster:"
_CLUSTER = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def cluster_uri(cluster: str) -> str:
    """The URI SAN of a node certificate bound to ``cluster`` (a cluster name as config
    allows: 1-64 of A-Z a-z 0-9 . _ : -); an :class:`InputError` names a bad one."""
    if not isinstance(cluster, str) or not _CLUSTER.fullmatch(cluster):
        raise InputError("cluster", f"must be 1-64 of A-Z a-z 0-9 . _ : -, got {cluster!r}")
    return CLUSTER_URI_PREFIX + cluster


class CertKind(enum.Enum):
    """What a certificate may do: sign others, serve TLS (and dial routes), be a client (a
    node: reads the roster, talks on the cluster subjects), or be an admin client (writes the
    roster too)."""

    CA = "ca"
    SERVER = "server"
    NODE = "node"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True, kw_only=True)
class CertInfo:
    """One certificate as ``certs list`` shows it.

    ``state`` is ``"valid"``, ``"expired"``, ``"not yet valid"`` or ``"not signed by the CA"``;
    ``fingerprint`` is the SHA-256 of the DER encoding, in hex.
    """

    name: str
    path: Path
    kind: CertKind
    subject: str
    usage: str
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int
    fingerprint: str
    state: str

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (times in ISO 8601, UTC)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "kind": self.kind.value,
            "subject": self.subject,
            "usage": self.usage,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "serial": f"{self.serial:x}",
            "fingerprint": self.fingerprint,
            "state": self.state,
        }


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise InputError("now", "must be timezone-aware")
    return now


def _check_days(days: int) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36500:
        raise InputError("days", f"must be an integer from 1 to 36500, got {days!r}")


def check_name(name: str) -> str:
    """``name`` if it can be a certificate's file stem and CN (letters, digits, ``_.-``)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(
            "name", f"must be 1-63 letters, digits, '_', '.' or '-' (not first), got {name!r}"
        )
    if name == CA_NAME:
        raise InputError("name", f"{CA_NAME!r} is the cluster CA's name")
    return name


def _require_ca(folder: Path) -> Path:
    """``folder/ca.crt``, or an :class:`InputError` saying to run ``certs init`` first."""
    path = folder / f"{CA_NAME}.crt"
    if not path.exists():
        raise InputError("dir", f"no cluster CA in {folder}: run `becomingone certs init` first")
    return path


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _make_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {directory}: {exc.strerror or exc}") from exc


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """Digital signatures (ECDSA keys never encipher); a CA also signs certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public: ec.EllipticCurvePublicKey,
    days: int,
    now: dt.datetime,
    ca_not_after: dt.datetime | None = None,
) -> x509.CertificateBuilder:
    """Subject, issuer, key, a random serial and the validity: from ``now`` (less 5 minutes of
    clock skew) for ``days``, never beyond the CA's own not-after."""
    not_after = now + dt.timedelta(days=days)
    if ca_not_after is not None:
        not_after = min(not_after, ca_not_after)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def _subject(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def init_ca(
    directory: str | os.PathLike[str],
    *,
    days: int = CA_DAYS,
    force: bool = False,
    now: dt.datetime | None = None,
) -> CertInfo:
    """Create the cluster CA (``ca.crt``, ``ca.key``) in ``directory``.

    An existing CA is an :class:`InputError` unless ``force`` (a new CA invalidates every
    certificate the old one signed). The directory is created with mode 0700.
    """
    _check_days(days)
    when = _now(now)
    folder = Path(directory).expanduser().absolute()
    cert_path, key_path = folder / f"{CA_NAME}.crt", folder / f"{CA_NAME}.key"
    if not force and (cert_path.exists() or key_path.exists()):
        raise InputError(
            "dir",
            f"a CA exists in {folder}: pass --force to replace it (it invalidates "
            "every certificate it signed)",
        )
    key = ec.generate_private_key(ec.SECP256R1())
    name = _subject(f"{_ORG} cluster CA")
    public = key.public_key()
    cert = (
        _builder(name, name, public, days, when)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(signs_certificates=True),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _make_dir(folder)
    _write_atomic(key_path, _key_pem(key), 0o600)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return _info(CA_NAME, cert_path, cert, None, when)


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys([*_LOOPBACK, *hosts]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", host):
                raise InputError("hosts", f"not an IP address or DNS name: {host!r}") from None
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def issue_certificate(
    directory: str | os.PathLike[str],
    name: str,
    *,
    server: bool = False,
    admin: bool = False,
    hosts: Sequence[str] = (),
    cluster: str | None = None,
    days: int = NODE_DAYS,
    force: bool = False,
    now: dt.datetime | None = None,
) -> CertInfo:
    """Issue ``NAME.crt``/``NAME.key`` in ``directory``, signed by its CA.

    Valid for ``days`` but never beyond the CA's not-after (a chain fails with its CA).
    A node certificate (CN = ``name``) is for clients (clientAuth, role URI ``node``); an
    ``admin`` one is a client with the role URI ``admin`` (it may write the roster); a
    ``server`` one serves TLS for 127.0.0.1, ::1, localhost and ``hosts`` (serverAuth) and
    dials routes to other servers (clientAuth). An existing ``NAME`` is kept unless ``force``
    (rotation). A node certificate with ``cluster`` also carries :func:`cluster_uri` (first,
    so a server that knows the cluster maps it to that cluster's user; others to ``node``).
    """
    check_name(name)
    _check_days(days)
    when = _now(now)
    folder = Path(directory).expanduser().absolute()
    if hosts and not server:
        raise InputError("hosts", "only a --server certificate carries host names")
    if server and admin:
        raise InputError("admin", "a certificate is either --server or --admin, not both")
    if cluster is not None and (server or admin):
        raise InputError("cluster", "only a node certificate is bound to a cluster")
    bound = [] if cluster is None else [x509.UniformResourceIdentifier(cluster_uri(cluster))]
    ca_cert = verify_certificate(_require_ca(folder), None, kind=CertKind.CA, now=when)
    ca_key = _load_key(folder / f"{CA_NAME}.key", ca_cert)
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    if not force and (cert_path.exists() or key_path.exists()):
        raise InputError("name", f"{cert_path} exists: pass --force to replace it (rotation)")
    key = ec.generate_private_key(ec.SECP256R1())
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
    builder = (
        _builder(
            _subject(name),
            ca_cert.subject,
            key.public_key(),
            days,
            when,
            ca_not_after=ca_cert.not_valid_after_utc,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(signs_certificates=False),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([*usages, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(_san(hosts), critical=False)
    else:
        role = x509.UniformResourceIdentifier(ROLE_URI["admin" if admin else "node"])
        builder = builder.add_extension(x509.SubjectAlternativeName([*bound, role]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_atomic(key_path, _key_pem(key), 0o600)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return _info(name, cert_path, cert, ca_cert, when)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(what, f"{path} does not exist") from None
    except IsADirectoryError:
        raise InputError(what, f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def load_certificate(path: str | os.PathLike[str], *, what: str = "cert") -> x509.Certificate:
    """The PEM certificate in ``path``; an :class:`InputError` naming ``what`` (the parameter)
    and the file if it is missing or not a certificate."""
    file = Path(path)
    raw = _read(file, what)
    try:
        return x509.load_pem_x509_certificate(raw)
    except ValueError:
        raise InputError(what, f"{file} is not a PEM certificate") from None


def _load_key(path: Path, cert: x509.Certificate) -> ec.EllipticCurvePrivateKey:
    raw = _read(path, "key")
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError):
        raise InputError("key", f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InputError("key", f"{path} is not an ECDSA key")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    mine = key.public_key().public_bytes(serialization.Encoding.DER, spki)
    if mine != cert.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise InputError("key", f"{path} does not belong to the certificate {path.stem}.crt")
    if os.stat(path).st_mode & 0o077:
        raise InputError("key", f"{path} is readable by others: chmod 600 {path}")
    return key


def _kind(cert: x509.Certificate) -> tuple[CertKind, str]:
    """The kind of ``cert`` and its usage as text (``"ca"``, ``"serverAuth,clientAuth"``)."""
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return CertKind.CA, "ca"
    except x509.ExtensionNotFound:
        pass
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return CertKind.NODE, "-"
    names = [
        {"1.3.6.1.5.5.7.3.1": "serverAuth", "1.3.6.1.5.5.7.3.2": "clientAuth"}.get(
            oid.dotted_string, oid.dotted_string
        )
        for oid in eku
    ]
    if ExtendedKeyUsageOID.SERVER_AUTH in eku:
        return CertKind.SERVER, ",".join(names)
    prefix = CLUSTER_URI_PREFIX
    names += [f"cluster={u.removeprefix(prefix)}" for u in _uris(cert) if u.startswith(prefix)]
    return (CertKind.ADMIN if _role(cert) == "admin" else CertKind.NODE), ",".join(names)


def _uris(cert: x509.Certificate) -> list[str]:
    """The URI SANs of a client certificate (none without a SAN)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.UniformResourceIdentifier))


def _role(cert: x509.Certificate) -> str | None:
    """The role a client certificate's URI SAN names (``"node"``, ``"admin"``), or ``None``."""
    uris = _uris(cert)
    return next((role for role, uri in ROLE_URI.items() if uri in uris), None)


def _state(cert: x509.Certificate, ca: x509.Certificate | None, now: dt.datetime) -> str:
    if now < cert.not_valid_before_utc:
        return "not yet valid"
    if now > cert.not_valid_after_utc:
        return "expired"
    try:
        cert.verify_directly_issued_by(ca if ca is not None else cert)
    except (ValueError, TypeError, InvalidSignature):
        return "not signed by the CA"
    return "valid"


def _info(
    name: str, path: Path, cert: x509.Certificate, ca: x509.Certificate | None, now: dt.datetime
) -> CertInfo:
    kind, usage = _kind(cert)
    return CertInfo(
        name=name,
        path=path,
        kind=kind,
        subject=cert.subject.rfc4514_string(),
        usage=usage,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=cert.serial_number,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        state=_state(cert, ca, now),
    )


def verify_certificate(
    path: str | os.PathLike[str],
    ca: x509.Certificate | None,
    *,
    kind: CertKind,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """The certificate in ``path`` if it is of ``kind``, valid at ``now`` and signed by ``ca``.

    ``ca=None`` checks a CA certificate (self-signed). Otherwise an :class:`InputError` names
    the file and what is wrong: missing, not a certificate, wrong kind, expired, not yet valid,
    not signed by the CA.
    """
    file = Path(path)
    what = "ca" if kind is CertKind.CA else "cert"
    cert = load_certificate(file, what=what)
    state = _state(cert, ca, _now(now))
    found, usage = _kind(cert)
    if state == "expired":
        raise InputError(what, f"{file} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if state == "not yet valid":
        raise InputError(what, f"{file} is not valid before {cert.not_valid_before_utc} UTC")
    if state != "valid":
        raise InputError(what, f"{file} is not signed by the cluster CA")
    client = kind is CertKind.NODE and found in (CertKind.SERVER, CertKind.ADMIN)
    if found is not kind and not client:
        raise InputError(what, f"{file} is a {found.value} certificate ({usage}), not {kind.value}")
    if found is CertKind.NODE and _role(cert) is None:
        raise InputError(
            what,
            f"{file} carries no role (issued before roles existed): reissue it with "
            "`becomingone certs issue NAME --force`",
        )
    return cert


def list_certificates(
    directory: str | os.PathLike[str], *, now: dt.datetime | None = None
) -> list[CertInfo]:
    """Every certificate in ``directory``, the CA first, each with its state against the CA."""
    folder = Path(directory).expanduser().absolute()
    when = _now(now)
    ca = load_certificate(_require_ca(folder), what="ca")
    out = [_info(CA_NAME, folder / f"{CA_NAME}.crt", ca, None, when)]
    for path in sorted(folder.glob("*.crt")):
        if path.stem != CA_NAME:
            out.append(_info(path.stem, path, load_certificate(path), ca, when))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFiles:
    """The three files a TLS endpoint needs: the cluster CA, its certificate and its key.

    Examples
    --------
    >>> files = TlsFiles.named("/tmp/certs", "n1")
    >>> files.cert.name, files.key.name, files.ca.name
    ('n1.crt', 'n1.key', 'ca.crt')
    """

    ca: Path
    cert: Path
    key: Path

    def __post_init__(self) -> None:
        for field in ("ca", "cert", "key"):
            object.__setattr__(self, field, Path(getattr(self, field)).expanduser().absolute())

    @classmethod
    def named(cls, directory: str | os.PathLike[str], name: str) -> TlsFiles:
        """``directory/ca.crt`` with ``directory/NAME.crt`` and ``directory/NAME.key``."""
        folder = Path(directory)
        check_name(name)
        return cls(
            ca=folder / f"{CA_NAME}.crt", cert=folder / f"{name}.crt", key=folder / f"{name}.key"
        )

    def check(self, *, kind: CertKind, now: dt.datetime | None = None) -> x509.Certificate:
        """Check the three files (CA valid; certificate of ``kind``, valid, signed by the CA;
        key matching it and not readable by others); returns the certificate."""
        when = _now(now)
        ca = verify_certificate(self.ca, None, kind=CertKind.CA, now=when)
        cert = verify_certificate(self.cert, ca, kind=kind, now=when)
        _load_key(self.key, cert)
        return cert

    def bound_to(self, cluster: str) -> bool:
        """True iff this client certificate may use ``cluster``'s partifact and glyph subjects
        on servers that grant it: an admin's, or a node's bound to ``cluster`` (``certs issue
        NAME --cluster CLUSTER``). Reads the certificate only (no check of its validity)."""
        cert = load_certificate(self.cert)
        return _role(cert) == "admin" or cluster_uri(cluster) in _uris(cert)

    def client_context(self, *, now: dt.datetime | None = None) -> ssl.SSLContext:
        """A TLS client context trusting only the cluster CA and presenting this certificate
        (checked first with :meth:`check`); TLS 1.2 or later, host names checked."""
        self.check(kind=CertKind.NODE, now=now)
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as exc:
            raise InputError("cert", f"{self.cert}: {exc}") from exc
        return context
