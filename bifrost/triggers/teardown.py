"""When a Gateway is torn down, and the one way a teardown starts.

A Gateway being deleted (``metadata.deletionTimestamp`` set) keeps bifrost's finalizer while
anything of it is left: children in the inventory, or operations in flight. Once nothing is
left the finalizer goes (:func:`nothing_left`); until then a teardown runs. Teardown pre-empts
whatever else runs in its lane — the Gateway is going away, so a provision or rotation there is
moot and is cancelled (:func:`in_the_way`) — and waits for itself only (:func:`running`).

:func:`start_teardown` is the one function that starts it: it returns the teardown already
running, else cancels what is in the way and starts one. It raises nothing for a busy lane:
:class:`TeardownStart` says what happened and whether to look again soon (a cancel raced with
that operation's end) or later (the lane is still busy).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from bifrost.clock import Clock
from bifrost.engine import cancel_operation, start_operation
from bifrost.machines.spec import MachineSpec
from bifrost.machines.teardown import TEARDOWN_MACHINE
from bifrost.records import ChildRecord, OperationRecord, OperationStatus
from bifrost.store.errors import OperationConflict
from bifrost.store.interface import OperationStore

__all__ = ["CANCEL_REASON", "TeardownStart", "in_the_way", "nothing_left", "running",
           "start_teardown"]

log = logging.getLogger(__name__)

#: Journalled on each operation teardown cancels.
CANCEL_REASON = "the Gateway is being deleted"


def nothing_left(children: Sequence[ChildRecord], active: Sequence[OperationRecord],
                 operations: Sequence[OperationRecord] | None = None) -> bool:
    """Whether a Gateway being deleted can let go of its finalizer: no child in its inventory
    and no operation in flight — and, given its ``operations``, a teardown has succeeded: an
    empty inventory without one may be a lost database, so a teardown must first look in the
    cluster for what the Gateway owns (its ``adopt_for_teardown`` step)."""
    if children or active:
        return False
    return operations is None or any(
        o.machine == TEARDOWN_MACHINE and o.status is OperationStatus.SUCCEEDED
        for o in operations)


def running(active: Sequence[OperationRecord], machine: MachineSpec) -> OperationRecord | None:
    """The teardown among the Gateway's ``active`` operations, if one runs."""
    return next((o for o in active if o.machine == machine.name), None)


def in_the_way(active: Sequence[OperationRecord], machine: MachineSpec) -> list[OperationRecord]:
    """The Gateway's ``active`` operations a teardown cancels: the others in its lane."""
    return [o for o in active if o.lane == machine.lane and o.machine != machine.name]


@dataclass(frozen=True)
class TeardownStart:
    """What :func:`start_teardown` did."""

    #: The teardown now running (``None``: not started now — see ``look_again_soon``).
    operation: OperationRecord | None
    #: Whether this call created it.
    started: bool = False
    #: Machines of the operations cancelled for it, in order.
    cancelled: tuple[str, ...] = ()
    #: Not started because a cancel failed (it raced with that operation's end): look again
    #: soon. ``False`` with no ``operation``: the lane is busy, look again later.
    look_again_soon: bool = False


def start_teardown(
    store: OperationStore,
    machine: MachineSpec,
    *,
    gateway_uid: str,
    namespace: str,
    name: str,
    context: BaseModel,
    active: Sequence[OperationRecord],
    clock: Clock,
    actor: str,
) -> TeardownStart:
    """Start the teardown of a Gateway being deleted whose ``active`` operations are given."""
    already = running(active, machine)
    if already is not None:
        return TeardownStart(already)
    cancelled: list[str] = []
    for op in in_the_way(active, machine):
        try:
            cancel_operation(store, op.id, clock=clock, actor=actor, reason=CANCEL_REASON)
        except Exception as exc:  # noqa: BLE001 - raced with its end; look again
            log.info("could not cancel operation %s: %s", op.id, exc)
            return TeardownStart(None, cancelled=tuple(cancelled), look_again_soon=True)
        cancelled.append(op.machine)
    try:
        op = start_operation(store, machine, gateway_uid=gateway_uid, namespace=namespace,
                             name=name, context=context, clock=clock, actor=actor)
    except OperationConflict as exc:  # LaneBusy included
        log.info("gateway %s/%s: %s", namespace, name, exc)
        return TeardownStart(None, cancelled=tuple(cancelled))
    return TeardownStart(op, started=True, cancelled=tuple(cancelled))
