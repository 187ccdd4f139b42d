"""A child whose kind is removed (its CRD deleted) while ``wait_ready`` waits for it: the wait
ends with a failure that names the child, the kind and the fix, instead of waiting until the
step's timeout for an object that cannot come back."""

from __future__ import annotations

import time

from provision_kit import Harness
from support.builders import widget_crd

from bifrost.records import OperationStatus

CRD_API = "apiextensions.k8s.io/v1"


def test_a_child_whose_crd_is_deleted_while_it_waits_fails_the_provision_clearly(
        harness: Harness) -> None:
    h = harness
    group = f"{h.namespace}.example.com"
    h.kube.create(widget_crd(group))
    h.set_blueprint([{
        "id": "widget",
        "template": f"apiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: w}}\n",
        "readyWhen": "has(object.status) && object.status.ready == true",
    }])
    op = h.start_provision(h.create_gateway())
    runner = h.runner()

    def waits() -> list[str]:
        return [j.message or "" for j in h.store.journal(operation_id=op.id)
                if j.step == "wait_ready" and j.outcome.value == "wait"]

    deadline = time.monotonic() + 20
    while not waits():  # the CRD's kind may take a moment to be served: apply retries
        assert time.monotonic() < deadline, h.store.get_operation(op.id).last_error
        runner.run_once()
        time.sleep(0.02)  # poll: the step is due again after its recheck
    assert waits()[-1] == "children not ready: widget (readyWhen is false)"

    h.kube.delete(CRD_API, "CustomResourceDefinition", f"widgets.{group}")
    done = h.drive(op.id)
    assert done.status is OperationStatus.FAILED
    assert done.state == "wait_ready"
    assert done.last_error is not None
    assert "child 'widget'" in done.last_error and f"{group}/v1 Widget" in done.last_error
    assert "CRD" in done.last_error, done.last_error
