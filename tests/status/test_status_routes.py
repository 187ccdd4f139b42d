"""HTTPRoute attachment, backendRefs, status.parents and attachedRoutes."""

from __future__ import annotations

from typing import Any

import pytest
from status_builders import (
    GROUP,
    LATER,
    NOW,
    backend,
    brief,
    gateway,
    grant,
    https,
    listener,
    parent,
    route,
)

from bifrost.status.routes import (
    DEFAULT_CONTROLLER_NAME,
    attached_routes,
    backend_refs_resolved,
    hostnames_intersect,
    label_selector_matches,
    matching_hostnames,
    route_attachments,
    route_status,
)

NS_LABELS = {
    "infra": {"kubernetes.io/metadata.name": "infra"},
    "team-a": {"kubernetes.io/metadata.name": "team-a", "gateway-access": "yes", "tier": "web"},
    "team-b": {"kubernetes.io/metadata.name": "team-b", "tier": "db"},
}
SERVICES = {("infra", "svc"), ("team-a", "svc"), ("backends", "svc")}


def gws(*items: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(g["metadata"]["namespace"], g["metadata"]["name"]): g for g in items}


def status_of(
    rt: dict[str, Any], *gateways: dict[str, Any], grants: tuple[Any, ...] = (), now: Any = NOW
) -> dict[str, Any]:
    return route_status(
        rt,
        gateways=gws(*(gateways or (gateway(),))),
        namespace_labels=NS_LABELS,
        services=SERVICES,
        grants=grants,
        now=now,
    )


# ---------------------------------------------------------------- hostnames and selectors


@pytest.mark.parametrize(
    ("listener_host", "route_hosts", "match"),
    [
        (None, [], True),
        (None, ["a.example.com"], True),
        ("a.example.com", [], True),
        ("a.example.com", ["a.example.com"], True),
        ("A.Example.com", ["a.example.COM"], True),
        ("a.example.com", ["b.example.com"], False),
        ("a.example.com", ["*.example.com"], True),
        ("*.example.com", ["a.example.com"], True),
        ("*.example.com", ["foo.a.example.com"], True),
        ("*.example.com", ["example.com"], False),
        ("*.example.com", ["a.example.net"], False),
        ("*.example.com", ["*.example.com"], True),
        ("*.example.com", ["*.a.example.com"], True),
        ("*.a.example.com", ["*.example.com"], True),
        ("*.example.com", ["*.example.net"], False),
        ("a.example.com", ["*.a.example.com"], False),
        ("*.example.com", ["x.example.net", "y.example.com"], True),
    ],
)
def test_hostname_intersection(
    listener_host: str | None, route_hosts: list[str], match: bool
) -> None:
    assert hostnames_intersect(listener_host, route_hosts) is match


@pytest.mark.parametrize(
    ("selector", "labels", "match"),
    [
        (None, {"a": "1"}, False),
        ({}, {}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
        ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, {"a": ""}, False),
        (
            {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
            {"a": "1"},
            False,
        ),
    ],
)
def test_label_selector(
    selector: dict[str, Any] | None, labels: dict[str, str], match: bool
) -> None:
    assert label_selector_matches(selector, labels) is match


# ---------------------------------------------------------------- attachment table

SEL_TEAM = {"matchLabels": {"gateway-access": "yes"}}
SEL_EXPR = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}

