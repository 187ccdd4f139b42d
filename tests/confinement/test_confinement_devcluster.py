"""Confinement end to end: ``bifrost run``'s Controller in-process against a devcluster (Gateway
API and bifrost CRDs), SQLite store.

- A blueprint whose template puts a Secret in ``kube-system`` literally is ``Valid=False``
  (``ChildNotConfined``) naming the child, and ``Valid=True`` once ``spec.confinement`` allows it.
- A blueprint whose child namespace comes from a value is valid (nothing literal to judge), but
  the Gateway's provision fails with the confinement message before anything is applied: the
  Gateway's ``Programmed`` condition and a ``ProvisionFailed`` Event say it, no ConfigMap or
  Secret is written anywhere (the devcluster's request log), the inventory stays empty, and the
  value that was meant as the Secret's data appears in none of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from support.builders import (
    BIFROST_API,
    GATEWAY_API,
    blueprint,
    gateway,
    gateway_class,
    namespace_object,
)
from support.editing import edit
from support.inprocess import running_controller, sqlite_store
from support.waiting import wait_for

from bifrost.controller.manager import Controller
from bifrost.kube import KubeClient
from bifrost.store import SqlStore
from devcluster.server import DevCluster

TOKEN = "tenant-chosen-data-7f3a"
TIMEOUT = 20.0


@pytest.fixture(scope="module", autouse=True)
def kube_system(kube: KubeClient) -> None:
    kube.apply(namespace_object("kube-system"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    with sqlite_store(tmp_path_factory.mktemp("confinement-db")) as opened:
        yield opened


@pytest.fixture(scope="module")
def controller(kube: KubeClient, store: SqlStore) -> Iterator[Controller]:
    with running_controller(kube, store, name="confine") as running:
        yield running


def _condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


SETTINGS = {
    "id": "settings",
    "template": "apiVersion: v1\nkind: ConfigMap\n"
                "metadata: {name: '{{ gateway.metadata.name }}-settings'}\n"
                "data: {replicas: '2'}\n",
}


def test_a_literal_namespace_makes_the_blueprint_invalid(
    kube: KubeClient, controller: Controller
) -> None:
    name = f"bp-literal-{uuid.uuid4().hex[:6]}"
    leak = {"id": "leak", "template": "apiVersion: v1\nkind: Secret\nmetadata:\n"
                                      "  name: '{{ gateway.metadata.name }}-leak'\n"
                                      "  namespace: kube-system\n"
                                      "stringData: {a: b}\n"}
    kube.create(blueprint(name, [SETTINGS, leak]))

    def valid() -> dict[str, Any] | None:
        return _condition(kube.get(BIFROST_API, "GatewayClassBlueprint", name), "Valid")

    cond = wait_for(lambda: (c := valid()) and c["status"] == "False" and c,
                    what=f"{name} Valid=False", timeout=TIMEOUT)
    assert cond["reason"] == "ChildNotConfined"
    assert cond["message"] == (
        "child 'leak' (Secret in namespace kube-system) is outside the Gateway's namespace: add "
        '{group: "", kind: Secret, namespaces: [kube-system]} to spec.confinement.allow')
    # The platform team opts in: valid again.
    edit(kube, BIFROST_API, "GatewayClassBlueprint", name, None,
         lambda obj: obj["spec"].update(confinement={"allow": [
             {"group": "", "kind": "Secret", "namespaces": ["kube-system"]}]}))
    wait_for(lambda: (c := valid()) and c["status"] == "True", what=f"{name} Valid=True",
             timeout=TIMEOUT)


def test_a_namespace_from_a_value_fails_the_provision_and_applies_nothing(
    kube: KubeClient, controller: Controller, store: SqlStore, cluster: DevCluster,
    namespace: str,
) -> None:
    suffix = uuid.uuid4().hex[:6]
    bp, cls = f"bp-value-{suffix}", f"cls-value-{suffix}"
    leak = {"id": "leak", "template": "apiVersion: v1\nkind: Secret\nmetadata:\n"
                                      "  name: '{{ gateway.metadata.name }}-leak'\n"
                                      "  namespace: {{ values.target | to_json }}\n"
                                      "stringData: {token: {{ values.token | to_json }}}\n"}
    kube.create(blueprint(bp, [SETTINGS, leak],
                          defaults={"target": "kube-system", "token": TOKEN}))
    wait_for(lambda: (_condition(kube.get(BIFROST_API, "GatewayClassBlueprint", bp), "Valid")
                      or {}).get("status") == "True",
             what=f"{bp} Valid=True (its namespace is not literal)", timeout=TIMEOUT)
    kube.create(gateway_class(cls, bp))
    writes_before = cluster.request_log.count(writes_only=True,
                                              resources={"configmaps", "secrets"})
    uid = kube.create(gateway(namespace, "edge", cls))["metadata"]["uid"]

    def programmed() -> dict[str, Any] | None:
        cond = _condition(kube.get(GATEWAY_API, "Gateway", "edge", namespace), "Programmed")
        return cond if cond and cond["status"] == "False" and "failed" in cond["message"] \
            else None

    cond = wait_for(programmed, what="Gateway Programmed=False from the failed provision",
                    timeout=TIMEOUT)
    expected = ("child 'leak' (Secret in namespace kube-system) is outside the Gateway's "
                f"namespace {namespace}: add "
                '{group: "", kind: Secret, namespaces: [kube-system]} to spec.confinement.allow')
    assert expected in cond["message"]
    (op,) = [o for o in store.list_operations(gateway_uid=uid) if o.machine == "provision"]
    assert op.status.value == "failed" and op.last_error is not None
    assert expected in op.last_error

    def failed_event() -> str | None:
        events, _ = kube.list("events.k8s.io/v1", "Event", namespace)
        notes = [str(e.get("note") or "") for e in events
                 if (e.get("regarding") or {}).get("uid") == uid
                 and e.get("reason") == "ProvisionFailed"]
        return notes[0] if notes else None

    note = wait_for(failed_event, what="a ProvisionFailed Event on the Gateway", timeout=TIMEOUT)
    assert expected in note
    # Nothing of the pass was applied, anywhere: not the confined ConfigMap either.
    assert cluster.request_log.count(writes_only=True,
                                     resources={"configmaps", "secrets"}) == writes_before
    assert kube.get("v1", "ConfigMap", "edge-settings", namespace) is None
    assert kube.get("v1", "Secret", "edge-leak", "kube-system") is None
    assert store.list_children(uid) == []
    # the value meant as the Secret's data is in no message
    journal = [j.message for j in store.journal(operation_id=op.id)]
    for text in (cond["message"], op.last_error, note, *journal):
        assert TOKEN not in (text or "")
