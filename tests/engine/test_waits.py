"""Waits: a Wait's ``on`` keys are kept with the operation so a wake finds exactly it; a wait on
something is rechecked on a growing, capped backoff (a safety net); identical repeated waits are
one journal row; a wake during the running step is not lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from engine_kit import ScriptedStep, assert_journal_sound, demo_steps, make_runner, new_demo

from bifrost.admin.format import timeline_rows
from bifrost.admin.queries import timeline
from bifrost.clock import ManualClock
from bifrost.engine import Done, StepContext, Wait
from bifrost.engine.runner import WAIT_BACKOFF, WaitBackoff
from bifrost.engine.step import wait_key
from bifrost.records import JournalOutcome, OperationStatus
from bifrost.store import SqlStore

CHILD = wait_key("ConfigMap", "ns", "edge-settings")
OTHER = wait_key("ConfigMap", "ns", "something-else")
TENTH = timedelta(milliseconds=100)


def _waiting_forever(reason: str = "child edge-settings is not ready", *,
                     on: tuple[str, ...] = (CHILD,)) -> ScriptedStep:
    step = ScriptedStep("reserve")
    step.script = [Wait(reason, TENTH, on=on) for _ in range(100_000)]
    return step


def _run_due(runner: Any, store: SqlStore, clock: ManualClock, op_id: int) -> timedelta:
    """Advance the clock to the operation's due time, run it; how long it then sleeps."""
    op = store.get_operation(op_id)
    assert op.next_run_at is not None
    if op.next_run_at > clock.now():
        clock.set(op.next_run_at)
    assert runner.run_once() == 1
    after = store.get_operation(op_id)
    assert after.status is OperationStatus.WAITING and after.next_run_at is not None
    return after.next_run_at - clock.now()


@pytest.mark.parametrize(("recheck", "repeat", "expected"), [
    (timedelta(milliseconds=200), 1, timedelta(milliseconds=200)),
    (timedelta(milliseconds=200), 2, timedelta(milliseconds=400)),
    (timedelta(milliseconds=200), 3, timedelta(milliseconds=800)),
    (timedelta(milliseconds=200), 8, timedelta(milliseconds=25_600)),
    (timedelta(milliseconds=200), 9, timedelta(seconds=30)),  # capped
    (timedelta(milliseconds=200), 10_000, timedelta(seconds=30)),
    (timedelta(seconds=5), 1, timedelta(seconds=5)),
    (timedelta(seconds=5), 3, timedelta(seconds=20)),
    (timedelta(seconds=5), 4, timedelta(seconds=30)),
    (timedelta(seconds=45), 1, timedelta(seconds=45)),  # never sooner than asked
    (timedelta(seconds=45), 5, timedelta(seconds=45)),
])
def test_the_safety_net_backoff_doubles_per_identical_wait_up_to_its_cap(
    recheck: timedelta, repeat: int, expected: timedelta
) -> None:
    assert WAIT_BACKOFF.delay(recheck, repeat) == expected


def test_a_wait_keeps_what_it_waits_on_until_the_step_is_done(
    store: SqlStore, clock: ManualClock
) -> None:
    reserve = ScriptedStep("reserve", Wait("not yet", TENTH, on=(CHILD,)))
    runner = make_runner(store, demo_steps(reserve=reserve), clock=clock)
    op = new_demo(store, clock)
    runner.run_once()
    waiting = store.get_operation(op.id)
    assert waiting.status is OperationStatus.WAITING
    assert waiting.bookkeeping.wait_on == (CHILD,)
    assert waiting.next_run_at == clock.now() + TENTH

    # an event on something else wakes nothing; one on the awaited child wakes exactly it
    assert store.wake_waiting(op.gateway_uid, key=OTHER, now=clock.now()) == 0
    assert store.wake_waiting(op.gateway_uid, key=CHILD, now=clock.now()) == 1
    assert store.get_operation(op.id).next_run_at == clock.now()

    reserve.script = [Done(output={"ok": True}), Wait("configuring", TENTH)]
    configure = demo_steps()["configure"]
    configure.script = [Wait("configuring", TENTH)]
    runner = make_runner(store, demo_steps(reserve=reserve, configure=configure), clock=clock)
    runner.run_once()
    after = store.get_operation(op.id)
    assert after.step == "configure"
    assert after.bookkeeping.wait_on == ()  # the next step waits on nothing
    assert store.wake_waiting(op.gateway_uid, key=CHILD, now=clock.now()) == 0


def test_a_wait_on_something_is_rechecked_on_a_growing_capped_backoff(
    store: SqlStore, clock: ManualClock
) -> None:
    runner = make_runner(store, demo_steps(reserve=_waiting_forever()), clock=clock)
    op = new_demo(store, clock)
    runner.run_once()
    delays = [store.get_operation(op.id).next_run_at - clock.now()]  # type: ignore[operator]
    for _ in range(12):
        delays.append(_run_due(runner, store, clock, op.id))
    seconds = [round(d.total_seconds(), 3) for d in delays]
    assert seconds == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0, 30.0, 30.0]


