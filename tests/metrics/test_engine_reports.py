"""What the engine tells its observer and its log, on a real runner and a SQLite store: one
report per step attempt (machine, step, outcome, attempt, seconds), a claim report per tick,
one report per journal row the store holds, INFO lines for the operation's start, each step
transition and its finish — with the Gateway, operation, machine, step and attempt bound for
every line logged inside a step, and never the text of an exception a step raised."""

from __future__ import annotations

import itertools
import logging
import random
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from engine.engine_kit import T0, TIGHT, ScriptedStep, demo_steps, new_demo
from support.machines.demo import demo_spec

from bifrost import logcontext
from bifrost.clock import ManualClock
from bifrost.engine import Done, StepContext, StepOutcome
from bifrost.engine.runner import Runner, RunnerObserver, StepReport
from bifrost.machines import MachineRegistry
from bifrost.store import SqlStore, migrate, open_store

SECRET = "tenant-secret-value-4711"


class Recorder(RunnerObserver):
    def __init__(self) -> None:
        self.steps: list[StepReport] = []
        self.claims: list[tuple[float, int]] = []
        self.journal: Counter[str] = Counter()
        self.lease_losses = 0

    def on_step(self, report: StepReport) -> None:
        self.steps.append(report)

    def on_claim(self, seconds: float, claimed: int) -> None:
        self.claims.append((seconds, claimed))

    def on_lease_lost(self) -> None:
        self.lease_losses += 1

    def on_journal(self, outcome: str) -> None:
        self.journal[outcome] += 1


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    url = f"sqlite:///{(tmp_path / 'engine.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    yield store
    store.close()


def test_reports_logs_and_bound_fields_of_one_operation(
    sqlite_store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(T0)
    seen: list[dict[str, Any]] = []

    def configure(ctx: StepContext[Any], input: Any) -> StepOutcome:
        seen.append(dict(logcontext.current()))
        logging.getLogger("bifrost.test.inside").info("inside the step")
        return Done(output={"from": "configure"})

    steps = demo_steps(configure=ScriptedStep("configure", RuntimeError(SECRET), configure))
    recorder = Recorder()
    ticks = itertools.count()
    runner = Runner(sqlite_store, MachineRegistry([demo_spec(TIGHT)]), steps, clock=clock,
                    owner="runner-a", rng=random.Random(0), observer=recorder,
                    monotonic=lambda: float(next(ticks)))
    op = new_demo(sqlite_store, clock)
    caplog.set_level(logging.INFO)
    runner.run_until_idle()
    clock.advance(timedelta(minutes=5))  # past the retry's backoff
    runner.run_until_idle()
    done = sqlite_store.get_operation(op.id)
    assert done.status.value == "succeeded"

    # one report per step attempt, the failed one as "error", attempt 2 after it
    by_step = [(r.step, r.attempt, r.outcome) for r in recorder.steps]
    assert by_step[:3] == [("reserve", 1, "done"), ("configure", 1, "error"),
                           ("configure", 2, "done")]
    assert {r.machine for r in recorder.steps} == {done.machine}
    assert all(r.operation == op.id and r.seconds == 1.0 for r in recorder.steps)
    assert sum(n for _, n in recorder.claims) >= 2 and all(s == 1.0 for s, _ in recorder.claims)
    # every journal row the store holds was reported, by outcome (but the creation row,
    # which start_operation wrote, not a runner)
    rows = [j.outcome.value for j in sqlite_store.journal(operation_id=op.id)]
    assert rows[0] == "transition"
    assert recorder.journal == Counter(rows[1:])
    assert recorder.lease_losses == 0

    # fields bound while the step ran
    assert seen == [{"gateway": f"ns/{op.name}", "operation": op.id, "machine": done.machine,
                     "step": "configure", "attempt": 2}]
    assert logcontext.current() == {}

    runner_lines = [r.getMessage() for r in caplog.records if r.name == "bifrost.engine.runner"]
    assert runner_lines[0] == (f"operation {op.id} started: {done.machine} v{done.machine_version}"
                               f" for gateway ns/{op.name}")
    transitions = [m for m in runner_lines if " step " in m and "attempt" in m and ": " in m]
    assert any(m.startswith(f"operation {op.id} step configure attempt 1: retry in 1.000s")
               for m in transitions), transitions
    finished = [m for m in runner_lines if "finished" in m]
    assert len(finished) == 1 and f"{done.machine} succeeded" in finished[0]
    assert not any(SECRET in r.getMessage() for r in caplog.records)
    inside = [r for r in caplog.records if r.name == "bifrost.test.inside"]
    assert len(inside) == 1


def test_a_lost_lease_is_reported_once(sqlite_store: SqlStore) -> None:
    """Runner A stalls in a step past its lease, B takes the operation over and finishes it:
    A's late commit is fenced off, and A's observer counts one lost lease (B's none)."""
    clock = ManualClock(T0)
    lease = timedelta(seconds=30)
    registry = MachineRegistry([demo_spec(TIGHT)])
    seen_a, seen_b = Recorder(), Recorder()
    runner_b = Runner(sqlite_store, registry, demo_steps(), clock=clock, owner="runner-b",
                      lease_for=lease, rng=random.Random(0), observer=seen_b)

    def slow_create(ctx: StepContext[Any], input: Any) -> StepOutcome:
        clock.advance(lease + timedelta(seconds=1))
        assert runner_b.run_until_idle() == 1
        return Done(output={"late": True})

    runner_a = Runner(sqlite_store, registry,
                      demo_steps(create=ScriptedStep("create", slow_create)), clock=clock,
                      owner="runner-a", lease_for=lease, rng=random.Random(0), observer=seen_a)
    op = new_demo(sqlite_store, clock)
    assert runner_a.run_once() == 1
    assert sqlite_store.get_operation(op.id).status.value == "succeeded"
    assert (seen_a.lease_losses, seen_b.lease_losses) == (1, 0)
    # A's step ran and was reported; its outcome was never journaled
    assert ("create", "done") in [(r.step, r.outcome) for r in seen_a.steps]
    assert seen_a.journal["done"] == sum(1 for r in seen_a.steps if r.outcome == "done") - 1
