"""The devcluster HTTP server and its Python API (:class:`DevCluster`).

A real HTTP/1.1 server on loopback (``ThreadingHTTPServer``, one daemon thread per connection,
keep-alive, ``Content-Length`` on every non-streaming answer, chunked watch streams) so that the
unmodified official client and kubectl talk to it exactly as to a cluster. This module only maps
URLs to :class:`~devcluster.handlers.Target` and verbs, applies fault injection, records
every request, and serialises answers; the semantics live in ``handlers.py`` and ``watch.py``.

Every other request is authenticated and authorized first (``DevCluster.auth``, see
:mod:`devcluster.auth`): with the default ``authorization="RBAC"`` a request needs a bearer
token (the kubeconfig written by :meth:`DevCluster.write_kubeconfig` carries the admin's) or it
is ``system:anonymous``, which may only read ``/healthz``, ``/livez``, ``/readyz`` and
``/version``.

A small control surface under ``/devcluster/`` lets separate processes (benchmarks, controller
subprocess tests) read request counts, script faults, compact the watch history and drop
watches. It is a test surface on loopback and is NOT authenticated or authorized.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from devcluster.auth import AUTHENTICATED, Auth, UserInfo
from devcluster.auth.create_on_write import CreateOnWriteCheck
from devcluster.auth.enforcing import RbacAuth
from devcluster.auth.escalation import EscalationCheck
from devcluster.auth.service import AuthService
from devcluster.controllers import Workloads
from devcluster.errors import ApiError, status_body
from devcluster.eviction import register_eviction
from devcluster.faults import FaultInjector, Request, RequestLog
from devcluster.gc import GarbageCollector
from devcluster.handlers import Api, RawBody, RequestContext, Target, parse_body
from devcluster.kubeconfig import write_kubeconfig
from devcluster.localpods import LocalPodOptions
from devcluster.openapi import openapi_v3_discovery, openapi_v3_group_version
from devcluster.pod_exec import register_pod_exec
from devcluster.pod_logs import StreamingBody, register_pod_logs
from devcluster.pod_portforward import register_pod_portforward
from devcluster.registry import Registry
from devcluster.scale import register as register_scale
from devcluster.storage import Store
from devcluster.watch import serve_watch
from devcluster.websocket import Takeover

__all__ = ["DevCluster"]

JSON = dict[str, Any]

_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-devcluster",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_REASON_PHRASES = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    410: "Gone",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class _Headers(dict[str, str]):
    """Request headers, looked up case-insensitively (keys are stored lower-case). A header
    sent more than once keeps its first value here and every value in :meth:`get_all`."""

    def __init__(self) -> None:
        super().__init__()
        self.repeated: dict[str, list[str]] = {}

    def add(self, key: str, value: str) -> None:
        if key in self:
            self.repeated.setdefault(key, [self[key]]).append(value)
        else:
            self[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def get_all(self, key: str) -> list[str]:
        key = key.lower()
        if key in self.repeated:
            return list(self.repeated[key])
        return [self[key]] if key in self else []

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


def _is_resource_path(parts: list[str]) -> bool:
    """Whether a path addresses resources (``/api/v1/...``, ``/apis/g/v/...``); everything else
    — discovery, ``/version``, ``/healthz``, ``/openapi`` — is a non-resource URL, as upstream's
    request-info parser decides."""
    if len(parts) >= 3 and parts[0] == "api":
        return True
    return len(parts) >= 4 and parts[0] == "apis"


_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _url_request(parts: list[str], method: str, query: dict[str, str], ctype: str) -> Request:
    """What a resource URL asks for, read from the URL alone as upstream's request-info parser
    does (for authorization, before the resource is looked up)."""
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        group, version, rest = parts[1], parts[2], parts[3:]
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if method == "GET":
        verb = "get" if name else ("watch" if query.get("watch") in ("true", "1") else "list")
    elif method == "DELETE" and not name:
        verb = "deletecollection"
    else:
        verb = _METHOD_VERBS.get(method, method.lower())
    if verb == "patch" and ctype.split(";")[0].strip() == "application/apply-patch+yaml":
        verb = "apply"
    return Request(verb, group, version, rest[0], sub, namespace, name)


def _selected_name(verb: str, query: dict[str, str]) -> str | None:
    """The name a list or watch selects with ``fieldSelector=metadata.name=<name>``."""
    if verb not in ("list", "watch"):
        return None
    selector = query.get("fieldSelector") or ""
    for term in selector.split(","):
        key, sep, value = term.partition("=")
        if sep and key.strip() == "metadata.name":
            value = value.lstrip("=").strip()
            if value and "=" not in value:
                return value
    return None


class _NotFoundPage(Exception):
    """Answer ``404 page not found`` as plain text (unknown path)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    cluster: DevCluster
    ssl_context: ssl.SSLContext | None = None

    def server_bind(self) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().server_bind()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Serve one connection: TLS when it opens with a TLS handshake record (0x16) and the
        cluster has a serving certificate, plain HTTP otherwise (one port for both)."""
        ctx = self.ssl_context
        if ctx is None:
            super().finish_request(request, client_address)
            return
        try:
            first = request.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first != b"\x16":
            super().finish_request(request, client_address)
            return
        try:
            tls = ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with self.connections_lock:
            self.connections.discard(request)
            self.connections.add(tls)
        try:
            super().finish_request(tls, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(tls)
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that died mid-connection (a SIGKILLed controller) is not a server error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Hang up on every client (idle keep-alive connections included), as a dying
        API server would; their threads end at once."""
        with self.connections_lock:
            conns = list(self.connections)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    request_headers: _Headers
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def parse_request(self) -> bool:
        """A lean HTTP/1.x request-line and header parser.

        The stdlib one runs every request through ``email.parser``, which costs a quarter of
        the server's time per request; the API only needs a case-insensitive header lookup.
        """
        self.command = ""
        self.request_version = "HTTP/0.9"
        self.close_connection = True
        raw_line: bytes = getattr(self, "raw_requestline", b"")
        requestline = str(raw_line, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.send_error(400, f"Bad request syntax ({requestline!r})")
            return False
        self.command, self.path, self.request_version = words
        headers = _Headers()
        for _ in range(200):
            line = self.rfile.readline(65537)
            if len(line) > 65536:
                self.send_error(431, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            key, _, value = line.decode("iso-8859-1").partition(":")
            headers.add(key.strip().lower(), value.strip())
        else:
            self.send_error(431, "Too many headers")
            return False
        self.headers = headers  # type: ignore[assignment]
        self.request_headers = headers
        conntype = headers.get("connection", "").lower()
        if conntype == "close":
            self.close_connection = True
        elif self.request_version == "HTTP/1.1" or conntype == "keep-alive":
            self.close_connection = False
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    # ---------------------------------------------------------------- plumbing

    def _send(
        self,
        code: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        head = [
            f"HTTP/1.1 {code} {_REASON_PHRASES.get(code, 'Unknown')}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            "Cache-Control: no-cache, private",
        ]
        for k, v in headers:
            head.append(f"{k}: {v}")
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _send_json(self, code: int, obj: Any, headers: Sequence[tuple[str, str]] = ()) -> None:
        self._send(code, _DUMPS(obj).encode(), "application/json", headers)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(405, b"")

    # ---------------------------------------------------------------- dispatch

    def _dispatch(self) -> None:
        cluster = self.server.cluster
        try:
            raw = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        try:
            if parts and parts[0] == "devcluster":
                self._control(parts[1:], raw)  # the test surface: no authentication
                return
            user = cluster.auth.authenticate(self.request_headers)
            if not _is_resource_path(parts):
                cluster.auth.authorize_path(
                    user, self.command.lower(), urllib.parse.unquote(url.path) or "/"
                )
            if self._discovery(parts):
                return
            self._resource(parts, query, raw, user)
        except _NotFoundPage:
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
        except ApiError as e:
            self._send_json(e.code, e.body())
        except Exception as e:  # pragma: no cover - a bug must not kill the connection
            cluster.last_error = e
            traceback.print_exc()
            self._send_json(500, status_body(500, f"internal error: {e!r}", "InternalError"))

    def _discovery(self, parts: list[str]) -> bool:
        reg = self.server.cluster.registry
        if self.command != "GET":
            return False
        if not parts:
            paths = ["/api", "/api/v1", "/apis", "/version", "/healthz"]
            paths += [f"/apis/{g}" for g in reg.group_versions() if g]
            self._send_json(200, {"paths": sorted(paths)})
            return True
        if parts == ["version"]:
            self._send_json(200, _VERSION)
            return True
        if parts[0] in ("healthz", "readyz", "livez"):
            self._send(200, b"ok", "text/plain; charset=utf-8")
            return True
        if parts[0] == "openapi":
            if parts == ["openapi", "v3"]:
                self._send_json(200, openapi_v3_discovery(reg))
                return True
            if len(parts) >= 4 and parts[1] == "v3":
                rest = parts[2:]
                if rest[0] == "api" and len(rest) == 2:
                    doc = openapi_v3_group_version(reg, "", rest[1])
                elif rest[0] == "apis" and len(rest) == 3:
                    doc = openapi_v3_group_version(reg, rest[1], rest[2])
                else:
                    doc = None
                if doc is not None:
                    self._send_json(200, doc)
                    return True
            raise _NotFoundPage
        if parts == ["api"]:
            host, port = str(self.server.server_address[0]), self.server.server_address[1]
            self._send_json(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{host}:{port}"}
                    ],
                },
            )
            return True
        if parts == ["api", "v1"]:
            self._send_json(200, reg.api_resource_list("", "v1"))
            return True
        if parts == ["apis"]:
            self._send_json(200, reg.api_group_list())
            return True
        if len(parts) == 2 and parts[0] == "apis":
            doc = reg.api_group(parts[1])
            if doc is None:
                raise _NotFoundPage
            self._send_json(200, doc)
            return True
        if len(parts) == 3 and parts[0] == "apis":
            rl = reg.api_resource_list(parts[1], parts[2])
            if rl is None:
                raise _NotFoundPage
            self._send_json(200, rl)
            return True
        return False

    def _control(self, parts: list[str], raw: bytes) -> None:
        cluster = self.server.cluster
        cmd = self.command
        if parts == ["requests"] and cmd == "GET":
            self._send_json(200, cluster.request_log.snapshot())
        elif parts == ["requests"] and cmd == "DELETE":
            cluster.request_log.reset()
            self._send_json(200, {})
        elif parts == ["faults"] and cmd == "GET":
            self._send_json(200, {"rules": cluster.faults.snapshot()})
        elif parts == ["faults"] and cmd == "POST":
            try:
                body = json.loads(raw or b"{}")
                rule_id = cluster.faults.add_rule_from_json(body)
            except ValueError as e:
                raise ApiError(400, str(e), "BadRequest") from e
            self._send_json(201, {"id": rule_id})
        elif parts == ["faults"] and cmd == "DELETE":
            cluster.faults.clear()
            self._send_json(200, {})
        elif len(parts) == 2 and parts[0] == "faults" and cmd == "DELETE":
            try:
                cluster.faults.remove_rule(int(parts[1]))
            except (KeyError, ValueError) as e:
                raise ApiError(404, f"no fault rule {parts[1]}", "NotFound") from e
            self._send_json(200, {})
        elif parts == ["compact"] and cmd == "POST":
            cluster.compact()
            self._send_json(200, {"resourceVersion": str(cluster.store.resource_version)})
        elif parts == ["drop-watches"] and cmd == "POST":
            cluster.drop_watches()
            self._send_json(200, {})
        else:
            raise _NotFoundPage

    # ---------------------------------------------------------------- resources

    def _resolve(self, parts: list[str]) -> tuple[Target, str]:
        reg = self.server.cluster.registry
        if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _NotFoundPage
        if not reg.has_group_version(group, version):
            raise _NotFoundPage
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace = rest[1]
            rest = rest[2:]
        if not rest or len(rest) > 3:
            raise _NotFoundPage
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        rt = reg.get(group, version, plural)
        if rt is None:
            raise ApiError(
                404,
                "the server could not find the requested resource",
                "NotFound",
                kind=plural,
                group=group or None,
            )
        if namespace is not None and not rt.namespaced:
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        if namespace is None and rt.namespaced and name is not None:
            raise _NotFoundPage
        if sub is not None and not ((sub == "status" and rt.status) or sub in rt.subresources):
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        m = self.command
        if name is None:
            verb = {"GET": "list", "POST": "create", "DELETE": "deletecollection"}.get(m, "")
        elif sub is not None:
            verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "POST": "create"}.get(m, "")
        else:
            verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(m, "")
        allowed = rt.subresources[sub].verbs if sub in rt.subresources else rt.verbs
        if verb not in allowed and not (verb == "list" and "watch" in allowed):
            verb = ""
        if not verb:
            raise ApiError(
                405,
                "the server does not allow this method on the requested resource",
                "MethodNotAllowed",
            )
        return Target(rt, version, namespace, name, sub), verb

    def _resource(
        self, parts: list[str], query: dict[str, str], raw: bytes, user: UserInfo
    ) -> None:
        cluster = self.server.cluster
        ctype = self.headers.get("Content-Type") or ""
        if not _is_resource_path(parts):
            raise _NotFoundPage
        # authorize first, from the URL alone (as upstream): a request the user may not make is
        # a 403 whether or not the resource exists
        asked = _url_request(parts, self.command, query, ctype)
        try:
            cluster.auth.authorize(user, asked, field_name=_selected_name(asked.verb, query))
        except ApiError as e:
            cluster.request_log.record(asked, e.code)
            raise
        t, verb = self._resolve(parts)
        if verb == "list" and query.get("watch") in ("true", "1"):
            verb = "watch"
        if verb == "patch" and ctype.split(";")[0].strip() == "application/apply-patch+yaml":
            verb = "apply"
        req = Request(
            verb=verb,
            group=t.rt.group,
            version=t.version,
            resource=t.rt.plural,
            subresource=t.subresource,
            namespace=t.namespace,
            name=t.name,
        )
        fault = cluster.faults.decide(req)
        if fault is not None:
            if fault.latency:
                time.sleep(fault.latency)
            if fault.status is not None:
                err = ApiError(
                    fault.status,
                    f"injected fault: {fault.status}",
                    retry_after=fault.retry_after,
                )
                headers = []
                if fault.retry_after is not None:
                    headers.append(("Retry-After", str(fault.retry_after)))
                cluster.request_log.record(req, fault.status)
                self._send_json(fault.status, err.body(), headers)
                return
        if verb == "watch":
            cluster.request_log.record(req, 200)
            self._watch(
                t,
                query,
                fault.drop_watch_after if fault else None,
                bool(fault and fault.expire_watch),
            )
            return
        try:
            code, body = self._call(t, verb, query, raw, ctype, user)
        except ApiError as e:
            cluster.api.take_warnings()
            cluster.request_log.record(req, e.code)
            raise
        cluster.request_log.record(req, code)
        warnings = cluster.api.take_warnings()
        headers = [("Warning", '299 - "' + w.replace('"', '\\"') + '"') for w in warnings]
        if isinstance(body, StreamingBody):
            self._stream(code, body, headers)
            return
        if isinstance(body, Takeover):  # the handler answers on the connection, then it closes
            self.close_connection = True
            body.run(self.path, self.request_headers, self.connection)
            return
        if isinstance(body, RawBody):
            self._send(code, body.data, body.content_type, headers)
            return
        self._send_json(code, body, headers)

    def _stream(self, code: int, body: StreamingBody, headers: Sequence[tuple[str, str]]) -> None:
        """A chunked answer that grows while the handler has more (``pods/log?follow=true``):
        ``body.data`` at once, then each chunk ``body.more`` yields, until it returns or the
        client hangs up."""
        sock = self.connection

        def client_gone() -> bool:
            try:
                readable, _, _ = select.select([sock], [], [], 0)
                return bool(readable) and socket.socket.recv(sock, 1, socket.MSG_PEEK) == b""
            except (OSError, ValueError):
                return True

        head = [
            f"HTTP/1.1 {code} {_REASON_PHRASES.get(code, 'Unknown')}",
            f"Content-Type: {body.content_type}",
            "Transfer-Encoding: chunked",
            "Cache-Control: no-cache, private",
            *(f"{k}: {v}" for k, v in headers),
        ]
        try:
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            if body.data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(body.data), body.data))
            self.wfile.flush()
            for chunk in body.more(client_gone):
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def _wants_table(self) -> bool:
        accept = self.headers.get("Accept") or ""
        return "as=Table" in accept

    def _call(
        self, t: Target, verb: str, query: dict[str, str], raw: bytes, ctype: str, user: UserInfo
    ) -> tuple[int, JSON | RawBody]:
        api = self.server.cluster.api
        api.set_requester(user)
        try:
            return self._call_verb(api, t, verb, query, raw, ctype, user)
        finally:
            api.set_requester(None)

    def _call_verb(
        self,
        api: Api,
        t: Target,
        verb: str,
        query: dict[str, str],
        raw: bytes,
        ctype: str,
        user: UserInfo,
    ) -> tuple[int, JSON | RawBody]:
        handler = api.handlers.get((t.rt.group, t.rt.plural, t.subresource))
        if handler is not None:
            return handler(RequestContext(api, t, verb, query, raw, ctype, user))
        if t.subresource not in (None, "status"):
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        ua = self.headers.get("User-Agent") or ""
        if verb == "get":
            obj = api.get(t)
            if self._wants_table():
                return 200, api.table(
                    t,
                    [obj],
                    obj["metadata"].get("resourceVersion"),
                    query.get("includeObject", "Metadata"),
                )
            return 200, obj
        if verb == "list":
            listing = api.list_objects(t, query)
            if self._wants_table():
                items = [
                    api.present(t, {**i, "apiVersion": t.api_version, "kind": t.rt.kind})
                    for i in listing["items"]
                ]
                table = api.table(
                    t,
                    items,
                    listing["metadata"].get("resourceVersion"),
                    query.get("includeObject", "Metadata"),
                )
                if "continue" in listing["metadata"]:
                    table["metadata"]["continue"] = listing["metadata"]["continue"]
                return 200, table
            return 200, listing
        if verb == "create":
            if t.subresource:
                raise ApiError(405, "method not allowed", "MethodNotAllowed")
            return 201, api.create(t, parse_body(raw, content_type=ctype), query, ua)
        if verb == "update":
            return 200, api.update(t, parse_body(raw, content_type=ctype), query, ua)
        if verb in ("patch", "apply"):
            return api.patch(t, raw, ctype, query, ua)
        if verb == "delete":
            return 200, api.delete(t, raw, query)
        if verb == "deletecollection":
            return 200, api.delete_collection(t, raw, query)
        raise ApiError(405, "method not allowed", "MethodNotAllowed")

    def _watch(
        self, t: Target, query: dict[str, str], drop_after: int | None, expire: bool
    ) -> None:
        cluster = self.server.cluster
        started = False
        wfile = self.wfile
        sock = self.connection

        def start() -> None:
            nonlocal started
            started = True
            head = (
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n"
                "Cache-Control: no-cache, private\r\n\r\n"
            )
            wfile.write(head.encode("latin-1"))

        def write(data: bytes) -> None:
            wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        def client_gone() -> bool:
            try:
                readable, _, _ = select.select([sock], [], [], 0)
                if not readable:
                    return False
                # the raw socket's recv: a TLS socket refuses MSG_PEEK, but a hang-up is
                # visible below TLS as well
                return bool(socket.socket.recv(sock, 1, socket.MSG_PEEK) == b"")
            except (OSError, ValueError):
                return True

        try:
            serve_watch(
                cluster.api,
                t,
                query,
                write,
                client_gone,
                bookmark_interval=cluster.bookmark_interval,
                drop_after=drop_after,
                expire=expire,
                as_table=self._wants_table(),
                start=start,
            )
            wfile.write(b"0\r\n\r\n")  # a clean end: the connection stays usable
        except ApiError:
            if started:
                self.close_connection = True
                return
            raise
        except OSError:
            self.close_connection = True
            return