def test_a_wake_makes_it_due_at_once_and_resets_nothing(
    store: SqlStore, clock: ManualClock
) -> None:
    runner = make_runner(store, demo_steps(reserve=_waiting_forever()), clock=clock)
    op = new_demo(store, clock)
    runner.run_once()
    for _ in range(4):
        _run_due(runner, store, clock, op.id)  # 5 identical waits so far: next in 1.6 s
    clock.advance(timedelta(milliseconds=300))
    assert store.wake_waiting(op.gateway_uid, key=CHILD, now=clock.now()) == 1
    assert runner.run_once() == 1  # due now, long before the recheck
    after = store.get_operation(op.id)
    assert after.next_run_at is not None
    assert after.next_run_at - clock.now() == timedelta(seconds=3.2)  # the backoff went on


def test_a_different_wait_starts_the_backoff_and_the_journal_row_again(
    store: SqlStore, clock: ManualClock
) -> None:
    reserve = ScriptedStep("reserve", *([Wait("A not ready", TENTH, on=(CHILD,))] * 3),
                           Wait("B not ready", TENTH, on=(CHILD,)))
    runner = make_runner(store, demo_steps(reserve=reserve), clock=clock)
    op = new_demo(store, clock)
    runner.run_once()
    _run_due(runner, store, clock, op.id)
    assert _run_due(runner, store, clock, op.id) == timedelta(milliseconds=400)
    assert _run_due(runner, store, clock, op.id) == TENTH  # another reason: from the start
    waits = [r for r in store.journal(operation_id=op.id) if r.outcome is JournalOutcome.WAIT]
    assert [(r.message, r.repeats) for r in waits] == [("A not ready", 3), ("B not ready", 1)]


def test_a_wait_without_on_keeps_its_recheck_after_and_is_still_one_row(
    store: SqlStore, clock: ManualClock
) -> None:
    runner = make_runner(store, demo_steps(reserve=_waiting_forever("polling", on=())),
                         clock=clock)
    op = new_demo(store, clock)
    runner.run_once()
    delays = {_run_due(runner, store, clock, op.id) for _ in range(20)}
    assert delays == {TENTH}
    rows = assert_journal_sound(store.journal(operation_id=op.id))
    waits = [r for r in rows if r.outcome is JournalOutcome.WAIT]
    assert [(w.message, w.repeats) for w in waits] == [("polling", 21)]
    assert waits[0].attempt == 1 and waits[0].last_at == clock.now()
    assert store.get_operation(op.id).attempt == 21  # the attempt count is the operation's
    # bifrost-admin history: one entry (the first attempt's write-ahead pairs with the merged
    # row, nothing is shown as interrupted), its message counted
    entries = timeline(rows, {op.id: store.get_operation(op.id)})
    (wait_entry,) = [e for e in entries if e.step == "reserve"]
    assert (wait_entry.outcome, wait_entry.repeats) == ("wait", 21)
    assert timeline_rows([wait_entry])[0][-1] == "×21 polling"
    assert not [r for r in rows if r.outcome is JournalOutcome.STARTED and r.attempt > 1]


def test_an_hour_of_a_child_that_never_gets_ready_is_a_handful_of_journal_rows(
    store: SqlStore, clock: ManualClock
) -> None:
    runner = make_runner(store, demo_steps(reserve=_waiting_forever()), clock=clock)
    op = new_demo(store, clock)
    start = clock.now()
    runner.run_once()
    runs = 1
    while clock.now() - start < timedelta(hours=1):
        _run_due(runner, store, clock, op.id)
        runs += 1
    rows = assert_journal_sound(store.journal(operation_id=op.id))
    assert len(rows) <= 4, [(r.outcome, r.step, r.repeats) for r in rows]
    (wait,) = [r for r in rows if r.outcome is JournalOutcome.WAIT]
    assert wait.repeats == runs
    assert wait.started_at == start and wait.last_at == clock.now()
    assert runs < 140  # rechecks every 30 s at most once the backoff is capped


def test_a_wake_while_the_step_runs_is_not_slept_through(
    store: SqlStore, clock: ManualClock
) -> None:
    """The step read 'not ready', then the child changed (the informer wakes the gateway)
    before the step answered Wait: the operation is due at once, not after the recheck."""

    def read_then_changed(ctx: StepContext[Any], input: Any) -> Wait:
        assert store.wake_waiting(ctx.operation.gateway_uid, key=CHILD, now=ctx.now()) == 1
        return Wait("child edge-settings is not ready", timedelta(seconds=20), on=(CHILD,))

    reserve = ScriptedStep("reserve", read_then_changed)
    runner = make_runner(store, demo_steps(reserve=reserve), clock=clock)
    op = new_demo(store, clock)
    runner.run_once()
    after = store.get_operation(op.id)
    assert after.status is OperationStatus.WAITING
    assert after.next_run_at == clock.now()
    assert runner.run_once() == 1  # and it runs again at once (then finishes)
    assert len(reserve.calls) == 2


def test_a_custom_wait_backoff_policy_is_used(store: SqlStore, clock: ManualClock) -> None:
    runner = make_runner(store, demo_steps(reserve=_waiting_forever()), clock=clock)
    runner.wait_backoff = WaitBackoff(multiplier=3.0, cap=timedelta(seconds=1))
    op = new_demo(store, clock)
    runner.run_once()
    delays = [_run_due(runner, store, clock, op.id) for _ in range(3)]
    assert delays == [timedelta(milliseconds=300), timedelta(milliseconds=900),
                      timedelta(seconds=1)]
