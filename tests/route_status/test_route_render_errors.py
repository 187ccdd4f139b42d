"""Issue #14 items 8 and 9, on the devcluster with the in-process controller.

Item 9: a route whose ``routeChildren`` fail to render is reported on that HTTPRoute's
``status.parents`` (``Accepted=False``/``UnsupportedValue``, the render error as message); the
Gateway's own children and the other routes' children are applied and the Gateway is
Programmed; fixing the route brings its children and ``Accepted=True``.

Item 8: a template that uses a missing value fails the Gateway's provision with a message that
names the variable path, the child and the fix — not a serialisation error."""

from __future__ import annotations

from typing import Any

from route_status_kit import ADDRESSES, CONFIG, accepted_message, bifrost_class, condition, parents
from support.builders import CONTROLLER_NAME, GATEWAY_API, gateway
from support.editing import edit
from support.waiting import wait_for

from bifrost.controller.manager import Controller
from bifrost.kube import KubeClient
from bifrost.steps.ownership import GATEWAY_UID_LABEL

TIMEOUT = 30.0

TIERED = {
    "id": "tiered",
    "template": "apiVersion: v1\nkind: ConfigMap\n"
                "metadata:\n"
                "  name: '{{ route.metadata.name }}-route'\n"
                "data:\n"
                "  host: '{{ route.spec.hostnames[0] }}'\n",
}


def route(kube: KubeClient, namespace: str, name: str, hostnames: list[str]) -> None:
    kube.create({
        "apiVersion": GATEWAY_API, "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"parentRefs": [{"name": "web"}], "hostnames": hostnames},
    })


def route_children(kube: KubeClient, namespace: str, uid: str) -> dict[str, dict[str, Any]]:
    items, _ = kube.list("v1", "ConfigMap", namespace, label_selector=f"{GATEWAY_UID_LABEL}={uid}")
    return {o["metadata"]["name"]: o for o in items if o["metadata"]["name"].endswith("-route")}


def test_a_route_that_cannot_be_rendered_is_reported_on_that_route_alone(
    kube: KubeClient, namespace: str, controller: Controller
) -> None:
    ns = namespace
    cls = bifrost_class(kube, [CONFIG], routeChildren=[TIERED], addresses=ADDRESSES)
    route(kube, ns, "good", ["good.example.com"])
    route(kube, ns, "bad", [])
    uid = kube.create(gateway(ns, "web", cls))["metadata"]["uid"]

    wait_for(lambda: parents(kube, ns, "bad") == [
        (CONTROLLER_NAME, "web", "False", "UnsupportedValue")] or None,
        timeout=TIMEOUT, what="route 'bad' not accepted: its children cannot be rendered")
    message = accepted_message(kube, ns, "bad", "web")
    assert "spec.routeChildren[tiered].template" in message
    assert "route.spec.hostnames[0] is undefined" in message
    assert "| default(...)" in message
    wait_for(lambda: parents(kube, ns, "good") == [
        (CONTROLLER_NAME, "web", "True", "Accepted")] or None,
        timeout=TIMEOUT, what="route 'good' accepted")
    wait_for(lambda: condition(kube, ns, "web", "Programmed").get("status") == "True",
             timeout=TIMEOUT, what=lambda: "the Gateway programmed despite route 'bad': "
             + str(condition(kube, ns, "web", "Programmed")))
    assert set(route_children(kube, ns, uid)) == {"good-route"}
    assert kube.get("v1", "ConfigMap", "web-config", ns) is not None
    # the route's status is the route's own: it does not flap back while nothing changes
    assert parents(kube, ns, "bad") == [(CONTROLLER_NAME, "web", "False", "UnsupportedValue")]

    # the route is fixed: its child appears and it is accepted
    edit(kube, GATEWAY_API, "HTTPRoute", "bad", ns,
         lambda bad: bad["spec"].update(hostnames=["bad.example.com"]))
    wait_for(lambda: set(route_children(kube, ns, uid)) == {"good-route", "bad-route"} or None,
             timeout=TIMEOUT, what="the fixed route's child applied")
    wait_for(lambda: parents(kube, ns, "bad") == [
        (CONTROLLER_NAME, "web", "True", "Accepted")] or None,
        timeout=TIMEOUT, what="the fixed route accepted")
    assert route_children(kube, ns, uid)["bad-route"]["data"] == {"host": "bad.example.com"}


def test_a_missing_value_names_its_path_the_child_and_the_fix(
    kube: KubeClient, namespace: str, controller: Controller
) -> None:
    ns = namespace
    cls = bifrost_class(kube, [{
        "id": "lb",
        "template": "apiVersion: v1\nkind: ConfigMap\n"
                    "metadata: {name: '{{ gateway.metadata.name }}-lb'}\n"
                    "data:\n"
                    "  address: '{{ gateway.spec.addresses[0].value }}'\n"
                    "  tier: '{{ values.tier }}'\n",
    }])
    kube.create(gateway(ns, "web", cls))

    def failed() -> str | None:
        c = condition(kube, ns, "web", "Programmed")
        return str(c["message"]) if c.get("status") == "False" and \
            "cannot render" in str(c.get("message")) else None

    message = wait_for(failed, timeout=TIMEOUT, what="the Gateway's provision failed to render")
    assert "child 'lb' (spec.children[lb].template, line 5)" in message, message
    assert "gateway.spec.addresses[0].value is undefined" in message
    assert "| default(...)" in message
    assert "StrictChainableUndefined" not in message and "TypeError" not in message
