"""Machine specs are validated data; the registry follows exactly the declared edges."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError
from support.machines.demo import DEMO_STEPS, demo_spec

from bifrost.machines import (
    InvalidTrigger,
    MachineRegistry,
    MachineSpec,
    StateSpec,
    StepSpec,
    TriggerSpec,
    UnknownMachine,
)
from bifrost.records import OperationStatus


class Ctx(BaseModel):
    pass


def _spec(**overrides: object) -> MachineSpec:
    fields: dict[str, object] = {
        "name": "m",
        "version": 1,
        "initial": "a",
        "context_model": Ctx,
        "states": (
            StateSpec(name="a", steps=(StepSpec(name="s1"),), on_done="z"),
            StateSpec(name="z", terminal=OperationStatus.SUCCEEDED),
        ),
    }
    fields.update(overrides)
    return MachineSpec(**fields)  # type: ignore[arg-type]


def test_demo_machine_has_six_steps_on_its_happy_path() -> None:
    spec = demo_spec()
    happy = [step.name for state, step in spec.steps() if state.name != "rollback"]
    assert tuple(happy) == DEMO_STEPS


def test_edges_must_name_known_states() -> None:
    with pytest.raises(ValidationError, match="on_done -> unknown state 'nowhere'"):
        _spec(
            states=(
                StateSpec(name="a", steps=(StepSpec(name="s1"),), on_done="nowhere"),
                StateSpec(name="z", terminal=OperationStatus.SUCCEEDED),
            )
        )
    with pytest.raises(ValidationError, match="initial state 'b' is not a state"):
        _spec(initial="b")
    with pytest.raises(ValidationError, match="trigger 't' names unknown state 'q'"):
        _spec(triggers=(TriggerSpec(name="t", sources=("a",), dest="q"),))


def test_a_machine_needs_a_terminal_state_and_non_terminal_states_need_on_done() -> None:
    with pytest.raises(ValidationError, match="no on_done"):
        StateSpec(name="a", steps=(StepSpec(name="s1"),))
    with pytest.raises(ValidationError, match="no terminal state"):
        _spec(states=(StateSpec(name="a", on_done="a"),))
    with pytest.raises(ValidationError, match="cannot have steps"):
        StateSpec(name="z", terminal=OperationStatus.SUCCEEDED, steps=(StepSpec(name="s"),))
    with pytest.raises(ValidationError, match="terminal status must be"):
        StateSpec(name="z", terminal=OperationStatus.WAITING)


def test_persisted_names_are_restricted_and_engine_triggers_reserved() -> None:
    with pytest.raises(ValidationError, match="lower-case"):
        StepSpec(name="Create Cert")
    with pytest.raises(ValidationError, match="reserved"):
        TriggerSpec(name="done", sources=("a",), dest="z")
    with pytest.raises(ValidationError, match="twice"):
        StateSpec(name="a", steps=(StepSpec(name="s"), StepSpec(name="s")), on_done="a")


def test_registry_follows_declared_edges_only() -> None:
    spec = demo_spec()
    registry = MachineRegistry([spec])
    assert registry.next_state(spec, "prepare", "done") == "apply"
    assert registry.next_state(spec, "apply", "compensate") == "rollback"
    assert registry.next_state(spec, "verify", "abort") == "rollback"
    with pytest.raises(InvalidTrigger, match="'abort' is not allowed from state 'cleanup'"):
        registry.next_state(spec, "cleanup", "abort")
    with pytest.raises(InvalidTrigger):
        registry.next_state(spec, "verify", "compensate")  # verify declares no compensation


def test_registry_lookup_by_persisted_name_and_version() -> None:
    registry = MachineRegistry([demo_spec(), demo_spec(version=2)])
    assert registry.get("demo", 1).version == 1
    assert registry.latest("demo").version == 2
    with pytest.raises(UnknownMachine, match=r"'demo' version 3 is not known.*demo v1, demo v2"):
        registry.get("demo", 3)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(demo_spec())


def test_state_step_order() -> None:
    prepare = demo_spec().state("prepare")
    assert prepare is not None
    assert prepare.step_after("reserve") is not None
    assert prepare.step_after("configure") is None
