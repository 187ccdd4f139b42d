"""The fallback Gateway status writer of a bare :class:`~bifrost.controller.observe.Observer`:
``Accepted`` from the class and its blueprint, ``Programmed`` from the operation state only, and
the operation condition. The controller plugs in
:class:`bifrost.controller.status_writer.GatewayApiStatusWriter` instead (listener, address and
route status too)."""

from __future__ import annotations

from typing import Any

from bifrost.api import parse_conditions, set_condition
from bifrost.api.conditions import (
    OPERATION_CONDITION,
    Condition,
    ConditionStatus,
    GatewayConditionType,
    GatewayReason,
    condition,
)
from bifrost.api.objects import Obj, generation, meta
from bifrost.clock import Clock
from bifrost.controller.gateway_view import GatewayView
from bifrost.controller.informers import GATEWAY_API_VERSION
from bifrost.kube.ports import KubeStatusWriter
from bifrost.records import OperationStatus

__all__ = ["OperationStatusWriter"]


def _conditions(obj: Obj) -> tuple[Condition, ...]:
    status = obj.get("status")
    raw = status.get("conditions") if isinstance(status, dict) else None
    try:
        return parse_conditions(raw)
    except ValueError:
        return ()


def _dump(conditions: tuple[Condition, ...]) -> list[dict[str, Any]]:
    return [c.model_dump(by_alias=True, mode="json", exclude_none=True) for c in conditions]


class OperationStatusWriter:
    """Interim Gateway status: ``Accepted`` from the class/blueprint, ``Programmed`` from the
    provision operation (Unknown/Pending while none finished), and the operation condition
    (``Paused``, with who paused it and why, while an operator holds it).
    Listener, address and route status come with the real ``bifrost.status`` writer."""

    def __init__(self, kube: KubeStatusWriter, clock: Clock) -> None:
        self.kube = kube
        self.clock = clock

    def desired(self, view: GatewayView) -> tuple[Condition, ...]:
        gateway, now = view.gateway, self.clock.now()
        gen = generation(gateway)
        res, op = view.resolution, view.operation
        if res is not None and res.error is not None:
            accepted = condition(
                GatewayConditionType.ACCEPTED, False, reason=GatewayReason.INVALID_PARAMETERS,
                message=res.error, generation=gen, now=now,
            )
        else:
            accepted = condition(
                GatewayConditionType.ACCEPTED, True, reason=GatewayReason.ACCEPTED,
                message="", generation=gen, now=now,
            )
        if res is not None and res.error is not None:
            programmed = condition(
                GatewayConditionType.PROGRAMMED, False, reason=GatewayReason.INVALID,
                message="the GatewayClass is not accepted", generation=gen, now=now,
            )
        elif op is None or op.status.active:
            what = (
                f"operation {op.id} ({op.machine}) in state {op.state}" if op is not None
                else "waiting for the provision operation to start"
            )
            programmed = condition(
                GatewayConditionType.PROGRAMMED, ConditionStatus.UNKNOWN,
                reason=GatewayReason.PENDING, message=what, generation=gen, now=now,
            )
        elif op.status is OperationStatus.SUCCEEDED:
            programmed = condition(
                GatewayConditionType.PROGRAMMED, True, reason=GatewayReason.PROGRAMMED,
                message="", generation=gen, now=now,
            )
        else:
            programmed = condition(
                GatewayConditionType.PROGRAMMED, False, reason=GatewayReason.INVALID,
                message=f"operation {op.id} ({op.machine}) {op.status.value}: "
                f"{op.last_error or 'no detail'}"[:1024],
                generation=gen, now=now,
            )
        out = set_condition(set_condition(_conditions(gateway), accepted), programmed)
        if op is not None and op.status is OperationStatus.PAUSED:
            out = set_condition(out, condition(
                OPERATION_CONDITION, True, reason="Paused",
                message=f"{op.machine} operation {op.id} is paused in state {op.state}: "
                f"{view.paused or 'paused by an operator'}",
                generation=gen, now=now,
            ))
        elif op is not None and op.status.active:
            out = set_condition(out, condition(
                OPERATION_CONDITION, True, reason="InProgress",
                message=f"{op.machine} operation {op.id}: state {op.state}"
                + (f", step {op.step}" if op.step else ""),
                generation=gen, now=now,
            ))
        elif any(c.type == OPERATION_CONDITION for c in out):
            out = set_condition(out, condition(
                OPERATION_CONDITION, False, reason="Idle", message="no operation in flight",
                generation=gen, now=now,
            ))
        return out

    def write_status(self, view: GatewayView) -> bool:
        current = _conditions(view.gateway)
        desired = self.desired(view)
        if desired == current:
            return False
        m = meta(view.gateway)
        self.kube.patch_status(
            GATEWAY_API_VERSION, "Gateway", str(m.get("name")), str(m.get("namespace")),
            {"conditions": _dump(desired)},
            resource_version=str(m.get("resourceVersion") or "") or None,
        )
        return True
