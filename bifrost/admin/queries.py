"""Read side of ``bifrost-admin``: store records → view models.

Everything goes through the store's public interface (``OperationStore``), the same repositories
the controller uses, and only reads. No command issues a query per gateway of the fleet:
``gateways`` reads the gateways, all *active* operations and the certificates' expiry once each
and joins them here (three queries for 10,000 gateways; per-gateway certificate reads only when
a filter leaves a few gateways), ``show`` and ``history`` read one gateway's rows through the
per-gateway indexes and a bounded window of its journal, whatever the journal's size.

What the engine knows beyond the step in flight (when the current step was first attempted,
which step comes next) is read from the operation's ``bookkeeping`` record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from bifrost.admin.errors import BadInput, GatewayNotFound
from bifrost.admin.views import (
    CertificateView,
    ChildView,
    GatewayDetail,
    GatewayList,
    GatewayRef,
    GatewayRow,
    Graph,
    History,
    JournalEntry,
    OperationDetail,
    OperationHistory,
    OperationSummary,
    Schedule,
    ScheduleRow,
)
from bifrost.machines.diagram import mermaid
from bifrost.machines.lifecycle import LifecycleState, lifecycle_spec
from bifrost.machines.registry import MachineRegistry, UnknownMachine
from bifrost.machines.spec import MachineSpec
from bifrost.records import (
    ACTIVE_STATUSES,
    CertificateRecord,
    ChildRecord,
    EngineBookkeeping,
    GatewayRecord,
    JournalOutcome,
    JournalRecord,
    OperationRecord,
)
from bifrost.store.errors import RecordNotFound
from bifrost.store.interface import OperationStore

#: Upper bound handed to list queries that must return "all" rows of a kind.
ALL = 1_000_000_000
#: Up to this many gateways, ``gateways`` reads their certificates one indexed query each
#: instead of reading every certificate in the store.
PER_GATEWAY_CERTIFICATE_READS = 200

Expiry = tuple[datetime | None, datetime | None]


@runtime_checkable
class SupportsCertificateExpiries(Protocol):
    """An optional store query ``gateways`` uses when the store offers it.

    Per gateway uid, the earliest ``not_after`` and the earliest ``renewal_at`` of its attached
    certificates — one aggregate query (``SELECT gateway_uid, MIN(not_after),
    MIN(renewal_at) FROM certificates WHERE attached GROUP BY gateway_uid``) instead of
    reading every certificate record, which is most of the cost of ``gateways`` on a large
    fleet. Without it, the same figures are computed from ``list_certificates``.
    """

    def certificate_expiries(self) -> Mapping[str, Expiry]: ...


_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


# --- names ---------------------------------------------------------------------------------------
def parse_ref(text: str) -> tuple[str, str]:
    """``NAMESPACE/NAME`` → (namespace, name), checked against Kubernetes' naming rules."""
    parts = text.split("/")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise BadInput(f"gateway {text!r} is not NAMESPACE/NAME (e.g. infra/public-web)")
    namespace, name = parts
    if len(namespace) > 63 or not _LABEL.match(namespace):
        raise BadInput(
            f"gateway {text!r}: namespace {namespace!r} is not a valid namespace name "
            "(lower-case letters, digits and '-', at most 63 characters)"
        )
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        raise BadInput(
            f"gateway {text!r}: name {name!r} is not a valid Gateway name "
            "(lower-case letters, digits, '-' and '.', at most 253 characters)"
        )
    return namespace, name


def resolve_gateway(store: OperationStore, text: str) -> tuple[GatewayRecord, list[GatewayRecord]]:
    """The current record of ``NAMESPACE/NAME`` (the newest uid) and the older ones."""
    namespace, name = parse_ref(text)
    found = store.find_gateways(namespace, name)
    if not found:
        raise GatewayNotFound(
            f"gateway {namespace}/{name} is not in the store; `bifrost-admin gateways` lists "
            "the gateways it knows"
        )
    return found[0], found[1:]


def ref(gateway: GatewayRecord) -> GatewayRef:
    return GatewayRef(uid=gateway.uid, namespace=gateway.namespace, name=gateway.name)


