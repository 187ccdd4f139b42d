"""Spec sections "Finalizers and deletion" and "Garbage collection of ownerReferences"."""

from __future__ import annotations

import pytest
from dc_support import body_of
from kubernetes import client, watch
from support.waiting import wait_for

GW = "gateway.networking.k8s.io"


def _exists(fn, *args) -> bool:  # type: ignore[no-untyped-def]
    try:
        fn(*args)
        return True
    except client.ApiException as e:
        if e.status == 404:
            return False
        raise


def _gateway(name: str, finalizers: list[str] | None = None) -> dict:
    meta: dict = {"name": name}
    if finalizers:
        meta["finalizers"] = finalizers
    return {
        "apiVersion": f"{GW}/v1",
        "kind": "Gateway",
        "metadata": meta,
        "spec": {
            "gatewayClassName": "c",
            "listeners": [{"name": "h", "port": 80, "protocol": "HTTP"}],
        },
    }


def test_delete_with_finalizers_marks_then_last_finalizer_deletes(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    created = co.create_namespaced_custom_object(
        GW, "v1", namespace, "gateways", _gateway("g", ["a.example.com/f"])
    )
    w = watch.Watch()
    events = []
    stream = w.stream(
        co.list_namespaced_custom_object,
        GW,
        "v1",
        namespace,
        "gateways",
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=5,
    )
    d = co.delete_namespaced_custom_object(GW, "v1", namespace, "gateways", "g")
    assert d["metadata"]["deletionTimestamp"]
    assert d["metadata"]["deletionGracePeriodSeconds"] == 0
    assert d["metadata"]["generation"] == 2
    with pytest.raises(client.ApiException) as ei:
        co.patch_namespaced_custom_object(
            GW,
            "v1",
            namespace,
            "gateways",
            "g",
            {"metadata": {"finalizers": ["a.example.com/f", "b.example.com/new"]}},
        )
    assert ei.value.status == 422
    last = co.patch_namespaced_custom_object(
        GW, "v1", namespace, "gateways", "g", {"metadata": {"finalizers": None}}
    )
    assert not _exists(co.get_namespaced_custom_object, GW, "v1", namespace, "gateways", "g")
    for ev in stream:
        events.append((ev["type"], ev["object"]["metadata"]["resourceVersion"]))
        if ev["type"] == "DELETED":
            break
    w.stop()
    assert [t for t, _ in events] == ["MODIFIED", "DELETED"]
    assert int(events[1][1]) > int(events[0][1])
    assert last["metadata"]["name"] == "g"


def test_delete_preconditions_and_dry_run(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    with pytest.raises(client.ApiException) as ei:
        core.delete_namespaced_config_map(
            "a",
            namespace,
            body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-the-uid")),
        )
    assert ei.value.status == 409
    with pytest.raises(client.ApiException) as ei:
        core.delete_namespaced_config_map(
            "a",
            namespace,
            body=client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1")),
        )
    assert ei.value.status == 409
    core.delete_namespaced_config_map("a", namespace, dry_run="All")
    assert _exists(core.read_namespaced_config_map, "a", namespace)
    core.delete_namespaced_config_map(
        "a",
        namespace,
        body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=cm.metadata.uid)),
    )
    assert not _exists(core.read_namespaced_config_map, "a", namespace)


def test_dry_run_create_and_patch_persist_nothing(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    out = core.create_namespaced_config_map(namespace, {"metadata": {"name": "d"}}, dry_run="All")
    assert out.metadata.name == "d"
    assert not _exists(core.read_namespaced_config_map, "d", namespace)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "d"}, "data": {"a": "1"}})
    core.patch_namespaced_config_map("d", namespace, {"data": {"a": "2"}}, dry_run="All")
    assert core.read_namespaced_config_map("d", namespace).data == {"a": "1"}


def _owner_ref(obj, block: bool = False) -> dict:  # type: ignore[no-untyped-def]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": obj.metadata.name,
        "uid": obj.metadata.uid,
        "blockOwnerDeletion": block,
    }


def test_background_gc_deletes_dependents_of_a_deleted_owner(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    other = core.create_namespaced_config_map(namespace, {"metadata": {"name": "other"}})
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "dep", "ownerReferences": [_owner_ref(owner)]}}
    )
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {
                "name": "two-owners",
                "ownerReferences": [_owner_ref(owner), _owner_ref(other)],
            }
        },
    )
    core.delete_namespaced_config_map("owner", namespace)
    wait_for(lambda: not _exists(core.read_namespaced_secret, "dep", namespace))
    # a dependent with a surviving owner stays, minus the dangling reference
    wait_for(
        lambda: (
            [
                r.name
                for r in core.read_namespaced_secret(
                    "two-owners", namespace
                ).metadata.owner_references
            ]
            == ["other"]
        )
    )


def test_missing_or_cross_namespace_owner_counts_as_missing(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    foreign = core.create_namespaced_config_map(
        "default", {"metadata": {"generateName": "foreign-"}}
    )
    try:
        core.create_namespaced_secret(
            namespace,
            {
                "metadata": {
                    "name": "ghost",
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "ConfigMap",
                            "name": "never",
                            "uid": "00000000-0000-0000-0000-000000000000",
                        }
                    ],
                }
            },
        )
        core.create_namespaced_secret(
            namespace, {"metadata": {"name": "cross", "ownerReferences": [_owner_ref(foreign)]}}
        )
        wait_for(lambda: not _exists(core.read_namespaced_secret, "ghost", namespace))
        wait_for(lambda: not _exists(core.read_namespaced_secret, "cross", namespace))
    finally:
        core.delete_namespaced_config_map(foreign.metadata.name, "default")


def test_foreground_deletion_waits_for_blocking_dependents(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {
                "name": "dep",
                "finalizers": ["example.com/slow"],
                "ownerReferences": [_owner_ref(owner, block=True)],
            }
        },
    )
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Foreground")
    o = core.read_namespaced_config_map("owner", namespace)
    assert "foregroundDeletion" in o.metadata.finalizers
    assert o.metadata.deletion_timestamp is not None
    # the dependent is being deleted, the owner waits for it
    wait_for(lambda: core.read_namespaced_secret("dep", namespace).metadata.deletion_timestamp)
    assert _exists(core.read_namespaced_config_map, "owner", namespace)
    core.patch_namespaced_secret("dep", namespace, {"metadata": {"finalizers": None}})
    wait_for(lambda: not _exists(core.read_namespaced_config_map, "owner", namespace))


def test_orphan_deletion_strips_references(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "dep", "ownerReferences": [_owner_ref(owner)]}}
    )
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Orphan")
    wait_for(lambda: not _exists(core.read_namespaced_config_map, "owner", namespace))
    dep = core.read_namespaced_secret("dep", namespace)
    assert not dep.metadata.owner_references


def test_successful_delete_answers(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", _gateway("g"))
    out = co.delete_namespaced_custom_object(GW, "v1", namespace, "gateways", "g")
    assert out["kind"] == "Gateway" and out["metadata"]["name"] == "g"
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    st = core.delete_namespaced_config_map("c", namespace)
    assert st["kind"] == "Status" and st["status"] == "Success"
    with pytest.raises(client.ApiException) as ei:
        core.delete_namespaced_config_map("c", namespace)
    assert body_of(ei.value)["code"] == 404
