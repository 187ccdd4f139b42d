"""Kubernetes Events about a Gateway's operations: ``<Machine>Started`` when one is first seen
active, ``<Machine>Succeeded`` / ``<Machine>Failed`` when it ended — once each as this process
sees them (an end that happened while another replica led is not announced again) — and the
other Events the observer records on a Gateway (e.g. ``InvalidValues``).

``on_operation_end(machine, result)`` is told of each end announced (the controller counts them
in its metrics).
"""

from __future__ import annotations

from collections.abc import Callable

from bifrost.api.objects import Obj, meta
from bifrost.clock import Clock
from bifrost.controller.informers import GATEWAY_API_VERSION
from bifrost.kube import EventRecorder, ObjectRef
from bifrost.records import OperationRecord, OperationStatus

__all__ = ["Announcer"]


class Announcer:
    """Records Events on Gateways (none when ``events`` is ``None``)."""

    def __init__(
        self,
        *,
        events: EventRecorder | None,
        clock: Clock,
        on_operation_end: Callable[[str, str], None] | None = None,
    ) -> None:
        self.events = events
        self.clock = clock
        self.on_operation_end = on_operation_end
        self._seen_active: dict[str, int] = {}  # uid → id of the operation last seen active
        self._announced_end: dict[str, int] = {}  # uid → id of the operation last announced
        self._term_started = clock.now()

    def new_term(self) -> None:
        """A leadership term begins: ends from now on are this term's to announce."""
        self._term_started = self.clock.now()

    def announce(self, gateway: Obj, uid: str, op: OperationRecord | None) -> None:
        """Events for ``op``'s start and end (``op``: the Gateway's active operation, else its
        most recent one)."""
        if op is None:
            return
        machine = op.machine.replace("-", "_").title().replace("_", "")
        if op.status.active:
            if self._seen_active.get(uid) != op.id:
                self._seen_active[uid] = op.id
                self.event(gateway, reason=f"{machine}Started", action=machine,
                           note=f"operation {op.id} ({op.machine}) started")
            return
        if self._announced_end.get(uid) == op.id:
            return
        ended_this_term = op.finished_at is not None and op.finished_at >= self._term_started
        if self._seen_active.get(uid) != op.id and not ended_this_term:
            return  # ended while another replica led: it announced it
        self._seen_active.pop(uid, None)
        self._announced_end[uid] = op.id
        if self.on_operation_end is not None:
            self.on_operation_end(op.machine, op.status.value)
        if op.status is OperationStatus.SUCCEEDED:
            self.event(gateway, reason=f"{machine}Succeeded", action=machine,
                       note=f"operation {op.id} ({op.machine}) succeeded")
        else:
            self.event(gateway, reason=f"{machine}Failed", action=machine, warning=True,
                       note=f"operation {op.id} ({op.machine}) {op.status.value} in state "
                       f"{op.state}: {op.last_error or 'no detail'}")

    def event(self, gateway: Obj, *, reason: str, action: str, note: str,
              warning: bool = False) -> None:
        """One Event on ``gateway``."""
        if self.events is None:
            return
        m = meta(gateway)
        ref = ObjectRef(GATEWAY_API_VERSION, "Gateway", str(m.get("name")),
                        str(m.get("namespace")), str(m.get("uid") or "") or None)
        self.events.record(ref, reason=reason, action=action, note=note,
                           type="Warning" if warning else "Normal")