# --- operations ----------------------------------------------------------------------------------
def engine_bookkeeping(op: OperationRecord) -> dict[str, object] | None:
    """The engine's bookkeeping as shown; None when it remembers nothing."""
    if op.bookkeeping == EngineBookkeeping():
        return None
    return op.bookkeeping.model_dump(mode="json", exclude={"input_raw"})


def current_step(op: OperationRecord, registry: MachineRegistry | None = None) -> str | None:
    """The step in flight, else the one the engine will run next in the current state."""
    if op.step is not None:
        return op.step
    if op.bookkeeping.step is not None:
        return op.bookkeeping.step
    if registry is not None and not op.status.terminal:
        try:
            spec = registry.get(op.machine, op.machine_version)
        except UnknownMachine:
            return None
        state = spec.state(op.state)
        if state is not None and state.steps:
            return state.steps[0].name
    return None


def summarize(
    op: OperationRecord, *, now: datetime, registry: MachineRegistry | None = None
) -> OperationSummary:
    step = current_step(op, registry)
    since: datetime | None = None
    if step is not None:
        if op.bookkeeping.step == step:
            since = op.bookkeeping.since
        if since is None:
            since = op.updated_at
    age = None
    if since is not None and not op.status.terminal:
        age = max(0.0, (now - since).total_seconds())
    return OperationSummary(
        id=op.id,
        machine=op.machine,
        machine_version=op.machine_version,
        lane=op.lane,
        state=op.state,
        status=op.status.value,
        step=step,
        attempt=op.attempt,
        step_started_at=since,
        step_age_seconds=age,
        next_run_at=op.next_run_at,
        last_error=op.last_error,
        created_at=op.created_at,
        updated_at=op.updated_at,
        finished_at=op.finished_at,
    )


def _lane_order(op: OperationRecord) -> tuple[int, str, int]:
    return (0 if op.lane == "default" else 1, op.lane, op.id)


def _active_by_gateway(ops: Iterable[OperationRecord]) -> dict[str, list[OperationRecord]]:
    by_uid: dict[str, list[OperationRecord]] = {}
    for op in ops:
        by_uid.setdefault(op.gateway_uid, []).append(op)
    for group in by_uid.values():
        group.sort(key=_lane_order)
    return by_uid


def _earliest(current: datetime | None, value: datetime | None) -> datetime | None:
    if value is None:
        return current
    return value if current is None or value < current else current


def expiries(certificates: Iterable[CertificateRecord]) -> dict[str, Expiry]:
    """Per gateway uid: earliest notAfter and renewal time of its attached certificates."""
    out: dict[str, Expiry] = {}
    for cert in certificates:
        if not cert.attached:
            continue
        not_after, renewal_at = out.get(cert.gateway_uid, (None, None))
        out[cert.gateway_uid] = (
            _earliest(not_after, cert.not_after),
            _earliest(renewal_at, cert.renewal_at),
        )
    return out


def _row(
    gateway: GatewayRecord,
    active: Sequence[OperationRecord],
    expiry: Expiry,
    *,
    now: datetime,
    registry: MachineRegistry | None,
) -> GatewayRow:
    last_error = gateway.last_error
    if last_error is None:
        last_error = next((op.last_error for op in active if op.last_error), None)
    return GatewayRow(
        uid=gateway.uid,
        namespace=gateway.namespace,
        name=gateway.name,
        gateway_class=gateway.gateway_class,
        lifecycle_state=gateway.lifecycle_state,
        operations=tuple(summarize(op, now=now, registry=registry) for op in active),
        earliest_expiry=expiry[0],
        next_renewal_at=expiry[1],
        last_error=last_error,
        updated_at=gateway.updated_at,
        deleted_at=gateway.deleted_at,
    )


