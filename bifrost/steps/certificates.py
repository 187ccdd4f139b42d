"""Certificate steps: request one (a cert-manager ``Certificate`` child with a deterministic
name), wait until it is issued, and record what was issued in the store.

The store keeps the certificate's object name, serial, fingerprint and validity — never key
material. Every step observes first and acts only if needed, so a re-run after a crash finds what
the crashed attempt made.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from bifrost.certificates.rules import der_fingerprint, dns_names
from bifrost.engine import Done, StepContext, StepOutcome, Wait
from bifrost.kube import KubeClient, KubeError
from bifrost.machines.edge_certificate import EdgeCertificateContext
from bifrost.records import CertificateRecord
from bifrost.steps.children import owner_reference
from bifrost.steps.kube_outcomes import outcome_for
from bifrost.store.interface import OperationStore

CERT_API = "cert-manager.io/v1"


def leaf_from_pem(pem: str) -> x509.Certificate:
    """The first certificate of a PEM chain (the leaf)."""
    return x509.load_pem_x509_certificates(pem.encode())[0]


class ApplyCertificate:
    """Create (server-side apply) the Certificate for the listener's hostname."""

    def __init__(self, kube: KubeClient, *, issuer: str = "devcluster-ca") -> None:
        self.kube = kube
        self.issuer = issuer

    def run(self, ctx: StepContext[EdgeCertificateContext], input: Any) -> StepOutcome:
        c = ctx.context
        name = c.certificate_name or f"{c.gateway}-{c.listener}-{ctx.idempotency_key[:8]}"
        secret = f"{name}-tls"
        body = {
            "apiVersion": CERT_API,
            "kind": "Certificate",
            "metadata": {
                "name": name,
                "namespace": c.namespace,
                "labels": {"gateway.bifrost.dev/gateway-uid": c.gateway_uid},
                "ownerReferences": [owner_reference(c)],
            },
            "spec": {
                "secretName": secret,
                "dnsNames": [c.hostname],
                "issuerRef": {"name": self.issuer, "kind": "ClusterIssuer"},
            },
        }
        try:
            self.kube.apply(body)
        except KubeError as e:
            return outcome_for(e, doing=f"applying Certificate {c.namespace}/{name}")
        ref = f"{CERT_API}/Certificate {c.namespace}/{name}"
        return Done(
            output={"certificate": name},
            context=c.model_copy(
                update={
                    "certificate_name": name,
                    "secret_name": secret,
                    "children": tuple(dict.fromkeys((*c.children, ref))),
                }
            ),
        )


class WaitCertificateIssued:
    """Wait until the Certificate is Ready for the current spec and its Secret holds the leaf."""

    def __init__(self, kube: KubeClient, *, recheck: timedelta = timedelta(seconds=0.2)) -> None:
        self.kube = kube
        self.recheck = recheck

    def run(self, ctx: StepContext[EdgeCertificateContext], input: Any) -> StepOutcome:
        c = ctx.context
        try:
            cert = self.kube.get(CERT_API, "Certificate", c.certificate_name, c.namespace)
            secret = self.kube.get("v1", "Secret", c.secret_name, c.namespace)
        except KubeError as e:
            return outcome_for(e, doing=f"reading Certificate {c.namespace}/{c.certificate_name}")
        if cert is None:
            return Wait(
                f"Certificate {c.namespace}/{c.certificate_name} not found yet", self.recheck
            )
        status = cert.get("status") or {}
        ready = next((x for x in status.get("conditions") or [] if x.get("type") == "Ready"), None)
        if not ready or ready.get("status") != "True":
            reason = (ready or {}).get("message") or "not issued yet"
            return Wait(f"Certificate {c.certificate_name}: {reason}", self.recheck)
        if secret is None or "tls.crt" not in (secret.get("data") or {}):
            return Wait(f"Secret {c.secret_name} not written yet", self.recheck)
        leaf = leaf_from_pem(base64.b64decode(secret["data"]["tls.crt"]).decode())
        if c.hostname not in dns_names(leaf):
            return Wait(f"Secret {c.secret_name} does not cover {c.hostname} yet", self.recheck)
        fingerprint = der_fingerprint(leaf)
        return Done(
            output={"fingerprint": fingerprint, "notAfter": status.get("notAfter")},
            context=c.model_copy(
                update={
                    "issued_fingerprint": fingerprint,
                    "not_after": leaf.not_valid_after_utc.isoformat(),
                    "renewal_time": status.get("renewalTime"),
                }
            ),
        )


class RecordCertificate:
    """Record the issued, verified certificate in the store (the source of truth for renewal)."""

    def __init__(self, store: OperationStore) -> None:
        self.store = store

    def run(self, ctx: StepContext[EdgeCertificateContext], input: Any) -> StepOutcome:
        c = ctx.context
        now = ctx.now()
        not_after = datetime.fromisoformat(c.not_after) if c.not_after else None
        renewal_at = (
            datetime.fromisoformat(c.renewal_time.replace("Z", "+00:00"))
            if c.renewal_time
            else None
        )
        self.store.upsert_certificate(
            CertificateRecord(
                gateway_uid=c.gateway_uid,
                listener=c.listener,
                object_name=c.certificate_name,
                secret_name=c.secret_name,
                serial=None,
                fingerprint_sha256=c.issued_fingerprint,
                dns_names=(c.hostname,),
                not_before=None,
                not_after=not_after,
                renewal_at=renewal_at,
                attached=True,
                state="attached",
                updated_at=now,
            )
        )
        return Done(output={"recorded": c.certificate_name})
