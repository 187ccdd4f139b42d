"""Store contract: operations — create, read, claim, fencing, write-ahead, admin, failure, and
the engine's bookkeeping committed with them.

Runs against every backend through the parametrized ``store`` fixture. Time is explicit: every
call gets a ``now``, so lease expiry is tested without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from bifrost.records import (
    EngineBookkeeping,
    JournalOutcome,
    NewOperation,
    OperationRecord,
    OperationStatus,
    StepStart,
)
from bifrost.store import LeaseLost, OperationConflict, RecordNotFound, SqlStore
from bifrost.store.sql import connect

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def new_op(uid: str = "uid-1", *, lane: str = "default", **kw: object) -> NewOperation:
    fields: dict[str, object] = {
        "gateway_uid": uid,
        "namespace": "ns",
        "name": f"gw-{uid}",
        "machine": "provision",
        "machine_version": 1,
        "state": "resolve",
        "lane": lane,
        "context": {"n": 1, "nested": {"hosts": ["a.example", "b.example"]}},
    }
    fields.update(kw)
    return NewOperation.model_validate(fields)


def claimed(store: SqlStore, *, owner: str = "w1", now: datetime = T0) -> OperationRecord:
    [op] = store.claim_due(owner=owner, now=now, lease_for=LEASE, limit=1)
    return op


# --- create / read ---------------------------------------------------------------------------
def test_create_operation_returns_pending_record_with_created_journal_row(store: SqlStore) -> None:
    op = store.create_operation(new_op(), now=T0, actor="controller")

    assert op.status is OperationStatus.PENDING
    assert op.version == 1
    assert op.state == "resolve"
    assert op.context == {"n": 1, "nested": {"hosts": ["a.example", "b.example"]}}
    assert op.step is None and op.attempt == 0
    assert op.lease_owner is None and op.lease_expires_at is None
    assert op.created_at == T0 and op.created_at.tzinfo is not None
    assert store.get_operation(op.id) == op
    [row] = store.journal(operation_id=op.id)
    assert (row.sequence, row.outcome, row.message, row.actor) == (
        1,
        JournalOutcome.TRANSITION,
        "created",
        "controller",
    )
    # the gateway row is created on demand
    assert store.get_gateway("uid-1").namespace == "ns"


def test_create_operation_keeps_an_existing_gateway_row(store: SqlStore) -> None:
    store.upsert_gateway(uid="uid-1", namespace="ns", name="gw", now=T0, gateway_class="c1")
    store.set_gateway_state("uid-1", lifecycle_state="programmed", now=T0)
    store.create_operation(new_op(), now=T0 + timedelta(seconds=5), actor="c")
    gw = store.get_gateway("uid-1")
    assert (gw.lifecycle_state, gw.gateway_class, gw.updated_at) == ("programmed", "c1", T0)


def test_get_unknown_operation_raises_not_found(store: SqlStore) -> None:
    with pytest.raises(RecordNotFound):
        store.get_operation(424242)


def test_times_round_trip_as_aware_utc(store: SqlStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    when = datetime(2026, 3, 1, 14, 0, 0, 123456, tzinfo=plus_two)
    op = store.create_operation(new_op(next_run_at=when), now=T0, actor="c")
    got = store.get_operation(op.id)
    assert got.next_run_at == when
    assert got.next_run_at is not None and got.next_run_at.utcoffset() == timedelta(0)
    assert got.next_run_at.microsecond == 123456


def test_naive_datetime_is_refused_and_nothing_is_written(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.create_operation(new_op(), now=datetime(2026, 3, 1, 12, 0), actor="c")
    assert store.list_operations() == []


def test_one_active_operation_per_gateway_and_lane(store: SqlStore) -> None:
    first = store.create_operation(new_op(), now=T0, actor="c")
    with pytest.raises(OperationConflict):
        store.create_operation(new_op(machine="update"), now=T0, actor="c")
    # nothing of the refused one was written
    assert [o.id for o in store.list_operations()] == [first.id]
    assert len(store.journal(gateway_uid="uid-1")) == 1

    other_lane = store.create_operation(new_op(lane="certificates"), now=T0, actor="c")
    other_gateway = store.create_operation(new_op("uid-2"), now=T0, actor="c")
    assert store.active_operation("uid-1") == first
    assert store.active_operation("uid-1", "certificates") == other_lane
    assert store.active_operation("uid-2") == other_gateway
    assert store.active_operation("uid-3") is None


@pytest.mark.parametrize("status", [OperationStatus.SUCCEEDED, OperationStatus.CANCELLED])
def test_lane_is_free_again_once_the_operation_is_terminal(
    store: SqlStore, status: OperationStatus
) -> None:
    first = store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    store.finish_step(
        op.id,
        owner="w1",
        version=op.version,
        now=T0,
        outcome=JournalOutcome.DONE,
        state="done",
        status=status,
        context={},
        next_run_at=None,
    )
    second = store.create_operation(new_op(), now=T0, actor="c")
    assert second.id != first.id
    assert store.active_operation("uid-1") == second


def test_paused_operation_still_holds_its_lane(store: SqlStore) -> None:
    op = store.create_operation(new_op(), now=T0, actor="c")
    store.admin_transition(
        op.id,
        now=T0,
        actor="admin",
        expected_statuses=[OperationStatus.PENDING],
        status=OperationStatus.PAUSED,
        message="pause",
    )
    with pytest.raises(OperationConflict):
        store.create_operation(new_op(), now=T0, actor="c")


def test_list_operations_filters_and_orders_newest_first(store: SqlStore) -> None:
    a = store.create_operation(new_op("a"), now=T0, actor="c")
    b = store.create_operation(new_op("b"), now=T0, actor="c")
    c = store.create_operation(new_op("a", lane="certs"), now=T0, actor="c")
    store.fail_operation(b.id, now=T0, message="boom", actor="engine")

    assert [o.id for o in store.list_operations()] == [c.id, b.id, a.id]
    assert [o.id for o in store.list_operations(gateway_uid="a")] == [c.id, a.id]
    assert [o.id for o in store.list_operations(statuses=[OperationStatus.FAILED])] == [b.id]
    assert [o.id for o in store.list_operations(limit=2)] == [c.id, b.id]
    assert store.list_operations(gateway_uid="a", statuses=[OperationStatus.FAILED]) == []


# --- claim ----------------------------------------------------------------------------------
def test_claim_takes_due_operations_only(store: SqlStore) -> None:
    now_due = store.create_operation(new_op("a"), now=T0, actor="c")
    past = store.create_operation(
        new_op("b", next_run_at=T0 - timedelta(minutes=1)), now=T0, actor="c"
    )
    exactly_now = store.create_operation(new_op("c", next_run_at=T0), now=T0, actor="c")
    future = store.create_operation(
        new_op("d", next_run_at=T0 + timedelta(seconds=1)), now=T0, actor="c"
    )
    paused = store.create_operation(new_op("e"), now=T0, actor="c")
    store.admin_transition(
        paused.id,
        now=T0,
        actor="admin",
        expected_statuses=[OperationStatus.PENDING],
        status=OperationStatus.PAUSED,
        message="pause",
    )
    failed = store.create_operation(new_op("f"), now=T0, actor="c")
    store.fail_operation(failed.id, now=T0, message="x", actor="engine")

    got = store.claim_due(owner="w1", now=T0, lease_for=LEASE, limit=10)

    # never-scheduled first, then by next_run_at
    assert [o.id for o in got] == [now_due.id, past.id, exactly_now.id]
    for op in got:
        assert op.lease_owner == "w1"
        assert op.lease_expires_at == T0 + LEASE
    assert store.get_operation(now_due.id).version == now_due.version + 1
    assert store.get_operation(future.id).lease_owner is None
    # the future one becomes due in time
    [later] = store.claim_due(owner="w2", now=T0 + timedelta(seconds=1), lease_for=LEASE, limit=10)
    assert later.id == future.id


def test_claim_respects_limit(store: SqlStore) -> None:
    ids = [store.create_operation(new_op(f"g{i}"), now=T0, actor="c").id for i in range(5)]
    first = store.claim_due(owner="w1", now=T0, lease_for=LEASE, limit=2)
    second = store.claim_due(owner="w2", now=T0, lease_for=LEASE, limit=10)
    assert [o.id for o in first] == ids[:2]
    assert [o.id for o in second] == ids[2:]
    assert store.claim_due(owner="w3", now=T0, lease_for=LEASE, limit=10) == []
    assert store.claim_due(owner="w3", now=T0, lease_for=LEASE, limit=0) == []


def test_leased_operation_is_not_claimable_until_the_lease_expires(store: SqlStore) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store, owner="w1")
    almost = T0 + LEASE - timedelta(microseconds=1)
    assert store.claim_due(owner="w2", now=almost, lease_for=LEASE) == []

    [stolen] = store.claim_due(owner="w2", now=T0 + LEASE, lease_for=LEASE)
    assert stolen.id == op.id
    assert stolen.lease_owner == "w2"
    assert stolen.lease_expires_at == T0 + 2 * LEASE
    assert stolen.version == op.version + 1
    # the deposed holder is fenced out
    with pytest.raises(LeaseLost):
        store.begin_step(op.id, owner="w1", version=op.version, now=T0, step="s", attempt=1)


def test_running_operation_with_expired_lease_is_claimable(store: SqlStore) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    op = store.begin_step(op.id, owner="w1", version=op.version, now=T0, step="apply", attempt=1)
    assert op.status is OperationStatus.RUNNING
    later = T0 + timedelta(minutes=5)
    [again] = store.claim_due(owner="w2", now=later, lease_for=LEASE)
    assert (again.id, again.status, again.step, again.attempt) == (
        op.id,
        OperationStatus.RUNNING,
        "apply",
        1,
    )


# --- lease renewal & fencing -----------------------------------------------------------------
def test_renew_lease_extends_and_bumps_version(store: SqlStore) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    t = T0 + timedelta(seconds=20)
    renewed = store.renew_lease(op.id, owner="w1", version=op.version, now=t, lease_for=LEASE)
    assert renewed.lease_expires_at == t + LEASE
    assert renewed.version == op.version + 1
    assert store.claim_due(owner="w2", now=T0 + LEASE, lease_for=LEASE) == []


def _fenced_calls(
    store: SqlStore, op: OperationRecord, *, owner: str, version: int, now: datetime
) -> dict[str, Callable[[], OperationRecord]]:
    return {
        "renew_lease": lambda: store.renew_lease(
            op.id, owner=owner, version=version, now=now, lease_for=LEASE
        ),
        "begin_step": lambda: store.begin_step(
            op.id, owner=owner, version=version, now=now, step="apply", attempt=1
        ),
        "finish_step": lambda: store.finish_step(
            op.id,
            owner=owner,
            version=version,
            now=now,
            outcome=JournalOutcome.DONE,
            state="next",
            status=OperationStatus.SUCCEEDED,
            context={"changed": True},
            next_run_at=None,
            message="done",
            output={"x": 1},
        ),
        "finish_step_begin_next": lambda: store.finish_step(
            op.id,
            owner=owner,
            version=version,
            now=now,
            outcome=JournalOutcome.DONE,
            state="next",
            status=OperationStatus.RUNNING,
            context={"changed": True},
            next_run_at=None,
            message="done",
            release_lease=False,
            begin_next=("render", 1),
        ),
    }


@pytest.mark.parametrize(
    "call", ["renew_lease", "begin_step", "finish_step", "finish_step_begin_next"]
)
@pytest.mark.parametrize(
    "case", ["stale_version", "wrong_owner", "expired_lease", "lease_expires_now", "no_lease"]
)
def test_fenced_write_raises_lease_lost_and_writes_nothing(
    store: SqlStore, call: str, case: str
) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    owner, version, now = "w1", op.version, T0 + timedelta(seconds=1)
    if case == "stale_version":
        version = op.version - 1
    elif case == "wrong_owner":
        owner = "w2"
    elif case == "expired_lease":
        now = T0 + LEASE + timedelta(seconds=1)
    elif case == "lease_expires_now":
        now = T0 + LEASE  # fencing needs now < lease_expires_at
    elif case == "no_lease":
        op = store.admin_transition(
            op.id,
            now=T0,
            actor="admin",
            expected_statuses=[OperationStatus.PENDING],
            status=OperationStatus.PENDING,
            message="release",
        )
        version = op.version
    before = store.get_operation(op.id)
    journal_before = store.journal(operation_id=op.id)

    with pytest.raises(LeaseLost):
        _fenced_calls(store, op, owner=owner, version=version, now=now)[call]()

    assert store.get_operation(op.id) == before
    assert store.journal(operation_id=op.id) == journal_before


def test_fencing_on_unknown_operation_is_lease_lost(store: SqlStore) -> None:
    with pytest.raises(LeaseLost):
        store.begin_step(999, owner="w1", version=1, now=T0, step="s", attempt=1)


# --- write-ahead -----------------------------------------------------------------------------
def test_begin_and_finish_step_commit_write_ahead_and_outcome(store: SqlStore) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    t1, t2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=3)

    began = store.begin_step(op.id, owner="w1", version=op.version, now=t1, step="apply", attempt=1)
    assert began.status is OperationStatus.RUNNING
    assert (began.step, began.attempt, began.version) == ("apply", 1, op.version + 1)
    assert began.lease_owner == "w1"  # begin keeps the lease
    started = store.journal(operation_id=op.id)[-1]
    assert (started.outcome, started.step, started.attempt, started.state) == (
        JournalOutcome.STARTED,
        "apply",
        1,
        "resolve",
    )
    assert (started.started_at, started.finished_at, started.actor) == (t1, None, "w1")

    done = store.finish_step(
        op.id,
        owner="w1",
        version=began.version,
        now=t2,
        outcome=JournalOutcome.DONE,
        state="wait-ready",
        status=OperationStatus.WAITING,
        context={"applied": ["svc"]},
        next_run_at=t2 + timedelta(seconds=10),
        message="applied 1 child",
        output={"children": 1},
    )
    assert done.state == "wait-ready"
    assert done.status is OperationStatus.WAITING
    assert done.context == {"applied": ["svc"]}
    assert (done.step, done.attempt) == (None, 0)
    assert (done.lease_owner, done.lease_expires_at) == (None, None)
    assert done.next_run_at == t2 + timedelta(seconds=10)
    assert done.finished_at is None
    assert done.version == began.version + 1
    row = store.journal(operation_id=op.id)[-1]
    assert (row.outcome, row.step, row.attempt, row.state, row.message, row.output) == (
        JournalOutcome.DONE,
        "apply",
        1,
        "wait-ready",
        "applied 1 child",
        {"children": 1},
    )
    assert (row.started_at, row.finished_at) == (t1, t2)


@pytest.mark.parametrize("outcome", [JournalOutcome.WAIT, JournalOutcome.RETRY])
def test_wait_and_retry_keep_step_and_attempt(store: SqlStore, outcome: JournalOutcome) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    op = store.begin_step(op.id, owner="w1", version=op.version, now=T0, step="ready", attempt=2)
    after = store.finish_step(
        op.id,
        owner="w1",
        version=op.version,
        now=T0,
        outcome=outcome,
        state="resolve",
        status=OperationStatus.WAITING,
        context={},
        next_run_at=T0 + timedelta(seconds=5),
        last_error="not ready" if outcome is JournalOutcome.RETRY else None,
    )
    assert (after.step, after.attempt) == ("ready", 2)
    assert after.last_error == ("not ready" if outcome is JournalOutcome.RETRY else None)
    assert store.claim_due(owner="w2", now=T0 + timedelta(seconds=4), lease_for=LEASE) == []
    [due] = store.claim_due(owner="w2", now=T0 + timedelta(seconds=5), lease_for=LEASE)
    assert due.id == op.id


def test_finish_step_with_release_lease_false_keeps_the_lease(store: SqlStore) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    after = store.finish_step(
        op.id,
        owner="w1",
        version=op.version,
        now=T0,
        outcome=JournalOutcome.DONE,
        state="render",
        status=OperationStatus.RUNNING,
        context={},
        next_run_at=None,
        release_lease=False,
    )
    assert (after.lease_owner, after.lease_expires_at) == ("w1", T0 + LEASE)
    # and the holder can keep going with the new version
    store.begin_step(op.id, owner="w1", version=after.version, now=T0, step="render", attempt=1)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (OperationStatus.SUCCEEDED, JournalOutcome.DONE),
        (OperationStatus.FAILED, JournalOutcome.FAILED),
        (OperationStatus.CANCELLED, JournalOutcome.TRANSITION),
    ],
)
def test_terminal_status_sets_finished_at(
    store: SqlStore, status: OperationStatus, outcome: JournalOutcome
) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    t = T0 + timedelta(seconds=7)
    after = store.finish_step(
        op.id,
        owner="w1",
        version=op.version,
        now=t,
        outcome=outcome,
        state="end",
        status=status,
        context={},
        next_run_at=None,
    )
    assert after.finished_at == t
    assert after.status is status
    assert store.claim_due(owner="w2", now=t + timedelta(days=1), lease_for=LEASE) == []


def test_context_that_is_not_json_is_refused(store: SqlStore) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    with pytest.raises(ValueError, match="JSON"):
        store.finish_step(
            op.id,
            owner="w1",
            version=op.version,
            now=T0,
            outcome=JournalOutcome.DONE,
            state="x",
            status=OperationStatus.WAITING,
            context={"when": T0},
            next_run_at=None,
        )
    assert store.get_operation(op.id).version == op.version


# --- fail_operation -------------------------------------------------------------------------
def test_fail_operation_without_a_lease(store: SqlStore) -> None:
    op = store.create_operation(new_op(), now=T0, actor="c")
    held = claimed(store)
    held = store.begin_step(held.id, owner="w1", version=held.version, now=T0, step="s", attempt=3)
    t = T0 + timedelta(seconds=2)
    failed = store.fail_operation(op.id, now=t, message="unknown machine 'x'", actor="engine")
    assert failed.status is OperationStatus.FAILED
    assert failed.last_error == "unknown machine 'x'"
    assert failed.finished_at == t
    assert (failed.lease_owner, failed.step, failed.attempt) == (None, None, 0)
    row = store.journal(operation_id=op.id)[-1]
    assert (row.outcome, row.message, row.actor, row.step, row.attempt) == (
        JournalOutcome.FAILED,
        "unknown machine 'x'",
        "engine",
        "s",
        3,
    )
    # the lease holder is fenced out
    with pytest.raises(LeaseLost):
        store.renew_lease(op.id, owner="w1", version=held.version, now=T0, lease_for=LEASE)
    with pytest.raises(OperationConflict):
        store.fail_operation(op.id, now=t, message="again", actor="engine")
    with pytest.raises(RecordNotFound):
        store.fail_operation(12345, now=t, message="x", actor="engine")


# --- admin transitions ------------------------------------------------------------------------
def test_pause_resume_cancel(store: SqlStore) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    op = store.begin_step(op.id, owner="w1", version=op.version, now=T0, step="s", attempt=1)

    paused = store.admin_transition(
        op.id,
        now=T0,
        actor="alice",
        expected_statuses=[OperationStatus.RUNNING, OperationStatus.WAITING],
        status=OperationStatus.PAUSED,
        message="maintenance",
    )
    assert paused.status is OperationStatus.PAUSED
    assert (paused.lease_owner, paused.lease_expires_at) == (None, None)
    assert paused.version == op.version + 1
    row = store.journal(operation_id=op.id)[-1]
    assert (row.outcome, row.actor, row.message) == (JournalOutcome.ADMIN, "alice", "maintenance")
    assert row.output == {"from": "running", "to": "paused"}
    # its runner is fenced out, and nobody claims it
    with pytest.raises(LeaseLost):
        store.finish_step(
            op.id,
            owner="w1",
            version=op.version,
            now=T0,
            outcome=JournalOutcome.DONE,
            state="x",
            status=OperationStatus.WAITING,
            context={},
            next_run_at=None,
        )
    assert store.claim_due(owner="w2", now=T0 + timedelta(days=1), lease_for=LEASE) == []

    # wrong expectation: nothing changes
    with pytest.raises(OperationConflict):
        store.admin_transition(
            op.id,
            now=T0,
            actor="alice",
            expected_statuses=[OperationStatus.RUNNING],
            status=OperationStatus.WAITING,
            message="resume",
        )
    assert store.get_operation(op.id) == paused

    resumed = store.admin_transition(
        op.id,
        now=T0,
        actor="alice",
        expected_statuses=[OperationStatus.PAUSED],
        status=OperationStatus.WAITING,
        message="resume",
        reset_attempt=True,
    )
    assert (resumed.status, resumed.step, resumed.attempt) == (OperationStatus.WAITING, "s", 0)
    [again] = store.claim_due(owner="w2", now=T0, lease_for=LEASE)
    assert again.id == op.id

    t = T0 + timedelta(minutes=1)
    cancelled = store.admin_transition(
        op.id,
        now=t,
        actor="alice",
        expected_statuses=list(OperationStatus),
        status=OperationStatus.CANCELLED,
        message="cancel",
    )
    assert cancelled.finished_at == t
    assert cancelled.lease_owner is None
    assert store.active_operation("uid-1") is None


def test_retry_a_failed_operation_from_a_state(store: SqlStore) -> None:
    op = store.create_operation(new_op(), now=T0, actor="c")
    store.fail_operation(op.id, now=T0, message="x", actor="engine")
    t = T0 + timedelta(minutes=1)
    retried = store.admin_transition(
        op.id,
        now=t,
        actor="bob",
        expected_statuses=[OperationStatus.FAILED],
        status=OperationStatus.PENDING,
        message="retry",
        next_run_at=t,
        reset_attempt=True,
        state="render",
    )
    assert (retried.status, retried.state, retried.finished_at, retried.next_run_at) == (
        OperationStatus.PENDING,
        "render",
        None,
        t,
    )
    assert store.journal(operation_id=op.id)[-1].state == "render"


def test_retry_is_refused_while_another_operation_holds_the_lane(store: SqlStore) -> None:
    op = store.create_operation(new_op(), now=T0, actor="c")
    store.fail_operation(op.id, now=T0, message="x", actor="engine")
    store.create_operation(new_op(machine="update"), now=T0, actor="c")
    before = store.get_operation(op.id)
    with pytest.raises(OperationConflict):
        store.admin_transition(
            op.id,
            now=T0,
            actor="bob",
            expected_statuses=[OperationStatus.FAILED],
            status=OperationStatus.PENDING,
            message="retry",
        )
    assert store.get_operation(op.id) == before
    assert store.journal(operation_id=op.id)[-1].outcome is JournalOutcome.FAILED


def test_admin_transition_unknown_operation(store: SqlStore) -> None:
    with pytest.raises(RecordNotFound):
        store.admin_transition(
            777,
            now=T0,
            actor="a",
            expected_statuses=[OperationStatus.PENDING],
            status=OperationStatus.PAUSED,
            message="x",
        )


# --- finish_step(begin_next=...): the outcome and the next step's write-ahead in one commit -----
def _begun(store: SqlStore, *, step: str = "apply", at: datetime = T0) -> OperationRecord:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    return store.begin_step(op.id, owner="w1", version=op.version, now=at, step=step, attempt=1)


def _finish_and_enter(
    store: SqlStore,
    op: OperationRecord,
    *,
    now: datetime,
    next_step: str,
    started: StepStart | None,
    **kw: object,
) -> OperationRecord:
    fields: dict[str, object] = {
        "outcome": JournalOutcome.DONE,
        "state": "render",
        "status": OperationStatus.RUNNING,
        "context": {"applied": True},
        "next_run_at": None,
        "message": "apply done",
        "output": {"children": 2},
        "release_lease": False,
        "started": started,
        "begin_next": (next_step, 1),
    }
    fields.update(kw)
    return store.finish_step(op.id, owner="w1", version=op.version, now=now, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("pass_started", [True, False])
def test_finish_step_with_begin_next_enters_the_next_step_in_the_same_commit(
    store: SqlStore, pass_started: bool
) -> None:
    t1, t2, t3 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2), T0 + timedelta(seconds=4)
    began = _begun(store, at=t1)
    started = StepStart(step="apply", attempt=1, started_at=t1) if pass_started else None

    entered = _finish_and_enter(store, began, now=t2, next_step="wait", started=started)

    assert (entered.step, entered.attempt, entered.status) == ("wait", 1, OperationStatus.RUNNING)
    assert (entered.state, entered.context) == ("render", {"applied": True})
    assert (entered.lease_owner, entered.lease_expires_at) == ("w1", T0 + LEASE)
    assert entered.version == began.version + 1  # one write
    assert store.get_operation(entered.id) == entered
    rows = store.journal(operation_id=entered.id)
    assert [r.sequence for r in rows] == list(range(1, len(rows) + 1))
    done, start = rows[-2:]
    assert (done.outcome, done.step, done.attempt, done.state, done.output) == (
        JournalOutcome.DONE,
        "apply",
        1,
        "render",
        {"children": 2},
    )
    assert (done.started_at, done.finished_at, done.message) == (t1, t2, "apply done")
    assert (start.outcome, start.step, start.attempt, start.state, start.actor) == (
        JournalOutcome.STARTED,
        "wait",
        1,
        "render",
        "w1",
    )
    assert (start.started_at, start.finished_at, start.output) == (t2, None, None)

    # the entered step finishes like any begun one, and the sequence stays gap-free
    finished = store.finish_step(
        entered.id,
        owner="w1",
        version=entered.version,
        now=t3,
        outcome=JournalOutcome.DONE,
        state="render",
        status=OperationStatus.SUCCEEDED,
        context={},
        next_run_at=None,
        started=StepStart(step="wait", attempt=1, started_at=t2) if pass_started else None,
    )
    assert (finished.step, finished.attempt, finished.lease_owner) == (None, 0, None)
    rows = store.journal(operation_id=entered.id)
    assert [r.sequence for r in rows] == list(range(1, len(rows) + 1))
    last = rows[-1]
    assert (last.outcome, last.step, last.attempt, last.started_at, last.finished_at) == (
        JournalOutcome.DONE,
        "wait",
        1,
        t2,
        t3,
    )


def test_begin_next_after_a_failed_step_enters_the_compensation(
    store: SqlStore,
) -> None:
    """begin_next works after any step outcome (here a compensation: FAILED → next state)."""
    op = _begun(store)
    after = _finish_and_enter(
        store,
        op,
        now=T0,
        next_step="undo",
        started=StepStart(step="apply", attempt=1, started_at=T0),
        outcome=JournalOutcome.FAILED,
        state="rollback",
        last_error="boom",
    )
    assert (after.step, after.attempt, after.state, after.last_error) == (
        "undo",
        1,
        "rollback",
        "boom",
    )
    rows = store.journal(operation_id=op.id)
    assert [(r.outcome, r.step) for r in rows[-2:]] == [
        (JournalOutcome.FAILED, "apply"),
        (JournalOutcome.STARTED, "undo"),
    ]


@pytest.mark.parametrize(
    "kw",
    [
        {"status": OperationStatus.WAITING},
        {"status": OperationStatus.SUCCEEDED},
        {"release_lease": True},
        {"begin_next": ("x", 0)},
        {"begin_next": ("", 1)},
    ],
    ids=["waiting", "terminal", "release_lease", "attempt_0", "no_step"],
)
def test_begin_next_needs_a_running_operation_that_keeps_its_lease(
    store: SqlStore, kw: dict[str, object]
) -> None:
    op = _begun(store)
    journal_before = store.journal(operation_id=op.id)
    with pytest.raises(ValueError):
        _finish_and_enter(store, op, now=T0, next_step="wait", started=None, **kw)
    assert store.get_operation(op.id) == op
    assert store.journal(operation_id=op.id) == journal_before


@pytest.mark.parametrize(
    "started",
    [
        StepStart(step="other", attempt=1, started_at=T0),
        StepStart(step="apply", attempt=2, started_at=T0),
    ],
    ids=["other_step", "other_attempt"],
)
@pytest.mark.parametrize("begin_next", [True, False])
def test_finish_step_is_fenced_on_the_step_in_flight_it_names(
    store: SqlStore, started: StepStart, begin_next: bool
) -> None:
    op = _begun(store)
    journal_before = store.journal(operation_id=op.id)
    with pytest.raises(LeaseLost, match="in flight"):
        if begin_next:
            _finish_and_enter(store, op, now=T0, next_step="wait", started=started)
        else:
            store.finish_step(
                op.id,
                owner="w1",
                version=op.version,
                now=T0,
                outcome=JournalOutcome.DONE,
                state="x",
                status=OperationStatus.WAITING,
                context={},
                next_run_at=None,
                started=started,
            )
    assert store.get_operation(op.id) == op
    assert store.journal(operation_id=op.id) == journal_before


def test_a_crash_after_the_merged_commit_reruns_the_entered_step_as_attempt_2(
    store: SqlStore,
) -> None:
    """The runner committed 'apply done, entering wait' and died before running 'wait': once
    the lease expired, the next claimer sees 'wait' attempt 1 in flight and begins attempt 2;
    the dead runner's late commit is fenced off."""
    op = _begun(store)
    entered = _finish_and_enter(
        store,
        op,
        now=T0 + timedelta(seconds=1),
        next_step="wait",
        started=StepStart(step="apply", attempt=1, started_at=T0),
    )
    assert store.claim_due(owner="w2", now=T0 + LEASE - timedelta(seconds=1), lease_for=LEASE) == []
    [again] = store.claim_due(owner="w2", now=T0 + LEASE, lease_for=LEASE)
    assert (again.status, again.step, again.attempt) == (OperationStatus.RUNNING, "wait", 1)
    rerun = store.begin_step(
        again.id, owner="w2", version=again.version, now=T0 + LEASE, step="wait", attempt=2
    )
    with pytest.raises(LeaseLost):
        store.finish_step(
            entered.id,
            owner="w1",
            version=entered.version,
            now=T0 + LEASE,
            outcome=JournalOutcome.DONE,
            state="render",
            status=OperationStatus.RUNNING,
            context={},
            next_run_at=None,
            release_lease=False,
            started=StepStart(step="wait", attempt=1, started_at=T0 + timedelta(seconds=1)),
            begin_next=("publish", 1),
        )
    rows = store.journal(operation_id=op.id)
    assert [r.sequence for r in rows] == list(range(1, len(rows) + 1))
    assert [(r.outcome, r.step, r.attempt, r.actor) for r in rows if r.step == "wait"] == [
        (JournalOutcome.STARTED, "wait", 1, "w1"),
        (JournalOutcome.STARTED, "wait", 2, "w2"),
    ]
    assert store.get_operation(op.id) == rerun


