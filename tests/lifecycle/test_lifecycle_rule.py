"""The Gateway lifecycle machine and its pure rule (``bifrost.machines.lifecycle``): which state
the facts lead to, by which declared edges, and that no other jump is possible."""

from __future__ import annotations

from itertools import product

import pytest

from bifrost.machines.lifecycle import (
    CHILDREN_NOT_READY,
    EDGES,
    IllegalLifecycleJump,
    LifecycleFacts,
    LifecycleState,
    OperationFacts,
    lifecycle_spec,
    next_lifecycle,
)
from bifrost.machines.registry import InvalidTrigger, MachineRegistry
from bifrost.machines.rotation import ROTATION_MACHINE
from bifrost.records import OperationStatus as St

S = LifecycleState
ROT = ROTATION_MACHINE


def op(machine: str, status: St, *, error: str | None = None, lane: str = "default",
       id: int = 7) -> OperationFacts:  # noqa: A002 - the record's field name
    return OperationFacts(id=id, machine=machine, status=status, lane=lane, last_error=error)


def facts(operation: OperationFacts | None = None, *, deleting: bool = False,
          finished: bool = False, ready: bool | None = None) -> LifecycleFacts:
    return LifecycleFacts(operation=operation, deleting=deleting, teardown_finished=finished,
                          children_ready=ready)


# (current, facts, expected state, expected triggers on the way)
CASES = [
    # a Gateway just seen: nothing moves it until an operation exists
    (S.PENDING, facts(), S.PENDING, []),
    (S.PENDING, facts(ready=True), S.PENDING, []),
    (S.PENDING, facts(op("provision", St.PENDING)), S.PROVISIONING, ["provision"]),
    (S.PENDING, facts(op("provision", St.RUNNING)), S.PROVISIONING, ["provision"]),
    (S.PROVISIONING, facts(op("provision", St.WAITING)), S.PROVISIONING, []),
    (S.PROVISIONING, facts(op("provision", St.PAUSED)), S.PROVISIONING, []),
    (S.PROVISIONING, facts(op("provision", St.SUCCEEDED), ready=True), S.READY, ["provisioned"]),
    (S.PROVISIONING, facts(op("provision", St.SUCCEEDED)), S.READY, ["provisioned"]),
    (S.PROVISIONING, facts(op("provision", St.SUCCEEDED), ready=False), S.DEGRADED,
     ["degrade"]),
    (S.PROVISIONING, facts(op("provision", St.FAILED, error="boom")), S.FAILED, ["fail"]),
    (S.PROVISIONING, facts(op("provision", St.CANCELLED)), S.FAILED, ["fail"]),
    # an operation that started and ended between two observations: through its state
    (S.PENDING, facts(op("provision", St.SUCCEEDED)), S.READY, ["provision", "provisioned"]),
    (S.PENDING, facts(op("provision", St.FAILED)), S.FAILED, ["provision", "fail"]),
    (S.PROVISIONING, facts(op(ROT, St.RUNNING)), S.ROTATING, ["provisioned", "rotate"]),
    # updates and rotations from a settled Gateway
    (S.READY, facts(op("provision", St.RUNNING)), S.PROVISIONING, ["provision"]),
    (S.READY, facts(op(ROT, St.RUNNING)), S.ROTATING, ["rotate"]),
    (S.ROTATING, facts(op(ROT, St.SUCCEEDED), ready=True), S.READY, ["rotated"]),
    (S.ROTATING, facts(op(ROT, St.FAILED, error="x")), S.FAILED, ["fail"]),
    (S.ROTATING, facts(op(ROT, St.CANCELLED)), S.READY, ["rotated"]),
    (S.ROTATING, facts(op(ROT, St.SUCCEEDED), ready=False), S.DEGRADED, ["degrade"]),
    # readiness moves a settled Gateway; unknown readiness moves nothing
    (S.READY, facts(op("provision", St.SUCCEEDED), ready=False), S.DEGRADED, ["degrade"]),
    (S.DEGRADED, facts(op("provision", St.SUCCEEDED), ready=True), S.READY, ["recover"]),
    (S.DEGRADED, facts(op("provision", St.SUCCEEDED)), S.DEGRADED, []),
    (S.READY, facts(op("provision", St.SUCCEEDED)), S.READY, []),
    (S.READY, facts(ready=False), S.DEGRADED, ["degrade"]),
    (S.DEGRADED, facts(op(ROT, St.RUNNING)), S.ROTATING, ["rotate"]),
    (S.DEGRADED, facts(op("provision", St.RUNNING)), S.PROVISIONING, ["provision"]),
    # a new operation after a failure
    (S.FAILED, facts(op("provision", St.RUNNING)), S.PROVISIONING, ["provision"]),
    (S.FAILED, facts(op(ROT, St.PENDING)), S.ROTATING, ["rotate"]),
    (S.FAILED, facts(op("provision", St.FAILED)), S.FAILED, []),
    # deletion, from anywhere
    (S.READY, facts(op("provision", St.SUCCEEDED), deleting=True), S.DELETING, ["delete"]),
    (S.PROVISIONING, facts(op("provision", St.RUNNING), deleting=True), S.DELETING, ["delete"]),
    (S.ROTATING, facts(op("teardown", St.RUNNING), deleting=True), S.DELETING, ["delete"]),
    (S.FAILED, facts(op("teardown", St.RUNNING), deleting=True), S.DELETING, ["delete"]),
    (S.DEGRADED, facts(deleting=True), S.DELETING, ["delete"]),
    (S.PENDING, facts(deleting=True), S.DELETING, ["delete"]),
    (S.DELETING, facts(op("teardown", St.SUCCEEDED), deleting=True), S.DELETING, []),
    (S.DELETING, facts(op("teardown", St.FAILED, error="stuck"), deleting=True), S.FAILED,
     ["fail"]),
    (S.DELETING, facts(op("teardown", St.RUNNING), deleting=True, finished=True), S.DELETED,
     ["remove"]),
    (S.READY, facts(deleting=True, finished=True), S.DELETED, ["delete", "remove"]),
    (S.DELETED, facts(deleting=True, finished=True), S.DELETED, []),
    # an operation of another lane, or of a machine the lifecycle does not know, moves nothing
    (S.READY, facts(op("provision", St.RUNNING, lane="other")), S.READY, []),
    (S.READY, facts(op("reindex", St.RUNNING)), S.READY, []),
]


