"""The simulated peers' own API client: plain HTTP and JSON, and only the calls the peers make.

The devcluster is where bifrost is tested, so its peers must not talk to the API server through
bifrost's own Kubernetes client: a bug there would then show up on both sides of a test and could
hide itself. This module is that independent client, written on ``http.client`` (no
``kubernetes`` package):

- :meth:`Client.is_namespaced` reads discovery (a kind it has not seen re-reads its group version,
  so a CRD installed after start-up is found; a kind that is not served raises
  :class:`UnknownKind`);
- reads: :meth:`~Client.get` (``None`` when missing), :meth:`~Client.list` (all namespaces, with
  the list resourceVersion) and :meth:`~Client.watch` (one raw ``?watch=true`` stream that
  another thread can close; the resuming, relisting loop is the informer's, in
  :mod:`devcluster.peers._runtime`);
- writes: forced server-side :meth:`~Client.apply`, merge or JSON :meth:`~Client.patch`, and
  :meth:`~Client.patch_status` (a merge patch on ``/status``), each under a field manager.

A failed request raises :class:`ClientError` with the server's status code, reason and message
(and Retry-After, if it sent one); a request that got no answer at all is a :class:`ClientError`
without a status. The client never retries: the peers' informers and work queues do. It is
thread-safe: finished requests leave their connection in a small keep-alive pool, and every watch
has a connection of its own.

:meth:`Client.from_kubeconfig` reads the kubeconfig's current context: the server URL (``http``,
or ``https`` verified against the system's or the kubeconfig's certificate authority) and a bearer
token — what a devcluster kubeconfig holds; client certificates and exec plugins are not read.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import os
import select
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

import yaml

__all__ = [
    "Client",
    "ClientError",
    "Gone",
    "NotFound",
    "UnknownKind",
    "WatchStream",
    "status_error",
]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Body = Obj | list[Obj]  # a JSON patch is a list of operations

_APPLY_PATCH = "application/apply-patch+yaml"
_PATCH_TYPES = {"merge": "application/merge-patch+json", "json": "application/json-patch+json"}
#: Seconds a request may wait for a connection or an answer; a watch waits timeoutSeconds + this.
_TIMEOUT = 30.0
_USER_AGENT = "devcluster-peers"


# ---- errors ---------------------------------------------------------------------------------


class ClientError(Exception):
    """A request failed: ``status`` is the HTTP status (``None``: no answer), ``reason`` the
    Status reason, ``retry_after`` the seconds the server asked to wait (or ``None``)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        what: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.what = what
        self.retry_after = retry_after

    def __str__(self) -> str:
        code = f"{self.status} {self.reason}".strip() if self.status else self.reason
        head = f"{code}: " if code else ""
        where = f" [{self.what}]" if self.what else ""
        return f"{head}{self.message}{where}"


class NotFound(ClientError):
    """404: the object (or its namespace) does not exist."""


class Gone(ClientError):
    """410: the resourceVersion to watch from is too old; list again."""


class UnknownKind(ClientError):
    """The API server does not serve this apiVersion and kind."""


def status_error(
    status: int, doc: Mapping[str, Any], *, retry_after: str | None = None, what: str = ""
) -> ClientError:
    """The error for a ``Status`` document answered with HTTP ``status`` (or sent as a watch
    ``ERROR`` event); ``retry_after`` is the Retry-After header, if any."""
    details = doc.get("details")
    details = details if isinstance(details, dict) else {}
    delay: float | None = None
    with contextlib.suppress(TypeError, ValueError):
        delay = max(0.0, float(retry_after)) if retry_after is not None else None
    seconds = details.get("retryAfterSeconds")
    if delay is None and isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0:
        delay = float(seconds)
    error = NotFound if status == 404 else Gone if status == 410 else ClientError
    return error(
        str(doc.get("message") or f"HTTP {status}"),
        status=status,
        reason=str(doc.get("reason") or ""),
        what=what,
        retry_after=delay,
    )


