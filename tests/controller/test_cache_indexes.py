"""The informer cache's indexes map each watch event to exactly the affected work keys."""

from __future__ import annotations

from typing import Any

import pytest

from bifrost.controller.informers import (
    Cache,
    WorkKey,
    blueprint_key,
    class_key,
    gateway_key,
    policy_key,
)

GW = "gateway.networking.k8s.io/v1"
BF = "gateway.bifrost.dev/v1alpha1"
OURS = "gateway.bifrost.dev/bifrost"


def obj(
    kind: str, name: str, namespace: str | None = None, spec: Any = None, **meta: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "uid": f"uid-{kind}-{namespace}-{name}", **meta}
    if namespace:
        metadata["namespace"] = namespace
    out: dict[str, Any] = {"kind": kind, "metadata": metadata}
    if spec is not None:
        out["spec"] = spec
    return out


def klass(name: str, blueprint: str | None = None, controller: str = OURS) -> dict[str, Any]:
    spec: dict[str, Any] = {"controllerName": controller}
    if blueprint:
        spec["parametersRef"] = {
            "group": "gateway.bifrost.dev",
            "kind": "GatewayClassBlueprint",
            "name": blueprint,
        }
    return obj("GatewayClass", name, spec=spec)


def gw(
    ns: str, name: str, cls: str, secrets: tuple[tuple[str | None, str], ...] = ()
) -> dict[str, Any]:
    refs = [{"name": s, **({"namespace": n} if n else {})} for n, s in secrets]
    listeners: list[dict[str, Any]] = [{"name": "http", "protocol": "HTTP", "port": 80}]
    if refs:
        listeners.append(
            {"name": "https", "protocol": "HTTPS", "port": 443, "tls": {"certificateRefs": refs}}
        )
    return obj("Gateway", name, ns, {"gatewayClassName": cls, "listeners": listeners})


def route(ns: str, name: str, *parents: tuple[str | None, str]) -> dict[str, Any]:
    refs = [{"name": p, **({"namespace": n} if n else {})} for n, p in parents]
    return obj("HTTPRoute", name, ns, {"parentRefs": refs})


def policy(kind: str, ns: str, name: str, target_kind: str, target: str) -> dict[str, Any]:
    group = "" if target_kind == "Namespace" else "gateway.networking.k8s.io"
    return obj(kind, name, ns, {"targetRef": {"group": group, "kind": target_kind, "name": target}})


@pytest.fixture
def cache() -> Cache:
    c = Cache()
    c.apply("GatewayClass", "ADDED", klass("edge", "edge-bp"))
    c.apply("GatewayClass", "ADDED", klass("mesh", "mesh-bp"))
    c.apply("GatewayClass", "ADDED", klass("other", "edge-bp", controller="example.com/x"))
    c.apply("Gateway", "ADDED", gw("shop", "a", "edge", secrets=((None, "a-tls"),)))
    c.apply("Gateway", "ADDED", gw("shop", "b", "edge", secrets=(("certs", "shared"),)))
    c.apply("Gateway", "ADDED", gw("blog", "c", "mesh", secrets=(("certs", "shared"),)))
    c.apply("Gateway", "ADDED", gw("blog", "d", "other", secrets=(("certs", "shared"),)))
    return c


A, B, C = gateway_key("shop", "a"), gateway_key("shop", "b"), gateway_key("blog", "c")


def test_secret_event_enqueues_the_gateways_that_reference_it(cache: Cache) -> None:
    assert cache.apply("Secret", "MODIFIED", obj("Secret", "a-tls", "shop")) == {A}
    # d references it too but belongs to another controller
    assert cache.apply("Secret", "ADDED", obj("Secret", "shared", "certs")) == {B, C}
    assert cache.apply("Secret", "ADDED", obj("Secret", "unrelated", "shop")) == set()
    assert cache.apply("Secret", "DELETED", obj("Secret", "shared", "certs")) == {B, C}


