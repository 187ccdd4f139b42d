"""Certificates in SQL: what bifrost knows of each certificate it manages for a gateway."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, and_, case, delete, func, select

from bifrost.records import CertificateRecord
from bifrost.store.sql.database import Database, dump_json, to_record
from bifrost.store.sql.fencing import check_step_fence
from bifrost.store.sql.gateways import require_gateway
from bifrost.store.sql.tables import certificates

_CERT = certificates.c
_KEY = ("gateway_uid", "object_name")


def _dns_names(raw: str) -> tuple[str, ...]:
    """The stored JSON list of DNS names; empty when unreadable."""
    try:
        names = json.loads(raw)
    except (ValueError, TypeError):
        return ()
    return tuple(str(n) for n in names) if isinstance(names, list) else ()


def certificate_record(row: RowMapping) -> CertificateRecord:
    return to_record(CertificateRecord, row, dns_names=_dns_names(row["dns_names"]))


class SqlCertificates:
    """``CertificateRepository`` in SQL. Its writes are fenced inside a step."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def upsert_certificate(self, record: CertificateRecord) -> CertificateRecord:
        """Insert or replace by (gateway_uid, object_name). RecordNotFound if the gateway is
        unknown."""
        values: dict[str, Any] = record.model_dump()
        values["dns_names"] = dump_json(list(record.dns_names), what="dns_names")
        # attached_at is the store's: the first write that attaches it, kept while attached
        values["attached_at"] = record.updated_at if record.attached else None
        stmt = self._db.backend.insert(certificates).values(**values)
        update = {k: v for k, v in values.items() if k not in _KEY}
        if record.attached:
            update["attached_at"] = func.coalesce(
                case((_CERT.attached.is_(True), _CERT.attached_at)), record.updated_at)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_CERT[k] for k in _KEY],
            set_=update,
        )
        with self._db.transaction(write=True) as conn:
            check_step_fence(conn)
            require_gateway(conn, record.gateway_uid)
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
            return certificate_record(row)

    def list_certificates(self, *, gateway_uid: str | None = None) -> list[CertificateRecord]:
        stmt = select(certificates).order_by(_CERT.gateway_uid, _CERT.listener, _CERT.object_name)
        if gateway_uid is not None:
            stmt = stmt.where(_CERT.gateway_uid == gateway_uid)
        with self._db.transaction(write=False) as conn:
            return [certificate_record(r) for r in conn.execute(stmt).mappings()]

    def certificate_expiries(self) -> dict[str, tuple[datetime | None, datetime | None]]:
        """Per gateway uid: the earliest notAfter and the earliest renewal time of its attached
        certificates, in one aggregate query (what ``bifrost-admin gateways`` shows)."""
        stmt = (
            select(_CERT.gateway_uid, func.min(_CERT.not_after), func.min(_CERT.renewal_at))
            .where(_CERT.attached.is_(True))
            .group_by(_CERT.gateway_uid)
        )
        with self._db.transaction(write=False) as conn:
            return {uid: (not_after, renewal) for uid, not_after, renewal in conn.execute(stmt)}

    def delete_certificate(self, gateway_uid: str, object_name: str) -> None:
        """A no-op when the certificate is not recorded."""
        with self._db.transaction(write=True) as conn:
            check_step_fence(conn)
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
        with self._db.transaction(write=False) as conn:
            return [certificate_record(r) for r in conn.execute(stmt).mappings()]
