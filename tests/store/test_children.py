"""Store contract: the child inventory — keyed by gateway, child id and route."""

from __future__ import annotations

import pytest
from store_kit import T0, child

from bifrost.store import RecordNotFound, SqlStore


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
