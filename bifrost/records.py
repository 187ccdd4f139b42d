"""Records: the pydantic models the store takes and returns.

No ORM row ever leaves ``bifrost.store``; callers see these frozen models only. Persisted names
(machine, state, step, status, outcome) are stable strings: renaming one needs a migration.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OperationStatus(StrEnum):
    PENDING = "pending"  # created, not yet started; due at next_run_at
    RUNNING = "running"  # a step is in flight (a runner holds, or held, the lease)
    WAITING = "waiting"  # a step said Wait/Retry; due again at next_run_at
    PAUSED = "paused"  # an operator paused it; never claimed until resumed
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in ACTIVE_STATUSES

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


ACTIVE_STATUSES = frozenset(
    {
        OperationStatus.PENDING,
        OperationStatus.RUNNING,
        OperationStatus.WAITING,
        OperationStatus.PAUSED,
    }
)
TERMINAL_STATUSES = frozenset(
    {OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CANCELLED}
)
CLAIMABLE_STATUSES = frozenset(
    {OperationStatus.PENDING, OperationStatus.RUNNING, OperationStatus.WAITING}
)


class JournalOutcome(StrEnum):
    """What a journal row records."""

    STARTED = "started"  # write-ahead: entering a step attempt
    DONE = "done"
    WAIT = "wait"
    RETRY = "retry"
    FAILED = "failed"
    TRANSITION = "transition"  # a state change not caused by a step (trigger, compensation)
    ADMIN = "admin"  # pause / resume / cancel / retry / renew by an operator


class GatewayRecord(Frozen):
    uid: str
    namespace: str
    name: str
    lifecycle_state: str = "pending"
    gateway_class: str | None = None
    generation: int | None = None
    last_error: str | None = None
    created_at: datetime
    updated_at: datetime
    #: The input hash of the last provision the controller started (None: none recorded).
    input_hash: str | None = None
    #: When the Gateway's teardown finished (None: it exists); purged after the retention.
    deleted_at: datetime | None = None


class NewOperation(Frozen):
    gateway_uid: str
    namespace: str
    name: str
    machine: str
    machine_version: int
    state: str
    lane: str = "default"
    context: dict[str, Any] = Field(default_factory=dict)
    next_run_at: datetime | None = None  # None: due now


class EngineBookkeeping(Frozen):
    """What the engine remembers of an operation's progress through its current state, between
    its commits; written in the same commit as the operation's state and context.

    All defaults: nothing remembered (a new operation, or one that finished).
    """

    state: str | None = None  # the state ``step`` belongs to (stale once a trigger moved on)
    step: str | None = None  # the next step to run in ``state`` (None: the state's first)
    input: dict[str, Any] | None = None  # output of the previous step, handed to ``step``
    #: The stored JSON text of ``input`` (None when there is none), kept so that an unreadable
    #: value can be told from none (``input`` is None for both).
    input_raw: str | None = None
    since: datetime | None = None  # when ``step`` was first attempted (for its timeout)
    failures: int = 0  # failed attempts of ``step`` (Retry / exception)
    finished: int = 0  # attempt number of the last committed attempt of ``step``
    error: str | None = None  # why compensation started (kept for the final last_error)
    failed: bool = False  # ``step`` failed the operation; an operator's retry grants one attempt
    #: What a waiting ``step`` waits for (watch keys, see ``bifrost.engine.step.WaitKey``): an
    #: informer event on one of them wakes the operation before its recheck time.
    wait_on: tuple[str, ...] = ()


class OperationRecord(Frozen):
    id: int
    gateway_uid: str
    namespace: str
    name: str
    machine: str
    machine_version: int
    lane: str
    state: str
    status: OperationStatus
    context: dict[str, Any] | None  # None when the stored JSON is unreadable
    context_raw: str  # the stored JSON text, kept so a corrupt context can be shown
    step: str | None  # the step in flight (write-ahead), if any
    attempt: int  # attempt number of ``step`` (1-based); 0 when none in flight
    next_run_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    version: int  # optimistic lock; bumped by every write to the row
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    bookkeeping: EngineBookkeeping = EngineBookkeeping()


class StepStart(Frozen):
    """The step attempt a ``finish_step`` concludes, as its caller began it.

    Passing it lets the store write the outcome's journal row without reading the operation
    first; the store still checks it (the fenced write also requires this step and attempt to
    be the one in flight), so a wrong value is refused, never journaled.
    """

    step: str
    attempt: int = Field(ge=1)
    started_at: datetime  # ``now`` of the write-ahead that began this attempt


class JournalRecord(Frozen):
    id: int
    operation_id: int
    gateway_uid: str
    sequence: int  # strictly increasing per operation, no gaps
    state: str
    step: str | None
    attempt: int
    outcome: JournalOutcome
    message: str | None
    output: dict[str, Any] | None
    actor: str
    started_at: datetime
    finished_at: datetime | None
    #: An identical wait repeated is one row: how many times it was recorded, and when last.
    repeats: int = 1
    last_at: datetime | None = None


class CertificateRecord(Frozen):
    """A certificate bifrost manages for a gateway listener; never key material."""

    gateway_uid: str
    listener: str
    object_name: str  # the certificate object (e.g. cert-manager Certificate) name
    secret_name: str | None
    serial: str | None
    fingerprint_sha256: str | None
    dns_names: tuple[str, ...] = ()
    not_before: datetime | None
    not_after: datetime | None
    renewal_at: datetime | None
    attached: bool
    state: str  # requested / issued / attached / detaching / deleted
    updated_at: datetime
    #: When it was attached (set by the store from ``updated_at`` when ``attached`` turns true,
    #: kept while it stays attached, cleared when detached; what is written here is ignored).
    attached_at: datetime | None = None


class ChildRecord(Frozen):
    """One resource bifrost applied for a gateway (inventory; cluster-scoped ones too)."""

    gateway_uid: str
    child_id: str  # stable id from the blueprint template
    api_version: str
    kind: str
    namespace: str | None  # None for cluster-scoped
    name: str
    uid: str | None
    route_key: str | None = None  # namespace/name of the HTTPRoute for per-route children
    applied_hash: str | None
    ready: bool
    delete_order: int = 0
    updated_at: datetime
    #: Drift detection: the shape (JSON, keys only) of the fields bifrost sets on the child,
    #: and the hash of the live object's projection onto that shape right after the apply.
    field_shape: str | None = None
    observed_hash: str | None = None
