"""Test certificates made here, by the test itself (Python's cryptography, the library community.crypto uses): a CA of the
test's own and the certificates it signs - for 127.0.0.1 and localhost, valid now, expired, not yet valid - plus HTTPS
requests to 127.0.0.1 verified against that CA. No CA outside this machine; nothing here reaches the network but the
loopback. Reused wherever a test needs TLS (the proxy on its own, a deploy behind HTTPS, the malformed inputs)."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Pair:
    """A certificate and its private key, as PEM text (what smart_deploy_tls_certificate and smart_deploy_tls_key hold)."""

    certificate: str
    key: str
    serial: int

    def fingerprint(self) -> str:
        cert = x509.load_pem_x509_certificate(self.certificate.encode())
        return cert.fingerprint(hashes.SHA256()).hex()


class LocalCA:
    """A certificate authority of the test's own; ``issue`` signs server certificates for 127.0.0.1 and localhost."""

    def __init__(self, name: str = "smart-deploy test CA"):
        now = datetime.datetime.now(datetime.UTC)
        self.key = _key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = cert_pem(self.cert)

    def issue(self, name: str = "localhost", valid_from_days: float = -1, valid_days: float = 10, key=None) -> Pair:
        """A server certificate for ``name``, 127.0.0.1 and ::1, valid from now + ``valid_from_days`` for ``valid_days``
        (valid_from_days=-10, valid_days=5: expired five days ago; valid_from_days=2: not valid yet)."""
        now = datetime.datetime.now(datetime.UTC)
        key = key or _key()
        serial = x509.random_serial_number()
        start = now + datetime.timedelta(days=valid_from_days)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=valid_days))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return Pair(certificate=cert_pem(cert), key=key_pem(key), serial=serial)

    def context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only (and checks the host name)."""
        context = ssl.create_default_context(cadata=self.pem)
        return context


def other_key_pem() -> str:
    """A private key no certificate here was made for."""
    return key_pem(_key())


@dataclass
class Answer:
    status: int
    headers: dict
    body: str
    peer_serial: int | None = None


def request(port: int, path: str = "/", https: bool = False, ca: LocalCA | None = None, headers: dict | None = None,
            method: str = "GET", timeout: float = 10, host: str = "127.0.0.1", body: bytes | None = None) -> Answer:  # fmt: skip
    """One request to the proxy on the loopback, on a new connection; over HTTPS verified against ``ca``. Redirects are not
    followed (the answer is what the proxy said)."""
    if https:
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=ca.context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        # the certificate now: the socket is gone once an answer with "Connection: close" was read
        serial = x509.load_der_x509_certificate(connection.sock.getpeercert(binary_form=True)).serial_number if https else None
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body, serial)
    finally:
        connection.close()


def served_serial(port: int, ca: LocalCA, host: str = "127.0.0.1") -> int:
    """The serial number of the certificate the proxy serves (a TLS handshake only, verified against ``ca``)."""
    with socket.create_connection((host, port), timeout=10) as raw:
        with ca.context().wrap_socket(raw, server_hostname=host) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number