def test_blueprint_event_enqueues_its_classes_and_their_gateways(cache: Cache) -> None:
    # ... and the blueprint itself (for its own status)
    bp = obj("GatewayClassBlueprint", "edge-bp", spec={"children": []})
    assert cache.apply("GatewayClassBlueprint", "MODIFIED", bp) == {
        class_key("edge"), A, B, blueprint_key("edge-bp"),
    }
    mesh = obj("GatewayClassBlueprint", "mesh-bp", spec={"children": []})
    assert cache.apply("GatewayClassBlueprint", "ADDED", mesh) == {
        class_key("mesh"), C, blueprint_key("mesh-bp"),
    }
    nobody = obj("GatewayClassBlueprint", "unused", spec={"children": []})
    assert cache.apply("GatewayClassBlueprint", "ADDED", nobody) == {blueprint_key("unused")}


def test_class_event_enqueues_the_class_and_its_gateways(cache: Cache) -> None:
    # ... and the blueprints it refers to (before and after), whose Accepted depends on it
    assert cache.apply("GatewayClass", "MODIFIED", klass("edge", "edge-bp")) == {
        class_key("edge"),
        A,
        B,
        blueprint_key("edge-bp"),
    }
    assert cache.apply(
        "GatewayClass", "MODIFIED", klass("other", "x", controller="example.com/x")
    ) == {blueprint_key("edge-bp"), blueprint_key("x")}
    # re-pointing a class at another blueprint moves it in the blueprint index
    cache.apply("GatewayClass", "MODIFIED", klass("edge", "new-bp"))
    assert cache.classes_for_blueprint("edge-bp") == set()
    assert cache.classes_for_blueprint("x") == {"other"}
    assert cache.classes_for_blueprint("new-bp") == {"edge"}


P1 = policy_key("GatewayClassConfig", "bifrost-system", "p1")
P2 = policy_key("GatewayConfig", "blog", "p2")
P3 = policy_key("GatewayConfig", "shop", "p3")


def test_policy_event_enqueues_the_gateways_of_its_target(cache: Cache) -> None:
    # ... and the policy itself (for its own status)
    by_class = policy("GatewayClassConfig", "bifrost-system", "p1", "GatewayClass", "edge")
    assert cache.apply("GatewayClassConfig", "ADDED", by_class) == {A, B, P1}
    by_ns = policy("GatewayConfig", "blog", "p2", "Namespace", "blog")
    assert cache.apply("GatewayConfig", "ADDED", by_ns) == {C, P2}
    by_gw = policy("GatewayConfig", "shop", "p3", "Gateway", "b")
    assert cache.apply("GatewayConfig", "ADDED", by_gw) == {B, P3}
    # retargeting wakes the old and the new target
    moved = policy("GatewayConfig", "shop", "p3", "Gateway", "a")
    assert cache.apply("GatewayConfig", "MODIFIED", moved) == {A, B, P3}
    assert cache.apply("GatewayConfig", "DELETED", moved) == {A, P3}
    assert [p["metadata"]["name"] for p in cache.policies_for("GatewayClass", "", "edge")] == ["p1"]


def test_policy_status_keys(cache: Cache) -> None:
    """A policy's attachment depends on the policies of its target (who wins a conflict) and on
    the target: its existence, and for GatewayClasses and Gateways whether bifrost manages it."""
    cache.apply("GatewayConfig", "ADDED", policy("GatewayConfig", "shop", "p3", "Gateway", "b"))
    # a rival on the same target wakes both; deleting the winner wakes the one left
    rival = policy("GatewayConfig", "shop", "p4", "Gateway", "b")
    p4 = policy_key("GatewayConfig", "shop", "p4")
    assert cache.apply("GatewayConfig", "ADDED", rival) == {B, P3, p4}
    assert cache.apply("GatewayConfig", "DELETED", rival) == {B, P3, p4}
    # the target Gateway: created, deleted or moved to another class — not on other changes
    assert cache.apply("Gateway", "MODIFIED", gw("shop", "b", "edge")) == {B}
    assert cache.apply("Gateway", "MODIFIED", gw("shop", "b", "mesh")) == {B, P3}
    assert cache.apply("Gateway", "DELETED", gw("shop", "b", "mesh")) == {B, P3}
    assert cache.apply("Gateway", "ADDED", gw("shop", "b", "edge")) == {B, P3}
    # the target Gateway's class changes hands
    assert P3 in cache.apply("GatewayClass", "MODIFIED", klass("edge", "edge-bp", "example.com/x"))
    assert P3 not in cache.apply("GatewayClass", "MODIFIED", klass("edge", "bp2", "example.com/x"))
    # a class-wide policy: its class changes; a namespace policy: its namespace comes or goes
    cache.apply("GatewayClassConfig", "ADDED",
                policy("GatewayClassConfig", "bifrost-system", "p1", "GatewayClass", "mesh"))
    assert P1 in cache.apply("GatewayClass", "MODIFIED", klass("mesh", "mesh-bp"))
    by_ns = policy("GatewayConfig", "blog", "p2", "Namespace", "blog")
    cache.apply("GatewayConfig", "ADDED", by_ns)
    assert P2 in cache.apply("Namespace", "ADDED", obj("Namespace", "blog"))
    assert P2 not in cache.apply("Namespace", "MODIFIED", obj("Namespace", "blog"))
    assert P2 in cache.apply("Namespace", "DELETED", obj("Namespace", "blog"))


