"""Write side of ``bifrost-admin``: an operator's action on a gateway, by NAMESPACE/NAME.

Pause, resume, cancel and retry are the engine's own operator actions
(``bifrost.engine.admin``): they are allowed only from the statuses the engine allows, applied
only if the status did not change meanwhile, and journaled with the actor. This module only
finds *which* operation the operator means (the one in the gateway's lanes that the action can
apply to, or the ``--operation`` given, checked to belong to the gateway) and turns every "no"
into a one-line reason.

``renew`` asks for a certificate renewal now. When the running code registers a rotation
machine (``ROTATION_MACHINE``) whose context model can be built for a certificate
(``for_renewal``, see ``RenewableContext``), a rotation operation is started (journaled
"created" with the actor). Otherwise the request is recorded in the store, the source of truth
for renewal times: the certificates' ``renewal_at`` becomes now, so the renewal scheduler finds
them due (a missed renewal time runs at once) and ``bifrost-admin schedule`` shows them first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from bifrost.admin.errors import BadInput, Refused
from bifrost.admin.queries import ref, resolve_gateway
from bifrost.admin.views import ActionResult
from bifrost.clock import Clock
from bifrost.engine import admin as engine_admin
from bifrost.engine.admin import AdminRefused
from bifrost.engine.operations import LaneBusy, start_operation
from bifrost.machines.registry import MachineRegistry, UnknownMachine
from bifrost.records import (
    ACTIVE_STATUSES,
    CertificateRecord,
    GatewayRecord,
    OperationRecord,
    OperationStatus,
)
from bifrost.store.errors import RecordNotFound
from bifrost.store.interface import OperationStore

#: The machine ``renew`` starts when the running code has it (DESIGN §4, TLS rotation).
ROTATION_MACHINE = "rotate_certificate"

#: Lifecycle states in which a gateway's certificates are being torn down, not renewed.
NOT_RENEWABLE_STATES = frozenset({"deleting", "deleted"})


@runtime_checkable
class RenewableContext(Protocol):
    """What the rotation machine's context model offers so that ``renew`` can start it."""

    @classmethod
    def for_renewal(cls, certificate: CertificateRecord, *, reason: str) -> Any: ...


_ENGINE_ACTIONS: dict[str, tuple[Sequence[OperationStatus], str]] = {
    "pause": (engine_admin.PAUSABLE, "active"),
    "resume": (engine_admin.RESUMABLE, "paused"),
    "cancel": (engine_admin.CANCELLABLE, "active"),
    "retry": (engine_admin.RETRYABLE, "failed"),
}


def _describe(op: OperationRecord) -> str:
    return f"#{op.id} {op.machine} (state {op.state}, {op.status.value}, lane {op.lane})"


def _gateway_name(gw: GatewayRecord) -> str:
    return f"{gw.namespace}/{gw.name}"


def find_operation(
    store: OperationStore, gw: GatewayRecord, verb: str, operation_id: int | None
) -> OperationRecord:
    """The operation of ``gw`` that ``verb`` applies to."""
    allowed, wording = _ENGINE_ACTIONS[verb]
    if operation_id is not None:
        try:
            op = store.get_operation(operation_id)
        except RecordNotFound:
            raise Refused(f"cannot {verb}: operation {operation_id} does not exist") from None
        if op.gateway_uid != gw.uid:
            raise Refused(
                f"cannot {verb}: operation {operation_id} belongs to gateway "
                f"{op.namespace}/{op.name} (uid {op.gateway_uid}), not {_gateway_name(gw)} "
                f"(uid {gw.uid})"
            )
        return op
    # The newest operation of each lane is the one an operator can act on.
    newest: dict[str, OperationRecord] = {}
    for op in store.list_operations(gateway_uid=gw.uid, limit=200):
        newest.setdefault(op.lane, op)
    candidates = [op for op in newest.values() if op.status in allowed]
    if not candidates:
        latest = sorted(newest.values(), key=lambda o: o.id, reverse=True)
        seen = "; its latest: " + ", ".join(_describe(o) for o in latest) if latest else ""
        raise Refused(
            f"cannot {verb}: gateway {_gateway_name(gw)} has no {wording} operation{seen}"
        )
    if len(candidates) > 1:
        listed = ", ".join(_describe(o) for o in sorted(candidates, key=lambda o: o.id))
        raise Refused(
            f"cannot {verb}: gateway {_gateway_name(gw)} has several {wording} operations "
            f"({listed}); choose one with --operation ID"
        )
    return candidates[0]


def resolve_target(
    store: OperationStore, target: str, verb: str, operation_id: int | None
) -> tuple[GatewayRecord, int | None]:
    """``NAMESPACE/NAME`` (with an optional ``--operation``), or an operation id alone (the
    form the engine's messages suggest, e.g. ``bifrost-admin cancel 12``)."""
    if not target.isdigit():
        gw, _ = resolve_gateway(store, target)
        return gw, operation_id
    wanted = int(target)
    if operation_id is not None and operation_id != wanted:
        raise BadInput(f"operation {wanted} and --operation {operation_id} disagree; give one")
    try:
        op = store.get_operation(wanted)
        return store.get_gateway(op.gateway_uid), wanted
    except RecordNotFound:
        raise Refused(f"cannot {verb}: operation {wanted} does not exist") from None