# (id, listeners, route namespace, route hostnames, parentRef, Accepted reason, attached listeners)
ATTACH: list[
    tuple[str, list[dict[str, Any]], str, list[str] | None, dict[str, Any], str, tuple[str, ...]]
] = [
    ("whole gateway", [listener()], "infra", None, parent(), "Accepted", ("http",)),
    (
        "sectionName matches",
        [listener(), listener("other", port=81)],
        "infra",
        None,
        parent(section="other"),
        "Accepted",
        ("other",),
    ),
    (
        "sectionName matches no listener",
        [listener()],
        "infra",
        None,
        parent(section="nope"),
        "NoMatchingParent",
        (),
    ),
    (
        "port selects listeners",
        [listener(), listener("b", port=8080)],
        "infra",
        None,
        parent(port=8080),
        "Accepted",
        ("b",),
    ),
    (
        "port matches no listener",
        [listener()],
        "infra",
        None,
        parent(port=9999),
        "NoMatchingParent",
        (),
    ),
    (
        "sectionName and port must both match",
        [listener(), listener("b", port=8080)],
        "infra",
        None,
        parent(section="b", port=80),
        "NoMatchingParent",
        (),
    ),
    (
        "sectionName and port both match",
        [listener(), listener("b", port=8080)],
        "infra",
        None,
        parent(section="b", port=8080),
        "Accepted",
        ("b",),
    ),
    (
        "Same: other namespace refused",
        [listener()],
        "team-a",
        None,
        parent(),
        "NotAllowedByListeners",
        (),
    ),
    (
        "All: other namespace",
        [listener(from_="All")],
        "team-a",
        None,
        parent(),
        "Accepted",
        ("http",),
    ),
    (
        "Selector matchLabels: selected",
        [listener(from_="Selector", selector=SEL_TEAM)],
        "team-a",
        None,
        parent(),
        "Accepted",
        ("http",),
    ),
    (
        "Selector matchLabels: not selected",
        [listener(from_="Selector", selector=SEL_TEAM)],
        "team-b",
        None,
        parent(),
        "NotAllowedByListeners",
        (),
    ),
    (
        "Selector: Gateway's own namespace needs selecting too",
        [listener(from_="Selector", selector=SEL_TEAM)],
        "infra",
        None,
        parent(),
        "NotAllowedByListeners",
        (),
    ),
    (
        "Selector matchExpressions: selected",
        [listener(from_="Selector", selector=SEL_EXPR)],
        "team-a",
        None,
        parent(),
        "Accepted",
        ("http",),
    ),
    (
        "Selector matchExpressions: not selected",
        [listener(from_="Selector", selector=SEL_EXPR)],
        "team-b",
        None,
        parent(),
        "NotAllowedByListeners",
        (),
    ),
    (
        "Selector: unknown namespace",
        [listener(from_="Selector", selector=SEL_TEAM)],
        "ghost",
        None,
        parent(),
        "NotAllowedByListeners",
        (),
    ),
    (
        "kinds exclude HTTPRoute",
        [listener(kinds=[{"kind": "GRPCRoute"}])],
        "infra",
        None,
        parent(),
        "NotAllowedByListeners",
        (),
    ),
    (
        "kinds include HTTPRoute",
        [listener(kinds=[{"kind": "GRPCRoute"}, {"kind": "HTTPRoute", "group": GROUP}])],
        "infra",
        None,
        parent(),
        "Accepted",
        ("http",),
    ),
    (
        "TLS listener takes no HTTPRoute",
        [listener("tls", protocol="TLS", port=443)],
        "infra",
        None,
        parent(),
        "NotAllowedByListeners",
        (),
    ),
    (
        "hostname exact",
        [listener(hostname="a.example.com")],
        "infra",
        ["a.example.com"],
        parent(),
        "Accepted",
        ("http",),
    ),
    (
        "hostname wildcard listener",
        [listener(hostname="*.example.com")],
        "infra",
        ["a.example.com"],
        parent(),
        "Accepted",
        ("http",),
    ),
    (
        "hostname wildcard route",
        [listener(hostname="a.example.com")],
        "infra",
        ["*.example.com"],
        parent(),
        "Accepted",
        ("http",),
    ),
    (
        "hostname wildcard both",
        [listener(hostname="*.example.com")],
        "infra",
        ["*.example.com"],
        parent(),
        "Accepted",
        ("http",),
    ),
    (
        "hostname none intersect",
        [listener(hostname="a.example.com")],
        "infra",
        ["b.example.com", "example.com"],
        parent(),
        "NoMatchingListenerHostname",
        (),
    ),
    (
        "hostname picks listeners",
        [
            listener("a", hostname="a.example.com"),
            listener("b", hostname="b.example.com"),
            listener("c", port=81),
        ],
        "infra",
        ["b.example.com"],
        parent(),
        "Accepted",
        ("b", "c"),
    ),
    (
        "not allowed wins over hostname when no listener allows",
        [listener(hostname="a.example.com")],
        "team-a",
        ["b.example.com"],
        parent(),
        "NotAllowedByListeners",
        (),
    ),
    (
        "one allowed listener of two is enough",
        [listener("a"), listener("b", port=81, from_="All")],
        "team-a",
        None,
        parent(),
        "Accepted",
        ("b",),
    ),
    (
        "listener status does not matter (conflicted)",
        [listener("a"), listener("b")],
        "infra",
        None,
        parent(),
        "Accepted",
        ("a", "b"),
    ),
]


