"""The journal: every write to an operation appends its rows here; read back and pruned.

Rows are appended only inside the transaction that wrote their operation (``append_journal``
after an INSERT or UPDATE of the operation row, or the fenced write in ``fencing.py``), so the
operation row is locked and its ``last_sequence`` counter gives the next sequences.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, delete, select, update

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
