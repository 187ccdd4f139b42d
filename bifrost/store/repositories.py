"""The store's repositories, one Protocol per aggregate: operations, journal, gateways,
certificates, child inventory. ``bifrost.store.interface.OperationStore`` is all of them.

Fencing: every write that belongs to a running operation passes the ``owner`` and the
``version`` it last read; the write succeeds only if the row still has that version, that lease
owner and an unexpired lease (``now`` < ``lease_expires_at``), else ``LeaseLost`` is raised and
nothing is written. Each successful write returns the new record (version + 1). The certificate
and child writes a step makes are fenced too (``bifrost.store.fence``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from bifrost.records import (
    CertificateRecord,
    ChildRecord,
    EngineBookkeeping,
    GatewayRecord,
    JournalOutcome,
    JournalRecord,
    NewOperation,
    OperationRecord,
    OperationStatus,
    StepStart,
)
from bifrost.store.fence import StepFence


class OperationRepository(Protocol):
    """Operations: created per (gateway, lane), claimed and stepped by the engine, moved by
    operators."""

    def create_operation(self, new: NewOperation, *, now: datetime, actor: str) -> OperationRecord:
        """Insert a pending operation (+ a TRANSITION journal row 'created').

        Raises OperationConflict when the (gateway_uid, lane) already has an active operation.
        """
        ...

    def get_operation(self, operation_id: int) -> OperationRecord: ...

    def list_operations(
        self,
        *,
        gateway_uid: str | None = None,
        statuses: Sequence[OperationStatus] | None = None,
        limit: int = 100,
    ) -> list[OperationRecord]: ...

    def active_operation(
        self, gateway_uid: str, lane: str = "default"
    ) -> OperationRecord | None: ...

    def claim_due(
        self, *, owner: str, now: datetime, lease_for: timedelta, limit: int = 1
    ) -> list[OperationRecord]:
        """Atomically take up to ``limit`` due operations.

        Due: status in (pending, running, waiting), next_run_at is null or <= now, and the lease is
        free (null owner or expired). Claimed rows get lease_owner=owner,
        lease_expires_at=now+lease_for and version+1. Two concurrent callers never get the same row.
        """
        ...

    def renew_lease(
        self, operation_id: int, *, owner: str, version: int, now: datetime, lease_for: timedelta
    ) -> OperationRecord: ...

    def wake_waiting(self, gateway_uid: str, *, key: str | None, now: datetime) -> int:
        """Make the gateway's waiting operations due now (``next_run_at = now`` where it was
        later): those whose step waits on ``key`` (``bookkeeping.wait_on``), or every waiting
        one when ``key`` is None. Leases, versions and the journal are untouched (a wake is not
        a step: the operation's next claim runs it). Returns how many were woken."""
        ...

    def check_step_lease(self, fence: StepFence, *, now: datetime) -> None:
        """Before a step's cluster write: LeaseLost unless ``fence``'s runner still holds the
        operation (owner, version, step attempt in flight) with its lease unexpired at ``now``.
        Writes nothing."""
        ...

    def database_time(self) -> datetime:
        """The database server's clock now (UTC); leases are judged by it in production."""
        ...

    def begin_step(
        self,
        operation_id: int,
        *,
        owner: str,
        version: int,
        now: datetime,
        step: str,
        attempt: int,
    ) -> OperationRecord:
        """Write-ahead: status=running, step/attempt recorded, a STARTED journal row, one commit."""
        ...

    def finish_step(
        self,
        operation_id: int,
        *,
        owner: str,
        version: int,
        now: datetime,
        outcome: JournalOutcome,
        state: str,
        status: OperationStatus,
        context: dict[str, Any],
        next_run_at: datetime | None,
        message: str | None = None,
        output: dict[str, Any] | None = None,
        last_error: str | None = None,
        release_lease: bool = True,
        started: StepStart | None = None,
        begin_next: tuple[str, int] | None = None,
        bookkeeping: EngineBookkeeping | None = None,
    ) -> OperationRecord:
        """Commit the step's outcome, new state/status/context and the journal row in one
        transaction. Clears step/attempt when outcome is DONE or FAILED; keeps the attempt
        counter for WAIT/RETRY so the next attempt number is known. Sets finished_at when the
        status is terminal.

        ``started``: the attempt being finished, as the caller began it (step, attempt, the
        write-ahead's time); the journal row is written from it instead of being looked up, and
        the write is also fenced on it (a different step/attempt in flight raises LeaseLost).

        ``begin_next=(step, attempt)``: in the same commit, also write the write-ahead of the
        step the caller runs next — exactly what ``begin_step`` would write (step/attempt
        recorded, a STARTED journal row after the outcome's row) — so the operation is left
        ``running`` with that step in flight. Needs ``status=RUNNING`` and
        ``release_lease=False`` (ValueError otherwise). Fencing applies to the whole commit.

        ``bookkeeping``: the engine's bookkeeping to keep with the new state and context (read
        back as ``OperationRecord.bookkeeping``); None clears it."""
        ...

    def fail_operation(
        self, operation_id: int, *, now: datetime, message: str, actor: str
    ) -> OperationRecord:
        """Mark an operation failed without a lease (e.g. unknown machine/state, corrupt
        context), with a FAILED journal row. Used by the engine for poison operations."""
        ...

    def admin_transition(
        self,
        operation_id: int,
        *,
        now: datetime,
        actor: str,
        expected_statuses: Sequence[OperationStatus],
        status: OperationStatus,
        message: str,
        next_run_at: datetime | None = None,
        reset_attempt: bool = False,
        state: str | None = None,
        expected_state: str | None = None,
    ) -> OperationRecord:
        """Pause / resume / cancel / retry: change status (and optionally state) only if the
        current status is one of ``expected_statuses`` and, with ``expected_state``, the
        operation is still in that state (raises OperationConflict otherwise: a new state
        decided from an old one is never written over a newer one), clear the lease (a
        paused/cancelled op's runner gets LeaseLost), ADMIN journal row."""
        ...


class JournalRepository(Protocol):
    """The journal every operation write appends to: read back and pruned."""

    def journal(
        self,
        *,
        operation_id: int | None = None,
        gateway_uid: str | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[JournalRecord]: ...

    def prune_journal(self, gateway_uid: str, *, keep: int) -> int:
        """Delete the oldest journal rows of a gateway beyond ``keep``; returns rows deleted."""
        ...

    def journal_over(self, keep: int) -> list[str]:
        """The uids of the gateways with more than ``keep`` journal rows (what
        ``prune_journal`` would shorten), in one read."""
        ...


class GatewayRepository(Protocol):
    """The Gateways the controller has seen, by uid."""

    def upsert_gateway(
        self,
        *,
        uid: str,
        namespace: str,
        name: str,
        now: datetime,
        gateway_class: str | None = None,
        generation: int | None = None,
    ) -> GatewayRecord: ...

    def get_gateway(self, uid: str) -> GatewayRecord: ...

    def find_gateways(self, namespace: str, name: str) -> list[GatewayRecord]:
        """All records for a namespace/name (several uids when re-created), newest first."""
        ...

    def list_gateways(
        self,
        *,
        namespace: str | None = None,
        gateway_class: str | None = None,
        lifecycle_state: str | None = None,
        limit: int | None = None,
    ) -> list[GatewayRecord]: ...

    def set_gateway_state(
        self,
        uid: str,
        *,
        lifecycle_state: str,
        now: datetime,
        last_error: str | None = None,
        deleted_at: datetime | None = None,
    ) -> GatewayRecord:
        """Write the lifecycle state, last error and deletion time (None: not deleted) of a
        gateway. RecordNotFound if the gateway is unknown."""
        ...

    def record_input_hash(self, uid: str, input_hash: str | None, *, now: datetime) -> None:
        """Remember the input hash of the last provision started for a gateway (read back as
        ``GatewayRecord.input_hash``; ``None`` clears it). RecordNotFound if the gateway is
        unknown. ``upsert_gateway`` leaves it alone."""
        ...

    def delete_gateway(self, uid: str) -> None:
        """Remove a gateway and everything keyed by it (children, certificates, operations,
        journal)."""
        ...

    def purge_deleted_gateways(
        self, *, before: datetime, limit: int = 500
    ) -> list[GatewayRecord]:
        """Remove up to ``limit`` gateways whose ``deleted_at`` is before ``before`` (oldest
        first) and everything keyed by them; returns the removed records. Gateways not deleted
        (``deleted_at`` null) are never purged."""
        ...


class CertificateRepository(Protocol):
    """The certificates bifrost manages for each gateway; never key material."""

    def upsert_certificate(self, record: CertificateRecord) -> CertificateRecord: ...

    def list_certificates(self, *, gateway_uid: str | None = None) -> list[CertificateRecord]: ...

    def delete_certificate(self, gateway_uid: str, object_name: str) -> None: ...

    def certificate_expiries(self) -> dict[str, tuple[datetime | None, datetime | None]]:
        """Per gateway uid with attached certificates: (earliest not_after, earliest
        renewal_at)."""
        ...

    def due_renewals(
        self, *, before: datetime | None = None, limit: int = 1000
    ) -> list[CertificateRecord]:
        """Attached certificates by renewal_at ascending (optionally only those before a time)."""
        ...


class ChildRepository(Protocol):
    """The inventory of resources bifrost applied for each gateway."""

    def upsert_child(self, record: ChildRecord) -> ChildRecord: ...

    def list_children(self, gateway_uid: str) -> list[ChildRecord]: ...

    def child_kinds(self) -> set[tuple[str, str]]:
        """Every (apiVersion, kind) a recorded child has, across all gateways (the controller
        watches these kinds)."""
        ...

    def delete_child(
        self, gateway_uid: str, child_id: str, *, route_key: str | None = None
    ) -> None: ...
