"""Certificate rules, in one home: which listeners get a managed certificate, what the
certificate objects and their inventory ids are called, how a served or stored certificate is
fingerprinted, and the default expressions that judge issuance. Pure functions of their inputs
(no I/O); the steps that request, attach and rotate certificates (``bifrost.steps.tls``,
``bifrost.steps.rotation``), the controller and the status writer all read them from here, and
the renewal policy lives beside them in ``bifrost.certificates.renewal``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bifrost.api.blueprint import BlueprintTLS, TLSSource
from bifrost.api.objects import Obj
from bifrost.render.templates import dns_label

CERTIFICATE_CHILD_PREFIX = "tls:"
#: Certificates go last in a teardown (DNS first, then load balancers, then certificates).
CERTIFICATE_DELETE_ORDER = -1000
DEFAULT_READY_WHEN = 'object.status.conditions.exists(c, c.type == "Ready" && c.status == "True")'
DEFAULT_SECRET_NAME = "object.spec.secretName"
LISTENER_LABEL = "gateway.bifrost.dev/listener"
CERT_MANAGER_NAME_ANNOTATION = "cert-manager.io/certificate-name"


#: Defaults for ``source: ListenerSecret``: the rendered copy is a Secret, "issued" once it has
#: its data.
PASSTHROUGH_READY_WHEN = 'has(object.data) && "tls.crt" in object.data'
PASSTHROUGH_SECRET_NAME = "object.metadata.name"


def secret_leaf(data: Mapping[str, Any]) -> x509.Certificate:
    """The leaf (first certificate) of a TLS Secret's base64 ``data["tls.crt"]`` chain; raises
    KeyError without one, ValueError when it is not PEM."""
    return x509.load_pem_x509_certificates(base64.b64decode(data["tls.crt"]))[0]


def der_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER encoding (what a TLS client is served)."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def dns_names(cert: x509.Certificate) -> list[str]:
    """The certificate's SAN dNSNames."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.DNSName))


def leaf_fingerprint(secret: Mapping[str, Any] | None) -> str | None:
    """SHA-256 of the leaf in a Secret's ``tls.crt`` (``None`` when there is none)."""
    try:
        return der_fingerprint(secret_leaf((secret or {}).get("data") or {}))
    except (KeyError, ValueError):
        return None


def certificate_child_id(object_name: str) -> str:
    return f"{CERTIFICATE_CHILD_PREFIX}{object_name}"


def is_certificate_child(child_id: str) -> bool:
    return child_id.startswith(CERTIFICATE_CHILD_PREFIX)


def certificate_name(gateway: str, listener: str, key: str) -> str:
    """``<gateway>-<listener>-<8 hex>``: a DNS label, stable for one operation step."""
    suffix = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{dns_label(gateway, 36)}-{dns_label(listener, 16)}-{suffix}"


def managed_listeners(gateway: Mapping[str, Any]) -> list[Obj]:
    """The listeners that get a managed certificate: HTTPS (TLS terminated) with a hostname."""
    out: list[Obj] = []
    for listener in (gateway.get("spec") or {}).get("listeners") or []:
        if listener.get("protocol") != "HTTPS" or not listener.get("hostname"):
            continue
        mode = (listener.get("tls") or {}).get("mode", "Terminate")
        if mode == "Terminate":
            out.append(dict(listener))
    return out


def listener_hostnames(listener: Mapping[str, Any]) -> tuple[str, ...]:
    return (str(listener["hostname"]),)


def source_secret_ref(gateway: Mapping[str, Any], listener: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of the Secret a pass-through listener names (its first certificateRef)."""
    refs = (listener.get("tls") or {}).get("certificateRefs") or []
    ref = refs[0] if refs else {}
    namespace = str((gateway.get("metadata") or {}).get("namespace"))
    return str(ref.get("namespace") or namespace), str(ref.get("name") or "")


def ready_when(tls: BlueprintTLS) -> str:
    if tls.ready_when:
        return tls.ready_when
    return PASSTHROUGH_READY_WHEN if tls.source is TLSSource.LISTENER_SECRET else DEFAULT_READY_WHEN


def secret_name_expression(tls: BlueprintTLS) -> str:
    if tls.secret_name:
        return tls.secret_name
    if tls.source is TLSSource.LISTENER_SECRET:
        return PASSTHROUGH_SECRET_NAME
    return DEFAULT_SECRET_NAME
