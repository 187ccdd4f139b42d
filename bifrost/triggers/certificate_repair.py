"""When a listener's extra attached certificates are detached, and the one way that starts.

Outside a rotation every managed listener has exactly one attached certificate. A listener
found with more — a rotation cancelled with ``--no-compensate`` during its drain, a rotation
that failed after attaching the new one, a store restored from a backup — is repaired by the
controller: it keeps one and detaches the others.

**Which one is kept** (:func:`keeper`): the newest *valid* one — valid means issued and
current (``not_before <= now < not_after``); newest means the latest ``not_before``, then the
latest ``attached_at``, then the greatest object name (so the choice is deterministic). When
none is valid the newest of them is kept anyway (a listener never loses its last certificate;
renewal replaces an expired one).

**How** (:func:`start_repair`): the repair is the rotation machine's own tail — a
``rotate_certificate`` operation started in its ``detach`` state with ``old`` = the extra
certificate and ``new`` = the one kept: ``detach_old`` renders the children without the extra
and waits until they observed it, ``delete_old`` deletes it (never while a live child still
references it). It is durable, journaled and fenced like any rotation, it is announced like
one (``RotateCertificateStarted`` / ``Succeeded`` Events whose note carries the reason), and
the Gateway's status and lifecycle treat it as one (a rotation neither starts nor ends
serving). One extra is detached per operation, the oldest first; the next observation starts
the next.

Preconditions, in order: at least two attached certificates on the listener; the Gateway is
renewable (:func:`bifrost.triggers.rotation.not_renewable`: recorded, not being deleted); no
operation of the Gateway is active (a rotation in flight has two attached by design); no
rotation of it *failed* within :data:`~bifrost.triggers.rotation.ROTATION_RETRY_AFTER` (an
operator looks first; a cancelled one does not count); the Gateway was provisioned (the
children are rendered with its last provision's blueprint and values, as a rotation does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from bifrost.api.objects import Obj
from bifrost.clock import Clock
from bifrost.engine import start_operation
from bifrost.machines.provision import PROVISION_MACHINE
from bifrost.machines.rotation import ROTATION_MACHINE, RotationContext
from bifrost.machines.spec import MachineSpec
from bifrost.records import (
    ACTIVE_STATUSES,
    CertificateRecord,
    GatewayRecord,
    OperationRecord,
    OperationStatus,
)
from bifrost.store.errors import RecordNotFound
from bifrost.store.interface import OperationStore
from bifrost.triggers.rotation import ROTATION_RETRY_AFTER, not_renewable

__all__ = ["REPAIR_STATE", "extras", "keeper", "repair_reason", "start_repair"]

#: The rotation machine's state a repair starts in.
REPAIR_STATE = "detach"


def _valid(certificate: CertificateRecord, now: datetime) -> bool:
    return (certificate.not_before is not None and certificate.not_after is not None
            and certificate.not_before <= now < certificate.not_after)


def _newest_key(certificate: CertificateRecord) -> tuple[bool, datetime | int, bool,
                                                         datetime | int, str]:
    return (certificate.not_before is not None, certificate.not_before or 0,
            certificate.attached_at is not None, certificate.attached_at or 0,
            certificate.object_name)


def keeper(attached: Sequence[CertificateRecord], *, now: datetime) -> CertificateRecord:
    """The certificate a listener keeps of its ``attached`` ones (the module docstring says
    the rule)."""
    valid = [c for c in attached if _valid(c, now)]
    return max(valid or attached, key=_newest_key)


def extras(attached: Sequence[CertificateRecord], *, now: datetime) -> list[CertificateRecord]:
    """The attached certificates to detach, oldest first (empty: nothing to repair)."""
    if len(attached) < 2:
        return []
    kept = keeper(attached, now=now)
    return sorted((c for c in attached if c.object_name != kept.object_name), key=_newest_key)


def repair_reason(listener: str, attached: Sequence[CertificateRecord],
                  kept: CertificateRecord, extra: CertificateRecord) -> str:
    """Why the repair runs (the operation's reason, shown in history and its Events)."""
    return (f"listener {listener} had {len(attached)} attached certificates outside a "
            f"rotation: keeping {kept.object_name} (the newest valid one), detaching "
            f"{extra.object_name}")


def _failed_rotation(operations: Sequence[OperationRecord], now: datetime) -> bool:
    return any(o.machine == ROTATION_MACHINE and o.status is OperationStatus.FAILED
               and o.finished_at is not None and now - o.finished_at < ROTATION_RETRY_AFTER
               for o in operations)


def _last_provision(store: OperationStore, gateway_uid: str) -> OperationRecord | None:
    provisions = [o for o in store.list_operations(gateway_uid=gateway_uid, limit=100)
                  if o.machine == PROVISION_MACHINE]
    return max(provisions, key=lambda o: o.id) if provisions else None


def start_repair(
    store: OperationStore,
    machine: MachineSpec,
    attached: Sequence[CertificateRecord],
    *,
    clock: Clock,
    actor: str,
    live_gateway: Callable[[str, str], Obj | None] | None = None,
) -> OperationRecord | None:
    """Start the repair of one listener's ``attached`` certificates (all of one listener of one
    Gateway) when the preconditions hold (module docstring); returns the operation started,
    else ``None``. ``machine`` is the rotation machine. Raises
    :class:`~bifrost.engine.LaneBusy` when the lane was taken meanwhile."""
    now = clock.now()
    detach = extras(attached, now=now)
    if not detach:
        return None
    first = attached[0]
    try:
        gateway: GatewayRecord | None = store.get_gateway(first.gateway_uid)
    except RecordNotFound:
        gateway = None
    live = None
    if gateway is not None and live_gateway is not None:
        live = live_gateway(gateway.namespace, gateway.name)
    if gateway is None or not_renewable(gateway, live=live,
                                        watched=live_gateway is not None) is not None:
        return None
    recent = store.list_operations(gateway_uid=gateway.uid, limit=20)
    if any(o.status in ACTIVE_STATUSES for o in recent) or _failed_rotation(recent, now):
        return None
    provision = _last_provision(store, gateway.uid)
    if provision is None:
        return None
    last = provision.context or {}
    kept, extra = keeper(attached, now=now), detach[0]
    context = RotationContext(
        gateway_uid=gateway.uid, listener=first.listener, old=extra.object_name,
        new=kept.object_name, new_secret=kept.secret_name or "",
        fingerprint=kept.fingerprint_sha256,
        reason=repair_reason(first.listener, attached, kept, extra),
        namespace=gateway.namespace, gateway=gateway.name,
        blueprint=str(last.get("blueprint") or ""), values=dict(last.get("values") or {}),
        hostnames=kept.dns_names,
    )
    # The rotation machine, entered at its detach state (the spec's other states are unused).
    tail = machine.model_copy(update={"initial": REPAIR_STATE})
    return start_operation(store, tail, gateway_uid=gateway.uid, namespace=gateway.namespace,
                           name=gateway.name, context=context, clock=clock, actor=actor)
