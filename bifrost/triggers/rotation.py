"""When a certificate is rotated, and the one way a rotation starts.

A rotation of a listener's certificate starts when

- its renewal time has come (:func:`renewal_due_at`, :func:`renewal_due`): the ``renewal_at``
  recorded with the certificate (decided once by :mod:`bifrost.certificates.renewal`) plus a
  deterministic per-certificate jitter — the renewal scheduler asks;
- the listener changed under it (:func:`listener_change`): its hostnames are no longer covered
  by any attached certificate, or — with ``tls.source: ListenerSecret`` — the Secret the
  listener names now holds another certificate. The observer asks, on every observation of the
  Gateway, unless a rotation failed for it within :data:`ROTATION_RETRY_AFTER`
  (:func:`recently_failed`: no retry storm; an operator or the next change retries);
- an operator asks (``bifrost-admin renew``, and the demo).

:func:`start_rotation` is the one function that starts it, for all of them. Its preconditions,
checked in this order:

1. the Gateway is recorded in the store and is not being torn down (:func:`not_renewable`: its
   recorded lifecycle is not ``deleting``/``deleted``; and, for a caller that watches the live
   Gateway — the controller passes ``live_gateway`` — the live object exists with the recorded
   uid and no ``deletionTimestamp``). Otherwise nothing is started and
   :attr:`RotationStart.not_renewable` says why;
2. no rotation of the Gateway is in flight: otherwise that one is returned
   (:attr:`RotationStart.already_running`), not a second one started;
3. the listener has one attached certificate (:func:`extra_attached`): with more, the
   controller's repair detaches the extras first and :attr:`RotationStart.later` says why
   nothing started yet;
4. the rotation machine's lane is free: otherwise :class:`~bifrost.engine.LaneBusy` (or
   :class:`~bifrost.store.errors.OperationConflict` when the lane kept changing) is raised, as
   :func:`bifrost.engine.start_operation` does.

What differed between the callers is expressed by the caller, not by other preconditions: the
renewal scheduler treats "not renewable" and "already running" as done and a busy lane as "ask
again later"; the observer treats anything but a running rotation as "not now";
``bifrost-admin renew`` refuses with a one-line reason for each (a rotation in flight included);
``reason`` says who asked (:data:`~bifrost.machines.rotation.REASON_RENEWAL_DUE`, a listener
change, ``renewal requested by <actor>``) and ``actor`` is journalled with the operation.

When the running code has no rotation machine (:func:`rotation_machine` is ``None``), an
operator's request is recorded instead (:func:`make_due_now`): the certificates' ``renewal_at``
becomes now, so the renewal scheduler finds them due.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from bifrost.api.blueprint import TLSSource
from bifrost.api.objects import Obj, meta
from bifrost.certificates.renewal import renewal_jitter
from bifrost.certificates.rules import listener_hostnames
from bifrost.clock import Clock
from bifrost.engine import start_operation
from bifrost.machines.registry import MachineRegistry, UnknownMachine
from bifrost.machines.rotation import (
    REASON_HOSTNAMES_CHANGED,
    REASON_SOURCE_CHANGED,
    ROTATION_MACHINE,
)
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

__all__ = [
    "NOT_RENEWABLE_STATES",
    "ROTATION_RETRY_AFTER",
    "RenewableContext",
    "RotationStart",
    "certificate_to_replace",
    "listener_change",
    "make_due_now",
    "not_renewable",
    "recently_failed",
    "renewal_due",
    "renewal_due_at",
    "rotation_machine",
    "start_rotation",
]

#: Lifecycle states in which a Gateway's certificates are being torn down, not renewed.
NOT_RENEWABLE_STATES = frozenset({"deleting", "deleted"})
#: After a failed rotation, how long a listener change waits before starting another one.
ROTATION_RETRY_AFTER = timedelta(minutes=5)


@runtime_checkable
class RenewableContext(Protocol):
    """What the rotation machine's context model offers so that a rotation can be started for
    a certificate."""

    @classmethod
    def for_renewal(cls, certificate: CertificateRecord, *, reason: str) -> Any: ...


def rotation_machine(registry: MachineRegistry | None) -> MachineSpec | None:
    """The registered rotation machine, if its context can be built for a certificate
    (:class:`RenewableContext`); else ``None``."""
    if registry is None:
        return None
    try:
        spec = registry.latest(ROTATION_MACHINE)
    except UnknownMachine:
        return None
    return spec if isinstance(spec.context_model, RenewableContext) else None


# ---------------------------------------------------------------- when

def renewal_due_at(certificate: CertificateRecord, *, jitter_seconds: float) -> datetime:
    """When ``certificate`` is due: its recorded ``renewal_at`` plus its jitter, keyed by
    ``gateway_uid/object_name`` (stable across restarts: a rebuilt schedule fires each
    certificate at the same moment as before)."""
    if certificate.renewal_at is None:
        raise ValueError(f"certificate {certificate.object_name} has no renewal time")
    key = f"{certificate.gateway_uid}/{certificate.object_name}"
    return certificate.renewal_at + renewal_jitter(key, max_seconds=jitter_seconds)


def renewal_due(certificate: CertificateRecord, *, now: datetime, jitter_seconds: float) -> bool:
    """Whether ``certificate`` is to be renewed at ``now``: it is attached, has a renewal time,
    and that time plus its jitter has come."""
    return (certificate.renewal_at is not None and certificate.attached
            and renewal_due_at(certificate, jitter_seconds=jitter_seconds) <= now)


def listener_change(
    listener: Obj,
    attached: Sequence[CertificateRecord],
    *,
    source: TLSSource,
    served_fingerprint: Callable[[], str | None],
) -> str | None:
    """Why the listener's ``attached`` certificates must be rotated, else ``None``: its
    hostnames are not all covered by one of them, or — with ``source: ListenerSecret`` — the
    certificate its Secret serves (``served_fingerprint``, asked only then; ``None`` when the
    Secret is missing or unreadable) is none of them. No attached certificate: ``None``
    (provision issues the first one)."""
    if not attached:
        return None
    wanted = set(listener_hostnames(listener))
    if not any(wanted <= set(c.dns_names) for c in attached):
        return REASON_HOSTNAMES_CHANGED
    if source is TLSSource.LISTENER_SECRET:
        served = served_fingerprint()
        if served is not None and served not in {c.fingerprint_sha256 for c in attached}:
            return REASON_SOURCE_CHANGED
    return None


def recently_failed(operations: Sequence[OperationRecord], *, now: datetime) -> bool:
    """Whether a rotation among the Gateway's recent ``operations`` ended without success less
    than :data:`ROTATION_RETRY_AFTER` before ``now``."""
    return any(
        o.machine == ROTATION_MACHINE and o.status.terminal
        and o.status is not OperationStatus.SUCCEEDED and o.finished_at is not None
        and now - o.finished_at < ROTATION_RETRY_AFTER
        for o in operations
    )


def certificate_to_replace(attached: Sequence[CertificateRecord]) -> CertificateRecord:
    """Of a listener's attached certificates, the one a rotation replaces: the newest (latest
    ``not_before``; one without comes first)."""
    return max(attached, key=lambda c: (c.not_before is not None, c.not_before or 0))


def not_renewable(
    gateway: GatewayRecord | None, *, live: Obj | None = None, watched: bool = False
) -> str | None:
    """Why the Gateway's certificates are not to be rotated (phrased to follow "gateway
    NAMESPACE/NAME"), else ``None``. ``gateway`` is its store record; ``live`` the live object
    as a caller that ``watched`` Gateways sees it (``None``: gone)."""
    if gateway is None:
        return "is not recorded"
    if gateway.lifecycle_state in NOT_RENEWABLE_STATES:
        return (f"is {gateway.lifecycle_state}; its certificates are being removed, "
                "not renewed")
    if watched:
        if live is None or meta(live).get("uid") != gateway.uid:
            return "is gone or was re-created"
        if meta(live).get("deletionTimestamp"):
            return "is being deleted; teardown removes its certificates"
    return None


def extra_attached(store: OperationStore, certificate: CertificateRecord) -> str | None:
    """Why ``certificate``'s listener is not rotated now because it has more than one attached
    certificate outside a rotation (rotating one of two would leave three): the controller's
    repair (:mod:`bifrost.triggers.certificate_repair`) detaches the extras first, then the
    renewal runs. ``None``: one attached."""
    try:
        attached = [c for c in store.list_certificates(gateway_uid=certificate.gateway_uid)
                    if c.attached and c.listener == certificate.listener]
    except RecordNotFound:
        return None
    if len(attached) < 2:
        return None
    return (f"has {len(attached)} certificates attached to listener {certificate.listener} "
            "outside a rotation; the controller detaches the extras first")


# ---------------------------------------------------------------- how

@dataclass(frozen=True)
class RotationStart:
    """What :func:`start_rotation` found or did."""

    #: The rotation now running for the Gateway (``None`` when ``not_renewable``).
    operation: OperationRecord | None
    #: It was already in flight: nothing was started.
    already_running: bool = False
    #: Why nothing was started (see :func:`not_renewable`).
    not_renewable: str | None = None
    #: Why nothing was started *yet* (see :func:`extra_attached`): ask again later.
    later: str | None = None


def start_rotation(
    store: OperationStore,
    machine: MachineSpec,
    certificate: CertificateRecord,
    *,
    reason: str,
    clock: Clock,
    actor: str,
    live_gateway: Callable[[str, str], Obj | None] | None = None,
) -> RotationStart:
    """Start a rotation replacing ``certificate`` (the module docstring lists the
    preconditions). ``machine`` is the rotation machine (:func:`rotation_machine`, or
    :func:`bifrost.machines.rotation.rotation_spec`); ``live_gateway(namespace, name)`` reads
    the live Gateway, for a caller that watches Gateways."""
    try:
        gateway: GatewayRecord | None = store.get_gateway(certificate.gateway_uid)
    except RecordNotFound:
        gateway = None
    live = None
    if gateway is not None and live_gateway is not None:
        live = live_gateway(gateway.namespace, gateway.name)
    why = not_renewable(gateway, live=live, watched=live_gateway is not None)
    if why is not None or gateway is None:
        return RotationStart(None, not_renewable=why)
    for op in store.list_operations(gateway_uid=gateway.uid, statuses=list(ACTIVE_STATUSES)):
        if op.machine == machine.name:
            return RotationStart(op, already_running=True)
    extra = extra_attached(store, certificate)
    if extra is not None:
        return RotationStart(None, later=extra)
    context = machine.context_model.for_renewal(  # type: ignore[attr-defined]
        certificate, reason=reason)
    op = start_operation(store, machine, gateway_uid=gateway.uid, namespace=gateway.namespace,
                         name=gateway.name, context=context, clock=clock, actor=actor)
    return RotationStart(op)


def make_due_now(
    store: OperationStore, certificates: Sequence[CertificateRecord], *, now: datetime
) -> list[str]:
    """Record a renewal request without a rotation machine: each certificate whose renewal
    time is later (or unset) becomes due ``now``. Returns the object names moved."""
    moved = []
    for cert in certificates:
        if cert.renewal_at is None or cert.renewal_at > now:
            store.upsert_certificate(cert.model_copy(update={"renewal_at": now, "updated_at": now}))
            moved.append(cert.object_name)
    return moved
