"""What the streaming subresources of a Pod (``pods/exec``, ``pods/portforward``) share: their
registration (listed in discovery with verbs ``create`` and ``get``, as upstream), the
authorization of a WebSocket upgrade and the checks every one makes of the Pod first.

A WebSocket upgrade is a GET, which the server authorizes as ``get`` from the URL; as upstream
since 1.35 (``AuthorizePodWebsocketUpgradeCreatePermission``) it must also be allowed to
``create``, since it runs a command or opens a connection. Other verbs than GET and POST are
405. Then the pod must exist (404, as for the pod itself) and be bound to a node (400 ``pod X
does not have a host assigned``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devcluster.auth import Auth
from devcluster.errors import ApiError
from devcluster.faults import Request
from devcluster.handlers import Api, RawBody, RequestContext, Target
from devcluster.kinds.resource_type import Subresource

__all__ = ["bad_request", "pod_to_stream", "register_pod_stream", "require_node"]

JSON = dict[str, Any]


def register_pod_stream(
    api: Api, subresource: str, options_kind: str,
    handle: Callable[[RequestContext], tuple[int, RawBody]],
) -> None:
    """Serve ``pods/<subresource>`` on ``api`` with ``handle``."""
    pods = api.registry.get("", "v1", "pods")
    assert pods is not None
    pods.subresources[subresource] = Subresource(("create", "get"), options_kind)
    api.handlers[("", "pods", subresource)] = handle


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "BadRequest")


def pod_to_stream(ctx: RequestContext, auth: Auth, subresource: str) -> JSON:
    """The Pod of the request once the caller may open ``subresource`` on it (see the module
    docstring); raises :class:`ApiError` otherwise."""
    t = ctx.target
    ns, name = t.namespace or "", t.name or ""
    if ctx.verb == "get":  # a WebSocket upgrade: it must also be allowed to create
        auth.authorize(ctx.user, Request("create", "", "v1", "pods", subresource, ns, name))
    elif ctx.verb != "create":
        raise ApiError(405, "method not allowed", "MethodNotAllowed")
    return ctx.api.get(Target(t.rt, "v1", t.namespace, name))  # 404 as for the pod


def require_node(pod: JSON) -> None:
    """400 unless the Pod is bound to a node."""
    if not (pod.get("spec") or {}).get("nodeName"):
        raise bad_request(f"pod {pod['metadata']['name']} does not have a host assigned")
