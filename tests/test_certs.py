"""becomingone.certs: a real CA and certificates in tmp dirs; usages, SANs, file modes, and a
one-line InputError for every bad file (missing, wrong type, expired, foreign CA, wrong key)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from becomingone.certs import (
    ROLE_URI,
    CertKind,
    TlsFiles,
    cluster_uri,
    init_ca,
    issue_certificate,
    list_certificates,
    load_certificate,
    verify_certificate,
)
from becomingone.errors import InputError

NOW = dt.datetime.now(dt.UTC)


def mode(path: Path) -> int:
    """Permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def eku(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    """The extended key usages of ``cert``."""
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    """A certificates dir holding a cluster CA made ten days ago (valid for ten years)."""
    init_ca(tmp_path / "certs", now=NOW - dt.timedelta(days=10))
    return tmp_path / "certs"


def test_init_writes_a_p256_ca_with_private_files(tmp_path: Path) -> None:
    """init: a self-signed P-256 CA (CA:true, keyCertSign), key 0600, certificate 0644, and
    the directory it creates 0700; no temporary file is left behind."""
    info = init_ca(tmp_path / "certs", days=30)
    folder = tmp_path / "certs"
    cert = load_certificate(folder / "ca.crt")
    assert info.kind is CertKind.CA and info.state == "valid" and info.usage == "ca"
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(cert.public_key().curve, ec.SECP256R1)  # type: ignore[union-attr]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert (mode(folder / "ca.key"), mode(folder / "ca.crt"), mode(folder)) == (
        0o600,
        0o644,
        0o700,
    )
    assert sorted(p.name for p in folder.iterdir()) == ["ca.crt", "ca.key"]
    assert 29 <= (info.not_after - info.not_before).days <= 30


def test_init_refuses_to_replace_a_ca_unless_forced(ca_dir: Path) -> None:
    """A second init is an InputError naming --force and leaves the CA as it was; with
    force=True a new CA (another fingerprint) replaces it."""
    before = list_certificates(ca_dir)[0].fingerprint
    with pytest.raises(InputError, match=r"a CA exists .* --force"):
        init_ca(ca_dir)
    assert list_certificates(ca_dir)[0].fingerprint == before
    assert init_ca(ca_dir, force=True).fingerprint != before


