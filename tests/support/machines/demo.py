"""A small demonstration machine (no Gateway semantics) for the engine's tests, the crash tests
and the admin tests; not in the product catalog: a test registers it itself.

Happy path: six steps over four states, then ``done``. A failure in ``prepare`` or ``apply``
compensates through ``rollback`` (one step, ``undo``) into the failed terminal ``rolled_back``.
The step implementations are not here (machines are data): the tests supply them.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict

from bifrost.machines.retry import RetryPolicy
from bifrost.machines.spec import MachineSpec, StateSpec, StepSpec, TriggerSpec
from bifrost.records import OperationStatus

DEMO_MACHINE = "demo"
DEMO_VERSION = 1


class DemoContext(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str = ""
    notes: tuple[str, ...] = ()


def demo_spec(retry: RetryPolicy | None = None, *, version: int = DEMO_VERSION) -> MachineSpec:
    """The demo machine; ``retry`` overrides every step's policy (tests use tight ones)."""
    policy = retry or RetryPolicy(
        max_attempts=5,
        initial_backoff=timedelta(seconds=1),
        max_backoff=timedelta(seconds=30),
    )

    def steps(*names: str) -> tuple[StepSpec, ...]:
        return tuple(StepSpec(name=n, retry=policy) for n in names)

    return MachineSpec(
        name=DEMO_MACHINE,
        version=version,
        initial="prepare",
        context_model=DemoContext,
        description="demonstration machine: reserve → configure → create → attach → probe → "
        "release",
        states=(
            StateSpec(name="prepare", steps=steps("reserve", "configure"), on_done="apply",
                      on_failure="rollback"),
            StateSpec(name="apply", steps=steps("create", "attach"), on_done="verify",
                      on_failure="rollback"),
            StateSpec(name="verify", steps=steps("probe"), on_done="cleanup"),
            StateSpec(name="cleanup", steps=steps("release"), on_done="done"),
            StateSpec(name="rollback", steps=steps("undo"), on_done="rolled_back"),
            StateSpec(name="done", terminal=OperationStatus.SUCCEEDED),
            StateSpec(name="rolled_back", terminal=OperationStatus.FAILED),
        ),
        triggers=(TriggerSpec(name="abort", sources=("prepare", "apply", "verify"),
                              dest="rollback"),),
    )


DEMO_STEPS = ("reserve", "configure", "create", "attach", "probe", "release")