class DevCluster:
    """A Kubernetes-compatible API server on loopback (see the module docstring)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        crd_paths: Sequence[Path] = (),
        state_file: Path | None = None,
        faults: FaultInjector | None = None,
        bookmark_interval: float = 5.0,
        history_size: int = 10_000,
        workloads: bool = True,
        pods_ready: bool = True,
        authorization: str = "RBAC",
        admin_token: str | None = None,
        tls: bool = True,
        validation_rules: bool = True,
        local_pods: LocalPodOptions | None = None,
    ) -> None:
        """``local_pods``: run the Pods of the images it maps as local processes
        (:mod:`devcluster.localpods`; default: every Pod is simulated). ``authorization``:
        ``"RBAC"`` (bearer tokens, RBAC, like a real cluster) or
        ``"AlwaysAllow"`` (every request is the admin). ``admin_token``: the superuser's bearer
        token (default: random, or the one kept next to ``state_file``). ``tls``: also speak
        TLS on the port (:attr:`https_url`), which the kubeconfig uses, because kubectl sends
        its token only over TLS."""
        self.host = host
        self.tls = tls
        self.https_url = ""
        self.port = port
        self.bookmark_interval = bookmark_interval
        self.registry = Registry()
        self.store = Store(history_size=history_size, state_file=state_file)
        self.api = Api(self.store, self.registry)
        self.api.validation_rules = validation_rules  # CRD x-kubernetes-validations (CEL)
        self.gc = GarbageCollector(self.api)
        self.api.on_delete_wakeup = self.gc.wakeup
        register_scale(self.api)
        register_pod_logs(self.api)
        register_eviction(self.api)
        self.workloads = Workloads(
            self.api, enabled=workloads, pods_ready=pods_ready, local_pods=local_pods
        )
        self.faults: FaultInjector = faults if faults is not None else FaultInjector()
        self.auth_service = AuthService(
            self.api, authorization=authorization, admin_token=admin_token, state_file=state_file
        )
        self.auth: Auth = self.auth_service.auth
        register_pod_exec(self.api, self.auth, self.workloads.kubelet.local)
        register_pod_portforward(self.api, self.auth, self.workloads.kubelet.local)
        if isinstance(self.auth, RbacAuth):  # nobody grants what they do not hold
            self.api.admission.append(EscalationCheck(self.api, self.auth.decide))
            # an apply or update that creates the object needs create too
            self.api.admission.append(CreateOnWriteCheck(self.auth.decide))
        self.request_log: RequestLog = RequestLog()
        self.last_error: Exception | None = None
        self.url = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.store.load()
        self.api.bootstrap()
        self.auth_service.bootstrap()
        for p in crd_paths:
            self.load_crds(Path(p))

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._server is not None:
            return
        server = _Server((self.host, self.port), _Handler)
        server.cluster = self
        self._server = server
        host, port = str(server.server_address[0]), server.server_address[1]
        self.port = int(port)
        self.url = f"http://{host}:{port}"
        if self.tls:
            server.ssl_context = self.auth_service.ca.serving_context(host)
            self.https_url = f"https://{host}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="devcluster-http",
            daemon=True,
        )
        self._thread.start()
        self.gc.start()
        self.workloads.cluster_started(self)
        self.workloads.start()
        self.auth_service.start()
        self.store.start_persistence()

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._server = None
        self.store.drop_watches()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.workloads.stop()
        self.gc.stop()
        self.auth_service.stop()
        self.store.stop_persistence()

    def __enter__(self) -> DevCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- API

    def load_crds(self, path: Path) -> list[str]:
        """Install (or update) the CRDs of a YAML file or of every YAML file in a directory."""
        path = Path(path)
        files = (
            sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
            if path.is_dir()
            else [path]
        )
        names: list[str] = []
        crd_rt = self.registry.by_key(("apiextensions.k8s.io", "customresourcedefinitions"))
        assert crd_rt is not None
        for f in files:
            for doc in yaml.load_all(f.read_text(), Loader=_YAML_LOADER):
                if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                    continue
                names.append(self.install_crd(doc))
        return names

    def install_crd(self, crd: JSON) -> str:
        """Create or replace one CRD object; returns its name."""
        crd_rt = self.registry.by_key(("apiextensions.k8s.io", "customresourcedefinitions"))
        assert crd_rt is not None
        name = str(crd["metadata"]["name"])
        body = dict(crd)
        body["apiVersion"] = "apiextensions.k8s.io/v1"
        with self.store.lock:
            existing = self.store.get(crd_rt.key, "", name)
            if existing is None:
                self.api.create(Target(crd_rt, "v1", None), body, {}, "devcluster")
            else:
                body["metadata"] = dict(body.get("metadata") or {})
                body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
                self.api.update(Target(crd_rt, "v1", None, name), body, {}, "devcluster")
        return name

    def register_permissive(
        self,
        *,
        group: str,
        version: str,
        kind: str,
        plural: str,
        namespaced: bool = True,
        status_subresource: bool = True,
    ) -> None:
        """Serve a kind without a CRD at hand: any fields are kept (no validation)."""
        v: JSON = {
            "name": version,
            "served": True,
            "storage": True,
            "schema": {
                "openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                }
            },
        }
        if status_subresource:
            v["subresources"] = {"status": {}}
        self.install_crd(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.{group}"},
                "spec": {
                    "group": group,
                    "names": {
                        "kind": kind,
                        "listKind": f"{kind}List",
                        "plural": plural,
                        "singular": kind.lower(),
                    },
                    "scope": "Namespaced" if namespaced else "Cluster",
                    "versions": [v],
                },
            }
        )

    @property
    def admin_token(self) -> str:
        """The bearer token of ``kubernetes-admin`` (group ``system:masters``)."""
        return self.auth_service.admin_token

    def add_token(self, token: str, username: str, groups: Sequence[str] = ()) -> None:
        """Let ``token`` authenticate as ``username`` in ``groups`` (plus
        ``system:authenticated``), like a line of a static token file."""
        all_groups = tuple(groups) + (() if AUTHENTICATED in groups else (AUTHENTICATED,))
        self.auth_service.add_token(token, UserInfo(username, all_groups))

    def write_kubeconfig(self, path: Path, *, context: str = "devcluster") -> Path:
        """A kubeconfig for this cluster whose user is the admin (bearer :attr:`admin_token`),
        over TLS (:attr:`https_url`, verified against the cluster CA) unless ``tls=False``."""
        if not self.url:
            raise RuntimeError("start() the devcluster before writing a kubeconfig")
        if self.https_url:
            return write_kubeconfig(
                Path(path),
                self.https_url,
                context=context,
                token=self.admin_token,
                certificate_authority=self.auth_service.ca.cert_pem(),
            )
        return write_kubeconfig(Path(path), self.url, context=context, token=self.admin_token)

    def compact(self) -> None:
        """Forget the watch history: older resourceVersions now get 410 Expired."""
        self.store.compact()

    def drop_watches(self) -> None:
        """Close every open watch stream (clients see the stream end)."""
        self.store.drop_watches()
