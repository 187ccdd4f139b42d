"""The devcluster's local CA issues real, verifiable TLS server certificates."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from bifrost.clock import ManualClock
from devcluster.peers.ca import IssuedCertificate, LocalCA, key_type_for

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def verify(
    ca: LocalCA, issued: IssuedCertificate, name: str, at: datetime
) -> list[x509.Certificate]:
    leaf = x509.load_pem_x509_certificate(issued.cert_pem)
    verifier = (
        PolicyBuilder()
        .store(Store([ca.certificate]))
        .time(at)
        .build_server_verifier(x509.DNSName(name))
    )
    return verifier.verify(leaf, [])


@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA.generate(clock=ManualClock(START))


def test_issued_certificate_chains_to_the_ca_for_every_requested_name(ca: LocalCA) -> None:
    issued = ca.issue(["app.example.com", "*.api.example.com"], lifetime=timedelta(hours=2))
    for name in ("app.example.com", "v1.api.example.com"):
        chain = verify(ca, issued, name, START + timedelta(minutes=5))
        assert [c.subject for c in chain] == [
            x509.load_pem_x509_certificate(issued.cert_pem).subject,
            ca.certificate.subject,
        ]
    with pytest.raises(VerificationError):
        verify(ca, issued, "other.example.com", START + timedelta(minutes=5))
    with pytest.raises(VerificationError):
        verify(ca, issued, "a.b.api.example.com", START + timedelta(minutes=5))


def test_certificate_from_another_ca_does_not_verify(ca: LocalCA) -> None:
    other = LocalCA.generate(clock=ManualClock(START))
    foreign = other.issue(["app.example.com"])
    with pytest.raises(VerificationError):
        verify(ca, foreign, "app.example.com", START + timedelta(minutes=5))


def test_certificate_carries_sans_server_auth_and_exact_validity(ca: LocalCA) -> None:
    not_before = START + timedelta(days=1, microseconds=123)
    issued = ca.issue(
        ["b.example.com", "a.example.com"], not_before=not_before, lifetime=timedelta(hours=36)
    )
    leaf = x509.load_pem_x509_certificate(issued.cert_pem)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["b.example.com", "a.example.com"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert leaf.not_valid_before_utc == START + timedelta(days=1)
    assert leaf.not_valid_after_utc == START + timedelta(days=2, hours=12)
    assert issued.not_before == leaf.not_valid_before_utc
    assert issued.not_after == leaf.not_valid_after_utc
    assert issued.lifetime == timedelta(hours=36)
    assert issued.serial == leaf.serial_number
    assert issued.dns_names == ("b.example.com", "a.example.com")
    der = leaf.public_bytes(serialization.Encoding.DER)
    assert issued.fingerprint_sha256 == hashlib.sha256(der).hexdigest()
    # tls.crt content: the leaf followed by the CA.
    chain = x509.load_pem_x509_certificates(issued.chain_pem)
    assert [c.serial_number for c in chain] == [leaf.serial_number, ca.certificate.serial_number]
    # The key belongs to the certificate.
    key = serialization.load_pem_private_key(issued.key_pem, password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(serialization.Encoding.DER, spki) == (
        leaf.public_key().public_bytes(serialization.Encoding.DER, spki)
    )


def test_certificate_is_rejected_outside_its_validity_window(ca: LocalCA) -> None:
    issued = ca.issue(["t.example.com"], not_before=START, lifetime=timedelta(hours=1))
    verify(ca, issued, "t.example.com", START + timedelta(minutes=59))
    with pytest.raises(VerificationError):
        verify(ca, issued, "t.example.com", START - timedelta(seconds=1))
    with pytest.raises(VerificationError):
        verify(ca, issued, "t.example.com", START + timedelta(hours=1, seconds=1))


def test_not_before_defaults_to_the_injected_clock() -> None:
    clock = ManualClock(START)
    ca = LocalCA.generate(clock=clock)
    clock.advance(timedelta(days=3))
    issued = ca.issue(["c.example.com"], lifetime=timedelta(days=1))
    assert issued.not_before == START + timedelta(days=3)
    assert issued.not_after == START + timedelta(days=4)


@pytest.mark.parametrize("key_type", ["ECDSA-P256", "ECDSA-P384", "RSA-2048", "Ed25519"])
def test_every_key_type_verifies(ca: LocalCA, key_type: str) -> None:
    issued = ca.issue(["k.example.com"], key_type=key_type)  # type: ignore[arg-type]
    verify(ca, issued, "k.example.com", START + timedelta(minutes=1))


def test_cert_manager_private_key_spec_maps_to_key_types() -> None:
    assert key_type_for(None, None) == "ECDSA-P256"
    assert key_type_for("RSA", None) == "RSA-2048"
    assert key_type_for("RSA", 4096) == "RSA-4096"
    assert key_type_for("ECDSA", 384) == "ECDSA-P384"
    assert key_type_for("Ed25519", None) == "Ed25519"
    with pytest.raises(ValueError):
        key_type_for("ECDSA", 521)
    with pytest.raises(ValueError):
        key_type_for("DSA", None)


def test_invalid_requests_are_refused(ca: LocalCA) -> None:
    with pytest.raises(ValueError):
        ca.issue([])
    with pytest.raises(ValueError):
        ca.issue(["x.example.com"], lifetime=timedelta(0))
    with pytest.raises(ValueError):
        ca.issue(["x.example.com"], not_before=datetime(2026, 1, 1))  # naive


def test_persisted_ca_is_reloaded_and_keeps_verifying_old_certificates(tmp_path: Path) -> None:
    first = LocalCA.load_or_create(tmp_path / "state")
    issued = first.issue(["p.example.com"])
    key_mode = stat.S_IMODE(os.stat(tmp_path / "state" / "ca.key").st_mode)
    assert key_mode == 0o600
    second = LocalCA.load_or_create(tmp_path / "state")
    assert second.cert_pem == first.cert_pem
    verify(second, issued, "p.example.com", datetime.now(UTC) + timedelta(minutes=1))
    # And the reloaded CA can still sign.
    verify(first, second.issue(["q.example.com"]), "q.example.com", datetime.now(UTC))
