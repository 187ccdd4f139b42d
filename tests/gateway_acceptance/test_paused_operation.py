"""Issue #14 item 11 on the devcluster: while an operator has paused the Gateway's operation,
its ``gateway.bifrost.dev/Operation`` condition says ``Paused``, who paused it and why (from the
journal's pause entry) and how to go on; resumed, it says ``InProgress`` again."""

from __future__ import annotations

from acceptance_kit import OPERATION, TIMEOUT, new_class, wait_condition
from support.builders import gateway
from support.waiting import wait_for

from bifrost.clock import SystemClock
from bifrost.controller.manager import Controller
from bifrost.engine.admin import pause_operation, resume_operation
from bifrost.kube.client import KubeClient
from bifrost.store import SqlStore

#: A child that never becomes ready: the provision waits for it as long as the test likes.
NEVER_READY = {
    "id": "config",
    "template": "apiVersion: v1\nkind: ConfigMap\n"
    "metadata: {name: '{{ gateway.metadata.name }}-config'}\n"
    "data: {tier: '{{ values.tier }}', address: 192.0.2.10}\n",
    "readyWhen": 'object.data.tier == "never"',
}


def test_a_paused_operation_is_reported_paused_with_who_and_why(
    kube: KubeClient, running: Controller, store: SqlStore, namespace: str
) -> None:
    class_name = new_class(kube, children=[NEVER_READY])
    uid = str(kube.create(gateway(namespace, "edge", class_name))["metadata"]["uid"])
    wait_condition(kube, namespace, OPERATION, "True", "InProgress")
    op = store.active_operation(uid)
    assert op is not None
    pause_operation(store, op.id, clock=SystemClock(), actor="alice",
                    reason="change freeze until Monday")

    paused = wait_condition(kube, namespace, OPERATION, "True", "Paused")
    assert f"provision operation {op.id} is paused" in paused["message"]
    assert "paused by alice: change freeze until Monday" in paused["message"]
    assert f"bifrost-admin resume {namespace}/edge" in paused["message"]

    resume_operation(store, op.id, clock=SystemClock(), actor="alice")
    wait_condition(kube, namespace, OPERATION, "True", "InProgress")
    wait_for(lambda: (o := store.get_operation(op.id)) is not None and o.status.active,
             what="the resumed operation still active (its child is never ready)",
             timeout=TIMEOUT)
