"""HTTPRoute attachment and ``status.parents``: which listeners take a route, and why not.

The reference Go controller attached every route to every listener. Here one function,
:func:`attach`, decides for one parentRef of one route which listeners of the Gateway accept
it, following the HTTPRoute ``parentRefs`` docs:

1. the candidate listeners are those whose name equals ``sectionName`` and whose port equals
   ``port`` (each only when set) — none: ``Accepted=False/NoMatchingParent``;
2. of those, the listeners whose ``allowedRoutes`` admit the route — namespaces ``Same`` /
   ``All`` / ``Selector`` (a label selector over the route namespace's labels) and kinds (the
   listener's supported kinds, :func:`bifrost.status.listeners.route_kinds`) — none:
   ``NotAllowedByListeners``;
3. of those, the listeners whose hostname intersects the route's hostnames (a listener or route
   without hostnames matches all; ``*.`` is a suffix match on either side) — none:
   ``NoMatchingListenerHostname``.

The route is attached to the parent when at least one listener is left. Listener status does not
matter ("Listener or Route status does not impact successful attachment"). Both the route's
``status.parents`` (:func:`route_status`) and the listeners' ``attachedRoutes``
(:func:`attached_routes`) are computed from :func:`attach`, so they cannot disagree.

``ResolvedRefs`` checks the backendRefs of every rule: only core ``Service`` is supported
(else ``InvalidKind``), a cross-namespace backend needs a ReferenceGrant (else
``RefNotPermitted``), the Service must exist (else ``BackendNotFound``).

A route attached to a Gateway whose blueprint cannot render the route's ``routeChildren`` (the
provision's ``route_errors``) is ``Accepted=False`` with reason ``UnsupportedValue`` and the
render error as message: none of its rules is implemented by that Gateway (no child was made
for it), and the spec says a route is Accepted only if at least one rule is; ``UnsupportedValue``
is the spec's Accepted=False reason for a route the implementation cannot implement as written,
while ``ResolvedRefs`` stays about backendRefs (they did resolve). Attachment itself — and so
``attachedRoutes`` and the routes a provision renders for — is unchanged ("Listener or Route
status does not impact successful attachment"), so fixing the route or the blueprint re-renders
it.

When a Gateway is gone, or a parentRef no longer selects one of bifrost's Gateways, bifrost's
entries for it are removed (:func:`without_parent`); other controllers' entries stay.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bifrost.api.conditions import RouteConditionType, RouteReason, condition
from bifrost.status._util import (
    GATEWAY_GROUP,
    Obj,
    generation,
    get_list,
    get_map,
    merge_conditions,
    name,
    namespace,
)
from bifrost.status.listeners import HTTP_ROUTE, route_kinds
from bifrost.status.referencegrants import permitted

__all__ = [
    "DEFAULT_CONTROLLER_NAME",
    "Attachment",
    "attach",
    "attached_routes",
    "backend_refs_resolved",
    "hostnames_intersect",
    "label_selector_matches",
    "matching_hostnames",
    "parent_key",
    "route_attachments",
    "route_status",
    "without_parent",
]

DEFAULT_CONTROLLER_NAME = "gateway.bifrost.dev/bifrost"

#: ``status.parents`` holds at most this many entries (CRD ``maxItems``).
MAX_PARENTS = 32

_PARENT_REF_FIELDS = ("group", "kind", "namespace", "name", "sectionName", "port")

#: A parentRef's target, fully defaulted: (group, kind, namespace, name).
ParentKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class Attachment:
    """The decision for one parentRef of a route to one of our Gateways."""

    parent_ref: Obj
    gateway: tuple[str, str]
    #: Names of the listeners the route attached to (empty = not accepted).
    listeners: tuple[str, ...]
    reason: str
    message: str

    @property
    def accepted(self) -> bool:
        return bool(self.listeners)


# ---------------------------------------------------------------- building blocks


def parent_key(parent_ref: Obj, route_namespace: str) -> ParentKey:
    """The object a parentRef selects, with the API's defaults filled in."""
    group = parent_ref.get("group")
    return (
        GATEWAY_GROUP if group is None else str(group),
        str(parent_ref.get("kind") or "Gateway"),
        str(parent_ref.get("namespace") or route_namespace),
        str(parent_ref.get("name", "")),
    )


def _ref_identity(parent_ref: Obj, route_namespace: str) -> tuple[Any, ...]:
    """A parentRef's identity including the optional sectionName and port (for dedup/match)."""
    port = parent_ref.get("port")
    return (
        *parent_key(parent_ref, route_namespace),
        str(parent_ref.get("sectionName") or ""),
        int(port) if port is not None else None,
    )


