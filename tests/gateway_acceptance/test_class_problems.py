"""Issue #14 items 4 (Gateway half) and 7 on the devcluster: a Gateway whose GatewayClass was
deleted says so (``Accepted=False`` naming the class, ``Programmed=False``) and keeps its
children; a Gateway whose class points at a missing blueprint says, on the Gateway and on its
listeners, what is wrong and how to fix it — not that it waits for a provision."""

from __future__ import annotations

import contextlib

from acceptance_kit import (
    TIMEOUT,
    child,
    gw,
    listener_conditions,
    new_class,
    operations,
    wait_condition,
)
from support.builders import GATEWAY_API, gateway, gateway_class
from support.waiting import wait_for

from bifrost.controller.manager import Controller
from bifrost.kube import NotFound
from bifrost.kube.client import KubeClient
from bifrost.store import SqlStore


def _delete_class(kube: KubeClient, name: str) -> None:
    """Delete the class; a finalizer holding it (bifrost's gateway-exists finalizer) is
    removed by hand, as an impatient admin would, so the class is really gone."""
    kube.delete(GATEWAY_API, "GatewayClass", name)
    with contextlib.suppress(NotFound):
        if kube.get(GATEWAY_API, "GatewayClass", name) is not None:
            kube.patch(GATEWAY_API, "GatewayClass", name, None,
                       {"metadata": {"finalizers": None}})
    wait_for(lambda: kube.get(GATEWAY_API, "GatewayClass", name) is None,
             what=f"GatewayClass {name} gone", timeout=TIMEOUT)


def test_a_deleted_class_makes_its_gateway_unaccepted_and_keeps_its_children(
    kube: KubeClient, running: Controller, namespace: str
) -> None:
    class_name = new_class(kube)
    kube.create(gateway(namespace, "edge", class_name))
    wait_condition(kube, namespace, "Programmed", "True", "Programmed")
    before = child(kube, namespace)
    assert before is not None

    _delete_class(kube, class_name)
    accepted = wait_condition(kube, namespace, "Accepted", "False", "Invalid")
    assert f'GatewayClass "{class_name}" does not exist' in accepted["message"]
    programmed = wait_condition(kube, namespace, "Programmed", "False", "Invalid")
    assert "last provisioned children are kept" in programmed["message"]
    kept = child(kube, namespace)
    assert kept is not None
    assert kept["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    # The class back: accepted and programmed again.
    kube.create(gateway_class(class_name, class_name))
    wait_condition(kube, namespace, "Accepted", "True", "Accepted")
    wait_condition(kube, namespace, "Programmed", "True", "Programmed")


def test_a_missing_blueprint_is_named_on_the_gateway_and_its_listeners(
    kube: KubeClient, running: Controller, store: SqlStore, namespace: str
) -> None:
    class_name = f"{new_class(kube)}-nobp"
    kube.create(gateway_class(class_name, "no-such-blueprint"))
    uid = kube.create(gateway(namespace, "edge", class_name))["metadata"]["uid"]
    accepted = wait_condition(kube, namespace, "Accepted", "False", "InvalidParameters")
    assert f'GatewayClass "{class_name}" is not accepted' in accepted["message"]
    assert 'GatewayClassBlueprint "no-such-blueprint" not found' in accepted["message"]

    def listener_says_why() -> dict[str, str] | None:
        cond = listener_conditions(gw(kube, namespace), "http").get("Programmed")
        return cond if cond and cond["reason"] == "Invalid" else None

    programmed = wait_for(listener_says_why, what="the listener's Programmed=False/Invalid",
                          timeout=TIMEOUT)
    assert programmed["status"] == "False"
    assert "waiting for the provision" not in programmed["message"]
    assert 'GatewayClassBlueprint "no-such-blueprint" not found' in programmed["message"]
    assert f'spec.parametersRef.name of GatewayClass "{class_name}"' in programmed["message"]
    gateway_programmed = wait_condition(kube, namespace, "Programmed", "False", "Invalid")
    assert "no children are created" in gateway_programmed["message"]
    assert operations(store, str(uid)) == [] and child(kube, namespace) is None
