"""The Gateway lifecycle: where a Gateway stands, as a machine, and the pure rule that moves it.

Operations say what bifrost is *doing* for a Gateway; the lifecycle says what the Gateway *is*:
``pending`` (seen, nothing started), ``provisioning`` (a provision or update runs), ``ready``,
``rotating`` (a certificate rotation runs), ``degraded`` (settled, but a child is not ready),
``failed`` (the last operation failed; ``last_error`` says why), ``deleting`` (its teardown runs)
and ``deleted`` (the finalizer is gone; the store keeps its history for the retention, then
purges it). It is written to ``gateways.lifecycle_state`` by the controller
(``bifrost.controller.lifecycle``), shown and filtered by ``bifrost-admin gateways --state`` and
drawn by ``bifrost-admin graph lifecycle``.

It is a :class:`~bifrost.machines.spec.MachineSpec` like the operation machines, so it is data,
built into a ``transitions`` machine and drawn the same way, but the engine never runs it: its
states have no steps and rest until a named trigger leaves them. It is therefore not in the
runnable catalog (``bifrost.machines.catalog``).

:func:`next_lifecycle` is the one place the lifecycle moves: from the current state and what
the controller knows (:class:`LifecycleFacts`: the latest operation, whether the Gateway is
being deleted or its teardown finished, whether its children are ready), it derives the state
the Gateway should be in and the path of declared edges that leads there, each edge checked by
the built ``transitions`` machine. A target no declared path reaches (anything after
``deleted``) is refused with :class:`IllegalLifecycleJump`, so no write can make a jump the
machine does not allow.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from pydantic import BaseModel, ConfigDict

from bifrost.machines.provision import PROVISION_MACHINE
from bifrost.machines.registry import InvalidTrigger, MachineRegistry
from bifrost.machines.rotation import ROTATION_MACHINE
from bifrost.machines.spec import MachineSpec, StateSpec, TriggerSpec
from bifrost.machines.teardown import TEARDOWN_MACHINE
from bifrost.records import OperationRecord, OperationStatus

__all__ = [
    "LIFECYCLE_MACHINE",
    "LIFECYCLE_VERSION",
    "IllegalLifecycleJump",
    "LifecycleChange",
    "LifecycleFacts",
    "LifecycleState",
    "OperationFacts",
    "Transition",
    "lifecycle_spec",
    "next_lifecycle",
    "target_state",
]

LIFECYCLE_MACHINE = "lifecycle"
LIFECYCLE_VERSION = 1
#: Operations of this lane move the lifecycle (every machine runs in it today).
LIFECYCLE_LANE = "default"

#: ``last_error`` of a degraded Gateway.
CHILDREN_NOT_READY = "not every child of the Gateway is ready"


class LifecycleState(StrEnum):
    """The persisted lifecycle states (stable: renaming one needs a data migration)."""

    PENDING = "pending"
    PROVISIONING = "provisioning"
    READY = "ready"
    ROTATING = "rotating"
    DEGRADED = "degraded"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


S = LifecycleState

#: Trigger → (sources, destination): every edge of the lifecycle.
EDGES: tuple[tuple[str, tuple[LifecycleState, ...], LifecycleState], ...] = (
    ("provision", (S.PENDING, S.READY, S.DEGRADED, S.FAILED), S.PROVISIONING),
    ("provisioned", (S.PROVISIONING,), S.READY),
    ("rotate", (S.READY, S.DEGRADED, S.FAILED), S.ROTATING),
    ("rotated", (S.ROTATING,), S.READY),
    ("degrade", (S.PROVISIONING, S.ROTATING, S.READY), S.DEGRADED),
    ("recover", (S.DEGRADED,), S.READY),
    ("fail", (S.PROVISIONING, S.ROTATING, S.DELETING), S.FAILED),
    ("delete", (S.PENDING, S.PROVISIONING, S.READY, S.ROTATING, S.DEGRADED, S.FAILED),
     S.DELETING),
    ("remove", (S.DELETING,), S.DELETED),
)

_DESCRIPTIONS = {
    S.PENDING: "seen by the controller; no operation started yet",
    S.PROVISIONING: "a provision (or update) operation runs",
    S.READY: "the last operation succeeded and the children are ready",
    S.ROTATING: "a certificate rotation runs",
    S.DEGRADED: "settled, but a child is not ready",
    S.FAILED: "the last operation failed (last_error says why)",
    S.DELETING: "the Gateway is being deleted; its teardown runs",
    S.DELETED: "the teardown finished and the finalizer is gone",
}


class LifecycleContext(BaseModel):
    """The lifecycle keeps no context (a MachineSpec needs a model)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def lifecycle_spec() -> MachineSpec:
    """The Gateway lifecycle machine (never run by the engine; see the module docstring)."""
    return MachineSpec(
        name=LIFECYCLE_MACHINE,
        version=LIFECYCLE_VERSION,
        initial=S.PENDING.value,
        context_model=LifecycleContext,
        description="where a Gateway stands, written by the controller as operations start "
        "and end and as its children's readiness changes",
        states=tuple(
            StateSpec(name=state.value, description=_DESCRIPTIONS[state],
                      terminal=OperationStatus.SUCCEEDED if state is S.DELETED else None)
            for state in LifecycleState
        ),
        triggers=tuple(
            TriggerSpec(name=name, sources=tuple(s.value for s in sources), dest=dest.value)
            for name, sources, dest in EDGES
        ),
    )


@cache
def _machine() -> tuple[MachineSpec, MachineRegistry]:
    spec = lifecycle_spec()
    return spec, MachineRegistry([spec])


