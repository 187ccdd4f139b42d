"""Store contract: the journal — sequences without gaps, ordering, pruning, corrupt rows, and
repeated identical waits merged into one row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from bifrost.records import JournalOutcome, NewOperation, OperationStatus
from bifrost.store import LeaseLost, SqlStore
from bifrost.store.sql import connect

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _op(uid: str, lane: str = "default") -> NewOperation:
    return NewOperation(
        gateway_uid=uid,
        namespace="ns",
        name=uid,
        machine="provision",
        machine_version=1,
        state="s0",
        lane=lane,
    )


def _run_steps(store: SqlStore, op_id: int, owner: str, steps: int, *, start: datetime) -> None:
    """Begin+finish ``steps`` steps on an operation ``owner`` holds."""
    op = store.get_operation(op_id)
    now = start
    for i in range(steps):
        op = store.begin_step(
            op_id, owner=owner, version=op.version, now=now, step=f"st{i}", attempt=1
        )
        op = store.finish_step(
            op_id,
            owner=owner,
            version=op.version,
            now=now,
            outcome=JournalOutcome.DONE,
            state=f"s{i + 1}",
            status=OperationStatus.RUNNING,
            context={"i": i},
            next_run_at=None,
            release_lease=False,
        )
        now += timedelta(seconds=1)


def test_sequence_is_gapless_per_operation_across_interleaved_writes(store: SqlStore) -> None:
    a = store.create_operation(_op("a"), now=T0, actor="c")
    b = store.create_operation(_op("b"), now=T0, actor="c")
    claimed = {o.id for o in store.claim_due(owner="w", now=T0, lease_for=LEASE, limit=2)}
    assert claimed == {a.id, b.id}
    for _ in range(3):
        _run_steps(store, a.id, "w", 1, start=T0)
        _run_steps(store, b.id, "w", 2, start=T0)
    store.admin_transition(
        a.id,
        now=T0,
        actor="admin",
        expected_statuses=[OperationStatus.RUNNING],
        status=OperationStatus.PAUSED,
        message="p",
    )
    store.fail_operation(b.id, now=T0, message="f", actor="engine")

    seq_a = [r.sequence for r in store.journal(operation_id=a.id)]
    seq_b = [r.sequence for r in store.journal(operation_id=b.id)]
    assert seq_a == list(range(1, 1 + 1 + 3 * 2 + 1))
    assert seq_b == list(range(1, 1 + 1 + 3 * 4 + 1))
    # ids give the global commit order
    everything = store.journal()
    assert [r.id for r in everything] == sorted(r.id for r in everything)


def test_journal_filters_limits_and_orders(store: SqlStore) -> None:
    a = store.create_operation(_op("a"), now=T0, actor="c")
    store.claim_due(owner="w", now=T0, lease_for=LEASE)
    _run_steps(store, a.id, "w", 3, start=T0)
    store.create_operation(_op("b"), now=T0, actor="c")

    rows = store.journal(gateway_uid="a")
    assert [r.sequence for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.sequence for r in store.journal(gateway_uid="a", limit=2)] == [1, 2]
    newest = store.journal(gateway_uid="a", limit=2, newest_first=True)
    assert [r.sequence for r in newest] == [7, 6]
    assert [r.gateway_uid for r in store.journal(gateway_uid="b")] == ["b"]
    assert len(store.journal()) == 8
    assert store.journal(operation_id=a.id, gateway_uid="b") == []


def test_prune_journal_keeps_the_newest_rows_of_one_gateway(store: SqlStore) -> None:
    a = store.create_operation(_op("a"), now=T0, actor="c")
    b = store.create_operation(_op("b"), now=T0, actor="c")
    store.claim_due(owner="w", now=T0, lease_for=LEASE, limit=2)
    _run_steps(store, a.id, "w", 5, start=T0)  # 11 rows
    _run_steps(store, b.id, "w", 2, start=T0)  # 5 rows
    newest = store.journal(gateway_uid="a", newest_first=True, limit=4)

    assert store.prune_journal("a", keep=4) == 7
    assert store.journal(gateway_uid="a", newest_first=True) == newest
    assert len(store.journal(gateway_uid="b")) == 5
    assert store.prune_journal("a", keep=4) == 0
    assert store.prune_journal("unknown", keep=1) == 0

    # sequences keep increasing after pruning, even when all of an operation's rows went
    assert store.prune_journal("a", keep=0) == 4
    _run_steps(store, a.id, "w", 1, start=T0)
    assert [r.sequence for r in store.journal(operation_id=a.id)] == [12, 13]


def test_journal_over_names_the_gateways_prune_would_shorten(store: SqlStore) -> None:
    a = store.create_operation(_op("a"), now=T0, actor="c")
    b = store.create_operation(_op("b"), now=T0, actor="c")
    store.claim_due(owner="w", now=T0, lease_for=LEASE, limit=2)
    _run_steps(store, a.id, "w", 5, start=T0)  # 11 rows
    _run_steps(store, b.id, "w", 2, start=T0)  # 5 rows

    assert store.journal_over(4) == ["a", "b"]
    assert store.journal_over(5) == ["a"]
    assert store.journal_over(11) == []


def test_prune_journal_rejects_negative_keep(store: SqlStore) -> None:
    with pytest.raises(ValueError):
        store.prune_journal("a", keep=-1)


def _raw_exec(store_url: str, sql: str, **params: object) -> None:
    engine, _ = connect(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', ""])
def test_corrupt_context_reads_back_as_none_with_raw_text(
    store: SqlStore, store_url: str, raw: str
) -> None:
    op = store.create_operation(_op("a"), now=T0, actor="c")
    _raw_exec(store_url, "UPDATE operations SET context = :raw WHERE id = :id", raw=raw, id=op.id)

    got = store.get_operation(op.id)
    assert got.context is None
    assert got.context_raw == raw
    # every read path survives it, including claiming it
    assert [o.context_raw for o in store.list_operations()] == [raw]
    active = store.active_operation("a")
    assert active is not None and active.context is None
    [claimed] = store.claim_due(owner="w", now=T0, lease_for=LEASE)
    assert claimed.context is None
    # and the engine can fail it as poison
    failed = store.fail_operation(op.id, now=T0, message="corrupt context", actor="engine")
    assert failed.status is OperationStatus.FAILED


def test_corrupt_journal_output_reads_back_as_none(store: SqlStore, store_url: str) -> None:
    op = store.create_operation(_op("a"), now=T0, actor="c")
    _raw_exec(store_url, "UPDATE journal SET output = '{oops' WHERE operation_id = :id", id=op.id)
    [row] = store.journal(operation_id=op.id)
    assert row.output is None


def _wait_again(store: SqlStore, op_id: int, *, attempt: int, now: datetime,
                message: str = "child not ready", step: str = "wait_ready") -> None:
    """One more attempt of ``step`` that waits (write-ahead, then the WAIT outcome)."""
    op = store.get_operation(op_id)
    op = store.begin_step(op_id, owner="w", version=op.version, now=now, step=step,
                          attempt=attempt)
    store.finish_step(
        op_id, owner="w", version=op.version, now=now, outcome=JournalOutcome.WAIT,
        state="s0", status=OperationStatus.WAITING, context={}, next_run_at=now,
        message=message, release_lease=False,
    )


def _claimed(store: SqlStore, uid: str = "w1") -> int:
    op = store.create_operation(_op(uid), now=T0, actor="c")
    store.claim_due(owner="w", now=T0, lease_for=LEASE)
    return op.id


def test_identical_waits_are_one_row_with_a_count_and_no_write_ahead_rows(
    store: SqlStore,
) -> None:
    op_id = _claimed(store)
    for attempt in range(1, 5):
        _wait_again(store, op_id, attempt=attempt, now=T0 + timedelta(seconds=attempt))
    rows = store.journal(operation_id=op_id)
    assert [(r.sequence, r.outcome, r.attempt, r.repeats) for r in rows] == [
        (1, JournalOutcome.TRANSITION, 0, 1),  # created
        (2, JournalOutcome.STARTED, 1, 1),  # the first attempt's write-ahead stays
        (3, JournalOutcome.WAIT, 1, 4),  # attempts 1-4 (it pairs with attempt 1's STARTED)
    ]
    wait = rows[-1]
    assert wait.started_at == T0 + timedelta(seconds=1)
    assert wait.last_at == T0 + timedelta(seconds=4)
    assert wait.message == "child not ready"
    # the sequence counter went back with each folded write-ahead: the next row follows on
    _run_steps(store, op_id, "w", 1, start=T0 + timedelta(seconds=5))
    assert [r.sequence for r in store.journal(operation_id=op_id)] == [1, 2, 3, 4, 5]


def test_a_different_wait_or_a_row_in_between_starts_a_new_row(store: SqlStore) -> None:
    op_id = _claimed(store)
    _wait_again(store, op_id, attempt=1, now=T0)
    _wait_again(store, op_id, attempt=2, now=T0, message="another reason")
    _wait_again(store, op_id, attempt=3, now=T0, message="another reason")
    op = store.get_operation(op_id)
    store.renew_lease(op_id, owner="w", version=op.version, now=T0, lease_for=LEASE)  # no row
    _wait_again(store, op_id, attempt=4, now=T0, message="another reason")
    _wait_again(store, op_id, attempt=1, now=T0, message="another reason", step="other_step")
    # a step's Done in between: the same wait afterwards is a new row
    _run_steps(store, op_id, "w", 1, start=T0)
    _wait_again(store, op_id, attempt=1, now=T0, message="another reason", step="other_step")
    waits = [(r.step, r.message, r.repeats) for r in store.journal(operation_id=op_id)
             if r.outcome is JournalOutcome.WAIT]
    assert waits == [
        ("wait_ready", "child not ready", 1),
        ("wait_ready", "another reason", 3),
        ("other_step", "another reason", 1),
        ("other_step", "another reason", 1),
    ]
    rows = store.journal(operation_id=op_id)
    assert [r.sequence for r in rows] == list(range(1, len(rows) + 1))


def test_a_merged_wait_is_fenced_like_any_finish(store: SqlStore) -> None:
    op_id = _claimed(store)
    _wait_again(store, op_id, attempt=1, now=T0)
    op = store.get_operation(op_id)
    op = store.begin_step(op_id, owner="w", version=op.version, now=T0, step="wait_ready",
                          attempt=2)
    with pytest.raises(LeaseLost):
        store.finish_step(
            op_id, owner="intruder", version=op.version, now=T0, outcome=JournalOutcome.WAIT,
            state="s0", status=OperationStatus.WAITING, context={}, next_run_at=T0,
            message="child not ready",
        )
    rows = store.journal(operation_id=op_id)
    assert [(r.outcome, r.repeats) for r in rows][-2:] == [
        (JournalOutcome.WAIT, 1), (JournalOutcome.STARTED, 1)]  # nothing merged or removed
