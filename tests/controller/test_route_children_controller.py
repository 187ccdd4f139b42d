"""Per-route children end to end with the in-process controller on the devcluster: a blueprint
whose ``routeChildren`` renders a shadow HTTPRoute (attached to the child gateway) per attached
route. Attaching routes creates their shadows; a route that stops attaching (its sectionName
matches no listener — the same decision its ``status.parents`` shows) or is deleted loses its
shadow while the others stay; deleting the Gateway deletes everything, then the finalizer goes.
Every wait polls with a deadline."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from controller_kit import BIFROST_API, GATEWAY_API, SYSTEM_NAMESPACE
from support.builders import gateway_class
from support.editing import edit
from support.waiting import wait_for

from bifrost.controller.manager import Controller, ControllerOptions
from bifrost.kube.client import KubeClient
from bifrost.steps.ownership import GATEWAY_UID_LABEL
from bifrost.steps.provision import ROUTE_ANNOTATION
from bifrost.store import SqlStore, migrate, open_store

TIMEOUT = 20.0

SHADOW = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: "{{ route.metadata.namespace }}-{{ route.metadata.name }}-shadow"
spec:
  parentRefs: [{name: "{{ children.config.data.child }}"}]
  hostnames:
  {%- for h in route.spec.hostnames | default([]) %}
    - "{{ h }}"
  {%- else %} []
  {%- endfor %}
"""


@pytest.fixture(scope="module")
def running(kube: KubeClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    url = f"sqlite:///{(tmp_path_factory.mktemp('routes-db') / 'bifrost.db').as_posix()}"
    migrate.upgrade(url)
    store: SqlStore = open_store(url)
    controller = Controller(
        kube,
        store,
        options=ControllerOptions(
            identity=f"routes-{uuid.uuid4().hex[:6]}",
            lease_name=f"routes-{uuid.uuid4().hex[:6]}",
            lease_namespace=SYSTEM_NAMESPACE,
            controller_namespace=SYSTEM_NAMESPACE,
            lease_duration=3.0,
            renew_deadline=2.0,
            retry_period=0.3,
            workers=2,
            runner_idle=timedelta(seconds=0.05),
        ),
    )
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: controller.is_leader and controller.ready(), timeout=15,
                 what="in-process controller leading and synced")
        yield controller
    finally:
        stop.set()
        thread.join(15)
        store.close()
        assert not thread.is_alive()


@pytest.fixture
def class_name(kube: KubeClient, running: Controller) -> str:
    suffix = uuid.uuid4().hex[:6]
    cls, bp = f"cls-{suffix}", f"bp-{suffix}"
    kube.create({
        "apiVersion": BIFROST_API,
        "kind": "GatewayClassBlueprint",
        "metadata": {"name": bp},
        "spec": {
            "children": [{
                "id": "config",
                "template": "apiVersion: v1\nkind: ConfigMap\n"
                "metadata: {name: '{{ gateway.metadata.name }}-config'}\n"
                "data: {child: '{{ gateway.metadata.name }}-child', address: 192.0.2.10}\n",
            }],
            "routeChildren": [{"id": "shadow", "template": SHADOW}],
            "addresses": '[{"type": "IPAddress", "value": children.config.data.address}]',
        },
    })
    kube.create(gateway_class(cls, bp))
    return cls


def _route(ns: str, name: str, parent: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"parentRefs": [parent], "hostnames": [f"{name}.example.com"]},
    }


def _shadows(kube: KubeClient, ns: str, uid: str) -> dict[str, dict[str, Any]]:
    items, _ = kube.list(GATEWAY_API, "HTTPRoute", ns,
                         label_selector=f"{GATEWAY_UID_LABEL}={uid}")
    return {o["metadata"]["name"]: o for o in items}


def _accepted(kube: KubeClient, ns: str, name: str) -> list[tuple[str, str]]:
    route = kube.get(GATEWAY_API, "HTTPRoute", name, ns) or {}
    return [
        (c["status"], c["reason"])
        for p in (route.get("status") or {}).get("parents") or []
        for c in p.get("conditions") or []
        if c.get("type") == "Accepted"
    ]


