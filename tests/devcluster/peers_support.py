"""Helpers for the peer tests: real TLS handshakes, TLS Secrets and cert-manager Certificates as
the API returns them, the CRD files to load, conditions."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
from pathlib import Path
from typing import Any

from devcluster.peers.ca import IssuedCertificate


class HandshakeFailed(Exception):
    pass


def handshake(port: int, sni: str | None, ca_pem: bytes, *, verify: bool = True) -> str:
    """A real TLS handshake on loopback; returns the SHA-256 fingerprint of the served leaf.

    With ``verify`` the client checks the chain against ``ca_pem`` and the hostname against the
    SNI name, as a browser would.
    """
    ctx = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    if not verify or sni is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=sni) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (ssl.SSLError, OSError) as exc:
        raise HandshakeFailed(str(exc)) from exc
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def try_handshake(port: int, sni: str, ca_pem: bytes) -> str | None:
    try:
        return handshake(port, sni, ca_pem)
    except HandshakeFailed:
        return None


def tls_secret(
    namespace: str, name: str, issued: IssuedCertificate, rv: str = "1"
) -> dict[str, Any]:
    """A ``kubernetes.io/tls`` Secret as the API returns it (data base64)."""

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"namespace": namespace, "name": name, "resourceVersion": rv},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": b64(issued.chain_pem), "tls.key": b64(issued.key_pem)},
    }


SHARED = Path(__file__).resolve().parents[3] / "shared"


def crd_files() -> list[str]:
    """The real Gateway API v1.6.1 and cert-manager CRDs from ``../shared/``."""
    dirs = [SHARED / "gateway-api" / "v1.6.1", SHARED / "cert-manager"]
    return [str(p) for d in dirs for p in sorted(d.glob("*.yaml"))]


def certificate(
    namespace: str, name: str, secret: str, dns_names: list[str], issuer: str, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {
            "secretName": secret,
            "dnsNames": dns_names,
            "issuerRef": {"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
            **spec,
        },
    }


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return None