def engine_action(
    store: OperationStore,
    target: str,
    verb: str,
    *,
    clock: Clock,
    actor: str,
    operation_id: int | None = None,
    reason: str = "",
) -> ActionResult:
    """pause / resume / cancel / retry the operation of ``target`` (see ``resolve_target``)
    through the engine."""
    gw, operation_id = resolve_target(store, target, verb, operation_id)
    op = find_operation(store, gw, verb, operation_id)
    try:
        if verb == "pause":
            after = engine_admin.pause(store, op.id, clock=clock, actor=actor, reason=reason)
        elif verb == "cancel":
            after = engine_admin.cancel(store, op.id, clock=clock, actor=actor, reason=reason)
        elif verb == "resume":
            after = engine_admin.resume(store, op.id, clock=clock, actor=actor)
        elif verb == "retry":
            after = engine_admin.retry(store, op.id, clock=clock, actor=actor)
        else:  # pragma: no cover - the CLI only offers the verbs above
            raise ValueError(f"unknown action {verb!r}")
    except AdminRefused as exc:
        raise Refused(str(exc)) from None
    past = {"pause": "paused", "resume": "resumed", "cancel": "cancelled", "retry": "retried"}
    return ActionResult(
        generated_at=clock.now(),
        action=verb,
        gateway=ref(gw),
        actor=actor,
        operation_id=op.id,
        from_status=op.status.value,
        to_status=after.status.value,
        certificates=(),
        message=(
            f"{past[verb]} operation #{op.id} {op.machine} (state {after.state}) of "
            f"{_gateway_name(gw)}: {op.status.value} → {after.status.value}, as {actor}"
        ),
    )


def _rotation_machine(registry: MachineRegistry | None) -> Any:
    if registry is None:
        return None
    try:
        spec = registry.latest(ROTATION_MACHINE)
    except UnknownMachine:
        return None
    return spec if isinstance(spec.context_model, RenewableContext) else None


def renew(
    store: OperationStore,
    gateway: str,
    *,
    clock: Clock,
    actor: str,
    registry: MachineRegistry | None = None,
    listener: str | None = None,
) -> ActionResult:
    """Ask for the gateway's attached certificates (optionally one listener's) to be renewed."""
    gw, _ = resolve_gateway(store, gateway)
    name = _gateway_name(gw)
    if gw.lifecycle_state in NOT_RENEWABLE_STATES:
        raise Refused(
            f"cannot renew: gateway {name} is {gw.lifecycle_state}; its certificates are being "
            "removed, not renewed"
        )
    certificates = store.list_certificates(gateway_uid=gw.uid)
    if not certificates:
        raise Refused(
            f"cannot renew: gateway {name} has no certificate in the store (only certificates "
            "bifrost manages for HTTPS listeners can be renewed)"
        )
    targets = [c for c in certificates if c.attached]
    if listener is not None:
        targets = [c for c in targets if c.listener == listener]
    if not targets:
        listeners = sorted({c.listener for c in certificates if c.attached})
        where = f" on listener {listener!r}" if listener is not None else ""
        known = f" (listeners with one: {', '.join(listeners)})" if listeners else ""
        raise Refused(f"cannot renew: gateway {name} has no attached certificate{where}{known}")
    now = clock.now()
    reason = f"renewal requested by {actor}"

    spec = _rotation_machine(registry)
    if spec is not None:
        listeners = sorted({c.listener for c in targets})
        if len(listeners) > 1:
            raise Refused(
                f"cannot renew: gateway {name} has attached certificates on several listeners "
                f"({', '.join(listeners)}); choose one with --listener"
            )
        for op in store.list_operations(gateway_uid=gw.uid, statuses=list(ACTIVE_STATUSES)):
            if op.machine == spec.name:
                raise Refused(
                    f"cannot renew: a rotation is already in flight for {name}: {_describe(op)}"
                )
        context = spec.context_model.for_renewal(targets[0], reason=reason)
        try:
            op = start_operation(
                store, spec, gateway_uid=gw.uid, namespace=gw.namespace, name=gw.name,
                context=context, clock=clock, actor=actor,
            )
        except LaneBusy as exc:
            raise Refused(
                f"cannot renew: gateway {name} lane {exc.holder.lane!r} is busy with "
                f"{_describe(exc.holder)}; wait for it or cancel it"
            ) from None
        return ActionResult(
            generated_at=now, action="renew", gateway=ref(gw), actor=actor, operation_id=op.id,
            from_status=None, to_status=op.status.value,
            certificates=tuple(c.object_name for c in targets),
            message=(f"started rotation #{op.id} {op.machine} for {name} listener "
                     f"{listeners[0]} ({targets[0].object_name}), as {actor}"),
        )

    # No rotation machine here: record the request where the renewal scheduler looks.
    moved = []
    for cert in targets:
        if cert.renewal_at is None or cert.renewal_at > now:
            store.upsert_certificate(cert.model_copy(update={"renewal_at": now, "updated_at": now}))
            moved.append(cert.object_name)
    objects = ", ".join(c.object_name for c in targets)
    if moved:
        message = (f"renewal requested for {name}: {', '.join(moved)} due now (renewal_at "
                   f"set to {now.isoformat()}), as {actor}")
    else:
        message = f"renewal of {objects} for {name} is already due; nothing changed"
    return ActionResult(
        generated_at=now, action="renew", gateway=ref(gw), actor=actor, operation_id=None,
        from_status=None, to_status=None, certificates=tuple(moved), message=message,
    )