# --- facts ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OperationFacts:
    """What the lifecycle needs of an operation."""

    id: int
    machine: str
    status: OperationStatus
    lane: str = LIFECYCLE_LANE
    last_error: str | None = None

    @classmethod
    def of(cls, op: OperationRecord) -> OperationFacts:
        return cls(id=op.id, machine=op.machine, status=op.status, lane=op.lane,
                   last_error=op.last_error)


@dataclass(frozen=True)
class LifecycleFacts:
    """What the controller knows of a Gateway when it decides its lifecycle state.

    ``operation``: the Gateway's active operation, else its most recent one (None: none yet).
    ``deleting``: the Gateway has a deletionTimestamp. ``teardown_finished``: bifrost's finalizer
    was removed (nothing of the Gateway is left). ``children_ready``: whether every child is
    ready (None: unknown, e.g. not observed yet — readiness then moves nothing).
    """

    operation: OperationFacts | None = None
    deleting: bool = False
    teardown_finished: bool = False
    children_ready: bool | None = None


@dataclass(frozen=True)
class Transition:
    trigger: str
    source: str
    dest: str


@dataclass(frozen=True)
class LifecycleChange:
    """Where the Gateway ends up (``state``, ``last_error``) and the declared edges that lead
    there from the current state (empty: the state does not change)."""

    state: str
    last_error: str | None
    transitions: tuple[Transition, ...]

    @property
    def changed(self) -> bool:
        return bool(self.transitions)


class IllegalLifecycleJump(ValueError):
    """No declared path of the lifecycle leads from the current state to the derived one."""


# --- the rule ------------------------------------------------------------------------------
def _operation_error(op: OperationFacts) -> str:
    detail = op.last_error or "no detail"
    return f"{op.machine} operation {op.id} {op.status.value}: {detail}"


def _settled(current: str, children_ready: bool | None) -> tuple[str, str | None]:
    """Nothing runs and nothing failed: ready, or degraded when a child is not ready."""
    if children_ready is False:
        return S.DEGRADED, CHILDREN_NOT_READY
    if children_ready is None and current == S.DEGRADED:
        return S.DEGRADED, CHILDREN_NOT_READY
    return S.READY, None


_RUNNING = {PROVISION_MACHINE: S.PROVISIONING, ROTATION_MACHINE: S.ROTATING,
            TEARDOWN_MACHINE: S.DELETING}


def target_state(
    current: str, facts: LifecycleFacts, *, last_error: str | None = None
) -> tuple[str, str | None]:
    """The (state, last_error) the Gateway should be in; ``last_error`` is the current one,
    kept when nothing the lifecycle knows about changed."""
    op = facts.operation
    if op is not None and op.lane != LIFECYCLE_LANE:
        op = None
    if facts.teardown_finished:
        return S.DELETED, None
    if facts.deleting:
        if (op is not None and op.machine == TEARDOWN_MACHINE
                and op.status in (OperationStatus.FAILED, OperationStatus.CANCELLED)):
            return S.FAILED, _operation_error(op)
        return S.DELETING, None
    if op is None or (op.status.active and op.machine not in _RUNNING):
        # No operation yet, or one the lifecycle does not know: only readiness may move it.
        if current in (S.READY, S.DEGRADED):
            return _settled(current, facts.children_ready)
        return current, last_error
    if op.status.active:
        return _RUNNING[op.machine], None
    if op.status is OperationStatus.SUCCEEDED:
        if op.machine == TEARDOWN_MACHINE:
            return S.DELETING, None  # the finalizer goes next
        return _settled(current, facts.children_ready)
    if op.status is OperationStatus.CANCELLED and op.machine == ROTATION_MACHINE:
        # A cancelled rotation leaves an attached certificate on every listener.
        return _settled(current, facts.children_ready)
    return S.FAILED, _operation_error(op)


def _path(current: str, target: str) -> tuple[Transition, ...] | None:
    """The shortest path of declared edges from ``current`` to ``target`` (breadth first, edges
    in declaration order), each edge confirmed by the ``transitions`` machine."""
    if current == target:
        return ()
    spec, registry = _machine()
    seen = {current}
    queue: deque[tuple[str, tuple[Transition, ...]]] = deque([(current, ())])
    while queue:
        state, path = queue.popleft()
        for trigger in spec.triggers:
            if state not in trigger.sources or trigger.dest in seen:
                continue
            try:
                dest = registry.next_state(spec, state, trigger.name)
            except InvalidTrigger:  # pragma: no cover - the spec and machine agree
                continue
            step = (*path, Transition(trigger.name, state, dest))
            if dest == target:
                return step
            seen.add(dest)
            queue.append((dest, step))
    return None


def next_lifecycle(
    current: str, facts: LifecycleFacts, *, last_error: str | None = None
) -> LifecycleChange:
    """Where ``facts`` move a Gateway now in ``current`` (with ``last_error``), and the edges
    taken. Raises :class:`IllegalLifecycleJump` when no declared path leads there (``current``
    is not a state, or nothing leaves it, e.g. ``deleted``)."""
    spec, _ = _machine()
    current = str(current)  # a LifecycleState too (transitions reads an Enum by its name)
    if spec.state(current) is None:
        raise IllegalLifecycleJump(
            f"{current!r} is not a state of the lifecycle machine (states: "
            f"{', '.join(s.value for s in LifecycleState)})"
        )
    target, error = target_state(current, facts, last_error=last_error)
    state = str(target)
    path = _path(current, state)
    if path is None:
        raise IllegalLifecycleJump(f"the lifecycle has no path from {current!r} to {state!r}")
    return LifecycleChange(state=state, last_error=error, transitions=path)
