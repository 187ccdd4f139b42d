"""The :class:`~devcluster.auth.Auth` of ``DevCluster(authorization="RBAC")`` (the default):
bearer-token authentication, impersonation, RBAC authorization.

* No ``Authorization: Bearer`` header (:func:`bearer_token`): the request is ``system:anonymous``
  (group ``system:unauthenticated``); a bearer token that authenticates no one: 401
  ``Unauthorized``.
* ``Impersonate-*`` headers then switch the user (:mod:`devcluster.auth.impersonation`).
* Resource requests and non-resource paths are decided by :class:`RbacAuthorizer`; a denial is
  the real 403 (:func:`devcluster.auth.attributes.forbidden`).

Every request passes here, so the common cases cost under a microsecond each: a request
without ``Impersonate-*`` headers is not handed to the impersonation code, and a
``system:masters`` user (the admin token, the kubeconfig's user) is allowed without building the
request's :class:`Attributes` — the answer :meth:`RbacAuthorizer.decide` would give anyway (the
API server's privileged-group authorizer).
"""

from __future__ import annotations

from typing import Any

from devcluster.auth import ANONYMOUS, MASTERS, Headers, UserInfo
from devcluster.auth.attributes import Attributes, forbidden, from_request
from devcluster.auth.impersonation import PREFIX, impersonate
from devcluster.auth.rbac import RbacAuthorizer
from devcluster.auth.tokens import InvalidToken, TokenAuthority
from devcluster.errors import ApiError
from devcluster.faults import Request

__all__ = ["RbacAuth", "unauthorized"]

JSON = dict[str, Any]


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def bearer_token(headers: Headers) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, as upstream reads it: the scheme
    in any case, the token the text after it up to the next space. None (the request is then
    anonymous) without the header, for another scheme, and for an empty token (``Bearer`` alone,
    or two spaces before the token)."""
    value = headers.get("Authorization")
    if not isinstance(value, str):
        return None
    parts = value.strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


class RbacAuth:
    """Tokens from :class:`TokenAuthority`, decisions from :class:`RbacAuthorizer`."""

    def __init__(self, tokens: TokenAuthority, rbac: RbacAuthorizer) -> None:
        self.tokens = tokens
        self.rbac = rbac

    def authenticate(self, headers: Headers) -> UserInfo:
        token = bearer_token(headers)
        if token is None:
            user = ANONYMOUS
        else:
            try:
                user = self.tokens.authenticate(token)
            except InvalidToken as e:
                raise unauthorized() from e
        names = headers.keys()
        for name in names:
            if name.startswith(PREFIX):
                return impersonate(user, headers.get_all, list(headers.keys()), self.decide)
        return user

    def decide(self, attrs: Attributes) -> tuple[bool, str]:
        return self.rbac.decide(attrs)

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[JSON], list[str]]:
        return self.rbac.rules_for(user, namespace)

    def authorize(self, user: UserInfo, request: Request, *, field_name: str | None = None) -> None:
        if MASTERS in user.groups:  # allowed everything, as decide() answers
            return
        attrs = from_request(user, request, field_name)
        allowed, reason = self.rbac.decide(attrs)
        if not allowed:
            raise forbidden(attrs, reason)

    def authorize_path(self, user: UserInfo, verb: str, path: str) -> None:
        if MASTERS in user.groups:
            return
        attrs = Attributes(user, verb, resource_request=False, path=path)
        allowed, reason = self.rbac.decide(attrs)
        if not allowed:
            raise forbidden(attrs, reason)
