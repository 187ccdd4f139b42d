"""A TLS data plane that serves, by SNI, exactly the certificates the children attach.

bifrost's central promise is zero-downtime certificate rotation: *attach the new certificate
beside the old → verify it is served → detach the old*. "Verify it is served" and "zero downtime"
are only meaningful if something actually terminates TLS with whatever the children currently
reference. On a real cluster that is Envoy/Istio/an ALB; in the devcluster it is this module: one
TLS server per child (loopback, its own port) whose SNI callback picks a per-certificate
``SSLContext`` from an immutable table that is swapped atomically whenever the child's
certificate references or the referenced Secrets change. Clients (tests, bifrost's verify step,
benchmarks) do real handshakes and see exactly what a real proxy would serve.

Selection rules (documented in :meth:`DataPlane.select`): a certificate is a candidate for an SNI
name when one of its SAN dNSNames matches the name (exactly, or as a ``*.`` wildcard covering
exactly one label) and the attaching listener's hostname (when it has one) matches too. Exact SAN
matches beat wildcard matches; among equals the certificate with the latest ``notBefore`` wins
(so a freshly attached certificate is the one served while the old one is still attached, which
is what a rotation's verify step looks for); remaining ties (certificates issued within the same
second) go to the later attachment, since a rotation attaches the new one after the old. No
candidate, or no SNI at all → the handshake fails with an ``unrecognized_name`` alert.

After a successful handshake the server answers one HTTP/1.1 request with ``200`` and a JSON body
``{"child": "...", "sni": "...", "fingerprint_sha256": "..."}`` so that plain HTTPS clients work
too; clients that only care about the handshake may hang up at once.

The data plane itself knows nothing about Kubernetes: the load balancer peer tells it which
children exist and what they attach (:meth:`DataPlane.set_child`), and a Secret watch feeds
:meth:`DataPlane.secret_changed` / :meth:`DataPlane.secret_deleted`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import selectors
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from devcluster.peers.ca import fingerprint_sha256

__all__ = [
    "CertRef",
    "ChildRef",
    "DataPlane",
    "ServedCertificate",
    "hostname_matches",
]

log = logging.getLogger(__name__)


class ChildRef(NamedTuple):
    """Identifies one child object (a child Gateway, a load balancer ...)."""

    api_version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return (
            f"{self.kind}/{self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind}/{self.name}"
        )


class CertRef(NamedTuple):
    """A child's reference to a ``kubernetes.io/tls`` Secret, as attached to a listener."""

    namespace: str
    name: str
    listener_hostname: str | None = None
    """The attaching listener's hostname (``None``: the listener accepts any SNI)."""


@dataclass(frozen=True)
class ServedCertificate:
    """A certificate loaded from a Secret and ready to be served."""

    secret_namespace: str
    secret_name: str
    listener_hostname: str | None
    dns_names: tuple[str, ...]
    serial: int
    fingerprint_sha256: str
    not_before: datetime
    not_after: datetime
    context: ssl.SSLContext


def hostname_matches(pattern: str, name: str) -> bool:
    """Whether ``name`` matches ``pattern`` (exact, or ``*.rest`` covering exactly one label).

    Case-insensitive; a trailing dot is ignored. This is the rule both X.509 (RFC 6125) and the
    Gateway API listener hostname use.
    """
    p, n = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if p == n:
        return True
    if p.startswith("*."):
        head, _, rest = n.partition(".")
        return bool(head) and rest == p[2:]
    return False


class _LoadedSecret(NamedTuple):
    version: str
    cert: ServedCertificate | None  # None: not a usable TLS secret
    error: str | None


def _decode(data: Mapping[str, Any], key: str) -> bytes | None:
    raw = data.get(key)
    if not isinstance(raw, str):
        return None
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None


