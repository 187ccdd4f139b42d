"""Store contract: certificates — upsert, list, delete, renewals due, expiries per gateway."""

from __future__ import annotations

from datetime import timedelta

import pytest
from store_kit import T0, cert

from bifrost.steps.tls import attached_certificates
from bifrost.store import RecordNotFound, SqlStore


def test_certificate_upsert_list_delete(store: SqlStore) -> None:
    store.upsert_gateway(uid="u1", namespace="ns", name="gw", now=T0)
    first = store.upsert_certificate(cert("u1", "gw-https-1"))
    assert first == cert("u1", "gw-https-1").model_copy(update={"attached_at": T0})
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


def test_attached_at_is_kept_while_attached_and_orders_same_second_certificates(
    store: SqlStore,
) -> None:
    """Two certificates issued within the same second (same notBefore) are ordered by when they
    were attached: a rotation's new one comes after the old one whatever their names."""
    store.upsert_gateway(uid="u1", namespace="ns", name="gw", now=T0)
    later = T0 + timedelta(seconds=3)
    old = store.upsert_certificate(cert("u1", "z-old", updated_at=T0))
    assert old.attached_at == T0
    # the new one: recorded issued, then attached later
    store.upsert_certificate(cert("u1", "a-new", attached=False, state="issued", updated_at=T0))
    new = store.upsert_certificate(cert("u1", "a-new", updated_at=later))
    assert new.attached_at == later
    # rewriting an attached certificate (a renewal time, a status) keeps when it was attached
    again = store.upsert_certificate(cert("u1", "z-old", updated_at=later + timedelta(hours=1),
                                          attached_at=later + timedelta(hours=1)))
    assert again.attached_at == T0
    assert [c["name"] for c in attached_certificates(store, "u1")] == ["z-old", "a-new"]
    # detached: cleared; attached again: from then
    assert store.upsert_certificate(
        cert("u1", "z-old", attached=False, state="detaching", updated_at=later)
    ).attached_at is None
    back = later + timedelta(minutes=5)
    assert store.upsert_certificate(cert("u1", "z-old", updated_at=back)).attached_at == back
    assert [c["name"] for c in attached_certificates(store, "u1")] == ["a-new", "z-old"]


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
