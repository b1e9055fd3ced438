"""Certificates for the TLS tests, generated per test run with ``cryptography``: a CA, a
server certificate for localhost/127.0.0.1 and client certificates with a chosen subject,
written as PEM files (keys never leave the test's tmp dir)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Pki:
    dir: Path
    ca: Path            # CA certificate
    server: Path        # server key + chain (kavka's ssl.keystore.location)
    server_cert: Path
    server_key: Path

    def client(self, name: str, subject: dict[str, str], ca=None) -> tuple[Path, Path]:
        """(certificate, key) files of a client certificate signed by this CA (or ``ca``)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _sign(_name(subject), key.public_key(), *(ca or self._ca), client=True)
        return _write(self.dir / f"{name}.crt", cert), _write_key(self.dir / f"{name}.key", key)


def _name(subject: dict[str, str]) -> x509.Name:
    oids = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
            "C": NameOID.COUNTRY_NAME, "L": NameOID.LOCALITY_NAME}
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in subject.items()])


def _sign(subject, public_key, issuer_cert, issuer_key, client=False, ca=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca and not client:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key, password: bytes | None = None) -> Path:
    encryption = (serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return path


def make_ca(subject_cn: str = "kavka test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign(_name({"CN": subject_cn}), key.public_key(), None, key, ca=True)
    return cert, key


def make_pki(directory: Path, key_password: str | None = None) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = make_ca()
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _sign(_name({"CN": "localhost"}), server_key.public_key(), ca_cert, ca_key)
    ca = _write(directory / "ca.crt", ca_cert)
    cert_path = _write(directory / "server.crt", server_cert)
    key_path = _write_key(directory / "server.key", server_key, key_password.encode() if key_password else None)
    combined = directory / "server.pem"
    combined.write_bytes(key_path.read_bytes() + cert_path.read_bytes())
    pki = Pki(directory, ca, combined, cert_path, key_path)
    pki._ca = (ca_cert, ca_key)
    return pki
