"""``LifecycleKeeper``: what it writes to the store (only changes), the Events it records (one
per transition) and the deletion end (``deleted`` with ``deleted_at``), on a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from support.inprocess import sqlite_store

from bifrost.clock import ManualClock
from bifrost.controller.announcements import Announcer
from bifrost.controller.lifecycle import Gone, LifecycleKeeper, children_ready
from bifrost.kube import EventRecorder
from bifrost.machines.lifecycle import CHILDREN_NOT_READY
from bifrost.records import (
    ChildRecord,
    JournalOutcome,
    NewOperation,
    OperationRecord,
    OperationStatus,
)
from bifrost.store import SqlStore

UID = "uid-1"


@dataclass
class Recorded:
    """Stands in for the EventRecorder (the Kubernetes edge); keeps what would be posted."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def record(self, regarding: Any, *, reason: str, action: str, note: str = "",
               type: str = "Normal", **_: Any) -> None:  # noqa: A002 - the recorder's name
        self.events.append({"name": regarding.name, "uid": regarding.uid, "reason": reason,
                            "note": note, "type": type})


class CountingStore:
    """The real store, counting ``set_gateway_state`` calls."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self.state_writes = 0
        self.reads = 0

    def set_gateway_state(self, *args: Any, **kwargs: Any) -> Any:
        self.state_writes += 1
        return self._store.set_gateway_state(*args, **kwargs)

    def get_gateway(self, uid: str) -> Any:
        self.reads += 1
        return self._store.get_gateway(uid)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@dataclass
class Kit:
    store: SqlStore
    counting: CountingStore
    clock: ManualClock
    events: Recorded
    keeper: LifecycleKeeper

    def gateway(self, *, deleting: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": "web", "namespace": "apps", "uid": UID}
        if deleting:
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": meta}

    def operation(self, machine: str) -> OperationRecord:
        return self.store.create_operation(
            NewOperation(gateway_uid=UID, namespace="apps", name="web", machine=machine,
                         machine_version=1, state="s"),
            now=self.clock.now(), actor="test")

    def state(self) -> tuple[str, str | None]:
        record = self.store.get_gateway(UID)
        return record.lifecycle_state, record.last_error

    def reasons(self) -> list[str]:
        return [e["reason"] for e in self.events.events]


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[Kit]:
    with sqlite_store(tmp_path) as store:
        clock = ManualClock()
        store.upsert_gateway(uid=UID, namespace="apps", name="web", now=clock.now())
        events = Recorded()
        counting = CountingStore(store)
        announcer = Announcer(events=cast(EventRecorder, events), clock=clock)
        keeper = LifecycleKeeper(store=cast(Any, counting), clock=clock, announcer=announcer)
        yield Kit(store, counting, clock, events, keeper)


def _child(ready: bool) -> ChildRecord:
    from datetime import UTC, datetime

    return ChildRecord(gateway_uid=UID, child_id="c", api_version="v1", kind="ConfigMap",
                       namespace="apps", name="c", uid=None, applied_hash=None, ready=ready,
                       updated_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_children_ready_from_the_inventory() -> None:
    assert children_ready(None) is None
    assert children_ready([]) is None
    assert children_ready([_child(True), _child(True)]) is True
    assert children_ready([_child(True), _child(False)]) is False


def test_a_provision_moves_pending_to_ready_writing_only_changes(kit: Kit) -> None:
    gw = kit.gateway()
    assert kit.keeper.observe(gw, UID, None) is False  # nothing started: stays pending
    op = kit.operation("provision")
    assert kit.keeper.observe(gw, UID, op) is True
    assert kit.state() == ("provisioning", None)
    # observed again and again while it runs: no write, no Event
    for _ in range(3):
        assert kit.keeper.observe(gw, UID, kit.store.get_operation(op.id)) is False
    kit.store.fail_operation(op.id, now=kit.clock.now(), message="template error", actor="e")
    assert kit.keeper.observe(gw, UID, kit.store.get_operation(op.id)) is True
    state, error = kit.state()
    assert state == "failed"
    assert error is not None and "template error" in error
    assert kit.counting.state_writes == 2
    assert kit.counting.reads == 1  # read once, then remembered
    assert kit.reasons() == ["LifecycleProvisioning", "LifecycleFailed"]
    assert kit.events.events[1]["type"] == "Warning"
    assert kit.events.events[0]["note"] == "lifecycle pending -> provisioning (provision)"
    assert kit.events.events[0]["uid"] == UID


def test_readiness_degrades_and_recovers_a_settled_gateway(kit: Kit) -> None:
    gw = kit.gateway()
    kit.store.set_gateway_state(UID, lifecycle_state="ready", now=kit.clock.now())
    done = _succeed(kit.store, kit.operation("provision"), kit.clock)
    assert kit.keeper.observe(gw, UID, done, children=[_child(True)]) is False
    assert kit.keeper.observe(gw, UID, done, children=[_child(True), _child(False)]) is True
    assert kit.state() == ("degraded", CHILDREN_NOT_READY)
    assert kit.keeper.observe(gw, UID, done, ready=True) is True  # live readiness wins
    assert kit.state() == ("ready", None)
    assert kit.reasons() == ["LifecycleDegraded", "LifecycleReady"]


def test_deletion_ends_deleted_with_deleted_at(kit: Kit) -> None:
    gw = kit.gateway(deleting=True)
    kit.store.set_gateway_state(UID, lifecycle_state="ready", now=kit.clock.now())
    teardown = kit.operation("teardown")
    assert kit.keeper.observe(gw, UID, teardown) is True
    assert kit.state() == ("deleting", None)
    assert kit.store.get_gateway(UID).deleted_at is None
    kit.clock.advance(timedelta(seconds=30))
    assert kit.keeper.finished(gw, UID) is True
    record = kit.store.get_gateway(UID)
    assert (record.lifecycle_state, record.deleted_at) == ("deleted", kit.clock.now())
    assert kit.keeper.finished(gw, UID) is False  # once
    # The keeper also announces the teardown it sees while the Gateway is deleting.
    assert kit.reasons() == ["TeardownStarted", "LifecycleDeleting", "LifecycleDeleted"]


def test_gone_marks_deleted_only_what_its_teardown_removed(kit: Kit) -> None:
    teardown = kit.operation("teardown")
    kit.store.set_gateway_state(UID, lifecycle_state="deleting", now=kit.clock.now())
    # teardown still running: the Gateway vanishing is not the teardown's end (look again)
    assert kit.keeper.gone("apps", "web") == Gone(wrote=False, teardown_running=True)
    assert kit.state() == ("deleting", None)
    succeeded = _succeed(kit.store, teardown, kit.clock)
    assert succeeded.status == "succeeded"
    assert kit.keeper.gone("apps", "web") == Gone(wrote=True, teardown_running=False)
    record = kit.store.get_gateway(UID)
    assert (record.lifecycle_state, record.deleted_at) == ("deleted", kit.clock.now())
    # The teardown's success is announced here, about the Gateway that was.
    assert kit.reasons() == ["TeardownSucceeded", "LifecycleDeleted"]
    assert [e["name"] for e in kit.events.events] == ["web", "web"]
    assert kit.keeper.gone("apps", "web") == Gone(wrote=False, teardown_running=False)
    assert kit.keeper.gone("apps", "other") == Gone(wrote=False, teardown_running=False)


def test_new_term_reads_the_state_again(kit: Kit) -> None:
    gw = kit.gateway()
    op = kit.operation("provision")
    kit.keeper.observe(gw, UID, op)
    # another replica moved it meanwhile
    kit.store.set_gateway_state(UID, lifecycle_state="failed", now=kit.clock.now(),
                                last_error="elsewhere")
    kit.keeper.new_term()
    assert kit.keeper.observe(gw, UID, op) is True
    assert kit.state() == ("provisioning", None)
    assert kit.reasons() == ["LifecycleProvisioning", "LifecycleProvisioning"]


def _succeed(store: SqlStore, op: OperationRecord, clock: ManualClock) -> OperationRecord:
    """End ``op`` as the engine does when its last step is done: claim it, then commit DONE
    with status succeeded."""
    claimed = store.claim_due(owner="t", now=clock.now(), lease_for=timedelta(minutes=5))
    assert [c.id for c in claimed] == [op.id]
    return store.finish_step(op.id, owner="t", version=claimed[0].version, now=clock.now(),
                             outcome=JournalOutcome.TRANSITION, state="done",
                             status=OperationStatus.SUCCEEDED, context={}, next_run_at=None)