def _programmed(kube: KubeClient, ns: str, name: str) -> str | None:
    gw = kube.get(GATEWAY_API, "Gateway", name, ns) or {}
    for c in (gw.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Programmed":
            return str(c["status"])
    return None


def test_route_children_follow_attachment_and_teardown(
    kube: KubeClient, namespace: str, class_name: str, running: Controller
) -> None:
    ns = namespace
    gw = kube.create({
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"gatewayClassName": class_name,
                 "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
    })
    uid = gw["metadata"]["uid"]
    wait_for(lambda: _programmed(kube, ns, "web") == "True", timeout=TIMEOUT,
             what="Gateway programmed without routes")
    assert _shadows(kube, ns, uid) == {}

    # route a attaches: its shadow appears, attached to the child gateway
    kube.create(_route(ns, "a", {"name": "web"}))
    shadows = wait_for(lambda: _shadows(kube, ns, uid) or None, timeout=TIMEOUT,
                       what="shadow of route a")
    assert set(shadows) == {f"{ns}-a-shadow"}
    shadow = shadows[f"{ns}-a-shadow"]
    assert shadow["spec"]["parentRefs"][0]["name"] == "web-child"
    assert shadow["spec"]["hostnames"] == ["a.example.com"]
    assert shadow["metadata"]["annotations"][ROUTE_ANNOTATION] == f"{ns}/a"
    assert [r["uid"] for r in shadow["metadata"]["ownerReferences"]] == [uid]

    # route b attaches through its sectionName: a second shadow
    kube.create(_route(ns, "b", {"name": "web", "sectionName": "http"}))
    wait_for(lambda: set(_shadows(kube, ns, uid)) == {f"{ns}-a-shadow", f"{ns}-b-shadow"},
             timeout=TIMEOUT, what="shadows of routes a and b")

    # route c names a listener that does not exist: not attached, no shadow
    kube.create(_route(ns, "c", {"name": "web", "sectionName": "nope"}))
    wait_for(lambda: _accepted(kube, ns, "c") == [("False", "NoMatchingParent")],
             timeout=TIMEOUT, what="route c not accepted")

    # route a detaches (its sectionName stops matching): its shadow is pruned, b's stays
    edit(kube, GATEWAY_API, "HTTPRoute", "a", ns,
         lambda route: route["spec"].update(parentRefs=[{"name": "web", "sectionName": "nope"}]))
    wait_for(lambda: set(_shadows(kube, ns, uid)) == {f"{ns}-b-shadow"}, timeout=TIMEOUT,
             what="shadow of the detached route a pruned")
    wait_for(lambda: _accepted(kube, ns, "a") == [("False", "NoMatchingParent")],
             timeout=TIMEOUT, what="route a's status agrees: not accepted")

    # route c is fixed and attaches (the controller writes its status: edit, not replace);
    # route b is deleted
    edit(kube, GATEWAY_API, "HTTPRoute", "c", ns,
         lambda route: route["spec"].update(parentRefs=[{"name": "web"}]))
    kube.delete(GATEWAY_API, "HTTPRoute", "b", ns)
    wait_for(lambda: set(_shadows(kube, ns, uid)) == {f"{ns}-c-shadow"}, timeout=TIMEOUT,
             what="shadow of c created, shadow of the deleted route b pruned")
    wait_for(lambda: _programmed(kube, ns, "web") == "True", timeout=TIMEOUT,
             what="Gateway programmed with its route children")
    # the provision changes the inventory after the cluster (a child is created, then
    # recorded; deleted, then its row goes), and Programmed may be the True of before
    wait_for(lambda: {(r.child_id, r.route_key) for r in running.store.list_children(uid)} == {
        ("config", None), ("shadow", f"{ns}/c")}, timeout=TIMEOUT,
        what="the inventory: the config and c's shadow")

    # the Gateway goes: every child goes, then the finalizer
    kube.delete(GATEWAY_API, "Gateway", "web", ns)
    wait_for(lambda: kube.get(GATEWAY_API, "Gateway", "web", ns) is None, timeout=TIMEOUT,
             what="Gateway deleted (finalizer removed)")
    assert _shadows(kube, ns, uid) == {}
    assert kube.get("v1", "ConfigMap", "web-config", ns) is None
    assert running.store.list_children(uid) == []
