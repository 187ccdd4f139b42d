"""KubeClient against the devcluster over HTTP: CRUD, apply, status, delete, lists, discovery."""

from __future__ import annotations

from pathlib import Path

import pytest
from kube_helpers import configmap
from support.builders import gateway

from bifrost.kube.client import KubeClient
from bifrost.kube.errors import Conflict, UnknownKind
from devcluster.server import DevCluster

GW = "gateway.networking.k8s.io/v1"


def test_create_get_replace_delete_round_trip(kube: KubeClient, namespace: str) -> None:
    created = kube.create(configmap("cm", namespace, a="1"))
    assert created["metadata"]["uid"]
    assert created["apiVersion"] == "v1" and created["kind"] == "ConfigMap"

    got = kube.get("v1", "ConfigMap", "cm", namespace)
    assert got is not None and got["data"] == {"a": "1"}
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    got["data"]["a"] = "2"
    replaced = kube.replace(got)
    assert replaced["data"] == {"a": "2"}
    assert int(replaced["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])

    assert kube.delete("v1", "ConfigMap", "cm", namespace) is True
    assert kube.get("v1", "ConfigMap", "cm", namespace) is None
    assert kube.delete("v1", "ConfigMap", "cm", namespace) is False


def test_get_of_a_missing_object_is_none(kube: KubeClient, namespace: str) -> None:
    assert kube.get(GW, "Gateway", "nope", namespace) is None


def test_namespaced_kind_without_namespace_is_refused_before_any_request(
    kube: KubeClient,
) -> None:
    with pytest.raises(ValueError, match="namespace is required"):
        kube.get("v1", "ConfigMap", "cm")


def test_list_paginates_and_returns_the_list_resource_version(
    kube: KubeClient, namespace: str, cluster: DevCluster
) -> None:
    for i in range(7):
        cm = configmap(f"cm-{i}", namespace)
        cm["metadata"]["labels"] = {"parity": "even" if i % 2 == 0 else "odd"}
        kube.create(cm)
    cluster.request_log.reset()

    items, rv = kube.list("v1", "ConfigMap", namespace, page_size=3)

    assert sorted(i["metadata"]["name"] for i in items) == [f"cm-{i}" for i in range(7)]
    assert all(i["kind"] == "ConfigMap" and i["apiVersion"] == "v1" for i in items)
    assert rv and int(rv) >= max(int(i["metadata"]["resourceVersion"]) for i in items)
    assert cluster.request_log.count(verbs=["list"], resources=["configmaps"]) == 3

    evens, _ = kube.list("v1", "ConfigMap", namespace, label_selector="parity=even")
    assert sorted(i["metadata"]["name"] for i in evens) == ["cm-0", "cm-2", "cm-4", "cm-6"]
    one, _ = kube.list("v1", "ConfigMap", namespace, field_selector="metadata.name=cm-3")
    assert [i["metadata"]["name"] for i in one] == ["cm-3"]


def test_list_across_all_namespaces(kube: KubeClient, namespace: str) -> None:
    kube.create(configmap("everywhere", namespace))
    items, _ = kube.list("v1", "ConfigMap")
    assert (namespace, "everywhere") in {
        (i["metadata"]["namespace"], i["metadata"]["name"]) for i in items
    }


def test_apply_creates_then_updates_and_prunes_what_it_no_longer_applies(
    kube: KubeClient, namespace: str
) -> None:
    first = configmap("applied", namespace, a="1", b="2")
    created = kube.apply(first)
    assert created["data"] == {"a": "1", "b": "2"}
    managers = {m["manager"] for m in created["metadata"]["managedFields"]}
    assert "bifrost" in managers

    second = configmap("applied", namespace, a="10")
    updated = kube.apply(second)
    assert updated["data"] == {"a": "10"}
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]


def test_apply_without_force_reports_the_conflicting_fields(
    kube: KubeClient, namespace: str
) -> None:
    kube.apply(configmap("shared", namespace, a="1"), field_manager="someone-else")
    with pytest.raises(Conflict) as caught:
        kube.apply(configmap("shared", namespace, a="2"), force=False)
    assert caught.value.status == 409
    assert "someone-else" in caught.value.message
    assert any(".data.a" in c.field for c in caught.value.causes)
    forced = kube.apply(configmap("shared", namespace, a="2"))
    assert forced["data"]["a"] == "2"


def test_gateway_status_writes_touch_only_status(kube: KubeClient, namespace: str) -> None:
    created = kube.apply(gateway(namespace, "gw", "bifrost"))
    generation = created["metadata"]["generation"]
    # The CRD's default status comes back on create.
    assert {c["type"] for c in created["status"]["conditions"]} >= {"Accepted", "Programmed"}

    condition = {
        "type": "Accepted",
        "status": "True",
        "reason": "Accepted",
        "message": "ok",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": generation,
    }
    patched = kube.patch_status(GW, "Gateway", "gw", namespace, {"conditions": [condition]})
    assert patched["status"]["conditions"] == [condition]
    assert patched["metadata"]["generation"] == generation
    assert patched["spec"] == created["spec"]

    applied = kube.apply_status(
        {
            "apiVersion": GW,
            "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": namespace},
            "status": {"conditions": [{**condition, "message": "applied"}]},
        }
    )
    assert applied["status"]["conditions"][0]["message"] == "applied"
    assert applied["metadata"]["generation"] == generation

    # A status field in a main-resource write is ignored.
    body = kube.get(GW, "Gateway", "gw", namespace)
    assert body is not None
    body["status"] = {"conditions": []}
    body["spec"]["listeners"][0]["port"] = 8080
    replaced = kube.replace(body)
    assert replaced["status"]["conditions"][0]["message"] == "applied"
    assert replaced["metadata"]["generation"] == generation + 1