def _host_match(a: str, b: str) -> bool:
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    if a == b:
        return True
    if a.startswith("*.") and b.startswith("*."):
        return a[1:].endswith(b[1:]) or b[1:].endswith(a[1:])
    if a.startswith("*."):
        return b.endswith(a[1:])
    if b.startswith("*."):
        return a.endswith(b[1:])
    return False


def hostnames_intersect(listener_hostname: str | None, route_hostnames: Iterable[str]) -> bool:
    """Whether a route with ``route_hostnames`` can attach to a listener with that hostname.

    No listener hostname or no route hostnames: yes. Otherwise at least one route hostname must
    match the listener's, with ``*.`` meaning "any one or more labels" on either side.
    """
    hosts = [h for h in route_hostnames if h]
    if not listener_hostname or not hosts:
        return True
    return any(_host_match(listener_hostname, h) for h in hosts)


def matching_hostnames(listener_hostname: str | None, route_hostnames: Iterable[str]) -> list[str]:
    """The hostnames an attached route serves on a listener (for the per-route children).

    Route hostnames that do not match the listener's are ignored, as the spec requires; of a
    matching pair the more specific one is kept (``*.example.com`` on a ``a.example.com``
    listener serves ``a.example.com``). An empty result means "every hostname" — neither side
    names one. Call it only for attached routes: when both sides name hostnames and none
    match, the route is not attached and the result is empty too.
    """
    hosts = [h.lower() for h in route_hostnames if h]
    if not listener_hostname:
        return list(dict.fromkeys(hosts))
    lh = listener_hostname.lower()
    if not hosts:
        return [lh]
    out: list[str] = []
    for host in hosts:
        if not _host_match(lh, host):
            continue
        if host.startswith("*.") and (not lh.startswith("*.") or len(lh) > len(host)):
            host = lh
        if host not in out:
            out.append(host)
    return out


def label_selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """``metav1.LabelSelector`` semantics: matchLabels AND every matchExpression.

    An empty selector matches everything; ``None`` (no selector) matches nothing. Operators:
    In, NotIn, Exists, DoesNotExist; an unknown operator matches nothing (fail closed).
    """
    if selector is None:
        return False
    for key, value in get_map(selector, "matchLabels").items():
        if labels.get(key) != value:
            return False
    for expr in get_list(selector, "matchExpressions"):
        if not isinstance(expr, Mapping):
            return False
        key = str(expr.get("key", ""))
        op = expr.get("operator")
        values = [str(v) for v in expr.get("values") or []]
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            ok = False
        if not ok:
            return False
    return True


def _namespace_allowed(
    listener: Obj,
    *,
    gateway_namespace: str,
    route_namespace: str,
    namespace_labels: Mapping[str, Mapping[str, str]],
) -> bool:
    namespaces = get_map(listener, "allowedRoutes", "namespaces")
    origin = namespaces.get("from") or "Same"
    if origin == "All":
        return True
    if origin == "Same":
        return route_namespace == gateway_namespace
    if origin == "Selector":
        selector = namespaces.get("selector")
        return label_selector_matches(
            selector if isinstance(selector, Mapping) else None,
            namespace_labels.get(route_namespace, {}),
        )
    return False


def _route_hostnames(route: Obj) -> list[str]:
    return [str(h) for h in get_list(route, "spec", "hostnames")]


def _describe(parent_ref: Obj) -> str:
    parts = [str(parent_ref.get("name", ""))]
    if parent_ref.get("sectionName"):
        parts.append(f"sectionName {parent_ref.get('sectionName')!r}")
    if parent_ref.get("port") is not None:
        parts.append(f"port {parent_ref.get('port')}")
    return ", ".join(parts)


# ---------------------------------------------------------------- attachment


