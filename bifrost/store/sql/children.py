"""The child inventory in SQL: each resource bifrost applied for a gateway.

``route_key`` is part of the key and SQL unique keys ignore NULLs, so "no route" is stored as
``''`` and read back as ``None``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, delete, select

from bifrost.records import ChildRecord
from bifrost.store.sql.database import Database, to_record
from bifrost.store.sql.fencing import check_step_fence
from bifrost.store.sql.gateways import require_gateway
from bifrost.store.sql.tables import children

_CH = children.c
_KEY = ("gateway_uid", "child_id", "route_key")


def child_record(row: RowMapping) -> ChildRecord:
    return to_record(ChildRecord, row, route_key=row["route_key"] or None)


class SqlChildren:
    """``ChildRepository`` in SQL. Its writes are fenced inside a step."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def upsert_child(self, record: ChildRecord) -> ChildRecord:
        """Insert or replace by (gateway_uid, child_id, route_key). RecordNotFound if the
        gateway is unknown."""
        values: dict[str, Any] = record.model_dump()
        values["route_key"] = record.route_key or ""
        stmt = self._db.backend.insert(children).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_CH[k] for k in _KEY],
            set_={k: v for k, v in values.items() if k not in _KEY},
        )
        with self._db.transaction(write=True) as conn:
            check_step_fence(conn)
            require_gateway(conn, record.gateway_uid)
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
            return child_record(row)

    def list_children(self, gateway_uid: str) -> list[ChildRecord]:
        """A gateway's children by delete_order, then child_id, then route_key."""
        stmt = (
            select(children)
            .where(_CH.gateway_uid == gateway_uid)
            .order_by(_CH.delete_order, _CH.child_id, _CH.route_key)
        )
        with self._db.transaction(write=False) as conn:
            return [child_record(r) for r in conn.execute(stmt).mappings()]

    def child_kinds(self) -> set[tuple[str, str]]:
        stmt = select(_CH.api_version, _CH.kind).distinct()
        with self._db.transaction(write=False) as conn:
            return {(str(r.api_version), str(r.kind)) for r in conn.execute(stmt)}

    def delete_child(
        self, gateway_uid: str, child_id: str, *, route_key: str | None = None
    ) -> None:
        """A no-op when the child is not recorded."""
        with self._db.transaction(write=True) as conn:
            check_step_fence(conn)
            conn.execute(
                delete(children).where(
                    _CH.gateway_uid == gateway_uid,
                    _CH.child_id == child_id,
                    _CH.route_key == (route_key or ""),
                )
            )