def test_merge_and_json_patches(kube: KubeClient, namespace: str) -> None:
    kube.create(configmap("p", namespace, a="1"))
    merged = kube.patch("v1", "ConfigMap", "p", namespace, {"data": {"b": "2", "a": None}})
    assert merged["data"] == {"b": "2"}
    jsoned = kube.patch(
        "v1",
        "ConfigMap",
        "p",
        namespace,
        [{"op": "replace", "path": "/data/b", "value": "3"}],
        patch_type="json",
    )
    assert jsoned["data"] == {"b": "3"}


def test_delete_preconditions_protect_a_recreated_object(kube: KubeClient, namespace: str) -> None:
    old = kube.create(configmap("pre", namespace))
    kube.delete("v1", "ConfigMap", "pre", namespace)
    new = kube.create(configmap("pre", namespace))
    with pytest.raises(Conflict):
        kube.delete("v1", "ConfigMap", "pre", namespace, uid=old["metadata"]["uid"])
    assert kube.get("v1", "ConfigMap", "pre", namespace) is not None
    with pytest.raises(Conflict):
        kube.delete("v1", "ConfigMap", "pre", namespace, resource_version="1")
    assert kube.delete("v1", "ConfigMap", "pre", namespace, uid=new["metadata"]["uid"]) is True
    assert kube.get("v1", "ConfigMap", "pre", namespace) is None


def test_delete_with_finalizers_marks_the_object_and_returns_true(
    kube: KubeClient, namespace: str
) -> None:
    cm = configmap("held", namespace)
    cm["metadata"]["finalizers"] = ["gateway.bifrost.dev/test"]
    kube.create(cm)
    assert kube.delete("v1", "ConfigMap", "held", namespace, propagation="Foreground") is True
    marked = kube.get("v1", "ConfigMap", "held", namespace)
    assert marked is not None and marked["metadata"].get("deletionTimestamp")
    kube.patch("v1", "ConfigMap", "held", namespace, {"metadata": {"finalizers": None}})
    assert kube.get("v1", "ConfigMap", "held", namespace) is None


def test_scope_comes_from_discovery(kube: KubeClient) -> None:
    assert kube.is_namespaced(GW, "Gateway") is True
    assert kube.is_namespaced(GW, "GatewayClass") is False
    assert kube.is_namespaced("v1", "Namespace") is False
    assert kube.is_namespaced("coordination.k8s.io/v1", "Lease") is True
    assert kube.plural(GW, "HTTPRoute") == "httproutes"


def test_cluster_scoped_objects(kube: KubeClient) -> None:
    klass = {
        "apiVersion": GW,
        "kind": "GatewayClass",
        "metadata": {"name": "bifrost-client-test"},
        "spec": {"controllerName": "gateway.bifrost.dev/bifrost"},
    }
    kube.apply(klass)
    got = kube.get(GW, "GatewayClass", "bifrost-client-test", namespace="ignored")
    assert got is not None and "namespace" not in got["metadata"]
    assert kube.delete(GW, "GatewayClass", "bifrost-client-test") is True


def test_a_kind_registered_after_discovery_is_found_by_refreshing_once(
    kube: KubeClient, namespace: str, cluster: DevCluster
) -> None:
    kube.get("v1", "ConfigMap", "warm-up-discovery", namespace)
    with pytest.raises(UnknownKind):
        kube.get("late.bifrost.dev/v1", "Widget", "w", namespace)

    cluster.register_permissive(
        group="late.bifrost.dev", version="v1", kind="Widget", plural="widgets", namespaced=True
    )
    created = kube.create(
        {
            "apiVersion": "late.bifrost.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": namespace},
            "spec": {"anything": {"goes": True}},
        }
    )
    assert created["spec"] == {"anything": {"goes": True}}
    assert kube.is_namespaced("late.bifrost.dev/v1", "Widget")


def test_each_client_has_its_own_discovery_cache(kubeconfig: Path) -> None:
    one, two = KubeClient.from_kubeconfig(kubeconfig), KubeClient.from_kubeconfig(kubeconfig)
    try:
        assert one.is_namespaced("v1", "ConfigMap") and two.is_namespaced("v1", "ConfigMap")
        caches = [Path(c._cache_dir) for c in (one, two)]
        assert caches[0] != caches[1]
        assert all((c / "discovery.json").exists() for c in caches)
    finally:
        one.close()
        two.close()
    assert not any(c.exists() for c in caches)


def test_auto_uses_the_kubeconfig_outside_a_cluster(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with KubeClient.auto() as client:
        assert client.get("v1", "Namespace", "default") is not None