# --- the engine's bookkeeping ------------------------------------------------------------------
KEPT = EngineBookkeeping(
    state="verify",
    step="check",
    input={"issued": False, "hosts": ["a.example"]},
    since=T0 + timedelta(seconds=1, microseconds=250),
    failures=2,
    finished=3,
    error="probe refused",
    failed=True,
)


def test_a_new_operation_has_no_bookkeeping(store: SqlStore) -> None:
    op = store.create_operation(new_op(), now=T0, actor="c")
    assert op.bookkeeping == EngineBookkeeping()


def test_finish_step_commits_the_bookkeeping_beside_the_context(store: SqlStore) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    after = store.finish_step(
        op.id, owner="w1", version=op.version, now=T0, outcome=JournalOutcome.WAIT,
        state="verify", status=OperationStatus.WAITING, context={"n": 2},
        next_run_at=T0 + timedelta(seconds=5), bookkeeping=KEPT,
    )
    expected = KEPT.model_copy(update={"input_raw": '{"hosts":["a.example"],"issued":false}'})
    assert after.bookkeeping == expected
    assert after.bookkeeping.since is not None and after.bookkeeping.since.tzinfo is not None
    assert after.context == {"n": 2}  # the context holds the context only
    assert store.get_operation(op.id).bookkeeping == expected
    # every write that is not the engine's commit of a step leaves it as it is
    [again] = store.claim_due(owner="w2", now=T0 + timedelta(seconds=5), lease_for=LEASE)
    renewed = store.renew_lease(again.id, owner="w2", version=again.version,
                                now=T0 + timedelta(seconds=6), lease_for=LEASE)
    began = store.begin_step(again.id, owner="w2", version=renewed.version,
                             now=T0 + timedelta(seconds=6), step="check", attempt=4)
    paused = store.admin_transition(
        op.id, now=T0 + timedelta(seconds=7), actor="op", expected_statuses=[began.status],
        status=OperationStatus.PAUSED, message="hold",
    )
    failed = store.fail_operation(op.id, now=T0 + timedelta(seconds=8), message="x", actor="e")
    assert [r.bookkeeping for r in (again, renewed, began, paused, failed)] == [expected] * 5


