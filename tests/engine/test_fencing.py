"""Fencing: two runners on one database never execute the same operation at once, and a runner
whose lease expired (another reclaimed the operation) has its late commit rejected — its journal
row is never written."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from engine_kit import TIGHT, ScriptedStep, assert_journal_sound, demo_steps, make_runner, new_demo
from support.machines.demo import DEMO_STEPS, demo_spec

from bifrost.clock import ManualClock, SystemClock
from bifrost.engine import Done, Runner, StepContext
from bifrost.machines import MachineRegistry
from bifrost.records import JournalOutcome, OperationStatus
from bifrost.store import SqlStore, open_store


class OverlapDetector:
    """A step that records entry/exit per operation and notices two runners inside at once."""

    def __init__(self, name: str, shared: dict[str, Any]) -> None:
        self.name = name
        self.shared = shared

    def run(self, ctx: StepContext[Any], input: Any) -> Done:
        lock: threading.Lock = self.shared["lock"]
        op = ctx.operation.id
        with lock:
            first_for_actor = ctx.actor not in self.shared["met"]
            self.shared["met"].add(ctx.actor)
            if op in self.shared["inside"]:
                self.shared["overlaps"].append((op, self.name, ctx.actor))
            self.shared["inside"].add(op)
            self.shared["runs"][(op, self.name)] += 1
            self.shared["by"][ctx.actor] += 1
        if first_for_actor:
            # Rendezvous: each runner's first step waits inside until the other runner is inside
            # a step too, so both runners provably hold operations at the same time (and must
            # have claimed different ones) instead of one draining the queue alone.
            self.shared["rendezvous"].wait(timeout=20)
        # Give the other runner a chance to be scheduled while we are inside.
        time.sleep(0)
        with lock:
            self.shared["inside"].discard(op)
        return Done()


def test_two_runners_never_run_one_operation_at_once(store: SqlStore, store_url: str) -> None:
    clock = SystemClock()
    ops = [new_demo(store, clock, f"gw-{n}") for n in range(24)]
    shared: dict[str, Any] = {
        "lock": threading.Lock(),
        "inside": set(),
        "overlaps": [],
        "runs": Counter(),
        "by": Counter(),
        "met": set(),
        "rendezvous": threading.Barrier(2),
    }
    steps = {name: OverlapDetector(name, shared) for name in (*DEMO_STEPS, "undo")}
    stop = threading.Event()
    stores = [open_store(store_url), open_store(store_url)]
    runners = [
        Runner(
            s,
            MachineRegistry([demo_spec(TIGHT)]),
            steps,
            clock=clock,
            owner=f"runner-{i}",
            lease_for=timedelta(seconds=60),
            rng=random.Random(i),
            max_steps_per_claim=2,
            idle_interval=timedelta(milliseconds=5),
        )
        for i, s in enumerate(stores)
    ]
    threads = [
        threading.Thread(target=r.run_forever, args=(stop,), kwargs={"limit": 1}) for r in runners
    ]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            statuses = {store.get_operation(op.id).status for op in ops}
            if statuses == {OperationStatus.SUCCEEDED}:
                break
            stop.wait(0.02)  # polling the database for the condition, not hiding a race
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        for s in stores:
            s.close()
    assert {store.get_operation(op.id).status for op in ops} == {OperationStatus.SUCCEEDED}
    assert shared["overlaps"] == []
    # every step of every operation ran exactly once (no lease expired, nothing re-ran)
    assert set(shared["runs"].values()) == {1}
    assert len(shared["runs"]) == len(ops) * len(DEMO_STEPS)
    assert set(shared["by"]) == {"runner-0", "runner-1"}, shared["by"]
    for op in ops:
        assert_journal_sound(store.journal(operation_id=op.id))


def test_a_runner_whose_lease_expired_cannot_commit(
    store: SqlStore, store_url: str, clock: ManualClock
) -> None:
    lease = timedelta(seconds=30)
    other_store = open_store(store_url)
    other_steps = demo_steps()
    runner_b = make_runner(other_store, other_steps, clock=clock, owner="runner-b", lease_for=lease)

    def slow_create(ctx: StepContext[Any], input: Any) -> Done:
        # Runner A stalls in the step past its lease (a GC pause, a partition): B reclaims the
        # operation and finishes it while A is still "inside".
        clock.advance(lease + timedelta(seconds=1))
        assert runner_b.run_until_idle() == 1
        return Done(output={"late": True})

    steps_a = demo_steps(create=ScriptedStep("create", slow_create))
    runner_a = make_runner(store, steps_a, clock=clock, owner="runner-a", lease_for=lease)
    op = new_demo(store, clock)
    try:
        assert runner_a.run_once() == 1  # A's late finish is rejected (LeaseLost), silently
    finally:
        other_store.close()

    final = store.get_operation(op.id)
    assert final.status is OperationStatus.SUCCEEDED
    rows = assert_journal_sound(store.journal(operation_id=op.id))
    create_rows = [(r.outcome, r.actor, r.attempt) for r in rows if r.step == "create"]
    assert create_rows == [
        (JournalOutcome.STARTED, "runner-a", 1),
        (JournalOutcome.STARTED, "runner-b", 2),  # the re-run is visible as the next attempt
        (JournalOutcome.DONE, "runner-b", 2),
    ]
    assert not [
        r
        for r in rows
        if r.actor == "runner-a"
        and r.outcome is not JournalOutcome.STARTED
        and r.step not in ("reserve", "configure")
    ]
    assert all(r.output != {"late": True} for r in rows)
    # A went no further than its own step: everything after was B's
    assert len(steps_a["attach"].calls) == 0 and len(other_steps["attach"].calls) == 1
