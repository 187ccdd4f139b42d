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

Steps are typed: a ``Step[In, Out]`` declares the pydantic model of what it reads from the step
before it (``NoInput`` when it reads nothing) and of what its ``Done`` hands on. The runner sees
only the JSON side: ``Step.run`` validates the journaled input into ``In`` and dumps the ``Out``
model (by alias) to the JSON object that is journaled and handed to the next step.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeAlias

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from typing_extensions import TypeVar

from bifrost.clock import Clock
from bifrost.machines.spec import MachineSpec, StateSpec, StepSpec
from bifrost.records import OperationRecord

C = TypeVar("C", bound=BaseModel)
Payload = TypeVar("Payload")
#: A step's input and output models; a bare ``Step`` is any step (what the runner holds).
In = TypeVar("In", bound=BaseModel, default=Any)
Out = TypeVar("Out", bound=BaseModel, default=Any)


@dataclass(frozen=True)
class Done(Generic[Payload]):
    output: Payload | None = None
    context: BaseModel | None = None


@dataclass(frozen=True)
class Wait:
    """Not yet: run the step again at ``recheck_after`` at the latest. ``on`` names what the step
    waits for (:func:`wait_key` of each object): a change of one of them, seen by the
    controller's informers, wakes the operation at once, so ``recheck_after`` is only a safety
    net. Without ``on`` the step is simply run again after ``recheck_after``."""

    reason: str
    recheck_after: timedelta
    context: BaseModel | None = None
    on: tuple[str, ...] = ()


def wait_key(kind: str, namespace: str | None, name: str) -> str:
    """How a waiting step names an object it waits for (and an informer event names the object
    that changed): ``Kind/namespace/name`` (``Kind//name`` when cluster-scoped). The API group
    is left out: a kind's events wake its waiters whatever version they were read at."""
    return f"{kind}/{namespace or ''}/{name}"


@dataclass(frozen=True)
class Retry:
    error: str
    backoff: timedelta | None = None


@dataclass(frozen=True)
class Fail:
    reason: str


#: Every outcome but ``Done``: what a helper answers when the step cannot finish now.
NotDone: TypeAlias = Wait | Retry | Fail
#: A typed step's outcome, ``Done`` carrying its output model.
Outcome: TypeAlias = Done[Payload] | Wait | Retry | Fail
#: What the runner receives: ``Done`` carrying the JSON object that is journaled.
StepOutcome: TypeAlias = Done[dict[str, Any]] | Wait | Retry | Fail


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


class NoInput(BaseModel):
    """The input of a step that reads nothing from the step before it (what that step handed on
    stays in the journal; it is not checked here)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class StepOutput(BaseModel):
    """Base of the output models: frozen, closed, journaled with camelCase keys."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class Step(ABC, Generic[In, Out]):
    """An idempotent step implementation; dependencies come through its constructor.

    A subclass names its input model in ``input_model`` (the ``In`` it is parameterised with)
    and implements ``execute``; the runner calls ``run``.
    """

    input_model: type[In]

    @abstractmethod
    def execute(self, ctx: StepContext[Any], input: In) -> Outcome[Out]:
        """The step itself, on its typed input."""

    def run(self, ctx: StepContext[Any], input: dict[str, Any] | None) -> StepOutcome:
        """The runner's side: ``input`` (the previous step's journaled output, or None) is
        validated into ``In``; a ``Done``'s output model is dumped to JSON-able data."""
        outcome = self.execute(ctx, self.input_model.model_validate(input or {}))
        if not isinstance(outcome, Done):
            return outcome
        output = outcome.output
        return Done(
            output=None if output is None else output.model_dump(mode="json", by_alias=True),
            context=outcome.context,
        )