def test_finish_step_without_bookkeeping_clears_it(store: SqlStore) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    kept = store.finish_step(
        op.id, owner="w1", version=op.version, now=T0, outcome=JournalOutcome.DONE,
        state="verify", status=OperationStatus.RUNNING, context={}, next_run_at=None,
        release_lease=False, bookkeeping=KEPT,
    )
    done = store.finish_step(
        op.id, owner="w1", version=kept.version, now=T0, outcome=JournalOutcome.DONE,
        state="done", status=OperationStatus.SUCCEEDED, context={}, next_run_at=None,
    )
    assert done.bookkeeping == EngineBookkeeping()


def test_a_fenced_off_finish_step_writes_no_bookkeeping(store: SqlStore) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    with pytest.raises(LeaseLost):
        store.finish_step(
            op.id, owner="w1", version=op.version + 1, now=T0, outcome=JournalOutcome.WAIT,
            state="verify", status=OperationStatus.WAITING, context={}, next_run_at=None,
            bookkeeping=KEPT,
        )
    assert store.get_operation(op.id).bookkeeping == EngineBookkeeping()


def test_a_step_input_that_is_not_json_is_refused_and_nothing_is_written(
    store: SqlStore,
) -> None:
    store.create_operation(new_op(), now=T0, actor="c")
    op = claimed(store)
    with pytest.raises(ValueError, match="engine step input is not JSON-serialisable"):
        store.finish_step(
            op.id, owner="w1", version=op.version, now=T0, outcome=JournalOutcome.WAIT,
            state="verify", status=OperationStatus.WAITING, context={}, next_run_at=None,
            bookkeeping=EngineBookkeeping(input={"bad": float("nan")}),
        )
    assert store.get_operation(op.id).version == op.version


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]"])
def test_an_unreadable_step_input_reads_back_as_none_with_raw_text(
    store: SqlStore, store_url: str, raw: str
) -> None:
    op = store.create_operation(new_op(), now=T0, actor="c")
    engine, _ = connect(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE operations SET engine_input = :raw WHERE id = :id"),
                         {"raw": raw, "id": op.id})
    finally:
        engine.dispose()
    [got] = store.claim_due(owner="w", now=T0, lease_for=LEASE)
    assert (got.bookkeeping.input, got.bookkeeping.input_raw) == (None, raw)


