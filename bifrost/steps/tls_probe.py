"""The TLS probe: one real handshake with SNI against an address, and the SHA-256 fingerprint of
the leaf certificate served there. Rotation's ``verify_served`` compares it with the new
certificate's to prove the data plane serves it."""

from __future__ import annotations

import hashlib
import socket
import ssl


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
