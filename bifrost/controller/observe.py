"""Observe: for one work key, compare desired state (the cache) with recorded state (the store)
and decide what to do — write GatewayClass status, guard the Gateway with a finalizer, record it,
start ``provision`` when its inputs changed, start ``teardown`` when it is being deleted, and
hand status to the :class:`StatusWriter`.

Observation is level-triggered and cheap: it reads only the informers' cache and a few store rows
for the one Gateway, and writes only what changed (status compared before writing, the finalizer
only when missing, the store record only when its fields differ, an operation only when the
*input hash* differs from the one the last started provision recorded). So a full resync of a
converged fleet makes no API and no database writes.

Where other packages plug in (one function or protocol each):

- :class:`StatusWriter` — Gateway status. The controller plugs in
  :class:`bifrost.controller.status_writer.GatewayApiStatusWriter` (Gateway, listener and
  HTTPRoute status built on ``bifrost.status``); :class:`OperationStatusWriter` (``Accepted``/
  ``Programmed`` from the class and the operation state only) is the fallback of a bare
  :class:`Observer`.
- :data:`PROVISION_MACHINE` / :data:`TEARDOWN_MACHINE` — started through
  :func:`bifrost.engine.start_operation` when the registry knows them (else skipped and logged);
  their context is built by :func:`operation_context` from the fields the machine's context
  model declares.
- policy and blueprint work keys go to
  :class:`bifrost.controller.policy_status.OwnStatusWriter` (their own status only); the policies
  merged into a Gateway's values are picked by :func:`bifrost.status.policies.winner`, the same
  choice their status reports.
- :class:`InputLedger` — where the last provisioned input hash is remembered: by default
  :class:`bifrost.controller.ledger.StoreLedger` (``gateways.input_hash`` in the store, cached in
  memory), so a restarted controller does not provision unchanged Gateways again;
  :class:`MemoryLedger` keeps it in the process only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from pydantic import BaseModel

from bifrost.api import (
    GatewayClassBlueprint,
    GatewayClassConfig,
    GatewayConfig,
    InvalidResourceError,
    parse_conditions,
    parse_resource,
    set_condition,
)
from bifrost.api.blueprint import BlueprintTLS, TLSSource
from bifrost.api.conditions import (
    OPERATION_CONDITION,
    Condition,
    ConditionStatus,
    GatewayConditionType,
    GatewayReason,
    condition,
)
from bifrost.api.policies import CONTROLLER_NAMESPACE
from bifrost.certificates.rules import (
    leaf_fingerprint,
    listener_hostnames,
    managed_listeners,
    source_secret_ref,
)
from bifrost.clock import Clock
from bifrost.controller.informers import (
    BIFROST_GROUP,
    BLUEPRINT_KIND,
    FINALIZER,
    Cache,
    CachedNamespaceLabels,
    WorkKey,
    gateway_class_name,
    gateway_secrets,
)
from bifrost.controller.ledger import StoreLedger
from bifrost.controller.policy_status import OWN_STATUS_KINDS, OwnStatusWriter
from bifrost.controller.values_verdict import ValuesVerdict, judge_values
from bifrost.engine import LaneBusy, cancel, start_operation
from bifrost.kube import Conflict, EventRecorder, KubeClient, NotFound, ObjectRef
from bifrost.machines.registry import MachineRegistry, UnknownMachine
from bifrost.machines.rotation import (
    REASON_HOSTNAMES_CHANGED,
    REASON_SOURCE_CHANGED,
    ROTATION_MACHINE,
)
from bifrost.machines.spec import MachineSpec
from bifrost.records import (
    CertificateRecord,
    ChildRecord,
    OperationRecord,
    OperationStatus,
)
from bifrost.status import gatewayclass_status, route_attachments, status_changed
from bifrost.status.policies import ValuesRules, check_policy, precedence, winner
from bifrost.steps.ownership import GATEWAY_UID_LABEL
from bifrost.steps.tls import attached_certificates
from bifrost.store.errors import OperationConflict, RecordNotFound
from bifrost.store.interface import OperationStore

__all__ = [
    "GATEWAY_API_VERSION",
    "PROVISION_MACHINE",
    "TEARDOWN_MACHINE",
    "VALUES_CONDITION",
    "ClassResolution",
    "GatewayView",
    "InputLedger",
    "MemoryLedger",
    "Observer",
    "OperationStatusWriter",
    "Result",
    "StatusWriter",
    "ValuesVerdict",
    "operation_context",
]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
#: Hook: the machine started when a Gateway's inputs changed (skipped while not registered).
PROVISION_MACHINE = "provision"
#: Hook: the machine started when a Gateway is being deleted (skipped while not registered).
TEARDOWN_MACHINE = "teardown"
#: What bifrost claims in ``GatewayClass.status.supportedFeatures``.
SUPPORTED_FEATURES: tuple[str, ...] = ("Gateway", "HTTPRoute", "ReferenceGrant")
#: How often a Gateway with an operation in flight is re-observed (operation end is not an event).
ACTIVE_RECHECK_SECONDS = 2.0
#: How long to wait before looking again when a lane is busy or teardown cannot start.
BLOCKED_RECHECK_SECONDS = 5.0
#: After a failed rotation, how long observe waits before starting another one by itself.
ROTATION_RETRY_AFTER = timedelta(minutes=5)
#: Domain-prefixed Gateway condition: False/InvalidValues while the Gateway's values break its
#: blueprint's ``spec.values`` and are not provisioned (the message names levels and field
#: paths, never values); True/Valid once they obey it again.
VALUES_CONDITION = "gateway.bifrost.dev/Values"


# ---------------------------------------------------------------- results and hooks


@dataclass(frozen=True)
class Result:
    """What one observation did; ``requeue_after`` asks for a re-check (seconds)."""

    actions: tuple[str, ...] = ()
    requeue_after: float | None = None


@dataclass(frozen=True)
class ClassResolution:
    """A GatewayClass's blueprint, resolved: the parsed blueprint, or why it is unusable."""

    gateway_class: Obj
    blueprint_name: str | None
    blueprint: GatewayClassBlueprint | None
    error: str | None

    @property
    def accepted(self) -> bool:
        return self.error is None


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


