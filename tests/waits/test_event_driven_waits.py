"""A waiting step is woken by the change it waits for, not by its timer: the provision waits for
a child that is not ready, its recheck backs off (one journal row, counted), and the moment the
child becomes ready its event wakes the operation — long before the recheck was due."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.builders import blueprint, gateway, gateway_class
from support.inprocess import running_controller, sqlite_store
from support.waiting import wait_for

from bifrost.kube import KubeClient
from bifrost.records import JournalOutcome, OperationRecord, OperationStatus

READY_WHEN = "has(object.data.ready)"


def test_the_childs_event_wakes_the_waiting_provision(kube: KubeClient, namespace: str,
                                                      tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:6]
    kube.create(blueprint(f"bp-{suffix}", [{
        "id": "settings", "readyWhen": READY_WHEN,
        "template": "apiVersion: v1\nkind: ConfigMap\n"
                    "metadata: {name: '{{ gateway.metadata.name }}-settings'}\n"
                    "data: {a: b}\n"}]))
    kube.create(gateway_class(f"gc-{suffix}", f"bp-{suffix}"))
    uid = kube.create(gateway(namespace, "edge", f"gc-{suffix}"))["metadata"]["uid"]
    with sqlite_store(tmp_path) as store, running_controller(kube, store, name="waits"):
        def waiting() -> OperationRecord | None:
            rows = [j for j in store.journal(gateway_uid=uid)
                    if j.step == "wait_ready" and j.outcome is JournalOutcome.WAIT]
            if not rows or rows[-1].repeats < 4:
                return None
            # read after the journal: each recheck begins the step again (status running)
            # before it waits once more, so a read of the operation may fall in between
            op = next(o for o in store.list_operations(gateway_uid=uid)
                      if o.machine == "provision")
            # and a recheck at least 2 s away, so a slow test thread cannot reach it first
            due = op.next_run_at
            return op if (op.status is OperationStatus.WAITING and due is not None
                          and due - datetime.now(UTC) >= timedelta(seconds=2)) else None

        # the recheck backs off: 0.2 s, 0.4, 0.8, 1.6 s ... (one row, its repeats counted)
        op = wait_for(waiting, timeout=20, what="the provision waiting for its child, repeatedly")
        assert op is not None
        assert op.bookkeeping.wait_on == (f"ConfigMap/{namespace}/edge-settings",)
        rows = [j for j in store.journal(gateway_uid=uid) if j.step == "wait_ready"]
        assert sum(1 for j in rows if j.outcome is JournalOutcome.WAIT) == 1
        due = op.next_run_at
        assert due is not None

        # the child becomes ready (a field bifrost does not set: not drift)
        kube.patch("v1", "ConfigMap", "edge-settings", namespace, {"data": {"ready": "yes"}},
                   field_manager="probe")
        done = wait_for(lambda: next((o for o in store.list_operations(gateway_uid=uid)
                                      if o.id == op.id and o.status.terminal), None),
                        timeout=10, what="the provision to finish")
        assert done.status is OperationStatus.SUCCEEDED, done.last_error
        finished = max(j.finished_at or j.started_at for j in store.journal(operation_id=op.id))
        assert finished < due, (
            f"the provision finished at {finished}, not before its recheck was due ({due}): "
            "the child's event did not wake it")
