"""Operations in SQL: creating, claiming and stepping them, and the operator's transitions.

Each public method is one transaction. The engine's hot path (claim, begin/finish a step, renew
a lease) runs statements built once; its writes are fenced (``fencing.py``).
``finish_step(begin_next=…)`` folds the next step's write-ahead into the same commit, so an
operation running step after step costs one commit per step.

The engine's bookkeeping (``EngineBookkeeping``) has one ``engine_*`` column per field on the
operation row, written by the same fenced UPDATE as the state and context it belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    RowMapping,
    String,
    and_,
    bindparam,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from bifrost.records import (
    ACTIVE_STATUSES,
    EngineBookkeeping,
    JournalOutcome,
    NewOperation,
    OperationRecord,
    OperationStatus,
    StepStart,
)
from bifrost.store.errors import OperationConflict, RecordNotFound
from bifrost.store.fence import StepFence
from bifrost.store.sql.database import Database, dump_json, load_json_object, to_record
from bifrost.store.sql.fencing import FencedWriter, check_lease, extend_lease
from bifrost.store.sql.journal import (
    append_journal,
    journal_entry,
    merge_wait,
    mergeable_wait,
)
from bifrost.store.sql.tables import (
    CLAIMABLE_STATUS_SQL,
    UTCDateTime,
    gateways,
    journal,
    operations,
)

_OP = operations.c
_J = journal.c
_BOOKKEEPING_COLUMN = "engine_"


def _bookkeeping(row: RowMapping) -> EngineBookkeeping:
    raw_input = row["engine_input"]
    return to_record(
        EngineBookkeeping,
        {name[len(_BOOKKEEPING_COLUMN):]: value for name, value in row.items()
         if name.startswith(_BOOKKEEPING_COLUMN)},
        input=load_json_object(raw_input),
        input_raw=raw_input,
        wait_on=_wait_on(row["engine_wait_on"]),
    )


def _wait_on(raw: str | None) -> tuple[str, ...]:
    """The stored wait keys (unreadable or none: nothing to wake on, the recheck still runs)."""
    if not raw:
        return ()
    try:
        value = json.loads(raw)
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def bookkeeping_values(bookkeeping: EngineBookkeeping | None) -> dict[str, Any]:
    """The ``engine_*`` columns of ``bookkeeping`` (None: nothing remembered)."""
    kept = bookkeeping or EngineBookkeeping()
    values = kept.model_dump(exclude={"input", "input_raw"})
    values["input"] = (
        None if kept.input is None else dump_json(kept.input, what="engine step input")
    )
    values["wait_on"] = dump_json(list(kept.wait_on), what="wait keys") if kept.wait_on else None
    return {f"{_BOOKKEEPING_COLUMN}{name}": value for name, value in values.items()}


def operation_record(row: RowMapping) -> OperationRecord:
    raw = row["context"]
    return to_record(
        OperationRecord,
        row,
        context=load_json_object(raw),
        context_raw=raw,
        bookkeeping=_bookkeeping(row),
    )


_SELECT = select(operations).where(_OP.id == bindparam("id"))
# finish_step without ``started``: the attempt in flight and its write-ahead's time.
_STARTED_AT = (
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
_IN_FLIGHT = select(_OP.step, _OP.attempt, _STARTED_AT.label("started_at")).where(
    _OP.id == bindparam("id")
)


def _fetch(conn: Connection, operation_id: int) -> OperationRecord:
    row = conn.execute(_SELECT, {"id": operation_id}).mappings().first()
    if row is None:
        raise RecordNotFound(f"operation {operation_id} does not exist")
    return operation_record(row)


class SqlOperations:
    """``OperationRepository`` in SQL."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._fenced = FencedWriter(db.backend)
        # claim_due is the hot path: its statements are built once. Never-scheduled operations
        # first (by id), then scheduled ones by due time; each query walks ix_operations_due.
        now = bindparam("now", type_=UTCDateTime())
        lease_free = or_(_OP.lease_owner.is_(None), _OP.lease_expires_at <= now)
        self._claim_unscheduled = db.backend.lock_due(
            select(_OP.id)
            .where(text(CLAIMABLE_STATUS_SQL), _OP.next_run_at.is_(None), lease_free)
            .order_by(_OP.id)
            .limit(bindparam("limit", type_=Integer()))
        )
        self._claim_scheduled = db.backend.lock_due(
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

    def create_operation(self, new: NewOperation, *, now: datetime, actor: str) -> OperationRecord:
        """Insert a pending operation and its 'created' journal row.

        The gateway row is created (lifecycle ``pending``) if the store does not know the uid yet;
        an existing one is left as it is.
        """
        context = dump_json(new.context, what="operation context")
        try:
            with self._db.transaction(write=True) as conn:
                conn.execute(
                    self._db.backend.insert(gateways)
                    .values(
                        uid=new.gateway_uid,
                        namespace=new.namespace,
                        name=new.name,
                        lifecycle_state="pending",
                        created_at=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=[gateways.c.uid])
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
                        **bookkeeping_values(None),
                    )
                    .returning(_OP.id)
                ).scalar_one()
                append_journal(
                    conn,
                    operation_id,
                    journal_entry(
                        state=new.state,
                        step=None,
                        attempt=0,
                        outcome=JournalOutcome.TRANSITION,
                        message="created",
                        actor=actor,
                        started_at=now,
                        finished_at=now,
                    ),
                )
                return _fetch(conn, operation_id)
        except IntegrityError as exc:
            raise OperationConflict(
                f"gateway {new.namespace}/{new.name} (uid {new.gateway_uid}) already has an "
                f"active operation in lane {new.lane!r}"
            ) from exc

    def get_operation(self, operation_id: int) -> OperationRecord:
        with self._db.transaction(write=False) as conn:
            return _fetch(conn, operation_id)

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
        with self._db.transaction(write=False) as conn:
            return [operation_record(r) for r in conn.execute(stmt).mappings()]

    def active_operation(self, gateway_uid: str, lane: str = "default") -> OperationRecord | None:
        stmt = select(operations).where(
            _OP.gateway_uid == gateway_uid,
            _OP.lane == lane,
            _OP.status.in_([s.value for s in ACTIVE_STATUSES]),
        )
        with self._db.transaction(write=False) as conn:
            row = conn.execute(stmt).mappings().first()
            return None if row is None else operation_record(row)

    def claim_due(
        self, *, owner: str, now: datetime, lease_for: timedelta, limit: int = 1
    ) -> list[OperationRecord]:
        """Atomically take up to ``limit`` due operations (earliest next_run_at first, never-
        scheduled ones first of all, then by id)."""
        if limit < 1:
            return []
        with self._db.transaction(write=True) as conn:
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
            return [operation_record(rows[i]) for i in ids]

    def renew_lease(
        self, operation_id: int, *, owner: str, version: int, now: datetime, lease_for: timedelta
    ) -> OperationRecord:
        with self._db.transaction(write=True) as conn:
            row = self._fenced.write(
                conn,
                operation_id,
                owner=owner,
                version=version,
                now=now,
                values={"lease_expires_at": now + lease_for},
            )
            return operation_record(row)

    def wake_waiting(self, gateway_uid: str, *, key: str | None, now: datetime) -> int:
        """Waiting operations that wait on ``key`` (any, when None) become due now. An
        operation of the gateway whose step is running (``next_run_at`` is cleared while a
        step runs) is marked woken too, whatever it will wait on: the step may have read what
        changed just before the change, and if it then waits, its commit keeps the wake
        (``finish_step``) instead of sleeping through it until the safety-net recheck."""
        waiting = and_(_OP.status == OperationStatus.WAITING.value, _OP.next_run_at > now)
        if key is not None:
            # engine_wait_on is the compact JSON list the runner wrote: match one whole element
            waiting = and_(
                waiting, _OP.engine_wait_on.contains(json.dumps(key), autoescape=True))
        running = and_(_OP.status == OperationStatus.RUNNING.value, _OP.next_run_at.is_(None))
        stmt = update(operations).where(_OP.gateway_uid == gateway_uid, or_(waiting, running))
        with self._db.transaction(write=True) as conn:
            return int(conn.execute(stmt.values(next_run_at=now)).rowcount)

    def check_step_lease(self, fence: StepFence, *, now: datetime) -> None:
        """LeaseLost unless ``fence``'s runner still holds the operation (same owner, version
        and step attempt in flight, lease not expired at ``now``). When less than half of the
        fence's ``lease_for`` is left it is extended to ``now + lease_for`` (a step writing the
        cluster for long keeps its operation; one that stopped writing loses it in time)."""
        with self._db.transaction(write=False) as conn:
            expires = check_lease(conn, fence, now=now)
        if fence.lease_for is None or expires - now >= fence.lease_for / 2:
            return
        with self._db.transaction(write=True) as conn:
            extend_lease(conn, fence, now=now, until=now + fence.lease_for)

    def database_time(self) -> datetime:
        """The database server's clock now (UTC): PostgreSQL's ``clock_timestamp()``; SQLite's
        is the clock of the host the file is on, this one."""
        with self._db.transaction(write=False) as conn:
            if self._db.backend.name == "postgresql":
                value = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
                return value.astimezone(UTC)  # type: ignore[no-any-return]
            raw = conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
            return datetime.fromisoformat(str(raw)).replace(tzinfo=UTC)

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
        with self._db.transaction(write=True) as conn:
            row = self._fenced.write(
                conn,
                operation_id,
                owner=owner,
                version=version,
                now=now,
                values={
                    "status": OperationStatus.RUNNING.value,
                    "step": step,
                    "attempt": attempt,
                    "next_run_at": None,  # while it runs; a wake meanwhile sets it
                },
                journal_entries=[
                    journal_entry(
                        state=None,  # the operation's (unchanged) state
                        step=step,
                        attempt=attempt,
                        outcome=JournalOutcome.STARTED,
                        actor=owner,
                        started_at=now,
                    )
                ],
            )
            return operation_record(row)

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
        """Commit a step's outcome with its journal row (and, with ``begin_next``, the next
        step's write-ahead: a STARTED row right after it).

        The journal row carries the step/attempt that was in flight, the new ``state``, and
        ``started_at`` of the matching STARTED row: from ``started`` when given (then the write
        is also fenced on that step/attempt), else looked up (``now`` when there is none).

        A WAIT identical to the operation's previous journaled wait (same state, step and
        message, and nothing journaled since but this attempt's own STARTED row) is merged into
        that row (``repeats`` + 1, ``last_at``) and the attempt's STARTED
        row is folded away, so a step that waits again and again is one row.
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
        values: dict[str, Any] = {
            "state": state,
            "status": status.value,
            "context": dump_json(context, what="operation context"),
            "next_run_at": next_run_at,
            "last_error": last_error,
            "finished_at": now if status.terminal else None,
            **bookkeeping_values(bookkeeping),
        }
        if begin_next is not None:
            values.update(step=begin_next[0], attempt=begin_next[1])
        elif outcome in (JournalOutcome.DONE, JournalOutcome.FAILED):
            values.update(step=None, attempt=0)
        if release_lease:
            values.update(lease_owner=None, lease_expires_at=None)
        with self._db.transaction(write=True) as conn:
            if started is not None:
                step: str | None = started.step
                attempt, started_at = started.attempt, started.started_at
            else:
                before = conn.execute(_IN_FLIGHT, {"id": operation_id}).first()
                # No row: the fenced update below raises LeaseLost.
                step, attempt = (before.step, before.attempt) if before else (None, 0)
                started_at = before.started_at if before and before.started_at else now
            entries = [
                journal_entry(
                    state=state,
                    step=step,
                    attempt=attempt,
                    outcome=outcome,
                    message=message,
                    output=output,
                    actor=owner,
                    started_at=started_at,
                    finished_at=now,
                )
            ]
            merge = None
            if outcome is JournalOutcome.WAIT and begin_next is None and step is not None:
                merge = mergeable_wait(conn, operation_id, state=state, step=step,
                                       attempt=attempt, message=message)
            if merge is not None:
                row = self._fenced.write(
                    conn, operation_id, owner=owner, version=version, now=now, values=values,
                    in_flight=started, retract=1, keep_wake=True,
                )
                merge_wait(conn, merge, now=now)
                return operation_record(row)
            if begin_next is not None:
                entries.append(
                    journal_entry(
                        state=state,
                        step=begin_next[0],
                        attempt=begin_next[1],
                        outcome=JournalOutcome.STARTED,
                        actor=owner,
                        started_at=now,
                    )
                )
            row = self._fenced.write(
                conn,
                operation_id,
                owner=owner,
                version=version,
                now=now,
                values=values,
                in_flight=started,
                journal_entries=entries,
                keep_wake=outcome is JournalOutcome.WAIT,
            )
            return operation_record(row)

    def fail_operation(
        self, operation_id: int, *, now: datetime, message: str, actor: str
    ) -> OperationRecord:
        """Mark an active operation failed without a lease (poison operations).

        Raises RecordNotFound for an unknown id and OperationConflict when it is already
        terminal.
        """
        with self._db.transaction(write=True) as conn:
            current = _fetch(conn, operation_id)
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
            append_journal(
                conn,
                operation_id,
                journal_entry(
                    state=current.state,
                    step=current.step,
                    attempt=current.attempt,
                    outcome=JournalOutcome.FAILED,
                    message=message,
                    actor=actor,
                    started_at=now,
                    finished_at=now,
                ),
            )
            return _fetch(conn, operation_id)

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
        """Pause / resume / cancel / retry (see the Protocol). ``next_run_at`` is written as given
        (None: due now). ``reset_attempt`` sets attempt to 0 and keeps ``step``. A terminal target
        status sets ``finished_at``, an active one clears it. Moving a finished operation back to
        an active status while its lane is taken raises OperationConflict."""
        status = OperationStatus(status)
        expected = [OperationStatus(s).value for s in expected_statuses]
        try:
            with self._db.transaction(write=True) as conn:
                current = _fetch(conn, operation_id)
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
                where = [_OP.id == operation_id, _OP.status.in_(expected)]
                if expected_state is not None:
                    where.append(_OP.state == expected_state)
                result = conn.execute(update(operations).where(*where).values(**values))
                if result.rowcount != 1:
                    moved = (f" in state {current.state}, expected {expected_state}"
                             if expected_state is not None and current.state != expected_state
                             else "")
                    raise OperationConflict(
                        f"operation {operation_id} is {current.status.value}{moved}, expected "
                        f"one of {', '.join(expected) or '(none)'}; nothing changed"
                    )
                after = _fetch(conn, operation_id)
                append_journal(
                    conn,
                    operation_id,
                    journal_entry(
                        state=after.state,
                        step=after.step,
                        attempt=after.attempt,
                        outcome=JournalOutcome.ADMIN,
                        message=message,
                        output={"from": current.status.value, "to": status.value},
                        actor=actor,
                        started_at=now,
                        finished_at=now,
                    ),
                )
                return after
        except IntegrityError as exc:
            raise OperationConflict(
                f"operation {operation_id}: another operation is already active in its lane; "
                "finish or cancel that one first"
            ) from exc
