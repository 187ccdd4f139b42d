"""What FakeKube claims to do like an API server, checked on the fake and on the devcluster through
the real KubeClient (the ``kube`` fixture runs each test on both): object identity, optimistic
concurrency, generation, the status subresource, finalizers, apply, selectors and scope — and
the fake's kind table against the devcluster's discovery."""

from __future__ import annotations

import re
from typing import Any

import pytest
from support.fake_kube import KINDS, KindInfo

from bifrost.api.objects import Obj, meta
from bifrost.kube import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Invalid,
    KubeClient,
    NotFound,
    UnknownKind,
)
from bifrost.kube.ports import Kube

GATEWAY_API = "gateway.networking.k8s.io/v1"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def gateway(namespace: str, name: str = "gw", **metadata: Any) -> Obj:
    return {
        "apiVersion": GATEWAY_API, "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "spec": {"gatewayClassName": "some-class",
                 "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
    }


def config_map(namespace: str, name: str, **metadata: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, **metadata}, "data": {"k": "v"}}


def address(ip: str) -> Obj:
    return {"type": "IPAddress", "value": ip}


def rv(obj: Obj | None) -> int:
    return int(meta(obj)["resourceVersion"])


def test_a_created_object_gets_uid_resource_version_timestamp_and_generation(
    kube: Kube, namespace: str
) -> None:
    created = kube.create(gateway(namespace))
    m = meta(created)
    assert m["uid"] and rv(created) > 0 and TIMESTAMP.match(m["creationTimestamp"])
    assert m["generation"] == 1
    again = kube.get(GATEWAY_API, "Gateway", "gw", namespace)
    assert meta(again)["uid"] == m["uid"] and rv(again) == rv(created)
    cm = kube.create(config_map(namespace, "cm"))
    assert "generation" not in meta(cm)
    assert meta(cm)["uid"] != m["uid"] and rv(cm) > rv(created)


def test_resource_version_moves_on_a_change_and_only_then(kube: Kube, namespace: str) -> None:
    created = kube.create(config_map(namespace, "cm"))
    changed = kube.patch("v1", "ConfigMap", "cm", namespace, {"data": {"k": "w"}})
    assert rv(changed) > rv(created)
    same = kube.patch("v1", "ConfigMap", "cm", namespace, {"data": {"k": "w"}})
    assert rv(same) == rv(changed)


def test_a_stale_resource_version_is_a_conflict(kube: Kube, namespace: str) -> None:
    created = kube.create(gateway(namespace))
    stale = meta(created)["resourceVersion"]
    kube.patch(GATEWAY_API, "Gateway", "gw", namespace, {"metadata": {"labels": {"a": "b"}}})
    with pytest.raises(Conflict):
        kube.replace(created)
    with pytest.raises(Conflict):
        kube.patch_status(GATEWAY_API, "Gateway", "gw", namespace, {"addresses": []},
                          resource_version=stale)
    with pytest.raises(Conflict):
        kube.patch(GATEWAY_API, "Gateway", "gw", namespace,
                   {"metadata": {"labels": {"a": "c"}, "resourceVersion": stale}})
    with pytest.raises(Conflict):
        kube.delete(GATEWAY_API, "Gateway", "gw", namespace, uid="not-its-uid")
    current = kube.get(GATEWAY_API, "Gateway", "gw", namespace)
    assert meta(current)["labels"] == {"a": "b"}
    written = kube.patch_status(GATEWAY_API, "Gateway", "gw", namespace,
                                {"addresses": [address("10.0.0.1")]},
                                resource_version=meta(current)["resourceVersion"])
    assert written["status"]["addresses"] == [address("10.0.0.1")]


def test_generation_counts_spec_changes_only(kube: Kube, namespace: str) -> None:
    kube.create(gateway(namespace))
    labelled = kube.patch(GATEWAY_API, "Gateway", "gw", namespace,
                          {"metadata": {"labels": {"a": "b"}}})
    assert meta(labelled)["generation"] == 1
    status = kube.patch_status(GATEWAY_API, "Gateway", "gw", namespace,
                               {"addresses": [address("10.0.0.1")]})
    assert meta(status)["generation"] == 1
    spec = kube.patch(GATEWAY_API, "Gateway", "gw", namespace,
                      {"spec": {"gatewayClassName": "other-class"}})
    assert meta(spec)["generation"] == 2


