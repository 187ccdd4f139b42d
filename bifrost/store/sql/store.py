"""``SqlStore``: the one implementation of ``OperationStore``, on SQLite and PostgreSQL.

It speaks SQLAlchemy Core and hands out frozen records only, never rows. Each public method is
one transaction. Writes that belong to a running operation are fenced: a single
``UPDATE … WHERE id AND version AND lease_owner AND lease_expires_at > now … RETURNING *`` that
must return exactly one row, else ``LeaseLost`` and the transaction is rolled back, so nothing
else is written. The same statement bumps the operation's journal sequence counter
(``last_sequence``) by the number of journal rows the transaction appends, so sequences are
taken under the row lock (or SQLite's write lock) without another statement, and the returned
row is the new record without a re-read.

The engine's hot path (claim, begin/finish a step, renew a lease) runs statements built once and
cached (SQLAlchemy then reuses their compiled form): a step write is the fenced UPDATE … RETURNING
plus one journal INSERT (SQLite), or a single statement (PostgreSQL: the INSERT rides in a
writable CTE of the UPDATE, one round trip). ``finish_step(begin_next=…)`` folds the next step's
write-ahead into the same commit, so an operation running step after step costs one commit per
step.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    RowMapping,
    String,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    StatementError,
)
from sqlalchemy.sql.expression import Executable

from bifrost.records import (
    ACTIVE_STATUSES,
    CertificateRecord,
    ChildRecord,
    GatewayRecord,
    JournalOutcome,
    JournalRecord,
    NewOperation,
    OperationRecord,
    OperationStatus,
    StepStart,
)
from bifrost.store.errors import (
    LeaseLost,
    OperationConflict,
    RecordNotFound,
    StoreUnavailable,
)
from bifrost.store.fence import current_fence
from bifrost.store.interface import OperationStore
from bifrost.store.sql.backend import Backend, describe_error, safe_url
from bifrost.store.sql.sqlite import WRITE_OPTION
from bifrost.store.sql.tables import (
    CLAIMABLE_STATUS_SQL,
    UTCDateTime,
    certificates,
    children,
    gateways,
    journal,
    operations,
)

_OP = operations.c
_J = journal.c
_GW = gateways.c
_CERT = certificates.c
_CH = children.c


# The journal columns a fenced write's caller supplies, in insert order.
_JOURNAL_ENTRY = (
    "state",
    "step",
    "attempt",
    "outcome",
    "message",
    "output",
    "actor",
    "started_at",
    "finished_at",
)


def _journal_value(updated: CTE, param: str, column: str) -> ColumnElement[Any]:
    """A journal value bound as ``param``, cast to its column type (an INSERT … SELECT of bare
    parameters leaves PostgreSQL guessing); a NULL ``state`` means the operation's state."""
    bound = cast(bindparam(param, type_=journal.c[column].type), journal.c[column].type)
    return func.coalesce(bound, updated.c.state) if column == "state" else bound


