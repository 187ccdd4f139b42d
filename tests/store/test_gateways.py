"""Store contract: gateways, and deleting a gateway with everything keyed by it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from store_kit import T0, cert, child

from bifrost.records import NewOperation
from bifrost.store import RecordNotFound, SqlStore


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


# --- deleted gateways: deleted_at and the purge ------------------------------------------------
def _full_gateway(store: SqlStore, uid: str) -> None:
    """A gateway with a certificate, a child, an operation and journal rows."""
    store.upsert_gateway(uid=uid, namespace="ns", name=uid, now=T0)
    store.upsert_certificate(cert(uid, "c"))
    store.upsert_child(child(uid, "svc"))
    op = store.create_operation(
        NewOperation(gateway_uid=uid, namespace="ns", name=uid, machine="teardown",
                     machine_version=1, state="s"),
        now=T0, actor="c",
    )
    store.fail_operation(op.id, now=T0, message="x", actor="e")


def test_set_gateway_state_writes_and_clears_deleted_at(store: SqlStore) -> None:
    store.upsert_gateway(uid="u1", namespace="ns", name="gw", now=T0)
    assert store.get_gateway("u1").deleted_at is None
    t = T0 + timedelta(minutes=5)
    gone = store.set_gateway_state("u1", lifecycle_state="deleted", now=t, deleted_at=t)
    assert (gone.lifecycle_state, gone.deleted_at) == ("deleted", t)
    assert store.get_gateway("u1").deleted_at == t
    # upsert leaves it alone; a state written without it clears it
    assert store.upsert_gateway(uid="u1", namespace="ns", name="gw", now=t).deleted_at == t
    assert store.set_gateway_state("u1", lifecycle_state="ready", now=t).deleted_at is None


def test_purge_deleted_gateways_removes_only_those_deleted_before(store: SqlStore) -> None:
    for uid in ("old", "recent", "alive"):
        _full_gateway(store, uid)
    store.set_gateway_state("old", lifecycle_state="deleted", now=T0, deleted_at=T0)
    late = T0 + timedelta(days=6)
    store.set_gateway_state("recent", lifecycle_state="deleted", now=late, deleted_at=late)

    # nothing was deleted before T0: nothing is purged (deleted_at == before is kept)
    assert store.purge_deleted_gateways(before=T0) == []
    purged = store.purge_deleted_gateways(before=T0 + timedelta(days=1))
    assert [(g.uid, g.lifecycle_state, g.deleted_at) for g in purged] == [("old", "deleted", T0)]
    with pytest.raises(RecordNotFound):
        store.get_gateway("old")
    assert store.list_operations(gateway_uid="old") == []
    assert store.journal(gateway_uid="old") == []
    assert store.list_certificates(gateway_uid="old") == []
    assert store.list_children("old") == []
    # the recent one and the live one are untouched
    for uid in ("recent", "alive"):
        assert len(store.list_operations(gateway_uid=uid)) == 1
        assert len(store.journal(gateway_uid=uid)) == 2
        assert len(store.list_certificates(gateway_uid=uid)) == 1
        assert len(store.list_children(uid)) == 1
    # a gateway that is not deleted is never purged, however far the cut-off
    far = T0 + timedelta(days=3650)
    assert [g.uid for g in store.purge_deleted_gateways(before=far)] == ["recent"]
    assert [g.uid for g in store.list_gateways()] == ["alive"]


def test_purge_deleted_gateways_takes_the_oldest_first_up_to_the_limit(store: SqlStore) -> None:
    for i in range(5):
        uid = f"g{i}"
        store.upsert_gateway(uid=uid, namespace="ns", name=uid, now=T0)
        when = T0 + timedelta(hours=5 - i)  # g4 deleted first
        store.set_gateway_state(uid, lifecycle_state="deleted", now=when, deleted_at=when)
    before = T0 + timedelta(days=1)
    assert [g.uid for g in store.purge_deleted_gateways(before=before, limit=2)] == ["g4", "g3"]
    assert [g.uid for g in store.purge_deleted_gateways(before=before, limit=10)] == [
        "g2", "g1", "g0"]
    assert store.purge_deleted_gateways(before=before) == []


def test_vacuum_after_a_purge(store: SqlStore, store_url: str) -> None:
    """``bifrost db vacuum``'s last step runs outside a transaction on both backends."""
    from bifrost.store import maintenance

    _full_gateway(store, "old")
    store.set_gateway_state("old", lifecycle_state="deleted", now=T0, deleted_at=T0)
    assert [g.uid for g in store.purge_deleted_gateways(before=T0 + timedelta(days=8))] == [
        "old"]
    expected = "VACUUM" if store_url.startswith("sqlite") else "VACUUM ANALYZE"
    assert maintenance.vacuum(store_url) == expected
    size = maintenance.database_size(store_url)
    assert size is not None and size > 0
    # the store is intact and usable afterwards
    _full_gateway(store, "new")
    assert [g.uid for g in store.list_gateways()] == ["new"]
