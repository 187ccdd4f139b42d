"""Per-route children (``spec.routeChildren``) on the real provision/teardown machines, a SQLite
store and the devcluster: applied for each route in ``routes`` after the Gateway children they
read are ready, recorded under (child id, route), not written again when unchanged, pruned when
the route leaves ``routes`` or disappears (cluster-scoped ones too), deleted by teardown; name
collisions between routes fail visibly; a route whose children fail to render is reported
alone (the Gateway and the other routes go on)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from provision_kit import GATEWAY_API, LB_API, Harness

from bifrost.records import ChildRecord, OperationStatus
from bifrost.render import Blueprint
from bifrost.steps.ownership import GATEWAY_UID_LABEL
from bifrost.steps.provision import (
    CHILD_ID_LABEL,
    ROUTE_ANNOTATION,
    deletion_waves,
    record_key,
)

CHILDREN = [
    {
        "id": "config",
        "template": (
            "apiVersion: v1\nkind: ConfigMap\n"
            'metadata: {name: "{{ gateway.metadata.name }}-config"}\n'
            'data: {hostname: "{{ values.hostname }}"}\n'
        ),
    },
]

ROUTE_CHILDREN = [
    {
        # reads the Gateway's child: rendered once it is ready
        "id": "route-config",
        "template": (
            "apiVersion: v1\nkind: ConfigMap\n"
            "metadata:\n"
            '  name: "{{ gateway.metadata.name }}-{{ route.metadata.namespace }}-'
            '{{ route.metadata.name }}"\n'
            "data:\n"
            '  gatewayHost: "{{ children.config.data.hostname }}"\n'
            '  routeHosts: "{{ route.spec.hostnames | join(\',\') }}"\n'
        ),
    },
    {
        # cluster-scoped, after its sibling, deleted first
        "id": "route-lb",
        "dependsOn": ["route-config"],
        "deleteOrder": 10,
        "template": (
            "apiVersion: elbv2.aws.upbound.io/v1beta1\nkind: LB\n"
            'metadata: {name: "{{ route.metadata.namespace }}-{{ route.metadata.name }}-lb"}\n'
            "spec: {forProvider: {scheme: internal}}\n"
        ),
        "readyWhen": 'object.status.conditions.exists(c, c.type == "Ready" && c.status == "True")',
    },
]

VALUES = {"hostname": "shop.example.com"}


def create_route(h: Harness, name: str, *, hostnames: tuple[str, ...] = ()) -> dict[str, Any]:
    return h.kube.create({
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": h.namespace},
        "spec": {
            "parentRefs": [{"name": "edge"}],
            "hostnames": list(hostnames or (f"{name}.example.com",)),
        },
    })


def provision(h: Harness, gw: dict[str, Any], *routes: str) -> Any:
    op = h.start_provision(gw, values=VALUES, routes=tuple(f"{h.namespace}/{r}" for r in routes))
    return h.drive(op.id)


def inventory(h: Harness, uid: str) -> set[str]:
    return {record_key(r) for r in h.store.list_children(uid)}


def route_configs(h: Harness, uid: str) -> dict[str, dict[str, Any]]:
    items = [o for o in h.labelled("v1", "ConfigMap", uid)
             if o["metadata"]["labels"][CHILD_ID_LABEL] == "route-config"]
    return {o["metadata"]["name"]: o for o in items}


def route_lbs(h: Harness, uid: str) -> set[str]:
    return {o["metadata"]["name"] for o in h.labelled(LB_API, "LB", uid)}


def writes(h: Harness, since: int) -> list[tuple[str, str, str | None]]:
    out = []
    for req, status in h.cluster.request_log.recent()[since:]:
        if req.verb in ("apply", "patch", "create", "update", "delete") and status < 300 \
                and req.resource in ("configmaps", "lbs") and req.subresource is None:
            out.append((req.verb, req.resource, req.name))
    return out


def test_route_children_follow_the_attached_routes(harness: Harness) -> None:
    h = harness
    ns = h.namespace
    h.set_blueprint(CHILDREN, ROUTE_CHILDREN)
    gw = h.create_gateway(finalizer=True)
    uid = gw["metadata"]["uid"]
    create_route(h, "a", hostnames=("a.example.com", "www.a.example.com"))
    create_route(h, "b")

    # route a attached: its children appear once the Gateway's ConfigMap they read is ready
    op = provision(h, gw, "a")
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    assert inventory(h, uid) == {"config", f"route-config@{ns}/a", f"route-lb@{ns}/a"}
    ctx = op.context or {}
    assert ctx["route_wanted"] == {f"{ns}/a": ["route-config", "route-lb"]}
    assert sorted(ctx["ready"]) == sorted(["config", f"route-config@{ns}/a", f"route-lb@{ns}/a"])
    cm = route_configs(h, uid)[f"edge-{ns}-a"]
    assert cm["data"] == {"gatewayHost": "shop.example.com",
                          "routeHosts": "a.example.com,www.a.example.com"}
    assert cm["metadata"]["annotations"][ROUTE_ANNOTATION] == f"{ns}/a"
    assert cm["metadata"]["labels"][GATEWAY_UID_LABEL] == uid
    assert [(r["kind"], r["uid"]) for r in cm["metadata"]["ownerReferences"]] == [("Gateway", uid)]
    assert route_lbs(h, uid) == {f"{ns}-a-lb"}
    rows = {record_key(r): r for r in h.store.list_children(uid)}
    lb_row = rows[f"route-lb@{ns}/a"]
    assert lb_row.route_key == f"{ns}/a" and lb_row.namespace is None and lb_row.ready
    assert lb_row.delete_order == 10

    # route b attached too: only b's children are written (a's are unchanged)
    start = len(h.cluster.request_log.recent())
    op = provision(h, gw, "a", "b")
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    assert set(route_configs(h, uid)) == {f"edge-{ns}-a", f"edge-{ns}-b"}
    assert route_lbs(h, uid) == {f"{ns}-a-lb", f"{ns}-b-lb"}
    assert sorted(writes(h, start)) == [("apply", "configmaps", f"edge-{ns}-b"),
                                        ("apply", "lbs", f"{ns}-b-lb")]

    # route a detached: its children are pruned (the cluster-scoped LB first), b's stay
    start = len(h.cluster.request_log.recent())
    op = provision(h, gw, "b")
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    assert sorted((op.context or {})["pruned"]) == [f"route-config@{ns}/a", f"route-lb@{ns}/a"]
    assert set(route_configs(h, uid)) == {f"edge-{ns}-b"}
    assert route_lbs(h, uid) == {f"{ns}-b-lb"}
    assert inventory(h, uid) == {"config", f"route-config@{ns}/b", f"route-lb@{ns}/b"}
    assert writes(h, start) == [("delete", "lbs", f"{ns}-a-lb"),
                                ("delete", "configmaps", f"edge-{ns}-a")]

    # route b deleted before the provision reads it: treated as detached
    h.kube.delete(GATEWAY_API, "HTTPRoute", "b", ns)
    op = provision(h, gw, "b")
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    assert route_configs(h, uid) == {} and route_lbs(h, uid) == set()
    assert inventory(h, uid) == {"config"}

    # teardown deletes the route children too: LBs (deleteOrder 10), then the route's
    # ConfigMap before the Gateway's ConfigMap it depends on
    create_route(h, "b")
    assert provision(h, gw, "a", "b").status is OperationStatus.SUCCEEDED
    h.kube.delete(GATEWAY_API, "Gateway", "edge", ns)
    start = len(h.cluster.request_log.recent())
    op = h.drive(h.start_teardown(gw).id)
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    deletes = [(r, n) for verb, r, n in writes(h, start) if verb == "delete"]
    assert sorted(deletes[:2]) == [("lbs", f"{ns}-a-lb"), ("lbs", f"{ns}-b-lb")]
    assert sorted(deletes[2:4]) == [("configmaps", f"edge-{ns}-a"),
                                    ("configmaps", f"edge-{ns}-b")]
    assert deletes[4:] == [("configmaps", "edge-config")]
    assert h.store.list_children(uid) == []
    assert route_configs(h, uid) == {} and route_lbs(h, uid) == set()
    assert h.kube.get(GATEWAY_API, "Gateway", "edge", ns) is None  # finalizer removed


def test_removing_the_route_templates_prunes_every_route_child(harness: Harness) -> None:
    h = harness
    ns = h.namespace
    h.set_blueprint(CHILDREN, ROUTE_CHILDREN)
    gw = h.create_gateway()
    uid = gw["metadata"]["uid"]
    create_route(h, "a")
    assert provision(h, gw, "a").status is OperationStatus.SUCCEEDED
    assert inventory(h, uid) == {"config", f"route-config@{ns}/a", f"route-lb@{ns}/a"}

    h.set_blueprint(CHILDREN, [c for c in ROUTE_CHILDREN if c["id"] != "route-lb"])
    op = provision(h, gw, "a")
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    assert (op.context or {})["pruned"] == [f"route-lb@{ns}/a"]
    assert route_lbs(h, uid) == set()

    h.set_blueprint(CHILDREN)  # no routeChildren at all
    op = provision(h, gw, "a")
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    assert inventory(h, uid) == {"config"} and route_configs(h, uid) == {}


def test_a_name_shared_by_two_routes_fails_naming_both(harness: Harness) -> None:
    h = harness
    ns = h.namespace
    shared = [{
        "id": "route-config",
        "template": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same-for-every-route}\n",
    }]
    h.set_blueprint(CHILDREN, shared)
    gw = h.create_gateway()
    create_route(h, "a")
    create_route(h, "b")
    op = provision(h, gw, "a", "b")
    assert op.status is OperationStatus.FAILED
    assert op.last_error is not None
    assert f"child 'route-config@{ns}/b'" in op.last_error
    assert f"already child 'route-config@{ns}/a'" in op.last_error
    assert "route.metadata.name" in op.last_error
    # a's object was not taken over
    cm = h.kube.get("v1", "ConfigMap", "same-for-every-route", ns)
    assert cm is not None and cm["metadata"]["annotations"][ROUTE_ANNOTATION] == f"{ns}/a"


def test_a_route_child_render_error_is_that_routes_alone(harness: Harness) -> None:
    """A route whose routeChildren fail to render does not fail the provision: the Gateway's
    and the other routes' children are applied, the error (route, child, field, path) is kept
    in the context for the route's status, and the route keeps its last rendered children."""
    h = harness
    ns = h.namespace
    tiered = [{
        "id": "route-config",
        "template": "apiVersion: v1\nkind: ConfigMap\n"
                    "metadata:\n"
                    "  name: '{{ route.metadata.name }}-{{ route.metadata.labels.tier }}'\n",
    }]
    h.set_blueprint(CHILDREN, tiered)
    gw = h.create_gateway(finalizer=True)
    uid = gw["metadata"]["uid"]
    for name in ("a", "b"):
        route = create_route(h, name)
        route["metadata"]["labels"] = {"tier": "gold"}
        h.kube.replace(route)
    op = provision(h, gw, "a", "b")
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    assert (op.context or {})["route_errors"] == {}
    assert inventory(h, uid) == {"config", f"route-config@{ns}/a", f"route-config@{ns}/b"}

    # b loses the label its children need: a's and the Gateway's children go on, b's are kept
    route = h.kube.get(GATEWAY_API, "HTTPRoute", "b", ns)
    assert route is not None
    route["metadata"]["labels"] = {}
    h.kube.replace(route)
    op = provision(h, gw, "a", "b")
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    errors = (op.context or {})["route_errors"]
    assert set(errors) == {f"{ns}/b"}
    assert "spec.routeChildren[route-config].template" in errors[f"{ns}/b"]
    assert "route.metadata.labels.tier is undefined" in errors[f"{ns}/b"]
    assert "| default(...)" in errors[f"{ns}/b"]
    assert inventory(h, uid) == {"config", f"route-config@{ns}/a", f"route-config@{ns}/b"}
    assert h.kube.get("v1", "ConfigMap", "b-gold", ns) is not None  # last good child kept
    assert h.kube.get("v1", "ConfigMap", "a-gold", ns) is not None

    # a route attached for the first time with an error gets nothing, the others go on
    create_route(h, "c")
    op = provision(h, gw, "a", "b", "c")
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    assert set((op.context or {})["route_errors"]) == {f"{ns}/b", f"{ns}/c"}
    assert inventory(h, uid) == {"config", f"route-config@{ns}/a", f"route-config@{ns}/b"}


