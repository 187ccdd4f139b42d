"""Store contract: gateways, certificates, child inventory and deleting a gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bifrost.records import CertificateRecord, ChildRecord, NewOperation
from bifrost.store import RecordNotFound, SqlStore

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


# --- gateways --------------------------------------------------------------------------------
def test_upsert_gateway_inserts_then_updates(store: SqlStore) -> None:
    gw = store.upsert_gateway(
        uid="u1", namespace="ns", name="gw", now=T0, gateway_class="public", generation=1
    )
    assert (gw.lifecycle_state, gw.gateway_class, gw.generation) == ("pending", "public", 1)
    assert gw.created_at == gw.updated_at == T0
    assert store.get_gateway("u1") == gw

    t = T0 + timedelta(minutes=1)
    store.set_gateway_state("u1", lifecycle_state="programmed", now=t)
    again = store.upsert_gateway(uid="u1", namespace="ns", name="gw", now=t, generation=2)
    # None keeps the stored class; state is untouched by upsert
    assert (again.gateway_class, again.generation, again.lifecycle_state) == (
        "public",
        2,
        "programmed",
    )
    assert (again.created_at, again.updated_at) == (T0, t)


def test_record_input_hash(store: SqlStore) -> None:
    gw = store.upsert_gateway(uid="u1", namespace="ns", name="gw", now=T0, generation=1)
    assert gw.input_hash is None
    t = T0 + timedelta(minutes=1)
    assert store.record_input_hash("u1", "a" * 64, now=t) is None
    got = store.get_gateway("u1")
    assert (got.input_hash, got.updated_at, got.generation) == ("a" * 64, t, 1)
    # upsert_gateway leaves it alone; the list and find reads carry it too
    again = store.upsert_gateway(uid="u1", namespace="ns", name="gw", now=t, generation=2)
    assert again.input_hash == "a" * 64
    assert [g.input_hash for g in store.find_gateways("ns", "gw")] == ["a" * 64]
    assert [g.input_hash for g in store.list_gateways()] == ["a" * 64]
    store.record_input_hash("u1", "b" * 64, now=t)
    assert store.get_gateway("u1").input_hash == "b" * 64
    store.record_input_hash("u1", None, now=t)
    assert store.get_gateway("u1").input_hash is None
    # an unknown gateway: RecordNotFound, nothing written
    with pytest.raises(RecordNotFound):
        store.record_input_hash("nope", "c" * 64, now=t)
    assert [g.uid for g in store.list_gateways()] == ["u1"]


def test_set_gateway_state_and_errors(store: SqlStore) -> None:
    store.upsert_gateway(uid="u1", namespace="ns", name="gw", now=T0)
    failed = store.set_gateway_state(
        "u1", lifecycle_state="degraded", now=T0, last_error="listener https: no certificate"
    )
    assert (failed.lifecycle_state, failed.last_error) == (
        "degraded",
        "listener https: no certificate",
    )
    ok = store.set_gateway_state("u1", lifecycle_state="programmed", now=T0)
    assert ok.last_error is None
    with pytest.raises(RecordNotFound):
        store.set_gateway_state("nope", lifecycle_state="x", now=T0)
    with pytest.raises(RecordNotFound):
        store.get_gateway("nope")


def test_find_gateways_returns_every_uid_of_a_name_newest_first(store: SqlStore) -> None:
    store.upsert_gateway(uid="old", namespace="ns", name="gw", now=T0)
    store.upsert_gateway(uid="new", namespace="ns", name="gw", now=T0 + timedelta(hours=1))
    store.upsert_gateway(uid="other", namespace="ns2", name="gw", now=T0)
    assert [g.uid for g in store.find_gateways("ns", "gw")] == ["new", "old"]
    assert store.find_gateways("ns", "missing") == []


def test_list_gateways_filters(store: SqlStore) -> None:
    store.upsert_gateway(uid="1", namespace="a", name="x", now=T0, gateway_class="public")
    store.upsert_gateway(uid="2", namespace="a", name="y", now=T0, gateway_class="internal")
    store.upsert_gateway(uid="3", namespace="b", name="x", now=T0, gateway_class="public")
    store.set_gateway_state("3", lifecycle_state="programmed", now=T0)
    assert [g.uid for g in store.list_gateways()] == ["1", "2", "3"]
    assert [g.uid for g in store.list_gateways(namespace="a")] == ["1", "2"]
    assert [g.uid for g in store.list_gateways(gateway_class="public")] == ["1", "3"]
    assert [g.uid for g in store.list_gateways(lifecycle_state="programmed")] == ["3"]
    assert [g.uid for g in store.list_gateways(limit=1)] == ["1"]


# --- certificates ----------------------------------------------------------------------------
def test_certificate_upsert_list_delete(store: SqlStore) -> None:
    store.upsert_gateway(uid="u1", namespace="ns", name="gw", now=T0)
    first = store.upsert_certificate(cert("u1", "gw-https-1"))
    assert first == cert("u1", "gw-https-1")
    assert first.dns_names == ("a.example", "*.b.example")

    updated = store.upsert_certificate(
        cert("u1", "gw-https-1", attached=False, state="detaching", serial="02")
    )
    assert (updated.attached, updated.state, updated.serial) == (False, "detaching", "02")
    store.upsert_certificate(cert("u1", "gw-https-2", dns_names=()))
    assert [c.object_name for c in store.list_certificates(gateway_uid="u1")] == [
        "gw-https-1",
        "gw-https-2",
    ]
    assert store.list_certificates(gateway_uid="u1")[1].dns_names == ()

    store.delete_certificate("u1", "gw-https-1")
    store.delete_certificate("u1", "not-there")  # idempotent
    assert [c.object_name for c in store.list_certificates()] == ["gw-https-2"]


def test_certificate_for_unknown_gateway_is_refused(store: SqlStore) -> None:
    with pytest.raises(RecordNotFound):
        store.upsert_certificate(cert("ghost", "c"))
    assert store.list_certificates() == []


def test_due_renewals_orders_attached_certificates_by_renewal_time(store: SqlStore) -> None:
    store.upsert_gateway(uid="u1", namespace="ns", name="gw", now=T0)
    store.upsert_gateway(uid="u2", namespace="ns", name="gw2", now=T0)
    store.upsert_certificate(cert("u1", "late", renewal_at=T0 + timedelta(days=30)))
    store.upsert_certificate(cert("u2", "early", renewal_at=T0 + timedelta(days=10)))
    store.upsert_certificate(cert("u1", "detached", attached=False, renewal_at=T0))
    store.upsert_certificate(cert("u1", "unknown-expiry", renewal_at=None))

    assert [c.object_name for c in store.due_renewals()] == ["early", "late"]
    assert [c.object_name for c in store.due_renewals(limit=1)] == ["early"]
    before = T0 + timedelta(days=10)
    assert [c.object_name for c in store.due_renewals(before=before)] == ["early"]
    assert store.due_renewals(before=T0) == []


# --- children --------------------------------------------------------------------------------
def test_child_inventory_is_keyed_by_child_id_and_route(store: SqlStore) -> None:
    store.upsert_gateway(uid="u1", namespace="ns", name="gw", now=T0)
    svc = store.upsert_child(child("u1", "svc", delete_order=2))
    assert svc == child("u1", "svc", delete_order=2)
    store.upsert_child(child("u1", "dns", kind="DNSRecord", namespace=None, delete_order=0))
    r1 = store.upsert_child(child("u1", "policy", route_key="ns/r1", delete_order=1))
    store.upsert_child(child("u1", "policy", route_key="ns/r2", delete_order=1))
    assert r1.route_key == "ns/r1"

    ready = store.upsert_child(child("u1", "svc", delete_order=2, ready=True, uid="k8s-uid"))
    assert (ready.ready, ready.uid) == (True, "k8s-uid")

    listed = store.list_children("u1")
    assert [(c.child_id, c.route_key) for c in listed] == [
        ("dns", None),
        ("policy", "ns/r1"),
        ("policy", "ns/r2"),
        ("svc", None),
    ]
    assert listed[0].namespace is None

    store.delete_child("u1", "policy", route_key="ns/r1")
    store.delete_child("u1", "policy")  # no route-less 'policy': nothing to do
    store.delete_child("u1", "svc")
    assert [(c.child_id, c.route_key) for c in store.list_children("u1")] == [
        ("dns", None),
        ("policy", "ns/r2"),
    ]


def test_child_for_unknown_gateway_is_refused(store: SqlStore) -> None:
    with pytest.raises(RecordNotFound):
        store.upsert_child(child("ghost", "svc"))


# --- delete_gateway --------------------------------------------------------------------------
def test_delete_gateway_removes_everything_keyed_by_it(store: SqlStore) -> None:
    for uid in ("doomed", "kept"):
        store.upsert_gateway(uid=uid, namespace="ns", name=uid, now=T0)
        store.upsert_certificate(cert(uid, "c"))
        store.upsert_child(child(uid, "svc"))
        store.upsert_child(child(uid, "pol", route_key="ns/r"))
        op = store.create_operation(
            NewOperation(
                gateway_uid=uid,
                namespace="ns",
                name=uid,
                machine="provision",
                machine_version=1,
                state="s",
            ),
            now=T0,
            actor="c",
        )
        store.fail_operation(op.id, now=T0, message="x", actor="e")
        store.create_operation(
            NewOperation(
                gateway_uid=uid,
                namespace="ns",
                name=uid,
                machine="teardown",
                machine_version=1,
                state="s",
            ),
            now=T0,
            actor="c",
        )

    store.delete_gateway("doomed")

    with pytest.raises(RecordNotFound):
        store.get_gateway("doomed")
    assert store.list_operations(gateway_uid="doomed") == []
    assert store.journal(gateway_uid="doomed") == []
    assert store.list_certificates(gateway_uid="doomed") == []
    assert store.list_children("doomed") == []
    assert store.active_operation("doomed") is None
    # the other gateway is untouched
    assert len(store.list_operations(gateway_uid="kept")) == 2
    assert len(store.journal(gateway_uid="kept")) == 3  # created, failed, created
    assert len(store.list_certificates(gateway_uid="kept")) == 1
    assert len(store.list_children("kept")) == 2
    store.delete_gateway("doomed")  # idempotent


def test_certificate_expiries_aggregate_attached_certificates_per_gateway(
    store: SqlStore,
) -> None:
    for uid in ("g1", "g2", "g3"):
        store.upsert_gateway(uid=uid, namespace="ns", name=f"gw-{uid}", now=T0)
    store.upsert_certificate(
        cert("g1", "old", not_after=T0 + timedelta(days=5), renewal_at=T0 + timedelta(days=3))
    )
    store.upsert_certificate(
        cert("g1", "new", not_after=T0 + timedelta(days=47), renewal_at=T0 + timedelta(days=31))
    )
    # detached certificates do not count
    store.upsert_certificate(
        cert("g2", "gone", attached=False, state="deleted", not_after=T0 + timedelta(days=1))
    )
    store.upsert_certificate(cert("g3", "only", renewal_at=None))
    assert store.certificate_expiries() == {
        "g1": (T0 + timedelta(days=5), T0 + timedelta(days=3)),
        "g3": (T0 + timedelta(days=47), None),
    }
