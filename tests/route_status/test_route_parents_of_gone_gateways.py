"""Issue #14 item 4 (the HTTPRoute half), on the devcluster with the in-process controller:
after a Gateway is deleted (teardown done, finalizer gone) its HTTPRoutes no longer carry
bifrost's ``status.parents`` entry for it; a route whose parentRef stops selecting one of
bifrost's Gateways loses that entry too. Only bifrost's entries for that Gateway go: other
controllers' entries (even for the same Gateway) and other parents stay."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from route_status_kit import CONFIG, bifrost_class, parents
from support.builders import CONTROLLER_NAME, GATEWAY_API, gateway
from support.editing import edit
from support.waiting import wait_for

from bifrost.controller.manager import Controller
from bifrost.kube import KubeClient

TIMEOUT = 30.0
OTHER = "example.net/other-controller"


def entry(controller: str, parent: str, namespace: str) -> dict[str, Any]:
    """A ``status.parents`` entry as another controller (or a stale bifrost) would write it."""
    return {
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                      "namespace": namespace, "name": parent},
        "controllerName": controller,
        "conditions": [{
            "type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
            "observedGeneration": 1,
            "lastTransitionTime": datetime(2026, 1, 1, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }],
    }


def route(kube: KubeClient, namespace: str, name: str, *gateways: str,
          status: list[dict[str, Any]] | None = None) -> None:
    kube.create({
        "apiVersion": GATEWAY_API, "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"parentRefs": [{"name": g} for g in gateways]},
    })
    if status is not None:
        kube.patch_status(GATEWAY_API, "HTTPRoute", name, namespace, {"parents": status})


def foreign_class(kube: KubeClient, name: str) -> None:
    kube.create({"apiVersion": GATEWAY_API, "kind": "GatewayClass", "metadata": {"name": name},
                 "spec": {"controllerName": OTHER}})


def test_a_deleted_gateways_entries_leave_its_routes(
    kube: KubeClient, namespace: str, controller: Controller
) -> None:
    ns = namespace
    cls = bifrost_class(kube, [CONFIG])
    # only: names just the Gateway that goes (another controller has an entry for it too);
    # both: also a Gateway that stays
    route(kube, ns, "only", "web", "theirs",
          status=[entry(OTHER, "theirs", ns), entry(OTHER, "web", ns)])
    route(kube, ns, "both", "web", "stays")
    kube.create(gateway(ns, "web", cls))
    kube.create(gateway(ns, "stays", cls))
    wait_for(lambda: parents(kube, ns, "only") == [
        (OTHER, "theirs", "True", "Accepted"), (OTHER, "web", "True", "Accepted"),
        (CONTROLLER_NAME, "web", "True", "Accepted")] or None,
        timeout=TIMEOUT, what="route 'only' accepted by web, the foreign entries kept")
    wait_for(lambda: parents(kube, ns, "both") == [
        (CONTROLLER_NAME, "web", "True", "Accepted"),
        (CONTROLLER_NAME, "stays", "True", "Accepted")] or None,
        timeout=TIMEOUT, what="route 'both' accepted by web and stays")

    kube.delete(GATEWAY_API, "Gateway", "web", ns)
    wait_for(lambda: kube.get(GATEWAY_API, "Gateway", "web", ns) is None, timeout=TIMEOUT,
             what="Gateway web torn down and gone")
    wait_for(lambda: parents(kube, ns, "only") == [
        (OTHER, "theirs", "True", "Accepted"), (OTHER, "web", "True", "Accepted")] or None,
        timeout=TIMEOUT, what="bifrost's entry for web removed, the other controller's kept")
    wait_for(lambda: parents(kube, ns, "both") == [
        (CONTROLLER_NAME, "stays", "True", "Accepted")] or None,
        timeout=TIMEOUT, what="only the entry for the remaining Gateway left")


def test_entries_for_a_gateway_that_is_not_bifrosts_leave_the_route(
    kube: KubeClient, namespace: str, controller: Controller
) -> None:
    ns = namespace
    cls = bifrost_class(kube, [CONFIG])
    foreign = f"foreign-{ns}"
    foreign_class(kube, foreign)
    kube.create(gateway(ns, "plain", foreign))
    kube.create(gateway(ns, "web", cls))
    # a stale entry of bifrost's for a Gateway of another controller (e.g. left from before
    # the Gateway moved to that class): it goes; the other controller's stays
    route(kube, ns, "stale", "plain",
          status=[entry(OTHER, "plain", ns), entry(CONTROLLER_NAME, "plain", ns)])
    wait_for(lambda: parents(kube, ns, "stale") == [(OTHER, "plain", "True", "Accepted")] or None,
             timeout=TIMEOUT, what="bifrost's stale entry for the foreign Gateway removed")

    # a route moved from bifrost's Gateway to the foreign one loses bifrost's entry
    route(kube, ns, "moved", "web")
    wait_for(lambda: parents(kube, ns, "moved") == [
        (CONTROLLER_NAME, "web", "True", "Accepted")] or None,
        timeout=TIMEOUT, what="route 'moved' accepted by web")
    edit(kube, GATEWAY_API, "HTTPRoute", "moved", ns,
         lambda obj: obj["spec"].update(parentRefs=[{"name": "plain"}]))
    wait_for(lambda: parents(kube, ns, "moved") == [] or None, timeout=TIMEOUT,
             what="bifrost's entry removed once the parentRef names a foreign Gateway")
