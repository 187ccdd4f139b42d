"""Observe: for one work key, compare desired state (the cache) with recorded state (the store)
and hand the work to the part that does it. The :class:`Observer` only dispatches; each job has
its own module:

- :mod:`bifrost.controller.classes` — GatewayClass → blueprint resolution and class status;
- :mod:`bifrost.controller.gateways` — the finalizer, the store record and deletion of a
  Gateway (teardown, then the finalizer goes);
- :mod:`bifrost.controller.inputs` — merged values (judged by
  :mod:`bifrost.controller.values_verdict`), attached routes and the input hash;
- :mod:`bifrost.controller.starter` — starting provision, rotation and teardown through
  :mod:`bifrost.triggers`;
- :mod:`bifrost.controller.announcements` — Events about operations;
- :mod:`bifrost.controller.policy_status` — the status of policies and blueprints;
- a :class:`~bifrost.controller.gateway_view.StatusWriter` — Gateway status (the controller
  plugs in :class:`bifrost.controller.status_writer.GatewayApiStatusWriter`; a bare observer
  falls back to :class:`bifrost.controller.operation_status.OperationStatusWriter`);
- an :class:`~bifrost.controller.ledger.InputLedger` — where the last provisioned input hash is
  remembered (by default :class:`~bifrost.controller.ledger.StoreLedger`, in the store, so a
  restarted controller does not provision unchanged Gateways again).

Observation is level-triggered and cheap: it reads only the informers' cache and a few store rows
for the one Gateway, and writes only what changed (status compared before writing, the finalizer
only when missing, the store record only when its fields differ, an operation only when the
*input hash* differs from the one the last started provision recorded). So a full resync of a
converged fleet makes no API and no database writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bifrost.api.objects import Obj, meta
from bifrost.api.policies import CONTROLLER_NAMESPACE
from bifrost.clock import Clock
from bifrost.controller.acceptance import (
    Acceptance,
    judge_gateway,
    judged_gateway,
    listener_verdicts,
)
from bifrost.controller.announcements import Announcer
from bifrost.controller.classes import ClassResolution, ClassStatus, resolve_class
from bifrost.controller.drift import Drift, DriftCheck
from bifrost.controller.gateway_view import GatewayView, StatusWriter, latest_operation
from bifrost.controller.gateways import GatewayKeeper
from bifrost.controller.informers import Cache, WorkKey, gateway_class_name
from bifrost.controller.inputs import GatewayInputs
from bifrost.controller.ledger import InputLedger, StoreLedger
from bifrost.controller.observation import Observation
from bifrost.controller.operation_status import OperationStatusWriter
from bifrost.controller.policy_status import OWN_STATUS_KINDS, OwnStatusWriter
from bifrost.controller.starter import ACTIVE_RECHECK_SECONDS, OperationStarter
from bifrost.controller.values_verdict import ValuesVerdict
from bifrost.kube import Conflict, EventRecorder
from bifrost.kube.ports import Kube
from bifrost.machines.provision import PROVISION_MACHINE
from bifrost.machines.registry import MachineRegistry
from bifrost.records import (
    CertificateRecord,
    ChildRecord,
    JournalOutcome,
    OperationRecord,
    OperationStatus,
)
from bifrost.steps.tls import attached_certificates
from bifrost.store.errors import RecordNotFound
from bifrost.store.interface import OperationStore
from bifrost.triggers.forbidden_retry import forbidden_retry_in

__all__ = ["Observer"]


def _provisioned_before(ops: Sequence[OperationRecord]) -> bool:
    return any(o.machine == PROVISION_MACHINE and o.status is OperationStatus.SUCCEEDED
               for o in ops)


class Observer:
    """Dispatches one work key to the part that handles it (see the module docstring).
    Thread-safe as long as one key is observed by one worker at a time (the work queue
    guarantees it)."""

    def __init__(
        self,
        *,
        cache: Cache,
        kube: Kube,
        store: OperationStore,
        registry: MachineRegistry,
        clock: Clock,
        actor: str,
        status_writer: StatusWriter | None = None,
        ledger: InputLedger | None = None,
        controller_namespace: str = CONTROLLER_NAMESPACE,
        events: EventRecorder | None = None,
        on_operation_end: Callable[[str, str], None] | None = None,
        drift: DriftCheck | None = None,
        on_drift_repair: Callable[[str], None] | None = None,
    ) -> None:
        """``drift``: the drift check over the children's informers (None: drift is not
        looked for); ``on_drift_repair`` is told the kind of each child a repair restores."""
        self.cache = cache
        self.drift = drift
        self._on_drift_repair = on_drift_repair
        #: uid → (repair operation id, what it repairs): reported when it ends.
        self._repairs: dict[str, tuple[int, str]] = {}
        self.events = events
        self.kube = kube
        self.store = store
        self.registry = registry
        self.clock = clock
        self.actor = actor
        self.status_writer: StatusWriter = status_writer or OperationStatusWriter(kube, clock)
        self.ledger: InputLedger = ledger or StoreLedger(store, clock)
        self.controller_namespace = controller_namespace
        self.inputs = GatewayInputs(cache, controller_namespace=controller_namespace)
        self.classes = ClassStatus(cache=cache, kube=kube, clock=clock)
        self.announcer = Announcer(events=events, clock=clock, on_operation_end=on_operation_end)
        self.starter = OperationStarter(cache=cache, store=store, registry=registry, clock=clock,
                                        actor=actor, inputs=self.inputs, ledger=self.ledger)
        self.gateways = GatewayKeeper(cache=cache, kube=kube, store=store, clock=clock,
                                      starter=self.starter, announcer=self.announcer)
        #: Status of bifrost's own objects (policies, blueprints).
        self.own_status = OwnStatusWriter(cache=cache, kube=kube, clock=clock,
                                          controller_namespace=controller_namespace)
        self._values_held: dict[str, str] = {}  # uid → why its values are not provisioned

    def new_term(self) -> None:
        """A leadership term begins: drop what was cached from the store (another replica may
        have written it meanwhile), so it is read again once per Gateway."""
        self.gateways.new_term()
        self.ledger.invalidate()
        self.announcer.new_term()

    def observe(self, key: WorkKey) -> Observation:
        if key.kind == "GatewayClass":
            return self.observe_class(key.name)
        if key.kind == "Gateway":
            return self.observe_gateway(key.namespace, key.name)
        if key.kind in OWN_STATUS_KINDS:
            return self.own_status.observe(key)
        raise ValueError(f"cannot observe {key}")

    # ---- GatewayClass -------------------------------------------------------------------

    def resolve_class(self, gateway_class: Obj) -> ClassResolution:
        """:func:`bifrost.controller.classes.resolve_class` on this observer's cache."""
        return resolve_class(self.cache, gateway_class)

    def observe_class(self, name: str) -> Observation:
        return self.classes.observe(name)

    # ---- Gateway ------------------------------------------------------------------------

    def observe_gateway(self, namespace: str, name: str) -> Observation:
        gateway = self.cache.get("Gateway", namespace, name)
        if gateway is None:
            return self.gateways.gone(namespace, name)
        if not self.cache.responsible_for(gateway):
            return self.gateways.not_ours(namespace, name)
        uid = str(meta(gateway).get("uid") or "")
        if not uid:
            return Observation()
        if meta(gateway).get("deletionTimestamp"):
            self._repairs.pop(uid, None)  # a deleted Gateway is torn down, never repaired
            if self.drift is not None:
                self.drift.forget(uid)
            return self.gateways.deleting(gateway, uid)
        actions: list[str] = []
        gateway_class = self.cache.get("GatewayClass", "", gateway_class_name(gateway))
        if gateway_class is None:
            return self._class_lost(gateway, uid)
        if not self.cache.is_ours(gateway_class):
            return Observation()  # the class changed hands while we hold a finalizer: wait
        assert gateway_class is not None
        try:
            written = self.gateways.add_finalizer(gateway)
        except Conflict:
            return Observation(("finalizer-conflict",), requeue_after=1.0)
        if written is not None:
            gateway = written
            actions.append("finalizer-added")
        if self.gateways.record(gateway, uid):
            actions.append("store-upserted")
        resolution = self.resolve_class(gateway_class)
        values: dict[str, Any] = {}
        requeue: float | None = None
        repairable = False  # converged as far as its inputs go: drift is looked for
        certificates = self._attached_secrets(uid)
        acceptance = self._acceptance(gateway, gateway_class, resolution)
        if resolution.blueprint is None:
            self._values_held.pop(uid, None)
        elif not acceptance.accepted:
            # bifrost.controller.acceptance: an unaccepted Gateway is not provisioned (nor
            # rotated, nor repaired); one provisioned before keeps its last children.
            values = self.values_verdict(gateway, resolution).values
            actions.append("not-accepted")
        else:
            verdict = self.values_verdict(gateway, resolution)
            values = verdict.values
            held = verdict.hold(provisioned=self.ledger.recorded(uid) is not None)
            tls = resolution.blueprint.spec.tls
            # A rotation renders with the last provision's values, never with these.
            rotating = (self.starter.rotate_on_change(gateway, uid, tls)
                        if tls is not None else None)
            if rotating is not None:
                # The rotation re-renders the children with the new hostnames and certificate;
                # the provision for the changed inputs follows once it ended.
                actions.append("rotation-started")
                requeue = ACTIVE_RECHECK_SECONDS
            elif held is not None:
                # Invalid values are never provisioned: the Gateway keeps its last children.
                if self._values_held.get(uid) != held:
                    self._values_held[uid] = held
                    self.announcer.event(gateway, reason="InvalidValues", action="Provision",
                                         warning=True, note=f"not provisioned: {held}"[:1024])
                actions.append("values-held")
            else:
                self._values_held.pop(uid, None)
                started, requeue = self.starter.provision(gateway, uid, resolution, values)
                if started:
                    actions.append("provision-started")
                repairable = not started and requeue is None
        ops = self.store.list_operations(gateway_uid=uid, limit=100)
        if repairable:
            retry = self._retry_forbidden(gateway, uid, resolution, values, ops)
            if retry is not None:
                repairable = False  # a failed provision is no converged state to repair
                started, requeue = retry
                if started:
                    actions.append("forbidden-retry-started")
                    ops = self.store.list_operations(gateway_uid=uid, limit=100)
        operation = latest_operation(ops)
        try:
            children = tuple(self.store.list_children(uid))
        except RecordNotFound:
            children = ()
        ready: bool | None = None
        if repairable and self.drift is not None and (
            operation is None or not operation.status.active
        ):
            repair = self._repair_drift(gateway, uid, resolution, values, children)
            if repair is not None:
                ready = False if any(d.what == "deleted" for d in repair[1]) else None
                if repair[0] is not None:
                    actions.append("drift-repair-started")
                    ops = self.store.list_operations(gateway_uid=uid, limit=100)
                    operation = latest_operation(ops)
                else:
                    requeue = repair[2]
        self._report_repair(gateway, uid, operation)
        self.announcer.announce(gateway, uid, operation)
        if operation is not None and operation.status.active:
            requeue = min(requeue or ACTIVE_RECHECK_SECONDS, ACTIVE_RECHECK_SECONDS)
        self.gateways.lifecycle.observe(gateway, uid, operation, children=children, ready=ready)
        view = GatewayView(gateway, resolution, operation, self.cache, values, children,
                           provision=latest_operation([o for o in ops
                                                       if o.machine == PROVISION_MACHINE]),
                           certificates=certificates,
                           values_held=self._values_held.get(uid),
                           repairing=self._repairing(uid, operation),
                           provisioned_before=_provisioned_before(ops),
                           acceptance=acceptance,
                           paused=self._paused(operation))
        try:
            if self.status_writer.write_status(view):
                actions.append("status")
        except Conflict:
            requeue = 1.0
        return Observation(tuple(actions), requeue_after=requeue)

    def _acceptance(self, gateway: Obj, gateway_class: Obj,
                    resolution: ClassResolution) -> Acceptance:
        """:func:`bifrost.controller.acceptance.judge_gateway` on the cache: the judgement the
        status reports — except that a listener whose certificate bifrost manages always
        counts as served here, attached certificates or not: the provision this gates is what
        issues, adopts or repairs that certificate (after a restored backup the attached one
        the store names may be gone)."""
        tls = resolution.blueprint.spec.tls if resolution.blueprint is not None else None
        return judge_gateway(
            class_name=str(meta(gateway_class).get("name")), class_exists=True,
            class_error=resolution.error,
            parameters_error=self.inputs.parameters(gateway, resolution).error,
            verdicts=listener_verdicts(self.cache, judged_gateway(gateway, {}, tls)))

    def _class_lost(self, gateway: Obj, uid: str) -> Observation:
        """The Gateway's class is gone while it still holds our finalizer: nothing is
        provisioned, its last children are kept, and its status says so (Accepted=False)."""
        ops = self.store.list_operations(gateway_uid=uid, limit=100)
        operation = latest_operation(ops)
        try:
            children = tuple(self.store.list_children(uid))
        except RecordNotFound:
            children = ()
        view = GatewayView(
            gateway, None, operation, self.cache, {}, children,
            provision=latest_operation([o for o in ops if o.machine == PROVISION_MACHINE]),
            certificates=self._attached_secrets(uid), provisioned_before=_provisioned_before(ops),
            acceptance=judge_gateway(class_name=gateway_class_name(gateway), class_exists=False,
                                     class_error=None, parameters_error=None, verdicts=()),
            paused=self._paused(operation))
        self.announcer.announce(gateway, uid, operation)  # an operation may still end
        actions = ["class-lost"]
        try:
            if self.status_writer.write_status(view):
                actions.append("status")
        except Conflict:
            return Observation(tuple(actions), requeue_after=1.0)
        requeue = ACTIVE_RECHECK_SECONDS if operation is not None and \
            operation.status.active else None
        return Observation(tuple(actions), requeue_after=requeue)

    def _paused(self, operation: OperationRecord | None) -> str | None:
        """Who paused ``operation`` and why, from its journal (``None``: it is not paused)."""
        if operation is None or operation.status is not OperationStatus.PAUSED:
            return None
        for row in self.store.journal(operation_id=operation.id, limit=20, newest_first=True):
            if row.outcome is JournalOutcome.ADMIN and (row.message or "").startswith("paused"):
                return f"{row.message} (at {row.started_at:%Y-%m-%dT%H:%M:%SZ})"
        return None

    def _retry_forbidden(
        self, gateway: Obj, uid: str, resolution: ClassResolution, values: Mapping[str, Any],
        ops: Sequence[OperationRecord],
    ) -> tuple[bool, float | None] | None:
        """The provision that failed on a 403 started again once its back-off passed
        (:mod:`bifrost.triggers.forbidden_retry`): (started, look again in); ``None`` when the
        latest provision did not fail on a 403."""
        wait = forbidden_retry_in(ops, self.clock.now())
        if wait is None:
            return None
        if wait > 0:
            return False, wait
        return self.starter.provision(gateway, uid, resolution, values, repair=True)

    def _repair_drift(
        self, gateway: Obj, uid: str, resolution: ClassResolution, values: Mapping[str, Any],
        children: Sequence[ChildRecord],
    ) -> tuple[int | None, list[Drift], float | None] | None:
        """Start a provision that repairs the drifted children, if any drifted: (the repair's
        operation id or None when it must wait, what drifted, when to look again)."""
        assert self.drift is not None
        found = self.drift.check(children)
        if not found:
            return None
        now = self.clock.now()
        wait = self.drift.may_repair(uid, now)
        if wait is not None:
            return None, found, wait.total_seconds()
        started, again = self.starter.provision(gateway, uid, resolution, values, repair=True)
        if not started:
            return None, found, again or ACTIVE_RECHECK_SECONDS
        self.drift.repairing(uid, now)
        op = self.store.active_operation(uid)
        what = ", ".join(str(d) for d in found)
        if op is not None:
            self._repairs[uid] = (op.id, what)
        for d in found:
            if self._on_drift_repair is not None:
                self._on_drift_repair(d.kind.split(" ", 1)[0])
        self.announcer.event(gateway, reason="DriftDetected", action="Repair", warning=True,
                             note=f"repairing children changed outside bifrost: {what}"[:1024])
        return (op.id if op is not None else None), found, None

    def _repairing(self, uid: str, operation: OperationRecord | None) -> str | None:
        """What ``operation`` repairs, when it is the active repair of the Gateway."""
        repair = self._repairs.get(uid)
        if repair is None or operation is None or operation.id != repair[0] or \
                not operation.status.active:
            return None
        return repair[1]

    def _report_repair(self, gateway: Obj, uid: str, operation: OperationRecord | None) -> None:
        """A ``DriftRepaired`` Event once the repair's provision succeeded."""
        repair = self._repairs.get(uid)
        if repair is None or operation is None or operation.id != repair[0]:
            return
        if not operation.status.terminal:
            return
        del self._repairs[uid]
        if operation.status is OperationStatus.SUCCEEDED:
            self.announcer.event(gateway, reason="DriftRepaired", action="Repair",
                                 note=f"restored: {repair[1]}"[:1024])

    def _attached_secrets(self, uid: str) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for cert in attached_certificates(self.store, uid):
            if cert["secretName"]:
                out.setdefault(cert["listener"], []).append(cert["secretName"])
        return {k: tuple(v) for k, v in out.items()}

    # ---- inputs (see bifrost.controller.inputs) ---------------------------------------------

    def merged_values(self, gateway: Obj, resolution: ClassResolution) -> dict[str, Any]:
        return self.inputs.merged_values(gateway, resolution)

    def values_verdict(self, gateway: Obj, resolution: ClassResolution) -> ValuesVerdict:
        return self.inputs.values_verdict(gateway, resolution)

    def attached_routes(self, gateway: Obj, resolution: ClassResolution) -> list[Obj]:
        return self.inputs.attached_routes(gateway, resolution)

    def input_hash(self, gateway: Obj, resolution: ClassResolution, values: Mapping[str, Any],
                   routes: list[Obj] | None = None) -> str:
        return self.inputs.input_hash(gateway, resolution, values, routes)

    # ---- certificate rotation -------------------------------------------------------------

    def start_rotation(self, certificate: CertificateRecord, *, reason: str) -> bool:
        """The renewal scheduler's ``on_due``: :meth:`OperationStarter.renew
        <bifrost.controller.starter.OperationStarter.renew>`."""
        return self.starter.renew(certificate, reason=reason)
