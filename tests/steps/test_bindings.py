"""``bifrost.steps.bindings``: every step of every machine in the catalog has exactly one
implementation, and nothing else is bound."""

from __future__ import annotations

from typing import Any, cast

import pytest

from bifrost.engine import Step
from bifrost.machines.catalog import default_registry
from bifrost.steps.bindings import bind_steps, flatten, machine_steps

# The constructors only keep their ports; no step runs here.
KUBE = cast(Any, object())
STORE = cast(Any, object())


def test_every_step_of_every_catalog_machine_is_bound_and_nothing_else() -> None:
    registry = default_registry()
    per_machine = machine_steps(KUBE, STORE)
    assert set(per_machine) == {spec.name for spec in registry}
    for spec in registry:
        assert set(per_machine[spec.name]) == {step.name for _, step in spec.steps()}, spec.name
    flat = bind_steps(KUBE, STORE)
    assert set(flat) == {step.name for spec in registry for _, step in spec.steps()}
    assert all(isinstance(impl, Step) for impl in flat.values())


def test_a_step_name_bound_by_two_machines_is_refused() -> None:
    impl = next(iter(bind_steps(KUBE, STORE).values()))
    with pytest.raises(ValueError, match="'drain' is bound by machines 'a' and 'b'"):
        flatten({"a": {"drain": impl}, "b": {"drain": impl}})
