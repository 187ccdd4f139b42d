"""One commit per step: when the runner goes straight on to the next step, the step's outcome and
the next step's write-ahead are one commit (``finish_step(begin_next=...)``). The write-ahead is
still committed before the step runs, so a crash right after that commit re-runs the entered step
(as attempt 2, once the lease expired), and the plain two-commit path is kept wherever the runner
will not run the next step at once (last turn of a claim, a lease that needs renewing)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from engine_kit import (
    TIGHT,
    ScriptedStep,
    assert_journal_sound,
    demo_steps,
    make_runner,
    new_demo,
)
from support.machines.demo import DEMO_STEPS, demo_spec

from bifrost.clock import ManualClock
from bifrost.engine import Done, Runner, StepContext
from bifrost.machines import MachineRegistry
from bifrost.records import JournalOutcome, OperationStatus
from bifrost.store import SqlStore


class SimulatedCrash(BaseException):
    """The process dies here (nothing in the runner catches a BaseException)."""


class CountingStore:
    """The real store; counts the engine's writes and can die right after a merged commit."""

    def __init__(self, store: SqlStore, *, crash_entering: str | None = None) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()
        self.merged: list[tuple[str, int]] = []
        self.crash_entering = crash_entering

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def claim_due(self, **kwargs: Any) -> Any:
        self.calls["claim_due"] += 1
        return self._store.claim_due(**kwargs)

    def renew_lease(self, operation_id: int, **kwargs: Any) -> Any:
        self.calls["renew_lease"] += 1
        return self._store.renew_lease(operation_id, **kwargs)

    def begin_step(self, operation_id: int, **kwargs: Any) -> Any:
        self.calls["begin_step"] += 1
        return self._store.begin_step(operation_id, **kwargs)

    def finish_step(self, operation_id: int, **kwargs: Any) -> Any:
        self.calls["finish_step"] += 1
        result = self._store.finish_step(operation_id, **kwargs)
        begin_next = kwargs.get("begin_next")
        if begin_next is not None:
            self.merged.append(begin_next)
            if begin_next[0] == self.crash_entering:
                raise SimulatedCrash(f"died right after entering {begin_next[0]}")
        return result


def test_a_running_operation_costs_one_commit_per_step(
    store: SqlStore, clock: ManualClock
) -> None:
    counting = CountingStore(store)
    steps = demo_steps()
    runner = make_runner(counting, steps, clock=clock)  # type: ignore[arg-type]
    op = new_demo(store, clock)

    assert runner.run_until_idle() == 1

    assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED
    # the first step is entered on its own; every later one with its predecessor's outcome,
    # across state edges too (prepare → apply → verify → cleanup)
    assert counting.merged == [(name, 1) for name in DEMO_STEPS[1:]]
    assert counting.calls["begin_step"] == 1
    assert counting.calls["finish_step"] == len(DEMO_STEPS)
    assert counting.calls["renew_lease"] == 0
    rows = assert_journal_sound(store.journal(operation_id=op.id))
    pairs = [(r.outcome, r.step, r.attempt) for r in rows if r.step is not None]
    assert pairs == [
        p for name in DEMO_STEPS
        for p in ((JournalOutcome.STARTED, name, 1), (JournalOutcome.DONE, name, 1))
    ]
    # the entered step's STARTED row is written at the instant its predecessor finished, and
    # its DONE row names that time as its start
    for prev, nxt in zip(rows, rows[1:], strict=False):
        if prev.outcome is JournalOutcome.DONE and nxt.outcome is JournalOutcome.STARTED:
            assert nxt.started_at == prev.finished_at
    for name in DEMO_STEPS:
        assert [a for (_, a, _) in steps[name].calls] == [1], name


def test_a_crash_right_after_the_merged_commit_reruns_the_entered_step_as_attempt_2(
    store: SqlStore, store_url: str, clock: ManualClock
) -> None:
    lease = timedelta(seconds=30)
    dying = CountingStore(store, crash_entering="create")
    steps_a = demo_steps()
    runner_a = make_runner(dying, steps_a, clock=clock, lease_for=lease)  # type: ignore[arg-type]
    op = new_demo(store, clock)
    with pytest.raises(SimulatedCrash):
        runner_a.run_once()
    entered = store.get_operation(op.id)
    assert (entered.status, entered.step, entered.attempt) == (
        OperationStatus.RUNNING,
        "create",
        1,
    )
    assert steps_a["create"].calls == []  # it never ran

    steps_b = demo_steps()
    runner_b = make_runner(store, steps_b, clock=clock, owner="runner-b", lease_for=lease)
    assert runner_b.run_until_idle() == 0  # still leased to the dead runner
    clock.advance(lease)
    assert runner_b.run_until_idle() == 1

    assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED
    assert [(a, inp) for (_, a, inp) in steps_b["create"].calls] == [(2, {"from": "configure"})]
    rows = assert_journal_sound(store.journal(operation_id=op.id))
    assert [(r.outcome, r.attempt, r.actor) for r in rows if r.step == "create"] == [
        (JournalOutcome.STARTED, 1, "runner-a"),
        (JournalOutcome.STARTED, 2, "runner-b"),
        (JournalOutcome.DONE, 2, "runner-b"),
    ]
    done = Counter(r.step for r in rows if r.outcome is JournalOutcome.DONE)
    assert done == Counter(DEMO_STEPS)


def test_the_last_turn_of_a_claim_leaves_no_step_entered(
    store: SqlStore, clock: ManualClock
) -> None:
    counting = CountingStore(store)
    runner = Runner(
        counting,  # type: ignore[arg-type]
        MachineRegistry([demo_spec(TIGHT)]),
        demo_steps(),
        clock=clock,
        owner="runner-a",
        rng=random.Random(0),
        max_steps_per_claim=2,
    )
    op = new_demo(store, clock)
    assert runner.run_once() == 1
    yielded = store.get_operation(op.id)
    # two steps ran (the second entered with the first's outcome), then the runner yielded
    # without entering the third
    assert counting.merged == [("configure", 1)]
    assert (yielded.status, yielded.step, yielded.attempt, yielded.lease_owner) == (
        OperationStatus.WAITING,
        None,
        0,
        None,
    )
    rows = assert_journal_sound(store.journal(operation_id=op.id))
    assert rows[-1].outcome is JournalOutcome.TRANSITION
    assert [r.step for r in rows if r.outcome is JournalOutcome.STARTED] == ["reserve", "configure"]
    runner.run_until_idle()
    assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED


def test_a_lease_that_needs_renewing_takes_the_plain_path(
    store: SqlStore, clock: ManualClock
) -> None:
    """Each step takes 20 s of a 30 s lease: the runner renews before every next step, so it
    never folds the write-ahead into the previous commit."""

    def slow(ctx: StepContext[Any], input: Any) -> Done:
        clock.advance(timedelta(seconds=20))
        return Done()

    counting = CountingStore(store)
    steps = demo_steps(**{name: ScriptedStep(name, slow) for name in DEMO_STEPS})
    runner = make_runner(counting, steps, clock=clock, lease_for=timedelta(seconds=30))  # type: ignore[arg-type]
    op = new_demo(store, clock)
    assert runner.run_once() == 1
    assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED
    assert counting.merged == []
    assert counting.calls["begin_step"] == len(DEMO_STEPS)
    assert counting.calls["renew_lease"] == len(DEMO_STEPS) - 1
    assert_journal_sound(store.journal(operation_id=op.id))
