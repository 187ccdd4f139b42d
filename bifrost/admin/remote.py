"""``bifrost-admin --server URL``: the same documents, asked of the controller's admin API.

The controller serves a small JSON API (``bifrost.admin.server``; the protocol is in
``docs/admin-remote.md``) on loopback inside its pod, reached with ``kubectl port-forward``.
Every request carries the user's own bearer token — ``--token``, else
``BIFROST_ADMIN_TOKEN``, else the current context of the kubeconfig — and the controller asks
the cluster who that is (TokenReview) and whether RBAC lets them (SubjectAccessReview), so
Kubernetes RBAC and its audit log decide, not a database password.

The answers are the :mod:`bifrost.admin.views` documents the direct path computes, parsed back
into the same models, so tables, JSON and YAML render identically. An error answer carries its
one-line message and the exit code the direct path would use; 401 and 403 become
:class:`~bifrost.admin.errors.AccessDenied` (exit 4), naming the verb and resource refused.
Plain ``urllib``: no new dependency, and the token goes only to the URL given.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bifrost.admin.errors import (
    AccessDenied,
    AdminError,
    BadInput,
    RemoteError,
    ServerUnreachable,
)
from bifrost.admin.views import (
    ActionResult,
    GatewayDetail,
    GatewayList,
    Graph,
    History,
    OperationProgress,
    Schedule,
)

M = TypeVar("M", bound=BaseModel)

#: The response header that carries ``graph``'s note (the document itself is unchanged).
NOTE_HEADER = "Bifrost-Note"
#: Seconds a request may take before the server counts as unreachable.
DEFAULT_TIMEOUT_S = 30.0


def kubeconfig_token(kubeconfig: str | None = None, context: str | None = None) -> str:
    """The bearer token of the kubeconfig's context ($KUBECONFIG or ~/.kube/config by default).

    Read through ``bifrost.kube`` (the one importer of the Kubernetes library), so tokens from
    files and exec plugins work as they do for kubectl.
    """
    from bifrost.kube.client import KubeClient

    where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
    if kubeconfig is not None and not Path(kubeconfig).expanduser().is_file():
        raise AdminError(f"kubeconfig {kubeconfig} does not exist; pass --token")
    try:
        client = KubeClient.from_kubeconfig(
            Path(kubeconfig).expanduser() if kubeconfig else None, context
        )
    except Exception as exc:  # the library's config errors: missing file, unknown context
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise AdminError(f"cannot read a token from {where}: {message}; pass --token") from None
    with client:
        token = client.bearer_token()
    if not token:
        raise AdminError(
            f"the current context of {where} has no bearer token (client certificates cannot "
            "be forwarded); pass --token, e.g. --token \"$(kubectl create token NAME)\""
        )
    return token


class RemoteAdmin:
    """An :class:`~bifrost.admin.source.AdminSource` over the controller's admin API."""

    def __init__(self, server: str, token: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        parsed = urllib.parse.urlsplit(server)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise BadInput(
                f"--server {server!r} is not an http(s) URL (e.g. http://127.0.0.1:8082 with "
                "`kubectl -n bifrost-system port-forward deploy/bifrost 8082`)"
            )
        if not token.strip():
            raise BadInput("the token is empty")
        self.server = server.rstrip("/")
        self._token = token.strip()
        self.timeout = timeout

    # ---- transport --------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        url = self.server + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) checked above
                raw, status, answer_headers = response.read(), response.status, response.headers
        except urllib.error.HTTPError as exc:
            raw, status, answer_headers = exc.read(), exc.code, exc.headers
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerUnreachable(
                f"bifrost admin API at {self.server} did not answer: {reason} (is `kubectl -n "
                "bifrost-system port-forward deploy/bifrost 8082` running?)"
            ) from None
        try:
            decoded = json.loads(raw) if raw else {}
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            text = raw[:200].decode(errors="replace")
            raise AdminError(
                f"bifrost admin API at {self.server} answered HTTP {status} with something that "
                f"is not a JSON object: {text!r}"
            )
        if status >= 400 or decoded.get("kind") == "Error":
            message = str(decoded.get("message") or f"HTTP {status}")
            if status in (401, 403):
                raise AccessDenied(message)
            code = decoded.get("exit_code")
            raise RemoteError(message, code if isinstance(code, int) and code > 0 else 1)
        return decoded, {k: v for k, v in answer_headers.items()}

    def _get(self, path: str, model: type[M], **query: Any) -> M:
        data, _ = self._request("GET", path, query)
        return _parse(model, data, self.server)

    def _post(self, path: str, body: dict[str, Any]) -> ActionResult:
        data, _ = self._request("POST", path, body=body)
        return _parse(ActionResult, data, self.server)

    # ---- AdminSource ------------------------------------------------------------------------

    def gateways(
        self, *, namespace: str | None, gateway_class: str | None, state: str | None
    ) -> GatewayList:
        return self._get("/v1/gateways", GatewayList, namespace=namespace, state=state,
                         **{"class": gateway_class})

    def show(self, gateway: str, *, journal: int) -> GatewayDetail:
        return self._get(f"/v1/gateways/{_path(gateway)}", GatewayDetail, journal=journal)

    def history(self, gateway: str, *, limit: int) -> History:
        return self._get(f"/v1/gateways/{_path(gateway)}/history", History, limit=limit)

    def schedule(self, *, limit: int) -> Schedule:
        return self._get("/v1/schedule", Schedule, limit=limit)

    def graph(
        self, machine: str, *, gateway: str | None, version: int | None
    ) -> tuple[Graph, str | None]:
        path = f"/v1/machines/{urllib.parse.quote(machine, safe='')}/graph"
        data, headers = self._request("GET", path, {"gateway": gateway, "version": version})
        note = next((v for k, v in headers.items() if k.lower() == NOTE_HEADER.lower()), None)
        return _parse(Graph, data, self.server), note or None

    def operation(self, operation_id: int) -> OperationProgress:
        return self._get(f"/v1/operations/{operation_id}", OperationProgress)

    def act(
        self,
        verb: str,
        target: str,
        *,
        operation: int | None,
        reason: str,
        compensate: bool,
        actor: str | None,
    ) -> ActionResult:
        _no_actor(actor)
        body = {"operation": operation, "reason": reason, "compensate": compensate}
        if target.isdigit():
            return self._post(f"/v1/operations/{target}/{verb}", body)
        return self._post(f"/v1/gateways/{_path(target)}/{verb}", body)

    def renew(self, gateway: str, *, listener: str | None, actor: str | None) -> ActionResult:
        _no_actor(actor)
        return self._post(f"/v1/gateways/{_path(gateway)}/renew", {"listener": listener})


def _path(gateway: str) -> str:
    """``NAMESPACE/NAME`` as two path segments (checked first, so the server sees a valid one)."""
    from bifrost.admin.queries import parse_ref

    namespace, name = parse_ref(gateway)
    return f"{urllib.parse.quote(namespace, safe='')}/{urllib.parse.quote(name, safe='')}"


def _no_actor(actor: str | None) -> None:
    if actor is not None:
        raise BadInput(
            "--actor cannot be given with --server: the journal records the user the cluster "
            "authenticated"
        )


def _parse(model: type[M], data: dict[str, Any], server: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise AdminError(
            f"bifrost admin API at {server} answered a {data.get('kind')!r} this bifrost-admin "
            f"cannot read ({where}: {first['msg']}); use a bifrost-admin of the controller's "
            "version"
        ) from None
