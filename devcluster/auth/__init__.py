"""Who is asking (authentication) and may they (authorization).

The server asks :class:`Auth` once per request, before fault injection and before any handler
runs. :class:`AllowAll` (``DevCluster(authorization="AlwaysAllow")``) makes every request the
cluster admin; the default, ``authorization="RBAC"``, is :class:`devcluster.auth.enforcing.RbacAuth`
(bearer tokens, impersonation, RBAC), put together by :mod:`devcluster.auth.service`.

This module holds the identities every part shares: :class:`UserInfo`, the admin and anonymous
users, and the user name and groups of a ServiceAccount.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from devcluster.faults import Request

__all__ = [
    "ADMIN",
    "ANONYMOUS",
    "AUTHENTICATED",
    "AllowAll",
    "Auth",
    "Headers",
    "MASTERS",
    "UNAUTHENTICATED",
    "UserInfo",
    "service_account_groups",
    "service_account_username",
    "split_service_account_username",
]

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
MASTERS = "system:masters"
_SA_PREFIX = "system:serviceaccount:"


class Headers(Protocol):
    """Request headers, looked up case-insensitively."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def get_all(self, key: str) -> list[str]:
        """Every value of a header sent more than once (``Impersonate-Group``)."""
        ...

    def keys(self) -> Iterable[str]:
        """The header names, lower-case."""
        ...


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity, as ``authentication.k8s.io/v1`` UserInfo describes it."""

    username: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The ``UserInfo`` object of TokenReview and SelfSubjectReview (empty fields omitted)."""
        out: dict[str, Any] = {"username": self.username}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ADMIN = UserInfo("kubernetes-admin", (MASTERS, AUTHENTICATED))
ANONYMOUS = UserInfo("system:anonymous", (UNAUTHENTICATED,))


def service_account_username(namespace: str, name: str) -> str:
    return f"{_SA_PREFIX}{namespace}:{name}"


def split_service_account_username(username: str) -> tuple[str, str] | None:
    """(namespace, name) of ``system:serviceaccount:<ns>:<name>``, else None."""
    if not username.startswith(_SA_PREFIX):
        return None
    ns, sep, name = username[len(_SA_PREFIX) :].partition(":")
    if not sep or not ns or not name or ":" in name:
        return None
    return ns, name


def service_account_groups(namespace: str) -> tuple[str, ...]:
    """The groups every ServiceAccount of ``namespace`` is in (without system:authenticated)."""
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")


class Auth(Protocol):
    def authenticate(self, headers: Headers) -> UserInfo:
        """The requester; raises ``ApiError(401)`` for a bad credential."""
        ...

    def authorize(self, user: UserInfo, request: Request, *, field_name: str | None = None) -> None:
        """Raises ``ApiError(403)`` with the real Forbidden body when ``user`` may not.

        ``field_name``: the ``metadata.name`` a list or watch selects by field selector (it then
        names one object, as far as ``resourceNames`` go)."""
        ...

    def authorize_path(self, user: UserInfo, verb: str, path: str) -> None:
        """Non-resource URLs (``/version``, ``/apis``, ``/healthz`` ...)."""
        ...


class AllowAll:
    """No authentication, no authorization: every request is :data:`ADMIN` (``AlwaysAllow``).

    Access reviews answer "allowed" and a rules review lists ``*`` everything, as upstream's
    AlwaysAllow authorizer does."""

    def authenticate(self, headers: Headers) -> UserInfo:
        return ADMIN

    def authorize(self, user: UserInfo, request: Request, *, field_name: str | None = None) -> None:
        return None

    def authorize_path(self, user: UserInfo, verb: str, path: str) -> None:
        return None

    def decide(self, attrs: Any) -> tuple[bool, str]:
        return True, ""

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[dict[str, Any]], list[str]]:
        return [
            {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
            {"verbs": ["*"], "nonResourceURLs": ["*"]},
        ], []
