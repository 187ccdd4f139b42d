"""At most one active operation per (gateway, lane): starting is idempotent for the same
machine and a clear conflict for another."""

from __future__ import annotations

import pytest
from engine_kit import TIGHT, demo_steps, make_runner, new_demo
from support.machines.demo import DemoContext

from bifrost.clock import ManualClock
from bifrost.engine import LaneBusy, start_operation
from bifrost.machines import MachineSpec, StateSpec, StepSpec
from bifrost.records import OperationStatus
from bifrost.store import SqlStore

OTHER = MachineSpec(
    name="other",
    version=1,
    initial="a",
    context_model=DemoContext,
    states=(
        StateSpec(name="a", steps=(StepSpec(name="reserve", retry=TIGHT),), on_done="z"),
        StateSpec(name="z", terminal=OperationStatus.SUCCEEDED),
    ),
)


def test_same_machine_returns_the_active_operation(store: SqlStore, clock: ManualClock) -> None:
    first = new_demo(store, clock, "gw")
    again = new_demo(store, clock, "gw", label="different")
    assert again.id == first.id


def test_another_machine_in_the_lane_is_a_clear_conflict(
    store: SqlStore, clock: ManualClock
) -> None:
    first = new_demo(store, clock, "gw")
    with pytest.raises(
        LaneBusy,
        match=rf"lane 'default' is busy with operation {first.id} "
        r"\(demo v1, state prepare, pending\); cannot start other",
    ):
        start_operation(
            store,
            OTHER,
            gateway_uid="gw",
            namespace="ns",
            name="name-gw",
            context=DemoContext(),
            clock=clock,
            actor="test",
        )
    other_lane = start_operation(
        store,
        OTHER,
        gateway_uid="gw",
        namespace="ns",
        name="name-gw",
        context=DemoContext(),
        clock=clock,
        actor="test",
        lane="tls",
    )
    assert other_lane.id != first.id and other_lane.lane == "tls"
    with pytest.raises(LaneBusy):
        start_operation(
            store,
            OTHER,
            gateway_uid="gw",
            namespace="ns",
            name="name-gw",
            context=DemoContext(),
            clock=clock,
            actor="test",
        )


def test_the_lane_frees_when_the_operation_ends(store: SqlStore, clock: ManualClock) -> None:
    first = new_demo(store, clock, "gw")
    make_runner(store, demo_steps(), clock=clock).run_until_idle()
    second = new_demo(store, clock, "gw")
    assert second.id != first.id and second.status is OperationStatus.PENDING


def test_wrong_context_type_is_refused(store: SqlStore, clock: ManualClock) -> None:
    with pytest.raises(TypeError, match="must be a DemoContext"):
        start_operation(
            store,
            OTHER,
            gateway_uid="gw",
            namespace="ns",
            name="n",
            context=TIGHT,
            clock=clock,
            actor="test",
        )