# --- wakes ----------------------------------------------------------------------------------


def _waiting_on(store: SqlStore, uid: str, keys: tuple[str, ...], *,
                due: datetime) -> OperationRecord:
    """An operation of ``uid`` whose step waits on ``keys`` until ``due``."""
    op = store.create_operation(new_op(uid), now=T0, actor="c")
    [op] = store.claim_due(owner="w", now=T0, lease_for=LEASE)
    op = store.begin_step(op.id, owner="w", version=op.version, now=T0, step="wait_ready",
                          attempt=1)
    return store.finish_step(
        op.id, owner="w", version=op.version, now=T0, outcome=JournalOutcome.WAIT,
        state="resolve", status=OperationStatus.WAITING, context={}, next_run_at=due,
        message="waiting", bookkeeping=EngineBookkeeping(step="wait_ready", wait_on=keys),
    )


def test_a_wake_finds_exactly_the_operations_waiting_on_the_key(store: SqlStore) -> None:
    later = T0 + timedelta(seconds=30)
    a = _waiting_on(store, "gw-a", ("ConfigMap/ns/a", "Secret/ns/tls"), due=later)
    ab = _waiting_on(store, "gw-a2", ("ConfigMap/ns/ab",), due=later)
    assert a.bookkeeping.wait_on == ("ConfigMap/ns/a", "Secret/ns/tls")
    now = T0 + timedelta(seconds=1)
    assert store.wake_waiting("gw-a", key="ConfigMap/ns/ab", now=now) == 0  # not a prefix
    assert store.wake_waiting("gw-a2", key="ConfigMap/ns/a", now=now) == 0
    assert store.wake_waiting("gw-a", key="Secret/ns/tls", now=now) == 1
    assert store.get_operation(a.id).next_run_at == now
    assert store.get_operation(ab.id).next_run_at == later
    assert store.wake_waiting("gw-a", key="Secret/ns/tls", now=now) == 0  # due already
    assert store.wake_waiting("gw-a2", key=None, now=now) == 1  # any key


def test_a_wake_during_the_running_step_is_kept_by_its_wait_but_not_by_a_retry(
    store: SqlStore,
) -> None:
    for outcome, kept in ((JournalOutcome.WAIT, True), (JournalOutcome.RETRY, False)):
        uid = f"gw-{outcome.value}"
        store.create_operation(new_op(uid), now=T0, actor="c")
        [op] = store.claim_due(owner="w", now=T0, lease_for=LEASE)
        op = store.begin_step(op.id, owner="w", version=op.version, now=T0, step="s",
                              attempt=1)
        assert op.next_run_at is None  # not scheduled while it runs
        woke = T0 + timedelta(seconds=1)
        assert store.wake_waiting(uid, key="ConfigMap/ns/x", now=woke) == 1
        assert store.get_operation(op.id).version == op.version  # a wake is not a write
        done = store.finish_step(
            op.id, owner="w", version=op.version, now=woke, outcome=outcome, state="resolve",
            status=OperationStatus.WAITING, context={},
            next_run_at=woke + timedelta(seconds=30), message="not yet",
        )
        assert done.next_run_at == (woke if kept else woke + timedelta(seconds=30)), outcome