# --- gateways ------------------------------------------------------------------------------------
def gateway_list(
    store: OperationStore,
    *,
    now: datetime,
    namespace: str | None = None,
    gateway_class: str | None = None,
    lifecycle_state: str | None = None,
    registry: MachineRegistry | None = None,
) -> GatewayList:
    if lifecycle_state is not None and lifecycle_state not in set(LifecycleState):
        raise BadInput(
            f"--state {lifecycle_state!r} is not a lifecycle state (one of: "
            f"{', '.join(LifecycleState)})"
        )
    gateways = store.list_gateways(
        namespace=namespace, gateway_class=gateway_class, lifecycle_state=lifecycle_state
    )
    if not gateways:
        return GatewayList(generated_at=now, count=0, gateways=())
    active = _active_by_gateway(store.list_operations(statuses=list(ACTIVE_STATUSES), limit=ALL))
    by_uid: Mapping[str, Expiry]
    if len(gateways) <= PER_GATEWAY_CERTIFICATE_READS:
        by_uid = {}
        for gw in gateways:
            by_uid.update(expiries(store.list_certificates(gateway_uid=gw.uid)))
    elif isinstance(store, SupportsCertificateExpiries):
        by_uid = store.certificate_expiries()
    else:
        by_uid = expiries(store.list_certificates())
    none: Expiry = (None, None)
    rows = tuple(
        _row(gw, active.get(gw.uid, ()), by_uid.get(gw.uid, none), now=now, registry=registry)
        for gw in gateways
    )
    return GatewayList(generated_at=now, count=len(rows), gateways=rows)


# --- journal timeline ----------------------------------------------------------------------------
_ATTEMPT_OUTCOMES = frozenset(
    {JournalOutcome.DONE, JournalOutcome.WAIT, JournalOutcome.RETRY, JournalOutcome.FAILED}
)


def timeline(
    rows: Sequence[JournalRecord], operations: dict[int, OperationRecord]
) -> list[JournalEntry]:
    """Journal rows (oldest first) → entries (oldest first): each step attempt's STARTED row is
    merged into the row that finished it; a STARTED row nothing finished is ``in_flight`` when it
    is the operation's latest row and the operation is active, else ``interrupted``."""
    finished: set[tuple[int, str | None, int]] = set()
    latest: dict[int, int] = {}
    for row in rows:
        latest[row.operation_id] = max(latest.get(row.operation_id, 0), row.sequence)
        if row.outcome in _ATTEMPT_OUTCOMES and row.step is not None:
            finished.add((row.operation_id, row.step, row.attempt))
    entries: list[JournalEntry] = []
    for row in rows:
        op = operations.get(row.operation_id)
        outcome: str = row.outcome.value
        if row.outcome is JournalOutcome.STARTED:
            if (row.operation_id, row.step, row.attempt) in finished:
                continue
            still_running = (
                op is not None
                and op.status in ACTIVE_STATUSES
                and latest[row.operation_id] == row.sequence
            )
            outcome = "in_flight" if still_running else "interrupted"
        if row.outcome is JournalOutcome.ADMIN:
            kind = "admin"
        elif row.outcome is JournalOutcome.TRANSITION:
            kind = "transition"
        else:
            kind = "attempt"
        duration = None
        if row.finished_at is not None:
            duration = max(0.0, (row.finished_at - row.started_at).total_seconds())
        entries.append(
            JournalEntry(
                operation_id=row.operation_id,
                machine=op.machine if op is not None else None,
                sequence=row.sequence,
                kind=kind,
                state=row.state,
                step=row.step,
                attempt=row.attempt,
                outcome=outcome,
                started_at=row.started_at,
                finished_at=row.finished_at,
                duration_seconds=duration,
                message=row.message,
                output=row.output,
                actor=row.actor,
                repeats=row.repeats,
                last_at=row.last_at,
            )
        )
    return entries


def _operations_for(
    store: OperationStore,
    ids: Iterable[int],
    known: Iterable[OperationRecord],
) -> dict[int, OperationRecord]:
    by_id = {op.id: op for op in known}
    for operation_id in sorted(set(ids) - by_id.keys()):
        try:
            by_id[operation_id] = store.get_operation(operation_id)
        except RecordNotFound:  # deleted meanwhile
            continue
    return by_id


def _recent_entries(
    store: OperationStore,
    gateway_uid: str,
    limit: int,
    known: Iterable[OperationRecord],
) -> tuple[list[JournalEntry], dict[int, OperationRecord], bool]:
    """The newest ``limit`` timeline entries of a gateway (oldest first), the operations they
    belong to, and whether older entries exist.

    An entry takes one or two journal rows, so the newest ``2 * limit + 1`` rows always hold
    more than ``limit`` entries when the journal has more: one indexed read, however long the
    journal is."""
    rows = store.journal(gateway_uid=gateway_uid, limit=2 * limit + 1, newest_first=True)
    rows.reverse()
    ops = _operations_for(store, (r.operation_id for r in rows), known)
    entries = timeline(rows, ops)
    return entries[-limit:], ops, len(entries) > limit


