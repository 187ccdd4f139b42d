"""Writes each Gateway's lifecycle state (``gateways.lifecycle_state`` and ``last_error``) as
the controller observes it, and records one Kubernetes Event per transition.

The rule is :func:`bifrost.machines.lifecycle.next_lifecycle` (pure, checked against the
lifecycle machine); this module only feeds it what the observer knows — the Gateway's latest
operation, whether it is being deleted or its teardown finished, whether its children are
ready — and writes the result **only when it changes**: the state last written (or read once
per leadership term) is remembered per uid, so a resync of a converged fleet reads and writes
nothing here.

Events: ``Lifecycle<State>`` (e.g. ``LifecycleReady``; Warning for ``failed`` and
``degraded``), note ``lifecycle <from> -> <to> (<trigger>)``, recorded through the observer's
:class:`~bifrost.controller.announcements.Announcer`.

A deleted Gateway's record is kept (``deleted_at`` set) until housekeeping purges it after the
retention (:mod:`bifrost.controller.housekeeping`). ``deleted`` is written when the controller
lets go of the finalizer itself (just before, so a crash in between cannot leave a record that
is never purged) and, when the teardown operation removed it, once the Gateway is gone from the
cluster (:meth:`LifecycleKeeper.gone`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bifrost.api.objects import Obj, meta
from bifrost.clock import Clock
from bifrost.controller.announcements import Announcer
from bifrost.machines.lifecycle import (
    IllegalLifecycleJump,
    LifecycleFacts,
    LifecycleState,
    OperationFacts,
    next_lifecycle,
)
from bifrost.machines.teardown import TEARDOWN_MACHINE
from bifrost.records import ChildRecord, GatewayRecord, OperationRecord, OperationStatus
from bifrost.store.errors import RecordNotFound
from bifrost.store.interface import OperationStore

__all__ = ["Gone", "LifecycleKeeper", "children_ready"]

log = logging.getLogger(__name__)

_WARNING_STATES = frozenset({LifecycleState.FAILED, LifecycleState.DEGRADED})


@dataclass(frozen=True)
class Gone:
    """What :meth:`LifecycleKeeper.gone` did: whether it wrote ``deleted``, and whether a
    teardown of a vanished Gateway is still running (look again shortly)."""

    wrote: bool
    teardown_running: bool


def children_ready(children: Sequence[ChildRecord] | None) -> bool | None:
    """Whether every child in the inventory is ready (None: no inventory to judge by)."""
    if not children:
        return None
    return all(child.ready for child in children)


class LifecycleKeeper:
    """Keeps ``gateways.lifecycle_state`` in step with what the controller observes."""

    def __init__(self, *, store: OperationStore, clock: Clock, announcer: Announcer) -> None:
        self.store = store
        self.clock = clock
        self.announcer = announcer
        self._known: dict[str, tuple[str, str | None]] = {}  # uid → (state, last_error)

    def new_term(self) -> None:
        """A leadership term begins: another replica may have written states meanwhile."""
        self._known.clear()

    def observe(
        self,
        gateway: Obj,
        uid: str,
        operation: OperationRecord | None,
        *,
        children: Sequence[ChildRecord] | None = None,
        ready: bool | None = None,
    ) -> bool:
        """Move the Gateway's lifecycle for its latest ``operation`` (active, else most
        recent), its deletionTimestamp and its children's readiness (``ready`` when the caller
        knows it live, else judged from the ``children`` inventory). Returns whether it wrote."""
        facts = LifecycleFacts(
            operation=OperationFacts.of(operation) if operation is not None else None,
            deleting=bool(meta(gateway).get("deletionTimestamp")),
            children_ready=ready if ready is not None else children_ready(children),
        )
        if facts.deleting:  # a teardown's start and failure (its success: ``gone``)
            self.announcer.announce(gateway, uid, operation)
        return self._apply(uid, facts, gateway=gateway)

    def finished(self, gateway: Obj, uid: str) -> bool:
        """The controller is about to remove bifrost's finalizer: the Gateway is deleted."""
        return self._apply(uid, LifecycleFacts(deleting=True, teardown_finished=True),
                           gateway=gateway)

    def gone(self, namespace: str, name: str) -> Gone:
        """No Gateway ``namespace/name`` is left in the cluster: each recorded one whose
        teardown succeeded (it removed the finalizer) is deleted. One indexed read, plus one
        per record not yet deleted. A teardown still committing its end (the Gateway went as
        its last step removed the finalizer) is reported so the caller looks again."""
        wrote = running = False
        for record in self.store.find_gateways(namespace, name):
            if record.lifecycle_state == LifecycleState.DELETED:
                continue
            ops = self.store.list_operations(gateway_uid=record.uid, limit=1)
            latest = ops[0] if ops else None
            if latest is None or latest.machine != TEARDOWN_MACHINE:
                continue
            if latest.status.active:
                running = True
                continue
            if latest.status is not OperationStatus.SUCCEEDED:
                continue
            facts = LifecycleFacts(deleting=True, teardown_finished=True)
            # The Event is about the Gateway that was (Events outlive what they regard).
            was: Obj = {"metadata": {"namespace": record.namespace, "name": record.name,
                                     "uid": record.uid}}
            self.announcer.announce(was, record.uid, latest)  # TeardownSucceeded
            wrote = self._apply(record.uid, facts, gateway=was, record=record) or wrote
        return Gone(wrote=wrote, teardown_running=running)

    # ---- internals ---------------------------------------------------------------------------

    def _current(self, uid: str) -> tuple[str, str | None] | None:
        known = self._known.get(uid)
        if known is not None:
            return known
        try:
            record = self.store.get_gateway(uid)
        except RecordNotFound:
            return None  # not recorded yet: the keeper records it first
        return self.remember(record)

    def remember(self, record: GatewayRecord) -> tuple[str, str | None]:
        """Take the record's state as the current one (the caller just read or wrote it)."""
        known = (record.lifecycle_state, record.last_error)
        self._known[record.uid] = known
        return known

    def _apply(self, uid: str, facts: LifecycleFacts, *, gateway: Obj,
               record: GatewayRecord | None = None) -> bool:
        current = self.remember(record) if record is not None else self._current(uid)
        if current is None:
            return False
        state, last_error = current
        if state == LifecycleState.DELETED:
            return False  # the end: a late look at a deleted Gateway changes nothing
        try:
            change = next_lifecycle(state, facts, last_error=last_error)
        except IllegalLifecycleJump as exc:
            log.warning("gateway %s: lifecycle not moved: %s", uid, exc)
            return False
        if (change.state, change.last_error) == current:
            return False
        now = self.clock.now()
        deleted_at = now if change.state == LifecycleState.DELETED else None
        try:
            written = self.store.set_gateway_state(uid, lifecycle_state=change.state, now=now,
                                                   last_error=change.last_error,
                                                   deleted_at=deleted_at)
        except RecordNotFound:
            self._known.pop(uid, None)
            return False
        self.remember(written)
        for step in change.transitions:
            log.info("gateway %s: lifecycle %s -> %s (%s)", uid, step.source, step.dest,
                     step.trigger)
            note = f"lifecycle {step.source} -> {step.dest} ({step.trigger})"
            if step.dest == change.state and change.last_error:
                note = f"{note}: {change.last_error}"
            self.announcer.event(gateway, reason=f"Lifecycle{step.dest.title()}",
                                 action="Lifecycle", note=note[:1024],
                                 warning=step.dest in _WARNING_STATES)
        return True
