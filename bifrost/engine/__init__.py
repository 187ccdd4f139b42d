"""The durable runner: claims due operations, runs one step at a time, commits each transition
with its journal row; plus the step contract, lanes and operator actions."""

from bifrost.engine.admin import (
    AdminRefused,
    cancel_operation,
    pause_operation,
    resume_operation,
    retry_operation,
    trigger_operation,
)
from bifrost.engine.operations import LaneBusy, start_operation
from bifrost.engine.runner import Runner
from bifrost.engine.step import (
    Done,
    Fail,
    NoInput,
    NotDone,
    Outcome,
    Retry,
    Step,
    StepContext,
    StepOutcome,
    StepOutput,
    Wait,
    idempotency_key,
)

__all__ = [
    "AdminRefused",
    "Done",
    "Fail",
    "LaneBusy",
    "NoInput",
    "NotDone",
    "Outcome",
    "Retry",
    "Runner",
    "Step",
    "StepContext",
    "StepOutcome",
    "StepOutput",
    "Wait",
    "cancel_operation",
    "idempotency_key",
    "pause_operation",
    "resume_operation",
    "retry_operation",
    "start_operation",
    "trigger_operation",
]
