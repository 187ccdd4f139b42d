"""Fencing in SQL: the engine's fenced write of an operation row, and the check that fences a
step's own writes (``bifrost.store.fence``).

The fenced write is a single ``UPDATE operations … WHERE id AND version AND lease_owner AND
lease_expires_at > now … RETURNING *`` that must return exactly one row, else ``LeaseLost`` and
the transaction is rolled back, so nothing else is written. The same statement bumps the
operation's journal sequence counter (``last_sequence``) by the number of journal rows the
transaction appends, so sequences are taken under the row lock (or SQLite's write lock) without
another statement, and the returned row is the new record without a re-read.

The statements are built once per shape and cached (SQLAlchemy then reuses their compiled
form): a step write is the fenced UPDATE … RETURNING plus one journal INSERT (SQLite), or a
single statement (PostgreSQL: the INSERT rides in a writable CTE of the UPDATE, one round trip).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    Integer,
    RowMapping,
    String,
    bindparam,
    cast,
    func,
    insert,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.sql.expression import Executable

from bifrost.records import StepStart
from bifrost.store.errors import LeaseLost
from bifrost.store.fence import StepFence, current_fence
from bifrost.store.sql.backend import Backend
from bifrost.store.sql.journal import INSERT as JOURNAL_INSERT
from bifrost.store.sql.journal import JOURNAL_ENTRY
from bifrost.store.sql.tables import UTCDateTime, journal, operations

_OP = operations.c


def _journal_value(updated: CTE, param: str, column: str) -> ColumnElement[Any]:
    """A journal value bound as ``param``, cast to its column type (an INSERT … SELECT of bare
    parameters leaves PostgreSQL guessing); a NULL ``state`` means the operation's state."""
    bound = cast(bindparam(param, type_=journal.c[column].type), journal.c[column].type)
    return func.coalesce(bound, updated.c.state) if column == "state" else bound