def test_node_certificate_is_a_client_certificate(ca_dir: Path) -> None:
    """A node certificate: CN = its name, clientAuth only (no serverAuth, not a CA), signed by
    the CA, key 0600 and certificate 0644."""
    info = issue_certificate(ca_dir, "node-1", days=10)
    cert = load_certificate(ca_dir / "node-1.crt")
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "node-1"
    assert eku(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert info.kind is CertKind.NODE and info.state == "valid" and info.usage == "clientAuth"
    cert.verify_directly_issued_by(load_certificate(ca_dir / "ca.crt"))
    assert (mode(ca_dir / "node-1.key"), mode(ca_dir / "node-1.crt")) == (0o600, 0o644)


def test_client_certificates_carry_their_role(ca_dir: Path) -> None:
    """A node certificate names the role ``node`` in a URI SAN, an ``--admin`` one ``admin``
    (what the servers map users by); list shows the admin's kind; both are clients (accepted
    where a node certificate is); --server with --admin is refused."""
    issue_certificate(ca_dir, "n1")
    info = issue_certificate(ca_dir, "boss", admin=True)
    for name, role in (("n1", "node"), ("boss", "admin")):
        cert = load_certificate(ca_dir / f"{name}.crt")
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [ROLE_URI[role]]
        assert eku(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
        TlsFiles.named(ca_dir, name).check(kind=CertKind.NODE)
    assert info.kind is CertKind.ADMIN and info.usage == "clientAuth"
    assert [i.kind for i in list_certificates(ca_dir) if i.name == "boss"] == [CertKind.ADMIN]
    with pytest.raises(InputError, match="either --server or --admin"):
        issue_certificate(ca_dir, "both", server=True, admin=True)


def test_a_node_certificate_bound_to_a_cluster(ca_dir: Path) -> None:
    """``cluster`` puts the cluster's URI before the role URI (the servers map the first URI
    they know: a server without the cluster's grant still sees a node); list shows it; only a
    node certificate is bound, and a bad cluster name is refused before anything is written."""
    info = issue_certificate(ca_dir, "n1", cluster="local")
    cert = load_certificate(ca_dir / "n1.crt")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    assert (
        uris
        == [cluster_uri("local"), ROLE_URI["node"]]
        == [
            "urn:becomingone:cluster:local",
            "urn:becomingone:role:node",
        ]
    )
    assert info.kind is CertKind.NODE and info.usage == "clientAuth,cluster=local"
    for kwargs in ({"admin": True}, {"server": True}):
        with pytest.raises(InputError, match="only a node certificate"):
            issue_certificate(ca_dir, "x", cluster="local", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="cluster"):
        issue_certificate(ca_dir, "y", cluster="bad name")
    assert not (ca_dir / "x.crt").exists() and not (ca_dir / "y.crt").exists()


def test_a_certificate_without_role_is_refused_before_connecting(ca_dir: Path) -> None:
    """A client certificate made before roles existed (no role URI) is one InputError telling
    to reissue it, since the servers would map it to no user."""
    ca = load_certificate(ca_dir / "ca.crt")
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (ca_dir / "old.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(InputError, match=r"old\.crt carries no role.*--force"):
        verify_certificate(ca_dir / "old.crt", ca, kind=CertKind.NODE)


def test_server_certificate_names_loopback_and_hosts(ca_dir: Path) -> None:
    """A server certificate serves TLS (serverAuth) and dials routes (clientAuth); its SANs are
    127.0.0.1, ::1, localhost and the hosts given (IPs as IP SANs, names as DNS SANs)."""
    issue_certificate(ca_dir, "nats", server=True, hosts=["10.0.0.7", "nats.example.org"])
    cert = load_certificate(ca_dir / "nats.crt")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address(a) for a in ("127.0.0.1", "::1", "10.0.0.7")
    }
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "nats.example.org"]
    assert eku(cert) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_certificate_never_outlives_its_ca(tmp_path: Path) -> None:
    """A certificate asked for longer than its CA lives ends when the CA ends."""
    ca = init_ca(tmp_path, days=10)
    info = issue_certificate(tmp_path, "n1", days=365)
    assert info.not_after == ca.not_after


def test_issue_refuses_to_replace_unless_forced(ca_dir: Path) -> None:
    """Issuing an existing name again is refused (naming --force); forced, it rotates: a new
    key and serial under the same name."""
    first = issue_certificate(ca_dir, "n1")
    key = (ca_dir / "n1.key").read_bytes()
    with pytest.raises(InputError, match="exists: pass --force"):
        issue_certificate(ca_dir, "n1")
    second = issue_certificate(ca_dir, "n1", force=True)
    assert second.serial != first.serial and (ca_dir / "n1.key").read_bytes() != key


@pytest.mark.parametrize(
    ("kwargs", "parameter", "message"),
    [
        ({"name": "ca"}, "name", "the cluster CA's name"),
        ({"name": "../evil"}, "name", "must be 1-63 letters"),
        ({"name": ""}, "name", "must be 1-63 letters"),
        ({"name": "n1", "days": 0}, "days", "from 1 to 36500"),
        ({"name": "n1", "days": True}, "days", "from 1 to 36500"),
        ({"name": "n1", "hosts": ["x"]}, "hosts", "only a --server"),
        ({"name": "s", "server": True, "hosts": ["bad host"]}, "hosts", "not an IP address"),
    ],
)
def test_issue_bad_arguments(
    ca_dir: Path, kwargs: dict[str, object], parameter: str, message: str
) -> None:
    """Bad names, days and hosts are InputErrors naming the parameter; nothing is written."""
    with pytest.raises(InputError, match=message) as info:
        issue_certificate(ca_dir, **kwargs)  # type: ignore[arg-type]
    assert info.value.parameter == parameter
    assert sorted(p.name for p in ca_dir.iterdir()) == ["ca.crt", "ca.key"]


def test_issue_without_a_ca_names_the_missing_file(tmp_path: Path) -> None:
    """Without `certs init` first, issue and list are one InputError saying to run it."""
    with pytest.raises(InputError, match=f"no cluster CA in {tmp_path}: run") as info:
        issue_certificate(tmp_path, "n1")
    assert info.value.parameter == "dir"
    with pytest.raises(InputError, match="no cluster CA"):
        list_certificates(tmp_path / "absent")


def test_loader_rejects_bad_files(ca_dir: Path, tmp_path: Path) -> None:
    """verify_certificate: a missing file, a key given as a certificate, an expired
    certificate, one from another CA and one of the wrong kind are each one InputError
    naming the file and the fault."""
    ca = load_certificate(ca_dir / "ca.crt")
    issue_certificate(ca_dir, "old", days=1, now=NOW - dt.timedelta(days=3))
    issue_certificate(ca_dir, "n1")
    init_ca(tmp_path / "other")
    issue_certificate(tmp_path / "other", "n1")
    cases = [
        (ca_dir / "nope.crt", CertKind.NODE, "nope.crt does not exist"),
        (ca_dir / "n1.key", CertKind.NODE, "n1.key is not a PEM certificate"),
        (ca_dir / "old.crt", CertKind.NODE, "old.crt expired on "),
        (tmp_path / "other" / "n1.crt", CertKind.NODE, "is not signed by the cluster CA"),
        (ca_dir / "n1.crt", CertKind.SERVER, "is a node certificate .clientAuth., not server"),
    ]
    for path, kind, message in cases:
        with pytest.raises(InputError, match=message):
            verify_certificate(path, ca, kind=kind)
    assert verify_certificate(ca_dir / "n1.crt", ca, kind=CertKind.NODE).serial_number > 0


def test_tls_files_check_the_key(ca_dir: Path) -> None:
    """TlsFiles: a key of another certificate, or a key readable by others, is refused; a good
    set gives a TLS client context (TLS 1.2+, host names checked, the CA trusted)."""
    issue_certificate(ca_dir, "n1")
    issue_certificate(ca_dir, "n2")
    swapped = TlsFiles(ca=ca_dir / "ca.crt", cert=ca_dir / "n1.crt", key=ca_dir / "n2.key")
    with pytest.raises(InputError, match=r"n2\.key does not belong to the certificate n2\.crt"):
        swapped.client_context()
    os.chmod(ca_dir / "n1.key", 0o644)
    with pytest.raises(InputError, match="readable by others: chmod 600"):
        TlsFiles.named(ca_dir, "n1").client_context()
    os.chmod(ca_dir / "n1.key", 0o600)
    context = TlsFiles.named(ca_dir, "n1").client_context()
    assert context.check_hostname and context.verify_mode is ssl.CERT_REQUIRED
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert len(context.get_ca_certs()) == 1


def test_list_shows_the_ca_first_and_each_state(ca_dir: Path, tmp_path: Path) -> None:
    """list: the CA first, then by name, each with kind, usage, fingerprint and its state
    against the CA (valid, expired, not signed by the CA)."""
    issue_certificate(ca_dir, "nats", server=True)
    issue_certificate(ca_dir, "old", days=1, now=NOW - dt.timedelta(days=3))
    init_ca(tmp_path / "other")
    issue_certificate(tmp_path / "other", "stranger")
    for suffix in (".crt", ".key"):
        (ca_dir / f"stranger{suffix}").write_bytes(
            (tmp_path / "other" / f"stranger{suffix}").read_bytes()
        )
    rows = [(i.name, i.kind.value, i.state) for i in list_certificates(ca_dir)]
    assert rows == [
        ("ca", "ca", "valid"),
        ("nats", "server", "valid"),
        ("old", "node", "expired"),
        ("stranger", "node", "not signed by the CA"),
    ]
    info = list_certificates(ca_dir)[1]
    assert len(info.fingerprint) == 64 and info.to_json()["usage"] == "serverAuth,clientAuth"
