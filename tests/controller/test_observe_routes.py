"""Which HTTPRoutes observe hands to provision (no API server; the cache is filled by hand): the
attached ones only — the same decision as route status and ``attachedRoutes`` — sorted, and
only when the blueprint has ``routeChildren``; the input hash follows their keys and generations
but not their status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from controller_kit import blueprint
from support.builders import gateway, gateway_class

from bifrost.clock import ManualClock
from bifrost.controller.informers import Cache, CachedNamespaceLabels
from bifrost.controller.observe import Observer
from bifrost.kube.client import KubeClient
from bifrost.machines.provision import ProvisionContext, provision_spec
from bifrost.machines.registry import MachineRegistry
from bifrost.status import attached_routes
from bifrost.store.interface import OperationStore
from bifrost.triggers.context import gateway_candidate

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SHADOW = {"id": "shadow", "template": "apiVersion: v1\nkind: ConfigMap\n"
          "metadata: {name: '{{ route.metadata.name }}'}\n"}


def _obj(raw: dict[str, Any], *, generation: int = 1, uid: str = "u1") -> dict[str, Any]:
    raw = dict(raw)
    raw["metadata"] = {**raw["metadata"], "uid": uid, "generation": generation,
                       "resourceVersion": "1", "creationTimestamp": "2026-01-01T00:00:00Z"}
    return raw


def _route(ns: str, name: str, parent: dict[str, Any], *, generation: int = 1,
           hostnames: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"parentRefs": [parent]}
    if hostnames is not None:
        spec["hostnames"] = hostnames
    return _obj({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                 "metadata": {"name": name, "namespace": ns}, "spec": spec},
                generation=generation, uid=f"r-{ns}-{name}")


@pytest.fixture
def cache() -> Cache:
    c = Cache()
    c.apply("GatewayClass", "ADDED", _obj(gateway_class("edge", "edge-bp")))
    bp = blueprint("edge-bp")
    bp["spec"]["routeChildren"] = [SHADOW]
    c.apply("GatewayClassBlueprint", "ADDED", _obj(bp))
    c.apply("GatewayClass", "ADDED", _obj(gateway_class("plain", "plain-bp")))
    c.apply("GatewayClassBlueprint", "ADDED", _obj(blueprint("plain-bp")))
    for ns, labels in (("shop", {}), ("team", {"routes": "yes"}), ("other", {})):
        c.apply("Namespace", "ADDED", {"kind": "Namespace",
                                       "metadata": {"name": ns, "labels": labels}})
    listeners = [
        {"name": "http", "protocol": "HTTP", "port": 80, "hostname": "*.shop.example",
         "allowedRoutes": {"namespaces": {"from": "Selector",
                                          "selector": {"matchLabels": {"routes": "yes"}}}}},
        {"name": "local", "protocol": "HTTP", "port": 8080},  # from: Same
    ]
    c.apply("Gateway", "ADDED", _obj(gateway("shop", "a", "edge", listeners=listeners)))
    c.apply("Gateway", "ADDED", _obj(gateway("shop", "p", "plain"), uid="u2"))
    return c


@pytest.fixture
def observer(cache: Cache) -> Observer:
    return Observer(cache=cache, kube=cast(KubeClient, None), store=cast(OperationStore, None),
                    registry=MachineRegistry(), clock=ManualClock(NOW), actor="test")


def _keys(routes: list[dict[str, Any]]) -> list[str]:
    return [f"{r['metadata']['namespace']}/{r['metadata']['name']}" for r in routes]


def test_attached_routes_are_the_ones_route_status_accepts(cache: Cache,
                                                          observer: Observer) -> None:
    routes = [
        _route("shop", "same-ns", {"name": "a"}),  # the "local" listener (Same)
        _route("team", "selected", {"name": "a", "namespace": "shop", "sectionName": "http"},
               hostnames=["www.shop.example"]),
        _route("team", "wrong-host", {"name": "a", "namespace": "shop", "sectionName": "http"},
               hostnames=["www.elsewhere.example"]),
        _route("other", "not-selected", {"name": "a", "namespace": "shop"}),
        _route("shop", "no-section", {"name": "a", "sectionName": "nope"}),
        _route("shop", "another-gateway", {"name": "p"}),
    ]
    for r in routes:
        cache.apply("HTTPRoute", "ADDED", r)
    gw = cast(dict[str, Any], cache.get("Gateway", "shop", "a"))
    res = observer.resolve_class(cast(dict[str, Any], cache.get("GatewayClass", "", "edge")))
    attached = observer.attached_routes(gw, res)
    assert _keys(attached) == ["shop/same-ns", "team/selected"]
    # the status writer counts exactly these on the listeners
    counts = attached_routes(gw, cache.routes_for_gateway("shop", "a"),
                             namespace_labels=CachedNamespaceLabels(cache))
    assert counts == {"http": 1, "local": 1}

    # the provision context carries them sorted, as namespace/name
    candidate = gateway_candidate(gw, "u1", "edge-bp", {}, attached)
    context = ProvisionContext.model_validate(
        {k: v for k, v in candidate.items() if k in ProvisionContext.model_fields})
    assert context.routes == ("shop/same-ns", "team/selected")
    assert provision_spec().context_model is ProvisionContext

    # the Gateway's own route child attached back to it (a shadow route) begets nothing
    shadow = _route("shop", "a-shadow", {"name": "a"})
    shadow["metadata"]["labels"] = {"gateway.bifrost.dev/gateway-uid": "u1"}
    cache.apply("HTTPRoute", "ADDED", shadow)
    assert _keys(observer.attached_routes(gw, res)) == ["shop/same-ns", "team/selected"]

    # a route being deleted no longer counts
    gone = _route("shop", "same-ns", {"name": "a"})
    gone["metadata"]["deletionTimestamp"] = "2026-11-25T12:00:00Z"
    cache.apply("HTTPRoute", "MODIFIED", gone)
    assert _keys(observer.attached_routes(gw, res)) == ["team/selected"]


def test_routes_matter_only_with_route_children(cache: Cache, observer: Observer) -> None:
    cache.apply("HTTPRoute", "ADDED", _route("shop", "r", {"name": "p"}))
    gw = cast(dict[str, Any], cache.get("Gateway", "shop", "p"))
    res = observer.resolve_class(cast(dict[str, Any], cache.get("GatewayClass", "", "plain")))
    assert observer.attached_routes(gw, res) == []
    before = observer.input_hash(gw, res, {})
    cache.apply("HTTPRoute", "MODIFIED", _route("shop", "r", {"name": "p"}, generation=2))
    assert observer.input_hash(gw, res, {}) == before


def test_input_hash_follows_attachment_and_route_generation(cache: Cache,
                                                            observer: Observer) -> None:
    gw = cast(dict[str, Any], cache.get("Gateway", "shop", "a"))
    res = observer.resolve_class(cast(dict[str, Any], cache.get("GatewayClass", "", "edge")))
    none = observer.input_hash(gw, res, {})
    cache.apply("HTTPRoute", "ADDED", _route("shop", "r", {"name": "a"}))
    one = observer.input_hash(gw, res, {})
    assert one != none
    # status written on the route (no new generation): same hash
    with_status = _route("shop", "r", {"name": "a"})
    with_status["metadata"]["resourceVersion"] = "9"
    with_status["status"] = {"parents": [{"controllerName": "gateway.bifrost.dev/bifrost"}]}
    cache.apply("HTTPRoute", "MODIFIED", with_status)
    assert observer.input_hash(gw, res, {}) == one
    # spec edited: new generation, new hash
    cache.apply("HTTPRoute", "MODIFIED", _route("shop", "r", {"name": "a"}, generation=2))
    two = observer.input_hash(gw, res, {})
    assert two not in (none, one)
    # detached (sectionName matches no listener): back to the route-less hash
    cache.apply("HTTPRoute", "MODIFIED",
                _route("shop", "r", {"name": "a", "sectionName": "nope"}, generation=3))
    assert observer.input_hash(gw, res, {}) == none
