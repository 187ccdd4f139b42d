"""Impersonation: ``Impersonate-User``, ``Impersonate-Group``, ``Impersonate-Uid`` and
``Impersonate-Extra-<key>`` headers (what ``kubectl --as``, ``--as-group`` and ``--as-uid`` send)
make a request act as another user.

Each thing impersonated must be allowed to the real requester by the verb ``impersonate``, as
upstream: ``users`` (by name), ``serviceaccounts`` (in their namespace, when the user is
``system:serviceaccount:<ns>:<name>``), ``groups`` (core API group), ``uids`` and
``userextras/<key>`` (``authentication.k8s.io``). A denial is the usual 403 naming that resource.
Groups, uid or extras without a user are an error.

The impersonated user gets the groups named (a ServiceAccount without named groups gets its
``system:serviceaccounts`` groups), plus ``system:authenticated`` unless
``system:authenticated`` or ``system:unauthenticated`` is already among them
(``system:unauthenticated`` for ``system:anonymous``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable

from devcluster.auth import (
    AUTHENTICATED,
    UNAUTHENTICATED,
    UserInfo,
    service_account_groups,
    split_service_account_username,
)
from devcluster.auth.attributes import Attributes, forbidden
from devcluster.errors import ApiError

__all__ = ["EXTRA_PREFIX", "PREFIX", "impersonate", "wants_impersonation"]

PREFIX = "impersonate-"  # every impersonation header's (lower-case) name starts so
USER = "impersonate-user"
GROUP = "impersonate-group"
UID = "impersonate-uid"
EXTRA_PREFIX = "impersonate-extra-"
_AUTHN = "authentication.k8s.io"

Decide = Callable[[Attributes], tuple[bool, str]]


def wants_impersonation(names: Iterable[str]) -> bool:
    """Whether any of these (lower-case) header names asks to impersonate."""
    return any(n.startswith(PREFIX) for n in names)


def impersonate(
    requester: UserInfo,
    values: Callable[[str], list[str]],
    names: Iterable[str],
    decide: Decide,
) -> UserInfo:
    """The user the request acts as. ``values(name)`` gives every value of one (lower-case)
    header; ``names`` are the request's header names. Raises the 403 of the first thing the
    requester may not impersonate."""
    users = values(USER)
    groups = values(GROUP)
    uids = values(UID)
    extras: dict[str, list[str]] = {}
    for n in names:
        if n.startswith(EXTRA_PREFIX):
            key = urllib.parse.unquote(n[len(EXTRA_PREFIX) :]).lower()
            extras.setdefault(key, []).extend(values(n))
    username = users[0] if users else ""
    if not username:
        if groups or uids or extras:
            raise ApiError(
                500,
                "requested impersonation of groups, uid or extra without impersonating a user",
                "InternalError",
            )
        return requester

    def check(attrs: Attributes) -> None:
        allowed, reason = decide(attrs)
        if not allowed:
            raise forbidden(attrs, reason)

    new_groups: list[str] = []
    sa = split_service_account_username(username)
    if sa is not None:
        check(
            Attributes(
                requester, "impersonate", resource="serviceaccounts", namespace=sa[0], name=sa[1]
            )
        )
        if not groups:
            new_groups = list(service_account_groups(sa[0]))
    else:
        check(Attributes(requester, "impersonate", resource="users", name=username))
    for g in groups:
        check(Attributes(requester, "impersonate", resource="groups", name=g))
        new_groups.append(g)
    uid = uids[0] if uids else ""
    if uid:
        check(Attributes(requester, "impersonate", group=_AUTHN, resource="uids", name=uid))
    for key, vals in extras.items():
        for v in vals:
            check(
                Attributes(
                    requester,
                    "impersonate",
                    group=_AUTHN,
                    resource="userextras",
                    subresource=key,
                    name=v,
                )
            )
    if username == "system:anonymous":
        if UNAUTHENTICATED not in new_groups:
            new_groups.append(UNAUTHENTICATED)
    elif AUTHENTICATED not in new_groups and UNAUTHENTICATED not in new_groups:
        new_groups.append(AUTHENTICATED)
    return UserInfo(username, tuple(new_groups), uid, {k: tuple(v) for k, v in extras.items()})