def test_route_event_enqueues_old_and_new_parents(cache: Cache) -> None:
    r = route("shop", "r1", (None, "a"))
    assert cache.apply("HTTPRoute", "ADDED", r) == {A}
    moved = route("shop", "r1", (None, "b"), ("blog", "c"))
    assert cache.apply("HTTPRoute", "MODIFIED", moved) == {A, B, C}
    assert [x["metadata"]["name"] for x in cache.routes_for_gateway("blog", "c")] == ["r1"]
    assert cache.routes_for_gateway("shop", "a") == []
    assert cache.apply("HTTPRoute", "DELETED", moved) == {B, C}
    # parentRefs to other kinds are not Gateways
    svc = obj(
        "HTTPRoute", "mesh", "shop", {"parentRefs": [{"kind": "Service", "group": "", "name": "a"}]}
    )
    assert cache.apply("HTTPRoute", "ADDED", svc) == set()


def test_namespace_and_grant_events(cache: Cache) -> None:
    cache.apply("HTTPRoute", "ADDED", route("blog", "r", ("shop", "a")))
    # a namespace's labels feed allowedRoutes: its gateways and the gateways its routes target
    assert cache.apply("Namespace", "MODIFIED", obj("Namespace", "blog")) == {A, C}
    # a grant in `certs` matters to gateways with certificates there
    grant = obj("ReferenceGrant", "g", "certs", {"from": [], "to": []})
    assert cache.apply("ReferenceGrant", "ADDED", grant) == {B, C}
    grant_from_blog = obj(
        "ReferenceGrant",
        "g2",
        "backends",
        {"from": [{"group": GW.split("/")[0], "kind": "HTTPRoute", "namespace": "blog"}], "to": []},
    )
    assert cache.apply("ReferenceGrant", "ADDED", grant_from_blog) == {A}


def test_gateway_events_only_for_gateways_bifrost_is_responsible_for(cache: Cache) -> None:
    assert cache.apply("Gateway", "MODIFIED", gw("shop", "a", "edge")) == {A}
    assert cache.apply("Gateway", "ADDED", gw("blog", "x", "other")) == set()
    # a Gateway with our finalizer is ours even after its class changed hands
    stray = gw("blog", "y", "other")
    stray["metadata"]["finalizers"] = ["gateway.bifrost.dev/finalizer"]
    assert cache.apply("Gateway", "MODIFIED", stray) == {gateway_key("blog", "y")}
    # the secret index forgot a's old certificate when its listeners changed
    assert cache.apply("Secret", "MODIFIED", obj("Secret", "a-tls", "shop")) == set()
    assert cache.gateways_of_class("edge") == {A, B}


def test_work_keys_for_resync(cache: Cache) -> None:
    keys: set[WorkKey] = cache.work_keys()
    assert keys == {class_key("edge"), class_key("mesh"), A, B, C}
    # every policy and every blueprint, for their own status
    cache.apply("GatewayConfig", "ADDED", policy("GatewayConfig", "shop", "p3", "Gateway", "zz"))
    cache.apply("GatewayClassBlueprint", "ADDED", obj("GatewayClassBlueprint", "unused"))
    assert cache.work_keys() == keys | {P3, blueprint_key("unused")}