def test_status_is_written_only_through_its_subresource(kube: Kube, namespace: str) -> None:
    kube.create(gateway(namespace))
    kube.patch_status(GATEWAY_API, "Gateway", "gw", namespace,
                      {"addresses": [address("10.0.0.1")]})
    main = kube.patch(GATEWAY_API, "Gateway", "gw", namespace,
                      {"metadata": {"labels": {"a": "b"}},
                       "status": {"addresses": [address("10.9.9.9")]}})
    assert main["status"]["addresses"] == [address("10.0.0.1")]
    assert meta(main)["labels"] == {"a": "b"}
    sub = kube.patch(GATEWAY_API, "Gateway", "gw", namespace,
                     {"metadata": {"labels": {"a": "c"}}, "spec": {"gatewayClassName": "x"},
                      "status": {"addresses": [address("10.0.0.2")]}}, subresource="status")
    assert sub["status"]["addresses"] == [address("10.0.0.2")]
    assert meta(sub)["labels"] == {"a": "b"} and sub["spec"]["gatewayClassName"] == "some-class"


def test_finalizers_hold_a_deleted_object_until_the_last_one_goes(
    kube: Kube, namespace: str
) -> None:
    kube.create(config_map(namespace, "cm", finalizers=["example.com/a", "example.com/b"]))
    assert kube.delete("v1", "ConfigMap", "cm", namespace) is True
    marked = kube.get("v1", "ConfigMap", "cm", namespace)
    assert marked is not None and TIMESTAMP.match(meta(marked)["deletionTimestamp"])
    with pytest.raises(Invalid):
        kube.patch("v1", "ConfigMap", "cm", namespace,
                   {"metadata": {"finalizers": ["example.com/a", "example.com/b",
                                                "example.com/c"]}})
    kube.patch("v1", "ConfigMap", "cm", namespace,
               [{"op": "remove", "path": "/metadata/finalizers/0"}], patch_type="json")
    assert meta(kube.get("v1", "ConfigMap", "cm", namespace))["finalizers"] == ["example.com/b"]
    kube.patch("v1", "ConfigMap", "cm", namespace, {"metadata": {"finalizers": None}})
    assert kube.get("v1", "ConfigMap", "cm", namespace) is None
    assert kube.delete("v1", "ConfigMap", "cm", namespace) is False


def test_delete_without_finalizers_removes_and_a_missing_object_is_not_an_error(
    kube: Kube, namespace: str
) -> None:
    created = kube.create(config_map(namespace, "cm"))
    assert kube.delete("v1", "ConfigMap", "cm", namespace, uid=meta(created)["uid"]) is True
    assert kube.get("v1", "ConfigMap", "cm", namespace) is None
    assert kube.delete("v1", "ConfigMap", "cm", namespace) is False


def test_a_failed_json_patch_test_is_invalid(kube: Kube, namespace: str) -> None:
    kube.create(config_map(namespace, "cm", finalizers=["example.com/a"]))
    with pytest.raises(Invalid):
        kube.patch("v1", "ConfigMap", "cm", namespace,
                   [{"op": "test", "path": "/metadata/finalizers/0", "value": "example.com/z"},
                    {"op": "remove", "path": "/metadata/finalizers/0"}], patch_type="json")
    assert meta(kube.get("v1", "ConfigMap", "cm", namespace))["finalizers"] == ["example.com/a"]


def test_apply_creates_then_merges_what_each_manager_applies(kube: Kube, namespace: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": namespace, "labels": {"one": "1"}},
            "data": {"a": "1"}}
    created = kube.apply(body, field_manager="one")
    assert meta(created)["uid"] and created["data"] == {"a": "1"}
    merged = kube.apply({**body, "metadata": {"name": "cm", "namespace": namespace,
                                              "labels": {"two": "2"}}, "data": {"b": "2"}},
                        field_manager="two")
    assert merged["data"] == {"a": "1", "b": "2"}
    assert meta(merged)["labels"] == {"one": "1", "two": "2"}
    assert meta(merged)["uid"] == meta(created)["uid"]
    updated = kube.apply({**body, "data": {"a": "changed"}}, field_manager="one")
    assert updated["data"] == {"a": "changed", "b": "2"}


