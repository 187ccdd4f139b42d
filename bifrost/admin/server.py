"""The admin API the controller process serves: ``bifrost-admin --server`` without database
credentials (``bifrost run --admin-bind-address``; it lives in ``bifrost.admin`` beside the
queries it serves, and the composition root, ``bifrost.cli.run``, starts it beside the
controller on the controller's store and client).

``bifrost-admin`` reads and writes the store; on a cluster that used to mean ``kubectl exec``
into the pod or handing out the database password. Instead the controller answers the same
questions over HTTP, and Kubernetes decides who may ask:

- **Authentication**: every request carries the caller's bearer token (their kubeconfig's, or
  a ServiceAccount's); the controller sends it to the API server in a ``TokenReview`` and
  serves only an ``authenticated`` answer (no token, or a rejected one: 401). Nothing is
  served without a valid token, not even the list of routes.
- **Authorization**: a ``SubjectAccessReview`` for the reviewed user, on a virtual resource —
  ``gateways/operations`` in the API group ``gateway.bifrost.dev`` (no such object exists;
  RBAC rules and reviews agree on the name): ``get`` for one gateway's ``show``/``history``/
  an operation's progress (namespace and name of the Gateway), ``list`` for ``gateways`` (in
  the namespace asked, else cluster-wide) and ``schedule`` (cluster-wide), ``update`` for the
  operator actions (pause, resume, cancel, retry, renew). A machine's graph without a gateway
  needs only a valid token (it is the code's, not the fleet's). ``deploy/base/rbac-admin.yaml``
  aggregates the read verbs into ``view`` and ``update`` into ``edit`` and ``admin``.
- **Audit**: both reviews are API requests of the controller's ServiceAccount, so the API
  server's audit log records every decision with the user and the attributes; the journal
  records the authenticated user name as the actor of an action; and every request is logged
  here (user, verb, target, status — never the token).

The answers are exactly the documents of the direct path (:class:`bifrost.admin.source.LocalAdmin`
computes them here too); an expected failure is ``{"kind": "Error", "code",
"reason", "message", "exit_code"}`` with the exit code the direct path would use, so the CLI
prints the same one line. Any failure to ask the cluster is a 503: the answer is never
"allowed" by default.

Transport: plain HTTP on **loopback only** by default (``--admin-bind-address
127.0.0.1:8082``), reached with ``kubectl port-forward``, whose tunnel is the API server's TLS
and itself needs RBAC (``pods/portforward`` in ``bifrost-system``). Binding it to the pod IP
would send tokens in clear text across the pod network: don't, unless a TLS proxy fronts it.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from pydantic import BaseModel

from bifrost.admin.errors import AdminError, BadInput, GatewayNotFound, Refused
from bifrost.admin.queries import parse_ref
from bifrost.admin.remote import NOTE_HEADER
from bifrost.admin.source import ENGINE_VERBS, LocalAdmin
from bifrost.api.objects import Obj
from bifrost.clock import Clock
from bifrost.kube.errors import KubeError
from bifrost.machines.registry import MachineRegistry
from bifrost.store.errors import RecordNotFound, StoreError
from bifrost.store.interface import OperationStore

__all__ = [
    "ADMIN_GROUP",
    "ADMIN_RESOURCE",
    "ADMIN_SUBRESOURCE",
    "Access",
    "AdminApi",
    "AdminApiServer",
    "Caller",
    "Gatekeeper",
]

log = logging.getLogger(__name__)

ADMIN_GROUP = "gateway.bifrost.dev"
ADMIN_RESOURCE = "gateways"
ADMIN_SUBRESOURCE = "operations"
#: Largest request body read (an action's options are a few fields).
MAX_BODY = 64 * 1024
#: Longest ``Authorization`` header accepted (a ServiceAccount JWT is about 1 KiB).
MAX_TOKEN = 16 * 1024


class Reviewer(Protocol):
    """Creates review objects on the API server (``KubeClient.create``)."""

    def create(self, obj: Obj) -> Obj: ...


@dataclass(frozen=True)
class Caller:
    """Who the cluster says the token belongs to (a TokenReview's ``status.user``)."""

    username: str
    uid: str
    groups: tuple[str, ...]
    extra: dict[str, list[str]]


@dataclass(frozen=True)
class Access:
    """The verb on ``gateways/operations`` a request needs; ``namespace`` "" is cluster-wide,
    ``name`` "" is every gateway; ``verb`` "" asks for authentication only."""

    verb: str
    namespace: str = ""
    name: str = ""

    def describe(self) -> str:
        what = f'{self.verb} resource "{ADMIN_RESOURCE}/{ADMIN_SUBRESOURCE}"'
        if self.name:
            what += f' named "{self.name}"'
        what += f' in API group "{ADMIN_GROUP}"'
        where = f'in the namespace "{self.namespace}"' if self.namespace else "at the cluster scope"
        return f"{what} {where}"


class Denied(Exception):
    """An answer other than 200: HTTP status, one line, and the CLI's exit code."""

    def __init__(self, status: int, reason: str, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.exit_code = exit_code


class Gatekeeper:
    """TokenReview and SubjectAccessReview through the controller's own client."""

    def __init__(self, reviewer: Reviewer) -> None:
        self.reviewer = reviewer

    def _create(self, review: str, obj: Obj) -> Obj:
        try:
            return self.reviewer.create(obj)
        except KubeError as exc:
            # Never "allowed" by default: the caller is told the cluster could not be asked.
            raise Denied(503, "ServiceUnavailable",
                         f"bifrost admin API cannot ask the cluster ({review}): "
                         + " ".join(str(exc).split()), 1) from None

    def authenticate(self, authorization: str | None, access: Access) -> Caller:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        attempted = access.describe() if access.verb else "use the bifrost admin API"
        if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN:
            raise Denied(401, "Unauthorized",
                         f"401 Unauthorized: no bearer token; cannot {attempted} (give --token, "
                         "or a kubeconfig whose context has a token)", 4)
        answer = self._create("TokenReview", {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token},
        })
        status = answer.get("status") if isinstance(answer.get("status"), dict) else {}
        assert isinstance(status, dict)
        user = status.get("user") if isinstance(status.get("user"), dict) else {}
        assert isinstance(user, dict)
        if status.get("authenticated") is not True or not user.get("username"):
            why = " ".join(str(status.get("error") or "not authenticated").split())
            raise Denied(401, "Unauthorized",
                         f"401 Unauthorized: the cluster did not accept the token (TokenReview: "
                         f"{why}); cannot {attempted}", 4)
        extra = user.get("extra") if isinstance(user.get("extra"), dict) else {}
        assert isinstance(extra, dict)
        return Caller(
            username=str(user["username"]),
            uid=str(user.get("uid") or ""),
            groups=tuple(str(g) for g in user.get("groups") or ()),
            extra={str(k): [str(x) for x in v or ()] for k, v in extra.items()},
        )

    def authorize(self, caller: Caller, access: Access) -> None:
        if not access.verb:
            return
        attributes: dict[str, str] = {
            "verb": access.verb, "group": ADMIN_GROUP, "resource": ADMIN_RESOURCE,
            "subresource": ADMIN_SUBRESOURCE,
        }
        if access.namespace:
            attributes["namespace"] = access.namespace
        if access.name:
            attributes["name"] = access.name
        spec: dict[str, Any] = {"user": caller.username, "groups": list(caller.groups),
                                "resourceAttributes": attributes}
        if caller.uid:
            spec["uid"] = caller.uid
        if caller.extra:
            spec["extra"] = caller.extra
        answer = self._create("SubjectAccessReview", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": spec,
        })
        status = answer.get("status") if isinstance(answer.get("status"), dict) else {}
        assert isinstance(status, dict)
        if status.get("allowed") is True and status.get("denied") is not True:
            return
        why = status.get("reason") or status.get("evaluationError")
        raise Denied(403, "Forbidden",
                     f'403 Forbidden: User "{caller.username}" cannot {access.describe()}'
                     + (f": {' '.join(str(why).split())}" if why else ""), 4)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