@pytest.mark.parametrize(("current", "given", "state", "triggers"), CASES)
def test_next_lifecycle(current: LifecycleState, given: LifecycleFacts, state: LifecycleState,
                        triggers: list[str]) -> None:
    change = next_lifecycle(current, given)
    assert change.state == state
    assert [t.trigger for t in change.transitions] == triggers
    assert change.changed == bool(triggers)
    # the path is connected and every edge is a declared one
    at = str(current)
    for step in change.transitions:
        assert step.source == at
        assert any(step.trigger == name and step.source in sources and step.dest == dest
                   for name, sources, dest in EDGES)
        at = step.dest
    assert at == state


def test_last_error_says_why() -> None:
    failed = next_lifecycle(S.PROVISIONING, facts(op("provision", St.FAILED, error="no CA")))
    assert failed.last_error == "provision operation 7 failed: no CA"
    cancelled = next_lifecycle(S.PROVISIONING, facts(op("provision", St.CANCELLED)))
    assert cancelled.last_error == "provision operation 7 cancelled: no detail"
    degraded = next_lifecycle(S.READY, facts(op("provision", St.SUCCEEDED), ready=False))
    assert degraded.last_error == CHILDREN_NOT_READY
    # a new operation clears it; so does readiness coming back
    assert next_lifecycle(S.FAILED, facts(op("provision", St.RUNNING)),
                          last_error="x").last_error is None
    assert next_lifecycle(S.DEGRADED, facts(op("provision", St.SUCCEEDED), ready=True),
                          last_error=CHILDREN_NOT_READY).last_error is None
    # nothing the lifecycle knows changed: the current error stays
    kept = next_lifecycle(S.FAILED, facts(), last_error="earlier")
    assert (kept.state, kept.last_error, kept.changed) == (S.FAILED, "earlier", False)


def test_nothing_leaves_deleted_and_unknown_states_are_refused() -> None:
    with pytest.raises(IllegalLifecycleJump, match="no path from 'deleted' to 'provisioning'"):
        next_lifecycle(S.DELETED, facts(op("provision", St.RUNNING)))
    with pytest.raises(IllegalLifecycleJump, match="'programmed' is not a state"):
        next_lifecycle("programmed", facts())
    # a Gateway being deleted never goes back to provisioning or ready
    for status in St:
        for machine in ("provision", ROT, "teardown"):
            change = next_lifecycle(S.DELETING, facts(op(machine, status), deleting=True))
            assert change.state in (S.DELETING, S.FAILED)


def test_the_rule_only_takes_edges_the_transitions_machine_allows() -> None:
    """For every pair of states and every fact combination, each step of the derived path is
    one the built ``transitions`` machine accepts, and every other trigger is refused there."""
    spec = lifecycle_spec()
    registry = MachineRegistry([spec])
    ops = [None, *(op(m, s) for m, s in product(("provision", ROT, "teardown"), St))]
    seen_edges: set[tuple[str, str]] = set()
    for current in LifecycleState:
        for operation, deleting, finished, ready in product(
                ops, (False, True), (False, True), (None, True, False)):
            given = facts(operation, deleting=deleting, finished=finished, ready=ready)
            try:
                change = next_lifecycle(current, given)
            except IllegalLifecycleJump:
                assert current == S.DELETED
                continue
            for step in change.transitions:
                assert registry.next_state(spec, step.source, step.trigger) == step.dest
                seen_edges.add((step.source, step.dest))
    declared = {(str(src), str(dest)) for _, sources, dest in EDGES for src in sources}
    assert seen_edges == declared  # every edge of the machine is taken by some facts
    with pytest.raises(InvalidTrigger):
        registry.next_state(spec, "deleted", "provision")
    with pytest.raises(InvalidTrigger):
        registry.next_state(spec, "pending", "provisioned")


def test_the_machine_is_data_and_not_runnable() -> None:
    spec = lifecycle_spec()
    assert [s.name for s in spec.states] == [s.value for s in LifecycleState]
    assert spec.initial == "pending"
    assert all(not s.steps for s in spec.states)
    assert [s.name for s in spec.states if s.terminal is not None] == ["deleted"]
    from bifrost.machines.catalog import default_registry

    assert "lifecycle" not in {s.name for s in default_registry()}