class StatusWriter(Protocol):
    """Writes a Gateway's status (only when it changed); returns whether it wrote."""

    def write_status(self, view: GatewayView) -> bool: ...


class InputLedger(Protocol):
    """Remembers, per Gateway uid, the input hash of the last provision started."""

    def recorded(self, uid: str) -> str | None: ...

    def record(self, uid: str, input_hash: str) -> None: ...

    def invalidate(self) -> None:
        """Forget anything cached from a shared record (a new leadership term begins: another
        replica may have recorded hashes meanwhile)."""
        ...


class MemoryLedger:
    """In-process ledger. After a restart every Gateway is provisioned once more, which is safe
    (provision is idempotent and writes no unchanged child) but costs one operation each."""

    def __init__(self) -> None:
        self._hashes: dict[str, str] = {}
        self._lock = threading.Lock()

    def recorded(self, uid: str) -> str | None:
        with self._lock:
            return self._hashes.get(uid)

    def record(self, uid: str, input_hash: str) -> None:
        with self._lock:
            self._hashes[uid] = input_hash

    def invalidate(self) -> None:
        """Nothing to do: this ledger is the record itself, not a cache of one."""


def operation_context(spec: MachineSpec, candidate: Mapping[str, Any]) -> BaseModel:
    """Hook: the context of a new ``spec`` operation, from the candidate fields observe knows
    (``namespace``, ``gateway``, ``gateway_uid``, ``blueprint``, ``values``, ``routes`` — the
    attached HTTPRoutes as ``namespace/name``) — each passed only if the machine's context model
    declares it."""
    fields = spec.context_model.model_fields
    return spec.context_model.model_validate({k: v for k, v in candidate.items() if k in fields})


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(obj: Obj) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _generation(obj: Obj) -> int | None:
    value = _meta(obj).get("generation")
    return value if isinstance(value, int) else None


def _route_key(route: Obj) -> str:
    """``namespace/name`` of an HTTPRoute (the inventory's ``route_key``)."""
    return f"{_meta(route).get('namespace')}/{_meta(route).get('name')}"


def _conditions(obj: Obj) -> tuple[Condition, ...]:
    status = obj.get("status")
    raw = status.get("conditions") if isinstance(status, dict) else None
    try:
        return parse_conditions(raw)
    except ValueError:
        return ()


def _dump(conditions: tuple[Condition, ...]) -> list[dict[str, Any]]:
    return [c.model_dump(by_alias=True, mode="json", exclude_none=True) for c in conditions]


# ---------------------------------------------------------------- the default status writer


