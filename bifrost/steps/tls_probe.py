"""Verify that a certificate is served: a real TLS handshake with SNI against the child's
address, trusting the issuing CA, and a comparison of the served leaf's SHA-256 fingerprint with
the issued one. A mismatch is not a failure yet (the data plane may not have swapped): the step
waits until its retry policy's timeout."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
from datetime import timedelta
from typing import Any

from bifrost.engine import Done, Fail, StepContext, StepOutcome, Wait
from bifrost.kube import KubeClient, KubeError
from bifrost.machines.edge_certificate import EdgeCertificateContext
from bifrost.steps.kube_outcomes import outcome_for


def served_fingerprint(
    address: str, port: int, *, server_name: str, ca_pem: str | None, timeout: float = 3.0
) -> str:
    """One real TLS handshake with SNI ``server_name``; the SHA-256 fingerprint of the served
    leaf. With ``ca_pem`` the chain and the name are verified against it; without, only the
    fingerprint (compared by the caller) proves what is served."""
    if ca_pem:
        context = ssl.create_default_context(cadata=ca_pem)
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((address, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("no peer certificate")
    return hashlib.sha256(der).hexdigest()


class ProbeTLS:
    def __init__(self, kube: KubeClient, *, recheck: timedelta = timedelta(seconds=0.2)) -> None:
        self.kube = kube
        self.recheck = recheck

    def run(self, ctx: StepContext[EdgeCertificateContext], input: Any) -> StepOutcome:
        c = ctx.context
        if not c.child_address or not c.child_port:
            return Fail("no child address recorded: the attach state did not complete")
        try:
            secret = self.kube.get("v1", "Secret", c.secret_name, c.namespace)
        except KubeError as e:
            return outcome_for(e, doing=f"reading Secret {c.secret_name}")
        data = (secret or {}).get("data") or {}
        if "ca.crt" not in data:
            return Wait(f"Secret {c.secret_name} has no ca.crt to verify against", self.recheck)
        ca_pem = base64.b64decode(data["ca.crt"]).decode()
        address, port = c.child_address, c.child_port
        try:
            served = served_fingerprint(address, port, server_name=c.hostname, ca_pem=ca_pem)
        except (OSError, ssl.SSLError) as e:
            return Wait(
                f"TLS handshake with {address}:{port} (SNI {c.hostname}): {e}", self.recheck
            )
        if served != c.issued_fingerprint:
            return Wait(
                f"{address}:{port} serves {served[:16]}…, not the issued "
                f"{(c.issued_fingerprint or '')[:16]}…",
                self.recheck,
            )
        return Done(
            output={"served": served, "from": f"{address}:{port}"},
            context=c.model_copy(
                update={"served_fingerprint": served, "served_from": f"{address}:{port}"}
            ),
        )
