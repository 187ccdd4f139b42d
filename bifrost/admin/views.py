"""Frozen view models: what ``bifrost-admin`` shows, independent of how it is drawn.

The JSON and YAML outputs are ``model_dump(mode="json")`` of these models, so their field names
are a public contract for scripts (documented in ``docs/admin-json.md``): add fields freely,
never rename or remove one without a major version. Times are ISO 8601 in UTC; durations are
seconds (floats); absent values are ``null``, never omitted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

#: Version of the JSON documents; bumped only on an incompatible change.
SCHEMA_VERSION = 1


class View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Document(View):
    """Top-level document: every JSON output carries its kind, schema version and time."""

    kind: str
    schema_version: int = SCHEMA_VERSION
    generated_at: datetime


class GatewayRef(View):
    uid: str
    namespace: str
    name: str


class OperationSummary(View):
    """An operation as the lists show it."""

    id: int
    machine: str
    machine_version: int
    lane: str
    state: str
    status: str
    step: str | None  # the step in flight or next to run in ``state`` (None: not known)
    attempt: int  # attempt number of ``step`` as recorded by the engine (0: not started)
    step_started_at: datetime | None  # first attempt of ``step`` (else the last change)
    step_age_seconds: float | None
    next_run_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class GatewayRow(View):
    uid: str
    namespace: str
    name: str
    gateway_class: str | None
    lifecycle_state: str
    operations: tuple[OperationSummary, ...]  # active ones (one per lane), default lane first
    earliest_expiry: datetime | None  # earliest notAfter of the attached certificates
    next_renewal_at: datetime | None  # earliest renewal time of the attached certificates
    last_error: str | None  # the gateway's, else its active operation's
    updated_at: datetime
    deleted_at: datetime | None = None  # when its teardown finished (purged after retention)


class GatewayList(Document):
    kind: Literal["GatewayList"] = "GatewayList"
    count: int
    gateways: tuple[GatewayRow, ...]


class ChildView(View):
    child_id: str
    route: str | None
    api_version: str
    kind: str
    namespace: str | None
    name: str
    uid: str | None
    ready: bool
    applied_hash: str | None
    delete_order: int
    updated_at: datetime


class CertificateView(View):
    listener: str
    object_name: str
    secret_name: str | None
    serial: str | None
    fingerprint_sha256: str | None
    dns_names: tuple[str, ...]
    not_before: datetime | None
    not_after: datetime | None
    renewal_at: datetime | None
    attached: bool
    state: str
    expires_in_seconds: float | None
    updated_at: datetime


class OperationDetail(View):
    """An operation in flight, with its typed context and the engine's bookkeeping."""

    summary: OperationSummary
    context: dict[str, Any] | None  # the machine's typed context (None: unreadable)
    context_raw: str | None  # the stored text, only when it is unreadable
    engine: dict[str, Any] | None  # the engine's bookkeeping (next step, failures, since)
    lease_owner: str | None
    lease_expires_at: datetime | None
    version: int


class JournalEntry(View):
    """One entry of a timeline.

    ``kind``: ``attempt`` (a step attempt: its STARTED row merged with its outcome row),
    ``transition`` (a state change not made by a step: created, trigger, compensation) or
    ``admin`` (an operator's action). ``outcome``: the journal outcome (done, wait, retry,
    failed, transition, admin), or ``in_flight`` (started, not finished yet) or ``interrupted``
    (started, and the operation went on without finishing it: a crash or a lost lease).
    """

    operation_id: int
    machine: str | None
    sequence: int
    kind: Literal["attempt", "transition", "admin"]
    state: str
    step: str | None
    attempt: int
    outcome: str
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    message: str | None
    output: dict[str, Any] | None
    actor: str
    #: An identical wait repeated is one row: how many times it was recorded, and when last.
    repeats: int = 1
    last_at: datetime | None = None


class ConditionView(View):
    type: str
    status: str
    reason: str | None
    message: str | None
    observed_generation: int | None
    last_transition_time: str | None  # as the API server wrote it


class ListenerView(View):
    name: str
    attached_routes: int | None
    conditions: tuple[ConditionView, ...]


class LiveGateway(View):
    """The Gateway as the API server has it now (``show --kubeconfig``)."""

    source: str  # the API server's URL
    found: bool  # False: the cluster has no Gateway of this namespace/name
    uid: str | None
    generation: int | None
    store_uid_matches: bool | None  # False: the store's record is about another object
    conditions: tuple[ConditionView, ...]
    listeners: tuple[ListenerView, ...]
    addresses: tuple[str, ...]


class GatewayDetail(Document):
    kind: Literal["GatewayDetail"] = "GatewayDetail"
    gateway: GatewayRow
    generation: int | None
    created_at: datetime
    other_uids: tuple[str, ...]  # older records of the same namespace/name (re-created)
    children_ready: int
    children_total: int
    children: tuple[ChildView, ...]
    certificates: tuple[CertificateView, ...]
    operations_in_flight: tuple[OperationDetail, ...]
    recent_operations: tuple[OperationSummary, ...]  # newest first, terminal ones too
    recent_journal: tuple[JournalEntry, ...]  # newest first
    live: LiveGateway | None = None  # only with --kubeconfig


class OperationHistory(View):
    summary: OperationSummary
    duration_seconds: float | None  # created → finished (or → now while active)


class History(Document):
    kind: Literal["History"] = "History"
    gateway: GatewayRef
    limit: int
    truncated: bool  # older entries exist beyond the newest ``limit`` shown
    operations: tuple[OperationHistory, ...]  # oldest first
    entries: tuple[JournalEntry, ...]  # oldest first


class ScheduleRow(View):
    gateway: GatewayRef
    listener: str
    object_name: str
    fingerprint_sha256: str | None
    not_after: datetime | None
    renewal_at: datetime
    due_in_seconds: float  # negative: overdue
    overdue: bool


class Schedule(Document):
    kind: Literal["Schedule"] = "Schedule"
    count: int
    renewals: tuple[ScheduleRow, ...]  # soonest first


class Graph(Document):
    kind: Literal["Graph"] = "Graph"
    machine: str
    machine_version: int
    gateway: GatewayRef | None
    operation_id: int | None
    current_state: str | None
    mermaid: str


class ActionResult(Document):
    kind: Literal["ActionResult"] = "ActionResult"
    action: str
    gateway: GatewayRef
    actor: str
    operation_id: int | None
    from_status: str | None
    to_status: str | None
    certificates: tuple[str, ...]  # object names a renewal was requested for
    message: str


class OperationProgress(Document):
    """One operation as ``--wait`` follows it (and the admin API's ``/v1/operations/ID``)."""

    kind: Literal["Operation"] = "Operation"
    gateway: GatewayRef
    operation: OperationSummary