def _error(denied: Denied) -> Answer:
    return Answer(denied.status, {"kind": "Error", "schema_version": 1, "code": denied.status,
                                  "reason": denied.reason, "message": denied.message,
                                  "exit_code": denied.exit_code})


def _doc(doc: BaseModel, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    return Answer(200, doc.model_dump(mode="json"), headers)


def _int(query: dict[str, str], name: str, default: int | None) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadInput(f"--{name} must be a whole number, got {raw!r}") from None


def _failure(exc: AdminError | StoreError) -> Denied:
    message = " ".join(str(exc).split())
    if isinstance(exc, StoreError):
        return Denied(503, "ServiceUnavailable", message, 1)
    status = {BadInput: 400, GatewayNotFound: 404, Refused: 409}.get(type(exc), 422)
    reason = {400: "BadRequest", 404: "NotFound", 409: "Conflict"}.get(status, "Invalid")
    return Denied(status, reason, message, exc.exit_code)


class AdminApi:
    """Routes one request: authenticate, find what it needs, authorize, answer."""

    def __init__(self, store: OperationStore, *, registry: MachineRegistry, clock: Clock,
                 gatekeeper: Gatekeeper) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.gatekeeper = gatekeeper

    def handle(self, method: str, target: str, authorization: str | None,
               body: bytes) -> Answer:
        url = urllib.parse.urlsplit(target)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/") if p]
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        caller: Caller | None = None
        access = Access("")
        try:
            try:
                access, run = self._route(method, parts, query, body)
            except (Denied, AdminError, StoreError):  # an unauthenticated caller learns nothing
                self.gatekeeper.authenticate(authorization, Access(""))
                raise
            caller = self.gatekeeper.authenticate(authorization, access)
            self.gatekeeper.authorize(caller, access)
            answer = run(LocalAdmin(self.store, clock=self.clock, registry=self.registry,
                                    actor=caller.username))
        except Denied as denied:
            answer = _error(denied)
        except (AdminError, StoreError) as exc:
            answer = _error(_failure(exc))
        except Exception:  # a bug: say so in one line, not a dropped connection
            log.exception("admin API: %s %s failed", method, url.path)
            answer = _error(Denied(500, "InternalError",
                                   "the bifrost admin API failed (see the controller's log)", 1))
        log.info("admin API: %s %s %s by %s → %d", method, url.path, access.verb or "-",
                 caller.username if caller else "(unauthenticated)", answer.status)
        return answer

    def _gateway_of(self, operation_id: int, verb: str) -> tuple[str, str]:
        try:
            op = self.store.get_operation(operation_id)
        except RecordNotFound:
            if verb == "get":
                raise AdminError(f"operation {operation_id} does not exist") from None
            raise Refused(f"cannot {verb}: operation {operation_id} does not exist") from None
        return op.namespace, op.name

    def _route(self, method: str, parts: list[str], query: dict[str, str],
               body: bytes) -> tuple[Access, Callable[[LocalAdmin], Answer]]:
        if len(parts) < 2 or parts[0] != "v1":
            raise Denied(404, "NotFound", f"no such admin API path /{'/'.join(parts)}", 1)
        kind, rest = parts[1], parts[2:]
        if method == "GET":
            if kind == "gateways" and not rest:
                ns = query.get("namespace") or ""
                return Access("list", ns), lambda a: _doc(a.gateways(
                    namespace=ns or None, gateway_class=query.get("class") or None,
                    state=query.get("state") or None))
            if kind == "gateways" and len(rest) in (2, 3) and rest[2:] in ([], ["history"]):
                gateway = "/".join(rest[:2])
                ns, name = parse_ref(gateway)
                if len(rest) == 2:
                    journal = _int(query, "journal", 20) or 0
                    return Access("get", ns, name), lambda a: _doc(a.show(gateway,
                                                                          journal=journal))
                limit = _int(query, "limit", 100) or 0
                return Access("get", ns, name), lambda a: _doc(a.history(gateway, limit=limit))
            if kind == "schedule" and not rest:
                limit = _int(query, "limit", 100) or 0
                return Access("list"), lambda a: _doc(a.schedule(limit=limit))
            if kind == "machines" and len(rest) == 2 and rest[1] == "graph":
                machine, gateway_or_none = rest[0], query.get("gateway") or None
                version = _int(query, "version", None)
                access = Access("")
                if gateway_or_none is not None:
                    access = Access("get", *parse_ref(gateway_or_none))

                def graph(a: LocalAdmin) -> Answer:
                    doc, note = a.graph(machine, gateway=gateway_or_none, version=version)
                    return _doc(doc, ((NOTE_HEADER, note),) if note else ())

                return access, graph
            if kind == "operations" and len(rest) == 1 and rest[0].isdigit():
                op_id = int(rest[0])
                return Access("get", *self._gateway_of(op_id, "get")), \
                    lambda a: _doc(a.operation(op_id))
        if method == "POST":
            options = self._options(body)
            verb = rest[-1] if rest else ""
            if kind == "gateways" and len(rest) == 3 and verb in (*ENGINE_VERBS, "renew"):
                gateway = "/".join(rest[:2])
                ns, name = parse_ref(gateway)
                return Access("update", ns, name), self._action(verb, gateway, options)
            if kind == "operations" and len(rest) == 2 and rest[0].isdigit() \
                    and verb in ENGINE_VERBS:
                ns, name = self._gateway_of(int(rest[0]), verb)
                return Access("update", ns, name), self._action(verb, rest[0], options)
        raise Denied(404, "NotFound", f"no such admin API request {method} /{'/'.join(parts)}", 1)

    @staticmethod
    def _options(body: bytes) -> dict[str, Any]:
        if not body:
            return {}
        try:
            options = json.loads(body)
        except ValueError:
            raise BadInput("the request body is not JSON") from None
        if not isinstance(options, dict):
            raise BadInput("the request body is not a JSON object")
        return options

    @staticmethod
    def _action(verb: str, target: str,
                options: dict[str, Any]) -> Callable[[LocalAdmin], Answer]:
        operation, reason = options.get("operation"), options.get("reason") or ""
        compensate, listener = options.get("compensate", True), options.get("listener")
        if operation is not None and (not isinstance(operation, int)
                                      or isinstance(operation, bool)):
            raise BadInput("operation must be a whole number")
        if not isinstance(reason, str) or not isinstance(compensate, bool) or (
                listener is not None and not isinstance(listener, str)):
            raise BadInput("reason and listener must be strings, compensate a boolean")
        if verb == "renew":
            return lambda a: _doc(a.renew(target, listener=listener, actor=None))
        return lambda a: _doc(a.act(verb, target, operation=operation, reason=reason,
                                    compensate=compensate, actor=None))


class AdminApiServer:
    """:class:`AdminApi` on a small threaded HTTP server (``port`` 0: a free one)."""

    def __init__(self, api: AdminApi, host: str, port: int) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "bifrost-admin-api"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    answer = _error(Denied(413, "RequestEntityTooLarge",
                                           "the request body is too large", 2))
                else:
                    body = self.rfile.read(length) if length > 0 else b""
                    answer = outer.api.handle(self.command, self.path,
                                              self.headers.get("Authorization"), body)
                payload = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "no-store")
                for name, value in answer.headers:
                    self.send_header(name, " ".join(value.split()))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._serve()

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self._serve()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # AdminApi.handle logs each request (without the token)

        self.api = api
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="admin-api",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
