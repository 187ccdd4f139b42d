"""Issue #14 item 1 on the devcluster: a Gateway's ``spec.infrastructure.parametersRef``.

A reference to a GatewayConfig that does not exist, or to a kind bifrost does not accept (a
ConfigMap), makes the Gateway ``Accepted=False``/``InvalidParameters`` (the Gateway API
conformance expectation) and nothing is provisioned; creating the GatewayConfig it names (its
targetRef on the Gateway) accepts the Gateway and renders the child with its values, and editing
that GatewayConfig re-renders the child (the informers index the Gateway by the config it
names)."""

from __future__ import annotations

from typing import Any

from acceptance_kit import (
    TIMEOUT,
    child,
    gw,
    listener_conditions,
    new_class,
    operations,
    wait_condition,
)
from support.builders import BIFROST_API, gateway
from support.editing import edit
from support.waiting import wait_for

from bifrost.controller.manager import Controller
from bifrost.kube.client import KubeClient
from bifrost.store import SqlStore


def _with_parameters(ns: str, class_name: str, *, kind: str, name: str,
                     group: str = "gateway.bifrost.dev") -> dict[str, Any]:
    body = gateway(ns, "edge", class_name)
    body["spec"]["infrastructure"] = {
        "parametersRef": {"group": group, "kind": kind, "name": name}}
    return body


def _config(ns: str, name: str, tier: str) -> dict[str, Any]:
    return {
        "apiVersion": BIFROST_API, "kind": "GatewayConfig",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                               "name": "edge"},
                 "default": {"tier": tier}},
    }


def test_a_missing_gateway_config_is_invalid_parameters_until_it_exists(
    kube: KubeClient, running: Controller, store: SqlStore, namespace: str
) -> None:
    class_name = new_class(kube)
    uid = kube.create(_with_parameters(namespace, class_name, kind="GatewayConfig",
                                       name="edge-params"))["metadata"]["uid"]
    accepted = wait_condition(kube, namespace, "Accepted", "False", "InvalidParameters")
    assert "spec.infrastructure.parametersRef" in accepted["message"]
    assert 'GatewayConfig "' + namespace + '/edge-params" not found' in accepted["message"]
    programmed = wait_condition(kube, namespace, "Programmed", "False", "Invalid")
    assert "no children are created" in programmed["message"]
    # The listeners say why nothing is programmed, not that a provision is coming.
    listener = listener_conditions(gw(kube, namespace), "http")["Programmed"]
    assert (listener["status"], listener["reason"]) == ("False", "Invalid")
    assert "not found" in listener["message"]
    assert child(kube, namespace) is None and operations(store, str(uid)) == []

    kube.create(_config(namespace, "edge-params", "gold"))
    wait_condition(kube, namespace, "Accepted", "True", "Accepted")
    wait_for(lambda: (c := child(kube, namespace)) is not None
             and c["data"]["tier"] == "gold",
             what="the child rendered with the referenced GatewayConfig's value",
             timeout=TIMEOUT)
    wait_condition(kube, namespace, "Programmed", "True", "Programmed")

    # Editing the referenced config re-renders the child.
    edit(kube, BIFROST_API, "GatewayConfig", "edge-params", namespace,
         lambda live: live["spec"].update(default={"tier": "silver"}))
    wait_for(lambda: (c := child(kube, namespace)) is not None
             and c["data"]["tier"] == "silver",
             what="the child re-rendered after the GatewayConfig changed", timeout=TIMEOUT)


def test_the_referenced_config_wins_over_an_older_one_targeting_the_gateway(
    kube: KubeClient, running: Controller, namespace: str
) -> None:
    class_name = new_class(kube)
    kube.create(_config(namespace, "aaa-older", "older"))
    kube.create(_config(namespace, "named", "named"))
    kube.create(_with_parameters(namespace, class_name, kind="GatewayConfig", name="named"))
    wait_for(lambda: (c := child(kube, namespace)) is not None
             and c["data"]["tier"] == "named",
             what="the child rendered with the named GatewayConfig, not the older one",
             timeout=TIMEOUT)
    wait_condition(kube, namespace, "Accepted", "True", "Accepted")
    # the policies' own status tells the same story: the named one is attached, the older one
    # is Conflicted and says which one won and why

    def accepted(name: str) -> dict[str, Any] | None:
        obj = kube.get(BIFROST_API, "GatewayConfig", name, namespace) or {}
        return next((c for c in (obj.get("status") or {}).get("conditions") or []
                     if c.get("type") == "Accepted"), None)

    named = wait_for(lambda: (c := accepted("named")) and c["status"] == "True" and c,
                     what="the named GatewayConfig Accepted", timeout=TIMEOUT)
    assert "spec.infrastructure.parametersRef" in named["message"]
    older = wait_for(lambda: (c := accepted("aaa-older")) and c["reason"] == "Conflicted" and c,
                     what="the older GatewayConfig Conflicted", timeout=TIMEOUT)
    assert older["status"] == "False"
    assert f'"{namespace}/named"' in older["message"]
    assert "parametersRef names it" in older["message"]


def test_a_kind_bifrost_does_not_accept_is_invalid_parameters(
    kube: KubeClient, running: Controller, store: SqlStore, namespace: str
) -> None:
    class_name = new_class(kube)
    kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "values", "namespace": namespace},
                 "data": {"tier": "gold"}})
    uid = kube.create(_with_parameters(namespace, class_name, kind="ConfigMap", name="values",
                                       group=""))["metadata"]["uid"]
    accepted = wait_condition(kube, namespace, "Accepted", "False", "InvalidParameters")
    assert "a kind bifrost does not accept" in accepted["message"]
    assert "bifrost accepts only GatewayConfig" in accepted["message"]
    assert child(kube, namespace) is None and operations(store, str(uid)) == []


def test_a_referenced_config_targeting_something_else_is_invalid_parameters(
    kube: KubeClient, running: Controller, namespace: str
) -> None:
    class_name = new_class(kube)
    other = _config(namespace, "elsewhere", "gold")
    other["spec"]["targetRef"]["name"] = "another-gateway"
    kube.create(other)
    kube.create(_with_parameters(namespace, class_name, kind="GatewayConfig", name="elsewhere"))
    accepted = wait_condition(kube, namespace, "Accepted", "False", "InvalidParameters")
    assert 'targets Gateway "another-gateway", not this Gateway' in accepted["message"]
    assert child(kube, namespace) is None