def test_deletion_waves_order_route_children_per_route() -> None:
    bp = Blueprint.from_dict({"children": CHILDREN, "routeChildren": ROUTE_CHILDREN})

    def record(cid: str, route: str | None, order: int = 0) -> ChildRecord:
        return ChildRecord(gateway_uid="u", child_id=cid, api_version="v1", kind="K",
                           namespace=None, name=f"{cid}-{route}", uid=None, route_key=route,
                           applied_hash=None, ready=True, delete_order=order,
                           updated_at=datetime(2026, 1, 1, tzinfo=UTC))

    records = [record("config", None), record("route-config", "n/a"),
               record("route-config", "n/b"), record("route-lb", "n/a", 10),
               record("route-lb", "n/b", 10)]
    waves = [[record_key(r) for r in w] for w in deletion_waves(records, bp, {})]
    assert waves == [
        ["route-lb@n/a", "route-lb@n/b"],  # deleteOrder 10, both routes together
        ["route-config@n/a", "route-config@n/b"],  # depend on config
        ["config"],
    ]
    # same group: a route child waits for nothing of another route, and its sibling that
    # depends on it goes first
    flat = Blueprint.from_dict({"children": CHILDREN, "routeChildren": [
        {k: v for k, v in c.items() if k != "deleteOrder"} for c in ROUTE_CHILDREN]})
    same = [record("route-config", "n/a"), record("route-lb", "n/a"),
            record("route-config", "n/b")]
    assert [[record_key(r) for r in w] for w in deletion_waves(same, flat, {})] == [
        ["route-lb@n/a", "route-config@n/b"], ["route-config@n/a"],
    ]