@pytest.mark.parametrize(
    ("listeners", "route_ns", "hostnames", "ref", "reason", "attached"),
    [c[1:] for c in ATTACH],
    ids=[c[0] for c in ATTACH],
)
def test_attachment(
    listeners: list[dict[str, Any]],
    route_ns: str,
    hostnames: list[str] | None,
    ref: dict[str, Any],
    reason: str,
    attached: tuple[str, ...],
) -> None:
    gw = gateway(*listeners)
    rt = route(ref, ns=route_ns, hostnames=hostnames)
    (att,) = route_attachments(rt, gws(gw), namespace_labels=NS_LABELS)
    assert (att.reason, att.listeners, att.accepted) == (reason, attached, bool(attached))
    # status.parents and attachedRoutes come from the same decision.
    entry = status_of(rt, gw)["parents"][0]
    assert brief(entry["conditions"], "Accepted") == ("True" if attached else "False", reason)
    counts = attached_routes(gw, [rt], namespace_labels=NS_LABELS)
    assert {k for k, v in counts.items() if v} == set(attached)
    assert set(counts) == {x["name"] for x in listeners}


def test_attached_routes_counts_each_route_once_per_listener() -> None:
    gw = gateway(
        listener("a", hostname="a.example.com"),
        listener("b", hostname="b.example.com"),
        https(hostname="c.example.com"),
    )
    routes = [
        route(parent(), name="r1", hostnames=["a.example.com"]),
        route(
            parent(), parent(section="a"), name="r2", hostnames=["a.example.com", "b.example.com"]
        ),
        route(parent(section="https"), name="r3"),
        route(parent(section="nope"), name="r4"),
        route(parent(name="other-gw"), name="r5"),
    ]
    assert attached_routes(gw, routes, namespace_labels=NS_LABELS) == {"a": 2, "b": 1, "https": 1}


# ---------------------------------------------------------------- backendRefs

BACKENDS: list[tuple[str, list[dict[str, Any]], tuple[Any, ...], tuple[bool, str]]] = [
    ("service found", [backend()], (), (True, "ResolvedRefs")),
    ("no backends", [], (), (True, "ResolvedRefs")),
    ("service missing", [backend("gone")], (), (False, "BackendNotFound")),
    ("wrong kind", [backend("x", kind="ConfigMap")], (), (False, "InvalidKind")),
    ("wrong group", [backend("x", group="example.com")], (), (False, "InvalidKind")),
    ("cross-namespace without grant", [backend(ns="backends")], (), (False, "RefNotPermitted")),
    (
        "cross-namespace with grant",
        [backend(ns="backends")],
        (grant(ns="backends", from_kind="HTTPRoute", to_kind="Service"),),
        (True, "ResolvedRefs"),
    ),
    (
        "cross-namespace grant for another service",
        [backend(ns="backends")],
        (grant(ns="backends", from_kind="HTTPRoute", to_kind="Service", to_name="other"),),
        (False, "RefNotPermitted"),
    ),
    (
        "cross-namespace grant for Gateways only",
        [backend(ns="backends")],
        (grant(ns="backends", from_kind="Gateway", to_kind="Service"),),
        (False, "RefNotPermitted"),
    ),
    (
        "cross-namespace grant, service missing",
        [backend("gone", ns="backends")],
        (grant(ns="backends", from_kind="HTTPRoute", to_kind="Service"),),
        (False, "BackendNotFound"),
    ),
    (
        "first failure's reason",
        [backend(), backend("x", kind="Foo"), backend("gone")],
        (),
        (False, "InvalidKind"),
    ),
]


@pytest.mark.parametrize(
    ("backends", "grants", "want"), [c[1:] for c in BACKENDS], ids=[c[0] for c in BACKENDS]
)
def test_backend_refs(
    backends: list[dict[str, Any]], grants: tuple[Any, ...], want: tuple[bool, str]
) -> None:
    rt = route(backends=backends)
    ok, reason, message = backend_refs_resolved(rt, services=SERVICES, grants=grants)
    assert (ok, reason) == want
    entry = status_of(rt, grants=grants)["parents"][0]
    assert brief(entry["conditions"], "ResolvedRefs") == ("True" if ok else "False", reason)
    assert brief(entry["conditions"], "Accepted") == ("True", "Accepted")
    if not ok:
        assert "rules[0].backendRefs[" in message


