"""What the observer knows about one Gateway (:class:`GatewayView`) and the port through which
its status is written (:class:`StatusWriter`).

The controller plugs in :class:`bifrost.controller.status_writer.GatewayApiStatusWriter`
(Gateway, listener and HTTPRoute status built on ``bifrost.status``); a bare
:class:`~bifrost.controller.observe.Observer` falls back to
:class:`bifrost.controller.operation_status.OperationStatusWriter`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bifrost.api.objects import Obj
from bifrost.controller.acceptance import Acceptance
from bifrost.controller.classes import ClassResolution
from bifrost.controller.informers import Cache
from bifrost.records import ChildRecord, OperationRecord

__all__ = [
    "VALUES_CONDITION",
    "GatewayView",
    "StatusWriter",
    "latest_operation",
]

#: Domain-prefixed Gateway condition: False/InvalidValues while the Gateway's values break its
#: blueprint's ``spec.values`` and are not provisioned (the message names levels and field
#: paths, never values); True/Valid once they obey it again.
VALUES_CONDITION = "gateway.bifrost.dev/Values"


@dataclass(frozen=True)
class GatewayView:
    """Everything observe knows about one Gateway, handed to the :class:`StatusWriter`."""

    gateway: Obj
    resolution: ClassResolution | None
    operation: OperationRecord | None  # the active operation, else the most recent one
    cache: Cache
    values: Mapping[str, Any] = field(default_factory=dict)
    #: The Gateway's children inventory (readiness, what to read for addresses).
    children: tuple[ChildRecord, ...] = ()
    #: The most recent provision operation (what Programmed is judged on while a rotation runs
    #: or after one ended).
    provision: OperationRecord | None = None
    #: The attached certificates bifrost manages, by listener name (their Secrets stand in for
    #: the listener's certificateRefs in status).
    certificates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Why the Gateway's current values are not provisioned (they break the blueprint's
    #: ``spec.values``; field paths and levels, no values), else ``None``.
    values_held: str | None = None
    #: What the active operation repairs (children changed outside bifrost), else ``None``.
    repairing: str | None = None
    #: Whether a provision of this Gateway has succeeded according to the store (False on a
    #: new Gateway — or on an empty, lost database).
    provisioned_before: bool = True
    #: Whether bifrost accepts the Gateway (:mod:`bifrost.controller.acceptance`), as the
    #: observer judged it before deciding to provision; ``None``: judged from ``resolution``.
    acceptance: Acceptance | None = None
    #: Who paused the active operation and why (its journal's ``pause`` entry), when paused.
    paused: str | None = None


class StatusWriter(Protocol):
    """Writes a Gateway's status (only when it changed); returns whether it wrote."""

    def write_status(self, view: GatewayView) -> bool: ...


def latest_operation(ops: Sequence[OperationRecord]) -> OperationRecord | None:
    """The active operation, else the most recent one."""
    if not ops:
        return None
    active = [o for o in ops if o.status.active]
    return max(active or ops, key=lambda o: o.id)
