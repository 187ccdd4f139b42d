"""What one authorization decision is about (:class:`Attributes`), and the 403 a real API
server answers when the decision is no (:func:`forbidden`).

The attributes are the API server's request attributes: a resource request names a verb, API
group, resource, subresource, namespace and name; a non-resource request a verb (the HTTP method,
lower-case) and a path. Server-side apply is the verb ``patch``, a watch ``watch``, and a request
to one namespace (``/api/v1/namespaces/foo``) is in that namespace, as upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devcluster.auth import UserInfo
from devcluster.errors import ApiError, status_body
from devcluster.faults import Request

__all__ = ["Attributes", "Forbidden", "forbidden", "from_request"]


@dataclass(frozen=True)
class Attributes:
    """One request as the authorizer sees it."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # non-resource requests only

    @property
    def combined_resource(self) -> str:
        """``pods`` or ``pods/status``."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def from_request(user: UserInfo, req: Request, field_name: str | None = None) -> Attributes:
    """The attributes of a resource request the server resolved.

    ``field_name`` is the ``metadata.name`` of a list or watch's field selector: such a request
    names one object, so rules with ``resourceNames`` may allow it (as upstream).
    """
    verb = "patch" if req.verb == "apply" else req.verb
    name = req.name or ""
    if not name and field_name and verb in ("list", "watch"):
        name = field_name
    namespace = req.namespace or ""
    if req.group == "" and req.resource == "namespaces" and req.name and not req.namespace:
        namespace = req.name
    return Attributes(
        user,
        verb,
        True,
        req.group,
        req.version,
        req.resource,
        req.subresource or "",
        namespace,
        name,
    )


def _message(attrs: Attributes) -> str:
    who = attrs.user.username
    if not attrs.resource_request:
        return f'User "{who}" cannot {attrs.verb} path "{attrs.path}"'
    head = (
        f'User "{who}" cannot {attrs.verb} resource "{attrs.combined_resource}" '
        f'in API group "{attrs.group}"'
    )
    if attrs.namespace:
        return f'{head} in the namespace "{attrs.namespace}"'
    return f"{head} at the cluster scope"


class Forbidden(ApiError):
    """A 403 whose Status always carries ``details`` (empty for a non-resource path)."""

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(403, message, "Forbidden")
        self.details = details

    def body(self) -> dict[str, Any]:
        out = status_body(self.code, self.message, self.reason)
        out["details"] = dict(self.details)
        return out


def forbidden(attrs: Attributes, reason: str = "") -> Forbidden:
    """The Status a real API server answers for a denied request.

    ``pods is forbidden: User "u" cannot list resource "pods" in API group "" in the namespace
    "ns"``; ``pods "p" is forbidden: ...`` for a named object; ``forbidden: User "u" cannot get
    path "/apis"`` for a non-resource URL. An authorizer's reason follows after ``: ``.
    """
    text = _message(attrs)
    if reason:
        text = f"{text}: {reason}"
    details: dict[str, Any] = {}
    if not attrs.resource_request or not attrs.resource:
        return Forbidden(f"forbidden: {text}", details)
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    if attrs.name:
        details["name"] = attrs.name
        message = f'{qualified} "{attrs.name}" is forbidden: {text}'
    else:
        message = f"{qualified} is forbidden: {text}"
    if attrs.group:
        details["group"] = attrs.group
    details["kind"] = attrs.resource
    return Forbidden(message, details)
