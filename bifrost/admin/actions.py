"""Write side of ``bifrost-admin``: an operator's action on a gateway, by NAMESPACE/NAME.

The rule: every action has one home and one function, and this module only finds its target
and calls it.

- pause, resume, cancel and retry are the engine's operator actions
  (:mod:`bifrost.engine.admin`, with the statuses each applies to in ``ACTIONS``): this module
  finds *which* operation the operator means (the one in the gateway's lanes that the action
  can apply to, or the ``--operation`` given, checked to belong to the gateway) and calls it;
- ``renew`` starts a rotation through :func:`bifrost.triggers.rotation.start_rotation` (its
  preconditions are documented there) when the running code registers a rotation machine whose
  context can be built for a certificate; otherwise the request is recorded with
  :func:`bifrost.triggers.rotation.make_due_now` — the certificates' ``renewal_at`` becomes
  now, so the renewal scheduler finds them due (a missed renewal time runs at once) and
  ``bifrost-admin schedule`` shows them first. A listener with more than one attached
  certificate is refused: the controller's repair
  (:mod:`bifrost.triggers.certificate_repair`) brings it back to one first.

Every "no" becomes a one-line reason (:class:`~bifrost.admin.errors.Refused`).
"""

from __future__ import annotations

from bifrost.admin.errors import BadInput, Refused
from bifrost.admin.queries import ref, resolve_gateway
from bifrost.admin.views import ActionResult
from bifrost.clock import Clock
from bifrost.engine import admin as engine_admin
from bifrost.engine.admin import AdminRefused
from bifrost.engine.operations import LaneBusy
from bifrost.machines.registry import MachineRegistry
from bifrost.records import GatewayRecord, OperationRecord
from bifrost.store.errors import RecordNotFound
from bifrost.store.interface import OperationStore
from bifrost.triggers.certificate_repair import keeper
from bifrost.triggers.rotation import (
    make_due_now,
    not_renewable,
    rotation_machine,
    start_rotation,
)


def _describe(op: OperationRecord) -> str:
    return f"#{op.id} {op.machine} (state {op.state}, {op.status.value}, lane {op.lane})"


def _gateway_name(gw: GatewayRecord) -> str:
    return f"{gw.namespace}/{gw.name}"


def find_operation(
    store: OperationStore, gw: GatewayRecord, verb: str, operation_id: int | None
) -> OperationRecord:
    """The operation of ``gw`` that ``verb`` applies to."""
    action = engine_admin.ACTIONS[verb]
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
    candidates = [op for op in newest.values() if op.status in action.allowed]
    if not candidates:
        latest = sorted(newest.values(), key=lambda o: o.id, reverse=True)
        seen = "; its latest: " + ", ".join(_describe(o) for o in latest) if latest else ""
        raise Refused(
            f"cannot {verb}: gateway {_gateway_name(gw)} has no {action.applies_to} operation{seen}"
        )
    if len(candidates) > 1:
        listed = ", ".join(_describe(o) for o in sorted(candidates, key=lambda o: o.id))
        raise Refused(
            f"cannot {verb}: gateway {_gateway_name(gw)} has several {action.applies_to} "
            f"operations ({listed}); choose one with --operation ID"
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
    registry: MachineRegistry | None = None,
    compensate: bool = True,
) -> ActionResult:
    """pause / resume / cancel / retry the operation of ``target`` (see ``resolve_target``)
    through the engine. A cancel runs the machine's cancel compensation (known from
    ``registry``) unless ``compensate`` is False (see
    :func:`bifrost.engine.admin.cancel_operation`)."""
    gw, operation_id = resolve_target(store, target, verb, operation_id)
    op = find_operation(store, gw, verb, operation_id)
    try:
        if verb == "pause":
            after = engine_admin.pause_operation(store, op.id, clock=clock, actor=actor,
                                                 reason=reason)
        elif verb == "cancel":
            after = engine_admin.cancel_operation(
                store, op.id, clock=clock, actor=actor, reason=reason,
                compensate_with=registry if compensate else None)
        elif verb == "resume":
            after = engine_admin.resume_operation(store, op.id, clock=clock, actor=actor)
        elif verb == "retry":
            after = engine_admin.retry_operation(store, op.id, clock=clock, actor=actor)
        else:  # pragma: no cover - the CLI only offers the verbs above
            raise ValueError(f"unknown action {verb!r}")
    except AdminRefused as exc:
        raise Refused(str(exc)) from None
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
            f"{engine_admin.ACTIONS[verb].past} operation #{op.id} {op.machine} (state "
            f"{after.state}) of {_gateway_name(gw)}: {op.status.value} → "
            f"{after.status.value}, as {actor}"
            + (f"; compensating from {op.state} (it ends when {after.state} is done)"
               if verb == "cancel" and after.status.active else "")
        ),
    )


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
    why = not_renewable(gw)
    if why is not None:
        raise Refused(f"cannot renew: gateway {name} {why}")
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
    for crowded in sorted({c.listener for c in targets}):
        attached = [c for c in targets if c.listener == crowded]
        if len(attached) > 1:
            # Outside a rotation a listener has one; renewing one of several would leave more.
            kept = keeper(attached, now=now)
            raise Refused(
                f"cannot renew: gateway {name} listener {crowded} has {len(attached)} attached "
                f"certificates ({', '.join(sorted(c.object_name for c in attached))}); the "
                f"controller's repair keeps {kept.object_name} and detaches the others — renew "
                "once it has (bifrost-admin history shows it)"
            )

    spec = rotation_machine(registry)
    if spec is not None:
        listeners = sorted({c.listener for c in targets})
        if len(listeners) > 1:
            raise Refused(
                f"cannot renew: gateway {name} has attached certificates on several listeners "
                f"({', '.join(listeners)}); choose one with --listener"
            )
        try:
            start = start_rotation(store, spec, targets[0], reason=f"renewal requested by {actor}",
                                   clock=clock, actor=actor)
        except LaneBusy as exc:
            raise Refused(
                f"cannot renew: gateway {name} lane {exc.holder.lane!r} is busy with "
                f"{_describe(exc.holder)}; wait for it or cancel it"
            ) from None
        why = start.not_renewable or start.later
        if why is not None:
            raise Refused(f"cannot renew: gateway {name} {why}")
        op = start.operation
        assert op is not None
        if start.already_running:
            raise Refused(
                f"cannot renew: a rotation is already in flight for {name}: {_describe(op)}"
            )
        return ActionResult(
            generated_at=now, action="renew", gateway=ref(gw), actor=actor, operation_id=op.id,
            from_status=None, to_status=op.status.value,
            certificates=tuple(c.object_name for c in targets),
            message=(f"started rotation #{op.id} {op.machine} for {name} listener "
                     f"{listeners[0]} ({targets[0].object_name}), as {actor}"),
        )

    # No rotation machine here: record the request where the renewal scheduler looks.
    moved = make_due_now(store, targets, now=now)
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