class DataPlane:
    """One loopback TLS server per child, serving the child's attached certificates by SNI.

    Thread-safe. :meth:`set_child` starts the child's server (if needed) and returns its port;
    :meth:`remove_child` stops it. Changes take effect for the next handshake: the SNI table is an
    immutable mapping replaced under a lock, and the callback reads the current reference.
    """

    def __init__(self, *, host: str = "127.0.0.1", handshake_timeout: float = 5.0) -> None:
        self.host = host
        self.handshake_timeout = handshake_timeout
        self._lock = threading.RLock()
        self._servers: dict[ChildRef, _TLSServer] = {}
        self._refs: dict[ChildRef, tuple[CertRef, ...]] = {}
        self._secrets: dict[tuple[str, str], _LoadedSecret] = {}
        self._tmpdir = tempfile.mkdtemp(prefix="bifrost-dataplane-")
        self._closed = False
        self._subscribers: list[Callable[[set[ChildRef]], None]] = []

    def subscribe(self, callback: Callable[[set[ChildRef]], None]) -> None:
        """Call ``callback(children)`` after a Secret change alters what ``children`` serve."""
        self._subscribers.append(callback)

    # -- inputs -------------------------------------------------------------------------------

    def set_child(self, child: ChildRef, refs: Iterable[CertRef], *, port: int = 0) -> int:
        """Declare ``child`` with the certificates it attaches; return its server's port.

        ``port`` asks for a specific port on first start (0: any free port).
        """
        refs_t = tuple(refs)
        with self._lock:
            if self._closed:
                raise RuntimeError("data plane is stopped")
            server = self._servers.get(child)
            if server is None:
                try:
                    server = _TLSServer(child, self.host, port, self.handshake_timeout)
                except OSError:
                    if not port:
                        raise
                    server = _TLSServer(child, self.host, 0, self.handshake_timeout)
                self._servers[child] = server
                server.start()
            self._refs[child] = refs_t
            self._rebuild(child)
            return server.port

    def remove_child(self, child: ChildRef) -> None:
        with self._lock:
            server = self._servers.pop(child, None)
            self._refs.pop(child, None)
        if server is not None:
            server.stop()

    def secret_changed(self, secret: Mapping[str, Any]) -> None:
        """A Secret was added or modified (the API object as a dict, ``data`` base64)."""
        meta = secret.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        version = str(meta.get("resourceVersion") or "")
        with self._lock:
            old = self._secrets.get(key)
            if old is not None and version and old.version == version:
                return
            self._secrets[key] = self._load(key, version, secret)
            affected = self._rebuild_for_secret(key)
        self._notify(affected)

    def secret_deleted(self, namespace: str, name: str) -> None:
        affected: set[ChildRef] = set()
        with self._lock:
            if self._secrets.pop((namespace, name), None) is not None:
                affected = self._rebuild_for_secret((namespace, name))
        self._notify(affected)

    def ref_problem(self, namespace: str, name: str) -> str | None:
        """Why the Secret ``namespace/name`` cannot be served (``None``: it can)."""
        with self._lock:
            loaded = self._secrets.get((namespace, name))
        if loaded is None:
            return f"Secret {namespace}/{name} does not exist"
        if loaded.error:
            return f"Secret {namespace}/{name}: {loaded.error}"
        return None

    def _notify(self, children: set[ChildRef]) -> None:
        if not children:
            return
        for callback in list(self._subscribers):
            try:
                callback(children)
            except Exception:
                log.exception("data plane subscriber failed")

    def replace_secrets(self, secrets: Iterable[Mapping[str, Any]]) -> None:
        """Replace the whole Secret cache (after a relist)."""
        fresh: dict[tuple[str, str], Mapping[str, Any]] = {}
        for s in secrets:
            meta = s.get("metadata") or {}
            fresh[(str(meta.get("namespace") or ""), str(meta.get("name") or ""))] = s
        with self._lock:
            for key in list(self._secrets):
                if key not in fresh:
                    del self._secrets[key]
            for key, s in fresh.items():
                version = str((s.get("metadata") or {}).get("resourceVersion") or "")
                old = self._secrets.get(key)
                if old is None or not version or old.version != version:
                    self._secrets[key] = self._load(key, version, s)
            for child in list(self._servers):
                self._rebuild(child)
            affected = set(self._servers)
        self._notify(affected)

    # -- introspection ------------------------------------------------------------------------

    def port(self, child: ChildRef) -> int | None:
        with self._lock:
            server = self._servers.get(child)
            return server.port if server else None

    def children(self) -> dict[ChildRef, int]:
        with self._lock:
            return {c: s.port for c, s in self._servers.items()}

    def served(self, child: ChildRef) -> list[ServedCertificate]:
        """The certificates ``child`` serves now (attached and loadable), in attachment order."""
        with self._lock:
            server = self._servers.get(child)
            return list(server.table) if server else []

    def problems(self, child: ChildRef) -> list[str]:
        """Why attached references are not served (missing Secret, unusable data)."""
        out: list[str] = []
        with self._lock:
            for ref in self._refs.get(child, ()):
                loaded = self._secrets.get((ref.namespace, ref.name))
                if loaded is None:
                    out.append(f"Secret {ref.namespace}/{ref.name} not found")
                elif loaded.error:
                    out.append(f"Secret {ref.namespace}/{ref.name}: {loaded.error}")
        return out

    def select(self, child: ChildRef, server_name: str | None) -> ServedCertificate | None:
        """The certificate ``child`` presents for ``server_name`` (see the module docstring)."""
        with self._lock:
            server = self._servers.get(child)
        return _select(server.table if server else (), server_name)

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            servers = list(self._servers.values())
            self._servers.clear()
            self._refs.clear()
        for s in servers:
            s.stop()
        with contextlib.suppress(OSError):
            os.rmdir(self._tmpdir)

    # -- internals ----------------------------------------------------------------------------

    def _rebuild_for_secret(self, key: tuple[str, str]) -> set[ChildRef]:
        affected = set()
        for child, refs in self._refs.items():
            if any((r.namespace, r.name) == key for r in refs):
                self._rebuild(child)
                affected.add(child)
        return affected

    def _rebuild(self, child: ChildRef) -> None:
        server = self._servers.get(child)
        if server is None:
            return
        table: list[ServedCertificate] = []
        for ref in self._refs.get(child, ()):
            loaded = self._secrets.get((ref.namespace, ref.name))
            if loaded is None or loaded.cert is None:
                continue
            cert = loaded.cert
            if cert.listener_hostname != ref.listener_hostname:
                cert = ServedCertificate(
                    **{**cert.__dict__, "listener_hostname": ref.listener_hostname}
                )
            table.append(cert)
        server.table = tuple(table)

    def _load(self, key: tuple[str, str], version: str, secret: Mapping[str, Any]) -> _LoadedSecret:
        data = secret.get("data") or {}
        chain, key_pem = _decode(data, "tls.crt"), _decode(data, "tls.key")
        if not chain or not key_pem:
            return _LoadedSecret(version, None, "missing tls.crt or tls.key")
        try:
            leaf = x509.load_pem_x509_certificates(chain)[0]
            serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            return _LoadedSecret(version, None, f"unparseable certificate or key: {exc}")
        try:
            sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names = tuple(n.lower() for n in sans.value.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            names = ()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        fd, path = tempfile.mkstemp(dir=self._tmpdir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(chain + b"\n" + key_pem)
            ctx.load_cert_chain(path)
        except (ssl.SSLError, OSError) as exc:
            return _LoadedSecret(version, None, f"certificate and key do not load: {exc}")
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        return _LoadedSecret(
            version,
            ServedCertificate(
                secret_namespace=key[0],
                secret_name=key[1],
                listener_hostname=None,
                dns_names=names,
                serial=leaf.serial_number,
                fingerprint_sha256=fingerprint_sha256(leaf),
                not_before=leaf.not_valid_before_utc,
                not_after=leaf.not_valid_after_utc,
                context=ctx,
            ),
            None,
        )


def _select(
    table: Iterable[ServedCertificate], server_name: str | None
) -> ServedCertificate | None:
    if not server_name:
        return None
    best: tuple[int, datetime, int] | None = None
    chosen: ServedCertificate | None = None
    for index, cert in enumerate(table):
        if cert.listener_hostname and not hostname_matches(cert.listener_hostname, server_name):
            continue
        exact = any(n == server_name.lower().rstrip(".") for n in cert.dns_names)
        if not exact and not any(hostname_matches(n, server_name) for n in cert.dns_names):
            continue
        rank = (1 if exact else 0, cert.not_before, index)
        if best is None or rank > best:
            best, chosen = rank, cert
    return chosen


class _TLSServer:
    """A listening socket on loopback and the threads that accept and answer on it."""

    def __init__(self, child: ChildRef, host: str, port: int, handshake_timeout: float) -> None:
        self.child = child
        self.table: tuple[ServedCertificate, ...] = ()
        self._handshake_timeout = handshake_timeout
        self._sock = socket.create_server((host, port), reuse_port=False)
        self._sock.setblocking(False)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._ctx.sni_callback = self._on_sni
        self._thread = threading.Thread(target=self._serve, name=f"dataplane-{child}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        for s in (self._sock, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                s.close()

    def _on_sni(
        self, sslobj: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _ctx: ssl.SSLContext
    ) -> int | None:
        cert = _select(self.table, server_name)
        if cert is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sslobj.context = cert.context
        sslobj._bifrost_served = (server_name, cert)  # type: ignore[union-attr]
        return None

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=1.0):
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        conn, _addr = self._sock.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        if self._stop.is_set():
                            return
                        continue
                    threading.Thread(
                        target=self._handle,
                        args=(conn,),
                        name=f"dataplane-conn-{self.child}",
                        daemon=True,
                    ).start()
        finally:
            sel.close()

    def _handle(self, conn: socket.socket) -> None:
        conn.setblocking(True)
        conn.settimeout(self._handshake_timeout)
        try:
            tls = self._ctx.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.debug("handshake on %s failed: %s", self.child, exc)
            with contextlib.suppress(OSError):
                conn.close()
            return
        try:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                request += chunk
            sni, cert = getattr(tls, "_bifrost_served", (None, None))
            body = json.dumps(
                {
                    "child": str(self.child),
                    "sni": sni,
                    "fingerprint_sha256": cert.fingerprint_sha256 if cert else None,
                }
            ).encode()
            tls.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        except (OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                tls.close()
