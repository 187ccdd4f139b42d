"""Small builders for the API objects the status tests feed in (plain dicts, as the API returns).

Each builder takes only what a test varies; the rest is a sensible default, so a table row
reads like the YAML a user would write.
"""

from __future__ import annotations

import base64
import datetime as dt
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GROUP = "gateway.networking.k8s.io"
NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=1)


def listener(
    name: str = "http",
    *,
    port: int = 80,
    protocol: str = "HTTP",
    hostname: str | None = None,
    kinds: list[dict[str, str]] | None = None,
    from_: str | None = None,
    selector: dict[str, Any] | None = None,
    certs: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "port": port, "protocol": protocol}
    if hostname is not None:
        out["hostname"] = hostname
    allowed: dict[str, Any] = {}
    if kinds is not None:
        allowed["kinds"] = kinds
    if from_ is not None:
        allowed["namespaces"] = {"from": from_}
        if selector is not None:
            allowed["namespaces"]["selector"] = selector
    if allowed:
        out["allowedRoutes"] = allowed
    if certs is not None:
        out["tls"] = {"mode": "Terminate", "certificateRefs": certs}
    return out


def https(
    name: str = "https", *, cert: str = "tls", ns: str | None = None, **kw: Any
) -> dict[str, Any]:
    ref: dict[str, str] = {"kind": "Secret", "group": "", "name": cert}
    if ns is not None:
        ref["namespace"] = ns
    kw.setdefault("port", 443)
    return listener(name, protocol="HTTPS", certs=[ref], **kw)


def gateway(
    *listeners: dict[str, Any],
    name: str = "gw",
    ns: str = "infra",
    generation: int = 1,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns, "generation": generation},
        "spec": {"gatewayClassName": "bifrost", "listeners": list(listeners) or [listener()]},
    }
    if status is not None:
        out["status"] = status
    return out


@cache
def _keypair(cn: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=47))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tls_secret(
    name: str = "tls",
    *,
    ns: str = "infra",
    type_: str = "kubernetes.io/tls",
    crt: bytes | None = None,
    key: bytes | None = None,
    drop: str | None = None,
    cn: str = "example.com",
) -> dict[str, Any]:
    """A TLS Secret with a real self-signed certificate; override parts to break it."""
    good_crt, good_key = _keypair(cn)
    data = {
        "tls.crt": b64(good_crt if crt is None else crt),
        "tls.key": b64(good_key if key is None else key),
    }
    if drop is not None:
        del data[drop]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": type_,
        "data": data,
    }


def other_key() -> bytes:
    return _keypair("other.example.com")[1]


def secrets(*items: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in items}


def grant(
    *,
    ns: str,
    from_kind: str = "Gateway",
    from_ns: str = "infra",
    from_group: str = GROUP,
    to_kind: str = "Secret",
    to_group: str = "",
    to_name: str | None = None,
    name: str = "grant",
) -> dict[str, Any]:
    to: dict[str, str] = {"group": to_group, "kind": to_kind}
    if to_name is not None:
        to["name"] = to_name
    return {
        "apiVersion": f"{GROUP}/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "from": [{"group": from_group, "kind": from_kind, "namespace": from_ns}],
            "to": [to],
        },
    }


def parent(
    name: str = "gw",
    *,
    ns: str | None = "infra",
    section: str | None = None,
    port: int | None = None,
    kind: str = "Gateway",
    group: str = GROUP,
) -> dict[str, Any]:
    out: dict[str, Any] = {"group": group, "kind": kind, "name": name}
    if ns is not None:
        out["namespace"] = ns
    if section is not None:
        out["sectionName"] = section
    if port is not None:
        out["port"] = port
    return out


def backend(
    name: str = "svc", *, ns: str | None = None, kind: str = "Service", group: str = ""
) -> dict[str, Any]:
    out: dict[str, Any] = {"group": group, "kind": kind, "name": name, "port": 8080}
    if ns is not None:
        out["namespace"] = ns
    return out


def route(
    *parents: dict[str, Any],
    name: str = "web",
    ns: str = "infra",
    hostnames: list[str] | None = None,
    backends: list[dict[str, Any]] | None = None,
    generation: int = 1,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns, "generation": generation},
        "spec": {
            "parentRefs": list(parents) or [parent()],
            "rules": [{"backendRefs": [backend()] if backends is None else backends}],
        },
    }
    if hostnames is not None:
        out["spec"]["hostnames"] = hostnames
    if status is not None:
        out["status"] = status
    return out


def cond(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    """The condition of ``type_`` (fails the test if absent)."""
    found = [c for c in conditions if c["type"] == type_]
    assert found, f"no {type_} condition in {conditions}"
    return found[0]


def brief(conditions: list[dict[str, Any]], type_: str) -> tuple[str, str]:
    c = cond(conditions, type_)
    return c["status"], c["reason"]
