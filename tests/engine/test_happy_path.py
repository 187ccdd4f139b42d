"""An operation runs its steps in order, one write-ahead and one finish per step, and ends in its
terminal state; step outputs flow to the next step; context changes persist."""

from __future__ import annotations

from typing import Any

from engine_kit import ScriptedStep, assert_journal_sound, demo_steps, make_runner, new_demo
from support.machines.demo import DEMO_STEPS, DemoContext

from bifrost.clock import ManualClock
from bifrost.engine import Done, StepContext, idempotency_key
from bifrost.records import EngineBookkeeping, JournalOutcome, OperationStatus
from bifrost.store import SqlStore


def test_operation_runs_every_step_in_order_and_succeeds(
    store: SqlStore, clock: ManualClock
) -> None:
    keys: dict[str, str] = {}

    def create(ctx: StepContext[Any], input: Any) -> Done:
        keys[ctx.step.name] = ctx.idempotency_key
        assert isinstance(ctx.context, DemoContext)
        return Done(
            output={"made": "thing"},
            context=ctx.context.model_copy(update={"notes": (*ctx.context.notes, "created")}),
        )

    steps = demo_steps(create=ScriptedStep("create", create))
    runner = make_runner(store, steps, clock=clock)
    op = new_demo(store, clock)

    assert runner.run_until_idle() == 1
    done = store.get_operation(op.id)
    assert done.status is OperationStatus.SUCCEEDED
    assert done.state == "done"
    assert done.lease_owner is None and done.finished_at is not None
    assert done.context is not None and done.context["notes"] == ["created"]
    assert done.bookkeeping == EngineBookkeeping()  # bookkeeping is dropped at the end

    for name in DEMO_STEPS:
        assert len(steps[name].calls) == 1, name
    assert steps["undo"].calls == []
    # each step receives the previous step's output
    assert steps["attach"].calls[0][2] == {"made": "thing"}
    assert steps["configure"].calls[0][2] == {"from": "reserve"}
    assert keys["create"] == idempotency_key(op.gateway_uid, op.id, "create")

    rows = assert_journal_sound(store.journal(operation_id=op.id))
    started = [(r.step, r.attempt) for r in rows if r.outcome is JournalOutcome.STARTED]
    assert started == [(name, 1) for name in DEMO_STEPS]
    # every STARTED row is followed by its DONE row: write-ahead then finish
    pairs = [(r.outcome, r.step) for r in rows
             if r.outcome in (JournalOutcome.STARTED, JournalOutcome.DONE)]
    assert pairs == [
        p for name in DEMO_STEPS
        for p in ((JournalOutcome.STARTED, name), (JournalOutcome.DONE, name))
    ]
    assert rows[-1].state == "done"
    assert {r.actor for r in rows if r.outcome is not JournalOutcome.TRANSITION} == {"runner-a"}


def test_idempotency_keys_are_stable_and_distinct() -> None:
    a = idempotency_key("uid-1", 7, "create")
    assert a == idempotency_key("uid-1", 7, "create")
    assert (
        len(
            {
                a,
                idempotency_key("uid-1", 7, "attach"),
                idempotency_key("uid-1", 8, "create"),
                idempotency_key("uid-2", 7, "create"),
            }
        )
        == 4
    )
    assert a.isalnum() and a.islower() and len(a) == 20


def test_nothing_runs_before_next_run_at_and_waits_reschedule(
    store: SqlStore, clock: ManualClock
) -> None:
    from datetime import timedelta

    from bifrost.engine import Wait

    steps = demo_steps(
        probe=ScriptedStep(
            "probe",
            Wait("not served yet", timedelta(seconds=30)),
            Wait("still not", timedelta(seconds=30)),
        )
    )
    runner = make_runner(store, steps, clock=clock)
    op = new_demo(store, clock)
    runner.run_until_idle()
    waiting = store.get_operation(op.id)
    assert (waiting.status, waiting.state) == (OperationStatus.WAITING, "verify")
    assert waiting.next_run_at == clock.now() + timedelta(seconds=30)
    assert waiting.lease_owner is None

    clock.advance(29)
    assert runner.run_once() == 0  # not due yet
    clock.advance(1)
    assert runner.run_once() == 1
    clock.advance(30)
    runner.run_until_idle()
    assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED
    probe_attempts = [a for (_, a, _) in steps["probe"].calls]
    assert probe_attempts == [1, 2, 3]
    waits = [r for r in store.journal(operation_id=op.id) if r.outcome is JournalOutcome.WAIT]
    assert [w.message for w in waits] == ["not served yet", "still not"]


def test_the_lease_is_renewed_between_steps_of_a_long_operation(
    store: SqlStore, clock: ManualClock
) -> None:
    """Each step takes 20 s of a 30 s lease: without renewal the third commit would be fenced."""
    from datetime import timedelta

    def slow(ctx: StepContext[Any], input: Any) -> Done:
        clock.advance(timedelta(seconds=20))
        return Done()

    steps = demo_steps(**{name: ScriptedStep(name, slow) for name in DEMO_STEPS})
    runner = make_runner(store, steps, clock=clock, lease_for=timedelta(seconds=30))
    op = new_demo(store, clock)
    assert runner.run_once() == 1
    assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED
    assert all(len(steps[name].calls) == 1 for name in DEMO_STEPS)