def _answer_error(status: int, payload: bytes, retry_after: str | None, what: str) -> ClientError:
    try:
        doc = json.loads(payload)
    except ValueError:
        doc = {"message": payload.decode("utf-8", errors="replace").strip()}
    return status_error(
        status, doc if isinstance(doc, dict) else {}, retry_after=retry_after, what=what
    )


def _no_answer(exc: BaseException, method: str, what: str) -> ClientError:
    return ClientError(f"{method} got no answer: {exc}", reason=type(exc).__name__, what=what)


# ---- discovery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Resource:
    """One served kind: its resource name (plural) and scope, and the URLs that address it."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        parts = [_group_version_path(self.api_version)]
        if self.namespaced and namespace:
            parts += ["namespaces", quote(namespace, safe="")]
        parts.append(self.plural)
        if name:
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)

    def scope(self, namespace: str | None, name: str) -> str | None:
        """The namespace to address ``name`` in (``None`` for a cluster-scoped kind)."""
        if not self.namespaced:
            return None
        if not namespace:
            raise ValueError(f"{self.kind} {name} is namespaced: a namespace is required")
        return namespace

    def typed(self, obj: Obj) -> Obj:
        """``obj`` with ``apiVersion`` and ``kind`` (list items arrive without them)."""
        obj.setdefault("apiVersion", self.api_version)
        obj.setdefault("kind", self.kind)
        return obj


def _group_version_path(api_version: str) -> str:
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def _what(kind: str, namespace: str | None = None, name: str | None = None) -> str:
    return "/".join(p for p in (kind, namespace, name) if p)


# ---- the client -----------------------------------------------------------------------------


class Client:
    """Dict-in, dict-out requests to one API server. Thread-safe."""

    def __init__(
        self, server: str, *, token: str | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        """``server`` is the API server's base URL (``http://127.0.0.1:PORT``); ``token`` is
        sent as a bearer token; ``tls`` verifies an ``https`` server (default: system trust)."""
        url = urlsplit(server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) API server URL: {server!r}")
        self.server = server
        self._host = url.hostname
        self._port = url.port
        self._tls = (tls or ssl.create_default_context()) if url.scheme == "https" else None
        self._headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._resources: dict[tuple[str, str], _Resource] = {}
        self._discovery_lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []
        self._pool_lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str]) -> Client:
        """A client for the current context of the kubeconfig at ``path``."""
        config = yaml.safe_load(Path(path).read_text()) or {}
        context = _named(config, "contexts", config.get("current-context"), "context")
        cluster = _named(config, "clusters", context.get("cluster"), "cluster")
        user = _named(config, "users", context.get("user"), "user")
        server = str(cluster.get("server") or "")
        tls: ssl.SSLContext | None = None
        if server.startswith("https:"):
            tls = _tls_context(cluster, Path(path).parent)
        token = user.get("token")
        return cls(server, token=str(token) if token else None, tls=tls)

    def close(self) -> None:
        """Close the pooled connections (open watches are closed by whoever opened them)."""
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- discovery ------------------------------------------------------------------------

    def _resource(self, api_version: str, kind: str) -> _Resource:
        with self._discovery_lock:
            found = self._resources.get((api_version, kind))
            if found is not None:
                return found
            what = _what(kind)
            try:
                listing = self._request("GET", _group_version_path(api_version), what=what)
            except NotFound as exc:
                raise UnknownKind(
                    f"the server does not serve {api_version}", reason="UnknownKind", what=what
                ) from exc
            for entry in listing.get("resources") or []:
                name = str(entry.get("name") or "")
                if name and "/" not in name:  # skip subresources such as gateways/status
                    resource = _Resource(
                        api_version, str(entry.get("kind")), name, bool(entry.get("namespaced"))
                    )
                    self._resources[(api_version, resource.kind)] = resource
            found = self._resources.get((api_version, kind))
            if found is None:
                raise UnknownKind(
                    f"the server does not serve {kind} in {api_version}",
                    reason="UnknownKind",
                    what=what,
                )
            return found

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        """Whether ``kind`` is namespaced; raises :class:`UnknownKind` if it is not served."""
        return self._resource(api_version, kind).namespaced

    # ---- reads ----------------------------------------------------------------------------

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        """The object, or ``None`` when it does not exist."""
        res = self._resource(api_version, kind)
        ns = res.scope(namespace, name)
        try:
            obj = self._request("GET", res.path(ns, name), what=_what(kind, ns, name))
        except NotFound:
            return None
        return res.typed(obj)

    def list(self, api_version: str, kind: str) -> tuple[list[Obj], str]:
        """Every object of ``kind`` (in all namespaces) and the list's resourceVersion."""
        res = self._resource(api_version, kind)
        page = self._request("GET", res.path(), what=_what(kind))
        items = [res.typed(item) for item in page.get("items") or [] if isinstance(item, dict)]
        return items, str((page.get("metadata") or {}).get("resourceVersion") or "")

    def watch(
        self, api_version: str, kind: str, *, resource_version: str, timeout_seconds: int
    ) -> WatchStream:
        """Open one watch of ``kind`` in all namespaces, with bookmarks, from
        ``resource_version`` ("" = the current state as ADDED events first); the server ends it
        after ``timeout_seconds``. An error answer raises (410: :class:`Gone`); an ``ERROR``
        event inside the stream is yielded as it came."""
        res = self._resource(api_version, kind)
        query = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if resource_version:
            query["resourceVersion"] = resource_version
        what = _what(kind)
        conn = self._connect(timeout_seconds + _TIMEOUT)
        try:
            conn.request("GET", f"{res.path()}?{urlencode(query)}", headers=self._headers)
            response = conn.getresponse()
            if response.status >= 400:
                raise _answer_error(
                    response.status, response.read(), response.getheader("Retry-After"), what
                )
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise _no_answer(exc, "watch", what) from exc
        except ClientError:
            conn.close()
            raise
        return WatchStream(conn, response, what=what)

    # ---- writes ---------------------------------------------------------------------------

    def apply(self, obj: Obj, *, field_manager: str) -> Obj:
        """Server-side apply ``obj`` as ``field_manager``, taking over conflicting fields."""
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        meta = obj.get("metadata") or {}
        name, namespace = meta.get("name"), meta.get("namespace")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise ValueError("the object needs apiVersion and kind")
        if not isinstance(name, str) or not name:
            raise ValueError(f"the {kind} needs metadata.name")
        res = self._resource(api_version, kind)
        ns = res.scope(namespace if isinstance(namespace, str) else None, name)
        applied = self._request(
            "PATCH",
            res.path(ns, name),
            query={"fieldManager": field_manager, "force": "true"},
            body=obj,
            content_type=_APPLY_PATCH,
            what=_what(kind, ns, name),
        )
        return res.typed(applied)

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Body,
        *,
        field_manager: str,
        patch_type: Literal["merge", "json"] = "merge",
        subresource: str | None = None,
    ) -> Obj:
        """PATCH with a merge patch (a dict) or a JSON patch (a list of operations)."""
        if (patch_type == "json") != isinstance(patch, list):
            raise ValueError(f"a {patch_type} patch cannot be a {type(patch).__name__}")
        res = self._resource(api_version, kind)
        ns = res.scope(namespace, name)
        patched = self._request(
            "PATCH",
            res.path(ns, name, subresource),
            query={"fieldManager": field_manager},
            body=patch,
            content_type=_PATCH_TYPES[patch_type],
            what=_what(kind, ns, name),
        )
        return res.typed(patched)

    def patch_status(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        status: Obj,
        *,
        field_manager: str,
    ) -> Obj:
        """Merge-patch ``status`` through the ``/status`` subresource."""
        return self.patch(
            api_version,
            kind,
            name,
            namespace,
            {"status": status},
            field_manager=field_manager,
            subresource="status",
        )

    # ---- plumbing -------------------------------------------------------------------------

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._tls is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._tls
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _checkout(self) -> http.client.HTTPConnection:
        with self._pool_lock:
            while self._idle:
                conn = self._idle.pop()
                if _still_open(conn):
                    return conn
                conn.close()
        return self._connect(_TIMEOUT)

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._pool_lock:
            if not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Body | None = None,
        content_type: str | None = None,
        what: str,
    ) -> Obj:
        url = f"{path}?{urlencode(query)}" if query else path
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type or "application/json"
        conn = self._checkout()
        try:
            conn.request(method, url, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise _no_answer(exc, method, what) from exc
        if response.will_close:
            conn.close()
        else:
            self._checkin(conn)
        if response.status >= 400:
            raise _answer_error(
                response.status, payload, response.getheader("Retry-After"), what
            )
        decoded = json.loads(payload) if payload else {}
        return decoded if isinstance(decoded, dict) else {}


def _still_open(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle pooled connection can be reused: readable while idle means the server
    closed it (or sent something unasked)."""
    if conn.sock is None:
        return False
    readable, _, _ = select.select([conn.sock], [], [], 0)
    return not readable


class WatchStream:
    """One open watch: iterate the raw event dicts; :meth:`close` from any thread.

    Iteration ends when the server ends the stream or after :meth:`close`. A transport failure
    while reading raises :class:`ClientError`, unless the stream was closed on purpose.
    """

    def __init__(
        self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse, *, what: str
    ) -> None:
        self._conn = conn
        self._response = response
        self._what = what
        self._closed = threading.Event()

    def close(self) -> None:
        """End the stream; a thread blocked reading it wakes up and its iteration ends."""
        if self._closed.is_set():
            return
        self._closed.set()
        # Shutting the socket down wakes a reader blocked in recv(); closing it alone does not.
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __iter__(self) -> Iterator[Obj]:
        buffer = bytearray()
        try:
            while not self._closed.is_set():
                try:
                    chunk = self._response.read1(65536)
                except (OSError, http.client.HTTPException) as exc:
                    if self._closed.is_set():
                        return
                    raise _no_answer(exc, "watch", self._what) from exc
                if not chunk:
                    return
                buffer.extend(chunk)
                while (newline := buffer.find(b"\n")) != -1:
                    line = bytes(buffer[:newline])
                    del buffer[: newline + 1]
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        # (its length only: the line may hold a Secret's data)
                        log.warning("skipping an undecodable watch line (%d bytes)", len(line))
                        continue
                    if isinstance(event, dict):
                        yield event
                    if self._closed.is_set():
                        return
        finally:
            self._closed.set()
            self._conn.close()


# ---- kubeconfig -----------------------------------------------------------------------------


def _named(config: Mapping[str, Any], section: str, name: object, field: str) -> dict[str, Any]:
    """The ``field`` of the entry called ``name`` in the kubeconfig's ``section`` list."""
    for entry in config.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(field)
            return value if isinstance(value, dict) else {}
    raise ValueError(f"the kubeconfig has no {section} entry named {name!r}")


def _tls_context(cluster: Mapping[str, Any], base: Path) -> ssl.SSLContext:
    """Verification for an ``https`` cluster entry: its certificate authority (inline or a file
    relative to the kubeconfig), else the system's; none with ``insecure-skip-tls-verify``."""
    context = ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        pem = base64.b64decode(str(cluster["certificate-authority-data"])).decode("ascii")
        context.load_verify_locations(cadata=pem)
    elif cluster.get("certificate-authority"):
        context.load_verify_locations(cafile=base / str(cluster["certificate-authority"]))
    return context
