"""Who is asking (authentication) and may they (authorization).

The server asks :class:`Auth` once per request, before fault injection and before any handler
runs. :class:`AllowAll` is the permissive default: every request is the cluster admin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from devcluster.faults import Request

__all__ = ["ADMIN", "AllowAll", "Auth", "Headers", "UserInfo"]


class Headers(Protocol):
    """Request headers, looked up case-insensitively."""

    def get(self, key: str, default: Any = None) -> Any: ...


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity, as ``authentication.k8s.io/v1`` UserInfo describes it."""

    username: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)


ADMIN = UserInfo("kubernetes-admin", ("system:masters", "system:authenticated"))


class Auth(Protocol):
    def authenticate(self, headers: Headers) -> UserInfo:
        """The requester; raises ``ApiError(401)`` for a bad credential."""
        ...

    def authorize(self, user: UserInfo, request: Request) -> None:
        """Raises ``ApiError(403)`` with the real Forbidden body when ``user`` may not."""
        ...

    def authorize_path(self, user: UserInfo, verb: str, path: str) -> None:
        """Non-resource URLs (``/version``, ``/apis``, ``/healthz`` ...)."""
        ...


class AllowAll:
    """No authentication, no authorization: every request is :data:`ADMIN`."""

    def authenticate(self, headers: Headers) -> UserInfo:
        return ADMIN

    def authorize(self, user: UserInfo, request: Request) -> None:
        return None

    def authorize_path(self, user: UserInfo, verb: str, path: str) -> None:
        return None
