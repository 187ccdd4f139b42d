"""Helpers for the engine tests: scripted steps and journal checks (real store, real runner)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from support.machines.demo import DEMO_STEPS, DemoContext, demo_spec

from bifrost.clock import Clock, ManualClock
from bifrost.engine import Done, Runner, StepContext, StepOutcome
from bifrost.machines import MachineRegistry, MachineSpec, RetryPolicy
from bifrost.records import JournalRecord, OperationRecord
from bifrost.store.interface import OperationStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TIGHT = RetryPolicy(
    max_attempts=3,
    initial_backoff=timedelta(seconds=2),
    max_backoff=timedelta(seconds=60),
    multiplier=2,
    jitter=0.25,
)

Script = StepOutcome | BaseException | Callable[[StepContext[Any], Any], StepOutcome]


class ScriptedStep:
    """Plays a script of outcomes/exceptions, then ``Done``; records every call."""

    def __init__(self, name: str, *script: Script, output: dict[str, Any] | None = None) -> None:
        self.name = name
        self.script = list(script)
        self.output = output if output is not None else {"from": name}
        self.calls: list[tuple[int, int, Any]] = []
        self._lock = threading.Lock()

    def run(self, ctx: StepContext[Any], input: Any) -> StepOutcome:
        with self._lock:
            self.calls.append((ctx.operation.id, ctx.attempt, input))
            item = self.script.pop(0) if self.script else None
        if item is None:
            return Done(output=self.output)
        if isinstance(item, BaseException):
            raise item
        if callable(item):
            return item(ctx, input)
        return item


def demo_steps(**overrides: ScriptedStep) -> dict[str, ScriptedStep]:
    steps = {name: ScriptedStep(name) for name in (*DEMO_STEPS, "undo")}
    steps.update(overrides)
    return steps


def make_runner(
    store: OperationStore,
    steps: dict[str, ScriptedStep],
    *,
    clock: Clock,
    owner: str = "runner-a",
    spec: MachineSpec | None = None,
    lease_for: timedelta = timedelta(seconds=30),
    seed: int = 0,
) -> Runner:
    registry = MachineRegistry([spec or demo_spec(TIGHT)])
    return Runner(
        store,
        registry,
        steps,
        clock=clock,
        owner=owner,
        lease_for=lease_for,
        rng=random.Random(seed),
    )


def new_demo(
    store: OperationStore,
    clock: Clock,
    uid: str = "gw-1",
    *,
    label: str = "x",
    lane: str = "default",
) -> OperationRecord:
    from bifrost.engine import start_operation

    return start_operation(
        store,
        demo_spec(TIGHT),
        gateway_uid=uid,
        namespace="ns",
        name=f"name-{uid}",
        context=DemoContext(label=label),
        clock=clock,
        actor="test",
        lane=lane,
    )


def assert_journal_sound(rows: Iterable[JournalRecord]) -> list[JournalRecord]:
    """Strictly increasing, gap-free sequence numbers starting at 1."""
    rows = sorted(rows, key=lambda r: r.id)
    assert [r.sequence for r in rows] == list(range(1, len(rows) + 1)), [
        (r.sequence, r.outcome, r.step) for r in rows
    ]
    return rows


def clock() -> ManualClock:
    return ManualClock(T0)
