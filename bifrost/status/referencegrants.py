"""ReferenceGrant checks: may an object in one namespace refer to an object in another?

Every cross-namespace reference in the Gateway API except route → Gateway attachment (which
``allowedRoutes`` governs) needs a ReferenceGrant in the *target* namespace that trusts the
source (group, kind, namespace) and covers the target (group, kind and optionally name). Listener
certificateRefs (Gateway → Secret) and HTTPRoute backendRefs (HTTPRoute → Service) both use
:func:`permitted`, so the rule is written once. Both served versions of ReferenceGrant (v1 and
v1beta1) have the same shape, so the grants are read as plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterable

from bifrost.status._util import Obj, get_list, get_map, namespace

__all__ = ["permitted"]


def permitted(
    *,
    from_group: str,
    from_kind: str,
    from_namespace: str,
    to_group: str,
    to_kind: str,
    to_namespace: str,
    to_name: str,
    grants: Iterable[Obj],
) -> bool:
    """Whether a reference from ``from_*`` to the object ``to_*`` is allowed.

    Same-namespace references need no grant. Otherwise a grant must live in ``to_namespace``,
    have a ``from`` entry equal to (group, kind, namespace) and a ``to`` entry equal to (group,
    kind) whose ``name`` is unset/empty (all objects of that kind) or equal to ``to_name``.
    Entries within ``from`` and within ``to`` are ORed; groups ``""`` mean the core group.
    """
    if from_namespace == to_namespace:
        return True
    for grant in grants:
        if namespace(grant) != to_namespace:
            continue
        spec = get_map(grant, "spec")
        from_ok = any(
            str(f.get("group") or "") == from_group
            and f.get("kind") == from_kind
            and f.get("namespace") == from_namespace
            for f in get_list(spec, "from")
            if isinstance(f, dict)
        )
        if not from_ok:
            continue
        if any(
            str(t.get("group") or "") == to_group
            and t.get("kind") == to_kind
            and (not t.get("name") or t.get("name") == to_name)
            for t in get_list(spec, "to")
            if isinstance(t, dict)
        ):
            return True
    return False
