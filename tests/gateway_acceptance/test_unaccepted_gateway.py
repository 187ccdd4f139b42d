"""Issue #14 items 5 and 6 on the devcluster: an unaccepted Gateway gets no children; one that
was accepted and becomes unaccepted keeps its last good children, unchanged, until it is fixed
(then it is provisioned again); the ``ListenersNotValid`` message agrees with the listeners'
own ``Accepted`` conditions."""

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
from support.builders import GATEWAY_API, gateway
from support.editing import edit
from support.waiting import wait_for

from bifrost.controller.manager import Controller
from bifrost.kube.client import KubeClient
from bifrost.store import SqlStore

TCP = {"name": "tcp", "protocol": "TCP", "port": 9000}


def _https(name: str, host: str) -> dict[str, Any]:
    return {"name": name, "protocol": "HTTPS", "port": 443, "hostname": host,
            "tls": {"certificateRefs": [{"name": f"{name}-missing"}]}}


def _set_listeners(kube: KubeClient, ns: str, listeners: list[dict[str, Any]]) -> int:
    changed = edit(kube, GATEWAY_API, "Gateway", "edge", ns,
                   lambda live: live["spec"].update(listeners=listeners))
    return int(changed["metadata"]["generation"])


def test_a_gateway_without_a_valid_listener_gets_no_children(
    kube: KubeClient, running: Controller, store: SqlStore, namespace: str
) -> None:
    class_name = new_class(kube)
    uid = kube.create(gateway(namespace, "edge", class_name, [TCP]))["metadata"]["uid"]
    accepted = wait_condition(kube, namespace, "Accepted", "False", "ListenersNotValid")
    assert "tcp: Accepted=False (UnsupportedProtocol)" in accepted["message"]
    programmed = wait_condition(kube, namespace, "Programmed", "False", "Invalid")
    assert "no children are created until it is accepted" in programmed["message"]
    # The status was written after the observation decided: no provision, no child.
    assert operations(store, str(uid)) == [] and child(kube, namespace) is None


def test_the_message_agrees_with_listeners_that_say_accepted(
    kube: KubeClient, running: Controller, namespace: str
) -> None:
    class_name = new_class(kube)
    kube.create(gateway(namespace, "edge", class_name,
                        [_https("a", "a.example.com"), _https("b", "b.example.com")]))
    accepted = wait_condition(kube, namespace, "Accepted", "False", "ListenersNotValid")
    obj = gw(kube, namespace)
    for name in ("a", "b"):
        own = listener_conditions(obj, name)["Accepted"]
        assert (own["status"], own["reason"]) == ("True", "Accepted")
        assert f"{name}: Accepted=True, ResolvedRefs=False (InvalidCertificateRef)" \
            in accepted["message"]
    assert "accepted listeners: none" not in accepted["message"]
    assert "no listener can be served" in accepted["message"]


def test_an_accepted_gateway_that_becomes_unaccepted_keeps_its_children_until_fixed(
    kube: KubeClient, running: Controller, store: SqlStore, namespace: str
) -> None:
    class_name = new_class(kube)
    uid = str(kube.create(gateway(namespace, "edge", class_name))["metadata"]["uid"])
    wait_condition(kube, namespace, "Programmed", "True", "Programmed", generation=1)
    before = child(kube, namespace)
    assert before is not None
    provisions = len(operations(store, uid))

    generation = _set_listeners(kube, namespace, [TCP])
    wait_condition(kube, namespace, "Accepted", "False", "ListenersNotValid",
                   generation=generation)
    programmed = wait_condition(kube, namespace, "Programmed", "False", "Invalid",
                                generation=generation)
    assert "last provisioned children are kept" in programmed["message"]
    kept = child(kube, namespace)
    assert kept is not None
    assert kept["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert len(operations(store, uid)) == provisions  # nothing started for the bad spec

    fixed = _set_listeners(kube, namespace,
                           [{"name": "web", "protocol": "HTTP", "port": 8080}])
    wait_condition(kube, namespace, "Accepted", "True", "Accepted", generation=fixed)
    wait_condition(kube, namespace, "Programmed", "True", "Programmed", generation=fixed)
    wait_for(lambda: len(operations(store, uid)) > provisions,
             what="a provision for the fixed Gateway", timeout=TIMEOUT)
    assert kube.get(GATEWAY_API, "Gateway", "edge", namespace) is not None
