"""Gateways in SQL: the record of each Gateway (by uid) the controller has seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, func, select, update

from bifrost.records import GatewayRecord
from bifrost.store.errors import RecordNotFound
from bifrost.store.sql.database import Database, to_record
from bifrost.store.sql.tables import certificates, children, gateways, journal, operations

_GW = gateways.c


def require_gateway(conn: Connection, uid: str) -> None:
    """RecordNotFound unless the gateway is recorded (for rows keyed by it)."""
    if conn.execute(select(_GW.uid).where(_GW.uid == uid)).first() is None:
        raise RecordNotFound(
            f"gateway with uid {uid} is not in the store; upsert_gateway first"
        )


def _fetch(conn: Connection, uid: str) -> GatewayRecord:
    row = conn.execute(select(gateways).where(_GW.uid == uid)).mappings().first()
    if row is None:
        raise RecordNotFound(f"gateway with uid {uid} is not in the store")
    return to_record(GatewayRecord, row)


class SqlGateways:
    """``GatewayRepository`` in SQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

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
        stmt = self._db.backend.insert(gateways).values(
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
        with self._db.transaction(write=True) as conn:
            conn.execute(stmt)
            return _fetch(conn, uid)

    def get_gateway(self, uid: str) -> GatewayRecord:
        with self._db.transaction(write=False) as conn:
            return _fetch(conn, uid)

    def find_gateways(self, namespace: str, name: str) -> list[GatewayRecord]:
        stmt = (
            select(gateways)
            .where(_GW.namespace == namespace, _GW.name == name)
            .order_by(_GW.created_at.desc(), _GW.uid)
        )
        with self._db.transaction(write=False) as conn:
            return [to_record(GatewayRecord, r) for r in conn.execute(stmt).mappings()]

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
        with self._db.transaction(write=False) as conn:
            return [to_record(GatewayRecord, r) for r in conn.execute(stmt).mappings()]

    def set_gateway_state(
        self,
        uid: str,
        *,
        lifecycle_state: str,
        now: datetime,
        last_error: str | None = None,
        deleted_at: datetime | None = None,
    ) -> GatewayRecord:
        with self._db.transaction(write=True) as conn:
            result = conn.execute(
                update(gateways)
                .where(_GW.uid == uid)
                .values(lifecycle_state=lifecycle_state, last_error=last_error,
                        deleted_at=deleted_at, updated_at=now)
            )
            if result.rowcount != 1:
                raise RecordNotFound(f"gateway with uid {uid} is not in the store")
            return _fetch(conn, uid)

    def record_input_hash(self, uid: str, input_hash: str | None, *, now: datetime) -> None:
        """One UPDATE; RecordNotFound (and nothing written) for an unknown uid."""
        with self._db.transaction(write=True) as conn:
            result = conn.execute(
                update(gateways)
                .where(_GW.uid == uid)
                .values(input_hash=input_hash, updated_at=now)
            )
            if result.rowcount != 1:
                raise RecordNotFound(f"gateway with uid {uid} is not in the store")

    def delete_gateway(self, uid: str) -> None:
        """Remove a gateway and everything keyed by it; a no-op for an unknown uid."""
        with self._db.transaction(write=True) as conn:
            _delete_gateways(conn, [uid])

    def purge_deleted_gateways(
        self, *, before: datetime, limit: int = 500
    ) -> list[GatewayRecord]:
        """Remove up to ``limit`` gateways deleted before ``before`` (oldest first) and
        everything keyed by them, in one transaction; returns their records as they were."""
        stmt = (
            select(gateways)
            .where(_GW.deleted_at.is_not(None), _GW.deleted_at < before)
            .order_by(_GW.deleted_at, _GW.uid)
            .limit(limit)
        )
        with self._db.transaction(write=True) as conn:
            purged = [to_record(GatewayRecord, r) for r in conn.execute(stmt).mappings()]
            _delete_gateways(conn, [g.uid for g in purged])
            return purged


def _delete_gateways(conn: Connection, uids: list[str]) -> None:
    if not uids:
        return
    # Explicit, child tables first: correct even where foreign keys are not enforced.
    conn.execute(delete(journal).where(journal.c.gateway_uid.in_(uids)))
    conn.execute(delete(operations).where(operations.c.gateway_uid.in_(uids)))
    conn.execute(delete(certificates).where(certificates.c.gateway_uid.in_(uids)))
    conn.execute(delete(children).where(children.c.gateway_uid.in_(uids)))
    conn.execute(delete(gateways).where(_GW.uid.in_(uids)))