def attach(
    route: Obj,
    parent_ref: Obj,
    gateway: Obj,
    *,
    namespace_labels: Mapping[str, Mapping[str, str]],
) -> Attachment:
    """Decide whether ``route`` attaches to ``gateway`` through ``parent_ref`` (module doc)."""
    route_ns, gw_ns = namespace(route), namespace(gateway)
    listeners = [x for x in get_list(gateway, "spec", "listeners") if isinstance(x, Mapping)]
    section = parent_ref.get("sectionName")
    port = parent_ref.get("port")
    candidates = [
        x
        for x in listeners
        if (not section or x.get("name") == section)
        and (port is None or int(x.get("port", 0)) == int(port))
    ]
    key = (gw_ns, name(gateway))

    def result(listener_names: list[str], reason: str, message: str) -> Attachment:
        return Attachment(parent_ref, key, tuple(listener_names), reason, message)

    if not candidates:
        return result(
            [],
            RouteReason.NO_MATCHING_PARENT,
            f"Gateway {gw_ns}/{_describe(parent_ref)}: no listener matches",
        )
    allowed = [
        x
        for x in candidates
        if HTTP_ROUTE in route_kinds(x)[0]
        and _namespace_allowed(
            x,
            gateway_namespace=gw_ns,
            route_namespace=route_ns,
            namespace_labels=namespace_labels,
        )
    ]
    if not allowed:
        return result(
            [],
            RouteReason.NOT_ALLOWED_BY_LISTENERS,
            f"no listener of Gateway {gw_ns}/{name(gateway)} allows HTTPRoutes from namespace "
            f"{route_ns} (candidates: {', '.join(str(x.get('name')) for x in candidates)})",
        )
    hosts = _route_hostnames(route)
    matched = [
        str(x.get("name"))
        for x in allowed
        if hostnames_intersect(str(x.get("hostname") or "") or None, hosts)
    ]
    if not matched:
        return result(
            [],
            RouteReason.NO_MATCHING_LISTENER_HOSTNAME,
            f"route hostnames {', '.join(hosts)} match no hostname of listeners "
            f"{', '.join(str(x.get('name')) for x in allowed)}",
        )
    return result(matched, RouteReason.ACCEPTED, f"attached to listeners {', '.join(matched)}")


def route_attachments(
    route: Obj,
    gateways: Mapping[tuple[str, str], Obj],
    *,
    namespace_labels: Mapping[str, Mapping[str, str]],
) -> tuple[Attachment, ...]:
    """One :class:`Attachment` per distinct parentRef of ``route`` that selects one of
    ``gateways`` (ours, keyed by (namespace, name)); other parentRefs are not ours to judge."""
    route_ns = namespace(route)
    seen: set[tuple[Any, ...]] = set()
    out: list[Attachment] = []
    for ref in get_list(route, "spec", "parentRefs"):
        if not isinstance(ref, Mapping):
            continue
        group, kind, ns, gw_name = parent_key(ref, route_ns)
        gateway = gateways.get((ns, gw_name))
        if (group, kind) != (GATEWAY_GROUP, "Gateway") or gateway is None:
            continue
        identity = _ref_identity(ref, route_ns)
        if identity in seen:
            continue
        seen.add(identity)
        out.append(attach(route, ref, gateway, namespace_labels=namespace_labels))
    return tuple(out)


def attached_routes(
    gateway: Obj,
    routes: Iterable[Obj],
    *,
    namespace_labels: Mapping[str, Mapping[str, str]],
) -> dict[str, int]:
    """``attachedRoutes`` per listener name: routes (each counted once) accepted on it."""
    key = (namespace(gateway), name(gateway))
    counts = {
        str(x.get("name")): 0
        for x in get_list(gateway, "spec", "listeners")
        if isinstance(x, Mapping)
    }
    for route in routes:
        on: set[str] = set()
        for att in route_attachments(route, {key: gateway}, namespace_labels=namespace_labels):
            on.update(att.listeners)
        for listener in on:
            counts[listener] = counts.get(listener, 0) + 1
    return counts


# ---------------------------------------------------------------- backends


def backend_refs_resolved(
    route: Obj,
    *,
    services: Collection[tuple[str, str]],
    grants: Iterable[Obj],
) -> tuple[bool, str, str]:
    """``ResolvedRefs`` of a route: ``(ok, reason, message)`` over every rule's backendRefs.

    ``services`` holds the (namespace, name) of existing Services. The reason is the first
    failing ref's; the message lists every failure.
    """
    grants = list(grants)
    route_ns = namespace(route)
    problems: list[tuple[str, str]] = []
    for r, rule in enumerate(get_list(route, "spec", "rules")):
        if not isinstance(rule, Mapping):
            continue
        for b, ref in enumerate(get_list(rule, "backendRefs")):
            if not isinstance(ref, Mapping):
                continue
            group = str(ref.get("group") or "")
            kind = str(ref.get("kind") or "Service")
            ref_ns = str(ref.get("namespace") or route_ns)
            ref_name = str(ref.get("name", ""))
            where = f"rules[{r}].backendRefs[{b}] {kind} {ref_ns}/{ref_name}"
            if (group, kind) != ("", "Service"):
                problems.append(
                    (RouteReason.INVALID_KIND, f"{where}: unsupported kind; only core Services")
                )
            elif not permitted(
                from_group=GATEWAY_GROUP,
                from_kind="HTTPRoute",
                from_namespace=route_ns,
                to_group=group,
                to_kind=kind,
                to_namespace=ref_ns,
                to_name=ref_name,
                grants=grants,
            ):
                problems.append(
                    (
                        RouteReason.REF_NOT_PERMITTED,
                        f"{where}: no ReferenceGrant in namespace {ref_ns} allows it",
                    )
                )
            elif (ref_ns, ref_name) not in services:
                problems.append((RouteReason.BACKEND_NOT_FOUND, f"{where}: not found"))
    if not problems:
        return True, str(RouteReason.RESOLVED_REFS), ""
    return False, problems[0][0], "; ".join(m for _, m in problems)