class OperationStatusWriter:
    """Interim Gateway status: ``Accepted`` from the class/blueprint, ``Programmed`` from the
    provision operation (Unknown/Pending while none finished), and the operation condition.
    Listener, address and route status come with the real ``bifrost.status`` writer."""

    def __init__(self, kube: KubeClient, clock: Clock) -> None:
        self.kube = kube
        self.clock = clock

    def desired(self, view: GatewayView) -> tuple[Condition, ...]:
        gateway, now = view.gateway, self.clock.now()
        gen = _generation(gateway)
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
        if op is not None and op.status.active:
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
        meta = _meta(view.gateway)
        self.kube.patch_status(
            GATEWAY_API_VERSION, "Gateway", str(meta.get("name")), str(meta.get("namespace")),
            {"conditions": _dump(desired)},
            resource_version=str(meta.get("resourceVersion") or "") or None,
        )
        return True


# ---------------------------------------------------------------- the observer


def _latest(ops: list[OperationRecord]) -> OperationRecord | None:
    """The active operation, else the most recent one."""
    if not ops:
        return None
    active = [o for o in ops if o.status.active]
    return max(active or ops, key=lambda o: o.id)


class Observer:
    """Decides and does what one work key needs (see the module docstring). Thread-safe as long
    as one key is observed by one worker at a time (the work queue guarantees it)."""

    def __init__(
        self,
        *,
        cache: Cache,
        kube: KubeClient,
        store: OperationStore,
        registry: MachineRegistry,
        clock: Clock,
        actor: str,
        status_writer: StatusWriter | None = None,
        ledger: InputLedger | None = None,
        controller_namespace: str = CONTROLLER_NAMESPACE,
        events: EventRecorder | None = None,
        on_operation_end: Callable[[str, str], None] | None = None,
    ) -> None:
        self.on_operation_end = on_operation_end  # (machine, result), e.g. metrics
        self.cache = cache
        self.events = events
        self.kube = kube
        self.store = store
        self.registry = registry
        self.clock = clock
        self.actor = actor
        self.status_writer: StatusWriter = status_writer or OperationStatusWriter(kube, clock)
        self.ledger: InputLedger = ledger or StoreLedger(store, clock)
        self.controller_namespace = controller_namespace
        #: Status of bifrost's own objects (policies, blueprints).
        self.own_status = OwnStatusWriter(cache=cache, kube=kube, clock=clock,
                                          controller_namespace=controller_namespace)
        self._recorded: dict[str, tuple[str, str, str | None, int | None]] = {}
        self._warned: set[str] = set()
        self._seen_active: dict[str, int] = {}  # uid → id of the operation last seen active
        self._announced_end: dict[str, int] = {}  # uid → id of the operation last announced
        self._values_held: dict[str, str] = {}  # uid → why its values are not provisioned
        self._term_started = clock.now()

    def new_term(self) -> None:
        """A leadership term begins: drop what was cached from the store (another replica may
        have written it meanwhile), so it is read again once per Gateway."""
        self._recorded.clear()
        self.ledger.invalidate()
        self._term_started = self.clock.now()

    def observe(self, key: WorkKey) -> Result:
        if key.kind == "GatewayClass":
            return self.observe_class(key.name)
        if key.kind == "Gateway":
            return self.observe_gateway(key.namespace, key.name)
        if key.kind in OWN_STATUS_KINDS:
            return Result(*self.own_status.observe(key))
        raise ValueError(f"cannot observe {key}")

    # ---- GatewayClass -------------------------------------------------------------------

    def resolve_class(self, gateway_class: Obj) -> ClassResolution:
        """The class's blueprint, or the problem with its ``parametersRef`` (a message naming
        the object and what to do)."""
        name = str(_meta(gateway_class).get("name"))
        ref = _spec(gateway_class).get("parametersRef")
        if not isinstance(ref, dict) or not ref.get("name"):
            return ClassResolution(
                gateway_class, None, None,
                f'GatewayClass "{name}": spec.parametersRef is not set — point it at a '
                f"{BLUEPRINT_KIND} (group {BIFROST_GROUP})",
            )
        bp_name = str(ref["name"])
        if ref.get("group") != BIFROST_GROUP or ref.get("kind") != BLUEPRINT_KIND:
            return ClassResolution(
                gateway_class, None, None,
                f'GatewayClass "{name}": spec.parametersRef refers to {ref.get("kind")} '
                f'"{bp_name}" in group {ref.get("group")!r} — bifrost needs a '
                f"{BLUEPRINT_KIND} (group {BIFROST_GROUP})",
            )
        raw = self.cache.get(BLUEPRINT_KIND, "", bp_name)
        if raw is None:
            return ClassResolution(
                gateway_class, bp_name, None,
                f'{BLUEPRINT_KIND} "{bp_name}" not found — create it or fix '
                f'spec.parametersRef.name of GatewayClass "{name}"',
            )
        try:
            blueprint = parse_resource(GatewayClassBlueprint, raw)
        except InvalidResourceError as exc:
            return ClassResolution(gateway_class, bp_name, None, f"invalid {exc}")
        return ClassResolution(gateway_class, bp_name, blueprint, None)

    def observe_class(self, name: str) -> Result:
        gateway_class = self.cache.get("GatewayClass", "", name)
        if gateway_class is None or not self.cache.is_ours(gateway_class):
            return Result()
        resolution = self.resolve_class(gateway_class)
        old_status = gateway_class.get("status")
        old = old_status if isinstance(old_status, dict) else {}
        desired = gatewayclass_status(
            gateway_class,
            error=None if resolution.error is None else resolution.error[:32768],
            supported_features=SUPPORTED_FEATURES, now=self.clock.now(),
        )
        if not status_changed(old, desired):
            return Result()
        try:
            self.kube.patch_status(
                GATEWAY_API_VERSION, "GatewayClass", name, None, desired,
                resource_version=str(_meta(gateway_class).get("resourceVersion") or "") or None,
            )
        except Conflict:
            # Our copy is stale; the watch brings the new one, which enqueues the class again.
            return Result(("class-status-conflict",), requeue_after=1.0)
        except NotFound:
            return Result()
        return Result(("class-status",))

    # ---- Gateway ------------------------------------------------------------------------

    def observe_gateway(self, namespace: str, name: str) -> Result:
        gateway = self.cache.get("Gateway", namespace, name)
        if gateway is None or not self.cache.responsible_for(gateway):
            return Result()
        meta = _meta(gateway)
        uid = str(meta.get("uid") or "")
        if not uid:
            return Result()
        if meta.get("deletionTimestamp"):
            return self._deleting(gateway, uid)
        actions: list[str] = []
        gateway_class = self.cache.get("GatewayClass", "", gateway_class_name(gateway))
        if not self.cache.is_ours(gateway_class):
            return Result()  # class gone or changed hands while we hold a finalizer: wait
        assert gateway_class is not None
        if FINALIZER not in (meta.get("finalizers") or []):
            try:
                gateway = self._set_finalizers(gateway, [*(meta.get("finalizers") or []),
                                                         FINALIZER])
            except Conflict:
                return Result(("finalizer-conflict",), requeue_after=1.0)
            actions.append("finalizer-added")
        if self._record_gateway(gateway, uid):
            actions.append("store-upserted")
        resolution = self.resolve_class(gateway_class)
        values: dict[str, Any] = {}
        requeue: float | None = None
        if resolution.blueprint is None:
            self._values_held.pop(uid, None)
        else:
            verdict = self.values_verdict(gateway, resolution)
            values = verdict.values
            held = verdict.hold(provisioned=self.ledger.recorded(uid) is not None)
            tls = resolution.blueprint.spec.tls
            # A rotation renders with the last provision's values, never with these.
            rotating = self._maybe_rotate(gateway, uid, tls) if tls is not None else None
            if rotating is not None:
                # The rotation re-renders the children with the new hostnames and certificate;
                # the provision for the changed inputs follows once it ended.
                actions.append("rotation-started")
                requeue = ACTIVE_RECHECK_SECONDS
            elif held is not None:
                # Invalid values are never provisioned: the Gateway keeps its last children.
                if self._values_held.get(uid) != held:
                    self._values_held[uid] = held
                    self._event(gateway, reason="InvalidValues", action="Provision",
                                warning=True, note=f"not provisioned: {held}"[:1024])
                actions.append("values-held")
            else:
                self._values_held.pop(uid, None)
                started, requeue = self._maybe_provision(gateway, uid, resolution, values)
                if started:
                    actions.append("provision-started")
        ops = self.store.list_operations(gateway_uid=uid, limit=100)
        operation = _latest(ops)
        self._announce(gateway, uid, operation)
        if operation is not None and operation.status.active:
            requeue = min(requeue or ACTIVE_RECHECK_SECONDS, ACTIVE_RECHECK_SECONDS)
        try:
            children = tuple(self.store.list_children(uid))
        except RecordNotFound:
            children = ()
        view = GatewayView(gateway, resolution, operation, self.cache, values, children,
                           provision=_latest([o for o in ops
                                              if o.machine == PROVISION_MACHINE]),
                           certificates=self._attached_secrets(uid),
                           values_held=self._values_held.get(uid))
        try:
            if self.status_writer.write_status(view):
                actions.append("status")
        except Conflict:
            requeue = 1.0
        return Result(tuple(actions), requeue_after=requeue)

    def _set_finalizers(self, gateway: Obj, finalizers: list[str]) -> Obj:
        meta = _meta(gateway)
        return self.kube.patch(
            GATEWAY_API_VERSION, "Gateway", str(meta["name"]), str(meta["namespace"]),
            {"metadata": {"finalizers": finalizers,
                          "resourceVersion": str(meta.get("resourceVersion") or "")}},
        )

    def _record_gateway(self, gateway: Obj, uid: str) -> bool:
        meta = _meta(gateway)
        wanted = (
            str(meta.get("namespace")), str(meta.get("name")),
            gateway_class_name(gateway) or None, _generation(gateway),
        )
        if self._recorded.get(uid) == wanted:
            return False
        try:
            record = self.store.get_gateway(uid)
            have = (record.namespace, record.name, record.gateway_class, record.generation)
        except RecordNotFound:
            have = None
        if have != wanted:
            self.store.upsert_gateway(
                uid=uid, namespace=wanted[0], name=wanted[1], now=self.clock.now(),
                gateway_class=wanted[2], generation=wanted[3],
            )
        self._recorded[uid] = wanted
        return have != wanted

    # ---- values and inputs ----------------------------------------------------------------

    def _winner(self, policies: list[Obj], kind: str, model: Any, rules: ValuesRules,
                left_out: list[str]) -> Any:
        """The oldest valid, well-placed policy of ``kind`` (creationTimestamp, then name) whose
        values obey ``rules`` — :func:`bifrost.status.policies.winner`, the same choice the
        policies' status reports. Each policy that would have won but for its values is added
        to ``left_out`` (kind, name and what it breaks — field paths and rules, no values)."""
        best = winner(policies, kind, controller_namespace=self.controller_namespace,
                      rules=rules)
        for raw in policies:
            if raw.get("kind") != kind or (best is not None and raw is best.raw) or (
                    best is not None and precedence(raw) >= precedence(best.raw)):
                continue
            if not check_policy(raw, controller_namespace=self.controller_namespace).eligible:
                continue  # unparsable or misplaced: never a candidate, whatever its values
            checked = check_policy(raw, controller_namespace=self.controller_namespace,
                                   rules=rules)
            if checked.problem is not None:
                meta = _meta(raw)
                left_out.append(f'{kind} "{meta.get("namespace")}/{meta.get("name")}": '
                                f"{checked.problem}")
        if best is None:
            return None
        assert isinstance(best.parsed, model)
        return best.parsed

    def merged_values(self, gateway: Obj, resolution: ClassResolution) -> dict[str, Any]:
        """The values the Gateway's children are rendered with (:meth:`values_verdict`)."""
        return self.values_verdict(gateway, resolution).values

    def values_verdict(self, gateway: Obj, resolution: ClassResolution) -> ValuesVerdict:
        """DESIGN §2: blueprint → class-wide → namespace → gateway defaults, overrides reversed.
        Within the namespace level the GatewayClassConfig applies first, the GatewayConfig on
        top (as :mod:`bifrost.api.policies` documents).

        Typed values (the blueprint's ``spec.values``, :class:`bifrost.api.blueprint.
        BlueprintValues`): a policy whose values break them is not merged — the values are
        computed as if it did not exist (its status says ``Accepted=False``/``Invalid``) — and
        is listed in ``left_out``; the merged values are then checked against the whole schema
        (``required`` included), a break named by field path and the level(s) that set it in
        ``problem``. :meth:`observe_gateway` does not provision merged values with a
        ``problem``, nor — once the Gateway was provisioned — while a policy is left out: the
        Gateway keeps its last good children (a Gateway never provisioned gets the values of
        the valid levels). A blueprint without ``spec.values`` accepts any values, as before.
        """
        assert resolution.blueprint is not None
        ns, name = str(_meta(gateway)["namespace"]), str(_meta(gateway)["name"])
        class_name = str(_meta(resolution.gateway_class).get("name"))
        spec = resolution.blueprint.spec
        rules = ValuesRules(resolution.blueprint_name or "", spec.values)
        left_out: list[str] = []
        class_policy = self._winner(
            self.cache.policies_for("GatewayClass", "", class_name), "GatewayClassConfig",
            GatewayClassConfig, rules, left_out,
        )
        ns_policies = self.cache.policies_for("Namespace", "", ns)
        ns_class_policy = self._winner(ns_policies, "GatewayClassConfig", GatewayClassConfig,
                                       rules, left_out)
        ns_gateway_policy = self._winner(ns_policies, "GatewayConfig", GatewayConfig, rules,
                                         left_out)
        gw_policy = self._winner(
            self.cache.policies_for("Gateway", ns, name), "GatewayConfig", GatewayConfig,
            rules, left_out,
        )

        return judge_values(spec, rules, left_out, class_policy=class_policy,
                            ns_class_policy=ns_class_policy,
                            ns_gateway_policy=ns_gateway_policy, gw_policy=gw_policy)

    def attached_routes(self, gateway: Obj, resolution: ClassResolution) -> list[Obj]:
        """The HTTPRoutes attached to the Gateway — accepted by at least one listener, decided
        by :func:`bifrost.status.route_attachments` exactly as the status writer decides
        ``attachedRoutes`` and ``status.parents`` — sorted by namespace/name; routes being
        deleted are left out, and so are the Gateway's own route children (a shadow route
        attached back to this Gateway would otherwise beget shadows of itself). Empty when the
        blueprint has no ``routeChildren`` (routes then do not matter to provisioning)."""
        blueprint = resolution.blueprint
        if blueprint is None or not blueprint.spec.route_children:
            return []
        meta = _meta(gateway)
        key = (str(meta.get("namespace")), str(meta.get("name")))
        labels = CachedNamespaceLabels(self.cache)
        out = []
        uid = str(meta.get("uid") or "")
        for route in self.cache.routes_for_gateway(*key):
            route_meta = _meta(route)
            if route_meta.get("deletionTimestamp") \
                    or (route_meta.get("labels") or {}).get(GATEWAY_UID_LABEL) == uid:
                continue
            attachments = route_attachments(route, {key: gateway}, namespace_labels=labels)
            if any(a.accepted for a in attachments):
                out.append(route)
        return sorted(out, key=_route_key)

    def input_hash(
        self,
        gateway: Obj,
        resolution: ClassResolution,
        values: Mapping[str, Any],
        routes: list[Obj] | None = None,
    ) -> str:
        """What a provision depends on: the Gateway's generation, the blueprint's, the merged
        values (policies included), the resourceVersions of referenced Secrets and — when the
        blueprint has ``routeChildren`` — the attached routes (``routes``, default
        :meth:`attached_routes`) with their generations, so attaching, detaching or editing a
        route re-provisions (a route's status, labels or annotations do not)."""
        if routes is None:
            routes = self.attached_routes(gateway, resolution)
        secrets = []
        for ns, name in sorted(gateway_secrets(gateway)):
            secret = self.cache.get("Secret", ns, name)
            rv = str(_meta(secret).get("resourceVersion") or "") if secret else ""
            secrets.append([ns, name, rv])
        blueprint = resolution.blueprint
        payload = {
            "uid": _meta(gateway).get("uid"),
            "generation": _generation(gateway),
            "blueprint": [resolution.blueprint_name,
                          blueprint.metadata.generation if blueprint else None],
            "values": values,
            "secrets": secrets,
        }
        if routes:  # absent rather than empty: hashes of route-less Gateways stay as they were
            payload["routes"] = [[_route_key(r), _generation(r)] for r in routes]
        encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(encoded.encode()).hexdigest()

    # ---- operations -----------------------------------------------------------------------

    def _machine(self, name: str) -> MachineSpec | None:
        try:
            return self.registry.latest(name)
        except UnknownMachine:
            if name not in self._warned:
                self._warned.add(name)
                log.warning("machine %r is not registered: not starting it (yet)", name)
            return None

    # ---- certificate rotation ---------------------------------------------------------------

    def start_rotation(self, certificate: CertificateRecord, *, reason: str) -> bool:
        """Start a rotation of ``certificate`` (the renewal scheduler's ``on_due``). True when
        one runs for it now (started or already running); False to be asked again later (the
        Gateway's lane is busy, or the controller cannot start it yet)."""
        spec = self._machine(ROTATION_MACHINE)
        if spec is None:
            return False
        try:
            gw = self.store.get_gateway(certificate.gateway_uid)
        except RecordNotFound:
            return True  # the gateway is gone: nothing to renew
        gateway = self.cache.get("Gateway", gw.namespace, gw.name)
        if gateway is None or _meta(gateway).get("uid") != gw.uid \
                or _meta(gateway).get("deletionTimestamp"):
            return True  # being deleted (teardown removes the certificate) or re-created
        context = spec.context_model.for_renewal(certificate, reason=reason)  # type: ignore[attr-defined]
        try:
            op = start_operation(self.store, spec, gateway_uid=gw.uid, namespace=gw.namespace,
                                 name=gw.name, context=context, clock=self.clock,
                                 actor=self.actor)
        except (LaneBusy, OperationConflict) as exc:
            log.info("gateway %s/%s: renewal of %s waits: %s", gw.namespace, gw.name,
                     certificate.object_name, exc)
            return False
        log.info("gateway %s/%s: rotation %s of %s (%s)", gw.namespace, gw.name, op.id,
                 certificate.object_name, reason)
        return True

    def _maybe_rotate(self, gateway: Obj, uid: str, tls: BlueprintTLS) -> OperationRecord | None:
        """A rotation for the first managed listener whose attached certificates no longer
        cover its hostname (it was edited) or — with ``source: ListenerSecret`` — no longer
        hold the certificate of the Secret the listener names (its content changed); ``None``
        when none is needed or one failed for this gateway within ``ROTATION_RETRY_AFTER`` (no
        retry storm: an operator or the next change retries)."""
        spec = self._machine(ROTATION_MACHINE)
        if spec is None:
            return None
        try:
            records = self.store.list_certificates(gateway_uid=uid)
        except RecordNotFound:
            return None
        for listener in managed_listeners(gateway):
            name = str(listener["name"])
            attached = [r for r in records if r.listener == name and r.attached]
            if not attached:
                continue  # provision issues the first one
            wanted = set(listener_hostnames(listener))
            reason = None
            if not any(wanted <= set(r.dns_names) for r in attached):
                reason = REASON_HOSTNAMES_CHANGED
            elif tls.source is TLSSource.LISTENER_SECRET:
                served = leaf_fingerprint(self.cache.get("Secret",
                                                         *source_secret_ref(gateway, listener)))
                if served is not None and served not in {r.fingerprint_sha256 for r in attached}:
                    reason = REASON_SOURCE_CHANGED
            if reason is None:
                continue
            recent = [o for o in self.store.list_operations(gateway_uid=uid, limit=20)
                      if o.machine == ROTATION_MACHINE and o.status.terminal
                      and o.status is not OperationStatus.SUCCEEDED and o.finished_at
                      and self.clock.now() - o.finished_at < ROTATION_RETRY_AFTER]
            if recent:
                return None
            old = max(attached, key=lambda r: (r.not_before is not None, r.not_before or 0))
            meta = _meta(gateway)
            context = spec.context_model.for_renewal(  # type: ignore[attr-defined]
                old, reason=reason)
            try:
                return start_operation(
                    self.store, spec, gateway_uid=uid, namespace=str(meta["namespace"]),
                    name=str(meta["name"]), context=context, clock=self.clock, actor=self.actor)
            except (LaneBusy, OperationConflict):
                return None
        return None

    def _attached_secrets(self, uid: str) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for cert in attached_certificates(self.store, uid):
            if cert["secretName"]:
                out.setdefault(cert["listener"], []).append(cert["secretName"])
        return {k: tuple(v) for k, v in out.items()}

    def _latest_operation(self, uid: str) -> OperationRecord | None:
        return _latest(self.store.list_operations(gateway_uid=uid, limit=100))

    def _candidate(self, gateway: Obj, uid: str, blueprint: str | None,
                   values: Mapping[str, Any], routes: list[Obj] | None = None) -> dict[str, Any]:
        meta = _meta(gateway)
        return {
            "namespace": str(meta["namespace"]), "gateway": str(meta["name"]),
            "gateway_uid": uid, "blueprint": blueprint or "", "values": dict(values),
            "routes": tuple(_route_key(r) for r in routes or ()),
        }

    def _maybe_provision(
        self, gateway: Obj, uid: str, resolution: ClassResolution, values: Mapping[str, Any]
    ) -> tuple[bool, float | None]:
        routes = self.attached_routes(gateway, resolution)
        input_hash = self.input_hash(gateway, resolution, values, routes)
        if self.ledger.recorded(uid) == input_hash:
            return False, None
        spec = self._machine(PROVISION_MACHINE)
        if spec is None:
            return False, None
        context = operation_context(
            spec, self._candidate(gateway, uid, resolution.blueprint_name, values, routes)
        )
        meta = _meta(gateway)
        before = self.store.active_operation(uid, spec.lane)
        try:
            op = start_operation(
                self.store, spec, gateway_uid=uid, namespace=str(meta["namespace"]),
                name=str(meta["name"]), context=context, clock=self.clock, actor=self.actor,
            )
        except (LaneBusy, OperationConflict) as exc:
            log.info("gateway %s/%s: %s", meta["namespace"], meta["name"], exc)
            return False, BLOCKED_RECHECK_SECONDS
        wanted = context.model_dump(mode="json")
        have = {k: v for k, v in (op.context or {}).items() if k in wanted}
        if {k: wanted[k] for k in have} != have or set(have) != set(wanted):
            # A provision with older inputs is still running: start ours once it ends.
            return False, ACTIVE_RECHECK_SECONDS
        self.ledger.record(uid, input_hash)
        return before is None or before.id != op.id, None

    def _deleting(self, gateway: Obj, uid: str) -> Result:
        meta = _meta(gateway)
        if FINALIZER not in (meta.get("finalizers") or []):
            return Result()
        try:
            children = self.store.list_children(uid)
        except RecordNotFound:
            children = []
        active = [o for o in self.store.list_operations(gateway_uid=uid, limit=100)
                  if o.status.active]
        if not children and not active:
            self._announce(gateway, uid, self._latest_operation(uid))
            rest = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
            try:
                self._set_finalizers(gateway, rest)
            except NotFound:
                return Result()
            except Conflict:
                return Result(("finalizer-conflict",), requeue_after=1.0)
            return Result(("finalizer-removed",))
        spec = self._machine(TEARDOWN_MACHINE)
        if spec is None:
            return Result(requeue_after=BLOCKED_RECHECK_SECONDS * 6)
        if any(o.machine == spec.name for o in active):
            return Result(requeue_after=ACTIVE_RECHECK_SECONDS)
        actions: list[str] = []
        for op in active:
            if op.lane == spec.lane:
                # The Gateway is going away: whatever else runs in its lane is moot.
                try:
                    cancel(self.store, op.id, clock=self.clock, actor=self.actor,
                           reason="the Gateway is being deleted")
                    actions.append(f"cancelled-{op.machine}")
                except Exception as exc:  # noqa: BLE001 - raced with its end; look again
                    log.info("could not cancel operation %s: %s", op.id, exc)
                    return Result(tuple(actions), requeue_after=ACTIVE_RECHECK_SECONDS)
        resolution = None
        gateway_class = self.cache.get("GatewayClass", "", gateway_class_name(gateway))
        if gateway_class is not None:
            resolution = self.resolve_class(gateway_class)
        self._record_gateway(gateway, uid)
        context = operation_context(
            spec, self._candidate(gateway, uid, resolution.blueprint_name if resolution else "",
                                  {}),
        )
        try:
            start_operation(
                self.store, spec, gateway_uid=uid, namespace=str(meta["namespace"]),
                name=str(meta["name"]), context=context, clock=self.clock, actor=self.actor,
            )
        except (LaneBusy, OperationConflict) as exc:
            log.info("gateway %s/%s: %s", meta["namespace"], meta["name"], exc)
            return Result(tuple(actions), requeue_after=BLOCKED_RECHECK_SECONDS)
        actions.append("teardown-started")
        self._announce(gateway, uid, self._latest_operation(uid))
        return Result(tuple(actions), requeue_after=ACTIVE_RECHECK_SECONDS)

    def _announce(self, gateway: Obj, uid: str, op: OperationRecord | None) -> None:
        """Events for an operation's start and end, once each as this process sees them (an
        end that happened while another replica led is not announced again)."""
        if op is None:
            return
        machine = op.machine.replace("-", "_").title().replace("_", "")
        if op.status.active:
            if self._seen_active.get(uid) != op.id:
                self._seen_active[uid] = op.id
                self._event(gateway, reason=f"{machine}Started", action=machine,
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
            self._event(gateway, reason=f"{machine}Succeeded", action=machine,
                        note=f"operation {op.id} ({op.machine}) succeeded")
        else:
            self._event(gateway, reason=f"{machine}Failed", action=machine, warning=True,
                        note=f"operation {op.id} ({op.machine}) {op.status.value} in state "
                        f"{op.state}: {op.last_error or 'no detail'}")

    def _event(self, gateway: Obj, *, reason: str, action: str, note: str,
               warning: bool = False) -> None:
        if self.events is None:
            return
        meta = _meta(gateway)
        ref = ObjectRef(GATEWAY_API_VERSION, "Gateway", str(meta.get("name")),
                        str(meta.get("namespace")), str(meta.get("uid") or "") or None)
        self.events.record(ref, reason=reason, action=action, note=note,
                           type="Warning" if warning else "Normal")

