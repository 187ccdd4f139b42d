"""Operator actions on operations: pause, resume, cancel, retry, trigger — the one home of each.

Each action is one function here and one :class:`OperatorAction` in :data:`ACTIONS` (its verb,
the statuses it applies to, how those are called). An action is allowed only from those
statuses and refused otherwise with a reason the CLI prints as is. The store applies the change
only if the status is still the expected one (so an action racing the runner is refused, not
half-applied), clears the lease (a runner still working on the operation has its commit fenced
off) and journals the action with the operator's identity.

Callers find the operation and call these functions; they do not re-check statuses or write
operations themselves (``bifrost.admin.actions`` resolves ``bifrost-admin``'s target; the
controller cancels what stands in a teardown's way through :mod:`bifrost.triggers.teardown`).
Starting an operation is not an action on one: that is :mod:`bifrost.triggers`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bifrost.clock import Clock
from bifrost.machines.registry import InvalidTrigger, MachineRegistry, UnknownMachine
from bifrost.machines.spec import CANCEL_TRIGGER
from bifrost.records import OperationRecord, OperationStatus
from bifrost.store.errors import OperationConflict, RecordNotFound
from bifrost.store.interface import OperationStore

S = OperationStatus

PAUSABLE = (S.PENDING, S.RUNNING, S.WAITING)
RESUMABLE = (S.PAUSED,)
CANCELLABLE = (S.PENDING, S.RUNNING, S.WAITING, S.PAUSED)
RETRYABLE = (S.FAILED,)
TRIGGERABLE = (S.PENDING, S.RUNNING, S.WAITING)


@dataclass(frozen=True)
class OperatorAction:
    """What an operator action is called and which operations it applies to."""

    verb: str
    past: str
    allowed: tuple[OperationStatus, ...]
    #: What the operations it applies to are called ("has no {applies_to} operation").
    applies_to: str


ACTIONS: Mapping[str, OperatorAction] = {
    a.verb: a
    for a in (
        OperatorAction("pause", "paused", PAUSABLE, "active"),
        OperatorAction("resume", "resumed", RESUMABLE, "paused"),
        OperatorAction("cancel", "cancelled", CANCELLABLE, "active"),
        OperatorAction("retry", "retried", RETRYABLE, "failed"),
        OperatorAction("trigger", "triggered", TRIGGERABLE, "active"),
    )
}


class AdminRefused(Exception):
    """The action does not apply to the operation as it is; the message says why."""


def _names(statuses: Sequence[OperationStatus]) -> str:
    values = [s.value for s in statuses]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def _get(store: OperationStore, operation_id: int) -> OperationRecord:
    try:
        return store.get_operation(operation_id)
    except RecordNotFound:
        raise AdminRefused(f"operation {operation_id} does not exist") from None


def _apply(
    store: OperationStore,
    operation_id: int,
    *,
    verb: str,
    status: OperationStatus,
    clock: Clock,
    actor: str,
    message: str,
    reset_attempt: bool = False,
    run_now: bool = False,
    state: str | None = None,
    next_run_at: datetime | None = None,
    expected_state: str | None = None,
) -> OperationRecord:
    allowed = ACTIONS[verb].allowed
    op = _get(store, operation_id)
    if op.status not in allowed:
        raise AdminRefused(
            f"cannot {verb} operation {operation_id} ({op.machine}, state {op.state}): it is "
            f"{op.status.value}; only {_names(allowed)} operations can be {ACTIONS[verb].past}"
        )
    now = clock.now()
    try:
        return store.admin_transition(
            operation_id,
            now=now,
            actor=actor,
            expected_statuses=allowed,
            status=status,
            message=message,
            next_run_at=next_run_at if next_run_at is not None else now if run_now else None,
            reset_attempt=reset_attempt,
            state=state,
            expected_state=expected_state,
        )
    except OperationConflict as exc:
        current = _get(store, operation_id)
        if expected_state is not None and current.state != expected_state:
            raise AdminRefused(
                f"cannot {verb} operation {operation_id}: it moved from state {expected_state} "
                f"to {current.state} meanwhile; look again"
            ) from None
        if current.status in allowed:  # not a race: the store refused for another reason
            raise AdminRefused(f"cannot {verb} operation {operation_id}: {exc}") from None
        raise AdminRefused(
            f"cannot {verb} operation {operation_id}: it changed to {current.status.value} "
            "meanwhile; look again"
        ) from None


def pause_operation(
    store: OperationStore, operation_id: int, *, clock: Clock, actor: str, reason: str = ""
) -> OperationRecord:
    """Stop claiming the operation. A step in flight finishes but its commit is fenced off; it
    re-runs (idempotently) after ``resume_operation``."""
    return _apply(
        store, operation_id, verb="pause", status=S.PAUSED, clock=clock,
        actor=actor, message=f"paused by {actor}" + (f": {reason}" if reason else ""),
    )


def resume_operation(
    store: OperationStore, operation_id: int, *, clock: Clock, actor: str
) -> OperationRecord:
    """Make a paused operation due now, at the state and step where it was paused."""
    return _apply(
        store, operation_id, verb="resume", status=S.WAITING, clock=clock,
        actor=actor, message=f"resumed by {actor}", run_now=True,
    )


def cancel_operation(
    store: OperationStore,
    operation_id: int,
    *,
    clock: Clock,
    actor: str,
    reason: str = "",
    compensate_with: MachineRegistry | None = None,
) -> OperationRecord:
    """Cancel the operation.

    Without ``compensate_with`` (``bifrost-admin cancel --no-compensate``, and the controller
    clearing a teardown's way) it ends where it stands: no compensation runs, the lane becomes
    free. With the registry, an operation whose current state names a cancel compensation
    (``StateSpec.on_cancel``) moves there instead and stays active: the engine runs the
    compensation's steps like any others (write-ahead, journaled, fenced) and the operation
    ends in the compensation's terminal state (the rotation's ``cancelled``). An operation
    with no compensation from its state (or of a machine this code does not know) ends where
    it stands, and the journal says why.

    A step in flight when the cancel lands is fenced off (the lease is cleared: its cluster
    and store writes raise ``LeaseLost`` and its commit is refused), and the compensation is
    due only when that step's lease would have expired, so it never runs beside the step it
    compensates.
    """
    why = f": {reason}" if reason else ""
    target = _cancel_target(store, operation_id, compensate_with)
    if isinstance(target, str):
        return _apply(
            store, operation_id, verb="cancel", status=S.CANCELLED, clock=clock,
            actor=actor, message=f"cancelled by {actor}{why}" + target,
        )
    op, state = target
    now = clock.now()
    lease = op.lease_expires_at if op.status is S.RUNNING else None
    due = lease if lease is not None and lease > now else now
    return _apply(
        store, operation_id, verb="cancel", status=S.WAITING, clock=clock, actor=actor,
        message=f"cancelled by {actor}{why}; compensating: {op.state} → {state}",
        reset_attempt=True, state=state, next_run_at=due,
        # the compensation was chosen for op.state: never written over a later state (a
        # rotation that moved on to detaching the old certificate must not then detach the new)
        expected_state=op.state,
    )


def _cancel_target(
    store: OperationStore, operation_id: int, registry: MachineRegistry | None
) -> tuple[OperationRecord, str] | str:
    """Where a compensating cancel of the operation goes, or why it ends where it stands (a
    note for the journal; empty without a registry)."""
    if registry is None:
        return ""
    op = _get(store, operation_id)
    try:
        spec = registry.get(op.machine, op.machine_version)
        return op, registry.next_state(spec, op.state, CANCEL_TRIGGER)
    except UnknownMachine:
        return f" (machine {op.machine} v{op.machine_version} unknown here: no compensation)"
    except InvalidTrigger:
        return f" (state {op.state} of {op.machine} has no cancel compensation)"


def retry_operation(
    store: OperationStore, operation_id: int, *, clock: Clock, actor: str
) -> OperationRecord:
    """Re-run the failed step of a failed operation once, now, at the same state."""
    return _apply(
        store, operation_id, verb="retry", status=S.WAITING, clock=clock,
        actor=actor, message=f"retry of the failed step requested by {actor}",
        reset_attempt=True, run_now=True,
    )


def trigger_operation(
    store: OperationStore,
    registry: MachineRegistry,
    operation_id: int,
    name: str,
    *,
    clock: Clock,
    actor: str,
) -> OperationRecord:
    """Fire a machine trigger (an external edge) on an active operation: it moves to the
    trigger's target state and starts that state's steps from the first."""
    op = _get(store, operation_id)
    try:
        spec = registry.get(op.machine, op.machine_version)
        target = registry.next_state(spec, op.state, name)
    except (UnknownMachine, InvalidTrigger) as exc:
        raise AdminRefused(f"cannot fire {name!r} on operation {operation_id}: {exc}") from None
    return _apply(
        store, operation_id, verb="trigger", status=S.WAITING, clock=clock,
        actor=actor, message=f"trigger {name!r} by {actor}: {op.state} → {target}",
        reset_attempt=True, run_now=True, state=target,
    )
