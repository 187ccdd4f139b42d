"""``SqlStore``: the one implementation of ``OperationStore``, on SQLite and PostgreSQL.

A thin composition: each aggregate has its repository, one file each (``operations.py``,
``journal.py``, ``gateways.py``, ``certificates.py``, ``children.py``), sharing the unit of work
of ``database.py``; ``SqlStore`` owns the engine and hands each call to its repository. Every
public method is one transaction and hands out frozen records, never rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

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
from bifrost.store.interface import OperationStore
from bifrost.store.sql.backend import Backend
from bifrost.store.sql.certificates import SqlCertificates
from bifrost.store.sql.children import SqlChildren
from bifrost.store.sql.database import Database
from bifrost.store.sql.gateways import SqlGateways
from bifrost.store.sql.journal import SqlJournal
from bifrost.store.sql.operations import SqlOperations


class SqlStore:
    """``OperationStore`` over a SQLAlchemy engine. Build it with ``bifrost.store.open_store``.

    Thread-safe: each call takes its own pooled connection.
    """

    def __init__(self, engine: Engine, backend: Backend) -> None:
        self._engine = engine
        self._backend = backend
        self._db = Database(engine, backend)
        self._operations = SqlOperations(self._db)
        self._journal = SqlJournal(self._db)
        self._gateways = SqlGateways(self._db)
        self._certificates = SqlCertificates(self._db)
        self._children = SqlChildren(self._db)

    @property
    def backend_name(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend.name

    @property
    def url(self) -> str:
        """The database URL, without its password."""
        return self._db.url

    def close(self) -> None:
        """Close the pooled connections."""
        self._engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- operations -----------------------------------------------------------------------------
    def create_operation(self, new: NewOperation, *, now: datetime, actor: str) -> OperationRecord:
        return self._operations.create_operation(new, now=now, actor=actor)

    def get_operation(self, operation_id: int) -> OperationRecord:
        return self._operations.get_operation(operation_id)

    def list_operations(
        self,
        *,
        gateway_uid: str | None = None,
        statuses: Sequence[OperationStatus] | None = None,
        limit: int = 100,
    ) -> list[OperationRecord]:
        return self._operations.list_operations(
            gateway_uid=gateway_uid, statuses=statuses, limit=limit
        )

    def active_operation(self, gateway_uid: str, lane: str = "default") -> OperationRecord | None:
        return self._operations.active_operation(gateway_uid, lane)

    def claim_due(
        self, *, owner: str, now: datetime, lease_for: timedelta, limit: int = 1
    ) -> list[OperationRecord]:
        return self._operations.claim_due(owner=owner, now=now, lease_for=lease_for, limit=limit)

    def renew_lease(
        self, operation_id: int, *, owner: str, version: int, now: datetime, lease_for: timedelta
    ) -> OperationRecord:
        return self._operations.renew_lease(
            operation_id, owner=owner, version=version, now=now, lease_for=lease_for
        )

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
        return self._operations.begin_step(
            operation_id, owner=owner, version=version, now=now, step=step, attempt=attempt
        )

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
        return self._operations.finish_step(
            operation_id,
            owner=owner,
            version=version,
            now=now,
            outcome=outcome,
            state=state,
            status=status,
            context=context,
            next_run_at=next_run_at,
            message=message,
            output=output,
            last_error=last_error,
            release_lease=release_lease,
            started=started,
            begin_next=begin_next,
            bookkeeping=bookkeeping,
        )

    def fail_operation(
        self, operation_id: int, *, now: datetime, message: str, actor: str
    ) -> OperationRecord:
        return self._operations.fail_operation(operation_id, now=now, message=message, actor=actor)

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
    ) -> OperationRecord:
        return self._operations.admin_transition(
            operation_id,
            now=now,
            actor=actor,
            expected_statuses=expected_statuses,
            status=status,
            message=message,
            next_run_at=next_run_at,
            reset_attempt=reset_attempt,
            state=state,
        )

    # --- journal --------------------------------------------------------------------------------
    def journal(
        self,
        *,
        operation_id: int | None = None,
        gateway_uid: str | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[JournalRecord]:
        return self._journal.journal(
            operation_id=operation_id,
            gateway_uid=gateway_uid,
            limit=limit,
            newest_first=newest_first,
        )

    def prune_journal(self, gateway_uid: str, *, keep: int) -> int:
        return self._journal.prune_journal(gateway_uid, keep=keep)

    # --- gateways -------------------------------------------------------------------------------
    def upsert_gateway(
        self,
        *,
        uid: str,
        namespace: str,
        name: str,
        now: datetime,
        gateway_class: str | None = None,
        generation: int | None = None,
    ) -> GatewayRecord:
        return self._gateways.upsert_gateway(
            uid=uid,
            namespace=namespace,
            name=name,
            now=now,
            gateway_class=gateway_class,
            generation=generation,
        )

    def get_gateway(self, uid: str) -> GatewayRecord:
        return self._gateways.get_gateway(uid)

    def find_gateways(self, namespace: str, name: str) -> list[GatewayRecord]:
        return self._gateways.find_gateways(namespace, name)

    def list_gateways(
        self,
        *,
        namespace: str | None = None,
        gateway_class: str | None = None,
        lifecycle_state: str | None = None,
        limit: int | None = None,
    ) -> list[GatewayRecord]:
        return self._gateways.list_gateways(
            namespace=namespace,
            gateway_class=gateway_class,
            lifecycle_state=lifecycle_state,
            limit=limit,
        )

    def set_gateway_state(
        self, uid: str, *, lifecycle_state: str, now: datetime, last_error: str | None = None
    ) -> GatewayRecord:
        return self._gateways.set_gateway_state(
            uid, lifecycle_state=lifecycle_state, now=now, last_error=last_error
        )

    def record_input_hash(self, uid: str, input_hash: str | None, *, now: datetime) -> None:
        self._gateways.record_input_hash(uid, input_hash, now=now)

    def delete_gateway(self, uid: str) -> None:
        self._gateways.delete_gateway(uid)

    # --- certificates ---------------------------------------------------------------------------
    def upsert_certificate(self, record: CertificateRecord) -> CertificateRecord:
        return self._certificates.upsert_certificate(record)

    def list_certificates(self, *, gateway_uid: str | None = None) -> list[CertificateRecord]:
        return self._certificates.list_certificates(gateway_uid=gateway_uid)

    def delete_certificate(self, gateway_uid: str, object_name: str) -> None:
        self._certificates.delete_certificate(gateway_uid, object_name)

    def certificate_expiries(self) -> dict[str, tuple[datetime | None, datetime | None]]:
        return self._certificates.certificate_expiries()

    def due_renewals(
        self, *, before: datetime | None = None, limit: int = 1000
    ) -> list[CertificateRecord]:
        return self._certificates.due_renewals(before=before, limit=limit)

    # --- child inventory ------------------------------------------------------------------------
    def upsert_child(self, record: ChildRecord) -> ChildRecord:
        return self._children.upsert_child(record)

    def list_children(self, gateway_uid: str) -> list[ChildRecord]:
        return self._children.list_children(gateway_uid)

    def delete_child(
        self, gateway_uid: str, child_id: str, *, route_key: str | None = None
    ) -> None:
        self._children.delete_child(gateway_uid, child_id, route_key=route_key)


__all__ = ["SqlStore"]


def _conforms(store: SqlStore) -> OperationStore:
    """Type-check only: ``SqlStore`` satisfies the ``OperationStore`` Protocol."""
    return store
