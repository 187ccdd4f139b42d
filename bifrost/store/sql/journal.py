"""The journal: every write to an operation appends its rows here; read back and pruned.

Rows are appended only inside the transaction that wrote their operation (``append_journal``
after an INSERT or UPDATE of the operation row, or the fenced write in ``fencing.py``), so the
operation row is locked and its ``last_sequence`` counter gives the next sequences.

One exception keeps a waiting operation's journal small: a wait identical to the previous
journaled wait (``mergeable_wait``) updates that row instead (``merge_wait``: ``repeats`` + 1,
``last_at``; it keeps the first wait's attempt) and removes the write-ahead STARTED row of the
attempt that waited again, in the same fenced transaction that moves the sequence counter back
by one, so sequences stay gapless.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, delete, func, select, update

from bifrost.records import JournalOutcome, JournalRecord
from bifrost.store.sql.database import Database, dump_json, load_json_object, to_record
from bifrost.store.sql.tables import journal, operations

_J = journal.c
_OP = operations.c

#: The journal columns a writer supplies, in insert order; the rest come from the operation.
JOURNAL_ENTRY = (
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

INSERT = journal.insert()
_BUMP_SEQUENCE = (
    update(operations)
    .where(_OP.id == bindparam("b_id"))
    .values(last_sequence=_OP.last_sequence + 1)
    .returning(_OP.last_sequence, _OP.gateway_uid)
)


def journal_entry(
    *,
    state: str | None,
    step: str | None,
    attempt: int,
    outcome: JournalOutcome,
    actor: str,
    started_at: datetime,
    message: str | None = None,
    output: dict[str, Any] | None = None,
    finished_at: datetime | None = None,
) -> dict[str, Any]:
    """A journal row's own values (``JOURNAL_ENTRY``); ``state`` None: the operation's state
    after the write."""
    return {
        "state": state,
        "step": step,
        "attempt": attempt,
        "outcome": outcome.value,
        "message": message,
        "output": None if output is None else dump_json(output, what="journal output"),
        "actor": actor,
        "started_at": started_at,
        "finished_at": finished_at,
    }


def append_journal(conn: Connection, operation_id: int, entry: dict[str, Any]) -> None:
    """Append one row (a ``journal_entry`` with its state given) with the operation's next
    sequence. Must run after the operation row was updated (or inserted) in this transaction."""
    row = conn.execute(_BUMP_SEQUENCE, {"b_id": operation_id}).mappings().one()
    conn.execute(
        INSERT,
        dict(
            entry,
            operation_id=operation_id,
            gateway_uid=row["gateway_uid"],
            sequence=row["last_sequence"],
        ),
    )


_TAIL = (
    select(_J.id, _J.state, _J.step, _J.attempt, _J.outcome, _J.message)
    .where(_J.operation_id == bindparam("t_id"))
    .order_by(_J.sequence.desc())
    .limit(2)
)


def mergeable_wait(
    conn: Connection, operation_id: int, *, state: str, step: str, attempt: int,
    message: str | None,
) -> tuple[int, int] | None:
    """``(wait row id, started row id)`` when a WAIT of ``step`` attempt ``attempt`` with
    ``message`` repeats the operation's previous journaled wait: the journal ends with that
    wait (same state, step and message) followed only by this attempt's own STARTED row."""
    rows = conn.execute(_TAIL, {"t_id": operation_id}).all()
    if len(rows) != 2:
        return None
    started, previous = rows
    if (started.outcome, started.step, started.attempt) != (
        JournalOutcome.STARTED.value, step, attempt
    ):
        return None
    if (previous.outcome, previous.state, previous.step, previous.message) != (
        JournalOutcome.WAIT.value, state, step, message
    ):
        return None
    return int(previous.id), int(started.id)


_MERGE = (
    update(journal)
    .where(_J.id == bindparam("m_id"))
    .values(repeats=_J.repeats + 1, last_at=bindparam("m_now", type_=_J.last_at.type))
)
_DROP = delete(journal).where(_J.id == bindparam("m_started"))


def merge_wait(conn: Connection, merge: tuple[int, int], *, now: datetime) -> None:
    """Fold a repeated wait into its previous row (see ``mergeable_wait``); run after the
    fenced write of the operation that retracted one sequence. The row keeps the attempt (and
    times) of the first wait, so it still pairs with that attempt's STARTED row; the attempt in
    flight is the operation row's."""
    wait_id, started_id = merge
    conn.execute(_MERGE, {"m_id": wait_id, "m_now": now})
    conn.execute(_DROP, {"m_started": started_id})


def journal_record(row: RowMapping) -> JournalRecord:
    return to_record(JournalRecord, row, output=load_json_object(row["output"]))


class SqlJournal:
    """``JournalRepository`` in SQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

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
        with self._db.transaction(write=False) as conn:
            return [journal_record(r) for r in conn.execute(stmt).mappings()]

    def journal_over(self, keep: int) -> list[str]:
        stmt = (select(_J.gateway_uid).group_by(_J.gateway_uid)
                .having(func.count() > keep).order_by(_J.gateway_uid))
        with self._db.transaction(write=False) as conn:
            return [str(uid) for uid in conn.execute(stmt).scalars()]

    def prune_journal(self, gateway_uid: str, *, keep: int) -> int:
        if keep < 0:
            raise ValueError("keep must be >= 0")
        with self._db.transaction(write=True) as conn:
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
