"""The step contract: what a step receives and what it may answer.

A step is an idempotent action (observe first, act only if needed). It runs synchronously, never
sleeps, and answers with one outcome; the engine turns the outcome into one committed transition:

- ``Done(output, context)``: the step's work is in place; the operation moves to the next step
  (or follows the state's ``on_done`` edge). ``output`` is journaled and handed to the next step as
  its ``input``; ``context``, when given, replaces the operation's typed context.
- ``Wait(reason, recheck_after)``: not yet (e.g. a certificate is not issued); run the same step
  again after ``recheck_after``. Not a failure; bounded only by the step's ``timeout``.
- ``Retry(error, backoff)``: a transient failure; run again after ``backoff`` (default: the step's
  retry policy). Counts against ``max_attempts``.
- ``Fail(reason)``: a permanent failure; the state's compensation runs, or the operation fails.

Any other exception is treated as ``Retry`` with the policy's backoff.

Every side effect must be named with ``StepContext.idempotency_key`` (derived from gateway uid,
operation id and step) so that a re-run after a crash finds what the crashed attempt made.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from bifrost.clock import Clock
from bifrost.machines.spec import MachineSpec, StateSpec, StepSpec
from bifrost.records import OperationRecord

C = TypeVar("C", bound=BaseModel)


@dataclass(frozen=True)
class Done:
    output: dict[str, Any] | None = None
    context: BaseModel | None = None


@dataclass(frozen=True)
class Wait:
    reason: str
    recheck_after: timedelta
    context: BaseModel | None = None


@dataclass(frozen=True)
class Retry:
    error: str
    backoff: timedelta | None = None


@dataclass(frozen=True)
class Fail:
    reason: str


StepOutcome = Done | Wait | Retry | Fail


def idempotency_key(gateway_uid: str, operation_id: int, step: str) -> str:
    """A deterministic, name-safe key for the side effects of one step of one operation.

    Lower-case hex, 20 characters: short enough to suffix a Kubernetes object name (63 chars)
    and the same on every attempt of the step, so a re-run finds what an earlier attempt made.
    """
    digest = hashlib.sha256(f"{gateway_uid}/{operation_id}/{step}".encode()).hexdigest()
    return digest[:20]


@dataclass(frozen=True)
class StepContext(Generic[C]):
    """Everything a step may know about the operation it runs for."""

    operation: OperationRecord
    machine: MachineSpec
    state: StateSpec
    step: StepSpec
    context: C
    attempt: int
    clock: Clock
    actor: str
    idempotency_key: str
    started_at: datetime = field(compare=False)

    def now(self) -> datetime:
        return self.clock.now()


class Step(Protocol):
    """An idempotent step implementation; dependencies come through its constructor."""

    def run(self, ctx: StepContext[Any], input: dict[str, Any] | None) -> StepOutcome: ...