# --- show ----------------------------------------------------------------------------------------
def _child(record: ChildRecord) -> ChildView:
    return ChildView(
        child_id=record.child_id,
        route=record.route_key,
        api_version=record.api_version,
        kind=record.kind,
        namespace=record.namespace,
        name=record.name,
        uid=record.uid,
        ready=record.ready,
        applied_hash=record.applied_hash,
        delete_order=record.delete_order,
        updated_at=record.updated_at,
    )


def _certificate(record: CertificateRecord, now: datetime) -> CertificateView:
    expires_in = None
    if record.not_after is not None:
        expires_in = (record.not_after - now).total_seconds()
    return CertificateView(
        listener=record.listener,
        object_name=record.object_name,
        secret_name=record.secret_name,
        serial=record.serial,
        fingerprint_sha256=record.fingerprint_sha256,
        dns_names=record.dns_names,
        not_before=record.not_before,
        not_after=record.not_after,
        renewal_at=record.renewal_at,
        attached=record.attached,
        state=record.state,
        expires_in_seconds=expires_in,
        updated_at=record.updated_at,
    )


def _detail(
    op: OperationRecord, *, now: datetime, registry: MachineRegistry | None
) -> OperationDetail:
    return OperationDetail(
        summary=summarize(op, now=now, registry=registry),
        context=op.context,
        context_raw=op.context_raw if op.context is None else None,
        engine=engine_bookkeeping(op),
        lease_owner=op.lease_owner,
        lease_expires_at=op.lease_expires_at,
        version=op.version,
    )


def gateway_detail(
    store: OperationStore,
    name: str,
    *,
    now: datetime,
    journal_limit: int = 20,
    operations_limit: int = 10,
    registry: MachineRegistry | None = None,
) -> GatewayDetail:
    gateway, older = resolve_gateway(store, name)
    recent = store.list_operations(gateway_uid=gateway.uid, limit=operations_limit)
    active = sorted(
        store.list_operations(gateway_uid=gateway.uid, statuses=list(ACTIVE_STATUSES)),
        key=_lane_order,
    )
    certificates = store.list_certificates(gateway_uid=gateway.uid)
    children = store.list_children(gateway.uid)
    entries, _, _ = _recent_entries(store, gateway.uid, journal_limit, [*recent, *active])
    return GatewayDetail(
        generated_at=now,
        gateway=_row(gateway, active, expiries(certificates).get(gateway.uid, (None, None)),
                     now=now, registry=registry),
        generation=gateway.generation,
        created_at=gateway.created_at,
        other_uids=tuple(g.uid for g in older),
        children_ready=sum(1 for c in children if c.ready),
        children_total=len(children),
        children=tuple(_child(c) for c in children),
        certificates=tuple(_certificate(c, now) for c in certificates),
        operations_in_flight=tuple(_detail(op, now=now, registry=registry) for op in active),
        recent_operations=tuple(summarize(op, now=now, registry=registry) for op in recent),
        recent_journal=tuple(reversed(entries)),
    )


# --- history -------------------------------------------------------------------------------------
def history(
    store: OperationStore,
    name: str,
    *,
    now: datetime,
    limit: int = 100,
    registry: MachineRegistry | None = None,
) -> History:
    if limit < 1:
        raise BadInput(f"--limit must be at least 1, got {limit}")
    gateway, _ = resolve_gateway(store, name)
    active = store.list_operations(gateway_uid=gateway.uid, statuses=list(ACTIVE_STATUSES))
    entries, ops, truncated = _recent_entries(store, gateway.uid, limit, active)
    shown = sorted({e.operation_id for e in entries} | {op.id for op in active})
    operations = []
    for operation_id in shown:
        op = ops.get(operation_id)
        if op is None:
            continue
        end = op.finished_at or now
        operations.append(
            OperationHistory(
                summary=summarize(op, now=now, registry=registry),
                duration_seconds=max(0.0, (end - op.created_at).total_seconds()),
            )
        )
    return History(
        generated_at=now,
        gateway=ref(gateway),
        limit=limit,
        truncated=truncated,
        operations=tuple(operations),
        entries=tuple(entries),
    )