def _dump_json(value: Any, *, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from exc


def _load_json_object(raw: str | None) -> dict[str, Any] | None:
    """Parse a stored JSON object; ``None`` when absent or unreadable (never raises)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def _is_unavailable(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError | InterfaceError) or bool(exc.connection_invalidated)


def _operation(row: RowMapping) -> OperationRecord:
    raw = row["context"]
    return OperationRecord(
        id=row["id"],
        gateway_uid=row["gateway_uid"],
        namespace=row["namespace"],
        name=row["name"],
        machine=row["machine"],
        machine_version=row["machine_version"],
        lane=row["lane"],
        state=row["state"],
        status=OperationStatus(row["status"]),
        context=_load_json_object(raw),
        context_raw=raw,
        step=row["step"],
        attempt=row["attempt"],
        next_run_at=row["next_run_at"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        version=row["version"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


def _journal(row: RowMapping) -> JournalRecord:
    return JournalRecord(
        id=row["id"],
        operation_id=row["operation_id"],
        gateway_uid=row["gateway_uid"],
        sequence=row["sequence"],
        state=row["state"],
        step=row["step"],
        attempt=row["attempt"],
        outcome=JournalOutcome(row["outcome"]),
        message=row["message"],
        output=_load_json_object(row["output"]),
        actor=row["actor"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _gateway(row: RowMapping) -> GatewayRecord:
    return GatewayRecord(
        uid=row["uid"],
        namespace=row["namespace"],
        name=row["name"],
        lifecycle_state=row["lifecycle_state"],
        gateway_class=row["gateway_class"],
        generation=row["generation"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        input_hash=row["input_hash"],
    )


def _certificate(row: RowMapping) -> CertificateRecord:
    try:
        names = json.loads(row["dns_names"])
        dns_names = tuple(str(n) for n in names) if isinstance(names, list) else ()
    except (ValueError, TypeError):
        dns_names = ()
    return CertificateRecord(
        gateway_uid=row["gateway_uid"],
        listener=row["listener"],
        object_name=row["object_name"],
        secret_name=row["secret_name"],
        serial=row["serial"],
        fingerprint_sha256=row["fingerprint_sha256"],
        dns_names=dns_names,
        not_before=row["not_before"],
        not_after=row["not_after"],
        renewal_at=row["renewal_at"],
        attached=bool(row["attached"]),
        state=row["state"],
        updated_at=row["updated_at"],
    )


def _child(row: RowMapping) -> ChildRecord:
    return ChildRecord(
        gateway_uid=row["gateway_uid"],
        child_id=row["child_id"],
        api_version=row["api_version"],
        kind=row["kind"],
        namespace=row["namespace"],
        name=row["name"],
        uid=row["uid"],
        route_key=row["route_key"] or None,
        applied_hash=row["applied_hash"],
        ready=bool(row["ready"]),
        delete_order=row["delete_order"],
        updated_at=row["updated_at"],
    )


class SqlStore:
    """``OperationStore`` over a SQLAlchemy engine. Build it with ``bifrost.store.open_store``.

    Thread-safe: each call takes its own pooled connection.
    """

    def __init__(self, engine: Engine, backend: Backend) -> None:
        self._engine = engine
        self._backend = backend
        # claim_due is the hot path: its statements are built once. Never-scheduled operations
        # first (by id), then scheduled ones by due time; each query walks ix_operations_due.
        now = bindparam("now", type_=UTCDateTime())
        lease_free = or_(_OP.lease_owner.is_(None), _OP.lease_expires_at <= now)
        self._claim_unscheduled = backend.lock_due(
            select(_OP.id)
            .where(text(CLAIMABLE_STATUS_SQL), _OP.next_run_at.is_(None), lease_free)
            .order_by(_OP.id)
            .limit(bindparam("limit", type_=Integer()))
        )
        self._claim_scheduled = backend.lock_due(
            select(_OP.id)
            .where(text(CLAIMABLE_STATUS_SQL), _OP.next_run_at <= now, lease_free)
            .order_by(_OP.next_run_at, _OP.id)
            .limit(bindparam("limit", type_=Integer()))
        )
        self._claim_update = (
            update(operations)
            .where(_OP.id.in_(bindparam("ids", expanding=True)))
            .values(
                lease_owner=bindparam("owner", type_=String()),
                lease_expires_at=bindparam("expires", type_=UTCDateTime()),
                version=_OP.version + 1,
                updated_at=bindparam("now", type_=UTCDateTime()),
            )
            .returning(*operations.c)
        )
        self._select_operation = select(operations).where(_OP.id == bindparam("id"))
        self._journal_insert = journal.insert()
        self._bump_sequence = (
            update(operations)
            .where(_OP.id == bindparam("b_id"))
            .values(last_sequence=_OP.last_sequence + 1)
            .returning(_OP.last_sequence, _OP.gateway_uid)
        )
        # finish_step without ``started``: the attempt in flight and its write-ahead's time.
        started_at = (
            select(_J.started_at)
            .where(
                _J.operation_id == _OP.id,
                _J.outcome == JournalOutcome.STARTED.value,
                _J.step == _OP.step,
                _J.attempt == _OP.attempt,
            )
            .order_by(_J.sequence.desc())
            .limit(1)
            .scalar_subquery()
        )
        self._in_flight = select(_OP.step, _OP.attempt, started_at.label("started_at")).where(
            _OP.id == bindparam("id")
        )
        self._fenced_cache: dict[tuple[tuple[str, ...], int, bool], Executable] = {}

    # --- plumbing -------------------------------------------------------------------------------
    @property
    def backend_name(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend.name

    @property
    def url(self) -> str:
        """The database URL, without its password."""
        return safe_url(self._engine.url)

    def close(self) -> None:
        """Close the pooled connections."""
        self._engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Connection]:
        """One transaction; database errors that mean "not now" become StoreUnavailable."""
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            if _is_unavailable(exc):
                raise StoreUnavailable(
                    f"database at {self.url} is unavailable: {describe_error(exc)}"
                ) from exc
            raise
        except StatementError as exc:
            # A value refused before it reached the database (e.g. a naive datetime).
            if isinstance(exc.orig, ValueError | TypeError):
                raise exc.orig from exc
            raise

    def _fetch_operation(self, conn: Connection, operation_id: int) -> OperationRecord:
        row = conn.execute(self._select_operation, {"id": operation_id}).mappings().first()
        if row is None:
            raise RecordNotFound(f"operation {operation_id} does not exist")
        return _operation(row)

    def _fenced_statement(
        self, columns: tuple[str, ...], journal_rows: int, in_flight: bool
    ) -> Executable:
        """The fenced write, built once per shape: ``UPDATE operations … RETURNING *`` setting
        ``columns`` (bound as ``v_<column>``), bumping version and the journal sequence counter
        by ``journal_rows``; with ``in_flight`` it also requires the step/attempt in flight to be
        ``f_step``/``f_attempt``. Where the backend has writable CTEs (PostgreSQL) the journal
        rows (bound as ``j<k>_<column>``) are inserted by the same statement: one round trip."""
        key = (columns, journal_rows, in_flight)
        stmt = self._fenced_cache.get(key)
        if stmt is not None:
            return stmt
        now = bindparam("f_now", type_=UTCDateTime())
        conditions: list[ColumnElement[bool]] = [
            _OP.id == bindparam("f_id", type_=operations.c.id.type),
            _OP.version == bindparam("f_version", type_=operations.c.version.type),
            _OP.lease_owner == bindparam("f_owner", type_=String()),
            _OP.lease_expires_at > now,
        ]
        if in_flight:
            conditions += [
                _OP.step == bindparam("f_step", type_=String()),
                _OP.attempt == bindparam("f_attempt", type_=Integer()),
            ]
        values: dict[str, Any] = {
            name: bindparam(f"v_{name}", type_=operations.c[name].type) for name in columns
        }
        values.update(version=_OP.version + 1, updated_at=now)
        if journal_rows:
            values["last_sequence"] = _OP.last_sequence + journal_rows
        fenced = update(operations).where(*conditions).values(**values).returning(*operations.c)
        if not journal_rows or not self._backend.writable_ctes:
            self._fenced_cache[key] = fenced
            return fenced
        updated = fenced.cte("fenced")
        sources = [
            select(
                updated.c.id,
                updated.c.gateway_uid,
                (updated.c.last_sequence - (journal_rows - 1 - k)).label("sequence"),
                *(
                    _journal_value(updated, f"j{k}_{name}", name)
                    for name in _JOURNAL_ENTRY
                ),
            )
            for k in range(journal_rows)
        ]
        appended = insert(journal).from_select(
            ["operation_id", "gateway_uid", "sequence", *_JOURNAL_ENTRY],
            # ORDER BY: the rows take their ids in sequence order, as separate inserts would.
            sources[0] if journal_rows == 1 else union_all(*sources).order_by(text("sequence")),
        )
        combined = select(updated).add_cte(appended.cte("appended"))
        self._fenced_cache[key] = combined
        return combined

    def _fenced_update(
        self,
        conn: Connection,
        operation_id: int,
        *,
        owner: str,
        version: int,
        now: datetime,
        values: Mapping[str, Any],
        in_flight: StepStart | None = None,
        journal_entries: Sequence[Mapping[str, Any]] = (),
    ) -> RowMapping:
        """One fenced write, with the journal rows it appends (``_JOURNAL_ENTRY`` keys; they
        get the next sequences, in order); the operation's new row. LeaseLost when fenced off
        (then nothing was written)."""
        rows = len(journal_entries)
        stmt = self._fenced_statement(tuple(values), rows, in_flight is not None)
        params: dict[str, Any] = {f"v_{name}": value for name, value in values.items()}
        params.update(f_id=operation_id, f_version=version, f_owner=owner, f_now=now)
        if in_flight is not None:
            params.update(f_step=in_flight.step, f_attempt=in_flight.attempt)
        combined = rows and self._backend.writable_ctes
        if combined:
            for k, entry in enumerate(journal_entries):
                params.update({f"j{k}_{name}": value for name, value in entry.items()})
        row = conn.execute(stmt, params).mappings().first()
        if row is None:
            in_flight_text = (
                "" if in_flight is None
                else f" with step {in_flight.step!r} attempt {in_flight.attempt} in flight"
            )
            raise LeaseLost(
                f"operation {operation_id}: {owner!r} no longer holds the lease at version "
                f"{version}{in_flight_text}; drop the work"
            )
        if rows and not combined:
            first = row["last_sequence"] - rows + 1
            conn.execute(
                self._journal_insert,
                [
                    dict(entry, operation_id=operation_id, gateway_uid=row["gateway_uid"],
                         sequence=first + k, state=entry["state"] or row["state"])
                    for k, entry in enumerate(journal_entries)
                ],
            )
        return row

    @staticmethod
    def _journal_entry(
        *,
        state: str | None,
        step: str | None,
        attempt: int,
        outcome: JournalOutcome,
        message: str | None,
        output: str | None,
        actor: str,
        started_at: datetime,
        finished_at: datetime | None,
    ) -> dict[str, Any]:
        """A journal row's own values (``_JOURNAL_ENTRY``); the rest comes from the operation
        (and ``state`` too when None: the operation's state after the write)."""
        return {
            "state": state,
            "step": step,
            "attempt": attempt,
            "outcome": outcome.value,
            "message": message,
            "output": output,
            "actor": actor,
            "started_at": started_at,
            "finished_at": finished_at,
        }

    def _append_journal(
        self,
        conn: Connection,
        operation_id: int,
        *,
        state: str,
        step: str | None,
        attempt: int,
        outcome: JournalOutcome,
        message: str | None,
        output: dict[str, Any] | None,
        actor: str,
        started_at: datetime,
        finished_at: datetime | None,
    ) -> None:
        """Append one journal row. Must run after the operation row was updated (or inserted) in
        this transaction, so that the row is locked and the sequence counter is ours."""
        row = conn.execute(self._bump_sequence, {"b_id": operation_id}).mappings().one()
        conn.execute(
            self._journal_insert,
            dict(
                operation_id=operation_id,
                gateway_uid=row["gateway_uid"],
                sequence=row["last_sequence"],
                state=state,
                step=step,
                attempt=attempt,
                outcome=outcome.value,
                message=message,
                output=None if output is None else _dump_json(output, what="journal output"),
                actor=actor,
                started_at=started_at,
                finished_at=finished_at,
            ),
        )

    # --- operations -----------------------------------------------------------------------------
    def create_operation(self, new: NewOperation, *, now: datetime, actor: str) -> OperationRecord:
        """Insert a pending operation and its 'created' journal row.

        The gateway row is created (lifecycle ``pending``) if the store does not know the uid yet;
        an existing one is left as it is.
        """
        context = _dump_json(new.context, what="operation context")
        try:
            with self._tx(write=True) as conn:
                conn.execute(
                    self._backend.insert(gateways)
                    .values(
                        uid=new.gateway_uid,
                        namespace=new.namespace,
                        name=new.name,
                        lifecycle_state="pending",
                        created_at=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=[_GW.uid])
                )
                operation_id = conn.execute(
                    operations.insert()
                    .values(
                        gateway_uid=new.gateway_uid,
                        namespace=new.namespace,
                        name=new.name,
                        machine=new.machine,
                        machine_version=new.machine_version,
                        lane=new.lane,
                        state=new.state,
                        status=OperationStatus.PENDING.value,
                        context=context,
                        step=None,
                        attempt=0,
                        next_run_at=new.next_run_at,
                        lease_owner=None,
                        lease_expires_at=None,
                        version=1,
                        last_sequence=0,
                        last_error=None,
                        created_at=now,
                        updated_at=now,
                        finished_at=None,
                    )
                    .returning(_OP.id)
                ).scalar_one()
                self._append_journal(
                    conn,
                    operation_id,
                    state=new.state,
                    step=None,
                    attempt=0,
                    outcome=JournalOutcome.TRANSITION,
                    message="created",
                    output=None,
                    actor=actor,
                    started_at=now,
                    finished_at=now,
                )
                return self._fetch_operation(conn, operation_id)
        except IntegrityError as exc:
            raise OperationConflict(
                f"gateway {new.namespace}/{new.name} (uid {new.gateway_uid}) already has an "
                f"active operation in lane {new.lane!r}"
            ) from exc

    def get_operation(self, operation_id: int) -> OperationRecord:
        with self._tx(write=False) as conn:
            return self._fetch_operation(conn, operation_id)

    def list_operations(
        self,
        *,
        gateway_uid: str | None = None,
        statuses: Sequence[OperationStatus] | None = None,
        limit: int = 100,
    ) -> list[OperationRecord]:
        """Operations, newest (highest id) first."""
        stmt = select(operations).order_by(_OP.id.desc()).limit(limit)
        if gateway_uid is not None:
            stmt = stmt.where(_OP.gateway_uid == gateway_uid)
        if statuses is not None:
            stmt = stmt.where(_OP.status.in_([OperationStatus(s).value for s in statuses]))
        with self._tx(write=False) as conn:
            return [_operation(r) for r in conn.execute(stmt).mappings()]

    def active_operation(self, gateway_uid: str, lane: str = "default") -> OperationRecord | None:
        stmt = select(operations).where(
            _OP.gateway_uid == gateway_uid,
            _OP.lane == lane,
            _OP.status.in_([s.value for s in ACTIVE_STATUSES]),
        )
        with self._tx(write=False) as conn:
            row = conn.execute(stmt).mappings().first()
            return None if row is None else _operation(row)

    def claim_due(
        self, *, owner: str, now: datetime, lease_for: timedelta, limit: int = 1
    ) -> list[OperationRecord]:
        """Atomically take up to ``limit`` due operations (earliest next_run_at first, never-
        scheduled ones first of all, then by id)."""
        if limit < 1:
            return []
        with self._tx(write=True) as conn:
            ids = list(
                conn.execute(self._claim_unscheduled, {"now": now, "limit": limit}).scalars()
            )
            if len(ids) < limit:
                more = {"now": now, "limit": limit - len(ids)}
                ids += conn.execute(self._claim_scheduled, more).scalars()
            if not ids:
                return []
            result = conn.execute(
                self._claim_update,
                {"ids": ids, "owner": owner, "expires": now + lease_for, "now": now},
            )
            rows = {r["id"]: r for r in result.mappings()}
            return [_operation(rows[i]) for i in ids]

    def renew_lease(
        self, operation_id: int, *, owner: str, version: int, now: datetime, lease_for: timedelta
    ) -> OperationRecord:
        with self._tx(write=True) as conn:
            row = self._fenced_update(
                conn,
                operation_id,
                owner=owner,
                version=version,
                now=now,
                values={"lease_expires_at": now + lease_for},
            )
            return _operation(row)

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
        """Write-ahead: status=running, step/attempt recorded, a STARTED journal row."""
        with self._tx(write=True) as conn:
            row = self._fenced_update(
                conn,
                operation_id,
                owner=owner,
                version=version,
                now=now,
                values={
                    "status": OperationStatus.RUNNING.value,
                    "step": step,
                    "attempt": attempt,
                },
                journal_entries=[
                    self._journal_entry(
                        state=None,  # the operation's (unchanged) state
                        step=step,
                        attempt=attempt,
                        outcome=JournalOutcome.STARTED,
                        message=None,
                        output=None,
                        actor=owner,
                        started_at=now,
                        finished_at=None,
                    )
                ],
            )
            return _operation(row)

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
    ) -> OperationRecord:
        """Commit a step's outcome with its journal row (and, with ``begin_next``, the next
        step's write-ahead: a STARTED row right after it).

        The journal row carries the step/attempt that was in flight, the new ``state``, and
        ``started_at`` of the matching STARTED row: from ``started`` when given (then the write
        is also fenced on that step/attempt), else looked up (``now`` when there is none).
        """
        status = OperationStatus(status)
        outcome = JournalOutcome(outcome)
        if begin_next is not None:
            next_step, next_attempt = begin_next
            if status is not OperationStatus.RUNNING or release_lease:
                raise ValueError(
                    "finish_step(begin_next=...) leaves the operation running the next step: "
                    f"it needs status=running and release_lease=False (got {status.value}, "
                    f"release_lease={release_lease})"
                )
            if outcome is JournalOutcome.STARTED or next_attempt < 1 or not next_step:
                raise ValueError(
                    f"finish_step(begin_next={begin_next!r}, outcome={outcome.value}): needs a "
                    "step outcome and a step name with an attempt >= 1"
                )
        context_json = _dump_json(context, what="operation context")
        output_json = None if output is None else _dump_json(output, what="journal output")
        values: dict[str, Any] = {
            "state": state,
            "status": status.value,
            "context": context_json,
            "next_run_at": next_run_at,
            "last_error": last_error,
            "finished_at": now if status.terminal else None,
        }
        if begin_next is not None:
            values.update(step=begin_next[0], attempt=begin_next[1])
        elif outcome in (JournalOutcome.DONE, JournalOutcome.FAILED):
            values.update(step=None, attempt=0)
        if release_lease:
            values.update(lease_owner=None, lease_expires_at=None)
        with self._tx(write=True) as conn:
            if started is not None:
                step: str | None = started.step
                attempt, started_at = started.attempt, started.started_at
            else:
                before = conn.execute(self._in_flight, {"id": operation_id}).first()
                # No row: the fenced update below raises LeaseLost.
                step, attempt = (before.step, before.attempt) if before else (None, 0)
                started_at = before.started_at if before and before.started_at else now
            entries = [
                self._journal_entry(
                    state=state,
                    step=step,
                    attempt=attempt,
                    outcome=outcome,
                    message=message,
                    output=output_json,
                    actor=owner,
                    started_at=started_at,
                    finished_at=now,
                )
            ]
            if begin_next is not None:
                entries.append(
                    self._journal_entry(
                        state=state,
                        step=begin_next[0],
                        attempt=begin_next[1],
                        outcome=JournalOutcome.STARTED,
                        message=None,
                        output=None,
                        actor=owner,
                        started_at=now,
                        finished_at=None,
                    )
                )
            row = self._fenced_update(
                conn,
                operation_id,
                owner=owner,
                version=version,
                now=now,
                values=values,
                in_flight=started,
                journal_entries=entries,
            )
            return _operation(row)

    def fail_operation(
        self, operation_id: int, *, now: datetime, message: str, actor: str
    ) -> OperationRecord:
        """Mark an active operation failed without a lease (poison operations).

        Raises RecordNotFound for an unknown id and OperationConflict when it is already terminal.
        """
        with self._tx(write=True) as conn:
            current = self._fetch_operation(conn, operation_id)
            result = conn.execute(
                update(operations)
                .where(
                    _OP.id == operation_id,
                    _OP.status.in_([s.value for s in ACTIVE_STATUSES]),
                )
                .values(
                    status=OperationStatus.FAILED.value,
                    step=None,
                    attempt=0,
                    lease_owner=None,
                    lease_expires_at=None,
                    next_run_at=None,
                    last_error=message,
                    finished_at=now,
                    updated_at=now,
                    version=_OP.version + 1,
                )
            )
            if result.rowcount != 1:
                raise OperationConflict(
                    f"operation {operation_id} is already {current.status.value}; not failing it"
                )
            self._append_journal(
                conn,
                operation_id,
                state=current.state,
                step=current.step,
                attempt=current.attempt,
                outcome=JournalOutcome.FAILED,
                message=message,
                output=None,
                actor=actor,
                started_at=now,
                finished_at=now,
            )
            return self._fetch_operation(conn, operation_id)

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
        """Pause / resume / cancel / retry (see the Protocol). ``next_run_at`` is written as given
        (None: due now). ``reset_attempt`` sets attempt to 0 and keeps ``step``. A terminal target
        status sets ``finished_at``, an active one clears it. Moving a finished operation back to
        an active status while its lane is taken raises OperationConflict."""
        status = OperationStatus(status)
        expected = [OperationStatus(s).value for s in expected_statuses]
        try:
            with self._tx(write=True) as conn:
                current = self._fetch_operation(conn, operation_id)
                values: dict[str, Any] = {
                    "status": status.value,
                    "next_run_at": next_run_at,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "finished_at": now if status.terminal else None,
                    "updated_at": now,
                    "version": _OP.version + 1,
                }
                if reset_attempt:
                    values["attempt"] = 0
                if state is not None:
                    values["state"] = state
                result = conn.execute(
                    update(operations)
                    .where(_OP.id == operation_id, _OP.status.in_(expected))
                    .values(**values)
                )
                if result.rowcount != 1:
                    raise OperationConflict(
                        f"operation {operation_id} is {current.status.value}, expected one of "
                        f"{', '.join(expected) or '(none)'}; nothing changed"
                    )
                after = self._fetch_operation(conn, operation_id)
                self._append_journal(
                    conn,
                    operation_id,
                    state=after.state,
                    step=after.step,
                    attempt=after.attempt,
                    outcome=JournalOutcome.ADMIN,
                    message=message,
                    output={"from": current.status.value, "to": status.value},
                    actor=actor,
                    started_at=now,
                    finished_at=now,
                )
                return after
        except IntegrityError as exc:
            raise OperationConflict(
                f"operation {operation_id}: another operation is already active in its lane; "
                "finish or cancel that one first"
            ) from exc

    # --- journal --------------------------------------------------------------------------------
    def journal(
        self,
        *,
        operation_id: int | None = None,
        gateway_uid: str | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[JournalRecord]:
        """Journal rows in commit order (oldest first unless ``newest_first``). With a limit and
        oldest-first, the oldest ``limit`` rows."""
        stmt = select(journal).order_by(_J.id.desc() if newest_first else _J.id.asc()).limit(limit)
        if operation_id is not None:
            stmt = stmt.where(_J.operation_id == operation_id)
        if gateway_uid is not None:
            stmt = stmt.where(_J.gateway_uid == gateway_uid)
        with self._tx(write=False) as conn:
            return [_journal(r) for r in conn.execute(stmt).mappings()]

    def prune_journal(self, gateway_uid: str, *, keep: int) -> int:
        if keep < 0:
            raise ValueError("keep must be >= 0")
        with self._tx(write=True) as conn:
            threshold = conn.execute(
                select(_J.id)
                .where(_J.gateway_uid == gateway_uid)
                .order_by(_J.id.desc())
                .offset(keep)
                .limit(1)
            ).scalar_one_or_none()
            if threshold is None:
                return 0
            result = conn.execute(
                delete(journal).where(_J.gateway_uid == gateway_uid, _J.id <= threshold)
            )
            return int(result.rowcount)

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
        """Insert or update a gateway. On update, a ``None`` class or generation keeps the stored
        value; lifecycle_state and last_error are left alone (see ``set_gateway_state``)."""
        stmt = self._backend.insert(gateways).values(
            uid=uid,
            namespace=namespace,
            name=name,
            lifecycle_state="pending",
            gateway_class=gateway_class,
            generation=generation,
            created_at=now,
            updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[_GW.uid],
            set_={
                "namespace": stmt.excluded.namespace,
                "name": stmt.excluded.name,
                "gateway_class": func.coalesce(stmt.excluded.gateway_class, _GW.gateway_class),
                "generation": func.coalesce(stmt.excluded.generation, _GW.generation),
                "updated_at": stmt.excluded.updated_at,
            },
        )
        with self._tx(write=True) as conn:
            conn.execute(stmt)
            return self._fetch_gateway(conn, uid)

    def _fetch_gateway(self, conn: Connection, uid: str) -> GatewayRecord:
        row = conn.execute(select(gateways).where(_GW.uid == uid)).mappings().first()
        if row is None:
            raise RecordNotFound(f"gateway with uid {uid} is not in the store")
        return _gateway(row)

    def get_gateway(self, uid: str) -> GatewayRecord:
        with self._tx(write=False) as conn:
            return self._fetch_gateway(conn, uid)

    def find_gateways(self, namespace: str, name: str) -> list[GatewayRecord]:
        stmt = (
            select(gateways)
            .where(_GW.namespace == namespace, _GW.name == name)
            .order_by(_GW.created_at.desc(), _GW.uid)
        )
        with self._tx(write=False) as conn:
            return [_gateway(r) for r in conn.execute(stmt).mappings()]

    def list_gateways(
        self,
        *,
        namespace: str | None = None,
        gateway_class: str | None = None,
        lifecycle_state: str | None = None,
        limit: int | None = None,
    ) -> list[GatewayRecord]:
        """Gateways by namespace, name, then creation time."""
        stmt = select(gateways).order_by(_GW.namespace, _GW.name, _GW.created_at, _GW.uid)
        if namespace is not None:
            stmt = stmt.where(_GW.namespace == namespace)
        if gateway_class is not None:
            stmt = stmt.where(_GW.gateway_class == gateway_class)
        if lifecycle_state is not None:
            stmt = stmt.where(_GW.lifecycle_state == lifecycle_state)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._tx(write=False) as conn:
            return [_gateway(r) for r in conn.execute(stmt).mappings()]

    def set_gateway_state(
        self, uid: str, *, lifecycle_state: str, now: datetime, last_error: str | None = None
    ) -> GatewayRecord:
        with self._tx(write=True) as conn:
            result = conn.execute(
                update(gateways)
                .where(_GW.uid == uid)
                .values(lifecycle_state=lifecycle_state, last_error=last_error, updated_at=now)
            )
            if result.rowcount != 1:
                raise RecordNotFound(f"gateway with uid {uid} is not in the store")
            return self._fetch_gateway(conn, uid)

    def record_input_hash(self, uid: str, input_hash: str | None, *, now: datetime) -> None:
        """One UPDATE; RecordNotFound (and nothing written) for an unknown uid."""
        with self._tx(write=True) as conn:
            result = conn.execute(
                update(gateways)
                .where(_GW.uid == uid)
                .values(input_hash=input_hash, updated_at=now)
            )
            if result.rowcount != 1:
                raise RecordNotFound(f"gateway with uid {uid} is not in the store")

    def delete_gateway(self, uid: str) -> None:
        """Remove a gateway and everything keyed by it; a no-op for an unknown uid."""
        with self._tx(write=True) as conn:
            # Explicit, child tables first: correct even where foreign keys are not enforced.
            conn.execute(delete(journal).where(_J.gateway_uid == uid))
            conn.execute(delete(operations).where(_OP.gateway_uid == uid))
            conn.execute(delete(certificates).where(_CERT.gateway_uid == uid))
            conn.execute(delete(children).where(_CH.gateway_uid == uid))
            conn.execute(delete(gateways).where(_GW.uid == uid))

    # --- certificates ---------------------------------------------------------------------------
    def upsert_certificate(self, record: CertificateRecord) -> CertificateRecord:
        """Insert or replace by (gateway_uid, object_name). RecordNotFound if the gateway is
        unknown."""
        values: dict[str, Any] = {
            "gateway_uid": record.gateway_uid,
            "object_name": record.object_name,
            "listener": record.listener,
            "secret_name": record.secret_name,
            "serial": record.serial,
            "fingerprint_sha256": record.fingerprint_sha256,
            "dns_names": _dump_json(list(record.dns_names), what="dns_names"),
            "not_before": record.not_before,
            "not_after": record.not_after,
            "renewal_at": record.renewal_at,
            "attached": record.attached,
            "state": record.state,
            "updated_at": record.updated_at,
        }
        stmt = self._backend.insert(certificates).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_CERT.gateway_uid, _CERT.object_name],
            set_={k: v for k, v in values.items() if k not in ("gateway_uid", "object_name")},
        )
        with self._tx(write=True) as conn:
            self._check_fence(conn)
            self._require_gateway(conn, record.gateway_uid)
            conn.execute(stmt)
            row = (
                conn.execute(
                    select(certificates).where(
                        _CERT.gateway_uid == record.gateway_uid,
                        _CERT.object_name == record.object_name,
                    )
                )
                .mappings()
                .one()
            )
            return _certificate(row)

    def _check_fence(self, conn: Connection) -> None:
        """Inside a step (``bifrost.store.fence``): LeaseLost unless its runner still holds the
        operation at the version, step and attempt it began; checked in the write's own
        transaction (the row is locked where the database can), so a takeover either comes
        before and fences the write off, or after it."""
        fence = current_fence()
        if fence is None:
            return
        row = conn.execute(
            select(_OP.lease_owner, _OP.version, _OP.step, _OP.attempt)
            .where(_OP.id == fence.operation_id)
            .with_for_update()
        ).first()
        if row is None or (row.lease_owner, row.version, row.step, row.attempt) != (
            fence.owner, fence.version, fence.step, fence.attempt
        ):
            raise LeaseLost(
                f"operation {fence.operation_id}: {fence.owner!r} no longer holds the lease at "
                f"version {fence.version} with step {fence.step!r} attempt {fence.attempt} in "
                "flight; the step's store write is fenced off"
            )

    def _require_gateway(self, conn: Connection, uid: str) -> None:
        if conn.execute(select(_GW.uid).where(_GW.uid == uid)).first() is None:
            raise RecordNotFound(
                f"gateway with uid {uid} is not in the store; upsert_gateway first"
            )

    def list_certificates(self, *, gateway_uid: str | None = None) -> list[CertificateRecord]:
        stmt = select(certificates).order_by(_CERT.gateway_uid, _CERT.listener, _CERT.object_name)
        if gateway_uid is not None:
            stmt = stmt.where(_CERT.gateway_uid == gateway_uid)
        with self._tx(write=False) as conn:
            return [_certificate(r) for r in conn.execute(stmt).mappings()]

    def certificate_expiries(self) -> dict[str, tuple[datetime | None, datetime | None]]:
        """Per gateway uid: the earliest notAfter and the earliest renewal time of its attached
        certificates, in one aggregate query (what ``bifrost-admin gateways`` shows)."""
        stmt = (
            select(_CERT.gateway_uid, func.min(_CERT.not_after), func.min(_CERT.renewal_at))
            .where(_CERT.attached.is_(True))
            .group_by(_CERT.gateway_uid)
        )
        with self._tx(write=False) as conn:
            return {uid: (not_after, renewal) for uid, not_after, renewal in conn.execute(stmt)}

    def delete_certificate(self, gateway_uid: str, object_name: str) -> None:
        """A no-op when the certificate is not recorded."""
        with self._tx(write=True) as conn:
            self._check_fence(conn)
            conn.execute(
                delete(certificates).where(
                    _CERT.gateway_uid == gateway_uid, _CERT.object_name == object_name
                )
            )

    def due_renewals(
        self, *, before: datetime | None = None, limit: int = 1000
    ) -> list[CertificateRecord]:
        """Attached certificates with a renewal time, earliest first; with ``before``, only those
        whose renewal_at <= before."""
        conditions: list[ColumnElement[bool]] = [
            _CERT.attached.is_(True),
            _CERT.renewal_at.is_not(None),
        ]
        if before is not None:
            conditions.append(_CERT.renewal_at <= before)
        stmt = (
            select(certificates)
            .where(and_(*conditions))
            .order_by(_CERT.renewal_at, _CERT.gateway_uid, _CERT.object_name)
            .limit(limit)
        )
        with self._tx(write=False) as conn:
            return [_certificate(r) for r in conn.execute(stmt).mappings()]

    # --- child inventory ------------------------------------------------------------------------
    def upsert_child(self, record: ChildRecord) -> ChildRecord:
        """Insert or replace by (gateway_uid, child_id, route_key). RecordNotFound if the gateway is
        unknown."""
        values: dict[str, Any] = {
            "gateway_uid": record.gateway_uid,
            "child_id": record.child_id,
            "route_key": record.route_key or "",
            "api_version": record.api_version,
            "kind": record.kind,
            "namespace": record.namespace,
            "name": record.name,
            "uid": record.uid,
            "applied_hash": record.applied_hash,
            "ready": record.ready,
            "delete_order": record.delete_order,
            "updated_at": record.updated_at,
        }
        key = ("gateway_uid", "child_id", "route_key")
        stmt = self._backend.insert(children).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_CH.gateway_uid, _CH.child_id, _CH.route_key],
            set_={k: v for k, v in values.items() if k not in key},
        )
        with self._tx(write=True) as conn:
            self._check_fence(conn)
            self._require_gateway(conn, record.gateway_uid)
            conn.execute(stmt)
            row = (
                conn.execute(
                    select(children).where(
                        _CH.gateway_uid == record.gateway_uid,
                        _CH.child_id == record.child_id,
                        _CH.route_key == values["route_key"],
                    )
                )
                .mappings()
                .one()
            )
            return _child(row)

    def list_children(self, gateway_uid: str) -> list[ChildRecord]:
        """A gateway's children by delete_order, then child_id, then route_key."""
        stmt = (
            select(children)
            .where(_CH.gateway_uid == gateway_uid)
            .order_by(_CH.delete_order, _CH.child_id, _CH.route_key)
        )
        with self._tx(write=False) as conn:
            return [_child(r) for r in conn.execute(stmt).mappings()]

    def delete_child(
        self, gateway_uid: str, child_id: str, *, route_key: str | None = None
    ) -> None:
        """A no-op when the child is not recorded."""
        with self._tx(write=True) as conn:
            self._check_fence(conn)
            conn.execute(
                delete(children).where(
                    _CH.gateway_uid == gateway_uid,
                    _CH.child_id == child_id,
                    _CH.route_key == (route_key or ""),
                )
            )


__all__ = ["SqlStore"]


def _conforms(store: SqlStore) -> OperationStore:
    """Type-check only: ``SqlStore`` satisfies the ``OperationStore`` Protocol."""
    return store
