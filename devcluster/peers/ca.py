"""A local certificate authority for the devcluster's simulated issuer.

Zero-downtime TLS rotation can only be *measured* if the certificates are real: the data plane
serves them over real TLS and the tests verify chains against a trust root. This module is that
root: a self-signed CA generated once per devcluster (optionally persisted in a state directory so
that a restarted ``bifrost dev`` keeps trusting the certificates it issued before) that signs leaf
certificates with SAN dNSNames, the serverAuth extended key usage and exactly the requested
validity window. Time comes from an injectable :class:`~devcluster.peers.clock.Clock`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devcluster.peers.clock import Clock, SystemClock

__all__ = [
    "DEFAULT_CA_LIFETIME",
    "KeyType",
    "IssuedCertificate",
    "LocalCA",
    "key_type_for",
]

KeyType = Literal["ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096", "Ed25519"]
"""Leaf key algorithms; the names follow cert-manager's ``spec.privateKey`` (algorithm-size)."""

DEFAULT_CA_LIFETIME = timedelta(days=3650)

_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def key_type_for(algorithm: str | None, size: int | None) -> KeyType:
    """Map cert-manager's ``spec.privateKey.{algorithm,size}`` to a :data:`KeyType`.

    cert-manager defaults to RSA 2048; the devcluster defaults to ECDSA P-256 when nothing is
    requested (``algorithm=None``) because it is ~100x faster to generate and tests issue many.
    Unsupported combinations raise ``ValueError`` (the issuer reports them as a failed issuance).
    """
    if algorithm is None:
        return "ECDSA-P256"
    algo = algorithm.upper()
    if algo == "RSA":
        name = f"RSA-{size or 2048}"
    elif algo == "ECDSA":
        name = f"ECDSA-P{size or 256}"
    elif algo == "ED25519":
        name = "Ed25519"
    else:
        raise ValueError(f"unsupported private key algorithm {algorithm!r}")
    if name not in get_args(KeyType):
        raise ValueError(f"unsupported private key size {size!r} for {algorithm}")
    return name  # type: ignore[return-value]


def _generate_key(key_type: KeyType) -> _PrivateKey:
    if key_type == "ECDSA-P256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ECDSA-P384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    bits = int(key_type.split("-")[1])
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _key_pem(key: _PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _second(t: datetime) -> datetime:
    """X.509 validity has one-second resolution: truncate, and insist on an aware time."""
    if t.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return t.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class IssuedCertificate:
    """A signed leaf certificate with its key and the CA that signed it (all PEM)."""

    cert_pem: bytes
    """The leaf certificate alone."""
    key_pem: bytes
    """The leaf's private key (PKCS#8, unencrypted)."""
    ca_pem: bytes
    """The issuing CA's certificate (the trust root)."""
    serial: int
    fingerprint_sha256: str
    """Lower-case hex SHA-256 of the leaf's DER encoding."""
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...] = field(default=())

    @property
    def chain_pem(self) -> bytes:
        """Leaf followed by the CA: what cert-manager writes to a Secret's ``tls.crt``."""
        return self.cert_pem + self.ca_pem

    @property
    def lifetime(self) -> timedelta:
        return self.not_after - self.not_before


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """Lower-case hex SHA-256 over the DER encoding (what ``openssl x509 -fingerprint`` hashes)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class LocalCA:
    """A self-signed root CA that issues TLS server certificates.

    Thread-safe: :meth:`issue` may be called from several threads. Create with
    :meth:`generate` (in memory) or :meth:`load_or_create` (persisted as ``ca.crt``/``ca.key``
    in a state directory, the key file mode 0600).
    """

    def __init__(self, cert: x509.Certificate, key: _PrivateKey, *, clock: Clock | None = None):
        self._cert = cert
        self._key = key
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self.cert_pem: bytes = cert.public_bytes(serialization.Encoding.PEM)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def generate(
        cls,
        *,
        common_name: str = "bifrost devcluster CA",
        clock: Clock | None = None,
        lifetime: timedelta = DEFAULT_CA_LIFETIME,
    ) -> LocalCA:
        clock = clock or SystemClock()
        key = ec.generate_private_key(ec.SECP256R1())
        # Back-date by a day so leaves issued "now" on a slightly skewed clock still verify.
        start = _second(clock.now()) - timedelta(days=1)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bifrost devcluster"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
            .add_extension(ski, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key, clock=clock)

    @classmethod
    def load_or_create(
        cls, state_dir: str | os.PathLike[str], *, clock: Clock | None = None
    ) -> LocalCA:
        """Load ``ca.crt``/``ca.key`` from ``state_dir``, or generate and store them there."""
        directory = Path(state_dir)
        cert_path, key_path = directory / "ca.crt", directory / "ca.key"
        if cert_path.exists() and key_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
                raise ValueError(f"{key_path}: unsupported CA key type")
            return cls(cert, key, clock=clock)
        directory.mkdir(parents=True, exist_ok=True)
        ca = cls.generate(clock=clock)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_key_pem(ca._key))
        cert_path.write_bytes(ca.cert_pem)
        return ca

    # -- use ----------------------------------------------------------------------------------

    @property
    def certificate(self) -> x509.Certificate:
        return self._cert

    def issue(
        self,
        dns_names: list[str] | tuple[str, ...],
        *,
        not_before: datetime | None = None,
        lifetime: timedelta = timedelta(days=90),
        key_type: KeyType = "ECDSA-P256",
        common_name: str | None = None,
    ) -> IssuedCertificate:
        """Issue a TLS server certificate for ``dns_names``.

        ``not_before`` defaults to the clock's now; the certificate is valid for exactly
        ``lifetime`` from there (to the second). The leaf carries the SAN dNSNames in the given
        order, ExtendedKeyUsage serverAuth, KeyUsage digitalSignature (plus keyEncipherment for
        RSA keys), BasicConstraints CA=false, and subject/authority key identifiers.
        """
        names = [n.strip().lower() for n in dns_names]
        if not names or any(not n for n in names):
            raise ValueError("at least one non-empty DNS name is required")
        if lifetime <= timedelta(0):
            raise ValueError("lifetime must be positive")
        start = _second(not_before if not_before is not None else self._clock.now())
        end = start + timedelta(seconds=int(lifetime.total_seconds()))
        if end <= start:
            raise ValueError("lifetime must be at least one second")
        key = _generate_key(key_type)
        subject_attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bifrost devcluster")]
        if common_name is not None or len(names[0]) <= 64:
            subject_attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name or names[0]))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject_attrs))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        with self._lock:
            cert = builder.sign(self._key, hashes.SHA256())
        return IssuedCertificate(
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=_key_pem(key),
            ca_pem=self.cert_pem,
            serial=cert.serial_number,
            fingerprint_sha256=fingerprint_sha256(cert),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            dns_names=tuple(names),
        )
