"""Builders of the records the store contract tests write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bifrost.records import CertificateRecord, ChildRecord

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def cert(uid: str, object_name: str, **kw: object) -> CertificateRecord:
    fields: dict[str, object] = {
        "gateway_uid": uid,
        "listener": "https",
        "object_name": object_name,
        "secret_name": f"{object_name}-tls",
        "serial": "01ab",
        "fingerprint_sha256": "ff" * 32,
        "dns_names": ("a.example", "*.b.example"),
        "not_before": T0,
        "not_after": T0 + timedelta(days=47),
        "renewal_at": T0 + timedelta(days=31),
        "attached": True,
        "state": "attached",
        "updated_at": T0,
    }
    fields.update(kw)
    return CertificateRecord.model_validate(fields)


def child(gateway_uid: str, child_id: str, **kw: object) -> ChildRecord:
    fields: dict[str, object] = {
        "gateway_uid": gateway_uid,
        "child_id": child_id,
        "api_version": "v1",
        "kind": "Service",
        "namespace": "ns",
        "name": f"gw-{child_id}",
        "uid": None,
        "applied_hash": "h1",
        "ready": False,
        "updated_at": T0,
    }
    fields.update(kw)
    return ChildRecord.model_validate(fields)
