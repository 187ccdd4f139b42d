"""Operator actions: allowed only where they make sense, refused with a reason otherwise, and
journaled with the operator's identity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from engine_kit import TIGHT, ScriptedStep, assert_journal_sound, demo_steps, make_runner, new_demo
from support.machines.demo import demo_spec

from bifrost.clock import ManualClock
from bifrost.engine import (
    AdminRefused,
    Done,
    Fail,
    StepContext,
    cancel_operation,
    pause_operation,
    resume_operation,
    retry_operation,
)
from bifrost.engine import trigger_operation as fire
from bifrost.machines import MachineRegistry
from bifrost.records import JournalOutcome, OperationStatus
from bifrost.store import SqlStore


def test_pause_stops_claiming_and_resume_continues_where_it_was(
    store: SqlStore, clock: ManualClock
) -> None:
    steps = demo_steps(create=ScriptedStep("create", lambda ctx, i: _retry_later()))
    runner = make_runner(store, steps, clock=clock)
    op = new_demo(store, clock)
    runner.run_until_idle()
    assert store.get_operation(op.id).state == "apply"

    paused = pause_operation(store, op.id, clock=clock, actor="alice@example.com",
                             reason="change freeze")
    assert paused.status is OperationStatus.PAUSED
    clock.advance(timedelta(hours=1))
    assert runner.run_once() == 0

    resumed = resume_operation(store, op.id, clock=clock, actor="bob")
    assert resumed.status is OperationStatus.WAITING
    runner.run_until_idle()
    assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED
    admin = [
        r
        for r in assert_journal_sound(store.journal(operation_id=op.id))
        if r.outcome is JournalOutcome.ADMIN
    ]
    assert [(r.actor, r.message) for r in admin] == [
        ("alice@example.com", "paused by alice@example.com: change freeze"),
        ("bob", "resumed by bob"),
    ]


def _retry_later() -> Any:
    from bifrost.engine import Retry

    return Retry("not yet", timedelta(minutes=1))


def test_pause_during_a_step_fences_off_its_commit(store: SqlStore, clock: ManualClock) -> None:
    def pause_myself(ctx: StepContext[Any], input: Any) -> Done:
        pause_operation(store, ctx.operation.id, clock=clock, actor="alice")
        return Done()

    steps = demo_steps(attach=ScriptedStep("attach", pause_myself))
    runner = make_runner(store, steps, clock=clock)
    op = new_demo(store, clock)
    runner.run_until_idle()
    paused = store.get_operation(op.id)
    assert (paused.status, paused.state, paused.step) == (OperationStatus.PAUSED, "apply", "attach")
    rows = store.journal(operation_id=op.id)
    assert not [r for r in rows if r.outcome is JournalOutcome.DONE and r.step == "attach"]
    resume_operation(store, op.id, clock=clock, actor="alice")
    runner.run_until_idle()
    assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED
    assert [a for (_, a, _) in steps["attach"].calls] == [1, 2]  # the re-run is visible


def test_cancel_ends_an_active_operation_and_frees_the_lane(
    store: SqlStore, clock: ManualClock
) -> None:
    steps = demo_steps(reserve=ScriptedStep("reserve", lambda c, i: _retry_later()))
    runner = make_runner(store, steps, clock=clock)
    op = new_demo(store, clock)
    runner.run_until_idle()
    cancelled = cancel_operation(store, op.id, clock=clock, actor="alice", reason="wrong gateway")
    assert cancelled.status is OperationStatus.CANCELLED
    assert store.active_operation(op.gateway_uid) is None
    clock.advance(timedelta(hours=1))
    assert runner.run_once() == 0
    with pytest.raises(
        AdminRefused,
        match=r"cannot cancel operation \d+ \(demo, state prepare\): "
        r"it is cancelled; only pending, running, waiting or paused operations "
        r"can be cancelled",
    ):
        cancel_operation(store, op.id, clock=clock, actor="alice")


def test_retry_reruns_the_failed_step_once(store: SqlStore, clock: ManualClock) -> None:
    steps = demo_steps(probe=ScriptedStep("probe", Fail("wrong cert"), Fail("still wrong")))
    runner = make_runner(store, steps, clock=clock)
    op = new_demo(store, clock)
    runner.run_until_idle()
    assert store.get_operation(op.id).status is OperationStatus.FAILED

    retried = retry_operation(store, op.id, clock=clock, actor="alice")
    assert (retried.status, retried.state, retried.attempt) == (
        OperationStatus.WAITING,
        "verify",
        0,
    )
    runner.run_until_idle()
    again = store.get_operation(op.id)
    assert again.status is OperationStatus.FAILED and again.last_error == "still wrong"

    retry_operation(store, op.id, clock=clock, actor="alice")
    runner.run_until_idle()
    assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED
    assert len(steps["probe"].calls) == 3
    assert len(steps["release"].calls) == 1
    assert all(len(steps[n].calls) == 1 for n in ("reserve", "create", "attach"))


def test_operator_retry_grants_one_attempt_not_a_new_budget(
    store: SqlStore, clock: ManualClock
) -> None:
    from bifrost.engine import Retry

    steps = demo_steps(probe=ScriptedStep("probe", *[Retry("flaky", timedelta(seconds=1))] * 10))
    runner = make_runner(store, steps, clock=clock)
    op = new_demo(store, clock)
    for _ in range(TIGHT.max_attempts):
        runner.run_until_idle()
        clock.advance(1)
    assert store.get_operation(op.id).status is OperationStatus.FAILED
    assert len(steps["probe"].calls) == TIGHT.max_attempts
    retry_operation(store, op.id, clock=clock, actor="alice")
    runner.run_until_idle()
    assert store.get_operation(op.id).status is OperationStatus.FAILED
    assert len(steps["probe"].calls) == TIGHT.max_attempts + 1


def test_refusals_say_why(store: SqlStore, clock: ManualClock) -> None:
    op = new_demo(store, clock)
    with pytest.raises(AdminRefused, match="it is pending; only failed operations can be retried"):
        retry_operation(store, op.id, clock=clock, actor="alice")
    with pytest.raises(AdminRefused, match="it is pending; only paused operations can be resumed"):
        resume_operation(store, op.id, clock=clock, actor="alice")
    make_runner(store, demo_steps(), clock=clock).run_until_idle()
    with pytest.raises(
        AdminRefused,
        match="it is succeeded; only pending, running or waiting operations can be paused",
    ):
        pause_operation(store, op.id, clock=clock, actor="alice")
    with pytest.raises(AdminRefused, match="operation 999999 does not exist"):
        pause_operation(store, 999999, clock=clock, actor="alice")


def test_trigger_moves_an_operation_along_a_declared_edge(
    store: SqlStore, clock: ManualClock
) -> None:
    registry = MachineRegistry([demo_spec(TIGHT)])
    steps = demo_steps(probe=ScriptedStep("probe", lambda c, i: _retry_later()))
    runner = make_runner(store, steps, clock=clock)
    op = new_demo(store, clock)
    runner.run_until_idle()
    assert store.get_operation(op.id).state == "verify"
    moved = fire(store, registry, op.id, "abort", clock=clock, actor="alice")
    assert (moved.state, moved.status) == ("rollback", OperationStatus.WAITING)
    runner.run_until_idle()
    final = store.get_operation(op.id)
    assert (final.status, final.state) == (OperationStatus.FAILED, "rolled_back")
    assert len(steps["undo"].calls) == 1
    with pytest.raises(AdminRefused, match="'abort' is not allowed from state 'rolled_back'"):
        fire(store, registry, op.id, "abort", clock=clock, actor="alice")