def test_backend_message_lists_every_failure() -> None:
    _, _, message = backend_refs_resolved(
        route(backends=[backend("x", kind="Foo"), backend("gone")]), services=SERVICES, grants=()
    )
    assert "backendRefs[0]" in message and "backendRefs[1]" in message


# ---------------------------------------------------------------- status.parents


def foreign_entry() -> dict[str, Any]:
    return {
        "parentRef": parent("theirs"),
        "controllerName": "example.net/other",
        "conditions": [
            {
                "type": "Accepted",
                "status": "True",
                "reason": "Accepted",
                "message": "",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
                "observedGeneration": 1,
            }
        ],
    }


def test_parent_entries_shape() -> None:
    status = status_of(route(parent(), parent("theirs")))
    (entry,) = status["parents"]
    assert entry["parentRef"] == parent()
    assert entry["controllerName"] == DEFAULT_CONTROLLER_NAME
    assert [c["type"] for c in entry["conditions"]] == ["Accepted", "ResolvedRefs"]
    assert all(c["observedGeneration"] == 1 for c in entry["conditions"])


def test_controller_name_is_a_parameter() -> None:
    status = route_status(
        route(),
        gateways=gws(gateway()),
        namespace_labels=NS_LABELS,
        services=SERVICES,
        grants=(),
        now=NOW,
        controller_name="example.com/x",
    )
    assert status["parents"][0]["controllerName"] == "example.com/x"


def test_other_controllers_entries_kept_and_stale_ours_removed() -> None:
    first = status_of(route(parent(), parent(section="http")))
    assert len(first["parents"]) == 2
    old = {"parents": [foreign_entry(), *first["parents"]]}
    # The route drops its second parentRef: that entry of ours goes, the foreign one stays.
    second = status_of(route(parent(), status=old, generation=2), now=LATER)
    assert second["parents"][0] == foreign_entry()
    assert [p["parentRef"] for p in second["parents"][1:]] == [parent()]


def test_entry_removed_when_the_gateway_is_no_longer_ours() -> None:
    first = status_of(route())
    second = status_of(route(status=first), gateway(name="another"))
    assert second["parents"] == []


def test_duplicate_parent_refs_collapse() -> None:
    status = status_of(route(parent(), parent(ns=None)))
    assert len(status["parents"]) == 1


def test_non_gateway_parents_ignored() -> None:
    status = status_of(route(parent(kind="Service", group="")))
    assert status["parents"] == []


def test_cross_namespace_gateway_parent() -> None:
    rt = route(parent(ns="infra"), ns="team-a")
    allowed = status_of(rt, gateway(listener(from_="All")))
    refused = status_of(rt, gateway(listener()))
    assert brief(allowed["parents"][0]["conditions"], "Accepted") == ("True", "Accepted")
    assert brief(refused["parents"][0]["conditions"], "Accepted") == (
        "False",
        "NotAllowedByListeners",
    )


def test_last_transition_time_kept_and_generation_updated() -> None:
    first = status_of(route())
    same = status_of(route(status=first), now=LATER)
    assert same == first
    newer = status_of(route(status=first, generation=2, hostnames=["a.example.com"]), now=LATER)
    conds = newer["parents"][0]["conditions"]
    assert {c["observedGeneration"] for c in conds} == {2}
    assert {c["lastTransitionTime"] for c in conds} == {"2026-01-01T12:00:00Z"}


def test_last_transition_time_moves_on_flip() -> None:
    first = status_of(route(parent(section="nope")))
    second = status_of(
        route(parent(section="nope"), status=first, generation=2),
        gateway(listener("nope")),
        now=LATER,
    )
    acc = second["parents"][0]["conditions"][0]
    assert (acc["status"], acc["lastTransitionTime"]) == ("True", "2026-01-01T13:00:00Z")


@pytest.mark.parametrize(
    ("listener_host", "route_hosts", "want"),
    [
        (None, [], []),
        (None, ["A.example.com", "a.example.com"], ["a.example.com"]),
        ("a.example.com", [], ["a.example.com"]),
        ("a.example.com", ["*.example.com", "b.example.com"], ["a.example.com"]),
        ("*.example.com", ["a.example.com", "x.example.net"], ["a.example.com"]),
        ("*.example.com", ["*.a.example.com"], ["*.a.example.com"]),
        ("*.a.example.com", ["*.example.com"], ["*.a.example.com"]),
        ("a.example.com", ["b.example.com"], []),
    ],
)
def test_matching_hostnames(
    listener_host: str | None, route_hosts: list[str], want: list[str]
) -> None:
    assert matching_hostnames(listener_host, route_hosts) == want


