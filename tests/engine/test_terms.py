"""A runner's claim loop lasts one leadership term: once the term ended it begins no further
step and hands the operation back (due now), and a successor finishes it. The elector answers
the term check without waiting for a renewal in progress."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from engine_kit import ScriptedStep, assert_journal_sound, demo_steps, make_runner, new_demo
from support.fake_kube import FakeKube
from support.machines.demo import DEMO_STEPS

from bifrost.clock import ManualClock
from bifrost.engine import Done, StepContext
from bifrost.kube.leader import LeaderElector
from bifrost.records import JournalOutcome, OperationStatus
from bifrost.store import SqlStore


def test_the_claim_loop_stops_when_the_term_ends(store: SqlStore, clock: ManualClock) -> None:
    leading = True

    def deposed_meanwhile(ctx: StepContext[Any], input: Any) -> Done[dict[str, Any]]:
        nonlocal leading
        leading = False  # the elector lost the Lease while this step ran
        return Done(output={"made": "it"})

    steps = demo_steps(reserve=ScriptedStep("reserve", deposed_meanwhile))
    runner = make_runner(store, steps, clock=clock)
    runner.leading = lambda: leading
    op = new_demo(store, clock)

    assert runner.run_once() == 1
    after = store.get_operation(op.id)
    assert len(steps["reserve"].calls) == 1
    assert steps["configure"].calls == []  # no step after the term ended
    assert after.status is OperationStatus.WAITING
    assert after.lease_owner is None and after.next_run_at == clock.now()  # handed back
    assert after.step is None and after.attempt == 0  # nothing begun...
    assert after.bookkeeping.step == "configure"  # ...the next step is remembered
    rows = assert_journal_sound(store.journal(operation_id=op.id))
    assert rows[-1].message == "leadership term ended; handing the operation back"
    assert not [r for r in rows if r.outcome is JournalOutcome.STARTED and r.step == "configure"]

    successor = make_runner(store, steps, clock=clock, owner="runner-b")
    successor.run_until_idle()
    done = store.get_operation(op.id)
    assert done.status is OperationStatus.SUCCEEDED
    assert [len(steps[name].calls) for name in DEMO_STEPS] == [1] * len(DEMO_STEPS)


def test_a_stopped_term_claims_nothing_further(store: SqlStore, clock: ManualClock) -> None:
    """``run_forever``'s stop event is the term: set while a step runs, the loop ends after
    handing the operation back."""
    stop = threading.Event()

    def term_ends(ctx: StepContext[Any], input: Any) -> Done[dict[str, Any]]:
        stop.set()
        return Done(output={})

    steps = demo_steps(reserve=ScriptedStep("reserve", term_ends))
    runner = make_runner(store, steps, clock=clock)
    op = new_demo(store, clock)
    runner.run_forever(stop, limit=1, wait=lambda seconds: stop.is_set())
    after = store.get_operation(op.id)
    assert steps["configure"].calls == []
    assert after.status is OperationStatus.WAITING and after.lease_owner is None
    assert runner.term_current()  # outside run_forever no term applies


def test_no_step_of_a_claimed_operation_runs_once_the_term_ended(
    store: SqlStore, clock: ManualClock
) -> None:
    steps = demo_steps()
    runner = make_runner(store, steps, clock=clock)
    runner.leading = lambda: False
    op = new_demo(store, clock)
    assert runner.run_once() == 1
    assert all(s.calls == [] for s in steps.values())
    after = store.get_operation(op.id)
    assert after.status is OperationStatus.WAITING and after.lease_owner is None


def test_the_elector_answers_the_term_check_without_waiting_for_a_renewal() -> None:
    clock = ManualClock()
    elector = LeaderElector(FakeKube(clock=clock), lease_name="bifrost-controller",  # type: ignore[arg-type]
                            namespace="default", identity="me", lease_duration=15,
                            renew_deadline=10, retry_period=2, clock=clock)
    assert not elector.holds_lease()
    assert elector.step()
    assert elector.holds_lease()
    with elector._lock:  # a renewal in progress on the elector's thread
        result: list[bool] = []
        reader = threading.Thread(target=lambda: result.append(elector.holds_lease()))
        reader.start()
        reader.join(timeout=5)
        assert result == [True]
    clock.advance(timedelta(seconds=15))  # not renewed for a lease duration (a frozen process)
    assert not elector.holds_lease()
