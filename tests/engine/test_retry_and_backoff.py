"""Failures are retried with exponential backoff + jitter up to the step's policy; then the state's
compensation runs or the operation fails. Waits do not count; a step's timeout bounds it all.
Time is driven by a ManualClock: no sleeping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from engine_kit import TIGHT, ScriptedStep, assert_journal_sound, demo_steps, make_runner, new_demo
from support.machines.demo import demo_spec

from bifrost.clock import ManualClock
from bifrost.engine import Fail, Retry, Wait
from bifrost.machines import RetryPolicy
from bifrost.records import JournalOutcome, OperationStatus
from bifrost.store import SqlStore


class Boom(RuntimeError):
    pass


class Crash(BaseException):
    """Stands for the process dying mid-step: not caught by the engine."""


def test_exceptions_are_retried_with_jittered_exponential_backoff(
    store: SqlStore, clock: ManualClock
) -> None:
    steps = demo_steps(create=ScriptedStep("create", Boom("api 500"), Boom("api 503")))
    runner = make_runner(store, steps, clock=clock)
    op = new_demo(store, clock)
    runner.run_until_idle()

    first = store.get_operation(op.id)
    assert (first.status, first.state, first.step) == (OperationStatus.WAITING, "apply", "create")
    # the exception's text may carry values: the type and the place only (the text is DEBUG)
    assert first.last_error is not None
    assert first.last_error.startswith("Boom raised at ") and "api 500" not in first.last_error
    assert first.next_run_at is not None
    delay1 = first.next_run_at - clock.now()
    assert timedelta(seconds=2 * 0.75) <= delay1 <= timedelta(seconds=2)  # initial, jitter 0.25

    clock.advance(delay1 - timedelta(milliseconds=1))
    assert runner.run_once() == 0
    clock.advance(timedelta(milliseconds=1))
    runner.run_until_idle()
    second = store.get_operation(op.id)
    assert second.last_error is not None and second.last_error.startswith("Boom raised at ")
    assert second.next_run_at is not None
    delay2 = second.next_run_at - clock.now()
    assert timedelta(seconds=4 * 0.75) <= delay2 <= timedelta(seconds=4)  # doubled

    clock.advance(delay2)
    runner.run_until_idle()
    done = store.get_operation(op.id)
    assert done.status is OperationStatus.SUCCEEDED
    assert done.last_error is None
    assert [a for (_, a, _) in steps["create"].calls] == [1, 2, 3]
    retries = [
        r
        for r in assert_journal_sound(store.journal(operation_id=op.id))
        if r.outcome is JournalOutcome.RETRY
    ]
    assert len(retries) == 2 and "Boom raised at " in (retries[0].message or "")
    assert all("api 50" not in (r.message or "") for r in retries)


def test_exhausted_retries_compensate_where_the_machine_says_so(
    store: SqlStore, clock: ManualClock
) -> None:
    steps = demo_steps(attach=ScriptedStep("attach", *[Boom("refused")] * 10))
    runner = make_runner(store, steps, clock=clock)
    op = new_demo(store, clock)
    for _ in range(10):
        runner.run_until_idle()
        clock.advance(timedelta(minutes=5))
    final = store.get_operation(op.id)
    assert (final.status, final.state) == (OperationStatus.FAILED, "rolled_back")
    assert final.last_error is not None and "failed 3 times" in final.last_error
    assert len(steps["attach"].calls) == TIGHT.max_attempts
    assert len(steps["undo"].calls) == 1
    assert steps["probe"].calls == []
    rows = assert_journal_sound(store.journal(operation_id=op.id))
    failed = [r for r in rows if r.outcome is JournalOutcome.FAILED]
    assert len(failed) == 1 and "compensating → rollback" in (failed[0].message or "")


def test_fail_without_compensation_fails_the_operation_at_the_step(
    store: SqlStore, clock: ManualClock
) -> None:
    steps = demo_steps(probe=ScriptedStep("probe", Fail("served the wrong certificate")))
    runner = make_runner(store, steps, clock=clock)
    op = new_demo(store, clock)
    runner.run_until_idle()
    final = store.get_operation(op.id)
    assert (final.status, final.state) == (OperationStatus.FAILED, "verify")
    assert final.last_error == "served the wrong certificate"
    assert len(steps["probe"].calls) == 1  # Fail is permanent: no retry
    assert steps["release"].calls == [] and steps["undo"].calls == []


def test_explicit_retry_backoff_is_honoured(store: SqlStore, clock: ManualClock) -> None:
    steps = demo_steps(reserve=ScriptedStep("reserve", Retry("429", timedelta(seconds=42))))
    runner = make_runner(store, steps, clock=clock)
    op = new_demo(store, clock)
    runner.run_until_idle()
    assert store.get_operation(op.id).next_run_at == clock.now() + timedelta(seconds=42)


def test_waits_do_not_count_as_failures_but_the_timeout_bounds_them(
    store: SqlStore, clock: ManualClock
) -> None:
    policy = RetryPolicy(
        max_attempts=2,
        initial_backoff=timedelta(seconds=1),
        timeout=timedelta(minutes=10),
        jitter=0,
    )
    spec = demo_spec(policy)
    steps = demo_steps(probe=ScriptedStep("probe", *[Wait("not yet", timedelta(minutes=3))] * 20))
    runner = make_runner(store, steps, clock=clock, spec=spec)
    op = new_demo(store, clock)
    for _ in range(10):
        runner.run_until_idle()
        clock.advance(timedelta(minutes=3))
    final = store.get_operation(op.id)
    assert (final.status, final.state) == (OperationStatus.FAILED, "verify")
    assert final.last_error is not None and "timed out after 0:10:00" in final.last_error
    # waited at 0, 3, 6, 9, then the deadline (10 min) run: five attempts, more than max_attempts
    assert len(steps["probe"].calls) == 5


def test_interrupted_attempts_rerun_the_step_and_count_against_the_budget(
    store: SqlStore, clock: ManualClock
) -> None:
    """A crash mid-step (the runner dies, its lease expires) re-runs the same step with the next
    attempt number; a step that kills its runner every time ends up failed, not looping."""
    steps = demo_steps(configure=ScriptedStep("configure", *[Crash()] * 10))
    op = new_demo(store, clock)
    lease = timedelta(seconds=30)
    for n in range(TIGHT.max_attempts):
        runner = make_runner(store, steps, clock=clock, owner=f"pod-{n}", lease_for=lease)
        with pytest.raises(Crash):
            runner.run_until_idle()
        assert make_runner(store, steps, clock=clock, owner="other").run_once() == 0  # leased
        clock.advance(lease)
    runner = make_runner(store, steps, clock=clock, owner="pod-last", lease_for=lease)
    runner.run_until_idle()
    final = store.get_operation(op.id)
    assert (final.status, final.state) == (OperationStatus.FAILED, "rolled_back")
    assert final.last_error is not None and "interrupted" in final.last_error
    assert [a for (_, a, _) in steps["configure"].calls] == [1, 2, 3]
    rows = assert_journal_sound(store.journal(operation_id=op.id))
    started = [
        (r.step, r.attempt, r.actor)
        for r in rows
        if r.outcome is JournalOutcome.STARTED and r.step == "configure"
    ]
    assert started == [("configure", n + 1, f"pod-{n}") for n in range(3)]