def test_parents_capped_at_crd_limit() -> None:
    others = [{**foreign_entry(), "parentRef": parent(f"theirs-{i}")} for i in range(30)]
    listeners = [listener(f"l{i}", port=80 + i) for i in range(5)]
    rt = route(*[parent(section=f"l{i}") for i in range(5)], status={"parents": others})
    status = status_of(rt, gateway(*listeners))
    assert len(status["parents"]) == 32
    assert status["parents"][:30] == others


def test_parent_ref_echo_has_only_api_fields() -> None:
    ref = {**parent(section="http"), "bogus": 1}
    (entry,) = status_of(route(ref))["parents"]
    assert entry["parentRef"] == parent(section="http")


# ---------------------------------------------------------------- route render errors (#14.9)


def status_with_errors(
    rt: dict[str, Any], errors: dict[tuple[str, str], str | None] | None, *gateways: Any
) -> dict[str, Any]:
    return route_status(
        rt,
        gateways=gws(*(gateways or (gateway(),))),
        namespace_labels=NS_LABELS,
        services=SERVICES,
        grants=(),
        now=NOW,
        render_errors=errors,
    )


def test_a_render_error_makes_the_route_not_accepted_by_that_gateway() -> None:
    rt = route(parent(), parent("other"))
    status = status_with_errors(
        rt, {("infra", "gw"): "cannot render: values.tier is undefined", ("infra", "other"): None},
        gateway(), gateway(name="other"),
    )
    by_name = {p["parentRef"]["name"]: p["conditions"] for p in status["parents"]}
    assert brief(by_name["gw"], "Accepted") == ("False", "UnsupportedValue")
    assert "values.tier is undefined" in next(
        c["message"] for c in by_name["gw"] if c["type"] == "Accepted")
    assert brief(by_name["gw"], "ResolvedRefs") == ("True", "ResolvedRefs")
    assert brief(by_name["other"], "Accepted") == ("True", "Accepted")


def test_a_render_error_is_kept_while_its_gateway_is_not_known_and_cleared_when_it_is() -> None:
    failed = status_with_errors(route(), {("infra", "gw"): "cannot render"})
    unknown = status_with_errors(route(status=failed), None)
    assert brief(unknown["parents"][0]["conditions"], "Accepted") == ("False", "UnsupportedValue")
    assert unknown["parents"] == failed["parents"]
    fixed = status_with_errors(route(status=unknown), {("infra", "gw"): None})
    assert brief(fixed["parents"][0]["conditions"], "Accepted") == ("True", "Accepted")


def test_a_render_error_does_not_hide_an_attachment_refusal() -> None:
    status = status_with_errors(route(parent(section="nope")), {("infra", "gw"): "cannot render"})
    assert brief(status["parents"][0]["conditions"], "Accepted") == ("False", "NoMatchingParent")


# ---------------------------------------------------------------- a gone Gateway's entries (#14.4)


def test_without_parent_drops_only_our_entries_for_that_gateway() -> None:
    from bifrost.status.routes import without_parent

    ours = status_of(route(parent(), parent("second")), gateway(), gateway(name="second"))
    theirs_same_gateway = {**foreign_entry(), "parentRef": parent()}
    rt = route(parent(), parent("second"), parent("theirs"),
               status={"parents": [foreign_entry(), theirs_same_gateway, *ours["parents"]]})
    kept = without_parent(rt, ("infra", "gw"))
    assert kept is not None
    assert [(p["controllerName"], p["parentRef"]["name"]) for p in kept] == [
        ("example.net/other", "theirs"),
        ("example.net/other", "gw"),
        (DEFAULT_CONTROLLER_NAME, "second"),
    ]
    assert without_parent(rt, ("infra", "absent")) is None
    assert without_parent(rt, ("infra", "gw"), controller_name="example.com/x") is None


def test_without_parent_defaults_the_parent_namespace_to_the_routes() -> None:
    from bifrost.status.routes import without_parent

    ours = status_of(route(parent(ns=None)))
    rt = route(parent(ns=None), status=ours)
    assert without_parent(rt, ("infra", "gw")) == []
    assert without_parent(rt, ("team-a", "gw")) is None
