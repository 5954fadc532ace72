"""Certificates and keys for the local Kubernetes control plane, generated once per cluster folder.

One CA signs the API server's serving certificate and a client certificate per identity (the admin
in ``system:masters``, the controller manager, the scheduler). RBAC then applies to each identity
exactly as on a real cluster. A separate RSA key pair signs service-account tokens.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)
KEY_SIZE = 2048


@dataclass(frozen=True)
class Identity:
    """A client certificate: the user name (CN) and groups (O) the API server will see."""

    file_stem: str
    user: str
    groups: tuple[str, ...] = ()


ADMIN = Identity("admin", "clinops-admin", ("system:masters",))
CONTROLLER_MANAGER = Identity("controller-manager", "system:kube-controller-manager")
SCHEDULER = Identity("scheduler", "system:kube-scheduler")
# The real node's kubelet (bound to the system:node ClusterRole by the node's provisioning).
NODE = Identity("node", "system:node:clinops-node", ("system:nodes",))
CLIENTS = (ADMIN, CONTROLLER_MANAGER, SCHEDULER, NODE)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _write_cert(cert: x509.Certificate, path: Path) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, groups: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _load_ca(folder: Path) -> tuple[rsa.RSAPrivateKey, x509.Name]:
    key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key, x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes()).subject


def _ensure_clients(folder: Path, ca_key: rsa.RSAPrivateKey, ca_name: x509.Name) -> None:
    for ident in CLIENTS:
        if (folder / f"{ident.file_stem}.crt").exists():
            continue
        key = _key()
        cert = (
            _builder(_name(ident.user, ident.groups), ca_name, key)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(key, folder / f"{ident.file_stem}.key")
        _write_cert(cert, folder / f"{ident.file_stem}.crt")


def ensure_pki(folder: Path, host: str) -> None:
    """Write ``ca``, ``apiserver``, one client pair per identity and the service-account keys, if missing.

    A folder made before an identity existed gets that identity's pair, signed by its existing CA.
    """
    if (folder / "ca.crt").exists() and (folder / "sa.pub").exists():
        _ensure_clients(folder, *_load_ca(folder))
        return
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = _name("clinops-local-ca")
    ca = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(ca_key, folder / "ca.key")
    _write_cert(ca, folder / "ca.crt")

    server_key = _key()
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
    ]
    if host not in ("127.0.0.1", "localhost"):
        sans.append(x509.IPAddress(ipaddress.ip_address(host)))
    server = (
        _builder(_name("kube-apiserver"), ca_name, server_key)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(server_key, folder / "apiserver.key")
    _write_cert(server, folder / "apiserver.crt")

    _ensure_clients(folder, ca_key, ca_name)

    sa_key = _key()
    _write_key(sa_key, folder / "sa.key")
    (folder / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
