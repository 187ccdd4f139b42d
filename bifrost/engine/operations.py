"""Starting operations, one per (gateway, lane).

A gateway may run at most one active operation per lane (the store enforces it with a unique
constraint); the Gateway lifecycle decides which machines share a lane. Starting is idempotent:
asking for the same machine while it is already active in the lane returns the running one, so a
controller that re-observes the same desired state does not queue duplicates; a *different*
machine in the lane is a conflict the caller must resolve (wait, cancel, or trigger).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from bifrost.clock import Clock
from bifrost.machines.spec import MachineSpec
from bifrost.records import NewOperation, OperationRecord
from bifrost.store.errors import OperationConflict
from bifrost.store.interface import OperationStore


class LaneBusy(OperationConflict):
    """Another machine's operation is active in the lane."""

    def __init__(self, holder: OperationRecord, wanted: MachineSpec) -> None:
        self.holder = holder
        super().__init__(
            f"gateway {holder.namespace}/{holder.name} (uid {holder.gateway_uid}) lane "
            f"{holder.lane!r} is busy with operation {holder.id} ({holder.machine} "
            f"v{holder.machine_version}, state {holder.state}, {holder.status.value}); "
            f"cannot start {wanted.name}: wait for it, or cancel it with "
            f"'bifrost-admin cancel {holder.id}'"
        )


def start_operation(
    store: OperationStore,
    machine: MachineSpec,
    *,
    gateway_uid: str,
    namespace: str,
    name: str,
    context: BaseModel,
    clock: Clock,
    actor: str,
    lane: str | None = None,
    next_run_at: datetime | None = None,
) -> OperationRecord:
    """Create a pending operation of ``machine`` for the gateway, or return the active one of the
    same machine in the lane. Raises ``LaneBusy`` when another machine holds the lane. The
    gateway record must exist (``store.upsert_gateway``)."""
    if not isinstance(context, machine.context_model):
        raise TypeError(
            f"context for {machine.name} must be a {machine.context_model.__name__}, "
            f"not {type(context).__name__}"
        )
    lane = lane or machine.lane
    for _ in range(3):
        existing = store.active_operation(gateway_uid, lane)
        if existing is not None:
            if existing.machine == machine.name:
                return existing
            raise LaneBusy(existing, machine)
        try:
            return store.create_operation(
                NewOperation(
                    gateway_uid=gateway_uid,
                    namespace=namespace,
                    name=name,
                    machine=machine.name,
                    machine_version=machine.version,
                    state=machine.initial,
                    lane=lane,
                    context=context.model_dump(mode="json"),
                    next_run_at=next_run_at,
                ),
                now=clock.now(),
                actor=actor,
            )
        except OperationConflict:
            continue  # raced with another starter: look again
    raise OperationConflict(
        f"gateway uid {gateway_uid} lane {lane!r}: the active operation kept changing; try again"
    )
