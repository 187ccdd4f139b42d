"""The pure and cache-only parts of :mod:`bifrost.controller.route_parents`, on FakeKube and an
informer cache fed by hand: which entries :func:`forget_gateway` removes and how a stale route
copy is handled; what :func:`route_render_errors` reads from the last provision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from support.builders import CONTROLLER_NAME, GATEWAY_API
from support.fake_kube import FakeKube

from bifrost.controller.gateway_view import GatewayView
from bifrost.controller.informers import Cache
from bifrost.controller.route_parents import forget_gateway, route_render_errors
from bifrost.records import OperationRecord, OperationStatus

NS = "apps"
OTHER = "example.net/other"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entry(controller: str, parent: str) -> dict[str, Any]:
    return {
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": parent},
        "controllerName": controller,
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                        "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    }


def seeded(kube: FakeKube, cache: Cache, name: str, *entries: dict[str, Any]) -> dict[str, Any]:
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube.create({"apiVersion": GATEWAY_API, "kind": "HTTPRoute",
                 "metadata": {"name": name, "namespace": NS},
                 "spec": {"parentRefs": [{"name": "web"}, {"name": "stays"}]}})
    route = kube.patch_status(GATEWAY_API, "HTTPRoute", name, NS, {"parents": list(entries)})
    cache.apply("HTTPRoute", "ADDED", route)
    return route


def names(kube: FakeKube, name: str) -> list[tuple[str, str]]:
    route = kube.get(GATEWAY_API, "HTTPRoute", name, NS) or {}
    return [(p["controllerName"], p["parentRef"]["name"])
            for p in (route.get("status") or {}).get("parents") or []]


def test_forget_gateway_removes_only_our_entries_for_that_gateway() -> None:
    kube, cache = FakeKube(), Cache()
    seeded(kube, cache, "r", entry(OTHER, "web"), entry(CONTROLLER_NAME, "web"),
           entry(CONTROLLER_NAME, "stays"))
    result = forget_gateway(cache, kube, NS, "web", controller_name=CONTROLLER_NAME)
    assert (result.written, result.conflicts) == (1, 0)
    assert names(kube, "r") == [(OTHER, "web"), (CONTROLLER_NAME, "stays")]
    # the cache catches up (watch event): nothing left to remove, nothing written
    cache.apply("HTTPRoute", "MODIFIED", kube.get(GATEWAY_API, "HTTPRoute", "r", NS) or {})
    calls = len(kube.calls)
    result = forget_gateway(cache, kube, NS, "web", controller_name=CONTROLLER_NAME)
    assert (result.written, result.conflicts) == (0, 0) and len(kube.calls) == calls


def test_forget_gateway_on_a_stale_copy_writes_nothing_and_says_so() -> None:
    kube, cache = FakeKube(), Cache()
    seeded(kube, cache, "r", entry(CONTROLLER_NAME, "web"))
    # someone else writes the route after the cache saw it
    kube.patch_status(GATEWAY_API, "HTTPRoute", "r", NS,
                      {"parents": [entry(CONTROLLER_NAME, "web"), entry(OTHER, "web")]})
    result = forget_gateway(cache, kube, NS, "web", controller_name=CONTROLLER_NAME)
    assert (result.written, result.conflicts) == (0, 1)
    assert names(kube, "r") == [(CONTROLLER_NAME, "web"), (OTHER, "web")]


def provision(context: dict[str, Any] | None) -> OperationRecord:
    return OperationRecord(
        id=1, gateway_uid="u", namespace=NS, name="web", machine="provision",
        machine_version=1, lane="default", state="done", status=OperationStatus.SUCCEEDED,
        context=context, context_raw="{}", step=None, attempt=0, next_run_at=None,
        lease_owner=None, lease_expires_at=None, version=1, last_error=None,
        created_at=T0, updated_at=T0, finished_at=T0)


def test_route_render_errors_come_from_the_observed_gateways_last_provision() -> None:
    gateway = {"metadata": {"name": "web", "namespace": NS}}
    route = {"metadata": {"name": "r", "namespace": NS}}
    other = {"metadata": {"name": "ok", "namespace": NS}}

    def view(op: OperationRecord | None) -> GatewayView:
        return GatewayView(gateway, None, op, Cache(), provision=op)

    assert route_render_errors(view(None), route) == {}
    assert route_render_errors(view(provision({"route_errors": None})), route) == {}
    errors = {"route_errors": {f"{NS}/r": "cannot render: x is undefined"}}
    assert route_render_errors(view(provision(errors)), route) == {
        (NS, "web"): "cannot render: x is undefined"}
    assert route_render_errors(view(provision(errors)), other) == {(NS, "web"): None}
