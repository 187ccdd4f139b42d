"""Kubernetes Events about a Gateway's operations, the same for every machine (provision,
rotate_certificate, teardown, and any machine added to the catalog): ``<Machine>Started`` when
one is first seen active, ``<Machine>Succeeded`` / ``<Machine>Failed`` (Warning) when it ended —
once each as this process sees them (an end that happened while another replica led is not
announced again) — and the other Events the observer records on a Gateway (e.g.
``InvalidValues``).

Every operation Event has one shape: ``reason`` ``<Machine><Phase>`` (the machine name in
CamelCase), ``action`` ``<Machine>``, ``regarding`` the Gateway (apiVersion, kind, namespace,
name, uid), and the note :func:`operation_note` writes — ``operation <id> (<machine>)
started[: <why>]`` (the operation's ``reason`` when its machine records one, e.g. a rotation's),
``… succeeded``, ``… failed in state <state>: <last error>``, ``… cancelled in state
<state>[: <last error>]`` (a cancelled operation is announced as ``<Machine>Failed``; who
cancelled it is in its journal).

A teardown ends after its last step removed bifrost's finalizer, when the Gateway is already
gone: its end is announced by the controller's ``gone`` path with a Gateway reference built from
the store record (the same namespace, name and uid). An Event's ``regarding`` need not exist, so
the API server accepts it; when the namespace itself is being deleted it refuses every new
object, and the Event is lost (logged as a WARNING by the recorder; nothing retries it).

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

__all__ = ["Announcer", "machine_reason", "operation_note"]


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
        machine = machine_reason(op.machine)
        if op.status.active:
            if self._seen_active.get(uid) != op.id:
                self._seen_active[uid] = op.id
                self.event(gateway, reason=f"{machine}Started", action=machine,
                           note=operation_note(op))
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
        succeeded = op.status is OperationStatus.SUCCEEDED
        self.event(gateway, reason=f"{machine}{'Succeeded' if succeeded else 'Failed'}",
                   action=machine, warning=not succeeded, note=operation_note(op))

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


def machine_reason(machine: str) -> str:
    """The machine's name as an Event reason prefix: ``rotate_certificate`` →
    ``RotateCertificate``."""
    return machine.replace("-", "_").title().replace("_", "")


def operation_note(op: OperationRecord) -> str:
    """The note of an operation Event (the module docstring gives the shape)."""
    head = f"operation {op.id} ({op.machine})"
    if op.status.active:
        why = (op.context or {}).get("reason")
        return f"{head} started" + (f": {why}" if isinstance(why, str) and why else "")
    if op.status is OperationStatus.SUCCEEDED:
        return f"{head} succeeded"
    if op.status is OperationStatus.CANCELLED:
        return f"{head} cancelled in state {op.state}" + (f": {op.last_error}"
                                                          if op.last_error else "")
    return f"{head} {op.status.value} in state {op.state}: {op.last_error or 'no detail'}"