class FencedWriter:
    """Runs fenced writes on a backend, building each shape of statement once."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._cache: dict[tuple[tuple[str, ...], int, bool, int, bool], Executable] = {}

    def _statement(
        self, columns: tuple[str, ...], journal_rows: int, in_flight: bool, retract: int = 0,
        keep_wake: bool = False,
    ) -> Executable:
        """``UPDATE operations … RETURNING *`` setting ``columns`` (bound as ``v_<column>``),
        bumping version and the journal sequence counter by ``journal_rows`` (less ``retract``:
        rows the caller removes from the journal's tail in the same transaction); with
        ``in_flight`` it also requires the step/attempt in flight to be ``f_step``/``f_attempt``.
        With ``keep_wake`` a ``next_run_at`` already on the row (a wake that came while the
        step ran, see ``wake_waiting``) is kept instead of the one written. Where the backend
        has writable CTEs the journal rows (bound as ``j<k>_<column>``) are inserted by the
        same statement."""
        key = (columns, journal_rows, in_flight, retract, keep_wake)
        stmt = self._cache.get(key)
        if stmt is not None:
            return stmt
        now = bindparam("f_now", type_=UTCDateTime())
        conditions: list[ColumnElement[bool]] = [
            _OP.id == bindparam("f_id", type_=_OP.id.type),
            _OP.version == bindparam("f_version", type_=_OP.version.type),
            _OP.lease_owner == bindparam("f_owner", type_=String()),
            _OP.lease_expires_at > now,
        ]
        if in_flight:
            conditions += [
                _OP.step == bindparam("f_step", type_=String()),
                _OP.attempt == bindparam("f_attempt", type_=Integer()),
            ]
        values: dict[str, Any] = {
            name: bindparam(f"v_{name}", type_=_OP[name].type) for name in columns
        }
        if keep_wake and "next_run_at" in values:
            values["next_run_at"] = func.coalesce(_OP.next_run_at, values["next_run_at"])
        values.update(version=_OP.version + 1, updated_at=now)
        if journal_rows != retract:
            values["last_sequence"] = _OP.last_sequence + (journal_rows - retract)
        fenced = update(operations).where(*conditions).values(**values).returning(*operations.c)
        if not journal_rows or not self._backend.writable_ctes:
            self._cache[key] = fenced
            return fenced
        updated = fenced.cte("fenced")
        sources = [
            select(
                updated.c.id,
                updated.c.gateway_uid,
                (updated.c.last_sequence - (journal_rows - 1 - k)).label("sequence"),
                *(_journal_value(updated, f"j{k}_{name}", name) for name in JOURNAL_ENTRY),
            )
            for k in range(journal_rows)
        ]
        appended = insert(journal).from_select(
            ["operation_id", "gateway_uid", "sequence", *JOURNAL_ENTRY],
            # ORDER BY: the rows take their ids in sequence order, as separate inserts would.
            sources[0] if journal_rows == 1 else union_all(*sources).order_by(text("sequence")),
        )
        combined = select(updated).add_cte(appended.cte("appended"))
        self._cache[key] = combined
        return combined

    def write(
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
        retract: int = 0,
        keep_wake: bool = False,
    ) -> RowMapping:
        """One fenced write, with the journal rows it appends (``journal_entry`` values; they
        get the next sequences, in order); the operation's new row. LeaseLost when fenced off
        (then nothing was written). ``retract``: how many rows at the journal's tail the caller
        deletes in this transaction (a merged wait folds its write-ahead row away), so the
        sequence counter goes back by as many and sequences keep having no gaps."""
        if retract and journal_entries:
            raise ValueError("a fenced write either appends journal rows or retracts them")
        rows = len(journal_entries)
        stmt = self._statement(tuple(values), rows, in_flight is not None, retract, keep_wake)
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
                JOURNAL_INSERT,
                [
                    dict(entry, operation_id=operation_id, gateway_uid=row["gateway_uid"],
                         sequence=first + k, state=entry["state"] or row["state"])
                    for k, entry in enumerate(journal_entries)
                ],
            )
        return row


def check_lease(conn: Connection, fence: StepFence, *, now: datetime) -> datetime:
    """Before a step's cluster write: LeaseLost unless the runner still holds the operation at
    the version, step and attempt it began **and** the lease has not expired at ``now`` (the
    runner's clock, which in production follows the database's, see
    ``bifrost.engine.database_clock``). A read: nothing is locked or written. Returns when the
    lease expires."""
    row = conn.execute(
        select(_OP.lease_owner, _OP.version, _OP.step, _OP.attempt, _OP.lease_expires_at)
        .where(_OP.id == fence.operation_id)
    ).first()
    held = row is not None and (row.lease_owner, row.version, row.step, row.attempt) == (
        fence.owner, fence.version, fence.step, fence.attempt
    )
    if row is None or not held:
        raise LeaseLost(
            f"operation {fence.operation_id}: {fence.owner!r} no longer holds the lease at "
            f"version {fence.version} with step {fence.step!r} attempt {fence.attempt} in "
            "flight; the step's cluster write is fenced off"
        )
    expires: datetime | None = row.lease_expires_at
    if expires is not None and expires.tzinfo is None:  # SQLite reads back naive UTC
        expires = expires.replace(tzinfo=UTC)
    if expires is None or expires <= now:
        raise LeaseLost(
            f"operation {fence.operation_id}: the lease of {fence.owner!r} expired at "
            f"{expires.isoformat() if expires else 'an unknown time'} (now "
            f"{now.isoformat()}); the step's cluster write is fenced off"
        )
    return expires


def extend_lease(conn: Connection, fence: StepFence, *, now: datetime,
                 until: datetime) -> None:
    """Move the lease's expiry to ``until`` while the fence's runner still holds it unexpired
    (owner, version, step attempt as begun). The version is not bumped: the holder does not
    change, so nothing a fence compares changes. LeaseLost when it is not held any more."""
    result = conn.execute(
        update(operations)
        .where(
            _OP.id == fence.operation_id, _OP.lease_owner == fence.owner,
            _OP.version == fence.version, _OP.step == fence.step,
            _OP.attempt == fence.attempt, _OP.lease_expires_at > now,
            _OP.lease_expires_at < until,
        )
        .values(lease_expires_at=until)
    )
    if result.rowcount != 1:
        check_lease(conn, fence, now=now)  # lost: raises with the reason; else extended already


def check_step_fence(conn: Connection) -> None:
    """Inside a step (``bifrost.store.fence``): LeaseLost unless its runner still holds the
    operation at the version, step and attempt it began; checked in the write's own
    transaction (the row is locked where the database can), so a takeover either comes
    before and fences the write off, or after it. Like a cluster write's check, it extends an
    unexpired lease with less than half of the fence's ``lease_for`` left (same version)."""
    fence = current_fence()
    if fence is None:
        return
    row = conn.execute(
        select(_OP.lease_owner, _OP.version, _OP.step, _OP.attempt, _OP.lease_expires_at)
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
    expires: datetime | None = row.lease_expires_at
    if fence.now is None or fence.lease_for is None or expires is None:
        return
    if expires.tzinfo is None:  # SQLite reads back naive UTC
        expires = expires.replace(tzinfo=UTC)
    now = fence.now()
    if now < expires and expires - now < fence.lease_for / 2:
        extend_lease(conn, fence, now=now, until=now + fence.lease_for)
