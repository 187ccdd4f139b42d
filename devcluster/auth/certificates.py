"""The cluster's certificate authority and the API server's serving certificate.

Real clients only send credentials over TLS: kubectl (client-go) drops the kubeconfig's token
when the server is ``http://``. So the devcluster also speaks TLS on its port, with a serving
certificate for ``127.0.0.1``, ``::1``, ``localhost`` (and the host it listens on) signed by this
CA, and its kubeconfig names ``https://`` and carries the CA (``certificate-authority-data``).
The CA is also the ``ca.crt`` of ServiceAccount token Secrets.

The CA key and certificate are kept with the other auth secrets when the cluster has a state
file, so a kubeconfig written before a restart still verifies after it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ClusterCA"]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class ClusterCA:
    """A self-signed CA (EC P-256), given or new."""

    def __init__(self, key_pem: bytes | None = None, cert_pem: bytes | None = None) -> None:
        if key_pem is not None and cert_pem is not None:
            key = serialization.load_pem_private_key(key_pem, password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError("the cluster CA key must be an EC key")
            self._key = key
            self._cert = x509.load_pem_x509_certificate(cert_pem)
            return
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devcluster-ca")])
        public = self._key.public_key()
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(minutes=5))
            .not_valid_after(_now() + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256())
        )

    def key_pem(self) -> bytes:
        return _key_pem(self._key)

    def cert_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def serving_context(self, host: str) -> ssl.SSLContext:
        """A server-side TLS context with a fresh certificate for loopback and ``host``."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        try:
            ip = ipaddress.ip_address(host)
            if not ip.is_unspecified and x509.IPAddress(ip) not in names:
                names.append(x509.IPAddress(ip))
        except ValueError:
            if host and x509.DNSName(host) not in names:
                names.append(x509.DNSName(host))
        ca_public = self._key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(minutes=5))
            .not_valid_after(_now() + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        with tempfile.TemporaryDirectory(prefix="devcluster-tls-") as tmp:
            chain = Path(tmp) / "chain.pem"
            key_file = Path(tmp) / "key.pem"
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(_key_pem(key))
            chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + self.cert_pem())
            ctx.load_cert_chain(str(chain), str(key_file))
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx
