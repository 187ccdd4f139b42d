"""Operations the running code cannot interpret (corrupt context JSON, a context that does not
match the machine's model, an unknown machine version, state or step, a step input that is not a
JSON object, a step without an implementation) fail visibly — status failed, last_error naming
the problem, a FAILED journal row — and the runner goes on with the others in the same round."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from engine_kit import ScriptedStep, demo_steps, make_runner, new_demo

from bifrost.clock import ManualClock
from bifrost.records import JournalOutcome, OperationStatus
from bifrost.store import SqlStore


@pytest.fixture
def raw(store_url: str) -> Iterator[sa.Engine]:
    """A separate connection that writes what the store would never write."""
    engine = sa.create_engine(store_url)
    yield engine
    engine.dispose()


def _corrupt(raw: sa.Engine, operation_id: int, **values: object) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    with raw.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE operations SET {sets} WHERE id = :id"), {"id": operation_id, **values}
        )


CASES = {
    "corrupt-json": ({"context": '{"label": "x", '}, "is not valid JSON"),
    "wrong-shape": (
        {"context": '{"label": 42, "colour": "red"}'},
        "does not match DemoContext of machine 'demo' v1: label: Input should be a "
        "valid string; colour: Extra inputs are not permitted",
    ),
    "unknown-version": (
        {"machine_version": 9},
        "machine 'demo' version 9 is not known to this controller",
    ),
    "unknown-machine": (
        {"machine": "rotate_wormhole"},
        "machine 'rotate_wormhole' version 1 is not known",
    ),
    "unknown-state": (
        {"state": "levitating"},
        "state 'levitating' is not a state of machine 'demo' v1",
    ),
    "unknown-step": (
        {"engine_state": "prepare", "engine_step": "teleport"},
        "step 'teleport' is not a step of state 'prepare'",
    ),
    "bad-step-input": (
        {"engine_input": "[1, 2]"},
        "step input of operation",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_poison_operation_fails_visibly_and_others_continue(
    store: SqlStore, raw: sa.Engine, clock: ManualClock, case: str
) -> None:
    values, expected = CASES[case]
    healthy_before = new_demo(store, clock, "gw-before")
    poison = new_demo(store, clock, "gw-poison")
    healthy_after = new_demo(store, clock, "gw-after")
    _corrupt(raw, poison.id, **values)

    steps = demo_steps()
    runner = make_runner(store, steps, clock=clock)
    assert runner.run_once(limit=10) == 3

    failed = store.get_operation(poison.id)
    assert failed.status is OperationStatus.FAILED
    assert failed.last_error is not None and expected in failed.last_error
    last = store.journal(operation_id=poison.id)[-1]
    assert last.outcome is JournalOutcome.FAILED and expected in (last.message or "")
    for healthy in (healthy_before, healthy_after):
        assert store.get_operation(healthy.id).status is OperationStatus.SUCCEEDED
    assert {op for op, _, _ in steps["reserve"].calls} == {healthy_before.id, healthy_after.id}


def test_a_step_without_implementation_fails_the_operation(
    store: SqlStore, clock: ManualClock
) -> None:
    steps = demo_steps()
    del steps["probe"]
    op = new_demo(store, clock)
    make_runner(store, steps, clock=clock).run_until_idle()
    failed = store.get_operation(op.id)
    assert (failed.status, failed.state) == (OperationStatus.FAILED, "verify")
    assert (
        failed.last_error == "no implementation of step 'probe' (machine 'demo' v1) in this "
        "controller"
    )


def test_a_step_returning_garbage_is_treated_as_a_failure(
    store: SqlStore, clock: ManualClock
) -> None:
    steps = demo_steps(reserve=ScriptedStep("reserve", lambda ctx, i: "ok"))  # type: ignore[arg-type,return-value]
    op = new_demo(store, clock)
    make_runner(store, steps, clock=clock).run_until_idle()
    waiting = store.get_operation(op.id)
    assert waiting.status is OperationStatus.WAITING
    assert waiting.last_error is not None and "returned a str, not an outcome" in waiting.last_error