# ---------------------------------------------------------------- status


def route_status(
    route: Obj,
    *,
    gateways: Mapping[tuple[str, str], Obj],
    namespace_labels: Mapping[str, Mapping[str, str]],
    services: Collection[tuple[str, str]],
    grants: Iterable[Obj],
    now: datetime,
    controller_name: str = DEFAULT_CONTROLLER_NAME,
    render_errors: Mapping[tuple[str, str], str | None] | None = None,
) -> dict[str, Any]:
    """The ``status`` to write on ``route``.

    ``render_errors``: per Gateway (namespace, name), why the route's children could not be
    rendered by its last provision (``None``: they were). A Gateway not in it is not known
    here, so a render error its entry already shows is kept (see the module doc).

    ``gateways`` are the Gateways bifrost manages, keyed by (namespace, name) — a parentRef to
    any other object gets no entry. Our entries are rebuilt from the current parentRefs (stale
    ones disappear), each merged with the previous entry for the same parentRef so
    ``lastTransitionTime`` is kept; entries of other controllers are kept untouched, first.
    Our entries beyond the CRD's limit of 32 in total are left out.
    """
    route_ns = namespace(route)
    gen = generation(route)
    old_status = get_map(route, "status")
    old_parents = [p for p in get_list(old_status, "parents") if isinstance(p, Mapping)]
    others = [dict(p) for p in old_parents if p.get("controllerName") != controller_name]
    ours_old = {
        _ref_identity(get_map(p, "parentRef"), route_ns): p
        for p in old_parents
        if p.get("controllerName") == controller_name
    }
    resolved, res_reason, res_msg = backend_refs_resolved(route, services=services, grants=grants)
    ours: list[dict[str, Any]] = []
    for att in route_attachments(route, gateways, namespace_labels=namespace_labels):
        old = ours_old.get(_ref_identity(att.parent_ref, route_ns), {})
        accepted, reason, message = att.accepted, att.reason, att.message
        if accepted:
            failed = (
                render_errors[att.gateway]
                if render_errors is not None and att.gateway in render_errors
                else _shown_render_error(old)
            )
            if failed:
                accepted, reason = False, str(RouteReason.UNSUPPORTED_VALUE)
                message = failed[:32768]
        new = [
            condition(
                RouteConditionType.ACCEPTED,
                accepted,
                reason=reason,
                message=message,
                generation=gen,
                now=now,
            ),
            condition(
                RouteConditionType.RESOLVED_REFS,
                resolved,
                reason=res_reason,
                message=res_msg,
                generation=gen,
                now=now,
            ),
        ]
        ours.append(
            {
                "parentRef": {
                    k: att.parent_ref[k] for k in _PARENT_REF_FIELDS if k in att.parent_ref
                },
                "controllerName": controller_name,
                "conditions": merge_conditions(old.get("conditions"), new),
            }
        )
    status: dict[str, Any] = dict(old_status)
    # The API server rejects more than MAX_PARENTS entries; others' entries are not ours to drop.
    status["parents"] = others + ours[: max(0, MAX_PARENTS - len(others))]
    return status


def _shown_render_error(entry: Mapping[str, Any]) -> str | None:
    """The render error an entry of ours shows (``Accepted=False/UnsupportedValue``), if any."""
    for cond in get_list(entry, "conditions"):
        if (
            isinstance(cond, Mapping)
            and cond.get("type") == RouteConditionType.ACCEPTED
            and cond.get("status") == "False"
            and cond.get("reason") == RouteReason.UNSUPPORTED_VALUE
        ):
            return str(cond.get("message") or "") or None
    return None


def without_parent(
    route: Obj, gateway: tuple[str, str], *, controller_name: str = DEFAULT_CONTROLLER_NAME
) -> list[dict[str, Any]] | None:
    """``status.parents`` of ``route`` without ``controller_name``'s entries for the Gateway
    ``gateway`` (namespace, name) — for a Gateway that is gone or no longer bifrost's; ``None``
    when there is none to remove. Other controllers' entries and other parents stay, in order.
    """
    route_ns = namespace(route)
    parents = [p for p in get_list(route, "status", "parents") if isinstance(p, Mapping)]
    keep = [
        dict(p)
        for p in parents
        if not (
            p.get("controllerName") == controller_name
            and parent_key(get_map(p, "parentRef"), route_ns)
            == (GATEWAY_GROUP, "Gateway", *gateway)
        )
    ]
    return keep if len(keep) != len(parents) else None