# --- schedule ------------------------------------------------------------------------------------
def schedule(store: OperationStore, *, now: datetime, limit: int = 100) -> Schedule:
    if limit < 1:
        raise BadInput(f"--limit must be at least 1, got {limit}")
    gateways: dict[str, GatewayRef | None] = {}
    rows = []
    for cert in store.due_renewals(limit=limit):
        if cert.renewal_at is None:  # due_renewals only returns scheduled ones
            continue
        if cert.gateway_uid not in gateways:
            try:
                gateways[cert.gateway_uid] = ref(store.get_gateway(cert.gateway_uid))
            except RecordNotFound:  # deleted meanwhile
                gateways[cert.gateway_uid] = None
        gateway = gateways[cert.gateway_uid]
        if gateway is None:
            continue
        due_in = (cert.renewal_at - now).total_seconds()
        rows.append(
            ScheduleRow(
                gateway=gateway,
                listener=cert.listener,
                object_name=cert.object_name,
                fingerprint_sha256=cert.fingerprint_sha256,
                not_after=cert.not_after,
                renewal_at=cert.renewal_at,
                due_in_seconds=due_in,
                overdue=due_in < 0,
            )
        )
    return Schedule(generated_at=now, count=len(rows), renewals=tuple(rows))


# --- graph ---------------------------------------------------------------------------------------
def machine_spec(registry: MachineRegistry, machine: str, version: int | None) -> MachineSpec:
    """The operation machine of that name (and version, default the latest) from ``registry``,
    or the Gateway lifecycle machine, which no registry of runnable machines holds."""
    lifecycle = lifecycle_spec()
    if (machine == lifecycle.name and machine not in {s.name for s in registry}
            and version in (None, lifecycle.version)):
        return lifecycle
    try:
        return registry.latest(machine) if version is None else registry.get(machine, version)
    except UnknownMachine as exc:
        known = ", ".join(sorted({s.name for s in registry} | {lifecycle.name}))
        raise BadInput(f"{exc} (machines known to this bifrost-admin: {known})") from None


def graph(
    store: OperationStore | None,
    registry: MachineRegistry,
    machine: str,
    *,
    now: datetime,
    gateway_name: str | None = None,
    version: int | None = None,
) -> tuple[Graph, str | None]:
    """The machine's Mermaid diagram, with the gateway's current state highlighted.

    The current state is that of the gateway's newest active operation of the machine, else its
    newest operation of the machine, else the gateway's lifecycle state when it is a state of
    the machine (the lifecycle machine). Returns the graph and a note for the operator when
    there is nothing to highlight.
    """
    spec = machine_spec(registry, machine, version)
    if store is None or gateway_name is None:
        return (
            Graph(
                generated_at=now,
                machine=spec.name,
                machine_version=spec.version,
                gateway=None,
                operation_id=None,
                current_state=None,
                mermaid=mermaid(spec),
            ),
            None,
        )
    gateway, _ = resolve_gateway(store, gateway_name)
    ops = [o for o in store.list_operations(gateway_uid=gateway.uid, limit=200)
           if o.machine == spec.name]
    op = next((o for o in ops if o.status in ACTIVE_STATUSES), ops[0] if ops else None)
    note = None
    current: str | None = None
    if op is not None:
        if version is None:
            spec = machine_spec(registry, op.machine, op.machine_version)
        current = op.state if spec.state(op.state) is not None else None
        if current is None:
            note = (f"operation {op.id} is in state {op.state!r}, which machine {spec.name} "
                    f"v{spec.version} does not have; nothing highlighted")
    elif spec.state(gateway.lifecycle_state) is not None:
        current = gateway.lifecycle_state
    else:
        note = (f"gateway {gateway.namespace}/{gateway.name} has no operation of machine "
                f"{spec.name}; nothing highlighted")
    return (
        Graph(
            generated_at=now,
            machine=spec.name,
            machine_version=spec.version,
            gateway=ref(gateway),
            operation_id=op.id if op is not None else None,
            current_state=current,
            mermaid=mermaid(spec, current),
        ),
        note,
    )
