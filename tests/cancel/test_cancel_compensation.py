"""``cancel`` runs the machine's cancel compensation (``StateSpec.on_cancel``) as steps of the
operation — write-ahead, journaled, fenced — unless told not to; a state without one ends where
it stands. Real store (SQLite and PostgreSQL), real runner, a manual clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from bifrost.clock import ManualClock
from bifrost.engine import Done, Runner, StepContext, StepOutcome, Wait, start_operation
from bifrost.engine.admin import AdminRefused, cancel_operation
from bifrost.machines import MachineRegistry, MachineSpec, RetryPolicy, StateSpec, StepSpec
from bifrost.records import JournalOutcome, OperationRecord, OperationStatus
from bifrost.store import SqlStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
POLICY = RetryPolicy(max_attempts=3, initial_backoff=timedelta(seconds=1))


class SwapContext(BaseModel):
    made: bool = False


def _steps(*names: str) -> tuple[StepSpec, ...]:
    return tuple(StepSpec(name=n, retry=POLICY) for n in names)


SWAP = MachineSpec(
    name="swap",
    version=1,
    initial="request",
    context_model=SwapContext,
    states=(
        StateSpec(name="request", steps=_steps("make"), on_done="hold", on_cancel="unwinding"),
        StateSpec(name="hold", steps=_steps("hold_on"), on_done="finish", on_cancel="unwinding"),
        StateSpec(name="finish", steps=_steps("commit"), on_done="done"),
        StateSpec(name="unwinding", steps=_steps("unmake"), on_done="cancelled"),
        StateSpec(name="done", terminal=OperationStatus.SUCCEEDED),
        StateSpec(name="cancelled", terminal=OperationStatus.CANCELLED),
    ),
)
REGISTRY = MachineRegistry([SWAP])


class Steps:
    """Each step answers from a per-step script (default Done) and records its calls."""

    def __init__(self) -> None:
        self.script: dict[str, list[Any]] = {}
        self.calls: list[str] = []

    def impl(self, name: str) -> Any:
        steps = self

        class _Step:
            def run(self, ctx: StepContext[Any], input: Any) -> StepOutcome:
                steps.calls.append(name)
                queued = steps.script.get(name) or []
                item = queued.pop(0) if queued else None
                if callable(item):
                    item = item(ctx)
                if isinstance(item, BaseException):
                    raise item
                return item if item is not None else Done()

        return _Step()

    def bound(self) -> dict[str, Any]:
        return {n: self.impl(n) for n in ("make", "hold_on", "commit", "unmake")}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def _runner(store: SqlStore, steps: Steps, clock: ManualClock) -> Runner:
    return Runner(store, REGISTRY, steps.bound(), clock=clock, owner="runner-a",
                  lease_for=LEASE, rng=random.Random(0))


def _start(store: SqlStore, clock: ManualClock) -> OperationRecord:
    return start_operation(store, SWAP, gateway_uid="gw-1", namespace="ns", name="gw",
                           context=SwapContext(), clock=clock, actor="test")


def _holding(store: SqlStore, steps: Steps, clock: ManualClock) -> tuple[Runner, int]:
    """An operation waiting in ``hold`` (like a rotation draining)."""
    steps.script["hold_on"] = [Wait("draining", timedelta(minutes=5))]
    runner = _runner(store, steps, clock)
    op = _start(store, clock)
    runner.run_until_idle()
    held = store.get_operation(op.id)
    assert (held.state, held.status) == ("hold", OperationStatus.WAITING)
    return runner, op.id


def test_cancel_runs_the_compensation_as_journaled_steps_and_ends_cancelled(
    store: SqlStore, clock: ManualClock
) -> None:
    steps = Steps()
    runner, op_id = _holding(store, steps, clock)

    after = cancel_operation(store, op_id, clock=clock, actor="ops", reason="wrong cert",
                             compensate_with=REGISTRY)
    assert (after.state, after.status) == ("unwinding", OperationStatus.WAITING)
    runner.run_until_idle()  # due now: nothing was running

    done = store.get_operation(op_id)
    assert (done.state, done.status) == ("cancelled", OperationStatus.CANCELLED)
    assert steps.calls.count("unmake") == 1 and "commit" not in steps.calls
    rows = store.journal(operation_id=op_id)
    admin = [r for r in rows if r.outcome is JournalOutcome.ADMIN]
    assert [(r.actor, r.message) for r in admin] == [
        ("ops", "cancelled by ops: wrong cert; compensating: hold → unwinding")]
    unmake = [(r.state, r.outcome) for r in rows if r.step == "unmake"]
    assert unmake == [("unwinding", JournalOutcome.STARTED), ("cancelled", JournalOutcome.DONE)]
    assert [r.sequence for r in rows] == list(range(1, len(rows) + 1))
    # The lane is free: a new operation starts.
    assert _start(store, clock).status is OperationStatus.PENDING


def test_no_compensate_ends_the_operation_where_it_stands(
    store: SqlStore, clock: ManualClock
) -> None:
    steps = Steps()
    runner, op_id = _holding(store, steps, clock)
    after = cancel_operation(store, op_id, clock=clock, actor="ops")
    assert (after.state, after.status) == ("hold", OperationStatus.CANCELLED)
    clock.advance(timedelta(hours=1))
    assert runner.run_once() == 0
    assert "unmake" not in steps.calls


def test_a_state_without_compensation_ends_where_it_stands_and_the_journal_says_why(
    store: SqlStore, clock: ManualClock
) -> None:
    steps = Steps()
    steps.script["commit"] = [Wait("committing", timedelta(minutes=5))]
    runner = _runner(store, steps, clock)
    op = _start(store, clock)
    runner.run_until_idle()
    assert store.get_operation(op.id).state == "finish"
    after = cancel_operation(store, op.id, clock=clock, actor="ops", compensate_with=REGISTRY)
    assert (after.state, after.status) == ("finish", OperationStatus.CANCELLED)
    (admin,) = [r for r in store.journal(operation_id=op.id)
                if r.outcome is JournalOutcome.ADMIN]
    assert admin.message == "cancelled by ops (state finish of swap has no cancel compensation)"
    assert "unmake" not in steps.calls


def test_a_cancel_during_a_running_step_is_fenced_and_compensates_after_its_lease(
    store: SqlStore, clock: ManualClock
) -> None:
    steps = Steps()
    seen: dict[str, OperationRecord] = {}

    def cancel_me(ctx: StepContext[Any]) -> StepOutcome:
        seen["after"] = cancel_operation(store, ctx.operation.id, clock=clock, actor="ops",
                                         compensate_with=REGISTRY)
        return Done()  # the step "finishes" after the cancel: its commit is fenced off

    steps.script["hold_on"] = [cancel_me]
    runner = _runner(store, steps, clock)
    op = _start(store, clock)
    runner.run_until_idle()

    after = seen["after"]
    assert (after.state, after.status) == ("unwinding", OperationStatus.WAITING)
    # Due when the step's lease would have expired, not before: nothing runs beside it.
    assert after.next_run_at is not None and after.next_run_at > clock.now()
    assert "unmake" not in steps.calls
    rows = store.journal(operation_id=op.id)
    assert not [r for r in rows if r.step == "hold_on" and r.outcome is JournalOutcome.DONE]

    clock.advance(LEASE)
    runner.run_until_idle()
    done = store.get_operation(op.id)
    assert (done.state, done.status) == ("cancelled", OperationStatus.CANCELLED)
    assert steps.calls == ["make", "hold_on", "unmake"]


def test_a_compensation_step_that_crashes_is_re_run(store: SqlStore, clock: ManualClock) -> None:
    steps = Steps()
    runner, op_id = _holding(store, steps, clock)
    steps.script["unmake"] = [RuntimeError("API went away")]
    cancel_operation(store, op_id, clock=clock, actor="ops", compensate_with=REGISTRY)
    runner.run_until_idle()
    assert store.get_operation(op_id).status is OperationStatus.WAITING  # retry backoff
    clock.advance(timedelta(minutes=1))
    runner.run_until_idle()
    done = store.get_operation(op_id)
    assert (done.state, done.status) == ("cancelled", OperationStatus.CANCELLED)
    assert steps.calls.count("unmake") == 2


def test_cancelling_the_compensation_itself_ends_it_where_it_stands(
    store: SqlStore, clock: ManualClock
) -> None:
    steps = Steps()
    runner, op_id = _holding(store, steps, clock)
    steps.script["unmake"] = [Wait("children not there yet", timedelta(minutes=5))]
    cancel_operation(store, op_id, clock=clock, actor="ops", compensate_with=REGISTRY)
    runner.run_until_idle()
    assert store.get_operation(op_id).state == "unwinding"
    again = cancel_operation(store, op_id, clock=clock, actor="ops", compensate_with=REGISTRY)
    assert (again.state, again.status) == ("unwinding", OperationStatus.CANCELLED)


def test_a_cancel_decided_for_a_state_the_operation_has_left_changes_nothing(
    store: SqlStore, clock: ManualClock
) -> None:
    """The compensation is chosen from the state the operation was read in; if the runner moved
    it on before the cancel is written (here: from ``hold``, which compensates, to ``finish``,
    which does not — like a rotation going from drain to detaching the old certificate), the
    cancel is refused instead of sending the operation to a compensation meant for another
    state."""
    steps = Steps()
    runner, op_id = _holding(store, steps, clock)
    steps.script["hold_on"] = [Done()]
    steps.script["commit"] = [Wait("committing", timedelta(minutes=5))]

    class RunnerMovesFirst:
        """The store as the cancel sees it: the runner commits its next step between the
        cancel's read and its write."""

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def admin_transition(self, *args: Any, **kwargs: Any) -> OperationRecord:
            clock.advance(timedelta(minutes=6))
            runner.run_until_idle()  # hold → finish, waiting there
            return store.admin_transition(*args, **kwargs)

    with pytest.raises(AdminRefused, match="moved from state hold to finish meanwhile"):
        cancel_operation(RunnerMovesFirst(), op_id, clock=clock,  # type: ignore[arg-type]
                         actor="ops", compensate_with=REGISTRY)
    after = store.get_operation(op_id)
    assert (after.state, after.status) == ("finish", OperationStatus.WAITING)
    assert "unmake" not in steps.calls
    assert not [r for r in store.journal(operation_id=op_id) if r.outcome is JournalOutcome.ADMIN]