def test_apply_status_changes_only_the_status(kube: Kube, namespace: str) -> None:
    kube.create(gateway(namespace))
    applied = kube.apply_status({"apiVersion": GATEWAY_API, "kind": "Gateway",
                                 "metadata": {"name": "gw", "namespace": namespace},
                                 "status": {"addresses": [address("10.0.0.3")]}})
    assert applied["status"]["addresses"] == [address("10.0.0.3")]
    assert meta(applied)["generation"] == 1 and applied["spec"]["gatewayClassName"] == "some-class"
    with pytest.raises(NotFound):
        kube.apply_status({"apiVersion": GATEWAY_API, "kind": "Gateway",
                           "metadata": {"name": "absent", "namespace": namespace},
                           "status": {"addresses": []}})


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a", "b"]),
        ("tier==web,zone=x", ["a"]),
        ("tier!=web", ["c"]),
        ("zone in (x, y)", ["a", "c"]),
        ("zone notin (x)", ["b", "c"]),
        ("zone", ["a", "c"]),
        ("!zone", ["b"]),
        ("tier=web,!zone", ["b"]),
    ],
)
def test_label_selectors(kube: Kube, namespace: str, selector: str, expected: list[str]) -> None:
    kube.create(config_map(namespace, "a", labels={"tier": "web", "zone": "x"}))
    kube.create(config_map(namespace, "b", labels={"tier": "web"}))
    kube.create(config_map(namespace, "c", labels={"tier": "db", "zone": "y"}))
    items, list_rv = kube.list("v1", "ConfigMap", namespace, label_selector=selector)
    assert sorted(meta(i)["name"] for i in items) == expected
    assert int(list_rv) >= max(rv(i) for i in items)


def test_lists_by_namespace_field_and_metadata_only(kube: Kube, namespace: str) -> None:
    kube.create(config_map(namespace, "a"))
    kube.create(config_map(namespace, "b"))
    items, _ = kube.list("v1", "ConfigMap", namespace, field_selector="metadata.name=b")
    assert [meta(i)["name"] for i in items] == ["b"]
    everywhere, _ = kube.list("v1", "ConfigMap", None, field_selector="metadata.name=b")
    assert (namespace, "b") in {(meta(i)["namespace"], meta(i)["name"]) for i in everywhere}
    slim, _ = kube.list("v1", "ConfigMap", namespace, metadata_only=True)
    assert sorted(meta(i)["name"] for i in slim) == ["a", "b"]
    assert all("data" not in i for i in slim)


def test_namespaced_and_cluster_scoped_kinds(kube: Kube, namespace: str) -> None:
    assert kube.is_namespaced(GATEWAY_API, "Gateway") is True
    assert kube.is_namespaced(GATEWAY_API, "GatewayClass") is False
    assert kube.plural(GATEWAY_API, "GatewayClass") == "gatewayclasses"
    assert kube.is_namespaced("gateway.bifrost.dev/v1alpha1", "GatewayClassBlueprint") is False
    assert kube.is_namespaced("cert-manager.io/v1", "Certificate") is True
    with pytest.raises(ValueError):
        kube.get(GATEWAY_API, "Gateway", "gw")
    with pytest.raises(UnknownKind):
        kube.get("example.com/v1", "Nonesuch", "x", namespace)
    name = f"class-{namespace}"
    created = kube.create({"apiVersion": GATEWAY_API, "kind": "GatewayClass",
                           "metadata": {"name": name},
                           "spec": {"controllerName": "example.com/none"}})
    assert "namespace" not in meta(created)
    assert meta(kube.get(GATEWAY_API, "GatewayClass", name))["uid"] == meta(created)["uid"]


def test_create_needs_a_live_namespace_and_a_free_name(kube: Kube, namespace: str) -> None:
    kube.create(config_map(namespace, "cm"))
    with pytest.raises(AlreadyExists):
        kube.create(config_map(namespace, "cm"))
    with pytest.raises(NotFound):
        kube.create(config_map(f"{namespace}-absent", "cm"))
    kube.create(config_map(namespace, "held", finalizers=["example.com/a"]))
    kube.delete("v1", "Namespace", namespace)
    with pytest.raises(Forbidden):
        kube.create(config_map(namespace, "late"))


def test_stale_applies_and_deletes_are_conflicts_too(kube: Kube, namespace: str) -> None:
    created = kube.create(config_map(namespace, "cm"))
    stale = meta(created)["resourceVersion"]
    kube.patch("v1", "ConfigMap", "cm", namespace, {"data": {"k": "w"}})
    with pytest.raises(Conflict):
        kube.apply(config_map(namespace, "cm", resourceVersion=stale))
    with pytest.raises(Conflict):
        kube.delete("v1", "ConfigMap", "cm", namespace, resource_version=stale)
    assert kube.get("v1", "ConfigMap", "cm", namespace) is not None


@pytest.mark.parametrize("info", KINDS, ids=lambda k: f"{k.api_version}/{k.kind}")
def test_the_kind_table_says_what_discovery_says(live_kube: KubeClient, info: KindInfo) -> None:
    assert live_kube.is_namespaced(info.api_version, info.kind) is info.namespaced
    assert live_kube.plural(info.api_version, info.kind) == info.plural
